"""surveynet.sysnet pipeline (SYSNet): registrations only; nothing heavy is imported here.

Registers: the CLI group ``sysnet`` (steps ``train``, ``predict``, ``weights``, ``evaluate``,
``convert``), the step ``simulate sysmaps``, the architectures ``sysnet_dnn``, ``sysnet_dnnp``,
``sysnet_dnnps``, ``sysnet_lin``, ``sysnet_linp`` (prefixed to keep the registry's names
unambiguous across pipelines) with their numpy engines, the benchmark ``sysnet`` and the demo
stage ``sysnet``.
"""

from __future__ import annotations

from typing import Any

from surveynet.bench import register_bench
from surveynet.demo import register_demo
from surveynet.registry import (
    ArchitectureExample,
    add_step,
    register_architecture,
    register_config,
    register_example,
    register_group,
    register_numpy_engine,
)
from surveynet.sim import cli as _sim_cli  # noqa: F401  (declares the "simulate" group first)
from surveynet.sysnet import cli as _cli

register_group(
    "sysnet",
    "SYSNet: regress galaxy counts on imaging maps; train, predict, weights, evaluate, convert",
)


def _config_root() -> type:
    """Return :class:`SysnetConfig` (imported lazily)."""
    from surveynet.sysnet.config import SysnetConfig

    return SysnetConfig


register_config("sysnet", _config_root)

ARCHITECTURES = ("dnn", "dnnp", "dnnps", "lin", "linp")


def _torch_builder(name: str) -> Any:
    """Torch builder of architecture ``name`` for the registry."""

    def build(**config: Any) -> Any:
        """Torch sysnet model (``input_dim``, ``nn_structure``; torch imported lazily)."""
        from surveynet.sysnet.model import build_single

        return build_single(
            name, int(config["input_dim"]), tuple(config.get("nn_structure", (4, 20)))
        )

    return build


def _numpy_builder(name: str) -> Any:
    """Numpy-engine builder of architecture ``name`` for the registry."""

    def build(tensors: dict[str, Any], config: dict[str, Any], **options: Any) -> Any:
        """Numpy sysnet engine ``(tensors, config, **options)``: ``f(x_normalised) -> y_hat``."""
        from surveynet.sysnet.engine import build as build_engine

        return build_engine(tensors, {**dict(config), "model": name}, **options)

    return build


def _example(name: str) -> Any:
    """Example factory of architecture ``name`` (registry-wide tests)."""

    def example() -> ArchitectureExample:
        """Return a (3, 8) network on 5 features and 16 random pixels."""
        import numpy as np

        from surveynet.nn.torch_ops import torch_forward

        return ArchitectureExample(
            config={"model": name, "input_dim": 5, "nn_structure": [3, 8]},
            inputs=np.random.default_rng(0).standard_normal((16, 5)),
            torch_forward=lambda m, a: torch_forward(m, a)[:, 0],
            numpy_forward=lambda engine, a: engine(a),
            atol=1e-5,
        )

    return example


for _name in ARCHITECTURES:
    register_architecture(f"sysnet_{_name}")(_torch_builder(_name))
    register_numpy_engine(f"sysnet_{_name}")(_numpy_builder(_name))
    register_example(f"sysnet_{_name}")(_example(_name))

add_step(
    "sysnet",
    "train",
    "train the SYSNet ensemble (+ linear and forest baselines)",
    _cli.train_args,
    _cli.train_run,
)
add_step(
    "sysnet",
    "predict",
    "features table + trained run or model directory -> predictions (numpy engine)",
    _cli.predict_args,
    _cli.predict_run,
)
add_step(
    "sysnet",
    "weights",
    "predictions -> systematic weights (mean, normalise, 1/x, clip)",
    _cli.weights_args,
    _cli.weights_run,
)
add_step(
    "sysnet",
    "evaluate",
    "diagnostics report: maps, losses, mean density, C_ell",
    _cli.evaluate_args,
    _cli.evaluate_run,
)
add_step(
    "sysnet",
    "convert",
    "sysnetdev best.pth.tar -> surveynet model directory",
    _cli.convert_args,
    _cli.convert_run,
)
add_step(
    "simulate",
    "sysmaps",
    "HEALPix imaging-systematics mock table (+ truth) for sysnet",
    _cli.sysmaps_args,
    _cli.sysmaps_run,
)


@register_bench("sysnet")
def _bench(quick: bool) -> dict[str, Any]:
    """Production-shape training time, batched chains vs a per-sample DataLoader loop."""
    from surveynet.sysnet.bench import run_bench

    return run_bench(quick)


@register_demo("sysnet", order=70)
def _demo(ctx: Any) -> Any:
    """Small mock, tiny ensemble, weights and diagnostics."""
    from surveynet.sysnet.demo import demo_stage

    return demo_stage(ctx)
