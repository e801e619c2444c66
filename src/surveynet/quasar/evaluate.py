"""Evaluate a QuasarNET catalogue against a truth table: purity, completeness, dv, confusion.

Definitions follow Farr et al. 2020 (``jfarr03/QuasarNET_analysis:py/plot.py``; quasarnet.md §10):

- velocity error ``dv = c (z_QN - z_true) / (1 + z_true)`` in km/s; a redshift is *correct* when
  ``|dv| <= dv_max`` (``evaluate.dv_max``, 6000 km/s);
- a spectrum is *flagged* at threshold ``c_th`` when at least ``n_th`` (``predict.n_th``)
  emission-line confidences exceed ``c_th`` (the ``is_qso`` rule of quasarnet.md §4.1);
- purity = #(flagged ∧ true QSO-or-GALAXY ∧ correct z ∧ not BAD) / #(flagged ∧ not BAD);
- completeness = #(flagged ∧ correct z ∧ true QSO) / #(true QSO);
- the *crossover* is the threshold where purity = completeness (linear interpolation on the grid);
- sigma(dv) is the standard deviation of dv over true quasars flagged at the crossover with a
  correct redshift (a robust 1.4826·MAD is reported too);
- truth rows that visual inspection could not confirm (``Z_CONF != 3``, or ``DEAD_FIBRE``: no
  data at all) count as BAD;
- the catastrophic rate is the fraction of true quasars flagged at the crossover whose redshift
  is wrong (``|dv| > dv_max``).

Class confusion (Busca & Balland 2018): true STAR, GALAXY, QSO_LZ (z < 2.1), QSO_HZ (z >= 2.1),
BAD against predicted NOT_QSO, QSO_LZ, QSO_HZ at the crossover threshold.

Purity and completeness are also reported at the fixed threshold ``predict.c_th`` (keys
``purity_at_<c_th>``, ``completeness_at_<c_th>``), which is also the fallback when there is no
crossover. :func:`evaluate` refuses to replace an existing ``metrics.json`` unless asked, and
writes the resolved config beside it (``config.json``).

Calibration (issue 23; definitions in :mod:`surveynet.quasar.calibrate`): the reliability
diagram (``reliability.png``) and the expected and maximum calibration errors (ECE, MCE;
``calibrate.n_bins`` equal-width bins) of the raw score (the ``predict.n_th``-th largest line
confidence) and, when the catalogue has it, of the calibrated ``P_QSO_QN`` (whose purity =
completeness crossover is also reported), under ``calibration`` in ``metrics.json``.
:func:`calibrate_catalog` fits the calibration map on a held-out catalogue with truth
(``surveynet quasar calibrate``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.constants import C_KMS as _C_KMS
from surveynet.errors import InputError
from surveynet.quasar.calibrate import MCE_MIN_COUNT, Calibration, calibration_errors
from surveynet.quasar.catalog import CATALOG_HDU, read_catalog
from surveynet.quasar.config import EvaluateConfig, PredictConfig, QuasarConfig

log = logging.getLogger(__name__)

__all__ = [
    "Matched",
    "calibrate_catalog",
    "compute_metrics",
    "confusion_matrix",
    "crossover",
    "dv_kms",
    "evaluate",
    "example_spectra_figure",
    "flagged",
    "format_metrics",
    "match",
    "purity_completeness",
    "read_catalog",
    "read_truth_table",
]

C_KMS = _C_KMS
"""Speed of light in km/s (:data:`surveynet.constants.C_KMS`)."""

TRUE_CLASSES = ("STAR", "GALAXY", "QSO_LZ", "QSO_HZ", "BAD")
PRED_CLASSES = ("NOT_QSO", "QSO_LZ", "QSO_HZ")
Z_HZ = 2.1
"""Boundary between low- and high-redshift quasars (Busca & Balland 2018)."""


def dv_kms(z_pred: NDArray[Any], z_true: NDArray[Any]) -> NDArray[np.float64]:
    """Return the velocity error ``c (z_pred - z_true) / (1 + z_true)`` in km/s.

    Parameters
    ----------
    z_pred, z_true : ndarray
        Predicted and true redshifts (broadcast together).

    Returns
    -------
    ndarray of float64
        dv in km/s.

    Examples
    --------
    >>> float(dv_kms(np.array([2.02]), np.array([2.0]))[0])  # doctest: +ELLIPSIS
    1998.6...
    """
    zp = np.asarray(z_pred, dtype=np.float64)
    zt = np.asarray(z_true, dtype=np.float64)
    return C_KMS * (zp - zt) / (1.0 + zt)


def flagged(
    c_lines: NDArray[Any], c_th: float, n_th: int = PredictConfig.n_th
) -> NDArray[np.bool_]:
    """Apply the ``is_qso`` rule: at least ``n_th`` line confidences above ``c_th``.

    Parameters
    ----------
    c_lines : ndarray of shape (n_spec, n_lines)
        Line confidences (NaN rows = spectra that could not be processed: never flagged).
    c_th : float
        Confidence threshold.
    n_th : int
        Minimum number of lines (``predict.n_th``).

    Returns
    -------
    ndarray of bool, shape (n_spec,)
        Flagged spectra.

    Examples
    --------
    >>> flagged(np.array([[0.9, 0.1], [0.2, 0.3], [np.nan, np.nan]]), 0.5).tolist()
    [True, False, False]
    """
    c = np.nan_to_num(np.asarray(c_lines, dtype=np.float64), nan=-1.0)
    return np.asarray((c > c_th).sum(axis=1) >= n_th)


@dataclass
class Matched:
    """Catalogue rows joined to the truth on TARGETID.

    Attributes
    ----------
    targetid : ndarray of int64
    c_lines : ndarray of shape (n, n_lines)
    z_qn : ndarray of float64
        The catalogue ``Z_QN`` (zbest).
    c_bal : ndarray of float64 or None
    objtype : ndarray of str
        Truth class (QSO, STAR, GALAXY, BAD).
    z_true : ndarray of float64
    is_bal : ndarray of bool or None
    """

    targetid: NDArray[np.int64]
    c_lines: NDArray[np.float64]
    z_qn: NDArray[np.float64]
    c_bal: NDArray[np.float64] | None
    objtype: NDArray[np.str_]
    z_true: NDArray[np.float64]
    is_bal: NDArray[np.bool_] | None

    @property
    def is_qso_true(self) -> NDArray[np.bool_]:
        """True quasars."""
        return np.asarray(self.objtype == "QSO")

    @property
    def dv(self) -> NDArray[np.float64]:
        """Velocity error of ``Z_QN`` in km/s (NaN where Z_QN is NaN)."""
        return dv_kms(self.z_qn, self.z_true)


def read_truth_table(path: str | os.PathLike[str]) -> Table:
    """Read the targets of a mock truth file (:func:`surveynet.io.truth.read_truth`).

    Parameters
    ----------
    path : path
        Truth file (HDU TRUTH).

    Returns
    -------
    astropy.table.Table
        Rows with at least TARGETID, OBJTYPE, Z.

    Raises
    ------
    InputError
        Missing file, HDU or column.
    """
    from surveynet.io.truth import read_truth

    tab = read_truth(path).targets
    if "OBJTYPE" not in tab.colnames:
        raise InputError("missing column", path=path, hdu="TRUTH", column="OBJTYPE")
    return tab


def match(catalog: Table, truth: Table, *, catalog_path: str | None = None) -> Matched:
    """Join catalogue rows to truth rows on TARGETID (catalogue rows without truth raise).

    Parameters
    ----------
    catalog : astropy.table.Table
        Catalogue rows (TARGETID, C_LINES, Z_QN, optionally C_BAL).
    truth : astropy.table.Table
        Truth rows (TARGETID, OBJTYPE, Z, optionally Z_CONF, DEAD_FIBRE, IS_BAL).
    catalog_path : str, optional
        Named in the error.

    Returns
    -------
    Matched
        One entry per catalogue row; unconfirmed truth (``Z_CONF != 3``, dead fibre) is BAD.

    Raises
    ------
    InputError
        When a catalogue TARGETID is absent from the truth table.
    """
    tid = np.asarray(catalog["TARGETID"], dtype=np.int64)
    ttid = np.asarray(truth["TARGETID"], dtype=np.int64)
    order = np.argsort(ttid)
    pos = np.searchsorted(ttid, tid, sorter=order)
    pos = np.clip(pos, 0, len(ttid) - 1)
    rows = order[pos]
    missing = ttid[rows] != tid
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} catalogue TARGETIDs are not in the truth table "
            f"(first: {int(tid[missing][0])})",
            path=catalog_path,
            hdu=CATALOG_HDU,
            column="TARGETID",
        )
    objtype = np.char.strip(np.asarray(truth["OBJTYPE"]).astype(str)[rows])
    # Visual-inspection rule of the truth (quasarnet.md section 5.1): only a confident
    # classification (Z_CONF == 3) keeps its class; a spectrum without data (a dead fibre)
    # cannot be confirmed and counts as BAD, as in the DR12Q training sets.
    unconfirmed = np.zeros(len(rows), dtype=bool)
    if "Z_CONF" in truth.colnames:
        unconfirmed |= np.asarray(truth["Z_CONF"])[rows] != 3
    if "DEAD_FIBRE" in truth.colnames:
        unconfirmed |= np.asarray(truth["DEAD_FIBRE"])[rows].astype(bool)
    objtype = np.where(unconfirmed, "BAD", objtype)
    c_lines = np.asarray(catalog["C_LINES"], dtype=np.float64)
    if c_lines.ndim == 1:
        c_lines = c_lines[:, None]
    c_bal = np.asarray(catalog["C_BAL"], dtype=np.float64) if "C_BAL" in catalog.colnames else None
    if c_bal is not None and c_bal.ndim > 1:
        c_bal = c_bal[:, 0]
    is_bal = None
    if "IS_BAL" in truth.colnames:
        is_bal = np.asarray(truth["IS_BAL"])[rows].astype(bool)
    return Matched(
        targetid=tid,
        c_lines=c_lines,
        z_qn=np.asarray(catalog["Z_QN"], dtype=np.float64),
        c_bal=c_bal,
        objtype=objtype,
        z_true=np.asarray(truth["Z"], dtype=np.float64)[rows],
        is_bal=is_bal,
    )


def purity_completeness(
    m: Matched,
    c_grid: NDArray[Any],
    *,
    n_th: int = PredictConfig.n_th,
    dv_max: float = EvaluateConfig.dv_max,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Compute purity and completeness at each threshold of ``c_grid`` (see the module doc).

    Parameters
    ----------
    m : Matched
        Catalogue joined to the truth.
    c_grid : ndarray of shape (n_thresholds,)
        Confidence thresholds.
    n_th : int
        Lines above threshold needed for ``is_qso`` (``predict.n_th``).
    dv_max : float
        Correct-redshift limit in km/s (``evaluate.dv_max``).

    Returns
    -------
    purity, completeness : ndarray of shape (len(c_grid),)
        NaN where the denominator is zero.
    """
    good_z = np.abs(np.nan_to_num(m.dv, nan=np.inf)) <= dv_max
    qso = m.is_qso_true
    gal = m.objtype == "GALAXY"
    bad = m.objtype == "BAD"
    n_qso = int(qso.sum())
    pur = np.full(len(c_grid), np.nan)
    com = np.full(len(c_grid), np.nan)
    for i, c in enumerate(np.asarray(c_grid, dtype=np.float64)):
        f = flagged(m.c_lines, float(c), n_th)
        den = int((f & ~bad).sum())
        if den:
            pur[i] = float((f & (qso | gal) & good_z & ~bad).sum()) / den
        if n_qso:
            com[i] = float((f & good_z & qso).sum()) / n_qso
    return pur, com


def crossover(
    c_grid: NDArray[Any], purity: NDArray[Any], completeness: NDArray[Any]
) -> tuple[float, float]:
    """Find the threshold where purity = completeness, and the value there.

    Purity rises and completeness falls with ``c_th``; the first sign change of
    ``purity - completeness`` is interpolated linearly. Without a sign change, the threshold of
    the smallest ``|purity - completeness|`` is returned.

    Parameters
    ----------
    c_grid, purity, completeness : ndarray of shape (n,)
        Thresholds and the curves (NaN entries are skipped).

    Returns
    -------
    c_th, value : float
        NaN, NaN when no threshold has both curves finite.

    Examples
    --------
    >>> c, p, q = np.array([0.1, 0.5, 0.9]), np.array([0.9, 0.96, 0.99]), np.array([1.0, 0.98, 0.9])
    >>> crossover(c, p, q)
    (0.572727272727, 0.965454545455)
    """
    c = np.asarray(c_grid, dtype=np.float64)
    p = np.asarray(purity, dtype=np.float64)
    q = np.asarray(completeness, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(q)
    c, p, q = c[ok], p[ok], q[ok]
    if c.size == 0:
        return float("nan"), float("nan")
    d = p - q
    for i in range(len(d) - 1):
        if d[i] == 0:
            return float(c[i]), float(p[i])
        if d[i] < 0 < d[i + 1] or d[i] > 0 > d[i + 1]:
            t = d[i] / (d[i] - d[i + 1])
            cx = c[i] + t * (c[i + 1] - c[i])
            val = p[i] + t * (p[i + 1] - p[i])
            return round(float(cx), 12), round(float(val), 12)
    i = int(np.argmin(np.abs(d)))
    return float(c[i]), float(0.5 * (p[i] + q[i]))


def true_classes(m: Matched) -> NDArray[np.str_]:
    """Return STAR, GALAXY, QSO_LZ, QSO_HZ or BAD for each matched row.

    Parameters
    ----------
    m : Matched
        Catalogue joined to the truth.

    Returns
    -------
    ndarray of str
        True class per row (quasars split at :data:`Z_HZ`).
    """
    out = np.array(m.objtype, dtype="<U8")
    q = m.is_qso_true
    out[q & (m.z_true < Z_HZ)] = "QSO_LZ"
    out[q & (m.z_true >= Z_HZ)] = "QSO_HZ"
    return out


def confusion_matrix(
    m: Matched, c_th: float, n_th: int = PredictConfig.n_th
) -> dict[str, dict[str, int]]:
    """Count true class (rows) × predicted class (NOT_QSO, QSO_LZ, QSO_HZ) at ``c_th``.

    Parameters
    ----------
    m : Matched
        Catalogue joined to the truth.
    c_th : float
        Confidence threshold.
    n_th : int
        Lines above ``c_th`` needed for ``is_qso``.

    Returns
    -------
    dict
        ``{true class: {predicted class: count}}`` for the true classes present.
    """
    f = flagged(m.c_lines, c_th, n_th)
    z = np.nan_to_num(m.z_qn, nan=-1.0)
    pred = np.where(~f, "NOT_QSO", np.where(z < Z_HZ, "QSO_LZ", "QSO_HZ"))
    tc = true_classes(m)
    return {
        t: {p: int(((tc == t) & (pred == p)).sum()) for p in PRED_CLASSES}
        for t in TRUE_CLASSES
        if (tc == t).any()
    }


def compute_metrics(
    m: Matched,
    *,
    n_th: int = PredictConfig.n_th,
    dv_max: float = EvaluateConfig.dv_max,
    c_th: float = PredictConfig.c_th,
    c_grid: NDArray[Any] | None = None,
) -> dict[str, Any]:
    """Compute every evaluation figure as a JSON-serialisable dict (see the module docstring).

    Parameters
    ----------
    m : Matched
        Catalogue joined to the truth.
    n_th : int
        Minimum number of lines above threshold for ``is_qso`` (``predict.n_th``).
    dv_max : float
        Correct-redshift limit in km/s (``evaluate.dv_max``).
    c_th : float
        Fixed threshold (``predict.c_th``): purity and completeness are reported there
        (``purity_at_<c_th>``), BAL figures use it, and it replaces a missing crossover.
    c_grid : ndarray, optional
        Thresholds (default 0.01 ... 0.99 in steps of 0.01).

    Returns
    -------
    dict
        The metrics (as in ``metrics.json``).
    """
    grid = np.round(np.arange(0.01, 1.0, 0.01), 4) if c_grid is None else np.asarray(c_grid, float)
    pur, com = purity_completeness(m, grid, n_th=n_th, dv_max=dv_max)
    c_x, pc_x = crossover(grid, pur, com)
    qso = m.is_qso_true
    dv = m.dv
    c_eval = c_x if np.isfinite(c_x) else c_th
    f = flagged(m.c_lines, c_eval, n_th)
    sel = f & qso
    good = sel & (np.abs(np.nan_to_num(dv, nan=np.inf)) <= dv_max)
    dvg = dv[good]
    n_sel = int(sel.sum())
    p_at = purity_completeness(m, np.array([c_eval]), n_th=n_th, dv_max=dv_max)
    counts = {t: int((m.objtype == t).sum()) for t in ("QSO", "STAR", "GALAXY", "BAD")}
    out: dict[str, Any] = {
        "n_spectra": len(m.targetid),
        "counts": counts,
        "n_th": n_th,
        "c_th": c_th,
        "dv_max_kms": dv_max,
        "crossover_c_th": c_x,
        "crossover_purity_completeness": pc_x,
        "purity_at_crossover": float(p_at[0][0]),
        "completeness_at_crossover": float(p_at[1][0]),
        "sigma_dv_kms": float(np.std(dvg)) if dvg.size > 1 else float("nan"),
        "sigma_dv_mad_kms": float(1.4826 * np.median(np.abs(dvg - np.median(dvg))))
        if dvg.size
        else float("nan"),
        "median_dv_kms": float(np.median(dvg)) if dvg.size else float("nan"),
        "catastrophic_rate": float((sel & ~good).sum()) / n_sel if n_sel else float("nan"),
        "n_qso_flagged_at_crossover": n_sel,
        "confusion_at_crossover": confusion_matrix(m, c_eval, n_th),
        "curve": {
            "c_th": grid.tolist(),
            "purity": [None if not np.isfinite(x) else float(x) for x in pur],
            "completeness": [None if not np.isfinite(x) else float(x) for x in com],
        },
    }
    pp, cc = purity_completeness(m, np.array([c_th]), n_th=n_th, dv_max=dv_max)
    out[f"purity_at_{c_th:g}"] = float(pp[0])
    out[f"completeness_at_{c_th:g}"] = float(cc[0])
    if m.c_bal is not None and m.is_bal is not None:
        q_bal = qso & m.is_bal
        q_nobal = qso & ~m.is_bal
        cb = np.nan_to_num(m.c_bal, nan=-1.0)
        out["bal"] = {
            "n_bal_qso": int(q_bal.sum()),
            f"bal_recognised_at_{c_th:g}": float((cb[q_bal] > c_th).mean())
            if q_bal.any()
            else float("nan"),
            f"non_bal_rejected_at_{c_th:g}": float((cb[q_nobal] <= c_th).mean())
            if q_nobal.any()
            else float("nan"),
        }
    return out


def format_metrics(metrics: dict[str, Any]) -> list[str]:
    """Return short human-readable summary lines of :func:`compute_metrics` output.

    Parameters
    ----------
    metrics : dict
        :func:`compute_metrics` output (or ``metrics.json``).

    Returns
    -------
    list of str
        One line per figure group.
    """
    m = metrics
    c = float(m.get("c_th", PredictConfig.c_th))
    lines = [
        f"{m['n_spectra']} spectra: " + ", ".join(f"{k} {v}" for k, v in m["counts"].items()),
        f"crossover c_th = {m['crossover_c_th']:.3f}: "
        f"purity {100 * m['purity_at_crossover']:.2f} %, "
        f"completeness {100 * m['completeness_at_crossover']:.2f} %",
        f"sigma(dv) = {m['sigma_dv_kms']:.0f} km/s (MAD-based {m['sigma_dv_mad_kms']:.0f}, "
        f"median {m['median_dv_kms']:.0f}); catastrophic rate {100 * m['catastrophic_rate']:.3f} % "
        f"of {m['n_qso_flagged_at_crossover']} flagged QSOs (|dv| > {m['dv_max_kms']:.0f} km/s)",
        f"at c_th = {c:g}: purity {100 * m[f'purity_at_{c:g}']:.2f} %, "
        f"completeness {100 * m[f'completeness_at_{c:g}']:.2f} %",
    ]
    if "calibration" in m:
        cal = m["calibration"]
        txt = (
            f"calibration ({cal['n_bins']} bins): raw score ECE {100 * cal['raw']['ece']:.2f} %, "
            f"MCE {100 * cal['raw']['mce']:.1f} % "
            f"({100 * cal['raw']['mce_populated']:.1f} % over bins of >= {MCE_MIN_COUNT})"
        )
        if "p_qso" in cal:
            txt += (
                f"; P_QSO_QN ECE {100 * cal['p_qso']['ece']:.2f} %, "
                f"MCE {100 * cal['p_qso']['mce']:.1f} % "
                f"({100 * cal['p_qso']['mce_populated']:.1f} % over bins of >= {MCE_MIN_COUNT}), "
                f"crossover at P_QSO_QN = {cal['p_qso_crossover']:.3f}"
            )
        lines.append(txt)
    if "bal" in m:
        b = m["bal"]
        lines.append(
            f"BAL ({b['n_bal_qso']} BAL QSOs): "
            f"recognised {100 * b[f'bal_recognised_at_{c:g}']:.1f} %, "
            f"non-BAL rejected {100 * b[f'non_bal_rejected_at_{c:g}']:.1f} % (C_BAL > {c:g})"
        )
    return lines


def confusion_markdown(conf: dict[str, dict[str, int]]) -> str:
    """Return a Markdown table of a confusion matrix (rows = true class, with row fractions).

    Parameters
    ----------
    conf : dict
        :func:`confusion_matrix` output.

    Returns
    -------
    str
        The table.
    """
    head = "| true \\ predicted | " + " | ".join(PRED_CLASSES) + " |"
    sep = "|---" * (len(PRED_CLASSES) + 1) + "|"
    rows = [head, sep]
    for t, r in conf.items():
        n = max(sum(r.values()), 1)
        rows.append(
            f"| {t} ({n}) | "
            + " | ".join(f"{r[p]} ({100 * r[p] / n:.1f} %)" for p in PRED_CLASSES)
            + " |"
        )
    return "\n".join(rows)


def evaluate(
    catalog: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: QuasarConfig | None = None,
    spectra: Sequence[str | os.PathLike[str]] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Compute metrics and write ``metrics.json``, ``metrics.md``, plots and ``config.json``.

    Parameters
    ----------
    catalog : path
        A ``surveynet quasar predict`` catalogue.
    truth : path
        Mock truth file (HDU TRUTH with TARGETID, OBJTYPE, Z).
    out : path
        Output folder.
    config : QuasarConfig, optional
        The resolved config (default: the defaults): ``predict.n_th`` and ``predict.c_th``
        (the ``is_qso`` rule and the fixed threshold), ``evaluate.dv_max``,
        ``evaluate.n_examples`` and ``evaluate.model`` (model of the example plots; default the
        catalogue header's ``MODEL``). Saved as ``out/config.json``.
    spectra : sequence of path, optional
        The input spectra files; a few spectra of the first are plotted with the detected lines.
    overwrite : bool
        Replace an existing ``out/metrics.json`` (checked before any work).

    Returns
    -------
    dict
        The metrics (as in ``metrics.json``, which also records ``config_hash`` and the
        catalogue's ``CFGHASH`` as ``catalog_config_hash``).

    Raises
    ------
    FileExistsError
        ``out/metrics.json`` exists and ``overwrite`` is False.
    InputError
        Unreadable catalogue or truth, or catalogue targets missing from the truth.
    """
    from surveynet.config import config_hash, save_config
    from surveynet.io.fits import atomic_path
    from surveynet.plots import save_figure
    from surveynet.quasar import plots

    cfg = config if config is not None else QuasarConfig()
    n_th, dv_max = cfg.predict.n_th, cfg.evaluate.dv_max
    outdir = Path(out)
    if (outdir / "metrics.json").exists() and not overwrite:
        raise FileExistsError(f"{outdir / 'metrics.json'} exists; pass --overwrite to replace it")
    cat, hdr = read_catalog(catalog)
    tru = read_truth_table(truth)
    m = match(cat, tru, catalog_path=str(catalog))
    outdir.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(m, n_th=n_th, dv_max=dv_max, c_th=cfg.predict.c_th)
    metrics["catalog"] = str(catalog)
    metrics["truth"] = str(truth)
    metrics["model"] = str(hdr.get("MODEL", ""))
    metrics["model_hash"] = str(hdr.get("MODELHSH", ""))
    metrics["catalog_config_hash"] = str(hdr.get("CFGHASH", ""))
    metrics["config_hash"] = config_hash(cfg)
    p_qso = np.asarray(cat["P_QSO_QN"], dtype=np.float64) if "P_QSO_QN" in cat.colnames else None
    metrics["calibration"] = calib = calibration_errors(
        m.c_lines, m.is_qso_true, rank=n_th, p_qso=p_qso, n_bins=cfg.calibrate.n_bins
    )
    if p_qso is not None:
        mp = dataclasses.replace(m, c_lines=p_qso[:, None])
        grid = np.round(np.arange(0.01, 1.0, 0.01), 4)
        calib["p_qso_crossover"] = crossover(grid, *purity_completeness(mp, grid, dv_max=dv_max))[0]
    curve = metrics["curve"]
    pur = np.array([np.nan if x is None else x for x in curve["purity"]])
    com = np.array([np.nan if x is None else x for x in curve["completeness"]])
    images = [
        save_figure(
            plots.plot_purity_completeness(
                np.array(curve["c_th"]),
                pur,
                com,
                metrics["crossover_c_th"],
                metrics["crossover_purity_completeness"],
            ),
            outdir / "purity_completeness.png",
        ),
    ]
    c_eval = (
        metrics["crossover_c_th"] if np.isfinite(metrics["crossover_c_th"]) else cfg.predict.c_th
    )
    sel = flagged(m.c_lines, c_eval, n_th) & m.is_qso_true
    images.append(
        save_figure(plots.plot_dv_histogram(m.dv[sel], dv_max=dv_max), outdir / "dv_histogram.png")
    )
    images.append(
        save_figure(
            plots.plot_confusion(metrics["confusion_at_crossover"], PRED_CLASSES),
            outdir / "confusion.png",
        )
    )
    rel = {f"raw score ({calib['score']})": calib["raw"]}
    if "p_qso" in calib:
        rel["P_QSO_QN"] = calib["p_qso"]
    images.append(save_figure(plots.plot_reliability(rel), outdir / "reliability.png"))
    if spectra and cfg.evaluate.n_examples > 0:
        try:
            fig = example_spectra_figure(
                spectra[0],
                cat,
                hdr,
                truth=tru,
                n=cfg.evaluate.n_examples,
                c_th=c_eval,
                model=cfg.evaluate.model,
            )
            images.append(save_figure(fig, outdir / "spectra_lines.png"))
        except ValueError as exc:  # InputError, ModelFormatError
            log.warning("example spectra not plotted: %s", exc)
    metrics["plots"] = [p.name for p in images]
    with atomic_path(outdir / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    md = [
        "# QuasarNET evaluation",
        "",
        *[f"- {x}" for x in format_metrics(metrics)],
        "",
        f"Confusion matrix at c_th = {c_eval:.3f} (n_th = {n_th}):",
        "",
        confusion_markdown(metrics["confusion_at_crossover"]),
        "",
    ]
    with atomic_path(outdir / "metrics.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md))
    save_config(cfg, outdir / "config.json")
    return metrics


def example_spectra_figure(
    spectra_path: str | os.PathLike[str],
    catalog: Table,
    header: Any,
    *,
    truth: Table | None = None,
    n: int = EvaluateConfig.n_examples,
    c_th: float = PredictConfig.c_th,
    model: str | os.PathLike[str] | None = None,
) -> Any:
    """Plot up to ``n`` spectra of one file with the detected lines marked.

    Spectra are the normalised network inputs on the grid of ``model`` (default: the model named in
    the catalogue header ``MODEL``, a bundled name or a directory). Quasars at spread-out
    redshifts are preferred, then the other classes.

    Parameters
    ----------
    spectra_path : path
        A spectra file of the catalogue.
    catalog : astropy.table.Table
        The catalogue (:func:`surveynet.quasar.catalog.read_catalog`).
    header : astropy.io.fits.Header
        Its primary header.
    truth : astropy.table.Table, optional
        Truth rows (TARGETID, OBJTYPE, Z) shown in the titles.
    n : int
        Number of spectra.
    c_th : float
        Lines above this confidence are marked.
    model : str or path, optional
        Model whose grid and lines are used.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per spectrum.

    Raises
    ------
    InputError
        None of the file's spectra are in the catalogue.
    """
    from matplotlib.figure import Figure

    from surveynet.io.spectra import read_spectra
    from surveynet.quasar.lines import rest_wavelengths
    from surveynet.quasar.plots import plot_spectrum_lines
    from surveynet.quasar.predict import DEFAULT_MODEL, get_engine
    from surveynet.quasar.preprocess import preprocess

    spectra = read_spectra(spectra_path)
    engine = get_engine(model if model is not None else str(header.get("MODEL", DEFAULT_MODEL)))
    pre = preprocess(spectra, engine.grid)
    tid = spectra.targetid[pre.kept]
    ctid = np.asarray(catalog["TARGETID"], dtype=np.int64)
    index = {int(t): i for i, t in enumerate(ctid)}
    rows = [(k, index[int(t)]) for k, t in enumerate(tid) if int(t) in index]
    if not rows:
        raise InputError("none of its spectra are in the catalogue", path=spectra_path)
    tinfo: dict[int, tuple[str, float]] = {}
    if truth is not None:
        for t, o, z in zip(
            np.asarray(truth["TARGETID"]),
            np.asarray(truth["OBJTYPE"]).astype(str),
            np.asarray(truth["Z"]),
            strict=True,
        ):
            tinfo[int(t)] = (o.strip(), float(z))
    # prefer quasars sorted by catalogue redshift, evenly spread, then others
    qso = [r for r in rows if bool(catalog["IS_QSO_QN"][r[1]])]
    qso.sort(key=lambda r: float(catalog["Z_QN"][r[1]]))
    pick = (
        [qso[i] for i in np.linspace(0, len(qso) - 1, min(len(qso), max(n - 1, 1))).astype(int)]
        if qso
        else []
    )
    others = [r for r in rows if r not in pick]
    pick = (pick + others)[:n]
    fig = Figure(figsize=(9.0, 2.2 * len(pick)), layout="constrained")
    axes = fig.subplots(len(pick), 1, squeeze=False)[:, 0]
    wave = engine.grid.wave()
    rest = list(rest_wavelengths(engine.lines.lines))
    labels = [str(x) for x in engine.lines.lines]
    for ax, (k, ci) in zip(axes, pick, strict=True):
        t = int(tid[k])
        ti = tinfo.get(t)
        title = (
            f"TARGETID {t}: Z_QN {float(catalog['Z_QN'][ci]):.3f}, "
            f"IS_QSO_QN {bool(catalog['IS_QSO_QN'][ci])}"
        )
        if ti is not None:
            title += f"; truth {ti[0]} z = {ti[1]:.3f}"
        plot_spectrum_lines(
            wave,
            pre.x[k],
            np.asarray(catalog["Z_LINES"][ci]),
            np.asarray(catalog["C_LINES"][ci]),
            labels,
            rest,
            c_th=c_th,
            title=title,
            ax=ax,
        )
    return fig


def calibrate_catalog(
    catalog: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: QuasarConfig | None = None,
    name: str | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> tuple[Path, Calibration]:
    """Fit the ``P_QSO_QN`` calibration on a held-out catalogue and write a calibrated model copy.

    The catalogue's spectra are joined to the truth (:func:`match`; label = confirmed true
    quasar), the map of :mod:`surveynet.quasar.calibrate` is fitted to the score (the
    ``predict.n_th``-th largest line confidence) by minimising the log loss, and ``out`` is
    written: the model ``predict.model`` with its weights copied byte for byte and a
    ``calibration`` block in ``config.json`` (parameters; hashes and sizes of the catalogue and
    truth; log loss, ECE and MCE before and after, *on the fit set*; the command). Report
    calibration on a different held-out set (``quasar evaluate``).

    Parameters
    ----------
    catalog : path
        ``surveynet quasar predict`` catalogue of held-out spectra, made with ``predict.model``.
    truth : path
        Their truth file (HDU TRUTH with TARGETID, OBJTYPE, Z).
    out : path
        Model directory to write (may be the model directory itself, with ``overwrite``).
    config : QuasarConfig, optional
        ``predict.model``, ``predict.n_th``, ``calibrate.method``, ``calibrate.n_bins``.
    name : str, optional
        Name of the calibrated model (default: the original name).
    overwrite : bool
        Replace an existing ``out`` (checked before any work).
    command : str, optional
        Command line, recorded in the block.

    Returns
    -------
    out : Path
        The calibrated model directory.
    calibration : Calibration
        The fitted map.

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    InputError
        Unreadable catalogue or truth; catalogue TARGETIDs missing from the truth (the truth file
        is named); a catalogue made with other weights than ``predict.model``; one class only.
    """
    from surveynet.io.model import WEIGHTS_FILE, file_sha256, resolve_model_path
    from surveynet.quasar.calibrate import fit_calibration, quasar_score, save_calibrated_model

    cfg = config if config is not None else QuasarConfig()
    dst = Path(out)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    src = resolve_model_path(cfg.predict.model)
    weights_hash = file_sha256(src / WEIGHTS_FILE)
    cat, hdr = read_catalog(catalog)
    cat_hash = str(hdr.get("MODELHSH", ""))
    if cat_hash and cat_hash != weights_hash:
        raise InputError(
            f"catalogue made with model weights {cat_hash} ({hdr.get('MODEL', '?')}), but the "
            f"model to calibrate ({cfg.predict.model}) has weights {weights_hash}; predict the "
            "held-out set with that model first",
            path=catalog,
        )
    tru = read_truth_table(truth)
    tid = np.asarray(cat["TARGETID"], dtype=np.int64)
    absent = ~np.isin(tid, np.asarray(tru["TARGETID"], dtype=np.int64))
    if absent.any():
        raise InputError(
            f"{int(absent.sum())} of {len(tid)} TARGETIDs of catalogue {catalog} are not in this "
            f"truth file (first: {int(tid[absent][0])}); give the truth of the catalogue's spectra",
            path=truth,
            hdu="TRUTH",
            column="TARGETID",
        )
    m = match(cat, tru, catalog_path=str(catalog))
    n_th, method, n_bins = cfg.predict.n_th, cfg.calibrate.method, cfg.calibrate.n_bins
    y = m.is_qso_true
    score = quasar_score(m.c_lines, n_th)
    try:
        cal = fit_calibration(score, y, method=method, rank=n_th)
    except ValueError as exc:
        raise InputError(f"cannot calibrate on this catalogue: {exc}", path=catalog) from exc
    before = calibration_errors(m.c_lines, y, rank=n_th, n_bins=n_bins)["raw"]
    after = calibration_errors(m.c_lines, y, rank=n_th, p_qso=cal.apply(m.c_lines), n_bins=n_bins)
    fit = {
        **cal.fit,
        "label": "confirmed true quasar (OBJTYPE == QSO, Z_CONF == 3, not a dead fibre)",
        "catalog": Path(catalog).name,
        "catalog_sha256": file_sha256(catalog),
        "truth": Path(truth).name,
        "truth_sha256": file_sha256(truth),
        "n_spectra": len(tid),
        "counts": {t: int((m.objtype == t).sum()) for t in ("QSO", "STAR", "GALAXY", "BAD")},
        "model_weights_sha256": weights_hash,
        "n_bins": n_bins,
        "ece_before": before["ece"],
        "mce_before": before["mce"],
        "ece_after": after["p_qso"]["ece"],
        "mce_after": after["p_qso"]["mce"],
        "note": "figures on the fit set itself; report calibration on another held-out set",
    }
    if command:
        fit["command"] = command
    cal = dataclasses.replace(cal, fit=fit)
    path = save_calibrated_model(src, dst, cal, name=name, overwrite=overwrite)
    return path, cal
