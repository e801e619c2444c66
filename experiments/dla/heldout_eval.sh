#!/usr/bin/env bash
# Point-8 figures of the bundled DLA models on a FRESH held-out DLA-preset mock (seed 9001, never used
# in training), plus `surveynet bench dla`. Run from the repository root:
#   bash experiments/dla/heldout_eval.sh RUNS_DIR
set -euo pipefail
RUNS=${1:-/work/dla_runs}
M=$RUNS/mocks
E=$RUNS/eval
mkdir -p "$E"
[ -f $M/test/truth.fits ] || python experiments/dla/make_mocks.py "$M" test
# fully-convolutional finder, S/N-routed: dla_fcn (S/N >= 3) + dla_fcn_lowsnr (S/N < 3)
surveynet dla predict $M/test/coadd-*.fits --truth $M/test/truth.fits --out $E/cat_fcn.fits \
  --model dla_fcn --model dla_fcn_lowsnr --workers 2 --overwrite
surveynet dla evaluate $E/cat_fcn.fits --truth $M/test/truth.fits --out $E/fcn --overwrite
python experiments/dla/heldout_figures.py $E/cat_fcn.fits $M/test/truth.fits $E/fcn_figures.json
# window CNN (high-S/N model applied to every sightline; compare at S/N > 3)
surveynet dla predict $M/test/coadd-*.fits --truth $M/test/truth.fits --out $E/cat_window.fits \
  --model dla_window_cnn --workers 2 --overwrite
surveynet dla evaluate $E/cat_window.fits --truth $M/test/truth.fits --out $E/window --overwrite
python experiments/dla/heldout_figures.py $E/cat_window.fits $M/test/truth.fits $E/window_figures.json
surveynet bench dla --json $E/bench.json
