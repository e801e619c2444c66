"""QuasarNET figures: purity/completeness, dv histogram, confusion, reliability, spectra.

Every function takes ``ax=None`` and returns a matplotlib ``Figure`` (Agg; no pyplot state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.plots import new_axes
from surveynet.quasar.config import EvaluateConfig, PredictConfig


def plot_purity_completeness(
    c_th: NDArray[Any],
    purity: NDArray[Any],
    completeness: NDArray[Any],
    c_cross: float | None = None,
    pc_cross: float | None = None,
    ax: Any = None,
) -> Any:
    """Purity and completeness against the confidence threshold, crossover marked."""
    fig, ax = new_axes(ax)
    ax.plot(c_th, purity, label="purity", color="C0")
    ax.plot(c_th, completeness, label="completeness", color="C1")
    if c_cross is not None and np.isfinite(c_cross):
        ax.axvline(c_cross, color="0.5", ls=":", lw=1)
        ax.set_title(f"crossover c_th = {c_cross:.3f}: P = C = {100 * (pc_cross or np.nan):.2f} %")
    vals = np.concatenate([np.asarray(purity, float), np.asarray(completeness, float)])
    vals = vals[np.isfinite(vals)]
    lo = max(0.0, float(np.min(vals)) - 0.01) if vals.size else 0.0
    ax.set_ylim(max(lo, 0.9) if vals.size and np.min(vals) > 0.9 else lo, 1.002)
    ax.set_xlabel("confidence threshold c_th")
    ax.set_ylabel("fraction")
    ax.legend(loc="lower center")
    ax.grid(alpha=0.3)
    return fig


def plot_dv_histogram(
    dv: NDArray[Any], dv_max: float = EvaluateConfig.dv_max, ax: Any = None
) -> Any:
    """Histogram of velocity errors (km/s) within ±dv_max; the count outside is in the title."""
    fig, ax = new_axes(ax)
    d = np.asarray(dv, dtype=np.float64)
    d = d[np.isfinite(d)]
    inside = d[np.abs(d) <= dv_max]
    ax.hist(inside, bins=60, range=(-dv_max, dv_max), color="C0")
    sig = float(np.std(inside)) if inside.size > 1 else float("nan")
    ax.set_title(
        f"dv: sigma = {sig:.0f} km/s, {int((np.abs(d) > dv_max).sum())} of {d.size} beyond "
        f"±{dv_max:.0f}"
    )
    ax.set_xlabel("dv = c (z_QN - z_true)/(1 + z_true)  [km/s]")
    ax.set_ylabel("quasars")
    return fig


def plot_confusion(
    conf: dict[str, dict[str, int]], pred_classes: Sequence[str], ax: Any = None
) -> Any:
    """Row-normalised confusion matrix (true class rows, predicted class columns) with counts."""
    fig, ax = new_axes(ax, figsize=(5.5, 4.0))
    rows = list(conf)
    mat = np.array([[conf[t][p] for p in pred_classes] for t in rows], dtype=float)
    frac = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(pred_classes)):
            ax.text(
                j,
                i,
                f"{int(mat[i, j])}\n{100 * frac[i, j]:.1f}%",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.6 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(pred_classes)), list(pred_classes))
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def plot_reliability(curves: dict[str, dict[str, Any]], ax: Any = None) -> Any:
    """Reliability diagram: fraction of true quasars against mean predicted probability.

    Parameters
    ----------
    curves : dict of str to dict
        Label -> :func:`surveynet.quasar.calibrate.reliability` output (``mean_p``, ``frac_pos``,
        ``count``, ``bin_lower``, ``bin_upper``, ``ece``, ``mce``); equal bins for all curves.
    ax : matplotlib Axes, optional
        Axes of the diagram; the counts then go to an inset below it.

    Returns
    -------
    matplotlib.figure.Figure
        The diagram (diagonal = perfect calibration; ECE/MCE in the legend) above the number of
        spectra per bin (log scale, one bar set per curve).
    """
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.0, 6.0), layout="constrained")
        ax, axc = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    else:
        fig = ax.figure
        axc = ax.inset_axes((0.0, -0.45, 1.0, 0.3))
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect calibration")
    n_curves = max(len(curves), 1)
    for i, (label, r) in enumerate(curves.items()):
        mp = np.array([np.nan if v is None else v for v in r["mean_p"]], dtype=float)
        fp = np.array([np.nan if v is None else v for v in r["frac_pos"]], dtype=float)
        ok = np.isfinite(mp) & np.isfinite(fp)
        ax.plot(
            mp[ok],
            fp[ok],
            marker="o",
            ms=4,
            color=f"C{i}",
            label=f"{label}: ECE {100 * r['ece']:.2f} %, MCE {100 * r['mce']:.1f} %",
        )
        lo = np.asarray(r["bin_lower"], dtype=float)
        hi = np.asarray(r["bin_upper"], dtype=float)
        w = (hi - lo) / n_curves
        axc.bar(
            lo + i * w,
            np.asarray(r["count"], dtype=float),
            width=w,
            align="edge",
            color=f"C{i}",
            alpha=0.8,
            log=True,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction of true quasars")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    axc.set_xlabel("mean predicted probability (bin)")
    axc.set_ylabel("spectra")
    return fig


def plot_spectrum_lines(
    wave: NDArray[Any],
    x: NDArray[Any],
    z_lines: NDArray[Any],
    c_lines: NDArray[Any],
    line_names: Sequence[str],
    rest_wave: Sequence[float],
    *,
    c_th: float = PredictConfig.c_th,
    title: str = "",
    ax: Any = None,
) -> Any:
    """Plot a (preprocessed) spectrum with the lines QuasarNET detected at their redshift.

    Parameters
    ----------
    wave : ndarray of shape (n_pix,)
        Wavelengths (Å).
    x : ndarray of shape (n_pix,)
        Flux (normalised network input or raw flux).
    z_lines, c_lines : ndarray of shape (n_lines,)
        Per-line redshift and confidence.
    line_names, rest_wave : sequence
        Line names and rest wavelengths (Å).
    c_th : float
        Lines with confidence above this are drawn solid, others dotted.
    title : str
        Axes title.
    """
    fig, ax = new_axes(ax, figsize=(8.0, 3.0))
    ax.plot(wave, x, lw=0.6, color="k")
    lo, hi = float(np.min(wave)), float(np.max(wave))
    for i, (name, lr) in enumerate(zip(line_names, rest_wave, strict=True)):
        z, c = float(z_lines[i]), float(c_lines[i])
        if not np.isfinite(z):
            continue
        lam = lr * (1 + z)
        if lo <= lam <= hi:
            det = c > c_th
            ax.axvline(
                lam,
                color=f"C{i}",
                ls="-" if det else ":",
                lw=1.2 if det else 0.8,
                alpha=1.0 if det else 0.6,
            )
            ax.text(
                lam,
                0.97,
                f"{name} {c:.2f}",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color=f"C{i}",
            )
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel("normalised flux")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
