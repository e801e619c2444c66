"""surveynet.dla: the damped Lyman-alpha absorber finder. All its registrations, in one place.

Architectures (torch builders), numpy engines, the config root, the ``surveynet dla`` steps,
the ``surveynet bench dla`` figures and the ``surveynet demo`` stage are registered here. Nothing
heavy is imported (never torch, never the engines): every builder imports its module when it is
called, every step its library code when it runs (:mod:`surveynet.dla.cli`).

Modules, in dependency order: ``config`` (the one config root, :class:`DLAConfig`),
``sightline`` (data structure, pixel helpers), ``preprocess`` (network inputs), ``data``
(reading sightlines and truth, labels, training sets), ``postprocess`` (finder outputs -> vote
peaks -> absorber rows), ``catalog`` (tables, FITS), ``refine`` and ``vet`` (extra stages),
``engine`` (numpy), ``predict`` (the chain per file), ``evaluate``, ``model`` and ``train``
(torch), ``cli``, ``bench``, ``demo``; plus ``insert`` (DLAs into real sightlines) and ``parks``
(the Parks et al. golden files).
"""

from __future__ import annotations

from typing import Any

from surveynet.bench import register_bench
from surveynet.demo import register_demo
from surveynet.dla import cli
from surveynet.registry import (
    ArchitectureExample,
    add_step,
    register_architecture,
    register_config,
    register_example,
    register_group,
    register_numpy_engine,
)

register_group("dla", "damped Lyman-alpha absorber finder (window CNN and fully-convolutional)")


def _config_root() -> type:
    """The config root :class:`surveynet.dla.config.DLAConfig`."""
    from surveynet.dla.config import DLAConfig

    return DLAConfig


register_config("dla", _config_root)


# ----------------------------------------------------------------------------- architectures


def _example(config: dict[str, Any], shape: tuple[int, ...]) -> ArchitectureExample:
    """A tiny instance with random inputs of ``shape`` (registry-wide tests)."""
    import numpy as np

    from surveynet.nn.torch_ops import torch_forward

    x = np.random.default_rng(0).standard_normal(shape)
    return ArchitectureExample(
        config=config,
        inputs=x,
        torch_forward=torch_forward,
        numpy_forward=lambda engine, a: engine(a),
        atol=1e-4,
    )


@register_example("dla_window_cnn")
def window_cnn_example() -> ArchitectureExample:
    """Return a window CNN with 8 filters per layer and 4 windows of 400 pixels."""
    return _example({"conv_filters": [8, 8, 8]}, (4, 1, 400))


@register_example("dla_fcn")
def fcn_example() -> ArchitectureExample:
    """Return a fully-convolutional finder 8 channels wide and 2 sightlines of 256 pixels."""
    cfg = {"stem_channels": [8, 8], "width": 8, "dilations": [1, 2], "head_hidden": 8}
    return _example(cfg, (2, 1, 256))


@register_example("dla_refiner")
def refiner_example() -> ArchitectureExample:
    """Return a refiner 8 channels wide and 2 crops."""
    return _example({"widths": [8, 8, 8, 8, 8, 8], "hidden": 16}, (2, 3, 512))


@register_architecture("dla_window_cnn")
def _build_window_cnn(**config: Any) -> Any:
    """Torch window CNN (:func:`surveynet.dla.model.build_window_cnn`; imports torch)."""
    from surveynet.dla.model import build_window_cnn

    return build_window_cnn(**config)


@register_architecture("dla_fcn")
def _build_fcn(**config: Any) -> Any:
    """Torch fully-convolutional finder (:func:`surveynet.dla.model.build_fcn`; imports torch)."""
    from surveynet.dla.model import build_fcn

    return build_fcn(**config)


@register_architecture("dla_refiner")
def _build_refiner(**config: Any) -> Any:
    """Torch second-stage localiser (:func:`surveynet.dla.model.build_refiner`; imports torch)."""
    from surveynet.dla.model import build_refiner

    return build_refiner(**config)


# ----------------------------------------------------------------------------- numpy engines


@register_numpy_engine("dla_window_cnn")
def _window_engine(tensors: Any, config: Any, **options: Any) -> Any:
    """Numpy engine of the window CNN (``engine.build_window_engine``)."""
    from surveynet.dla.engine import build_window_engine

    return build_window_engine(tensors, config, **options)


@register_numpy_engine("dla_fcn")
def _fcn_engine(tensors: Any, config: Any, **options: Any) -> Any:
    """Numpy engine of the fully-convolutional finder (``engine.build_fcn_engine``)."""
    from surveynet.dla.engine import build_fcn_engine

    return build_fcn_engine(tensors, config, **options)


@register_numpy_engine("dla_refiner")
def _refiner_engine(tensors: Any, config: Any, **options: Any) -> Any:
    """Numpy engine of the second-stage localiser (``engine.build_refiner_engine``)."""
    from surveynet.dla.engine import build_refiner_engine

    return build_refiner_engine(tensors, config, **options)


# ----------------------------------------------------------------------------- CLI steps

add_step(
    "dla",
    "train",
    "train the window CNN, the fully-convolutional finder, a refiner or the absorber vetter",
    cli.train_args,
    cli.train_run,
)
add_step(
    "dla",
    "predict",
    "find DLAs in spectra files -> catalogue (numpy engine; with no redshift source the "
    "bundled QuasarNET runs first)",
    cli.predict_args,
    cli.predict_run,
)
add_step(
    "dla",
    "evaluate",
    "score a DLA catalogue against the truth -> metrics.json + plots",
    cli.evaluate_args,
    cli.evaluate_run,
)


# ----------------------------------------------------------------------------- bench, demo


@register_bench("dla")
def _bench_dla(quick: bool) -> dict[str, Any]:
    """``surveynet bench dla``: window CNN vs fully-convolutional finder on the same sightlines."""
    from surveynet.dla.bench import bench_dla

    return bench_dla(quick)


@register_demo("dla", order=20)
def _demo(ctx: Any) -> Any:
    """``surveynet demo`` stage (:func:`surveynet.dla.demo.run_demo`)."""
    from surveynet.dla.demo import run_demo

    return run_demo(ctx)
