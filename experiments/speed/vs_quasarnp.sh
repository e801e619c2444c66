#!/usr/bin/env bash
# surveynet quasar predict vs QuasarNP (desihub/QuasarNP) end to end, side by side (issue 22).
#
# Both programs run as whole processes on the same DESI coadd and the same weights (the original
# 6-layer QuasarNET weights of ../shared/data/quasarnp, converted for surveynet by
# `surveynet quasar convert`), alternating, RUNS times each, under /usr/bin/time -v (wall clock
# and peak resident memory). QuasarNP: load_model + load_desi_coadd + model.predict +
# process_preds (its README's recipe), results saved with numpy. surveynet: the CLI, from the
# file to the catalogue FITS, in process (--workers 0).
#
# QuasarNP is MIT-licensed and is NOT part of this repository: check it out outside the repo
# and install its dependencies (numpy, fitsio, h5py) into a separate virtual environment:
#   git clone https://github.com/desihub/QuasarNP /tmp/quasarnp_peer
#   python -m venv /tmp/qnp_venv && /tmp/qnp_venv/bin/pip install numpy fitsio h5py
#
# usage: bash experiments/speed/vs_quasarnp.sh [COADD]
#   COADD            default /tmp/sp2000/coadd-000.fits (made with
#                    `surveynet simulate spectra --n 2000 --seed 5 --n-files 1` when absent)
#   RUNS=3           runs per program
#   QUASARNP_DIR     QuasarNP checkout (default /tmp/quasarnp_peer)
#   QUASARNP_PYTHON  interpreter with numpy, fitsio, h5py (default /tmp/qnp_venv/bin/python)
#   SURVEYNET        surveynet command (default: `surveynet` on PATH)
#   SCRATCH          scratch folder (default: a new /tmp/vs_quasarnp.* folder)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COADD=${1:-/tmp/sp2000/coadd-000.fits}
RUNS=${RUNS:-3}
PEER=${QUASARNP_DIR:-/tmp/quasarnp_peer}
QNP_PY=${QUASARNP_PYTHON:-/tmp/qnp_venv/bin/python}
SURVEYNET=${SURVEYNET:-surveynet}
WEIGHTS=${WEIGHTS:-$ROOT/../shared/data/quasarnp/test_weights_6_layer.h5}
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/vs_quasarnp.XXXXXX)}

[ -d "$PEER/quasarnp" ] || { echo "no QuasarNP checkout at $PEER (see the header)" >&2; exit 1; }
[ -f "$WEIGHTS" ] || { echo "weights $WEIGHTS not found" >&2; exit 1; }
if [ ! -f "$COADD" ]; then
  $SURVEYNET simulate spectra --n 2000 --seed 5 --n-files 1 --out "$(dirname "$COADD")" --quiet
fi
$SURVEYNET quasar convert "$WEIGHTS" --out "$SCRATCH/qn6" --overwrite --quiet

cat > "$SCRATCH/run_quasarnp.py" <<'PY'
"""QuasarNP's README recipe on one DESI coadd: load, predict, process (timed from outside)."""
import sys

import numpy as np
from quasarnp.io import load_desi_coadd, load_model
from quasarnp.utils import process_preds

coadd, weights, out = sys.argv[1:4]
lines = ["LYA", "CIV(1548)", "CIII(1909)", "MgII(2796)", "Hbeta", "Halpha"]
lines_bal = ["CIV(1548)"]
model, w_grid = load_model(weights)
data, kept = load_desi_coadd(coadd)
preds = model.predict(data[:, :, None])
c_line, z_line, zbest, c_line_bal, z_line_bal = process_preds(preds, lines, lines_bal, verbose=False)
is_qso = np.sum(c_line > 0.5, axis=0) >= 1
np.savez(out, kept=kept, c_line=c_line, z_line=z_line, zbest=zbest, is_qso=is_qso)
print(f"{len(kept)} spectra, {int(is_qso.sum())} quasars")
PY

measure() {  # measure LABEL CMD...: prints "LABEL wall_s peak_mb"
  local label=$1; shift
  /usr/bin/time -v "$@" > "$SCRATCH/$label.out" 2> "$SCRATCH/$label.time"
  local wall peak
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$SCRATCH/$label.time")
  peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$SCRATCH/$label.time")
  echo "$label $wall $peak"
}

cat "$COADD" > /dev/null  # page cache warm for both programs
echo "coadd: $COADD ($(du -m "$COADD" | cut -f1) MB); weights: $WEIGHTS"
echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS="$SCRATCH/results.txt"
: > "$RESULTS"
for i in $(seq 1 "$RUNS"); do
  measure "surveynet_$i" $SURVEYNET quasar predict "$COADD" --model "$SCRATCH/qn6" \
    --out "$SCRATCH/cat.fits" --workers 0 --quiet --overwrite | tee -a "$RESULTS"
  measure "quasarnp_$i" env PYTHONPATH="$PEER" "$QNP_PY" "$SCRATCH/run_quasarnp.py" \
    "$COADD" "$WEIGHTS" "$SCRATCH/quasarnp.npz" | tee -a "$RESULTS"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RESULTS" <<'PY'
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
by = {}
for label, wall, peak in rows:
    by.setdefault(label.rsplit("_", 1)[0], []).append((float(wall), float(peak)))
print("| program | wall median (s) | walls (s) | peak memory max (MB) |")
print("|---|---|---|---|")
for name, v in by.items():
    walls = [w for w, _ in v]
    print(f"| {name} | {statistics.median(walls):.2f} | {', '.join(f'{w:.2f}' for w in walls)} "
          f"| {max(p for _, p in v):.0f} |")
s, q = by["surveynet"], by["quasarnp"]
ratio = statistics.median([w for w, _ in q]) / statistics.median([w for w, _ in s])
mem = max(p for _, p in s) / max(p for _, p in q)
print(f"surveynet is {ratio:.2f}x faster end to end; peak memory {mem:.2f}x QuasarNP's")
PY
echo "outputs and /usr/bin/time logs in $SCRATCH"
