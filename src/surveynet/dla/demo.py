"""The ``dla`` stage of ``surveynet demo``: a small DLA-preset mock through predict and evaluate.

The demo's general mock has few quasars at z >= 2.33, so the stage simulates its own small
DLA-preset mock (150 spectra) into ``ctx.out / "dla"``, runs the bundled finder (numpy engine),
scores the catalogue against the truth (:func:`surveynet.dla.evaluate.evaluate`) and plots a few
sightlines with the per-pixel confidence and the true and found absorbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from surveynet.demo import DemoSection
from surveynet.dla.data import read_sightlines
from surveynet.dla.evaluate import evaluate
from surveynet.dla.plots import plot_examples
from surveynet.dla.predict import load_finders, predict_files, route

log = logging.getLogger(__name__)


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
    res = predict_files(
        files,
        out / "dla_catalog.fits",
        qso_catalog=truth,
        workers=0,
        quiet=ctx.quiet,
        overwrite=True,
    )
    cat_path, cat = res.path, res.merged
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
