#!/usr/bin/env bash
# Issue 22 figures in one short run: CLI start-up, reading, read + rebin + normalise, the
# end-to-end quasar predict (in process, Dask 1 and 2 workers) and the QuasarNP side by side.
#
# usage: bash experiments/speed/measure.sh [OUTDIR]   (default /tmp/surveynet-speed)
# Mocks and converted weights are kept in OUTDIR and reused; figures go to OUTDIR/*.json|txt.
# Report the load average printed at the start and the end: every figure scales with it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-/tmp/surveynet-speed}
mkdir -p "$OUT"
echo "start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) cores $(nproc)"

echo "== CLI start-up (10 runs each, seconds)"
for args in "--help" "quasar predict --help"; do
  t=()
  for _ in $(seq 10); do
    t+=("$( { /usr/bin/time -f %e surveynet $args > /dev/null; } 2>&1 )")
  done
  echo "surveynet $args: $(printf '%s\n' "${t[@]}" | sort -n | tr '\n' ' ')"
done

echo "== readers (fitsio vs astropy vs surveynet) on the 2,000-spectrum coadd"
[ -f /tmp/sp2000/coadd-000.fits ] || surveynet simulate spectra --n 2000 --seed 5 --n-files 1 \
  --out /tmp/sp2000 --quiet
python "$ROOT/experiments/speed/readers.py" /tmp/sp2000/coadd-000.fits | tee "$OUT/readers.txt"

echo "== read + rebin + normalise (one core) and quasar end to end"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python - "$OUT" <<'PY' | tee "$OUT/read_preprocess.json"
import json, sys
from surveynet.bench import time_call
from surveynet.io.spectra import read_spectra
from surveynet.quasar.config import GridConfig
from surveynet.quasar.preprocess import preprocess
path, grid = "/tmp/sp2000/coadd-000.fits", GridConfig.log()
t = time_call(lambda: preprocess(read_spectra(path, resolution=False), grid), min_time=1.0)
print(json.dumps({"read_rebin_normalise_spectra_per_s_1core": 2000 / t}))
PY
python - "$OUT" <<'PY' | tee "$OUT/quasar_e2e.json"
import json, sys
from surveynet.quasar.bench import e2e_figures
print(json.dumps(e2e_figures(workdir=sys.argv[1]), indent=1))
PY

echo "== side by side with QuasarNP"
RUNS=${RUNS:-3} bash "$ROOT/experiments/speed/vs_quasarnp.sh" /tmp/sp2000/coadd-000.fits \
  | tee "$OUT/vs_quasarnp.txt"
echo "end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
