"""surveynet.quasar: the QuasarNET pipeline (quasar classification and redshifts).

This module holds **all registrations of the pipeline** (docs/architecture.md): the command
group and its steps (``convert``, ``prepare``, ``train``, ``predict``, ``evaluate``,
``calibrate``; thin step
functions in :mod:`surveynet.quasar.cli`), the config root
(:class:`surveynet.quasar.config.QuasarConfig`), the ``quasarnet`` torch architecture and numpy
engine, the ``surveynet bench quasar`` figures and the ``surveynet demo`` stage. Nothing heavy
is imported here (never torch, astropy or the engine): every builder imports its module when
called.

Modules: ``config`` (the config root), ``data`` (training-set preparation), ``preprocess``,
``model`` (torch), ``engine`` (numpy), ``postprocess``, ``catalog``, ``train``, ``predict``,
``evaluate``, ``plots``, ``cli``, ``bench``, ``demo``; extra stages ``lines``, ``convert`` and
``calibrate`` (calibrated quasar probabilities).
"""

from __future__ import annotations

from typing import Any

from surveynet.bench import register_bench, register_bench_part
from surveynet.demo import register_demo
from surveynet.quasar import cli
from surveynet.registry import (
    ArchitectureExample,
    add_step,
    register_architecture,
    register_config,
    register_example,
    register_group,
    register_numpy_engine,
)

register_group(
    "quasar",
    "QuasarNET quasar classifier and redshifts: convert, prepare, train, predict, evaluate; "
    "BAL troughs: bal",
)


def _config_root() -> type:
    """Return :class:`surveynet.quasar.config.QuasarConfig` (imported on first use)."""
    from surveynet.quasar.config import QuasarConfig

    return QuasarConfig


register_config("quasar", _config_root)


@register_architecture("quasarnet")
def build_quasarnet(**config: Any) -> Any:
    """Build the torch QuasarNET of an architecture config (imports torch).

    Parameters
    ----------
    **config
        Fields of :class:`surveynet.quasar.config.QuasarNetConfig`.

    Returns
    -------
    surveynet.quasar.model.QuasarNetTorch
        The module, randomly initialised from torch's global generator.
    """
    from surveynet.quasar.model import build_quasarnet as build

    return build(**config)


@register_example("quasarnet")
def quasarnet_example() -> ArchitectureExample:
    """Return a tiny QuasarNET (2 conv layers x 4 filters) and 3 random spectra.

    Returns
    -------
    ArchitectureExample
        For the registry-wide build / save / load / numpy-parity test.
    """
    import numpy as np

    from surveynet.nn.torch_ops import torch_forward

    x = np.random.default_rng(0).standard_normal((3, 443)).astype(np.float32)
    return ArchitectureExample(
        config={"n_layers": 2, "n_filters": 4, "n_fc": 8},
        inputs=x,
        torch_forward=torch_forward,
        numpy_forward=lambda engine, a: engine.forward(a),
        atol=1e-5,
    )


@register_numpy_engine("quasarnet")
def build_quasarnet_engine(tensors: dict[str, Any], config: Any, **options: Any) -> Any:
    """Build the numpy QuasarNET engine: ``builder(tensors, config, **options)``.

    Parameters
    ----------
    tensors : dict of str to ndarray
        ``state_dict``-named weights.
    config : dict or QuasarNetConfig
        Architecture config (the ``config`` block of ``config.json``).
    **options
        Engine options (``dtype``).

    Returns
    -------
    surveynet.quasar.engine.NumpyQuasarNet
        The engine.
    """
    from surveynet.quasar.engine import build_numpy_engine

    return build_numpy_engine(tensors, config, **options)


add_step(
    "quasar",
    "convert",
    "original Keras QuasarNET .h5 -> surveynet model directory",
    cli.convert_args,
    cli.convert_run,
)
add_step(
    "quasar",
    "prepare",
    "spectra + truth (or a fresh mock) -> prepared training dataset .npz",
    cli.prepare_args,
    cli.prepare_run,
)
add_step(
    "quasar",
    "train",
    "train QuasarNET (torch) on prepared data -> model directory",
    cli.train_args,
    cli.train_run,
)
add_step(
    "quasar",
    "predict",
    "spectra files -> QuasarNET catalogue FITS (numpy engine)",
    cli.predict_args,
    cli.predict_run,
)
add_step(
    "quasar",
    "evaluate",
    "catalogue + truth -> purity/completeness, dv, confusion, reliability/ECE, plots",
    cli.evaluate_args,
    cli.evaluate_run,
)
add_step(
    "quasar",
    "calibrate",
    "held-out catalogue + truth -> model copy with a P_QSO_QN calibration (Platt/temperature)",
    cli.calibrate_args,
    cli.calibrate_run,
)


@register_bench("quasar")
def bench_quasar(quick: bool) -> dict[str, Any]:
    """Return the QuasarNET speed figures: torch, numpy engine, QuasarNP-style, preprocessing.

    Parameters
    ----------
    quick : bool
        Small sizes.

    Returns
    -------
    dict
        Figure name -> value.
    """
    from surveynet.quasar.bench import run_bench

    return run_bench(quick=quick)


@register_bench_part("spectra", "quasar_preprocess")
def bench_spectra_quasar(quick: bool) -> dict[str, Any]:
    """Return read + rebin + normalise speed for ``surveynet bench spectra`` (one core).

    Parameters
    ----------
    quick : bool
        Small sizes.

    Returns
    -------
    dict
        Figure name -> value (:func:`surveynet.quasar.bench.read_preprocess_figures`).
    """
    from surveynet.quasar.bench import read_preprocess_figures

    return read_preprocess_figures(quick=quick)


@register_demo("quasar", order=10)
def demo_quasar(ctx: Any) -> Any:
    """Run the quasar demo stage (:func:`surveynet.quasar.demo.quasar_demo`).

    Parameters
    ----------
    ctx : surveynet.demo.DemoContext
        What every demo stage gets.

    Returns
    -------
    surveynet.demo.DemoSection
        The quasar section of the report.
    """
    from surveynet.quasar.demo import quasar_demo

    return quasar_demo(ctx)


add_step(
    "quasar",
    "bal",
    "spectra + quasar redshifts -> BAL catalogue FITS (BI/AI of CIV and SiIV, trough limits)",
    cli.bal_args,
    cli.bal_run,
)
