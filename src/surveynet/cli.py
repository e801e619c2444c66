"""The ``surveynet`` command line, built from the step registry.

``surveynet <group> <step> [options]``: groups are the pipelines (``quasar``, ``dla``, ...) and
``simulate``; plus ``surveynet models``, ``surveynet demo`` and ``surveynet bench``. Every step is
a thin wrapper over a library function (see :mod:`surveynet.registry`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import surveynet
from surveynet.errors import SurveynetError

log = logging.getLogger("surveynet")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set section.key=value``."""
    parser.add_argument("--config", metavar="FILE", help="config file (JSON or YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=5 (repeatable)",
    )


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` and ``--scheduler ADDRESS`` for many-file work (Dask distributed)."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local Dask worker processes (default: 1 per input file up to 2; 0 = in process)",
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask scheduler")


def default_workers(args: argparse.Namespace, n_inputs: int) -> int:
    """Workers to use: ``--workers`` if given, in-process for one file, else min(n, 2)."""
    if getattr(args, "workers", None) is not None:
        return int(args.workers)
    return 0 if n_inputs <= 1 else min(n_inputs, 2)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, generated from the registry."""
    from surveynet import bench, demo
    from surveynet.registry import group_help, list_steps

    parser = argparse.ArgumentParser(
        prog="surveynet",
        description="Neural networks for survey astronomy: quasar, dla, sysnet, transient.",
    )
    parser.add_argument("--version", action="version", version=f"surveynet {surveynet.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")

    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for step in list_steps():
        if step.group not in groups:
            gp = sub.add_parser(step.group, help=group_help(step.group))
            groups[step.group] = gp.add_subparsers(dest="step", metavar="STEP")
            gp.set_defaults(_group_parser=gp)
        sp = groups[step.group].add_parser(step.name, help=step.help, description=step.help)
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        step.add_arguments(sp)
        sp.set_defaults(_run=step.run)

    mp = sub.add_parser("models", help="list bundled models (name, pipeline, training command)")
    mp.set_defaults(_run=_cmd_models)

    dp = sub.add_parser("demo", help="mock data -> every pipeline -> catalogues, plots, index.html")
    demo.add_arguments(dp)
    dp.set_defaults(_run=demo.run)

    bp = sub.add_parser("bench", help="benchmarks: prints a table; --json writes the figures")
    bench.add_arguments(bp)
    bp.set_defaults(_run=bench.run)
    return parser


def _cmd_models(args: argparse.Namespace) -> int:
    from surveynet.io.model import list_bundled_models

    models = list_bundled_models()
    if not models:
        print("no bundled models")
        return 0
    w = max(len(m["name"]) for m in models)
    for m in models:
        print(f"{m['name']:<{w}}  {m['pipeline']:<9}  {m['architecture']:<24}  {m['command']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    run = getattr(args, "_run", None)
    if run is None:
        gp = getattr(args, "_group_parser", parser)
        gp.print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except (SurveynetError, FileExistsError, FileNotFoundError, ValueError, KeyError) as exc:
        msg = str(exc).strip("'\"")
        print(f"surveynet: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
