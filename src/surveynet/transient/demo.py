"""The ``transient`` stage of ``surveynet demo``: one small mock pair through the whole chain.

Simulates a 384 x 384 science/reference pair into ``ctx.out / "transient"``, subtracts and
detects (:mod:`surveynet.transient.detect`), cuts out and labels the candidates through the
truth, scores them with the bundled models (numpy engine), and shows the difference image with
its candidates coloured by P(real) and the ROC curve of each model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from surveynet.demo import DemoSection

__all__ = ["BUNDLED", "run_demo"]

log = logging.getLogger(__name__)

#: The bundled transient models scored by the demo (when installed).
BUNDLED = ("rb_diff_mock", "rb_triplet_mock")


def run_demo(ctx: Any) -> DemoSection:
    """Run the stage.

    Parameters
    ----------
    ctx : surveynet.demo.DemoContext
        Output folder and seed.

    Returns
    -------
    DemoSection
    """
    from astropy.io import fits

    from surveynet.io.model import list_bundled_models
    from surveynet.sim.images import ImageSimConfig, simulate_pair, write_pair
    from surveynet.transient import plots
    from surveynet.transient.config import CutoutConfig, DetectConfig
    from surveynet.transient.cutouts import make_cutouts, read_cutouts
    from surveynet.transient.detect import detect_pair
    from surveynet.transient.evaluate import _savefig, roc_auc, roc_curve
    from surveynet.transient.predict import load_scorer, prepare_inputs

    out = Path(ctx.out) / "transient"
    out.mkdir(parents=True, exist_ok=True)
    cfg = ImageSimConfig(nx=384, ny=384, n_stars=250, n_galaxies=25, n_transients=40, seed=ctx.seed)
    paths = write_pair(
        simulate_pair(cfg, np.random.default_rng(ctx.seed)), out, "demo", overwrite=True
    )
    cand = detect_pair(paths["sci"], paths["ref"], out, DetectConfig(), overwrite=True)
    cut = make_cutouts(out, out, CutoutConfig(), training=True, overwrite=True)
    cube, tab, xm = read_cutouts(cut)
    assert xm is not None  # labelled cutouts carry a CROSSMATCH table
    y = np.asarray(tab["LABEL"]) == 1
    have = {m["name"] for m in list_bundled_models()}
    curves: dict[str, Any] = {}
    probs: dict[str, Any] = {}
    lines = [
        f"Simulated a {cfg.nx}x{cfg.ny} pair (misaligned, PSF mismatch, cosmics, hot pixels, "
        f"a bad column, saturated stars), subtracted it and found {len(tab)} candidates "
        f"({int(y.sum())} real); {int(xm['DETECTED'].sum())}/{len(xm)} real sources detected."
    ]
    for name in BUNDLED:
        if name not in have:
            lines.append(f"bundled model {name} is not installed: not scored")
            continue
        eng, saved = load_scorer(name)
        p = eng(prepare_inputs(cube, saved.preprocessing)) if len(cube) else np.zeros(0)
        probs[name] = p
        if y.any() and (~y).any():
            fpr, tpr, _ = roc_curve(y, p)
            curves[name] = (fpr, tpr, roc_auc(fpr, tpr))
            lines.append(f"{name}: ROC AUC {curves[name][2]:.4f} on this pair")
    with fits.open(out / "demo_diff.fits") as h:
        diff = np.asarray(h["DIFF"].data)
    first = next(iter(probs.values()), None)
    images = [
        _savefig(
            plots.difference_plot(diff, np.asarray(tab["X"]), np.asarray(tab["Y"]), first),
            out / "difference.png",
        )
    ]
    if curves:
        images.append(_savefig(plots.roc_plot(curves), out / "roc.png"))
    return DemoSection(title="transient: real/bogus", lines=lines, images=images, files=[cand, cut])
