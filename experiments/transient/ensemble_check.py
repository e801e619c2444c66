"""Does averaging two models' logits lower the S/N >= 5 FPR at TPR 99 %? (fourth session)

    python experiments/transient/ensemble_check.py EVALDIR NAME=INFER.fits [NAME=INFER.fits ...]

EVALDIR is a folder of ``evaluate_bundled.sh`` (its ``cut/cutouts.fits``); each INFER.fits holds
one model's scores on it (``surveynet transient predict``). Prints AUC and FPR at TPR 99 % (non-edge
candidates, S/N >= 5, as ``diagnose.py``) of every model and of every pair averaged in logit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from diagnose import figures, scores_for


def main(argv: list[str]) -> None:
    """Command line."""
    c = Table.read(Path(argv[0]) / "cut" / "cutouts.fits", hdu="CANDIDATES")
    base = ~np.asarray(c["EDGE"], bool) & (np.asarray(c["SNR"], float) >= 5)
    y = np.asarray(c["LABEL"]) == 1
    scores = {k: scores_for(c, v) for k, v in (a.split("=", 1) for a in argv[1:])}

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p))

    names = list(scores)
    for k in names:
        auc, fpr, _ = figures(y[base], scores[k][base])
        print(f"{k}: AUC {auc:.5f}, FPR@TPR99 {fpr:.4f}")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            s = 0.5 * (logit(scores[a]) + logit(scores[b]))
            auc, fpr, _ = figures(y[base], s[base])
            print(f"{a} + {b}: AUC {auc:.5f}, FPR@TPR99 {fpr:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
