"""``surveynet bench NAME``: registered benchmarks, printed as a table and optionally saved as JSON.

A benchmark is ``fn(quick: bool) -> dict[str, float | int | str]``; it registers itself with
:func:`register_bench` from its pipeline package. Speed-ups are reported as ratios measured side
by side in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from surveynet.io.fits import atomic_path

BenchFn = Callable[[bool], dict[str, Any]]
_BENCHES: dict[str, BenchFn] = {}


def register_bench(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register a benchmark under ``name``; duplicates raise."""

    def deco(fn: BenchFn) -> BenchFn:
        if name in _BENCHES:
            raise KeyError(f"benchmark {name!r} is already registered")
        _BENCHES[name] = fn
        return fn

    return deco


def time_call(fn: Callable[[], Any], *, min_time: float = 0.5, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds per call of ``fn``, each trial looping for >= ``min_time`` s."""
    fn()  # warm-up
    best = np.inf
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
    return float(best)


def gemm_gflops(n: int = 1024, dtype: type = np.float32) -> float:
    """Measured matrix-multiply speed of this machine (GFLOP/s), for scale."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = time_call(lambda: a @ b, min_time=0.3)
    return 2.0 * n**3 / t / 1e9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``surveynet bench``."""
    parser.add_argument("name", help="spectra, quasar, dla, sysnet or transient")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run one benchmark, print its table, optionally write JSON."""
    from surveynet.registry import load_pipelines

    load_pipelines()
    if args.name not in _BENCHES:
        raise ValueError(
            f"unknown benchmark {args.name!r}; available: {', '.join(sorted(_BENCHES))}"
        )
    figures = _BENCHES[args.name](bool(args.quick))
    w = max(len(k) for k in figures)
    print(f"surveynet bench {args.name}")
    for k, v in figures.items():
        s = f"{v:,.4g}" if isinstance(v, float) else str(v)
        print(f"  {k:<{w}}  {s}")
    if args.json:
        with atomic_path(args.json, overwrite=True) as tmp:
            tmp.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def available() -> list[str]:
    """Names of the registered benchmarks."""
    return sorted(_BENCHES)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically (overwriting)."""
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
