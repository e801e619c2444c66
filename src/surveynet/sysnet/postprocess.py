"""Predictions to weights: combine chains, normalise over the footprint, invert, clip or mask.

Downstream convention of sysnetdev/LSSutils/eBOSS (sysnet.md section 4): F_hat = y_hat /
<y_hat>, weight = 1 / F_hat, limited to [clip_min, clip_max] of F_hat (clip) or set to 0 outside
it (mask, as the DR7 paper removed those pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass
class Weights:
    """Result of :func:`predictions_to_weights`.

    Attributes
    ----------
    selection : ndarray
        Normalised selection F_hat (mean 1 over the footprint; NaN where masked).
    weight : ndarray
        1 / F_hat after clipping, 0 where masked.
    n_outside : int
        Pixels whose F_hat was outside the range.
    """

    selection: NDArray[np.float64]
    weight: NDArray[np.float64]
    n_outside: int


def combine_chains(pred: NDArray[np.float64], how: str = "mean") -> NDArray[np.float64]:
    """Chain mean or median of ``pred`` (n, ncols).

    Examples
    --------
    >>> combine_chains(np.array([[1.0, 3.0], [2.0, 2.0]])).tolist()
    [2.0, 2.0]
    """
    p = np.asarray(pred, np.float64)
    if p.ndim == 1:
        return p
    if how == "mean":
        return p.mean(axis=1)
    if how == "median":
        return np.median(p, axis=1)
    raise ValueError(f"unknown chain combination {how!r} (mean, median)")


def predictions_to_weights(
    pred: NDArray[np.float64],
    *,
    combine: str = "mean",
    clip_min: float = 0.5,
    clip_max: float = 2.0,
    mode: str = "clip",
    fracgood: NDArray[np.float64] | None = None,
) -> Weights:
    """Turn raw predictions into systematic weights.

    Parameters
    ----------
    pred : ndarray of shape (n,) or (n, ncols)
        Raw y_hat per chain.
    combine : {"mean", "median"}
    clip_min, clip_max : float
        Allowed range of F_hat.
    mode : {"clip", "mask"}
    fracgood : ndarray, optional
        If given, the normalisation is the fracgood-weighted mean.

    Returns
    -------
    Weights

    Examples
    --------
    >>> w = predictions_to_weights(np.array([1.0, 1.0, 1.0, 1.0, 4.0, 0.2]))
    >>> w.selection.round(3).tolist()
    [0.732, 0.732, 0.732, 0.732, 2.927, 0.146]
    >>> w.weight.round(3).tolist(), w.n_outside
    ([1.367, 1.367, 1.367, 1.367, 0.5, 2.0], 2)
    """
    if clip_min <= 0 or clip_max <= clip_min:
        raise ValueError(f"need 0 < clip_min < clip_max, got {clip_min}, {clip_max}")
    y = combine_chains(pred, combine)
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        bad = int(np.sum(~(np.isfinite(y) & (y > 0))))
        raise ValueError(f"{bad} non-positive or non-finite predictions: cannot invert")
    w0 = np.ones_like(y) if fracgood is None else np.asarray(fracgood, np.float64)
    sel = y / (np.sum(w0 * y) / np.sum(w0))
    out = (sel < clip_min) | (sel > clip_max)
    if mode == "clip":
        weight = 1.0 / np.clip(sel, clip_min, clip_max)
    elif mode == "mask":
        weight = np.where(out, 0.0, 1.0 / sel)
        sel = np.where(out, np.nan, sel)
    else:
        raise ValueError(f"unknown mode {mode!r} (clip, mask)")
    return Weights(sel, weight, int(out.sum()))
