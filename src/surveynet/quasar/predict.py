"""QuasarNET prediction: spectra files -> one merged catalogue FITS (numpy engine, never torch).

Each input (DESI coadd/spectra, DESI cframe, BOSS spPlate; see ``surveynet.io.spectra``)
is one task of :func:`surveynet.runner.run_batch` (Dask distributed with ``workers > 0``).
Failure policy (docs/architecture.md): the output is checked before any work; a file that fails
is reported with its reason and the others complete; the catalogue then holds a ``FAILED`` HDU
and the step exits with status 3; when every input fails nothing is written (exit 1).

Each file is streamed (:func:`predict_file`): only FLUX, IVAR, MASK, WAVELENGTH and FIBERMAP
are read, :data:`BLOCK_ROWS` spectra at a time (float32 as stored, DATASUMs checked on the
bytes read), each block is rebinned and normalised as a whole, and the network sees chunks of
exactly ``batch_size`` spectra carried across blocks (:func:`predict_blocks`), so the catalogue
is bit for bit that of one pass over the whole file while memory stays bounded by the block.

The settings are the ``predict`` section of :class:`surveynet.quasar.config.QuasarConfig`
(``model``, ``c_th``, ``n_th``, ``edge``, ``batch_size``); the columns are described in
:mod:`surveynet.quasar.catalog` (``P_QSO_QN`` only for a model with a ``calibration`` block,
:mod:`surveynet.quasar.calibrate`). The resolved config, with the ``grid``, ``lines`` and ``model``
sections of the model actually used, is saved beside the catalogue as ``NAME.config.json`` and
summarised in its header.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from surveynet.errors import InputError
from surveynet.predict import PredictResult
from surveynet.quasar.config import DEFAULT_MODEL, PredictConfig, QuasarConfig

log = logging.getLogger(__name__)

__all__ = [
    "BLOCK_ROWS",
    "DEFAULT_MODEL",
    "get_engine",
    "predict_blocks",
    "predict_file",
    "predict_files",
    "predict_spectra",
]

_ENGINES: dict[str, Any] = {}


def get_engine(model: str | os.PathLike[str]) -> Any:
    """Return the numpy engine of a model directory or bundled name, cached per process.

    Parameters
    ----------
    model : str or path
        Model directory or bundled model name.

    Returns
    -------
    surveynet.quasar.engine.NumpyQuasarNet
        The engine (with grid and lines metadata).

    Raises
    ------
    surveynet.errors.ModelFormatError
        Unknown model, or invalid model files.
    """
    from surveynet.io.model import resolve_model_path
    from surveynet.quasar.engine import load_engine

    key = str(resolve_model_path(model).resolve())
    if key not in _ENGINES:
        _ENGINES[key] = load_engine(key)
    return _ENGINES[key]


def config_for_engine(config: QuasarConfig, engine: Any) -> QuasarConfig:
    """Return ``config`` with the ``grid``, ``lines`` and ``model`` sections of ``engine``.

    Parameters
    ----------
    config : QuasarConfig
        The resolved config.
    engine : surveynet.quasar.engine.NumpyQuasarNet
        The model used.

    Returns
    -------
    QuasarConfig
        What the catalogue was made with.
    """
    return dataclasses.replace(config, grid=engine.grid, lines=engine.lines, model=engine.config)


def predict_spectra(spectra: Any, engine: Any, predict: PredictConfig | None = None) -> Table:
    """Return the catalogue rows (one per spectrum) of a :class:`surveynet.io.spectra.Spectra`.

    Parameters
    ----------
    spectra : Spectra
        Input spectra.
    engine : surveynet.quasar.engine.NumpyQuasarNet
        Loaded model (with grid and lines metadata).
    predict : PredictConfig, optional
        ``c_th``, ``n_th``, ``edge``, ``batch_size`` (default: the defaults).

    Returns
    -------
    astropy.table.Table
        Columns of :mod:`surveynet.quasar.catalog` (without SOURCE/ROW).
    """
    return predict_blocks([spectra], engine, predict)


def predict_blocks(
    blocks: Iterable[Any], engine: Any, predict: PredictConfig | None = None
) -> Table:
    """Catalogue rows of a stream of :class:`~surveynet.io.spectra.Spectra` blocks.

    Each block is preprocessed on its own (rebinning and normalisation are per spectrum); the
    normalised spectra are fed to the network in chunks of exactly ``predict.batch_size``
    *kept* spectra carried across block boundaries, so the chunks -- and hence every float32
    output bit -- are those of one pass over the whole file, whatever the block size.

    Parameters
    ----------
    blocks : iterable of Spectra
        Consecutive blocks of one file (e.g. :func:`surveynet.io.spectra.iter_spectra`).
    engine : surveynet.quasar.engine.NumpyQuasarNet
        Loaded model (with grid and lines metadata).
    predict : PredictConfig, optional
        ``c_th``, ``n_th``, ``edge``, ``batch_size`` (default: the defaults).

    Returns
    -------
    astropy.table.Table
        Columns of :mod:`surveynet.quasar.catalog` (without SOURCE/ROW).
    """
    from surveynet.quasar.calibrate import calibration_of
    from surveynet.quasar.catalog import catalog_rows
    from surveynet.quasar.preprocess import preprocess

    pc = predict if predict is not None else PredictConfig()
    step = int(pc.batch_size or engine.chunk_size)
    tids, kept, flags, outs = [], [], [], []
    pending: list[Any] = []
    n_pending = offset = 0
    for block in blocks:
        pre = preprocess(block, engine.grid)
        tids.append(block.targetid)
        kept.append(pre.kept + offset)
        flags.append(pre.flags)
        offset += block.n_spec
        pending.append(pre.x)
        n_pending += len(pre.x)
        if n_pending >= step:
            buf = np.concatenate(pending) if len(pending) > 1 else pending[0]
            n_full = (len(buf) // step) * step
            outs.append(engine.forward(buf[:n_full], batch_size=step))
            pending, n_pending = [buf[n_full:]], len(buf) - n_full
    if n_pending:
        outs.append(engine.forward(np.concatenate(pending), batch_size=step))
    cfg = engine.config
    preds = (
        np.concatenate(outs)
        if outs
        else np.zeros((0, cfg.n_heads, 2 * cfg.n_boxes), dtype=engine.dtype)
    )
    res = engine.lines_from_outputs(preds, edge=pc.edge)
    return catalog_rows(
        np.concatenate(tids) if tids else np.zeros(0, dtype=np.int64),
        np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64),
        np.concatenate(flags) if flags else np.zeros(0, dtype=np.int32),
        res,
        engine.lines,
        c_th=pc.c_th,
        n_th=pc.n_th,
        calibration=calibration_of(engine.meta),
    )


#: Spectra read and preprocessed at a time by :func:`predict_file`. Memory per process (or Dask
#: worker) is bounded by about ``BLOCK_ROWS * 8,000 pixels * 12 bytes`` (DESI b/r/z flux, ivar
#: and mask: ~50 MB) plus the network's im2col buffers, whatever the file size. Blocks of 512
#: stay under glibc's mmap threshold and in cache: on a 2,000-spectrum coadd, read + preprocess
#: in a fresh process took a third of the time of one 2,000-row block, at 40 % of the memory.
BLOCK_ROWS = 512


def predict_file(
    path: str, *, predict: PredictConfig, block_rows: int = BLOCK_ROWS
) -> dict[str, Any]:
    """Predict one spectra file, streamed in row blocks (a :func:`surveynet.runner.run_batch` task).

    Only the HDUs prediction needs are read (FLUX, IVAR, MASK, WAVELENGTH, FIBERMAP; never
    RESOLUTION), ``block_rows`` spectra at a time, float32 as stored; each HDU's DATASUM is
    checked on the bytes read (:func:`surveynet.io.spectra.iter_spectra`).

    Parameters
    ----------
    path : str
        Spectra file.
    predict : PredictConfig
        The ``predict`` section (``model`` is a resolved directory path on workers).
    block_rows : int
        Spectra per block: bounds the memory; the catalogue does not depend on it
        (:func:`predict_blocks`).

    Returns
    -------
    dict
        Column name -> numpy array (plain arrays travel between Dask workers cheaply), with
        SOURCE (file name) and ROW, and PLATE, MJD, FIBERID for SDSS inputs
        (:func:`surveynet.quasar.catalog.add_source_columns`).
    """
    from astropy.table import vstack

    from surveynet.io.spectra import iter_spectra
    from surveynet.quasar.catalog import add_source_columns, id_columns

    engine = get_engine(predict.model)
    ids: list[Table] = []

    def blocks() -> Iterator[Any]:
        """The file's blocks, keeping the identifying FIBERMAP columns of each."""
        for block in iter_spectra(path, block_rows, resolution=False):
            ids.append(id_columns(block.fibermap))
            yield block

    t = predict_blocks(blocks(), engine, predict)
    fibermap = ids[0] if len(ids) == 1 else vstack(ids) if ids else Table({"TARGETID": []})
    t = add_source_columns(t, fibermap, Path(path).name)
    return {c: np.asarray(t[c]) for c in t.colnames}


def predict_files(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    config: QuasarConfig | None = None,
    model: str | os.PathLike[str] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> PredictResult:
    """Predict many files, write the merged catalogue atomically and its config beside it.

    Parameters
    ----------
    inputs : sequence of path
        Spectra files.
    out : path
        Catalogue FITS to write; the resolved config goes to ``NAME.config.json`` beside it.
    config : QuasarConfig, optional
        The resolved config (default: the defaults); its ``predict`` section is used.
    model : str or path, optional
        Shortcut for ``predict.model`` (bundled name or model directory).
    workers, scheduler : int, str
        :func:`surveynet.runner.run_batch` settings (0 = in process).
    quiet : bool
        No progress bar.
    overwrite : bool
        Replace an existing catalogue (checked before any work).

    Returns
    -------
    surveynet.predict.PredictResult
        ``path`` (the catalogue), ``failures`` (the failed inputs' ``TaskResult``),
        ``merged`` (the catalogue table) and ``exit_code`` (0, or 3 when some inputs failed).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False (nothing done).
    surveynet.errors.ModelFormatError
        The model cannot be loaded (nothing done).
    InputError
        No inputs, or every input failed (nothing written).
    """
    from surveynet.config import config_sidecar, save_config
    from surveynet.io.model import resolve_model_path
    from surveynet.predict import check_output, predict_over_files
    from surveynet.quasar.catalog import catalog_header, merge_rows, write_catalog_file

    cfg = config if config is not None else QuasarConfig()
    if model is not None:
        cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, model=str(model)))
    check_output(out, overwrite)
    if not inputs:
        raise InputError("no input files")
    engine = get_engine(cfg.predict.model)  # fail fast on a bad model, before any work
    cfg = config_for_engine(cfg, engine)
    mpath = str(resolve_model_path(cfg.predict.model).resolve())

    def write(outp: Path, rows: Any, failed: Any) -> Path:
        sidecar = config_sidecar(outp)
        n_failed = 0 if failed is None else len(failed)
        hdr = catalog_header(
            engine, cfg, n_inputs=len(inputs), n_failed=n_failed, config_file=sidecar
        )
        path = write_catalog_file(outp, rows, hdr, failed=failed, overwrite=overwrite)
        save_config(cfg, sidecar)
        return path

    result = predict_over_files(
        predict_file,
        inputs,
        out,
        merge=merge_rows,
        write=write,
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        overwrite=overwrite,
        desc="quasar predict",
        predict=dataclasses.replace(cfg.predict, model=mpath),
    )
    return result
