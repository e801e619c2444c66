"""Registrations of the quasar core (architectures, numpy engines, convert, bench).

Nothing heavy is imported here: torch, h5py and the engine are imported inside the functions.
"""

from __future__ import annotations

import argparse
from typing import Any

from surveynet.bench import register_bench
from surveynet.registry import (
    add_step,
    register_architecture,
    register_group,
    register_numpy_engine,
)

register_group(
    "quasar", "QuasarNET quasar classifier and redshifts: convert, train, predict, evaluate"
)


@register_architecture("quasarnet")
def _build_quasarnet(**config: Any) -> Any:
    """Torch QuasarNET (imports torch lazily)."""
    from surveynet.quasar.model import build_quasarnet

    return build_quasarnet(**config)


@register_numpy_engine("quasarnet")
def _build_quasarnet_numpy(tensors: dict[str, Any], **config: Any) -> Any:
    """Numpy QuasarNET engine: ``builder(tensors, **config)``."""
    from surveynet.quasar.engine import build_numpy_engine

    return build_numpy_engine(tensors, **config)


def _convert_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", metavar="WEIGHTS.h5", help="Keras HDF5 QuasarNET file")
    parser.add_argument("--out", required=True, metavar="MODELDIR", help="model directory to write")
    parser.add_argument("--name", help="model name (default: directory name)")
    parser.add_argument(
        "--lines",
        help="comma-separated head lines "
        "(default LYA,CIV(1548),CIII(1909),MgII(2796),Hbeta,Halpha)",
    )
    parser.add_argument("--lines-bal", help="comma-separated BAL head lines (default CIV(1548))")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")


def _convert_run(args: argparse.Namespace) -> int:
    from surveynet.io.keras import convert_keras_quasarnet
    from surveynet.io.model import load_model

    def split(s: str | None) -> tuple[str, ...] | None:
        return None if s is None else tuple(x.strip() for x in s.split(",") if x.strip())

    out = convert_keras_quasarnet(
        args.weights,
        args.out,
        lines=split(args.lines),
        lines_bal=split(args.lines_bal),
        name=args.name,
        overwrite=args.overwrite,
    )
    saved = load_model(out, pipeline="quasar")
    cfg = saved.config
    grid = saved.preprocessing["grid"]
    if not args.quiet:
        print(
            f"wrote {out}: {cfg['n_layers']} conv x {cfg['n_filters']} '{cfg['padding']}', "
            f"{cfg['n_lines'] + cfg['n_bal']} heads x {cfg['n_boxes']} boxes, offset rescale "
            f"{'on' if cfg['offset_rescale'] else 'off'}, grid {grid['kind']} {grid['n_bins']} bins"
        )
    return 0


add_step(
    "quasar",
    "convert",
    "original Keras QuasarNET .h5 -> surveynet model directory",
    _convert_args,
    _convert_run,
)


@register_bench("quasar")
def _bench_quasar(quick: bool) -> dict[str, Any]:
    """QuasarNET speed: torch, numpy engine, QuasarNP-style baseline, preprocessing."""
    from surveynet.quasar.bench import run_bench

    return run_bench(quick=quick)
