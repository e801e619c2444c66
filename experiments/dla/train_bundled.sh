#!/usr/bin/env bash
# Reproduce the bundled DLA models (seeded). Run from the repository root:
#   bash experiments/dla/train_bundled.sh RUNS_DIR
# RUNS_DIR receives the mocks (experiments/dla/make_mocks.py), the models and their .work checkpoints;
# the finished model directories are then copied into src/surveynet/models/.
set -euo pipefail
RUNS=${1:-/work/dla_runs}
export OMP_NUM_THREADS=1
python experiments/dla/make_mocks.py "$RUNS/mocks" train_hi train_lo
M=$RUNS/mocks
# FCN, high S/N (S/N >= 3): ~3,700 sightlines of the train_hi mock
surveynet -v dla train $M/train_hi/coadd-*.fits --truth $M/train_hi/truth.fits --out $RUNS/models/dla_fcn \
  --set input.s2n_range=[3,1e9] --set train.epochs=8 --set train.batch_size=8 --set train.lr=0.002 \
  --set train.offset_scale=30 --seed 1 --overwrite
# FCN, low S/N (S/N < 3): 4 channels [raw, medfilt 3, 7, 15], faint train_lo mock
surveynet -v dla train $M/train_lo/coadd-*.fits --truth $M/train_lo/truth.fits --out $RUNS/models/dla_fcn_lowsnr \
  --set input.s2n_range=[0,3] --set input.channels=[0,3,7,15] --set model.fcn.in_channels=4 \
  --set train.epochs=10 --set train.batch_size=8 --set train.lr=0.002 --set train.offset_scale=30 \
  --seed 2 --overwrite
# Window CNN, high S/N, reduced width (32/32/32 filters, FC 128, heads 64) for the CPU budget;
# anchor kernels/strides/pools (dla.md 4.2), 30 positive + 30 negative windows per sightline
surveynet -v dla train $M/train_hi/coadd-*.fits --truth $M/train_hi/truth.fits --out $RUNS/models/dla_window_cnn \
  --set model.architecture=dla_window_cnn --set model.window_cnn.conv_filters=[32,32,32] \
  --set model.window_cnn.fc1=128 --set model.window_cnn.fc2=[64,64,64] --set model.window_cnn.nhi_shift=20 \
  --set input.s2n_range=[3,1e9] --set train.max_windows=30 --set train.epochs=3 --set train.batch_size=128 \
  --set train.lr=0.001 --set train.offset_scale=30 --seed 3 --overwrite
for m in dla_fcn dla_fcn_lowsnr dla_window_cnn; do
  rm -rf src/surveynet/models/$m && cp -r $RUNS/models/$m src/surveynet/models/$m
done
