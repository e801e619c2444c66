#!/usr/bin/env bash
# Held-out figures of the bundled DLA finder (issue 4, point 8) and the benchmark.
#   bash experiments/dla/heldout_eval.sh RUNS_DIR
# The reported mock is `final5` (seed 9007, 4,000 spectra, realistic close-pair rate), generated
# after the models and options (dla_refiner and dla_refiner_wide included) were chosen on `test`
# (seed 9001) and `test_real` (seed 9002); `final` (9003) to `final4` (9006) carried earlier
# sessions' reports: MOCK=final4 reruns that one.
set -euo pipefail
RUNS=${1:-/work/dla_runs}
M=$RUNS/mocks
F=${MOCK:-final5}
E=$RUNS/eval_$F
mkdir -p "$E"
[ -f $M/$F/truth.fits ] || python experiments/dla/make_mocks.py "$M" $F
# bundled dla_fcn (S/N >= 3) + dla_fcn_lowsnr (S/N < 3) + the dla_refiner, dla_refiner_wide
# localisers; BAL quasars
# left out as in DESI, and kept; and the finders alone (--refiner none)
surveynet dla predict $M/$F/coadd-*.fits --truth $M/$F/truth.fits --out $E/cat_nobal.fits \
  --skip-bal --workers 2 --overwrite
surveynet dla predict $M/$F/coadd-*.fits --truth $M/$F/truth.fits --out $E/cat_all.fits \
  --workers 2 --overwrite
surveynet dla predict $M/$F/coadd-*.fits --truth $M/$F/truth.fits --out $E/cat_norefine.fits \
  --skip-bal --refiner none --workers 2 --overwrite
# the fifth round's catalogue: the fine refiner only (no wide stage)
surveynet dla predict $M/$F/coadd-*.fits --truth $M/$F/truth.fits --out $E/cat_fine.fits \
  --skip-bal --refiner dla_refiner --workers 2 --overwrite
for c in nobal all norefine fine; do
  surveynet dla evaluate $E/cat_$c.fits --truth $M/$F/truth.fits --out $E/eval_$c --overwrite
  for rule in dlambda dz; do
    python experiments/dla/heldout_figures.py $E/cat_$c.fits $M/$F/truth.fits \
      $E/figures_${c}_$rule.json --rule $rule
  done
done
# window CNN against the FCN on the same sightlines (first file; the window CNN runs at ~5/s), the
# finders alone (--refiner none). The window CNN reads the blue camera, the FCN all cameras:
# --common-range compares them on the absorbers and wavelengths both searched
for m in dla_window_cnn dla_fcn; do
  surveynet dla predict $M/$F/coadd-000.fits --truth $M/$F/truth.fits --out $E/cat0_$m.fits \
    --model $m --refiner none --skip-bal --workers 0 --overwrite
done
for pair in "dla_window_cnn dla_fcn" "dla_fcn dla_window_cnn"; do
  set -- $pair
  for rule in dlambda dz; do
    python experiments/dla/heldout_figures.py $E/cat0_$1.fits $M/$F/truth.fits \
      $E/figures0c_$1_$rule.json --rule $rule --common-range $E/cat0_$2.fits
  done
done
surveynet bench dla --json $E/bench.json
