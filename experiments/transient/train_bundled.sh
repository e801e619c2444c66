#!/usr/bin/env bash
# Train the two bundled transient models on the project's mocks (seeded, reproducible):
#   rb_diff_mock     gmadet-style, difference cutout only (32x32x1)
#   rb_triplet_mock  braai-style, [science, reference, difference] triplets (32x32x3)
# Usage: experiments/transient/train_bundled.sh [WORKDIR] [N_IMAGES]
# Writes the models to src/surveynet/models/<name>/ (model.safetensors + config.json + history).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
W="${1:-/tmp/surveynet_transient_train}"
N="${2:-80}"
CFG="$HERE/mock.json"
mkdir -p "$W"
surveynet transient simulate --config "$CFG" --out "$W/sim" --n-images "$N" --seed 100 --overwrite
surveynet transient detect "$W"/sim/pair*_sci.fits --reference "$W"/sim/pair*_ref.fits \
  --config "$CFG" --out "$W/det" --overwrite --quiet
surveynet transient cutouts "$W/det" --training --config "$CFG" --out "$W/cut" --overwrite
surveynet transient convert "$W/cut" --config "$CFG" --out "$W/cube.npz" --overwrite
# difference-only: the settings of mock.json (20 epochs, constant learning rate)
surveynet transient train "$W/cube.npz" --config "$CFG" --channels diff --seed 0 \
  --out "$ROOT/src/surveynet/models/rb_diff_mock" --overwrite --quiet
# triplets: 40 epochs with a cosine learning-rate decay
surveynet transient train "$W/cube.npz" --config "$CFG" --channels triplet --seed 0 \
  --set train.epochs=40 --set train.lr_schedule=cosine --set train.lr_min=1e-5 \
  --out "$ROOT/src/surveynet/models/rb_triplet_mock" --overwrite --quiet
rm -rf "$ROOT"/src/surveynet/models/rb_*_mock.work
