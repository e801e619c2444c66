"""The ``dla`` stage of ``surveynet demo``: a small DLA-preset mock through predict and evaluate.

The demo's general mock has few quasars at z >= 2.33, so the stage simulates its own small
DLA-preset mock (150 spectra) into ``ctx.out / "dla"``, runs the bundled finder (numpy engine),
scores the catalogue against the truth (:func:`surveynet.dla.evaluate.evaluate`) and plots a few
sightlines with the per-pixel confidence and the true and found absorbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surveynet.constants import LYA_REST
from surveynet.demo import DemoSection
from surveynet.dla.catalog import Catalog
from surveynet.dla.data import read_sightlines
from surveynet.dla.evaluate import evaluate
from surveynet.dla.postprocess import SightlinePrediction
from surveynet.dla.predict import load_finders, predict_files, route
from surveynet.dla.sightline import Sightline

log = logging.getLogger(__name__)


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


def run_demo(ctx: Any, n: int = 150) -> DemoSection:
    """Demo stage: simulate, predict (numpy engine), evaluate, plot; returns a ``DemoSection``.

    Parameters
    ----------
    ctx : surveynet.demo.DemoContext
        Output folder, seed, quiet flag.
    n : int
        Mock spectra.

    Returns
    -------
    surveynet.demo.DemoSection
    """
    from surveynet.sim.spectra import preset_config, simulate_to_files

    out = Path(ctx.out) / "dla"
    out.mkdir(parents=True, exist_ok=True)
    files, truth = simulate_to_files(
        out / "mock", n, ctx.seed + 20, n_files=1, overwrite=True, config=preset_config("dla")
    )
    finders = load_finders(None)
    cat_path, _, cat = predict_files(
        files,
        out / "dla_catalog.fits",
        qso_catalog=truth,
        workers=0,
        quiet=ctx.quiet,
        overwrite=True,
    )
    metrics = evaluate(cat_path, truth, out / "eval", overwrite=True)
    sls = read_sightlines(files[0], truth, finders[0].data)
    withd = [sl for sl in sls if sl.dlas][:3]
    preds = [route(finders, sl.s2n).predict([sl])[0] for sl in withd]
    images = plot_examples(withd, preds, cat, out)
    images += [
        Path(f) if Path(f).is_absolute() else out / "eval" / f
        for f in metrics.get("files", [])
        if str(f).endswith(".png")
    ][:3]

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    n_dla = int((cat.dlas["ABSORBER_TYPE"] == "DLA").sum()) if len(cat.dlas) else 0
    lines = [
        f"{n} DLA-preset mock spectra (seed {ctx.seed + 20}); "
        f"{len(cat.qsos)} sightlines searched with "
        f"{', '.join(f.name for f in finders)} (numpy engine, S/N-routed).",
        f"Catalogue: {len(cat.dlas)} absorbers, {n_dla} typed DLA.",
        f"Against the truth (log N_HI >= 20.3): completeness {pct(metrics['completeness'])}, "
        f"purity {pct(metrics['purity'])} "
        f"(TP {metrics['tp']}, FN {metrics['fn']}, FP {metrics['fp']}); "
        f"sigma(dz) {metrics['dz'].get('std') if metrics.get('dz') else 'n/a'}.",
        "Commands: surveynet dla predict COADD --truth TRUTH --out CAT.fits; "
        "surveynet dla evaluate CAT.fits --truth TRUTH --out DIR.",
    ]
    return DemoSection(
        "DLA finder",
        lines,
        images=[p for p in images if Path(p).is_file()],
        files=[cat_path, out / "eval" / "metrics.json"],
    )
