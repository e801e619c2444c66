"""Calibrated QuasarNET quasar probabilities: score, Platt/temperature map, reliability, ECE.

QuasarNET's line confidences are sigmoid outputs of box logits trained with a detection loss, not
probabilities: the threshold where purity = completeness moves from one data set to another
(issue 23). This module turns the network's per-spectrum quasar *score* into a calibrated
probability ``P_QSO_QN`` and measures calibration. It is a leaf (numpy, scipy on demand, the
model-directory helpers of :mod:`surveynet.io.model`): the catalogue, prediction and evaluation
modules import it; the file-level step that joins a catalogue to its truth is
:func:`surveynet.quasar.evaluate.calibrate_catalog` (``surveynet quasar calibrate``).

Definitions
-----------
- **score** ``s``: the ``rank``-th largest emission-line confidence of a spectrum (``rank`` =
  ``predict.n_th`` when fitted, 1 by default: the maximum), i.e. exactly the quantity the
  ``IS_QSO_QN`` rule thresholds (``s > c_th`` iff at least ``n_th`` lines exceed ``c_th``).
  Spectra without outputs (NaN confidences) have no score and no probability.
- **calibration map** (Platt 1999; temperature scaling, Guo et al. 2017, arXiv:1706.04599):
  ``P_QSO = sigmoid(logit(s) / T + b)`` with ``logit(s) = log(s / (1 - s))`` and ``s`` clipped
  to ``[eps, 1 - eps]``, ``eps`` = 1e-7 (the clip of the QuasarNET loss, quasarnet.md §2.3).
  ``method="temperature"`` fits ``T`` alone (``b = 0``); ``method="platt"`` fits ``T`` and ``b``.
  Both minimise the mean log loss (binary cross-entropy) on a held-out set with L-BFGS-B
  (``scipy.optimize.minimize``; ``log T`` bounded to ``[-6, 6]``). The map is monotonic, so the
  ranking of spectra, purity/completeness curves and the ``IS_QSO_QN`` decisions at a matching
  threshold are unchanged; only the probability scale moves.
- **label**: 1 for a confirmed true quasar (``OBJTYPE == QSO`` after the visual-inspection rule
  of :func:`surveynet.quasar.evaluate.match`), else 0 (stars, galaxies and BAD spectra). The
  redshift is not part of the label: ``P_QSO_QN`` is the probability of being a quasar, not of
  ``Z_QN`` being right.
- **reliability diagram** and **calibration errors** (:func:`reliability`; Naeini et al. 2015,
  Guo et al. 2017): ``n_bins`` equal-width bins on [0, 1], bin ``k`` holding
  ``k/n_bins <= p < (k+1)/n_bins`` (``p = 1`` in the last bin); per bin the count ``n_k``, the
  mean predicted probability ``conf_k`` and the fraction of true quasars ``acc_k``;
  ``ECE = sum_k (n_k / N) |acc_k - conf_k|`` and ``MCE = max_k |acc_k - conf_k|`` over the
  non-empty bins. A bin of a few spectra has a large |acc - conf| by chance (binomial noise
  ``sqrt(conf (1 - conf) / n_k)``), so ``mce_populated``, the MCE over bins with at least
  :data:`MCE_MIN_COUNT` spectra, is reported too.

The fitted map is stored as the ``calibration`` block of a model directory's ``config.json``
(:func:`save_calibrated_model`, never touching ``model.safetensors``); when a model carries one,
``surveynet quasar predict`` writes the ``P_QSO_QN`` column; models without one give the same
catalogue as before.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError

__all__ = [
    "CALIBRATION_KEY",
    "EPS",
    "MCE_MIN_COUNT",
    "METHODS",
    "P_QSO_COLUMN",
    "Calibration",
    "calibration_errors",
    "calibration_of",
    "expected_calibration_error",
    "fit_calibration",
    "log_loss",
    "logit",
    "quasar_score",
    "reliability",
    "save_calibrated_model",
    "sigmoid",
]

CALIBRATION_KEY = "calibration"
"""Key of the calibration block in a model's ``config.json``."""
P_QSO_COLUMN = "P_QSO_QN"
"""Catalogue column of the calibrated quasar probability."""
EPS = 1e-7
"""Clip of the score before the logit (the QuasarNET loss clip, quasarnet.md §2.3)."""
METHODS = ("platt", "temperature")
"""Calibration maps: Platt scaling (T and b) and temperature scaling (T, b = 0)."""
LOG_T_BOUND = 6.0
MCE_MIN_COUNT = 10
"""Fewest spectra of a bin counted in ``mce_populated``."""
"""Bound on ``|log T|`` in the fit (T in [0.0025, 403])."""


def logit(p: NDArray[Any], eps: float = EPS) -> NDArray[np.float64]:
    """Return ``log(p / (1 - p))`` of ``p`` clipped to ``[eps, 1 - eps]``, in float64.

    Parameters
    ----------
    p : ndarray
        Probabilities (NaN stays NaN).
    eps : float
        Clip.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> logit(np.array([0.5, 1.0])).round(3).tolist()
    [0.0, 16.118]
    """
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.asarray(np.log(q) - np.log1p(-q))


def sigmoid(z: NDArray[Any]) -> NDArray[np.float64]:
    """Return ``1 / (1 + exp(-z))`` in float64, without overflow warnings.

    Parameters
    ----------
    z : ndarray
        Logits.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> sigmoid(np.array([0.0, -1000.0, 1000.0])).tolist()
    [0.5, 0.0, 1.0]
    """
    x = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def quasar_score(c_lines: NDArray[Any], rank: int = 1) -> NDArray[np.float64]:
    """Return the ``rank``-th largest line confidence of each spectrum (the ``IS_QSO_QN`` score).

    Parameters
    ----------
    c_lines : ndarray of shape (n_spec, n_lines) or (n_spec,)
        Line confidences (``C_LINES``); rows with a NaN have no score.
    rank : int
        1 = the maximum; ``predict.n_th`` in general (``score > c_th`` iff at least ``n_th``
        lines exceed ``c_th``).

    Returns
    -------
    ndarray of float64, shape (n_spec,)
        NaN for rows with NaN confidences.

    Raises
    ------
    ValueError
        ``rank`` outside ``[1, n_lines]``.

    Examples
    --------
    >>> quasar_score(np.array([[0.2, 0.9, 0.5], [np.nan] * 3]), rank=2).tolist()
    [0.5, nan]
    """
    c = np.asarray(c_lines, dtype=np.float64)
    if c.ndim == 1:
        c = c[:, None]
    if not 1 <= rank <= c.shape[1]:
        raise ValueError(f"rank must be in [1, {c.shape[1]}] (number of lines), got {rank}")
    bad = np.isnan(c).any(axis=1)
    s = -np.sort(-np.nan_to_num(c, nan=-1.0), axis=1)[:, rank - 1]
    return np.asarray(np.where(bad, np.nan, s))


def log_loss(p: NDArray[Any], y: NDArray[Any], eps: float = EPS) -> float:
    """Mean binary cross-entropy of probabilities ``p`` for labels ``y`` (p clipped to eps).

    Parameters
    ----------
    p : ndarray of shape (n,)
        Predicted probabilities.
    y : ndarray of shape (n,)
        Labels (0/1 or bool).
    eps : float
        Clip.

    Returns
    -------
    float

    Examples
    --------
    >>> round(log_loss(np.array([0.5, 0.5]), np.array([0, 1])), 4)
    0.6931
    """
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    t = np.asarray(y, dtype=np.float64)
    return float(-np.mean(t * np.log(q) + (1.0 - t) * np.log1p(-q)))


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A fitted map from the QuasarNET score to ``P_QSO = sigmoid(logit(s) / T + b)``.

    Attributes
    ----------
    method : {"platt", "temperature"}
        Two parameters, or ``T`` alone (``bias`` = 0).
    temperature : float
        ``T`` > 0 (> 1 softens, < 1 sharpens the scores).
    bias : float
        ``b``, added to the scaled logit.
    rank : int
        Score = ``rank``-th largest line confidence (:func:`quasar_score`).
    eps : float
        Clip of the score before the logit.
    fit : dict
        Provenance of the fit (data hashes and sizes, log loss and ECE before/after, command);
        free-form, stored in ``config.json``.

    Examples
    --------
    >>> cal = Calibration(method="platt", temperature=2.0, bias=-1.0)
    >>> cal.apply(np.array([[0.5, 0.1]])).round(4).tolist()
    [0.2689]
    >>> Calibration.from_dict(cal.to_dict()) == cal
    True
    """

    method: Literal["platt", "temperature"] = "platt"
    temperature: float = 1.0
    bias: float = 0.0
    rank: int = 1
    eps: float = EPS
    fit: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError`` naming the key)."""
        if self.method not in METHODS:
            raise ValueError(f"calibration.method must be one of {METHODS}, got {self.method!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"calibration.temperature must be > 0, got {self.temperature}")
        if not math.isfinite(self.bias):
            raise ValueError(f"calibration.bias must be finite, got {self.bias}")
        if self.method == "temperature" and self.bias != 0.0:
            raise ValueError("calibration.bias must be 0 for method 'temperature'")
        if self.rank < 1 or not 0 < self.eps < 0.5:
            raise ValueError(
                f"calibration.rank must be >= 1 and eps in (0, 0.5), got {self.rank}, {self.eps}"
            )

    def apply_score(self, score: NDArray[Any]) -> NDArray[np.float64]:
        """Return ``P_QSO`` of scores (NaN stays NaN).

        Parameters
        ----------
        score : ndarray
            Scores (:func:`quasar_score`).

        Returns
        -------
        ndarray of float64
        """
        return sigmoid(logit(score, self.eps) / self.temperature + self.bias)

    def apply(self, c_lines: NDArray[Any]) -> NDArray[np.float64]:
        """Return ``P_QSO`` of line confidences (``C_LINES``; NaN rows give NaN).

        Parameters
        ----------
        c_lines : ndarray of shape (n_spec, n_lines)
            Line confidences.

        Returns
        -------
        ndarray of float64, shape (n_spec,)
        """
        return self.apply_score(quasar_score(c_lines, self.rank))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON block stored under ``calibration`` in ``config.json``."""
        return {
            "method": self.method,
            "formula": "P_QSO = sigmoid(logit(clip(s, eps, 1 - eps)) / temperature + bias), "
            "s = rank-th largest line confidence",
            "temperature": self.temperature,
            "bias": self.bias,
            "rank": self.rank,
            "eps": self.eps,
            "fit": self.fit,
        }

    @classmethod
    def from_dict(cls, block: dict[str, Any]) -> Calibration:
        """Read a ``calibration`` block (:meth:`to_dict`).

        Parameters
        ----------
        block : dict
            The block.

        Returns
        -------
        Calibration

        Raises
        ------
        ModelFormatError
            Missing or invalid parameters.
        """
        try:
            return cls(
                method=block["method"],
                temperature=float(block["temperature"]),
                bias=float(block.get("bias", 0.0)),
                rank=int(block.get("rank", 1)),
                eps=float(block.get("eps", EPS)),
                fit=dict(block.get("fit", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"invalid calibration block in model config: {exc}") from exc


def calibration_of(meta: dict[str, Any] | None) -> Calibration | None:
    """Return the :class:`Calibration` of a model's ``config.json`` (None when it has none).

    Parameters
    ----------
    meta : dict or None
        The model's ``config.json`` (e.g. ``engine.meta``).

    Returns
    -------
    Calibration or None
    """
    block = (meta or {}).get(CALIBRATION_KEY)
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ModelFormatError("the calibration block of the model config is not an object")
    return Calibration.from_dict(block)


def fit_calibration(
    score: NDArray[Any],
    y: NDArray[Any],
    *,
    method: Literal["platt", "temperature"] = "platt",
    rank: int = 1,
    eps: float = EPS,
) -> Calibration:
    """Fit ``T`` (and ``b``) by minimising the mean log loss of ``sigmoid(logit(s) / T + b)``.

    Parameters
    ----------
    score : ndarray of shape (n,)
        Scores of the held-out spectra (:func:`quasar_score`; NaN entries are left out).
    y : ndarray of shape (n,)
        Labels: True/1 for a quasar.
    method : {"platt", "temperature"}
        Two parameters, or ``T`` alone.
    rank : int
        The score's rank (recorded in the result).
    eps : float
        Clip of the score before the logit.

    Returns
    -------
    Calibration
        The fitted map; ``fit`` holds ``n``, ``n_positive``, ``log_loss_before`` (of the raw
        score) and ``log_loss_after``.

    Raises
    ------
    ValueError
        Fewer than 2 usable scores, only one class, or an unknown method.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0.0, 4.0, 20000)
    >>> y = rng.random(20000) < sigmoid(z / 2.0)  # true temperature 2
    >>> cal = fit_calibration(sigmoid(z), y, method="temperature")
    >>> round(cal.temperature, 1)
    2.0
    """
    from scipy.optimize import minimize

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(y).astype(np.float64)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"score and y must be 1-D of the same length, got {s.shape}, {t.shape}")
    ok = np.isfinite(s)
    s, t = s[ok], t[ok]
    if s.size < 2 or t.min() == t.max():
        raise ValueError(
            f"calibration needs >= 2 scored spectra of both classes, got {s.size} "
            f"({int(t.sum())} quasars)"
        )
    z = logit(s, eps)

    def nll(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        inv_t = math.exp(-theta[0])
        b = theta[1] if method == "platt" else 0.0
        a = z * inv_t + b
        # mean softplus(a) - t a, computed stably; gradient via (sigmoid(a) - t)
        loss = float(np.mean(np.logaddexp(0.0, a) - t * a))
        r = sigmoid(a) - t
        g_logt = float(np.mean(r * z * -inv_t))
        g = [g_logt, float(np.mean(r))] if method == "platt" else [g_logt]
        return loss, np.asarray(g)

    x0 = np.zeros(2 if method == "platt" else 1)
    bounds = [(-LOG_T_BOUND, LOG_T_BOUND)] + ([(-50.0, 50.0)] if method == "platt" else [])
    res = minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    temperature = float(math.exp(res.x[0]))
    bias = float(res.x[1]) if method == "platt" else 0.0
    cal = Calibration(method=method, temperature=temperature, bias=bias, rank=rank, eps=eps)
    fit = {
        "n": int(s.size),
        "n_positive": int(t.sum()),
        "log_loss_before": log_loss(s, t, eps),
        "log_loss_after": log_loss(cal.apply_score(s), t, eps),
        "optimizer": f"scipy L-BFGS-B: {res.message!s}",
    }
    return Calibration(
        method=method, temperature=temperature, bias=bias, rank=rank, eps=eps, fit=fit
    )


def reliability(p: NDArray[Any], y: NDArray[Any], n_bins: int = 15) -> dict[str, Any]:
    """Return the reliability diagram and calibration errors of probabilities ``p``.

    Equal-width bins on [0, 1]: bin ``k`` holds ``k/n_bins <= p < (k+1)/n_bins`` (``p = 1`` in
    the last bin). ``ECE = sum_k (n_k / N) |acc_k - conf_k|``, ``MCE = max_k |acc_k - conf_k|``
    over non-empty bins, with ``conf_k`` the mean of ``p`` and ``acc_k`` the fraction of
    positives in bin ``k``; ``mce_populated`` is the MCE over bins of at least
    :data:`MCE_MIN_COUNT` spectra (NaN if none). NaN entries of ``p`` are left out.

    Parameters
    ----------
    p : ndarray of shape (n,)
        Predicted probabilities.
    y : ndarray of shape (n,)
        Labels (True/1 = quasar).
    n_bins : int
        Number of bins.

    Returns
    -------
    dict
        ``n``, ``n_bins``, ``ece``, ``mce``, ``mce_populated``, ``log_loss``, ``brier`` and
        per-bin lists
        ``bin_lower``, ``bin_upper``, ``count``, ``mean_p``, ``frac_pos`` (None for empty bins).

    Raises
    ------
    ValueError
        ``n_bins`` < 1, shapes differ, or values outside [0, 1].

    Examples
    --------
    >>> r = reliability(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1]), n_bins=10)
    >>> round(r["ece"], 6), round(r["mce"], 6), r["count"][0], r["count"][9]
    (0.25, 0.45, 2, 2)
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    q = np.asarray(p, dtype=np.float64)
    t = np.asarray(y).astype(np.float64)
    if q.shape != t.shape or q.ndim != 1:
        raise ValueError(f"p and y must be 1-D of the same length, got {q.shape}, {t.shape}")
    ok = np.isfinite(q)
    q, t = q[ok], t[ok]
    if q.size and (q.min() < 0 or q.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    k = np.minimum((q * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(k, minlength=n_bins)
    sum_p = np.bincount(k, weights=q, minlength=n_bins)
    sum_y = np.bincount(k, weights=t, minlength=n_bins)
    nz = count > 0
    mean_p = np.where(nz, sum_p / np.maximum(count, 1), np.nan)
    frac = np.where(nz, sum_y / np.maximum(count, 1), np.nan)
    gap = np.abs(frac - mean_p)
    n = int(q.size)
    ece = float(np.sum(count[nz] * gap[nz]) / n) if n else float("nan")
    mce = float(np.max(gap[nz])) if n else float("nan")
    big = count >= MCE_MIN_COUNT
    mce_pop = float(np.max(gap[big])) if big.any() else float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1)

    def lst(a: NDArray[Any]) -> list[float | None]:
        return [None if not np.isfinite(v) else float(v) for v in a]

    return {
        "n": n,
        "n_bins": int(n_bins),
        "ece": ece,
        "mce": mce,
        "mce_populated": mce_pop,
        "log_loss": log_loss(q, t) if n else float("nan"),
        "brier": float(np.mean((q - t) ** 2)) if n else float("nan"),
        "bin_lower": edges[:-1].tolist(),
        "bin_upper": edges[1:].tolist(),
        "count": count.astype(int).tolist(),
        "mean_p": lst(mean_p),
        "frac_pos": lst(frac),
    }


def expected_calibration_error(p: NDArray[Any], y: NDArray[Any], n_bins: int = 15) -> float:
    """Return the expected calibration error (equal-width bins; :func:`reliability`).

    Parameters
    ----------
    p : ndarray of shape (n,)
        Predicted probabilities.
    y : ndarray of shape (n,)
        Labels.
    n_bins : int
        Number of bins.

    Returns
    -------
    float

    Examples
    --------
    >>> expected_calibration_error(np.array([0.2, 0.2, 0.2, 0.2, 0.2]), np.array([0, 0, 0, 0, 1]))
    0.0
    """
    return float(reliability(p, y, n_bins)["ece"])


def calibration_errors(
    c_lines: NDArray[Any],
    y: NDArray[Any],
    *,
    rank: int = 1,
    p_qso: NDArray[Any] | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Return the reliability of the raw score and, when given, of ``P_QSO_QN``.

    Parameters
    ----------
    c_lines : ndarray of shape (n_spec, n_lines)
        Line confidences (``C_LINES``).
    y : ndarray of shape (n_spec,)
        Labels (True = quasar).
    rank : int
        Raw score = ``rank``-th largest line confidence.
    p_qso : ndarray of shape (n_spec,), optional
        Calibrated probabilities (the catalogue's ``P_QSO_QN``).
    n_bins : int
        Equal-width bins.

    Returns
    -------
    dict
        ``{"n_bins", "score", "raw": reliability, "p_qso": reliability}`` (``p_qso`` only when
        given); the definitions are in the module docstring.
    """
    out: dict[str, Any] = {
        "n_bins": int(n_bins),
        "score": "max line confidence" if rank == 1 else f"line confidence of rank {rank}",
        "definition": "ECE = sum_k n_k/N |frac_pos_k - mean_p_k|, MCE = max_k |...|, "
        f"{n_bins} equal-width bins on [0, 1]",
        "raw": reliability(quasar_score(c_lines, rank), y, n_bins),
    }
    if p_qso is not None:
        out["p_qso"] = reliability(np.asarray(p_qso, dtype=np.float64), y, n_bins)
    return out


def save_calibrated_model(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    calibration: Calibration,
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out``: a copy of the model directory whose ``config.json`` has the calibration.

    ``model.safetensors`` (and ``history.json``) are copied byte for byte; ``config.json`` gets
    the ``calibration`` block (replacing any previous one) and, with ``name``, a new ``name``.
    The directory is written under a temporary name and renamed. When ``out`` is the model
    directory itself, only its ``config.json`` is replaced (atomically; needs ``overwrite``).

    Parameters
    ----------
    model : str or path
        Model directory or bundled name.
    out : path
        Model directory to write.
    calibration : Calibration
        The fitted map.
    name : str, optional
        Model name (default: the original model's name).
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    ModelFormatError
        ``model`` is not a model directory or bundled name.
    """
    from surveynet.io.fits import atomic_path
    from surveynet.io.model import CONFIG_FILE, resolve_model_path

    src = resolve_model_path(model)
    dst = Path(out)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    meta = json.loads((src / CONFIG_FILE).read_text())
    meta[CALIBRATION_KEY] = calibration.to_dict()
    if name:
        meta["name"] = name
    text = json.dumps(meta, indent=1, sort_keys=False) + "\n"
    if dst.exists() and dst.resolve() == src.resolve():
        with atomic_path(dst / CONFIG_FILE, overwrite=True) as tmp:
            tmp.write_text(text)
        return dst
    tmpdir = dst.with_name(f"{dst.name}.tmp-{os.getpid()}")
    if tmpdir.exists():
        shutil.rmtree(tmpdir)
    tmpdir.mkdir(parents=True)
    try:
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name != CONFIG_FILE:
                shutil.copyfile(f, tmpdir / f.name)
        (tmpdir / CONFIG_FILE).write_text(text)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmpdir, dst)
    finally:
        if tmpdir.exists():
            shutil.rmtree(tmpdir)
    return dst
