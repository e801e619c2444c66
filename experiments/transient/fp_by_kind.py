"""Share of each bogus kind above the TPR-99 % threshold: the network and the matched filter.

    python experiments/transient/fp_by_kind.py EVALDIR [INFER.fits]

EVALDIR is a folder of ``evaluate_bundled.sh`` (``cut/``, ``det/``, ``sim/``); INFER.fits the
model's scores (default: the bundled triplet model's in EVALDIR). For non-edge candidates with
S/N >= 5 and for each bogus truth kind, the reals together with the bogus of that kind are scored
at TPR 99 % by the model and by the matched-filter observer of ``ideal_observer.py`` (true PSF and
noise map; it does not model subtraction residuals, so it is a reference, not a bound). Prints
how many bogus of each kind pass and the FPR the model would have with that kind removed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from diagnose import figures, scores_for
from ideal_observer import ideal_scores


def main(argv: list[str]) -> None:
    """Command line."""
    e = Path(argv[0])
    infer = argv[1] if len(argv) > 1 else e / "rb_triplet_mock" / "infer_rb_triplet_mock.fits"
    c = Table.read(e / "cut" / "cutouts.fits", hdu="CANDIDATES")
    base = ~np.asarray(c["EDGE"], bool) & (np.asarray(c["SNR"], float) >= 5)
    y = np.asarray(c["LABEL"]) == 1
    kind = np.array([str(k).strip() for k in c["TRUTH_KIND"]])
    net = scores_for(c, infer)
    ideal = ideal_scores(c, e / "det", e / "sim")
    _, fpr, thr = figures(y[base], net[base])
    n_bogus = int((base & ~y).sum())
    n_fp = int((base & ~y & (net >= thr)).sum())
    print(f"all: {n_fp} of {n_bogus} bogus above the threshold, FPR {fpr:.4f}")
    for k in np.unique(kind[base & ~y]):
        sel = base & (y | (kind == k))
        nk = int((base & ~y & (kind == k)).sum())
        above = int((base & ~y & (kind == k) & (net >= thr)).sum())
        _, f_ideal, _ = figures(y[sel], ideal[sel])
        print(
            f"{k}: {above} of {nk} above the model's threshold; matched filter passes "
            f"{f_ideal:.3f} of them; FPR without this kind {(n_fp - above) / (n_bogus - nk):.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
