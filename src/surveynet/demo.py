"""``surveynet demo --out DIR``: mock data through every pipeline, with an HTML report.

Each pipeline registers a demo stage with :func:`register_demo` in its package ``__init__`` (the
stage function itself lives in the pipeline's ``demo`` module and is imported when the stage
runs). A stage receives a :class:`DemoContext` (output folder, mock spectra files, truth file,
seed, quiet flag) and returns a :class:`DemoSection` (title, summary lines, images, output files)
that goes into ``index.html``. Stages use their pipeline's default config.

Nothing heavy is imported by this module.
"""

from __future__ import annotations

import argparse
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class DemoContext:
    """What every demo stage gets.

    Attributes
    ----------
    out : Path
        The demo's output folder (a stage writes under ``out / <pipeline>``).
    spectra : list of Path
        Mock DESI coadd files.
    truth : Path
        Their truth file.
    seed : int
        Seed of the mock.
    quiet : bool
        No progress bars.
    """

    out: Path
    spectra: list[Path]
    truth: Path
    seed: int
    quiet: bool = True


@dataclass
class DemoSection:
    """What a demo stage returns for the report.

    Attributes
    ----------
    title : str
        Section heading.
    lines : list of str
        Summary paragraphs.
    images : list of Path
        Figures shown inline.
    files : list of Path
        Outputs linked from the report.
    """

    title: str
    lines: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


DemoFn = Callable[[DemoContext], DemoSection]
_STAGES: dict[str, tuple[int, DemoFn]] = {}


def register_demo(name: str, order: int = 50) -> Callable[[DemoFn], DemoFn]:
    """Register a demo stage; stages run by increasing ``order``.

    Parameters
    ----------
    name : str
        Stage name (the pipeline's).
    order : int
        Position in the report.

    Returns
    -------
    callable
        A decorator that registers and returns ``fn(ctx) -> DemoSection``.

    Raises
    ------
    KeyError
        ``name`` is already registered.
    """

    def deco(fn: DemoFn) -> DemoFn:
        if name in _STAGES:
            raise KeyError(f"demo stage {name!r} is already registered")
        _STAGES[name] = (order, fn)
        return fn

    return deco


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``surveynet demo`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``demo`` parser.
    """
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=2026, help="mock seed")
    parser.add_argument("--n", type=int, default=200, help="number of mock spectra")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Make a small mock, run every registered stage, write ``index.html``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``surveynet demo`` options.

    Returns
    -------
    int
        Exit status 0.
    """
    from surveynet.registry import load_pipelines
    from surveynet.sim.spectra import simulate_to_files

    load_pipelines()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files, truth = simulate_to_files(
        out / "mock", n=args.n, seed=args.seed, n_files=2, overwrite=True
    )
    ctx = DemoContext(out=out, spectra=files, truth=truth, seed=args.seed, quiet=args.quiet)
    sections = [
        DemoSection(
            "Mock spectra",
            [
                f"{args.n} DESI-like spectra (seed {args.seed}) in {len(files)} coadd files, "
                f"made in {time.perf_counter() - t0:.1f} s."
            ],
            files=[*files, truth],
        )
    ]
    for name, (_, fn) in sorted(_STAGES.items(), key=lambda kv: kv[1][0]):
        t1 = time.perf_counter()
        log.info("demo stage %s", name)
        try:
            sec = fn(ctx)
        except ModuleNotFoundError as exc:
            if exc.name != "torch":
                raise
            # inference needs only numpy/scipy/astropy; a stage that trains needs PyTorch
            sec = DemoSection(
                name,
                [
                    "Skipped: this stage trains a network and needs PyTorch "
                    "(pip install torch, or pip install '.[train]')."
                ],
            )
        sec.lines.append(f"Stage time: {time.perf_counter() - t1:.1f} s.")
        sections.append(sec)
    write_index(out / "index.html", sections)
    print(f"demo report: {out / 'index.html'}  ({time.perf_counter() - t0:.1f} s)")
    return 0


def write_index(path: Path, sections: list[DemoSection]) -> None:
    """Write the HTML report (relative links to images and files), atomically.

    Parameters
    ----------
    path : Path
        The ``index.html`` to write (replaced if it exists).
    sections : list of DemoSection
        The report's sections, in order.
    """
    from surveynet.io.fits import atomic_path

    root = path.parent
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>surveynet demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "img{max-width:100%;border:1px solid #ccc}</style></head><body>",
        "<h1>surveynet demo</h1>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.extend(f"<p>{html.escape(line)}</p>" for line in s.lines)
        for f in s.files:
            rel = Path(f).resolve().relative_to(root.resolve()).as_posix()
            parts.append(f"<p><a href='{html.escape(rel)}'>{html.escape(rel)}</a></p>")
        for im in s.images:
            rel = Path(im).resolve().relative_to(root.resolve()).as_posix()
            parts.append(f"<p><img src='{html.escape(rel)}' alt='{html.escape(rel)}'></p>")
    parts.append("</body></html>")
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text("\n".join(parts))
