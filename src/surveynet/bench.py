"""``surveynet bench NAME``: registered benchmarks, printed as a table and optionally saved as JSON.

A benchmark is ``fn(quick: bool) -> dict[str, float | int | str]``; it registers itself with
:func:`register_bench` from its pipeline package. Speed-ups are reported as ratios measured side
by side in the same run, every duration with :func:`time_call`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BenchFn = Callable[[bool], dict[str, Any]]
_BENCHES: dict[str, BenchFn] = {}
_PARTS: dict[str, list[tuple[str, BenchFn]]] = {}


def register_bench(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register a benchmark under ``name``; duplicates raise.

    Parameters
    ----------
    name : str
        The ``surveynet bench NAME`` name.

    Returns
    -------
    callable
        Decorator registering ``fn(quick: bool) -> dict`` and returning it unchanged.

    Raises
    ------
    KeyError
        ``name`` is already registered (when the decorator is applied).
    """

    def deco(fn: BenchFn) -> BenchFn:
        """Register ``fn``.

        Parameters
        ----------
        fn : callable
            The benchmark.

        Returns
        -------
        callable
            ``fn`` unchanged.
        """
        if name in _BENCHES:
            raise KeyError(f"benchmark {name!r} is already registered")
        _BENCHES[name] = fn
        return fn

    return deco


def register_bench_part(bench: str, part: str) -> Callable[[BenchFn], BenchFn]:
    """Register extra figures for another benchmark (e.g. a pipeline's figures in ``spectra``).

    The core cannot import a pipeline; a pipeline registers a part instead, and ``surveynet
    bench NAME`` runs NAME's own function, then its parts in registration order, merging the
    figures (a part's keys must be new).

    Parameters
    ----------
    bench : str
        The benchmark the figures belong to.
    part : str
        Name of the part (unique per benchmark).

    Returns
    -------
    callable
        Decorator registering ``fn(quick: bool) -> dict`` and returning it unchanged.

    Raises
    ------
    KeyError
        ``part`` is already registered for ``bench`` (when the decorator is applied).
    """

    def deco(fn: BenchFn) -> BenchFn:
        """Register ``fn``.

        Parameters
        ----------
        fn : callable
            The part.

        Returns
        -------
        callable
            ``fn`` unchanged.
        """
        parts = _PARTS.setdefault(bench, [])
        if any(name == part for name, _ in parts):
            raise KeyError(f"bench part {bench}/{part} is already registered")
        parts.append((part, fn))
        return fn

    return deco


def run_figures(name: str, quick: bool) -> dict[str, Any]:
    """Run benchmark ``name`` and its registered parts; return the merged figures.

    Parameters
    ----------
    name : str
        A registered benchmark (pipelines loaded first).
    quick : bool
        Smoke-test sizes.

    Returns
    -------
    dict
        Figure name -> value.

    Raises
    ------
    ValueError
        Unknown benchmark, or a part repeating a figure name.
    """
    from surveynet.registry import load_pipelines

    load_pipelines()
    if name not in _BENCHES:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(sorted(_BENCHES))}")
    figures = dict(_BENCHES[name](quick))
    for part, fn in _PARTS.get(name, []):
        extra = fn(quick)
        clash = sorted(set(extra) & set(figures))
        if clash:
            raise ValueError(f"bench part {name}/{part} repeats figures {clash}")
        figures.update(extra)
    return figures


def time_call(
    fn: Callable[[], Any],
    *,
    min_time: float = 0.5,
    repeat: int = 3,
    warmup: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Best seconds per call of ``fn``: the one timing helper of every benchmark.

    Policy: unless ``warmup`` is False, a first call warms caches, lazy imports and thread pools
    and is not counted -- except when that call alone lasts at least ``repeat * min_time`` (a
    slow function, which would gain nothing from repeating): its time is then returned and
    ``fn`` is not called again. Otherwise ``repeat`` trials each call ``fn`` until the trial
    lasts >= ``min_time`` (at least once) and the best trial's mean time per call is returned.
    With ``min_time=0`` every trial is a single call.

    Parameters
    ----------
    fn : callable
        Function of no argument.
    min_time : float
        Minimum duration of a trial (seconds of ``clock``).
    repeat : int
        Number of trials (>= 1).
    warmup : bool
        Make the uncounted first call.
    clock : callable
        ``time.perf_counter`` (wall clock, default) or e.g. ``time.process_time`` (CPU time).

    Returns
    -------
    float
        Seconds per call.

    Raises
    ------
    ValueError
        ``repeat < 1`` or ``min_time < 0``.

    Examples
    --------
    >>> calls = []
    >>> t = time_call(lambda: calls.append(1), min_time=0.0, repeat=2)
    >>> len(calls), t >= 0.0
    (3, True)
    """
    if repeat < 1 or min_time < 0:
        raise ValueError(f"need repeat >= 1 and min_time >= 0, got {repeat}, {min_time}")
    if warmup:
        t0 = clock()
        fn()
        first = clock() - t0
        if first >= repeat * min_time > 0:
            return float(first)
    best = float("inf")
    for _ in range(repeat):
        n, t0 = 0, clock()
        while True:
            fn()
            n += 1
            dt = clock() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
    return float(best)


#: Child process that runs a command and prints, as JSON, its wall time and the peak RSS of the
#: largest process of its tree (``ru_maxrss`` of the waited-for descendants: a CLI and, with
#: Dask, its workers). Used instead of ``/usr/bin/time -v`` so that benches run anywhere.
_LAUNCHER = (
    "import json, resource, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=False).returncode\n"
    "wall = time.perf_counter() - t0\n"
    "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'rc': rc, 'wall': wall, 'maxrss_kb': kb}))\n"
)


def measure_process(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` as a whole process; return its wall seconds and peak memory.

    Parameters
    ----------
    cmd : list of str
        The command, e.g. ``[sys.executable, "-m", "surveynet", "quasar", "predict", ...]``.

    Returns
    -------
    dict
        ``wall`` (seconds), ``maxrss_mb`` (peak resident memory of the largest process of the
        run, MB: the CLI, or with Dask its biggest worker), ``rc`` (0).

    Raises
    ------
    RuntimeError
        The command failed or printed no result.
    """
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    try:
        out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise RuntimeError(f"{' '.join(cmd)}: no result ({res.stderr.strip()[-500:]})") from exc
    if out["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out['rc']}: {res.stderr.strip()[-500:]}")
    out["maxrss_mb"] = out.pop("maxrss_kb") / 1024.0
    return out


def time_process(cmd: list[str], *, repeat: int = 3) -> tuple[float, float]:
    """Best wall seconds of ``repeat`` whole-process runs of ``cmd``, and their peak memory.

    Every run is one :func:`time_call` trial (no warm-up: a process start is part of the
    figure); memory from :func:`measure_process`.

    Parameters
    ----------
    cmd : list of str
        The command.
    repeat : int
        Runs (>= 1).

    Returns
    -------
    seconds : float
        Best wall-clock time of one run.
    peak_mb : float
        Largest peak resident memory of any run (MB).
    """
    peaks: list[float] = []

    def once() -> None:
        """One whole-process run; records its peak memory."""
        peaks.append(float(measure_process(cmd)["maxrss_mb"]))

    best = time_call(once, min_time=0.0, repeat=repeat, warmup=False)
    return best, max(peaks)


def gemm_gflops(n: int = 1024, dtype: str = "float32") -> float:
    """Measured matrix-multiply speed of this machine, for scale.

    Parameters
    ----------
    n : int
        Size of the square matrices.
    dtype : str
        Their dtype (numpy name).

    Returns
    -------
    float
        GFLOP/s of ``a @ b`` (:func:`time_call`, 0.3 s trials).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.dtype(dtype))
    b = rng.standard_normal((n, n)).astype(np.dtype(dtype))
    t = time_call(lambda: a @ b, min_time=0.3)
    return 2.0 * n**3 / t / 1e9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``surveynet bench`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``bench`` subparser.
    """
    parser.add_argument("name", help="spectra, quasar, dla, sysnet or transient")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run one benchmark, print its table, optionally write JSON.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``surveynet bench`` options (:func:`add_arguments`).

    Returns
    -------
    int
        Exit code 0.

    Raises
    ------
    ValueError
        Unknown benchmark name.
    """
    figures = run_figures(args.name, bool(args.quick))
    w = max(len(k) for k in figures)
    print(f"surveynet bench {args.name}")
    for k, v in figures.items():
        s = f"{v:,.4g}" if isinstance(v, float) else str(v)
        print(f"  {k:<{w}}  {s}")
    if args.json:
        from surveynet.io.fits import atomic_path

        with atomic_path(args.json, overwrite=True) as tmp:
            tmp.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def available() -> list[str]:
    """Names of the registered benchmarks.

    Returns
    -------
    list of str
        Sorted.
    """
    return sorted(_BENCHES)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically (overwriting).

    Parameters
    ----------
    path : str or Path
        Output file.
    data : dict
        JSON-serialisable figures (numpy scalars become floats).
    """
    from surveynet.io.fits import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
