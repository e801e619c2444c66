"""The ``surveynet`` command line, generated from the registry.

``surveynet <group> <step> [options]``: the groups are the pipelines (``quasar``, ``dla``, ...)
and ``simulate``, declared with :func:`surveynet.registry.register_group` and filled with
:func:`surveynet.registry.add_step` in each pipeline's ``__init__``; plus the root commands
``surveynet models``, ``surveynet demo`` and ``surveynet bench``. Every step is a thin wrapper
over a library function.

Only the options of the step being run are built (``add_arguments`` of the other steps is never
called), so ``surveynet --help`` imports the pipeline packages' registrations and nothing heavy.

Exit status: 0 success; 1 bad input or configuration (one-line reason on stderr, nothing
written); 2 usage error; 3 some inputs failed (the output holds the others and a FAILED HDU).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import surveynet
from surveynet.config import add_config_args
from surveynet.errors import SurveynetError
from surveynet.runner import add_runner_args, default_workers

__all__ = ["add_config_args", "add_runner_args", "build_parser", "default_workers", "main"]

log = logging.getLogger("surveynet")


def _selected(argv: Sequence[str] | None) -> tuple[str | None, str | None] | None:
    """Return the (group, step) named on the command line; None means build every step."""
    if argv is None:
        return None
    words = [a for a in argv if not a.startswith("-")]
    return (words[0] if words else None, words[1] if len(words) > 1 else None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser from the registry.

    Parameters
    ----------
    argv : sequence of str, optional
        The command line about to be parsed: only the options of the step it names are built.
        None builds the options of every step (documentation, tests).

    Returns
    -------
    argparse.ArgumentParser
        The root parser.
    """
    from surveynet.registry import group_help, list_steps

    selected = _selected(argv)
    parser = argparse.ArgumentParser(
        prog="surveynet",
        description="Neural networks for survey astronomy: quasar, dla, sysnet, transient.",
        epilog="exit status: 0 ok, 1 bad input or config (nothing written), 2 usage, "
        "3 some inputs failed (see the FAILED HDU)",
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
        sp.set_defaults(_run=step.run)
        if selected is None or selected == (step.group, step.name):
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
            step.add_arguments(sp)

    mp = sub.add_parser("models", help="list bundled models (name, pipeline, training command)")
    mp.set_defaults(_run=_cmd_models)

    dp = sub.add_parser("demo", help="mock data -> every pipeline -> catalogues, plots, index.html")
    bp = sub.add_parser("bench", help="benchmarks: prints a table; --json writes the figures")
    if selected is None or selected[0] == "demo":
        from surveynet import demo

        demo.add_arguments(dp)
        dp.set_defaults(_run=demo.run)
    if selected is None or selected[0] == "bench":
        from surveynet import bench

        bench.add_arguments(bp)
        bp.set_defaults(_run=bench.run)
    return parser


def _cmd_models(args: argparse.Namespace) -> int:
    """``surveynet models``: name, pipeline, architecture and training command of each model."""
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
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (see the module docstring).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
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
