"""Evaluate a QuasarNET catalogue against a truth table: purity, completeness, dv, confusion.

Definitions follow Farr et al. 2020 (``jfarr03/QuasarNET_analysis:py/plot.py``; quasarnet.md §10):

- velocity error ``dv = c (z_QN - z_true) / (1 + z_true)`` in km/s; a redshift is *correct* when
  ``|dv| <= dv_max`` (6000 km/s);
- a spectrum is *flagged* at threshold ``c_th`` when at least ``n_th`` emission-line confidences
  exceed ``c_th`` (the ``is_qso`` rule of quasarnet.md §4.1);
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
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError

log = logging.getLogger(__name__)

C_KMS = 299792.458
"""Speed of light in km/s."""

TRUE_CLASSES = ("STAR", "GALAXY", "QSO_LZ", "QSO_HZ", "BAD")
PRED_CLASSES = ("NOT_QSO", "QSO_LZ", "QSO_HZ")
Z_HZ = 2.1
"""Boundary between low- and high-redshift quasars (Busca & Balland 2018)."""


def dv_kms(z_pred: NDArray[Any], z_true: NDArray[Any]) -> NDArray[np.float64]:
    """Velocity error ``c (z_pred - z_true) / (1 + z_true)`` in km/s.

    Examples
    --------
    >>> float(dv_kms(np.array([2.02]), np.array([2.0]))[0])  # doctest: +ELLIPSIS
    1998.6...
    """
    zp = np.asarray(z_pred, dtype=np.float64)
    zt = np.asarray(z_true, dtype=np.float64)
    return C_KMS * (zp - zt) / (1.0 + zt)


def flagged(c_lines: NDArray[Any], c_th: float, n_th: int = 1) -> NDArray[np.bool_]:
    """``is_qso`` rule: at least ``n_th`` line confidences above ``c_th``.

    Parameters
    ----------
    c_lines : ndarray of shape (n_spec, n_lines)
        Line confidences (NaN rows = spectra that could not be processed: never flagged).
    c_th : float
        Confidence threshold.
    n_th : int
        Minimum number of lines.

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


def read_catalog(path: str | os.PathLike[str]) -> tuple[Table, fits.Header]:
    """Read a ``surveynet quasar predict`` catalogue (HDU ``QN_CATALOG``) and its primary header.

    Raises
    ------
    InputError
        Missing file, HDU or column.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", path=p)
    try:
        with fits.open(p) as hdul:
            hdr = hdul[0].header.copy()
            names = [h.name for h in hdul]
            if "QN_CATALOG" not in names:
                raise InputError(f"no QN_CATALOG HDU (HDUs: {names})", path=p, hdu="QN_CATALOG")
            tab = Table.read(hdul["QN_CATALOG"], mask_invalid=False)
    except OSError as exc:
        raise InputError(f"unreadable FITS file ({exc})", path=p) from exc
    for col in ("TARGETID", "C_LINES", "Z_QN"):
        if col not in tab.colnames:
            raise InputError("missing column", path=p, hdu="QN_CATALOG", column=col)
    return tab, hdr


def read_truth_table(path: str | os.PathLike[str]) -> Table:
    """Targets of a mock truth file (:func:`surveynet.io.truth.read_truth`): TARGETID, OBJTYPE, Z.

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
            hdu="QN_CATALOG",
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
    m: Matched, c_grid: NDArray[Any], *, n_th: int = 1, dv_max: float = 6000.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Purity and completeness at each threshold of ``c_grid`` (definitions in the module doc).

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
    """Threshold where purity = completeness, and the value there (linear interpolation).

    Purity rises and completeness falls with ``c_th``; the first sign change of
    ``purity - completeness`` is interpolated. Without a sign change, the threshold of the
    smallest ``|purity - completeness|`` is returned.

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
    """STAR, GALAXY, QSO_LZ, QSO_HZ or BAD for each matched row."""
    out = np.array(m.objtype, dtype="<U8")
    q = m.is_qso_true
    out[q & (m.z_true < Z_HZ)] = "QSO_LZ"
    out[q & (m.z_true >= Z_HZ)] = "QSO_HZ"
    return out


def confusion_matrix(m: Matched, c_th: float, n_th: int = 1) -> dict[str, dict[str, int]]:
    """Counts of true class (rows) × predicted class (NOT_QSO, QSO_LZ, QSO_HZ) at ``c_th``."""
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
    m: Matched, *, n_th: int = 1, dv_max: float = 6000.0, c_grid: NDArray[Any] | None = None
) -> dict[str, Any]:
    """All evaluation figures as a JSON-serialisable dict (see the module docstring).

    Parameters
    ----------
    m : Matched
        Catalogue joined to the truth.
    n_th : int
        Minimum number of lines above threshold for ``is_qso``.
    dv_max : float
        Correct-redshift limit in km/s.
    c_grid : ndarray, optional
        Thresholds (default 0.01 ... 0.99 in steps of 0.01).
    """
    grid = np.round(np.arange(0.01, 1.0, 0.01), 4) if c_grid is None else np.asarray(c_grid, float)
    pur, com = purity_completeness(m, grid, n_th=n_th, dv_max=dv_max)
    c_x, pc_x = crossover(grid, pur, com)
    qso = m.is_qso_true
    dv = m.dv
    c_eval = c_x if np.isfinite(c_x) else 0.5
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
    for c in (0.5,):
        pp, cc = purity_completeness(m, np.array([c]), n_th=n_th, dv_max=dv_max)
        out[f"purity_at_{c}"] = float(pp[0])
        out[f"completeness_at_{c}"] = float(cc[0])
    if m.c_bal is not None and m.is_bal is not None:
        q_bal = qso & m.is_bal
        q_nobal = qso & ~m.is_bal
        cb = np.nan_to_num(m.c_bal, nan=-1.0)
        out["bal"] = {
            "n_bal_qso": int(q_bal.sum()),
            "bal_recognised_at_0.5": float((cb[q_bal] > 0.5).mean())
            if q_bal.any()
            else float("nan"),
            "non_bal_rejected_at_0.5": float((cb[q_nobal] <= 0.5).mean())
            if q_nobal.any()
            else float("nan"),
        }
    return out


def format_metrics(metrics: dict[str, Any]) -> list[str]:
    """Short human-readable summary lines of :func:`compute_metrics` output."""
    m = metrics
    lines = [
        f"{m['n_spectra']} spectra: " + ", ".join(f"{k} {v}" for k, v in m["counts"].items()),
        f"crossover c_th = {m['crossover_c_th']:.3f}: "
        f"purity {100 * m['purity_at_crossover']:.2f} %, "
        f"completeness {100 * m['completeness_at_crossover']:.2f} %",
        f"sigma(dv) = {m['sigma_dv_kms']:.0f} km/s (MAD-based {m['sigma_dv_mad_kms']:.0f}, "
        f"median {m['median_dv_kms']:.0f}); catastrophic rate {100 * m['catastrophic_rate']:.3f} % "
        f"of {m['n_qso_flagged_at_crossover']} flagged QSOs (|dv| > {m['dv_max_kms']:.0f} km/s)",
        f"at c_th = 0.5: purity {100 * m['purity_at_0.5']:.2f} %, "
        f"completeness {100 * m['completeness_at_0.5']:.2f} %",
    ]
    if "bal" in m:
        b = m["bal"]
        lines.append(
            f"BAL ({b['n_bal_qso']} BAL QSOs): "
            f"recognised {100 * b['bal_recognised_at_0.5']:.1f} %, "
            f"non-BAL rejected {100 * b['non_bal_rejected_at_0.5']:.1f} % (C_BAL > 0.5)"
        )
    return lines


def confusion_markdown(conf: dict[str, dict[str, int]]) -> str:
    """Markdown table of a confusion matrix (rows = true class, with row fractions)."""
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
    n_th: int = 1,
    dv_max: float = 6000.0,
    spectra: list[str | os.PathLike[str]] | None = None,
    n_examples: int = 6,
    model: str | os.PathLike[str] | None = None,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Compute metrics and write ``metrics.json``, ``metrics.md`` and plots to ``out``.

    Parameters
    ----------
    catalog : path
        A ``surveynet quasar predict`` catalogue.
    truth : path
        Mock truth file (HDU TRUTH with TARGETID, OBJTYPE, Z).
    out : path
        Output folder.
    n_th : int
        Lines above threshold needed for ``is_qso``.
    dv_max : float
        Correct-redshift limit in km/s.
    spectra : list of path, optional
        The input spectra files; a few are plotted with the detected lines marked.
    n_examples : int
        Number of example spectra to plot.
    model : str or path, optional
        Model for the example plots (default: the catalogue header's ``MODEL``).
    overwrite : bool
        Replace existing outputs in ``out``.

    Returns
    -------
    dict
        The metrics (as in ``metrics.json``).
    """
    from surveynet.io.fits import atomic_path
    from surveynet.plots import save_figure
    from surveynet.quasar import plots

    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    cat, hdr = read_catalog(catalog)
    tru = read_truth_table(truth)
    m = match(cat, tru, catalog_path=str(catalog))
    metrics = compute_metrics(m, n_th=n_th, dv_max=dv_max)
    metrics["catalog"] = str(catalog)
    metrics["truth"] = str(truth)
    metrics["model"] = str(hdr.get("MODEL", ""))
    metrics["model_hash"] = str(hdr.get("MODELHSH", ""))
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
    c_eval = metrics["crossover_c_th"] if np.isfinite(metrics["crossover_c_th"]) else 0.5
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
    if spectra:
        from surveynet.quasar.predict import example_spectra_figure

        try:
            fig = example_spectra_figure(
                spectra[0], cat, hdr, truth=tru, n=n_examples, c_th=c_eval, model=model
            )
            images.append(save_figure(fig, outdir / "spectra_lines.png"))
        except ValueError as exc:  # InputError, ModelFormatError
            log.warning("example spectra not plotted: %s", exc)
    metrics["plots"] = [p.name for p in images]
    with atomic_path(outdir / "metrics.json", overwrite=overwrite) as tmp:
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
    with atomic_path(outdir / "metrics.md", overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(md))
    return metrics
