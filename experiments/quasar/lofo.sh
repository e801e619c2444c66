#!/usr/bin/env bash
# Leave one family out (issue 23, part 1): the widened fine-tune of train_bundled.sh (round 2g:
# from the round-2f model, 10 epochs on six widened template sets plus the two parametric sets)
# repeated with one family removed from the widened sets, then scored by widened_eval.sh on the
# held-out runs (seed 20280), where the removed family is present.
#
#   bash experiments/quasar/lofo.sh WORKDIR R2F [EVALDIR] [MODELS]
#
# R2F: the round-2f model folder (`$W/qn_ft3` of train_bundled.sh). WORKDIR must hold
# par20291.npz and par20294.npz (step 2g of train_bundled.sh). EVALDIR: widened_eval.sh's folder
# (default WORKDIR/widened). MODELS (default all), each with its own training seeds:
#   stars          redrock archetypes removed: Pickles stars only, real BAL troughs (20310-20315)
#   bals           real BAL troughs removed: Gaussian troughs, redrock stars mixed (20320-20325)
#   stars_generic  as stars, plus the generic families that replace the archetypes: synthetic
#                  molecular bands on half the Pickles stars (star_bands=0.5) and emission-line
#                  CVs (star_cv_lines) (20340-20345)
#   bals_generic   as bals, with troughs of random shape (bal_source=random) (20360-20365)
# About 4 min of simulation and 10-18 min of training per model on 2 cores.
set -euo pipefail
W=$1
R2F=$2
EV=${3:-$W/widened}
read -r -a models <<< "${4:-stars bals stars_generic bals_generic}"
SN=${SURVEYNET:-surveynet}
DATA=${DATA:-../shared/data}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$W"
wide() {  # wide SEED MIX EXTRA...
  local s=$1 mix=$2
  shift 2
  $SN simulate spectra --n 16000 --seed "$s" --n-files 16 --templates "$DATA/templates" \
      --mix "$mix" --set resolution=false --set bal_fraction=0.2 --set qso_hz_fraction=0.5 "$@" \
      --out "$W/wide$s" --overwrite --quiet
  $SN quasar prepare "$W/wide$s"/coadd-*.fits --truth "$W/wide$s/truth.fits" \
      --out "$W/wide$s.npz" --overwrite --quiet
  rm -rf "$W/wide$s"
}
FT=(--device cpu --threads 2 --name qn_mock_6layer
    --set model.n_layers=6 --set model.padding=same --set model.n_filters=32 --set model.dropout=0.0
    --set train.batch_size=128 --set train.val_fraction=0.1 --lr-schedule cosine --lr-decay-start 0
    --lr-min 1e-6 --overwrite --quiet)
declare -A first=([stars]=20310 [bals]=20320 [stars_generic]=20340 [bals_generic]=20360)
declare -A switches=(
  [stars]="--set star_library=pickles --set bal_source=templates"
  [bals]="--set star_library=mixed --set bal_source=parametric"
  [stars_generic]="--set star_library=pickles --set star_bands=0.5 --set star_cv_lines=true --set bal_source=templates"
  [bals_generic]="--set star_library=mixed --set bal_source=random"
)
for m in "${models[@]}"; do
  s0=${first[$m]}
  sets=()
  for k in 0 1 2 3 4 5; do
    s=$((s0 + k))
    if [ "$k" -lt 3 ]; then mix=qso=0.53,star=0.40,galaxy=0.05,bad=0.02
    else mix=qso=0.45,star=0.30,galaxy=0.20,bad=0.05; fi
    # shellcheck disable=SC2086
    [ -f "$W/wide$s.npz" ] || wide "$s" "$mix" ${switches[$m]}
    sets+=("$W/wide$s.npz")
  done
  rm -rf "$W/qn_lofo_$m.work"
  $SN quasar train "${sets[@]}" "$W/par20291.npz" "$W/par20294.npz" --out "$W/qn_lofo_$m" \
      --workdir "$W/qn_lofo_$m.work" --init "$R2F" --seed 7 "${FT[@]}" \
      --set train.epochs=10 --set train.lr=3e-4 --set train.offset_weight=100
  MODEL="$W/qn_lofo_$m" TAG="_lofo_$m" DATA="$DATA" bash "$HERE/widened_eval.sh" "$EV"
done
