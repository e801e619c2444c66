#!/usr/bin/env bash
# Figures of the bundled transient models on a FRESH held-out mock (seed 999, never used for
# training), by S/N of the candidate on the difference image, against the matched-filter ideal
# observer; plus the triplet model on the 39 real ZTF triplets and the two ZTF alerts.
# Usage: experiments/transient/evaluate_bundled.sh [WORKDIR] [N_IMAGES]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
W="${1:-/tmp/surveynet_transient_eval}"
N="${2:-30}"
CFG="$HERE/mock.json"
mkdir -p "$W"
surveynet transient simulate --config "$CFG" --out "$W/sim" --n-images "$N" --seed 999 --overwrite
surveynet transient detect "$W"/sim/pair*_sci.fits --reference "$W"/sim/pair*_ref.fits \
  --config "$CFG" --out "$W/det" --overwrite --quiet
surveynet transient cutouts "$W/det" --training --config "$CFG" --out "$W/cut" --overwrite
surveynet transient checksim "$W/cut" --out "$W/checksim" --overwrite
for m in rb_diff_mock rb_triplet_mock; do
  surveynet transient predict "$W/cut" --model "$m" --out "$W/$m/infer_$m.fits" --overwrite --quiet
  surveynet transient checkinfer "$W/$m/infer_$m.fits" --out "$W/$m/report" --overwrite
done
python "$HERE/ideal_observer.py" "$W/cut" "$W/det" "$W/sim" \
  "$W/rb_diff_mock/infer_rb_diff_mock.fits" "$W/rb_triplet_mock/infer_rb_triplet_mock.fits" \
  --out "$W/figures_by_snr.json"
python "$HERE/ztf_check.py" --model rb_triplet_mock --out "$W/ztf_check.json"
