"""Batch runner on Dask distributed: one task per input file, bad files reported, others finish.

``workers`` > 0 starts a :class:`distributed.LocalCluster` with that many single-threaded worker
processes; ``scheduler`` connects to an existing cluster instead; ``workers == 0`` runs in this
process (no Dask), which is what tests and tiny jobs use.

Failure policy: a task that raises becomes a :class:`TaskResult` with ``ok=False`` and a one-line
``error``; the other tasks complete. Command-line steps add ``--workers``/``--scheduler`` with
:func:`add_runner_args` and pick the worker count with :func:`default_workers`.

Examples
--------
>>> res = run_batch(int, ["1", "x"], quiet=True)
>>> [(r.ok, r.value) for r in res]
[(True, 1), (False, None)]
>>> res[1].error
"ValueError: invalid literal for int() with base 10: 'x'"
"""

from __future__ import annotations

import argparse
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class TaskResult:
    """Outcome of one task.

    Attributes
    ----------
    input : str
        The input (usually a file path).
    ok : bool
        Whether the task succeeded.
    value : Any
        The task's return value (None on failure).
    error : str or None
        One-line reason on failure.
    """

    input: str
    ok: bool
    value: Any = None
    error: str | None = None


def _guarded(func: Callable[..., Any], item: str, kwargs: dict[str, Any]) -> TaskResult:
    try:
        return TaskResult(item, True, func(item, **kwargs))
    except Exception as exc:  # report every failure, keep going
        log.debug("task %s failed:\n%s", item, traceback.format_exc())
        return TaskResult(item, False, None, f"{type(exc).__name__}: {exc}")


def run_batch(
    func: Callable[..., Any],
    inputs: Sequence[str],
    *,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    desc: str = "files",
    unit: str = "file",
    **kwargs: Any,
) -> list[TaskResult]:
    """Apply ``func(item, **kwargs)`` to every input, on Dask distributed or in process.

    Parameters
    ----------
    func : callable
        A module-level (picklable) function.
    inputs : sequence of str
        Inputs, usually file paths.
    workers : int
        Local worker processes; 0 runs serially in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    quiet : bool
        Hide the progress bar.
    desc : str
        Progress-bar label.
    unit : str
        Progress-bar unit (``"file"``, ``"chunk"``).
    **kwargs
        Passed to ``func`` (plain, picklable values: they travel to the workers).

    Returns
    -------
    list of TaskResult
        In the order of ``inputs``; failed tasks have ``ok=False`` and a one-line ``error``.
    """
    items = [str(x) for x in inputs]
    if not items:
        return []
    if scheduler is None and workers <= 0:
        if quiet:  # no progress bar: do not even import tqdm (start-up time of short runs)
            return [_guarded(func, item, kwargs) for item in items]
        from tqdm.auto import tqdm

        return [_guarded(func, item, kwargs) for item in tqdm(items, desc=desc, unit=unit)]

    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    # importing distributed sets its loggers to INFO; keep its chatter for debug runs (-vv)
    quiet_level = logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING
    for name in ("distributed", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(quiet_level)

    cluster = None
    if scheduler is not None:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        )
        client = Client(cluster)
    try:
        futures = [client.submit(_guarded, func, item, kwargs, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[TaskResult | None] = [None] * len(items)
        with tqdm(total=len(items), desc=desc, disable=quiet, unit=unit) as bar:
            for fut in as_completed(futures):
                i = index[fut.key]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # worker died, serialisation error...
                    results[i] = TaskResult(items[i], False, None, f"{type(exc).__name__}: {exc}")
                bar.update(1)
        return [r for r in results if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def report_failures(results: Sequence[TaskResult]) -> int:
    """Log each failed input with its reason.

    Parameters
    ----------
    results : sequence of TaskResult
        Outcomes of :func:`run_batch`.

    Returns
    -------
    int
        The number of failures.
    """
    bad = [r for r in results if not r.ok]
    for r in bad:
        log.error("%s: %s", r.input, r.error)
    return len(bad)


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers N`` and ``--scheduler ADDRESS`` (many-file work on Dask distributed).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A step's parser.
    """
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local Dask worker processes (default: 1 per input file up to 2; 0 = in process)",
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask scheduler")


def default_workers(args: argparse.Namespace, n_inputs: int) -> int:
    """Return the workers to use: ``--workers`` if given, in process for one input, else min(n, 2).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``workers`` may be missing or None).
    n_inputs : int
        Number of inputs.

    Returns
    -------
    int
        Worker processes for :func:`run_batch` (0 = in process).

    Examples
    --------
    >>> ns = argparse.Namespace(workers=None)
    >>> default_workers(ns, 5), default_workers(ns, 1)
    (2, 0)
    """
    if getattr(args, "workers", None) is not None:
        return int(args.workers)
    return 0 if n_inputs <= 1 else min(n_inputs, 2)
