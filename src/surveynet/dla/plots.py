"""Figures of the dla pipeline: sightlines with the finder's confidence, evaluation plots.

Every function takes ``ax=None`` or an output folder and returns figures or paths; nothing is
shown (``matplotlib`` is imported on use, with the Agg backend of :mod:`surveynet.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import Catalog
from surveynet.dla.postprocess import SightlinePrediction
from surveynet.dla.sightline import Sightline


def plot_sightline(
    sl: Sightline, pred: SightlinePrediction, dlas: Any = None, ax: Any = None
) -> Any:
    """Normalised flux, the finder's per-pixel confidence, true (green) and found (red) absorbers.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    pred : SightlinePrediction
        Per-pixel outputs of the finder.
    dlas : Table, optional
        Catalogue rows of this sightline (Z_DLA, NHI, ABSORBER_TYPE).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from surveynet.plots import new_axes

    fig, ax = new_axes(ax, figsize=(9.0, 3.2))
    w = sl.wave
    ax.plot(w, sl.flux, lw=0.5, color="0.3", label="flux")
    if pred.pixel.size:
        ax.plot(
            w[pred.pixel], pred.confidence * 1.5, lw=0.8, color="tab:blue", label="confidence x1.5"
        )
    x1 = min(w[-1], (1.0 + sl.z_qso) * 1300.0)
    for d in sl.dlas:
        if not w[0] <= d.central_wavelength <= x1:
            continue
        ax.axvline(d.central_wavelength, color="tab:green", ls="--", lw=1)
        ax.text(
            d.central_wavelength, 1.75, f"{d.nhi:.2f}", color="tab:green", fontsize=7, ha="center"
        )
    if dlas is not None:
        for r in dlas:
            lam = (1.0 + float(r["Z_DLA"])) * LYA_REST
            ax.axvline(lam, color="tab:red", lw=1, alpha=0.7)
            ax.text(
                lam,
                -0.35,
                f"{r['ABSORBER_TYPE']} {float(r['NHI']):.2f}",
                color="tab:red",
                fontsize=7,
                ha="center",
            )
    ax.set_xlim(w[0], x1)
    ax.set_ylim(-0.5, 2.0)
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel("normalised flux")
    ax.set_title(f"TARGETID {sl.targetid}  z_qso {sl.z_qso:.3f}  S/N {sl.s2n:.1f}", fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    return fig


def plot_examples(
    sightlines: Sequence[Sightline],
    preds: Sequence[SightlinePrediction],
    catalog: Catalog,
    out: Path,
    n: int = 3,
) -> list[Path]:
    """Save plots of up to ``n`` sightlines with absorbers; return the PNG paths.

    Parameters
    ----------
    sightlines : sequence of Sightline
        Candidates (those with truth absorbers are plotted).
    preds : sequence of SightlinePrediction
        Their finder outputs.
    catalog : Catalog
        The catalogue (found absorbers).
    out : Path
        Folder of the PNG files.
    n : int
        At most this many plots.

    Returns
    -------
    list of Path
    """
    from surveynet.plots import save_figure

    paths = []
    tids = np.asarray(catalog.dlas["TARGETID"]) if len(catalog.dlas) else np.zeros(0, np.int64)
    chosen = [i for i, sl in enumerate(sightlines) if sl.dlas][:n]
    for i in chosen:
        sl = sightlines[i]
        rows = catalog.dlas[tids == sl.targetid] if tids.size else None
        fig = plot_sightline(sl, preds[i], rows)
        paths.append(save_figure(fig, out / f"dla_sightline_{sl.targetid}.png"))
    return paths


def evaluation_figures(result: Any, metrics: dict[str, Any], out: Path) -> list[str]:
    """Save the figures of ``dla evaluate``: error histograms, rates vs N_HI and S/N, confusion.

    Parameters
    ----------
    result : surveynet.dla.evaluate.MatchResult
        Matched truth and predictions (:func:`surveynet.dla.evaluate.match_absorbers`).
    metrics : dict
        The summary (``by_nhi``, ``by_s2n``, ``windows`` when present).
    out : Path
        Folder of the PNG files.

    Returns
    -------
    list of str
        The PNG paths.
    """
    from surveynet.plots import new_axes, save_figure

    files = []
    tr = result.truth
    is_dla = np.asarray(tr["NHI"], float) >= result.config.truth_nhi_min
    sel = is_dla & np.asarray(tr["MATCHED"], bool)
    for col, name, xl in (
        ("DZ", "dz_hist.png", r"$z_{\rm pred} - z_{\rm true}$"),
        ("DNHI", "dnhi_hist.png", r"$\Delta \log N_{\rm HI}$ (pred - true)"),
    ):
        fig, ax = new_axes()
        x = np.asarray(tr[col], float)[sel]
        x = x[np.isfinite(x)]
        if x.size:
            ax.hist(x, bins=50, color="C0")
            ax.set_title(f"bias {x.mean():+.4f}, scatter {x.std():.4f} (n={x.size})")
        ax.set_xlabel(xl)
        ax.set_ylabel("DLAs")
        files.append(str(save_figure(fig, out / name)))
    for key, name in (("by_nhi", "rates_vs_nhi.png"), ("by_s2n", "rates_vs_s2n.png")):
        rows = metrics.get(key)
        if not rows:
            continue
        fig, ax = new_axes()
        k = key.split("_", 1)[1]
        lo = np.array([r[k + "_lo"] for r in rows])
        hi = np.array([r[k + "_hi"] for r in rows])
        hi = np.where(np.isfinite(hi) & (hi < 1e8), hi, lo + (lo[-1] - lo[0]) / max(len(lo) - 1, 1))
        x = 0.5 * (lo + hi)
        for q, c in (("completeness", "C0"), ("purity", "C1")):
            y = np.array([np.nan if r[q] is None else r[q] for r in rows], float)
            ax.plot(x, y, "o-", color=c, label=q)
        ax.set_xlabel("log N_HI" if k == "nhi" else "S/N")
        ax.set_ylim(0, 1.05)
        ax.legend()
        files.append(str(save_figure(fig, out / name)))
    if "windows" in metrics:
        fig, ax = new_axes(figsize=(4.0, 3.5))
        cm = np.array(metrics["windows"]["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center")
        ax.set_xticks([0, 1], ["pred 0", "pred 1"])
        ax.set_yticks([0, 1], ["true 0", "true 1"])
        files.append(str(save_figure(fig, out / "window_confusion.png")))
    return files
