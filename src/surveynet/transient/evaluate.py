"""``checksim`` and ``checkinfer``: recovery of the real sources and classifier diagnostics.

``checksim`` (gmadet-checksim, realbogus.md §1.4) reads the ``CROSSMATCH`` table of a labelled
``cutouts.fits``: recovered fraction against the true magnitude and against the forced S/N at
the true position on the difference image, with plots and ``checksim.json``.

``checkinfer`` (gmadet-cnn_checkinfer, §1.8, plus what the issue asks): for labelled scores
(``INFER.fits`` of labelled cutouts) the P(real) histograms of real and bogus candidates, the
ROC curve and AUC, a table of TPR/FPR for each threshold of ``evaluate.thresholds`` overall and
per magnitude and S/N bin (``threshold_table.ecsv``), the FPR at TPR 99 %, and a gallery of the
most confident errors (cutouts read back through ``SOURCE``/``ROW``); ``checkinfer.json``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.fits import atomic_path
from surveynet.transient.config import EvaluateConfig

__all__ = ["checkinfer", "checksim", "fpr_at_tpr", "roc_auc", "roc_curve", "threshold_table"]

log = logging.getLogger(__name__)


def roc_curve(
    labels: NDArray[Any], scores: NDArray[Any]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """ROC curve (FPR, TPR, thresholds), thresholds decreasing, ties grouped.

    Parameters
    ----------
    labels : ndarray
        1 real, 0 bogus.
    scores : ndarray
        P(real).

    Returns
    -------
    fpr, tpr, thresholds : ndarray

    Examples
    --------
    >>> fpr, tpr, _ = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> roc_auc(fpr, tpr)
    0.75
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, float)
    o = np.argsort(-s, kind="mergesort")
    s, y = s[o], y[o]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[distinct]
    fp = np.cumsum(~y)[distinct]
    npos, nneg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tpr = np.r_[0.0, tp / npos]
    fpr = np.r_[0.0, fp / nneg]
    thr = np.r_[np.inf, s[distinct]]
    return fpr, tpr, thr


def roc_auc(fpr: NDArray[Any], tpr: NDArray[Any]) -> float:
    """Area under a ROC curve (trapezoids).

    Parameters
    ----------
    fpr, tpr : ndarray
        From :func:`roc_curve`.

    Returns
    -------
    float
    """
    return float(np.sum(np.diff(fpr) * 0.5 * (tpr[1:] + tpr[:-1])))


def fpr_at_tpr(labels: NDArray[Any], scores: NDArray[Any], tpr_target: float = 0.99) -> float:
    """Lowest FPR at which the TPR reaches ``tpr_target``.

    Parameters
    ----------
    labels, scores : ndarray
        Truth and P(real).
    tpr_target : float
        Target TPR.

    Returns
    -------
    float
        NaN without real or bogus samples.
    """
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(y, scores)
    ok = tpr >= tpr_target - 1e-12
    return float(fpr[ok].min())


def threshold_table(
    labels: NDArray[Any],
    scores: NDArray[Any],
    thresholds: tuple[float, ...],
    *,
    values: NDArray[Any] | None = None,
    bins: tuple[float, ...] | None = None,
    name: str = "ALL",
) -> Table:
    """TPR and FPR for each threshold, overall or per bin of ``values``.

    Parameters
    ----------
    labels, scores : ndarray
        Truth and P(real).
    thresholds : tuple of float
        P(real) thresholds.
    values : ndarray, optional
        Binning quantity (magnitude, S/N).
    bins : tuple of float, optional
        Bin edges.
    name : str
        Binning name written in the ``BIN`` column.

    Returns
    -------
    astropy.table.Table
        ``BIN``, ``LO``, ``HI``, ``THRESHOLD``, ``N_REAL``, ``N_BOGUS``, ``TPR``, ``FPR``.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, float)
    rows = []
    edges = (
        [(-np.inf, np.inf)] if values is None or bins is None else list(itertools.pairwise(bins))
    )
    for lo, hi in edges:
        m = np.ones(len(y), bool) if values is None else (values >= lo) & (values < hi)
        for t in thresholds:
            npos, nneg = int((y & m).sum()), int((~y & m).sum())
            tpr = float(((s >= t) & y & m).sum() / npos) if npos else np.nan
            fpr = float(((s >= t) & ~y & m).sum() / nneg) if nneg else np.nan
            rows.append((name, lo, hi, t, npos, nneg, tpr, fpr))
    return Table(
        rows=rows,
        names=("BIN", "LO", "HI", "THRESHOLD", "N_REAL", "N_BOGUS", "TPR", "FPR"),
        dtype=("U8", "f8", "f8", "f8", "i8", "i8", "f8", "f8"),
    )


def _savefig(fig: Any, path: Path) -> Path:
    """Save a figure atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically."""
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    return path


def checksim(
    cutouts: str | os.PathLike[str], out: str | os.PathLike[str], config: EvaluateConfig
) -> dict[str, Any]:
    """Recovered fraction of the real sources against magnitude and S/N.

    Parameters
    ----------
    cutouts : path
        Labelled ``cutouts.fits`` (or its folder).
    out : path
        Report folder (``checksim.json``, ``detection_fraction_mag.png``,
        ``detection_fraction_snr.png``, ``sim_mag_distrib.png``).
    config : EvaluateConfig
        Bins.

    Returns
    -------
    dict
        The figures written to ``checksim.json``.

    Raises
    ------
    InputError
        The cutouts are not labelled (no ``CROSSMATCH``).
    """
    from surveynet.transient import plots
    from surveynet.transient.cutouts import read_cutouts

    _, _, xm = read_cutouts(cutouts)
    if xm is None:
        raise InputError("no CROSSMATCH HDU: run cutouts --training", path=cutouts)
    outd = Path(out)
    outd.mkdir(parents=True, exist_ok=True)
    det = np.asarray(xm["DETECTED"], bool) if len(xm) else np.zeros(0, bool)
    mag = np.asarray(xm["MAG"], float) if len(xm) else np.zeros(0)
    snr = np.asarray(xm["FORCED_SNR"], float) if len(xm) else np.zeros(0)

    def frac(values: NDArray[Any], bins: tuple[float, ...]) -> list[dict[str, Any]]:
        rows = []
        for lo, hi in itertools.pairwise(bins):
            m = (values >= lo) & (values < hi)
            n = int(m.sum())
            rows.append(
                {
                    "lo": lo,
                    "hi": hi,
                    "n": n,
                    "detected": int(det[m].sum()),
                    "fraction": float(det[m].mean()) if n else None,
                }
            )
        return rows

    res = {
        "n_real_sources": len(det),
        "n_detected": int(det.sum()),
        "fraction": float(det.mean()) if len(det) else None,
        "by_mag": frac(mag, config.mag_bins),
        "by_snr": frac(snr, config.snr_bins),
    }
    _savefig(
        plots.recovery_plot(mag, det, config.mag_bins, "true magnitude"),
        outd / "detection_fraction_mag.png",
    )
    _savefig(
        plots.recovery_plot(snr, det, config.snr_bins, "forced S/N on the difference", log=True),
        outd / "detection_fraction_snr.png",
    )
    _savefig(plots.mag_hist(mag, det), outd / "sim_mag_distrib.png")
    _write_json(outd / "checksim.json", res)
    return res


def checkinfer(
    infer: str | os.PathLike[str], out: str | os.PathLike[str], config: EvaluateConfig
) -> dict[str, Any]:
    """Diagnostics of labelled scores.

    Parameters
    ----------
    infer : path
        ``INFER.fits`` of labelled cutouts (``LABEL`` column).
    out : path
        Report folder.
    config : EvaluateConfig
        Thresholds, bins, gallery size.

    Returns
    -------
    dict
        The figures written to ``checkinfer.json`` (AUC, FPR at TPR 99 %, per-S/N figures).

    Raises
    ------
    InputError
        No ``SCORES`` HDU or no labels.
    """
    from surveynet.transient import plots

    p = Path(infer)
    try:
        t = Table.read(p, hdu="SCORES")
    except (OSError, KeyError) as exc:
        raise InputError(f"no SCORES table ({exc})", path=p) from exc
    if "LABEL" not in t.colnames or len(t) == 0 or (np.asarray(t["LABEL"]) < 0).all():
        raise InputError("scores have no labels (predict labelled cutouts)", path=p, column="LABEL")
    t = t[np.asarray(t["LABEL"]) >= 0]
    outd = Path(out)
    outd.mkdir(parents=True, exist_ok=True)
    y = np.asarray(t["LABEL"]) == 1
    s = np.asarray(t["LABEL1"], float)
    snr = np.asarray(t["SNR"], float) if "SNR" in t.colnames else np.full(len(t), np.nan)
    # bins of the magnitude measured on the difference (defined for real and bogus alike)
    mag = np.asarray(t["MAG"], float) if "MAG" in t.colnames else np.full(len(t), np.nan)
    fpr, tpr, _ = roc_curve(y, s)
    auc = roc_auc(fpr, tpr) if y.any() and (~y).any() else float("nan")
    res: dict[str, Any] = {
        "n": len(t),
        "n_real": int(y.sum()),
        "n_bogus": int((~y).sum()),
        "auc": auc,
        "fpr_at_tpr99": fpr_at_tpr(y, s, 0.99),
        "accuracy_at_0.5": float(((s >= 0.5) == y).mean()),
    }
    for name, m in (("snr_ge_5", snr >= 5), ("snr_lt_5", snr < 5)):
        yy, ss = y[m], s[m]
        ok = yy.any() and (~yy).any()
        f2, t2, _ = roc_curve(yy, ss) if ok else (np.zeros(1), np.zeros(1), None)
        res[name] = {
            "n_real": int(yy.sum()),
            "n_bogus": int((~yy).sum()),
            "auc": roc_auc(f2, t2) if ok else None,
            "fpr_at_tpr99": fpr_at_tpr(yy, ss, 0.99) if ok else None,
        }
    tabs = [threshold_table(y, s, config.thresholds)]
    tabs.append(
        threshold_table(y, s, config.thresholds, values=mag, bins=config.mag_bins, name="MAG")
    )
    tabs.append(
        threshold_table(y, s, config.thresholds, values=snr, bins=config.snr_bins, name="SNR")
    )
    from astropy.table import vstack

    table = vstack(tabs)
    with atomic_path(outd / "threshold_table.ecsv", overwrite=True) as tmp:
        table.write(tmp, format="ascii.ecsv")
    _savefig(plots.prob_hist(s, y), outd / "distrib_prob.png")
    _savefig(plots.roc_plot({"all": (fpr, tpr, auc)}), outd / "roc.png")
    # gallery of the most confident errors
    err_fp = np.nonzero(~y)[0][np.argsort(-s[~y])][: config.n_gallery // 2]
    err_fn = np.nonzero(y)[0][np.argsort(s[y])][: config.n_gallery // 2]
    picks = [(int(i), "FP") for i in err_fp if s[i] >= 0.5] + [
        (int(i), "FN") for i in err_fn if s[i] < 0.5
    ]
    stamps, titles = [], []
    cache: dict[str, Any] = {}
    for i, kind in picks:
        src = str(t["SOURCE"][i]) if "SOURCE" in t.colnames else ""
        try:
            if src not in cache:
                from surveynet.transient.predict import _read_input

                cache[src] = _read_input(Path(src))[0]
            stamps.append(cache[src][int(t["ROW"][i]), -1])
        except (InputError, OSError, FileNotFoundError):
            continue
        kindname = str(t["TRUTH_KIND"][i]) if "TRUTH_KIND" in t.colnames else ""
        titles.append(f"{kind} {kindname} p={s[i]:.2f} S/N={snr[i]:.1f}")
    res["n_gallery"] = len(stamps)
    if stamps:
        _savefig(plots.gallery(stamps, titles), outd / "gallery_errors.png")
    _write_json(outd / "checkinfer.json", res)
    return res
