#!/usr/bin/env bash
# QuasarNET on a widened template mock (issue 23, part 1): how the bundled model holds on
# redrock-archetype stars (late-type M dwarfs, white dwarfs, CVs), real desisim BAL troughs and
# low-z quasars on bright KC96 hosts, side by side with the earlier template family (Pickles stars,
# parametric BAL troughs, no hosts) simulated with the same seed and class plan.
#
#   bash experiments/quasar/widened_eval.sh [WORKDIR]     (default WORKDIR = runs/qn_widened)
#
# Mocks (held out: seed 20280 is used nowhere else; the bundled model was trained on seeds
# 20261-20264 and evaluated on 777/778; calibrate.sh uses 20270-20273): 4,000 template spectra,
# mix QSO 53 % / STAR 40 % / GALAXY 5 % / BAD 2 % (a star share above DESI's, to measure the
# contaminants), bal_fraction 0.2 of z >= 1.6 quasars and qso_hz_fraction 0.5 (more BALs and
# low-z quasars than the defaults, for the splits), resolution=false as calibrate.sh. Runs:
#   base     : star_library=pickles, bal_source=parametric, qso_host=false (the earlier family)
#   stars    : star_library=redrock only
#   bals     : bal_source=templates only
#   hosts    : qso_host=true only
#   widened  : all three switches on
# Each is predicted with the default bundled model (`surveynet quasar predict`, no --model),
# evaluated with `surveynet quasar evaluate` (metrics.json) and summarised by
# widened_figures.py (stars called quasars by subtype, BAL recognition, completeness by z).
# Knobs (environment): SURVEYNET=surveynet, DATA=../shared/data, N=4000, SEED=20280,
# MODEL (a model folder or bundled name; default: the default bundled model), TAG (suffix of the
# catalogue and evaluation names, to score several models on the same mocks), RUNS (the runs to
# do, default "base stars bals hosts widened"). An existing mock (truth.fits present) is reused.
set -euo pipefail
W=${1:-runs/qn_widened}
SN=${SURVEYNET:-surveynet}
DATA=${DATA:-../shared/data}
N=${N:-4000}
SEED=${SEED:-20280}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$W"

common=(--n "$N" --seed "$SEED" --n-files $(( (N + 999) / 1000 )) --templates "$DATA/templates"
        --mix qso=0.53,star=0.40,galaxy=0.05,bad=0.02 --set resolution=false
        --set bal_fraction=0.2 --set qso_hz_fraction=0.5 --overwrite --quiet)
declare -A switches=(
  [base]=""
  [stars]="--set star_library=redrock"
  [bals]="--set bal_source=templates"
  [hosts]="--set qso_host=true"
  [widened]="--set star_library=redrock --set bal_source=templates --set qso_host=true"
)
read -r -a runs <<< "${RUNS:-base stars bals hosts widened}"
MODEL_ARGS=()
[ -n "${MODEL:-}" ] && MODEL_ARGS=(--model "$MODEL")
T=${TAG:-}
figs=()
for r in "${runs[@]}"; do
  # shellcheck disable=SC2086
  [ -f "$W/$r/truth.fits" ] || $SN simulate spectra "${common[@]}" --out "$W/$r" ${switches[$r]}
  $SN quasar predict "$W/$r"/coadd-*.fits "${MODEL_ARGS[@]}" --out "$W/${r}${T}_cat.fits" \
      --overwrite --quiet
  $SN quasar evaluate "$W/${r}${T}_cat.fits" --truth "$W/$r/truth.fits" --out "$W/eval_$r$T" \
      --overwrite > "$W/eval_$r$T.log"
  figs+=(--run "$r" "$W/${r}${T}_cat.fits" "$W/$r/truth.fits")
done
python "$HERE/widened_figures.py" "${figs[@]}" --json "$W/widened_figures$T.json" \
    | tee "$W/widened_figures$T.md"
