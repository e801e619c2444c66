#!/usr/bin/env bash
# Train the two bundled transient models on the project's mocks (seeded, reproducible):
#   rb_diff_mock     gmadet-style, difference cutout only (32x32x1)
#   rb_triplet_mock  braai-style, [science, reference, difference] triplets (32x32x3)
# Training set (experiments/transient/README.md, try T6): 240 pairs of the reference mock
# (mock.json, seed 100) + 80 pairs rich in bright hosts (mock_hosts.json, seed 101) + 80 pairs
# rich in bright hosts with a ZTF-like deep reference (mock_hosts_deep.json, ref_depth 16,
# seed 101) (try T4), plus 240 more pairs of the reference mock (seed 102; try T5b), plus 720
# more pairs of the reference mock (seeds 103, 104, 105) and 160 more deep-reference host pairs
# (mock_hosts_deep.json, seed 106) (try T6); every set processed twice, with the default
# Alard-Lupton subtraction and with ZOGY proper subtraction (`--set detect.method=zogy`, ZTF's
# method), the sixteen cutout folders merged into one cube (258,831 cutouts with the simulator of round 5; try T8). The held-out evaluation (evaluate_bundled.sh) draws from
# mock.json with seed 999 (Alard-Lupton) only.
# Both models: 20 epochs; the triplet model with a cosine learning-rate decay. The two trainings
# run side by side, single-threaded each (OMP_NUM_THREADS=1) so that the seeded run is
# reproducible bit for bit on CPU.
# Usage: experiments/transient/train_bundled.sh [WORKDIR] [MODELDIR]
# Writes the models to MODELDIR/<name>/ (model.safetensors + config.json + history), by default
# src/surveynet/models/ (the bundled models); give a scratch MODELDIR for a try.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
W="${1:-/tmp/surveynet_transient_train}"
M="${2:-$ROOT/src/surveynet/models}"
mkdir -p "$W" "$M"
mock() {  # mock CONFIG NAME N SEED
  surveynet transient simulate --config "$HERE/$1" --out "$W/$2/sim" --n-images "$3" \
    --seed "$4" --overwrite
  surveynet transient detect "$W/$2"/sim/pair*_sci.fits --reference "$W/$2"/sim/pair*_ref.fits \
    --config "$HERE/$1" --out "$W/$2/det" --overwrite --quiet
  surveynet transient cutouts "$W/$2/det" --training --config "$HERE/$1" --out "$W/$2/cut" \
    --overwrite
}
zogy() {  # zogy CONFIG NAME: the same pairs, ZOGY difference
  surveynet transient detect "$W/$2"/sim/pair*_sci.fits --reference "$W/$2"/sim/pair*_ref.fits \
    --config "$HERE/$1" --set detect.method=zogy --out "$W/$2_zogy/det" --overwrite --quiet
  surveynet transient cutouts "$W/$2_zogy/det" --training --config "$HERE/$1" \
    --set detect.method=zogy --out "$W/$2_zogy/cut" --overwrite
}
mock mock.json base 240 100
mock mock_hosts.json hosts 80 101
mock mock_hosts_deep.json hosts_deep 80 101
mock mock.json base2 240 102
zogy mock.json base
zogy mock_hosts.json hosts
zogy mock_hosts_deep.json hosts_deep
zogy mock.json base2
for s in 103 104 105; do
  mock mock.json "base$s" 240 "$s"
  zogy mock.json "base$s"
done
mock mock_hosts_deep.json hosts_deep106 160 106
zogy mock_hosts_deep.json hosts_deep106
CFG="$HERE/mock.json"
surveynet transient convert "$W/base/cut" "$W/hosts/cut" "$W/hosts_deep/cut" "$W/base_zogy/cut" \
  "$W/hosts_zogy/cut" "$W/hosts_deep_zogy/cut" "$W/base2/cut" "$W/base2_zogy/cut" \
  "$W/base103/cut" "$W/base103_zogy/cut" "$W/hosts_deep106/cut" "$W/hosts_deep106_zogy/cut" \
  "$W/base104/cut" "$W/base104_zogy/cut" "$W/base105/cut" "$W/base105_zogy/cut" --config "$CFG" \
  --out "$W/cube.npz" --overwrite
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
surveynet transient train "$W/cube.npz" --config "$CFG" --channels diff --seed 0 \
  --out "$M/rb_diff_mock" --overwrite --quiet &
surveynet transient train "$W/cube.npz" --config "$CFG" --channels triplet --seed 0 \
  --set train.lr_schedule=cosine --set train.lr_min=1e-5 \
  --out "$M/rb_triplet_mock" --overwrite --quiet &
wait %1
wait %2
rm -rf "$M"/rb_*_mock.work
