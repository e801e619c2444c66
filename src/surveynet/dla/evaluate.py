"""Validation of a DLA catalogue against the truth: matching, completeness/purity, dz, dlogN, plots.

Library entry point of ``surveynet dla evaluate`` (:func:`evaluate`, configured by the
``evaluate`` section of :class:`~surveynet.dla.config.DLAConfig`).

Matching (:func:`match_absorbers`, dla.md 6.1), per TARGETID:

- candidates: predictions of the same sightline, LYB-typed ones excluded unless ``allow_lyb``;
- ``rule="dlambda"`` (default, desi-dlas ``label_catalog``): |lambda_pred - lambda_true| <= 10 A in
  the observed frame (lambda = 1215.6701 (1 + z)); ``rule="dz"`` (Parks ``score_ml_test``):
  |dz| < 0.015;
- ``unique=True`` (DESI): one prediction matches at most one truth absorber; pairs are assigned
  greedily by increasing distance (order independent); ``unique=False`` (Parks): each truth
  absorber takes its nearest candidate;
- a match counts "as DLA" when the prediction's N_HI > ``dla_nhi_min`` (20.2999, Parks).

The Parks et al. (2018) golden: with ``rule="dz"``, ``unique=False``, ``allow_lyb=False`` the
held-out set gives 11,288 matched and 11,104 as DLA (97.4 %); with ``allow_lyb=True`` 11,294 of
11,403 (99.0 %) are recovered as any HI absorber (dla.md section 7).

Counts (:func:`summarize`): TP = truth absorbers with N_HI >= ``truth_nhi_min`` (20.3) matched,
FN = those unmatched; FP = predictions typed DLA (N_HI >= 20.3, not LYB) matched to no truth
absorber of any N_HI; completeness = TP / (TP + FN), purity = 1 - FP / n_pred_DLA.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.config import to_dict
from surveynet.constants import DLA_LOG_NHI_MIN, LYA_REST
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import DLAConfig, EvaluateConfig
from surveynet.dla.parks import read_parks_predictions, read_parks_truth
from surveynet.dla.plots import evaluation_figures
from surveynet.errors import InputError
from surveynet.io.fits import atomic_path
from surveynet.io.truth import read_truth

logger = logging.getLogger(__name__)

__all__ = [
    "MatchResult",
    "binned_rates",
    "confident",
    "evaluate",
    "match_absorbers",
    "read_truth_absorbers",
    "summarize",
    "summary_bins",
    "window_metrics",
]


@dataclass
class MatchResult:
    """Outcome of :func:`match_absorbers`.

    Attributes
    ----------
    truth : Table
        The truth rows plus MATCHED (bool), PRED_INDEX (int, -1 if unmatched), DZ (z_pred - z_true),
        DNHI (NHI_pred - NHI_true), PRED_NHI, PRED_TYPE, AS_DLA (matched, pred N_HI > dla_nhi_min).
    pred : Table
        The predicted rows plus MATCHED (bool) and TRUTH_INDEX (int, -1).
    config : EvaluateConfig
    """

    truth: Table
    pred: Table
    config: EvaluateConfig


def _distance(z_pred: NDArray[np.float64], z_true: float, rule: str) -> NDArray[np.float64]:
    if rule == "dlambda":
        return np.abs(z_pred - z_true) * LYA_REST
    return np.abs(z_pred - z_true)


def confident(
    pred: Table, config: EvaluateConfig, path: str | os.PathLike[str] | None = None
) -> Table:
    """The rows of ``pred`` with DLA_CONFIDENCE >= ``config.min_confidence`` (all when it is 0).

    Parameters
    ----------
    pred : Table
        Predicted absorbers.
    config : EvaluateConfig
        ``min_confidence``.
    path : str or os.PathLike, optional
        The catalogue (named in the error).

    Returns
    -------
    Table
        The kept rows.
    """
    if config.min_confidence <= 0:
        return pred
    if "DLA_CONFIDENCE" not in pred.colnames:
        raise InputError(
            "pred table has no DLA_CONFIDENCE column (min_confidence > 0)",
            path=path,
            column="DLA_CONFIDENCE",
        )
    return pred[np.asarray(pred["DLA_CONFIDENCE"], np.float64) >= config.min_confidence]


def match_absorbers(truth: Table, pred: Table, config: EvaluateConfig | None = None) -> MatchResult:
    """Match predicted absorbers to truth absorbers (see the module docstring for the rules).

    Parameters
    ----------
    truth : Table
        Columns TARGETID, Z_DLA, NHI.
    pred : Table
        Columns TARGETID, Z_DLA, NHI and optionally ABSORBER_TYPE ("DLA", "SUBDLA", "LYB");
        with ``config.min_confidence > 0`` also DLA_CONFIDENCE (rows below it are dropped, and
        the returned ``pred`` table is the kept rows).
    config : EvaluateConfig, optional

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"TARGETID": [1, 1], "Z_DLA": [2.5, 2.7], "NHI": [20.5, 21.0]})
    >>> p = Table({"TARGETID": [1, 1], "Z_DLA": [2.505, 2.9], "NHI": [20.6, 20.4],
    ...            "ABSORBER_TYPE": ["DLA", "DLA"]})
    >>> r = match_absorbers(t, p)
    >>> r.truth["MATCHED"].tolist(), r.pred["MATCHED"].tolist()
    ([True, False], [True, False])
    """
    cfg = config or EvaluateConfig()
    for name, t in (("truth", truth), ("pred", pred)):
        for c in ("TARGETID", "Z_DLA", "NHI"):
            if c not in t.colnames:
                raise InputError(f"{name} table has no {c} column", column=c)
    pred = confident(pred, cfg)
    tol = cfg.max_dlambda if cfg.rule == "dlambda" else cfg.max_dz
    t_tid = np.asarray(truth["TARGETID"], np.int64)
    t_z = np.asarray(truth["Z_DLA"], np.float64)
    p_tid = np.asarray(pred["TARGETID"], np.int64)
    p_z = np.asarray(pred["Z_DLA"], np.float64)
    p_nhi = np.asarray(pred["NHI"], np.float64)
    p_type = (
        np.char.strip(np.asarray(pred["ABSORBER_TYPE"]).astype(str))
        if "ABSORBER_TYPE" in pred.colnames
        else np.full(len(pred), "DLA")
    )
    eligible = np.ones(len(pred), bool) if cfg.allow_lyb else (p_type != "LYB")
    by_tid: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(eligible):
        by_tid[int(p_tid[i])].append(int(i))
    t_match = np.full(len(truth), -1, np.int64)
    p_match = np.full(len(pred), -1, np.int64)

    def within(d: float) -> bool:
        return d <= tol if cfg.rule == "dlambda" else d < tol

    t_by_tid: dict[int, list[int]] = defaultdict(list)
    for j, tid in enumerate(t_tid):
        t_by_tid[int(tid)].append(j)
    for tid, tjs in t_by_tid.items():
        cands = np.array(by_tid.get(tid, []), np.int64)
        if cands.size == 0:
            continue
        if cfg.unique:
            pairs = []
            for j in tjs:
                d = _distance(p_z[cands], t_z[j], cfg.rule)
                pairs += [
                    (float(dd), j, int(i))
                    for dd, i in zip(d, cands, strict=True)
                    if within(float(dd))
                ]
            for _, j, i in sorted(pairs):
                if t_match[j] < 0 and p_match[i] < 0:
                    t_match[j], p_match[i] = i, j
        else:
            for j in tjs:
                d = _distance(p_z[cands], t_z[j], cfg.rule)
                k = int(np.argmin(d))
                if within(float(d[k])):
                    t_match[j] = cands[k]
                    if p_match[cands[k]] < 0:
                        p_match[cands[k]] = j
    tr = Table(truth, copy=True)
    m = t_match >= 0
    idx = np.where(m, t_match, 0)
    tr["MATCHED"] = m
    tr["PRED_INDEX"] = t_match
    tr["DZ"] = np.where(m, p_z[idx] - t_z, np.nan) if len(pred) else np.full(len(truth), np.nan)
    tr["PRED_NHI"] = np.where(m, p_nhi[idx], np.nan) if len(pred) else np.full(len(truth), np.nan)
    tr["DNHI"] = tr["PRED_NHI"] - np.asarray(truth["NHI"], np.float64)
    tr["PRED_TYPE"] = np.where(m, p_type[idx], "") if len(pred) else np.full(len(truth), "")
    tr["AS_DLA"] = m & (np.nan_to_num(np.asarray(tr["PRED_NHI"]), nan=-np.inf) > cfg.dla_nhi_min)
    pr = Table(pred, copy=True)
    pr["MATCHED"] = p_match >= 0
    pr["TRUTH_INDEX"] = p_match
    return MatchResult(truth=tr, pred=pr, config=cfg)


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _stats(x: NDArray[np.float64]) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": None, "median": None, "std": None, "n": 0}
    return {
        "mean": float(x.mean()),
        "median": float(np.median(x)),
        "std": float(x.std()),
        "n": int(x.size),
    }


def _pred_is_dla(pred: Table, dla_nhi: float = DLA_LOG_NHI_MIN) -> NDArray[np.bool_]:
    typ = (
        np.char.strip(np.asarray(pred["ABSORBER_TYPE"]).astype(str))
        if "ABSORBER_TYPE" in pred.colnames
        else np.full(len(pred), "DLA")
    )
    if "ABSORBER_TYPE" in pred.colnames:
        return typ == "DLA"
    return np.asarray(pred["NHI"], float) >= dla_nhi


def summarize(result: MatchResult) -> dict[str, Any]:
    """Headline counts and rates of a match (TP/FN/FP, completeness, purity, dz and dlogN stats).

    Parameters
    ----------
    result : MatchResult
        Outcome of :func:`match_absorbers`.

    Returns
    -------
    dict
        n_truth, n_pred, tp, fn, fp, completeness, purity, dz and dnhi statistics, ...
    """
    cfg = result.config
    tr, pr = result.truth, result.pred
    is_dla = np.asarray(tr["NHI"], float) >= cfg.truth_nhi_min
    matched = np.asarray(tr["MATCHED"], bool)
    as_dla = np.asarray(tr["AS_DLA"], bool)
    pdla = _pred_is_dla(pr)
    pm = np.asarray(pr["MATCHED"], bool)
    tp = int(np.sum(is_dla & matched))
    fn = int(np.sum(is_dla & ~matched))
    fp = int(np.sum(pdla & ~pm))
    n_pdla = int(pdla.sum())
    sel = is_dla & matched
    return {
        "n_truth": len(tr),
        "n_truth_dla": int(is_dla.sum()),
        "n_pred": len(pr),
        "n_pred_dla": n_pdla,
        "n_matched": int(matched.sum()),
        "n_matched_as_dla": int(as_dla.sum()),
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "completeness": _rate(tp, tp + fn),
        "completeness_as_dla": _rate(int(np.sum(is_dla & as_dla)), int(is_dla.sum())),
        "fraction_matched": _rate(int(matched.sum()), len(tr)),
        "fraction_as_dla": _rate(int(as_dla.sum()), len(tr)),
        "purity": None if n_pdla == 0 else 1.0 - fp / n_pdla,
        "dz": _stats(np.asarray(tr["DZ"], float)[sel]),
        "dnhi": _stats(np.asarray(tr["DNHI"], float)[sel]),
    }


def binned_rates(
    result: MatchResult,
    key: str,
    edges: tuple[float, ...] | NDArray[np.float64],
    truth_values: NDArray[np.float64],
    pred_values: NDArray[np.float64],
) -> list[dict[str, Any]]:
    """Completeness (truth by ``truth_values``) and purity (preds by ``pred_values``) per bin.

    Parameters
    ----------
    result : MatchResult
        Outcome of :func:`match_absorbers`.
    key : str
        Name of the binned quantity (``nhi``, ``s2n``).
    edges : sequence of float
        Bin edges.
    truth_values, pred_values : ndarray
        The quantity of each truth and predicted absorber.

    Returns
    -------
    list of dict
        One row per bin: edges, n_truth, completeness, n_pred, purity.
    """
    cfg = result.config
    e = np.asarray(edges, float)
    is_dla = np.asarray(result.truth["NHI"], float) >= cfg.truth_nhi_min
    matched = np.asarray(result.truth["MATCHED"], bool)
    pdla = _pred_is_dla(result.pred)
    pm = np.asarray(result.pred["MATCHED"], bool)
    out = []
    for lo, hi in itertools.pairwise(e):
        tb = (truth_values >= lo) & (truth_values < hi)
        pb = (pred_values >= lo) & (pred_values < hi)
        nt = int(np.sum(tb & is_dla))
        npd = int(np.sum(pb & pdla))
        out.append(
            {
                key + "_lo": float(lo),
                key + "_hi": float(hi),
                "n_truth": nt,
                "completeness": _rate(int(np.sum(tb & is_dla & matched)), nt),
                "n_pred": npd,
                "purity": _rate(int(np.sum(pb & pdla & pm)), npd),
            }
        )
    return out


def summary_bins(
    truth: Table,
    pred: Table,
    config: EvaluateConfig,
    s2n_truth: NDArray[np.float64],
    s2n_pred: NDArray[np.float64],
) -> list[dict[str, Any]]:
    """The README's headline figures: completeness and purity per sightline-S/N bin.

    For every (lo, hi) pair of ``config.summary_s2n``, the truth absorbers and the predictions
    of sightlines with lo < S/N < hi are matched (:func:`match_absorbers`, ``min_confidence``
    applied). The bin also reports the completeness at a fixed purity: the predictions typed DLA
    are cut at each of their DLA_CONFIDENCE values (rounded to 3 decimals) without re-matching,
    and the loosest cut whose purity is >= ``config.fixed_purity`` gives the highest
    completeness (null when no cut reaches it). This is the rule of
    ``experiments/dla/heldout_figures.py`` that made the README's tables.

    Parameters
    ----------
    truth, pred : Table
        Truth absorbers (searched ones) and predictions, as :func:`evaluate` reads them.
    config : EvaluateConfig
        Matching rules, ``summary_s2n`` and ``fixed_purity``.
    s2n_truth, s2n_pred : ndarray
        Sightline S/N of each truth absorber and of each prediction.

    Returns
    -------
    list of dict
        One per bin: ``s2n_lo``, ``s2n_hi``, ``n_truth_dla``, ``tp``, ``fn``, ``fp``,
        ``completeness``, ``purity``, ``fixed_purity``, ``confidence_cut`` and
        ``completeness_at_purity``.

    Examples
    --------
    >>> t = Table({"TARGETID": [1, 2], "Z_DLA": [2.5, 2.6], "NHI": [20.5, 21.0]})
    >>> p = Table({"TARGETID": [1, 2], "Z_DLA": [2.5, 2.9], "NHI": [20.6, 20.9],
    ...            "DLA_CONFIDENCE": [0.9, 0.3]})
    >>> b = summary_bins(t, p, EvaluateConfig(), np.array([5.0, 5.0]), np.array([5.0, 5.0]))
    >>> b[0]["completeness"], b[0]["purity"], b[0]["completeness_at_purity"], b[0]["confidence_cut"]
    (0.5, 0.5, 0.5, 0.9)
    """
    pairs = np.asarray(config.summary_s2n, float).reshape(-1, 2)
    out = []
    for lo, hi in pairs:
        tb = (s2n_truth > lo) & (s2n_truth < hi)
        pb = (s2n_pred > lo) & (s2n_pred < hi)
        res = match_absorbers(truth[tb], pred[pb], config)
        head = summarize(res)
        row: dict[str, Any] = {"s2n_lo": float(lo), "s2n_hi": float(hi)}
        row["n_truth_dla"] = head["tp"] + head["fn"]
        row.update({k: head[k] for k in ("tp", "fn", "fp", "completeness", "purity")})
        row.update(
            {
                "fixed_purity": config.fixed_purity,
                "confidence_cut": None,
                "completeness_at_purity": None,
            }
        )
        pr = res.pred
        conf = (
            np.asarray(pr["DLA_CONFIDENCE"], float)
            if "DLA_CONFIDENCE" in pr.colnames
            else np.ones(len(pr))
        )
        pdla = _pred_is_dla(pr)
        pm = np.asarray(pr["MATCHED"], bool)
        ti = np.asarray(pr["TRUTH_INDEX"], np.int64)
        t_dla = np.asarray(res.truth["NHI"], float) >= config.truth_nhi_min
        n_dla = max(int(t_dla.sum()), 1)
        for cut in np.unique(np.round(conf[pdla], 3)):
            keep = pdla & (conf >= cut)
            if keep.sum() and np.sum(keep & pm) / keep.sum() >= config.fixed_purity:
                hit = np.unique(ti[keep & pm & (ti >= 0)])
                row["confidence_cut"] = float(cut)
                row["completeness_at_purity"] = float(np.sum(t_dla[hit])) / n_dla
                break
        out.append(row)
    return out


def window_metrics(
    labels: NDArray[np.integer[Any]], confidence: NDArray[np.floating[Any]], threshold: float = 0.5
) -> dict[str, Any]:
    """Window-level confusion matrix (border windows, label -1, excluded).

    Parameters
    ----------
    labels : ndarray of int
        Window labels (1, 0, -1 = border).
    confidence : ndarray of float
        Window confidences.
    threshold : float
        Classification threshold.

    Returns
    -------
    dict
        ``confusion`` [[TN, FP], [FN, TP]] (rows = true 0/1, columns = predicted 0/1),
        ``accuracy``, ``n_windows``.
    """
    y = np.asarray(labels).reshape(-1)
    p = (np.asarray(confidence).reshape(-1) >= threshold).astype(int)
    keep = y >= 0
    y, p = y[keep].astype(int), p[keep]
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (y, p), 1)
    return {
        "confusion": cm.tolist(),
        "accuracy": _rate(int(np.trace(cm)), int(cm.sum())),
        "n_windows": int(cm.sum()),
        "threshold": threshold,
    }


# ----------------------------------------------------------------------------- files


def searched(truth: Table, qsos: Table) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Which truth absorbers a catalogue could have found, and each absorber's QSOCAT row.

    Findable: those of a searched sightline (QSOCAT TARGETID) inside its searched observed range
    (WAVE_MIN..WAVE_MAX, when given). The row is 0 where its sightline is not there.

    Parameters
    ----------
    truth : Table
        Truth absorbers (TARGETID, Z_DLA).
    qsos : Table
        QSOCAT of the catalogue.

    Returns
    -------
    keep : ndarray of bool
        Whether each truth absorber could have been found.
    row : ndarray of int64
        Its QSOCAT row.
    """
    q_tid = np.asarray(qsos["TARGETID"], np.int64)
    t_tid = np.asarray(truth["TARGETID"], np.int64)
    keep = np.isin(t_tid, q_tid)
    lookup = {int(t): k for k, t in enumerate(q_tid)}
    row = np.array([lookup.get(int(t), 0) for t in t_tid], np.int64)
    if "WAVE_MIN" in qsos.colnames:
        lam = (1.0 + np.asarray(truth["Z_DLA"], float)) * LYA_REST
        keep &= (lam >= np.asarray(qsos["WAVE_MIN"], float)[row]) & (
            lam <= np.asarray(qsos["WAVE_MAX"], float)[row]
        )
    return keep, row


def read_truth_absorbers(path: str | os.PathLike[str]) -> tuple[Table, Table | None]:
    """Truth absorbers (TARGETID, Z_DLA, NHI) and, when available, the targets (TARGETID, Z_QSO).

    Accepts a surveynet/quickquasars truth file (``DLA_META`` + ``TRUTH``), a catalogue in the
    DLACAT layout, or a Parks truth JSON (``.json``/``.json.gz``).

    Parameters
    ----------
    path : str or os.PathLike
        The truth file.

    Returns
    -------
    absorbers : Table
        TARGETID, Z_DLA, NHI.
    targets : Table or None
        TARGETID, Z_QSO (truth files only).
    """
    p = Path(path)
    if p.name.endswith((".json", ".json.gz")):
        return read_parks_truth(p), None
    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
    except OSError as exc:
        raise InputError(f"cannot read FITS ({exc})", path=p) from exc
    if "TRUTH" in names:
        tr = read_truth(p)
        targets = Table({"TARGETID": tr.targetid, "Z_QSO": np.asarray(tr.targets["Z"], float)})
        if tr.dlas is None:
            return Table(
                {"TARGETID": np.zeros(0, np.int64), "Z_DLA": np.zeros(0), "NHI": np.zeros(0)}
            ), targets
        d = tr.dlas
        return Table(
            {
                "TARGETID": np.asarray(d["TARGETID"], np.int64),
                "Z_DLA": np.asarray(d["Z_DLA"], float),
                "NHI": np.asarray(d["NHI"], float),
            }
        ), targets
    if "DLACAT" in names:
        return read_catalog(p).dlas, None
    raise InputError("truth must have a TRUTH/DLA_META or DLACAT HDU, or be a Parks JSON", path=p)


def _read_predictions(path: Path) -> tuple[Table, Table | None]:
    if path.name.endswith((".json", ".json.gz")):
        return read_parks_predictions(path)
    cat = read_catalog(path)
    return cat.dlas, cat.qsos


def evaluate(
    catalog_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: EvaluateConfig | DLAConfig | None = None,
    *,
    windows_path: str | os.PathLike[str] | None = None,
    plots: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Score a DLA catalogue against the truth; write ``metrics.json``, plots and the config.

    Parameters
    ----------
    catalog_path : str or os.PathLike
        Catalogue FITS written by :func:`surveynet.dla.catalog.write_catalog` (DLACAT + QSOCAT),
        or a Parks prediction JSON.
    truth_path : str or os.PathLike
        Truth file (DLA_META, TRUTH), a DLACAT-layout catalogue, or a Parks truth JSON.
    out_dir : str or os.PathLike
        Output folder, created only once the inputs have been read and matched (a run that
        fails on its input leaves no empty folder behind).
    config : EvaluateConfig or DLAConfig, optional
        The matching rules, or the whole resolved config (its ``evaluate`` section is used, and
        all of it is saved as ``config.json`` in ``out_dir``).
    windows_path : str or os.PathLike, optional
        ``.npz`` with ``labels_classifier`` and ``confidence`` arrays (window confusion matrix).
    plots : bool
        Write PNG figures (dz, dlogN histograms; completeness/purity vs N_HI and S/N; confusion).
    overwrite : bool
        Replace an existing ``metrics.json`` and ``config.json`` (checked before any work).

    Returns
    -------
    dict
        The content of ``metrics.json``: :func:`summarize` keys, ``by_nhi``, ``by_s2n``,
        ``summary`` (:func:`summary_bins`: the README's S/N bins with the completeness at
        ``evaluate.fixed_purity``; with a QSOCAT S2N), ``windows`` (when given), ``config``
        (the ``evaluate`` section), ``files``.

    Raises
    ------
    FileExistsError
        ``metrics.json`` or ``config.json`` exists in ``out_dir`` and ``overwrite`` is False.

    Notes
    -----
    When the catalogue has a QSOCAT table, only truth absorbers of its sightlines and inside the
    searched observed range [WAVE_MIN, WAVE_MAX] count, and S/N bins use its S2N column.
    """
    full = (
        config if isinstance(config, DLAConfig) else DLAConfig(evaluate=config or EvaluateConfig())
    )
    cfg = full.evaluate
    out = Path(out_dir)
    for name in ("metrics.json", "config.json"):
        if (out / name).exists() and not overwrite:
            raise FileExistsError(
                f"{out / name} exists; pass overwrite=True (--overwrite) to replace it"
            )
    pred, qsos = _read_predictions(Path(catalog_path))
    pred = confident(pred, cfg, catalog_path)  # cut here so that s2n_p below stays aligned
    truth, _ = read_truth_absorbers(truth_path)
    n_truth_all = len(truth)
    truth = truth[np.asarray(truth["NHI"], float) > cfg.truth_nhi_floor]
    s2n_t = np.full(len(truth), np.nan)
    s2n_p = np.asarray(pred["S2N"], float) if "S2N" in pred.colnames else np.full(len(pred), np.nan)
    if qsos is not None and len(qsos):
        keep, row = searched(truth, qsos)
        if "S2N" in qsos.colnames:
            s2n_t = np.asarray(qsos["S2N"], float)[row]
        truth = truth[keep]
        s2n_t = s2n_t[keep]
    result = match_absorbers(truth, pred, cfg)
    metrics = summarize(result)
    metrics["n_truth_total"] = n_truth_all
    metrics["by_nhi"] = binned_rates(
        result, "nhi", cfg.nhi_bins, np.asarray(truth["NHI"], float), np.asarray(pred["NHI"], float)
    )
    if np.isfinite(s2n_t).any():
        metrics["by_s2n"] = binned_rates(result, "s2n", cfg.s2n_bins, s2n_t, s2n_p)
        metrics["summary"] = summary_bins(truth, pred, cfg, s2n_t, s2n_p)
    if windows_path is not None:
        try:
            with np.load(windows_path, allow_pickle=False) as z:
                metrics["windows"] = window_metrics(z["labels_classifier"], z["confidence"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(
                f"needs arrays labels_classifier and confidence ({exc})", path=windows_path
            ) from exc
    metrics["config"] = to_dict(cfg)
    created = not out.exists()  # the folder is made only once the inputs have been read
    try:
        out.mkdir(parents=True, exist_ok=True)
        metrics["files"] = evaluation_figures(result, metrics, out) if plots else []
        with atomic_path(out / "metrics.json", overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(metrics, indent=1, default=float))
        with atomic_path(out / "config.json", overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(to_dict(full), indent=1) + "\n")
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    logger.info(
        "completeness %s, purity %s (TP %d, FN %d, FP %d)",
        metrics["completeness"],
        metrics["purity"],
        metrics["tp"],
        metrics["fn"],
        metrics["fp"],
    )
    return metrics
