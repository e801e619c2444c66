#!/usr/bin/env bash
# Held-out figures of the bundled DLA finder (issue 4, point 8) and the benchmark.
#   bash experiments/dla/heldout_eval.sh RUNS_DIR
# The reported mocks are `final6` (seed 9008, 4,000 spectra, the test_real recipe: N_HI uniform in
# 19.3-22.5, realistic close-pair rate) and `final6_fn` (seed 9108, 20,000 spectra, survey-like:
# N_HI from f(N), absorbers in 35 % of sightlines), generated after the models and options were
# chosen on `test` (seed 9001), `test_real` (9002) and `test_fn` (9102); `final` (9003) to
# `final5` (9007) carried earlier sessions' reports: MOCK=final5 reruns that one (SURVEY= skips
# the survey-like mock). `final7_desi` and `final8_desi` (seeds 9208, 9209, 20,000 spectra each;
# DESI= skips them) are the survey-like recipe with DESI's (z_qso, r) population (ninth session;
# needs ../shared/data/igm); `final9_desi` (seed 9210) was generated in the eleventh session after
# the absorber vetter and its threshold were chosen, `final10_desi` (seed 9211) in the twelfth
# after the refiner's test-time shifts were tried on the development mocks. Every mock is scored
# with the default catalogue (finders, refiners, vetter), without the vetter (`novet`, the default
# up to the tenth session) and with the finders alone (`norefine`: no refiners, no vetter).
set -euo pipefail
RUNS=${1:-/work/dla_runs}
M=$RUNS/mocks
F=${MOCK:-final6}
S=${SURVEY-final6_fn}
D=${DESI-final7_desi final8_desi final9_desi final10_desi}
E=$RUNS/eval_$F
mkdir -p "$E"
# catalogues MOCK OUT "name:predict args" ...: one catalogue per variant, then `dla evaluate`
# and the point-8 figures with both matching rules
catalogues() {
  local mock=$1 out=$2; shift 2
  mkdir -p "$out"
  [ -f $M/$mock/truth.fits ] || python experiments/dla/make_mocks.py "$M" $mock
  for v in "$@"; do
    local c=${v%%:*} args=${v#*:}
    surveynet dla predict $M/$mock/coadd-*.fits --truth $M/$mock/truth.fits --out $out/cat_$c.fits \
      $args --workers 2 --overwrite
    surveynet dla evaluate $out/cat_$c.fits --truth $M/$mock/truth.fits --out $out/eval_$c --overwrite
    for rule in dlambda dz; do
      python experiments/dla/heldout_figures.py $out/cat_$c.fits $M/$mock/truth.fits \
        $out/figures_${c}_$rule.json --rule $rule
    done
  done
}
# bundled dla_fcn (S/N >= 3) + dla_fcn_lowsnr (S/N < 3) + the dla_refiner, dla_refiner_wide
# localisers + the dla_vetter; BAL quasars left out as in DESI, and kept; without the vetter; the
# finders alone; the fifth round's catalogue: the fine refiner only (no wide stage, no vetter)
catalogues $F "$E" "nobal:--skip-bal" "all:--bal keep" "novet:--skip-bal --vetter none" \
  "norefine:--skip-bal --refiner none --vetter none" \
  "fine:--skip-bal --refiner dla_refiner --vetter none"
# window CNN against the FCN on the same sightlines (first file; the window CNN runs at ~5/s), the
# finders alone (--refiner none). The window CNN reads the blue camera, the FCN all cameras:
# --common-range compares them on the absorbers and wavelengths both searched
for m in dla_window_cnn dla_fcn; do
  surveynet dla predict $M/$F/coadd-000.fits --truth $M/$F/truth.fits --out $E/cat0_$m.fits \
    --model $m --refiner none --vetter none --skip-bal --workers 0 --overwrite
done
for pair in "dla_window_cnn dla_fcn" "dla_fcn dla_window_cnn"; do
  set -- $pair
  for rule in dlambda dz; do
    python experiments/dla/heldout_figures.py $E/cat0_$1.fits $M/$F/truth.fits \
      $E/figures0c_$1_$rule.json --rule $rule --common-range $E/cat0_$2.fits
  done
done
# the survey-like mock and the DESI-population mocks: the default catalogue, without the vetter
# and the finders alone; the ideal-observer detectability of the DESI-population DLAs (the
# position bound beside the bundled catalogue's sigma(dz): ideal_nobal.json)
V=("nobal:--skip-bal" "novet:--skip-bal --vetter none" "norefine:--skip-bal --refiner none --vetter none")
[ -z "$S" ] || catalogues $S "$RUNS/eval_$S" "${V[@]}"
for d in $D; do
  catalogues $d "$RUNS/eval_$d" "${V[@]}"
  python experiments/dla/ideal_observer.py $d $RUNS/eval_$d/cat_novet.fits $RUNS/eval_$d/ideal.json
  python experiments/dla/ideal_observer.py $d $RUNS/eval_$d/cat_nobal.fits \
    $RUNS/eval_$d/ideal_nobal.json
  # the blind search of an observer given the continuum and forest, at 1 < S/N < 3
  python experiments/dla/ideal_search.py $d $RUNS/eval_$d/cat_nobal.fits \
    $RUNS/eval_$d/ideal_search_lo.fits --s2n 1 3
  python experiments/dla/heldout_figures.py $RUNS/eval_$d/ideal_search_lo.fits \
    $RUNS/mocks/$d/truth.fits $RUNS/eval_$d/figures_ideal_search_lo.json
done
surveynet bench dla --json $E/bench.json
