"""Triplet/difference figures pooled over several held-out sets, with an image bootstrap.

Usage::

    python experiments/transient/pooled.py EVALDIR [EVALDIR ...] [--model rb_triplet_mock] \
        [--n-boot 2000] [--out POOLED.json]

Each EVALDIR is a folder of ``evaluate_bundled.sh`` (``cut/cutouts.fits`` and
``MODEL/infer_MODEL.fits``). The non-edge candidates with S/N >= 5 of all folders are pooled
(one FPR at TPR 99 % over all of them, not a mean of the sets' figures: TPR 99 % on ~2,800 reals
is set by ~28 reals, so a single set measures it coarsely); the bootstrap resamples whole images
of all sets. Prints and writes AUC, FPR at TPR 99 %, the same without ``blend`` candidates (the
real changes that gmadet's labelling rule calls bogus), and the bogus above the threshold by kind.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from astropy.table import Table
from diagnose import bootstrap, figures, scores_for


def load(evaldir: Path, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores, truth kinds and science files of one folder's candidates.

    Only the non-edge candidates with S/N >= 5 and a score are kept.
    """
    c = Table.read(evaldir / "cut" / "cutouts.fits", hdu="CANDIDATES")
    s = scores_for(c, evaldir / model / f"infer_{model}.fits")
    keep = ~np.asarray(c["EDGE"], bool) & (np.asarray(c["SNR"], float) >= 5) & np.isfinite(s)
    kind = np.array([str(k).strip() for k in c["TRUTH_KIND"]])
    files = np.asarray(c["FILE"]).astype(str)
    return (np.asarray(c["LABEL"]) == 1)[keep], s[keep], kind[keep], files[keep]


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("evaldirs", nargs="+", type=Path)
    ap.add_argument("--model", default="rb_triplet_mock")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    parts = [load(d, a.model) for d in a.evaldirs]
    y, s, kind = (np.concatenate([p[i] for p in parts]) for i in range(3))
    img = np.concatenate(
        [np.char.add(f"{d}:", p[3]) for d, p in zip(a.evaldirs, parts, strict=True)]
    )
    auc, fpr, thr = figures(y, s)
    nb = kind != "blend"
    auc_nb, fpr_nb, _ = figures(y[nb], s[nb])
    fp = Counter(kind[~y & (s >= thr)].tolist())
    rep = {
        "sets": [str(d) for d in a.evaldirs],
        "model": a.model,
        "n_real": int(y.sum()),
        "n_bogus": int((~y).sum()),
        "auc": round(auc, 5),
        "fpr_at_tpr99": round(fpr, 5),
        "threshold_tpr99": round(thr, 5),
        "without_blends": {"auc": round(auc_nb, 5), "fpr_at_tpr99": round(fpr_nb, 5)},
        "bogus_above_threshold_by_kind": dict(sorted(fp.items())),
        "bootstrap_by_image": bootstrap(y, s, img, a.n_boot, np.random.default_rng(a.seed)),
    }
    text = json.dumps(rep, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
