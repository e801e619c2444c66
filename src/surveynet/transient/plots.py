"""Figures of the transient pipeline (``ax=None`` in, ``Figure`` out, no ``plt.show``)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["difference_plot", "gallery", "mag_hist", "prob_hist", "recovery_plot", "roc_plot"]


def _fig_ax(ax: Any = None, figsize: tuple[float, float] = (5.0, 3.8)) -> tuple[Any, Any]:
    """A new figure and axes, or the figure of ``ax``."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def recovery_plot(
    values: NDArray[Any],
    detected: NDArray[np.bool_],
    bins: tuple[float, ...],
    xlabel: str,
    *,
    log: bool = False,
    ax: Any = None,
) -> Any:
    """Detected fraction per bin.

    Parameters
    ----------
    values : ndarray
        Magnitude or S/N of each real source.
    detected : ndarray of bool
        Recovered or not.
    bins : tuple of float
        Bin edges.
    xlabel : str
        Axis label.
    log : bool
        Logarithmic x axis.
    ax : matplotlib axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax)
    b = np.asarray(bins, float).copy()
    top = float(np.nanmax(values)) if len(values) else 1.0
    for i in range(len(b)):
        if not np.isfinite(b[i]):
            b[i] = max(top * 1.01, 2 * b[i - 1] if i else 1.0)
    mid, frac = [], []
    for lo, up in itertools.pairwise(b):
        m = (values >= lo) & (values < up)
        if m.any():
            mid.append(0.5 * (lo + up) if not log else np.sqrt(max(lo, 0.5) * up))
            frac.append(detected[m].mean())
    ax.plot(mid, frac, "o-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("detected fraction")
    ax.set_ylim(-0.05, 1.05)
    if log:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    return fig


def mag_hist(mag: NDArray[Any], detected: NDArray[np.bool_], ax: Any = None) -> Any:
    """Histograms of the true magnitudes of all and of detected real sources.

    Parameters
    ----------
    mag : ndarray
        Magnitudes.
    detected : ndarray of bool
        Recovered.
    ax : matplotlib axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax)
    ok = np.isfinite(mag) & (mag < 90)
    bins = np.linspace(np.min(mag[ok]), np.max(mag[ok]), 30) if ok.sum() > 1 else 10
    ax.hist(mag[ok], bins=bins, histtype="step", label="simulated")
    ax.hist(mag[ok & detected], bins=bins, histtype="step", label="detected")
    ax.set_xlabel("true magnitude")
    ax.legend()
    return fig


def prob_hist(prob: NDArray[Any], labels: NDArray[np.bool_], ax: Any = None) -> Any:
    """P(real) histograms of real and bogus candidates (log counts).

    Parameters
    ----------
    prob : ndarray
        P(real).
    labels : ndarray of bool
        Real.
    ax : matplotlib axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax)
    bins = np.linspace(0, 1, 41)
    ax.hist(prob[labels], bins=bins, histtype="step", label="real")
    ax.hist(prob[~labels], bins=bins, histtype="step", label="bogus")
    ax.set_yscale("log")
    ax.set_xlabel("P(real)")
    ax.legend()
    return fig


def roc_plot(curves: dict[str, tuple[Any, Any, float]], ax: Any = None) -> Any:
    """ROC curves.

    Parameters
    ----------
    curves : dict
        name -> (fpr, tpr, auc).
    ax : matplotlib axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax)
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.4f})")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def gallery(stamps: list[NDArray[Any]], titles: list[str], ncol: int = 4) -> Any:
    """A grid of cutouts with titles.

    Parameters
    ----------
    stamps : list of ndarray
        2-D cutouts.
    titles : list of str
        One per stamp.
    ncol : int
        Columns.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = max(len(stamps), 1)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.6 * nrow), squeeze=False)
    for a in axes.ravel():
        a.axis("off")
    for a, st, ti in zip(axes.ravel(), stamps, titles, strict=False):
        v = np.nanpercentile(np.abs(st), 99) or 1.0
        a.imshow(st, origin="lower", cmap="gray", vmin=-v, vmax=v)
        a.set_title(ti, fontsize=7)
    fig.tight_layout()
    return fig


def difference_plot(
    diff: NDArray[Any],
    x: NDArray[Any],
    y: NDArray[Any],
    prob: NDArray[Any] | None = None,
    ax: Any = None,
) -> Any:
    """The difference image with its candidates, coloured by P(real).

    Parameters
    ----------
    diff : ndarray of shape (ny, nx)
        Difference image.
    x, y : ndarray
        Candidate positions (0-based).
    prob : ndarray, optional
        P(real) of each candidate.
    ax : matplotlib axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax, (6.0, 6.0))
    good = diff[np.isfinite(diff) & (diff != 0)]
    mad = float(np.median(np.abs(good - np.median(good)))) if good.size else 0.0
    v = 8 * 1.4826 * mad or 1.0  # +-8 sigma of the noise
    ax.imshow(diff, origin="lower", cmap="gray", vmin=-v, vmax=v)
    import matplotlib as mpl

    c = prob if prob is not None else np.zeros(len(x))
    cmap = mpl.colormaps["coolwarm"]
    ax.scatter(x, y, s=80, facecolors="none", edgecolors=cmap(np.clip(c, 0, 1)), linewidths=1.2)
    sc = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=cmap)
    fig.colorbar(sc, ax=ax, label="P(real)", shrink=0.7)
    ax.set_title("difference image and candidates")
    return fig
