"""Where the S/N >= 5 goals are lost on the held-out mock, and how precisely 30 images measure them.

Usage::

    python experiments/transient/diagnose.py CUTDIR INFER.fits [INFER.fits ...] \
        [--out REPORT.json] [--n-boot 2000]

``CUTDIR`` holds the labelled ``cutouts.fits`` of the held-out mock (evaluate_bundled.sh),
``INFER.fits`` the scores of each model on it (``predict``). For every model, on the non-edge
candidates with S/N >= 5 (and S/N >= 10):

- ROC AUC and FPR at TPR 99 %, with the score threshold that gives TPR 99 %;
- the bogus candidates above that threshold and the reals below it, counted by truth kind
  (``cosmic``, ``hot_pixel``, ``noise`` = unattributed residuals, ``blend`` = the closest
  candidate of two or more real sources, which gmadet's rule labels bogus although it is a
  real change, ...);
- the same figures with the ``blend`` candidates left out (ambiguous labels, not classifier
  errors), i.e. the label-noise floor that gmadet's rule puts under the FPR;
- a bootstrap over the held-out IMAGES (candidates of one image are correlated: same PSF, same
  subtraction): median and 68 % / 95 % intervals of AUC and FPR@TPR99. TPR 99 % on ~850 reals
  is set by the ~9 lowest-scored reals, and FPR 1 % by ~14 bogus, so the interval says whether
  a figure is distinguishable from its goal on this many images.
- the ZTF regime: reals whose reference cutout has a bright source near the centre (robust
  z-score peak >= 50 in the central 5 x 5 px) and whose difference is faint (peak < 20): the
  regime of the 9 ZTF triplets that the triplet model misses (experiments/transient/README.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from surveynet.transient.evaluate import fpr_at_tpr, roc_auc, roc_curve
from surveynet.transient.preprocess import to_network


def scores_for(c: Table, infer: str | Path) -> np.ndarray:
    """P(real) of a model's ``INFER.fits`` in the row order of the candidates ``c``.

    NaN where ``predict`` did not score a candidate.
    """
    t = Table.read(infer, hdu="SCORES")
    m = dict(zip(np.asarray(t["CANDID"]), np.asarray(t["LABEL1"]), strict=True))
    return np.array([m.get(i, np.nan) for i in c["CANDID"]], float)


def figures(y: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    """AUC, FPR at TPR 99 % and the threshold that reaches TPR 99 %."""
    fpr, tpr, _ = roc_curve(y, s)
    real = np.sort(s[y])
    thr = float(real[int(np.floor(0.01 * len(real)))])
    return roc_auc(fpr, tpr), fpr_at_tpr(y, s), thr


def bootstrap(
    y: np.ndarray, s: np.ndarray, img: np.ndarray, n_boot: int, rng: np.random.Generator
) -> dict[str, list[float]]:
    """Percentiles (2.5, 16, 50, 84, 97.5) of AUC and FPR@TPR99 resampling whole images."""
    imgs = np.unique(img)
    rows = {i: np.nonzero(img == i)[0] for i in imgs}
    auc, fpr = [], []
    for _ in range(n_boot):
        take = np.concatenate([rows[i] for i in rng.choice(imgs, len(imgs))])
        yy, ss = y[take], s[take]
        if yy.all() or not yy.any():
            continue
        a, f, _ = figures(yy, ss)
        auc.append(a)
        fpr.append(f)
    q = [2.5, 16, 50, 84, 97.5]
    return {
        "auc_percentiles": [round(float(v), 5) for v in np.percentile(auc, q)],
        "fpr_at_tpr99_percentiles": [round(float(v), 5) for v in np.percentile(fpr, q)],
        "p_fpr_le_1pct": round(float(np.mean(np.asarray(fpr) <= 0.01)), 4),
        "p_auc_ge_0995": round(float(np.mean(np.asarray(auc) >= 0.995)), 4),
    }


def by_kind(kind: np.ndarray, sel: np.ndarray) -> dict[str, int]:
    """Counts of the selected candidates by truth kind."""
    k, n = np.unique(kind[sel], return_counts=True)
    return {str(a): int(b) for a, b in zip(k, n, strict=True)}


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cutdir", type=Path)
    ap.add_argument("infer", nargs="+", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cfile = a.cutdir / "cutouts.fits" if a.cutdir.is_dir() else a.cutdir
    c = Table.read(cfile, hdu="CANDIDATES")
    keep = ~np.asarray(c["EDGE"], bool)
    y = np.asarray(c["LABEL"]) == 1
    snr = np.asarray(c["SNR"], float)
    kind = np.array([str(k).strip() for k in c["TRUTH_KIND"]])
    img = np.asarray(c["FILE"]).astype(str)
    # ZTF regime from the raw cutouts (robust z-score per channel, as the bundled models)
    x = to_network(
        np.asarray(fits.getdata(cfile, "CUTOUTS"), np.float32), channels="triplet", norm="zscore"
    )
    zref = x[:, 1, 14:19, 14:19].max(axis=(1, 2))
    zdiff = x[:, 2, 14:19, 14:19].max(axis=(1, 2))
    ztf_regime = (zref >= 50) & (zdiff < 20)
    rep: dict[str, object] = {}
    for f in a.infer:
        s = scores_for(c, f)
        entry: dict[str, object] = {}
        for lo in (5.0, 10.0):
            base = keep & (snr >= lo) & np.isfinite(s)
            auc, fpr, thr = figures(y[base], s[base])
            nb = base & (kind != "blend")
            auc_nb, fpr_nb, _ = figures(y[nb], s[nb])
            rng = np.random.default_rng(a.seed)
            entry[f"snr_ge_{lo:g}"] = {
                "n_real": int(y[base].sum()),
                "n_bogus": int((~y[base]).sum()),
                "auc": round(auc, 5),
                "fpr_at_tpr99": round(fpr, 5),
                "threshold_tpr99": round(thr, 5),
                "bogus_above_threshold_by_kind": by_kind(kind, base & ~y & (s >= thr)),
                "reals_below_threshold_by_kind": by_kind(kind, base & y & (s < thr)),
                "without_blends": {"auc": round(auc_nb, 5), "fpr_at_tpr99": round(fpr_nb, 5)},
                "bootstrap_by_image": bootstrap(y[base], s[base], img[base], a.n_boot, rng),
                "ztf_regime_reals": {
                    "n": int((base & y & ztf_regime).sum()),
                    "frac_p_ge_0.5": round(float(np.mean(s[base & y & ztf_regime] >= 0.5)), 4)
                    if (base & y & ztf_regime).any()
                    else None,
                },
            }
        rep[f.stem] = entry
    text = json.dumps(rep, indent=1) + "\n"
    if a.out:
        a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
