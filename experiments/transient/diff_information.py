"""What the difference-only model cannot see: its false positives by kind and by convolved frame.

Usage::

    python experiments/transient/diff_information.py EVALDIR [EVALDIR ...] [--model rb_diff_mock]

For the pooled non-edge S/N >= 5 candidates of the folders (as ``pooled.py``), the bogus above
the model's TPR-99 % threshold are split by truth kind and by the frame that the Alard-Lupton
kernel convolved (``CONVOLVD`` in the difference header): when the science frame is the sharper
one it is convolved, and a cosmic ray or hot pixel on it becomes a blob of the kernel's shape in
the difference, which the difference stamp tells from a point source only by its width (the
kernel is narrower than the PSF, by little when the science is much sharper), while the raw
science stamp (seen by the triplet model) still shows it sharp. Residuals of stars and galaxies
sit on a source that only the reference stamp shows. Prints the counts and the share of the
false positives that fall in these two cases.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from astropy.io import fits
from diagnose import figures
from pooled import load


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("evaldirs", nargs="+", type=Path)
    ap.add_argument("--model", default="rb_diff_mock")
    a = ap.parse_args()
    parts, conv = [], []
    for d in a.evaldirs:
        y_d, s_d, kind_d, files = load(d, a.model)
        which = {
            f: str(fits.getval(d / "det" / f.replace("_sci.fits", "_diff.fits"), "CONVOLVD", 0))
            for f in np.unique(files)
        }
        parts.append((y_d, s_d, kind_d))
        conv.append(np.array([which[f].strip() for f in files]))
    y, s, kind = (np.concatenate([p[i] for p in parts]) for i in range(3))
    cv = np.concatenate(conv)
    _, fpr, thr = figures(y, s)
    fp = ~y & (s >= thr)
    print(f"{a.model}: FPR at TPR 99 % {fpr:.4f}, {fp.sum()} false positives of {(~y).sum()}")
    sci_art = np.isin(kind, ["cosmic", "hot_pixel"])
    on_source = np.isin(kind, ["star", "galaxy", "saturated_star", "bleed"])
    for name in ("science", "reference"):
        sel = cv == name
        by = Counter(kind[fp & sel].tolist())
        print(
            f"  pairs with the {name} convolved: {sel[~y].sum()} bogus, {(fp & sel).sum()} pass;",
            dict(sorted(by.items())),
        )
    blind = fp & ((sci_art & (cv == "science")) | on_source)
    print(
        f"  science-frame artefacts in pairs whose science was convolved + residuals on a "
        f"source seen only in the reference: {blind.sum()} of {fp.sum()} "
        f"({blind.sum() / max(fp.sum(), 1):.1%}); FPR without them "
        f"{(fp & ~blind).sum() / (~y).sum():.4f}"
    )


if __name__ == "__main__":
    main()
