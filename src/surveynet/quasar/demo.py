"""The quasar stage of ``surveynet demo``: bundled model on the demo mock, then its evaluation.

Registered in :mod:`surveynet.quasar` (``register_demo("quasar", order=10)``); runs with the
default :class:`surveynet.quasar.config.QuasarConfig` (``predict.model`` is the bundled model),
showing four example spectra.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def quasar_demo(ctx: Any) -> Any:
    """Predict the demo mock with the bundled model and evaluate it against the truth.

    Parameters
    ----------
    ctx : surveynet.demo.DemoContext
        Output folder, mock spectra files, truth file, quiet flag.

    Returns
    -------
    surveynet.demo.DemoSection
        Summary lines, plots, catalogue and metrics files (under ``ctx.out / "quasar"``).
    """
    from surveynet.demo import DemoSection
    from surveynet.quasar.config import QuasarConfig
    from surveynet.quasar.evaluate import evaluate, format_metrics
    from surveynet.quasar.predict import predict_files

    cfg = QuasarConfig()
    cfg = dataclasses.replace(
        cfg, evaluate=dataclasses.replace(cfg.evaluate, n_examples=4, model=cfg.predict.model)
    )
    out = ctx.out / "quasar"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"QuasarNET ({cfg.predict.model}, numpy engine) on {len(ctx.spectra)} coadd files."]
    try:
        res = predict_files(
            ctx.spectra, out / "qn_catalog.fits", config=cfg, quiet=ctx.quiet, overwrite=True
        )
        cat, failures = res.path, res.failures
    except ValueError as exc:  # InputError: every input failed
        return DemoSection("QuasarNET", [*lines, f"failed: {exc}"])
    lines += [f"failed: {r.input}: {r.error}" for r in failures]
    m = evaluate(
        cat, ctx.truth, out / "evaluate", config=cfg, spectra=ctx.spectra[:1], overwrite=True
    )
    lines += format_metrics(m)
    images = [out / "evaluate" / name for name in m["plots"]]
    return DemoSection(
        "QuasarNET", lines, images=images, files=[cat, out / "evaluate" / "metrics.json"]
    )
