"""The one predict-over-files driver of every pipeline, on :mod:`surveynet.runner`.

:func:`predict_over_files` applies a pipeline's per-file function to every input (in process or
on Dask distributed) with one failure policy:

- the output is checked before any work starts (refused unless ``overwrite``);
- a bad input is reported with its one-line reason and the others complete;
- when some inputs failed, the output holds the others plus a ``FAILED`` HDU (``SOURCE``,
  ``ERROR``) and the step exits with :data:`EXIT_PARTIAL` (3);
- when every input failed, nothing is written and :class:`~surveynet.errors.InputError` is
  raised (exit 1).

Provenance: :func:`model_cards` writes one numbered group of cards per model used (``MODEL<i>``,
``MODHSH<i>``, ``MODROL<i>``), so a catalogue names every finder, refiner or vetter and its
weights hash.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.table import Table

from surveynet.errors import InputError
from surveynet.runner import TaskResult, report_failures, run_batch

log = logging.getLogger(__name__)

#: Exit status of a step that succeeded on every input.
EXIT_OK = 0
#: Exit status of a step whose output was written without some inputs (listed in FAILED).
EXIT_PARTIAL = 3
#: Extension name of the table of failed inputs.
FAILED_HDU = "FAILED"


@dataclass(frozen=True)
class ModelCard:
    """A model used to make an output (for the provenance header).

    Attributes
    ----------
    role : str
        What it did (``classifier``, ``finder``, ``refiner``, ``vetter`` ...).
    name : str
        Bundled name or directory name.
    sha256 : str
        Hash of its ``model.safetensors``.
    """

    role: str
    name: str
    sha256: str


def model_cards(models: Sequence[ModelCard]) -> list[tuple[str, Any, str]]:
    """Numbered header cards naming every model (``NMODELS``, ``MODEL<i>``, ``MODHSH<i>``...).

    Parameters
    ----------
    models : sequence of ModelCard
        In the order they were applied.

    Returns
    -------
    list of (key, value, comment)
        Cards for a FITS header (``header.extend(cards)`` or ``header[key] = (value, comment)``).

    Examples
    --------
    >>> cards = model_cards([ModelCard("finder", "dla_fcn", "0123456789abcdef0123")])
    >>> [c[0] for c in cards]
    ['NMODELS', 'MODEL1', 'MODHSH1', 'MODROL1']
    >>> cards[2][1]
    '0123456789abcdef'
    """
    if len(models) > 99:
        raise ValueError(f"at most 99 models can be named in a header, got {len(models)}")
    cards: list[tuple[str, Any, str]] = [("NMODELS", len(models), "models used (MODEL<i>)")]
    for i, m in enumerate(models, start=1):
        cards.append((f"MODEL{i}", Path(m.name).name[:60], f"model {i}"))
        cards.append((f"MODHSH{i}", m.sha256[:16], f"sha256 of model {i} weights (16 hex)"))
        cards.append((f"MODROL{i}", m.role[:30], f"role of model {i}"))
    return cards


def failed_table(results: Sequence[TaskResult]) -> Table | None:
    """The ``FAILED`` table (``SOURCE``, ``ERROR``) of the inputs that failed, or None.

    Parameters
    ----------
    results : sequence of TaskResult
        Outcomes of :func:`surveynet.runner.run_batch`.

    Returns
    -------
    astropy.table.Table or None
        One row per failed input; None when none failed.

    Examples
    --------
    >>> t = failed_table([TaskResult("a.fits", True), TaskResult("b.fits", False, None, "bad")])
    >>> t["SOURCE"].tolist(), t["ERROR"].tolist()
    (['b.fits'], ['bad'])
    >>> failed_table([TaskResult("a.fits", True)]) is None
    True
    """
    bad = [r for r in results if not r.ok]
    if not bad:
        return None
    return Table(
        {
            "SOURCE": [str(r.input) for r in bad],
            "ERROR": [str(r.error)[:200] for r in bad],
        }
    )


@dataclass
class PredictResult:
    """Outcome of :func:`predict_over_files`.

    Attributes
    ----------
    path : Path
        The output written.
    results : list of TaskResult
        Per-input outcome, in input order.
    merged : Any
        What the pipeline's ``merge`` returned (the catalogue in memory).
    """

    path: Path
    results: list[TaskResult] = field(default_factory=list)
    merged: Any = None

    @property
    def failures(self) -> list[TaskResult]:
        """The inputs that failed."""
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_OK`, or :data:`EXIT_PARTIAL` when some inputs failed."""
        return EXIT_PARTIAL if self.failures else EXIT_OK


def check_output(out: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite`` (call before any work).

    Parameters
    ----------
    out : path
        The output to write.
    overwrite : bool
        Whether replacing it is allowed.

    Returns
    -------
    Path
        ``out`` as a Path.

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    """
    p = Path(out)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    return p


def predict_over_files(
    per_file: Callable[..., Any],
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    merge: Callable[[list[Any]], Any],
    write: Callable[[Path, Any, Table | None], Path],
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
    desc: str = "predict",
    **kwargs: Any,
) -> PredictResult:
    """Run ``per_file(path, **kwargs)`` over every input and write one merged output atomically.

    Parameters
    ----------
    per_file : callable
        Module-level (picklable) function of one input path; returns the per-file product.
    inputs : sequence of path
        Input files.
    out : path
        Output to write.
    merge : callable
        ``merge(products) -> merged`` over the good inputs' products, in input order.
    write : callable
        ``write(out, merged, failed) -> Path`` writes atomically; ``failed`` is the
        :func:`failed_table` (None when every input succeeded) and must go into the output as
        the ``FAILED`` HDU.
    workers, scheduler : int, str
        :func:`surveynet.runner.run_batch` settings (0 = in process).
    quiet : bool
        No progress bar.
    overwrite : bool
        Replace an existing output (checked before any work).
    desc : str
        Progress-bar label.
    **kwargs
        Passed to ``per_file`` (keep them plain: they travel to Dask workers).

    Returns
    -------
    PredictResult
        Path, per-input outcomes, merged product; ``exit_code`` is 0 or 3.

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    InputError
        No inputs, or every input failed (nothing is written).
    """
    outp = check_output(out, overwrite)
    if not inputs:
        raise InputError("no input files")
    results = run_batch(
        per_file,
        [str(p) for p in inputs],
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        desc=desc,
        **kwargs,
    )
    report_failures(results)
    good = [r.value for r in results if r.ok]
    if not good:
        raise InputError(f"all {len(results)} input files failed (first: {results[0].error})")
    merged = merge(good)
    path = write(outp, merged, failed_table(results))
    return PredictResult(Path(path), list(results), merged)
