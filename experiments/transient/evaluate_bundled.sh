#!/usr/bin/env bash
# Figures of the bundled transient models on a FRESH held-out mock (seed 999, never used for
# training), by S/N of the candidate on the difference image, against the matched-filter ideal
# observer; plus the triplet model on the 39 real ZTF triplets and the two ZTF alerts.
# Usage: experiments/transient/evaluate_bundled.sh [WORKDIR] [N_IMAGES] [DIFF_MODEL] [TRIPLET_MODEL]
# DIFF_MODEL / TRIPLET_MODEL: bundled names (default) or model directories (scratch tries).
# The held-out mock is always drawn from mock.json (the reference mock), whatever the models
# were trained on; it is reused when WORKDIR/cut/cutouts.fits exists and REUSE=1. SEED (default
# 999) draws another held-out mock: 999 compared the tries of experiments/transient/README.md, so
# a seed that no choice has seen (e.g. 1001) gives the unbiased figure of the installed models.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
W="${1:-/tmp/surveynet_transient_eval}"
N="${2:-30}"
MD="${3:-rb_diff_mock}"
MT="${4:-rb_triplet_mock}"
CFG="$HERE/mock.json"
mkdir -p "$W"
if [[ "${REUSE:-0}" != 1 || ! -f "$W/cut/cutouts.fits" ]]; then
  surveynet transient simulate --config "$CFG" --out "$W/sim" --n-images "$N" --seed "${SEED:-999}" --overwrite
  surveynet transient detect "$W"/sim/pair*_sci.fits --reference "$W"/sim/pair*_ref.fits \
    --config "$CFG" --out "$W/det" --overwrite --quiet
  surveynet transient cutouts "$W/det" --training --config "$CFG" --out "$W/cut" --overwrite
  surveynet transient checksim "$W/cut" --out "$W/checksim" --overwrite
fi
for m in "$MD" "$MT"; do
  n="$(basename "$m")"
  surveynet transient predict "$W/cut" --model "$m" --out "$W/$n/infer_$n.fits" --overwrite --quiet
  surveynet transient checkinfer "$W/$n/infer_$n.fits" --out "$W/$n/report" --overwrite
done
python "$HERE/ideal_observer.py" "$W/cut" "$W/det" "$W/sim" \
  "$W/$(basename "$MD")/infer_$(basename "$MD").fits" \
  "$W/$(basename "$MT")/infer_$(basename "$MT").fits" \
  --out "$W/figures_by_snr.json"
python "$HERE/ztf_check.py" --model "$MT" --out "$W/ztf_check.json"
