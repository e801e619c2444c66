#!/usr/bin/env bash
# Calibrated QuasarNET probabilities (issue 23, point 1): fit P_QSO_QN on one fresh held-out mock,
# measure ECE/MCE before and after on another, for the bundled model `qn_mock_6layer`.
#
#   bash experiments/quasar/calibrate.sh [WORKDIR]          (default WORKDIR = runs/qn_calib)
#
# Mocks (never seen in training: the model used seeds 20261-20264, its evaluation 777 and 778):
#   parametric family, the mix the bundled model was evaluated with (train_bundled.sh step 3,
#   `SpectraSimConfig(resolution=False)`): calibration set seed 20270 (4,000 spectra), test set
#   seed 20271 (5,000 spectra);
#   template family (`--templates`, redrock/desisim templates): calibration seed 20272, test seed
#   20273 (3,000 spectra each); a second family, to see whether a map fitted on one transfers.
# Each calibration is fitted on a calibration set and reported on the matching test set only.
# Knobs (environment): SURVEYNET=surveynet (command to run), DATA=../shared/data (templates).
set -euo pipefail
W=${1:-runs/qn_calib}
SN=${SURVEYNET:-surveynet}
DATA=${DATA:-../shared/data}
mkdir -p "$W"

sim() {  # sim N SEED OUT [extra flags]
  local n=$1 seed=$2 out=$3
  shift 3
  $SN simulate spectra --n "$n" --seed "$seed" --n-files $(( (n + 999) / 1000 )) \
      --set resolution=false --out "$out" --overwrite --quiet "$@"
}

# (1) fresh mocks
sim 4000 20270 "$W/calib20270"
sim 5000 20271 "$W/test20271"
sim 3000 20272 "$W/tmpl_calib20272" --templates "$DATA/templates"
sim 3000 20273 "$W/tmpl_test20273" --templates "$DATA/templates"

# (2) catalogues of the bundled (uncalibrated) model
for s in calib20270 test20271 tmpl_calib20272 tmpl_test20273; do
  $SN quasar predict "$W/$s"/coadd-*.fits --model qn_mock_6layer --out "$W/${s}_cat.fits" \
      --overwrite --quiet
done

# (3) calibrations fitted on the calibration sets: Platt (T and b) and temperature (T alone) on
# the parametric set, Platt on the template set
$SN quasar calibrate "$W/calib20270_cat.fits" --truth "$W/calib20270/truth.fits" \
    --model qn_mock_6layer --out "$W/qn_mock_6layer_platt" --overwrite
$SN quasar calibrate "$W/calib20270_cat.fits" --truth "$W/calib20270/truth.fits" \
    --model qn_mock_6layer --method temperature --out "$W/qn_mock_6layer_temp" --overwrite
$SN quasar calibrate "$W/tmpl_calib20272_cat.fits" --truth "$W/tmpl_calib20272/truth.fits" \
    --model qn_mock_6layer --out "$W/qn_mock_6layer_platt_tmpl" --overwrite

# (4) test sets predicted with the calibrated copies (P_QSO_QN column) and evaluated
# (metrics.json "calibration": ECE/MCE of the raw score and of P_QSO_QN; reliability.png)
ev() {  # ev TEST MODEL_SUFFIX
  local t=$1 m=$2
  $SN quasar predict "$W/$t"/coadd-*.fits --model "$W/qn_mock_6layer_$m" \
      --out "$W/${t}_cat_$m.fits" --overwrite --quiet
  $SN quasar evaluate "$W/${t}_cat_$m.fits" --truth "$W/$t/truth.fits" --out "$W/eval_${t}_$m" \
      --overwrite
}
$SN quasar evaluate "$W/test20271_cat.fits" --truth "$W/test20271/truth.fits" \
    --out "$W/eval_test20271_raw" --overwrite
$SN quasar evaluate "$W/tmpl_test20273_cat.fits" --truth "$W/tmpl_test20273/truth.fits" \
    --out "$W/eval_tmpl_test20273_raw" --overwrite
ev test20271 platt
ev test20271 temp
ev tmpl_test20273 platt          # parametric-fitted map on the template family (transfer)
ev tmpl_test20273 platt_tmpl     # template-fitted map on the template family
ev test20271 platt_tmpl          # and back

# (5) summary table
python - "$W" <<'PY'
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
# ECE, MCE and MCE over bins of >= 10 spectra (in %), raw score and P_QSO_QN; crossover c_th
print(f"{'evaluation':32s} {'ECE raw':>8s} {'MCE':>6s} {'MCE10':>6s} {'ECE P':>8s} {'MCE':>6s} "
      f"{'MCE10':>6s} {'c_x raw':>8s} {'c_x P':>6s}")
for d in sorted(w.glob("eval_*")):
    m = json.loads((d / "metrics.json").read_text())
    c = m["calibration"]
    f = lambda r: f"{100 * r['ece']:7.2f}% {100 * r['mce']:6.1f} {100 * r['mce_populated']:6.1f} "
    p = c.get("p_qso")
    print(f"{d.name:32s} " + f(c["raw"]) + (f(p) if p else f"{'-':>8s} {'-':>6s} {'-':>6s} ")
          + f"{m['crossover_c_th']:8.3f} "
          + (f"{c['p_qso_crossover']:6.3f}" if p else f"{'-':>6s}"))
PY
