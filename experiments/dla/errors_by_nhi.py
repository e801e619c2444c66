"""Position errors of a DLA catalogue by truth log N_HI and S/N (sixth-round diagnosis).

    python experiments/dla/errors_by_nhi.py CATALOG.fits TRUTH.fits

For each truth absorber of log N_HI >= 20.3 inside a catalogued sightline's searched range, the
nearest catalogue DLA (LYB rows left out): the share within 10 A, the share 10-40 A away, the
median |dlambda| and the mean dlambda of those within 40 A, per log N_HI bin, for 1 < S/N <= 3
and S/N > 3 (experiments/dla/README.md, sixth round).
"""

from __future__ import annotations

import sys

import numpy as np
from astropy.table import Table

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import read_catalog

BINS = [(20.3, 20.6), (20.6, 21.0), (21.0, 21.3), (21.3, 21.6), (21.6, 21.9), (21.9, 22.2)]
BINS.append((22.2, 23.0))


def main(cat_path: str, truth_path: str) -> None:
    cat = read_catalog(cat_path)
    truth = Table.read(truth_path, hdu="DLA_META")
    q = cat.qsos
    searched = {
        int(t): (a, b, s)
        for t, a, b, s in zip(q["TARGETID"], q["WAVE_MIN"], q["WAVE_MAX"], q["S2N"], strict=True)
    }
    found: dict[int, list[float]] = {}
    for r in cat.dlas:
        if r["ABSORBER_TYPE"] == "DLA":
            found.setdefault(int(r["TARGETID"]), []).append((1 + r["Z_DLA"]) * LYA_REST)
    rows = []
    for r in truth:
        tid = int(r["TARGETID"])
        if tid not in searched or r["NHI"] < 20.3:
            continue
        a, b, s2n = searched[tid]
        w = (1 + r["Z_DLA"]) * LYA_REST
        if a <= w <= b:
            dw = min((p - w for p in found.get(tid, [])), key=abs, default=1e9)
            rows.append((s2n, r["NHI"], dw))
    arr = np.array(rows).reshape(-1, 3)
    for lo, hi in ((1.0, 3.0), (3.0, np.inf)):
        m = (arr[:, 0] > lo) & (arr[:, 0] <= hi)
        print(f"S/N {lo}-{hi}")
        for a, b in BINS:
            dw = arr[m & (arr[:, 1] >= a) & (arr[:, 1] < b), 2]
            if not dw.size:
                continue
            near = np.abs(dw) <= 40
            print(
                f"  log N {a}-{b}: n={dw.size:4d}  <10 A {np.mean(np.abs(dw) <= 10):.3f}  "
                f"10-40 A {np.mean((np.abs(dw) > 10) & near):.3f}  "
                f"median |dw| {np.median(np.abs(dw)):.1f} A  "
                f"mean dw (<40 A) {np.mean(dw[near]):.1f}"
            )


if __name__ == "__main__":
    main(*sys.argv[1:3])
