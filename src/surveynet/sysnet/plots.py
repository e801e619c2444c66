"""Figures of the sysnet pipeline (``ax=None`` in where a single axis suffices, ``Figure`` out)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray


def _fig_ax(ax: Axes | None, size: tuple[float, float] = (5, 4)) -> tuple[Figure, Axes]:
    """The figure of ``ax``, or a new Figure with one axis."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size)
    return fig, fig.add_subplot(111)


def plot_maps(
    maps: Mapping[str, NDArray[np.float64]],
    nside: int,
    hpix_ring: NDArray[np.int64],
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Mollweide maps (RING pixels ``hpix_ring``; unseen elsewhere), one panel per entry.

    Parameters
    ----------
    maps : mapping of title to ndarray of shape (n,)
    nside : int
    hpix_ring : ndarray of int64
    ranges : mapping of title to (min, max), optional

    Returns
    -------
    Figure
    """
    import healpy as hp
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5.5 * len(maps), 3.6))
    for i, (title, vals) in enumerate(maps.items()):
        m = np.full(hp.nside2npix(nside), hp.UNSEEN)
        m[hpix_ring] = vals
        lo, hi = (ranges or {}).get(
            title, (float(np.nanpercentile(vals, 2)), float(np.nanpercentile(vals, 98)))
        )
        with warnings.catch_warnings():  # healpy calls a matplotlib API pending deprecation
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            hp.mollview(
                m,
                fig=fig.number,
                sub=(1, len(maps), i + 1),
                title=title,
                min=lo,
                max=hi,
                cmap="viridis",
            )
    plt.close(fig)  # detach from pyplot; the Figure can still be saved
    return fig


def plot_losses(
    train_loss: NDArray[np.float64],
    valid_loss: NDArray[np.float64],
    base_losses: NDArray[np.float64],
    ax: Axes | None = None,
) -> Figure:
    """Training/validation loss per epoch (mean over chains) per partition, minus the baseline.

    Parameters
    ----------
    train_loss, valid_loss : ndarray of shape (npart, nchains, nepochs)
    base_losses : ndarray of shape (npart, 3)
    ax : Axes, optional
    """
    fig, ax = _fig_ax(ax, (6, 4))
    ep = np.arange(1, train_loss.shape[-1] + 1)
    for p in range(train_loss.shape[0]):
        (line,) = ax.plot(ep, train_loss[p].mean(0) - base_losses[p, 0], ls="--", lw=1)
        ax.plot(
            ep,
            valid_loss[p].mean(0) - base_losses[p, 1],
            color=line.get_color(),
            label=f"partition {p}",
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss - baseline (dashed: train, solid: valid)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_mean_density(
    curves: Mapping[str, Mapping[str, Any]],
    feature_names: Sequence[str],
) -> Figure:
    """Mean density against each systematic, one panel per map, one line per method.

    Parameters
    ----------
    curves : mapping method -> {"x": (k, nbins), "y": (k, nbins), "err": (k, nbins)}
    feature_names : sequence of str
    """
    k = len(feature_names)
    ncol = min(4, k)
    nrow = -(-k // ncol)
    fig = Figure(figsize=(3.6 * ncol, 2.8 * nrow))
    for j, name in enumerate(feature_names):
        ax = fig.add_subplot(nrow, ncol, j + 1)
        for method, c in curves.items():
            ax.errorbar(
                c["x"][j], c["y"][j], c["err"][j], label=method, marker=".", ms=3, capsize=0, lw=1
            )
        ax.axhline(1, color="k", lw=0.6)
        ax.set_xlabel(name, fontsize=8)
        if j % ncol == 0:
            ax.set_ylabel("n / <n>")
    fig.axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_cl(
    ell: NDArray[np.int64],
    spectra: Mapping[str, NDArray[np.float64]],
    ax: Axes | None = None,
) -> Figure:
    """Angular power spectra (log-log, ell >= 2)."""
    fig, ax = _fig_ax(ax, (6, 4))
    sel = ell >= 2
    for name, cl in spectra.items():
        ax.plot(
            ell[sel],
            np.abs(cl[sel]),
            label=name,
            lw=1.2 if name != "truth" else 2.0,
            color="k" if name == "truth" else None,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ell")
    ax.set_ylabel("C_ell (shot noise subtracted)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_lr_finder(
    lrs: Sequence[float], losses: Sequence[float], suggested: float, ax: Axes | None = None
) -> Figure:
    """Smoothed loss against learning rate with the suggested rate marked."""
    fig, ax = _fig_ax(ax)
    ax.plot(lrs, losses)
    ax.axvline(suggested, color="r", ls="--", label=f"suggested {suggested:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed loss")
    ax.legend()
    fig.tight_layout()
    return fig
