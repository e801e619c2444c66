"""The sysnet stage of ``surveynet demo``: its own small mock, a tiny ensemble, weights, report."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def demo_stage(ctx: Any, *, nside: int = 16, nepochs: int = 20, nchains: int = 2) -> Any:
    """Run the sysnet demo stage on its own small mock.

    Simulates a nside-``nside`` mock, trains ``nchains`` chains x 5 folds, writes weights and
    the evaluation report (Mollweide maps, mean density before/after, C_ell, losses).

    Parameters
    ----------
    ctx : surveynet.demo.DemoContext
        Output folder, seed, quiet flag.
    nside, nepochs, nchains : int
        Size of the demo run.

    Returns
    -------
    surveynet.demo.DemoSection
    """
    import numpy as np

    from surveynet.demo import DemoSection
    from surveynet.sim.sysmaps import simulate_sysmaps, write_mock
    from surveynet.sysnet.catalog import read_predictions, write_weights
    from surveynet.sysnet.config import config_from_mapping
    from surveynet.sysnet.evaluate import evaluate_run
    from surveynet.sysnet.plots import plot_maps
    from surveynet.sysnet.postprocess import predictions_to_weights
    from surveynet.sysnet.train import train_sysnet

    root = ctx.out / "sysnet"
    root.mkdir(parents=True, exist_ok=True)
    mock = simulate_sysmaps(nside, ctx.seed)
    table = write_mock(root / "sysmaps.fits", mock, seed=ctx.seed, null=False, overwrite=True)
    names = list(mock.feature_names)
    fig = plot_maps(
        {n: mock.features[:, names.index(n)] for n in ("EBV", "nstar", "depth_r", "seeing_r")},
        nside,
        mock.hpix,
    )
    fig.savefig(root / "sysmaps.png", dpi=70)
    cfg = config_from_mapping(
        {
            "input_path": str(table),
            "do_kfold": True,
            "nepochs": nepochs,
            "nchains": nchains,
            "batch_size": 256,
            "learning_rate": 0.01,
            "train": {"forest_trees": 30, "quiet": bool(ctx.quiet)},
        }
    )
    run = train_sysnet(cfg, root / "run", overwrite=True, command="surveynet demo")
    hpix, pred, _ = read_predictions(run / "nn-weights.fits")
    w = predictions_to_weights(pred)
    write_weights(
        root / "weights.fits", hpix, w.selection, w.weight, nside=nside, nest=False, overwrite=True
    )
    metrics = evaluate_run(run, root / "report", overwrite=True)
    rep = root / "report"
    chi = ", ".join(f"{k} {v / metrics['chi2_dof']:.2f}" for k, v in metrics["chi2"].items())
    lines = [
        f"Mock: nside {nside}, {len(mock.hpix)} pixels, 11 imaging maps "
        f"({'SFD/HI4PI' if mock.real_maps else 'synthetic'} Galaxy), lognormal clustering, "
        "non-linear selection, Poisson counts.",
        f"SYSNet dnnp: 5 folds x {nchains} chains x {nepochs} epochs; linear and forest "
        "baselines on the same table.",
        f"Mean-density chi2 per bin (Poisson-like errors): {chi}.",
        f"Weights: {int(np.sum(w.n_outside))} pixels outside [0.5, 2] clipped.",
    ]
    return DemoSection(
        "SYSNet imaging systematics",
        lines,
        images=[
            root / "sysmaps.png",
            rep / "maps.png",
            rep / "mean_density.png",
            rep / "cl.png",
            rep / "losses.png",
        ],
        files=[table, run / "nn-weights.fits", root / "weights.fits", rep / "report.html"],
    )
