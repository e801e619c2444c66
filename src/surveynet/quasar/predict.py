"""QuasarNET prediction: spectra files -> one merged catalogue FITS (numpy engine, never torch).

Each input (DESI coadd/spectra, DESI cframe, BOSS spPlate; see ``surveynet.io.spectra``)
is one task of :func:`surveynet.runner.run_batch` (Dask distributed with ``workers > 0``); a file
that fails is reported and the others complete. The merged catalogue is written atomically with a
provenance header (model name and weights hash, config hash, thresholds, inputs).

Catalogue HDU ``QN_CATALOG``, one row per input spectrum (spectra that cannot be processed keep
their row, with NaN confidences/redshifts and ``QN_FLAG`` bits set):

=============== ================== ==========================================================
column          shape              meaning
=============== ================== ==========================================================
TARGETID        int64              join key
C_LINES         (n_lines,) float32 line confidences, head order (header ``LINES``)
Z_LINES         (n_lines,) float32 line redshifts
C_<LINE>        float32            one column per line: C_LYA, C_CIV, C_CIII, C_MGII, ...
Z_<LINE>        float32            Z_LYA, Z_CIV, ...
Z_QN            float64            zbest: redshift of the most confident line
IS_QSO_QN       bool               at least ``N_TH`` lines with confidence > ``C_TH``
C_BAL, Z_BAL    float32            BAL head (CIV(1548)) confidence and redshift
IS_BAL_QN       bool               C_BAL > C_TH
QN_FLAG         int32              :class:`surveynet.quasar.preprocess.QNFlag` bitmask
SOURCE          str                input file name
ROW             int32              row of the spectrum in its file
=============== ================== ==========================================================
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack
from numpy.typing import NDArray

from surveynet.errors import InputError

log = logging.getLogger(__name__)

CATALOG_HDU = "QN_CATALOG"
DEFAULT_MODEL = "qn_mock_6layer"
"""Name of the bundled model used when ``--model`` is not given."""

_ENGINES: dict[str, Any] = {}


def get_engine(model: str | os.PathLike[str]) -> Any:
    """Numpy engine of a model directory or bundled name, cached per process."""
    from surveynet.io.model import resolve_model_path
    from surveynet.quasar.engine import load_engine

    key = str(resolve_model_path(model).resolve())
    if key not in _ENGINES:
        _ENGINES[key] = load_engine(key)
    return _ENGINES[key]


def predict_spectra(
    spectra: Any,
    engine: Any,
    *,
    c_th: float = 0.5,
    n_th: int = 1,
    edge: str = "extrapolate",
    batch_size: int = 256,
) -> Table:
    """Catalogue rows (one per spectrum) of a :class:`surveynet.io.spectra.Spectra`.

    Parameters
    ----------
    spectra : Spectra
        Input spectra.
    engine : surveynet.quasar.engine.NumpyQuasarNet
        Loaded model (with grid and lines metadata).
    c_th, n_th : float, int
        ``IS_QSO_QN`` rule.
    edge : {"extrapolate", "clamp"}
        Edge-box redshifts.
    batch_size : int
        Spectra per forward pass.

    Returns
    -------
    astropy.table.Table
        Columns as in the module docstring (without SOURCE/ROW).
    """
    from surveynet.quasar.lines import line_label
    from surveynet.quasar.preprocess import preprocess

    pre = preprocess(spectra, engine.grid)
    res = engine.predict_lines(pre.x, edge=edge, batch_size=batch_size)
    return _rows(spectra.targetid, pre.kept, pre.flags, res, engine.lines, c_th, n_th, line_label)


def _rows(
    targetid: NDArray[Any],
    kept: NDArray[Any],
    flags: NDArray[Any],
    res: Any,
    lines: Any,
    c_th: float,
    n_th: int,
    line_label: Any,
) -> Table:
    n = len(targetid)
    nl, nbal = len(lines.lines), len(lines.lines_bal)
    c_lines = np.full((n, nl), np.nan, dtype=np.float32)
    z_lines = np.full((n, nl), np.nan, dtype=np.float32)
    c_bal = np.full((n, max(nbal, 1)), np.nan, dtype=np.float32)
    z_bal = np.full((n, max(nbal, 1)), np.nan, dtype=np.float32)
    zbest = np.full(n, np.nan, dtype=np.float64)
    c_lines[kept] = res.c_line
    z_lines[kept] = res.z_line
    zbest[kept] = res.zbest
    if nbal:
        c_bal[kept] = res.c_line_bal
        z_bal[kept] = res.z_line_bal
    is_qso = np.zeros(n, dtype=bool)
    is_qso[kept] = res.is_qso(c_th=c_th, n_th=n_th)
    t = Table()
    t["TARGETID"] = np.asarray(targetid, dtype=np.int64)
    t["C_LINES"] = c_lines
    t["Z_LINES"] = z_lines
    for k, name in enumerate(lines.lines):
        lab = line_label(name)
        t[f"C_{lab}"] = c_lines[:, k]
        t[f"Z_{lab}"] = z_lines[:, k]
    t["Z_QN"] = zbest
    t["IS_QSO_QN"] = is_qso
    t["C_BAL"] = c_bal[:, 0]
    t["Z_BAL"] = z_bal[:, 0]
    t["IS_BAL_QN"] = np.nan_to_num(c_bal[:, 0], nan=-1.0) > c_th
    t["QN_FLAG"] = np.asarray(flags, dtype=np.int32)
    return t


def predict_file(
    path: str,
    *,
    model: str = DEFAULT_MODEL,
    c_th: float = 0.5,
    n_th: int = 1,
    edge: str = "extrapolate",
    batch_size: int = 256,
) -> dict[str, Any]:
    """Predict one spectra file (a :func:`surveynet.runner.run_batch` task).

    Returns
    -------
    dict
        Column name -> numpy array (plain arrays travel between Dask workers cheaply).
    """
    from surveynet.io.spectra import read_spectra

    spectra = read_spectra(path)
    t = predict_spectra(
        spectra, get_engine(model), c_th=c_th, n_th=n_th, edge=edge, batch_size=batch_size
    )
    t["SOURCE"] = np.full(len(t), Path(path).name)
    t["ROW"] = np.arange(len(t), dtype=np.int32)
    return {c: np.asarray(t[c]) for c in t.colnames}


def catalog_header(
    engine: Any,
    model: str | os.PathLike[str],
    *,
    c_th: float,
    n_th: int,
    edge: str,
    n_inputs: int,
    n_failed: int,
) -> Any:
    """Provenance header of a QuasarNET catalogue."""
    from surveynet.config import config_hash
    from surveynet.io.fits import provenance_header

    meta = engine.meta
    return provenance_header(
        pipeline="quasar",
        model_name=str(meta.get("name") or model),
        model_hash=engine.weights_hash,
        config_hash=config_hash(
            {"model": meta.get("config", {}), "preprocessing": meta.get("preprocessing", {})}
        ),
        seed=meta.get("training", {}).get("seed"),
        extra={
            "C_TH": (float(c_th), "line-confidence threshold of IS_QSO_QN"),
            "N_TH": (int(n_th), "lines above C_TH needed for IS_QSO_QN"),
            "EDGE": (edge, "edge-box redshifts"),
            "LINES": (",".join(engine.lines.lines)[:60], "line order"),
            "LINESBAL": (",".join(engine.lines.lines_bal)[:60], "BAL heads"),
            "NINPUT": (int(n_inputs), "input files"),
            "NFAILED": (int(n_failed), "input files that failed"),
        },
    )


def predict_files(
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    c_th: float = 0.5,
    n_th: int = 1,
    edge: str = "extrapolate",
    batch_size: int = 256,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> tuple[Path | None, list[Any]]:
    """Predict many files and write the merged catalogue atomically.

    Parameters
    ----------
    inputs : list of path
        Spectra files.
    out : path
        Catalogue FITS to write.
    model : str or path
        Bundled model name or model directory.
    c_th, n_th, edge, batch_size
        Post-processing and batching options.
    workers, scheduler : int, str
        :func:`surveynet.runner.run_batch` settings (0 = in process).
    quiet : bool
        No progress bar.
    overwrite : bool
        Replace an existing catalogue.

    Returns
    -------
    path : Path or None
        The catalogue (None when every input failed).
    results : list of TaskResult
        Per-input outcome.
    """
    from surveynet.io.fits import write_catalog
    from surveynet.io.model import resolve_model_path
    from surveynet.runner import report_failures, run_batch

    outp = Path(out)
    if outp.exists() and not overwrite:
        raise FileExistsError(f"{outp} exists; pass --overwrite to replace it")
    engine = get_engine(model)  # fail fast on a bad model, before any work
    mpath = str(resolve_model_path(model).resolve())
    results = run_batch(
        predict_file,
        [str(p) for p in inputs],
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        desc="quasar predict",
        model=mpath,
        c_th=c_th,
        n_th=n_th,
        edge=edge,
        batch_size=batch_size,
    )
    n_failed = report_failures(results)
    good = [Table(r.value) for r in results if r.ok]
    if not good:
        return None, results
    cat = vstack(good, metadata_conflicts="silent") if len(good) > 1 else good[0]
    tables = {CATALOG_HDU: cat}
    if n_failed:
        tables["FAILED"] = Table(
            {
                "SOURCE": [r.input for r in results if not r.ok],
                "ERROR": [str(r.error)[:200] for r in results if not r.ok],
            }
        )
    hdr = catalog_header(
        engine, model, c_th=c_th, n_th=n_th, edge=edge, n_inputs=len(results), n_failed=n_failed
    )
    write_catalog(outp, tables, hdr, overwrite=overwrite)
    return outp, results


def example_spectra_figure(
    spectra_path: str | os.PathLike[str],
    catalog: Table,
    header: Any,
    *,
    truth: Table | None = None,
    n: int = 6,
    c_th: float = 0.5,
    model: str | os.PathLike[str] | None = None,
) -> Any:
    """Figure of up to ``n`` spectra of one file with the detected lines marked.

    Spectra are the normalised network inputs on the grid of ``model`` (default: the model named in
    the catalogue header ``MODEL``, a bundled name or a directory). Quasars at spread-out
    redshifts are preferred, then the other classes.
    """
    from matplotlib.figure import Figure

    from surveynet.io.spectra import read_spectra
    from surveynet.quasar.plots import plot_spectrum_lines
    from surveynet.quasar.preprocess import preprocess

    spectra = read_spectra(spectra_path)
    engine = get_engine(model if model is not None else str(header.get("MODEL", DEFAULT_MODEL)))
    pre = preprocess(spectra, engine.grid)
    tid = spectra.targetid[pre.kept]
    ctid = np.asarray(catalog["TARGETID"], dtype=np.int64)
    index = {int(t): i for i, t in enumerate(ctid)}
    rows = [(k, index[int(t)]) for k, t in enumerate(tid) if int(t) in index]
    if not rows:
        raise InputError("none of its spectra are in the catalogue", path=spectra_path)
    tinfo: dict[int, tuple[str, float]] = {}
    if truth is not None:
        for t, o, z in zip(
            np.asarray(truth["TARGETID"]),
            np.asarray(truth["OBJTYPE"]).astype(str),
            np.asarray(truth["Z"]),
            strict=True,
        ):
            tinfo[int(t)] = (o.strip(), float(z))
    # prefer quasars sorted by catalogue redshift, evenly spread, then others
    qso = [r for r in rows if bool(catalog["IS_QSO_QN"][r[1]])]
    qso.sort(key=lambda r: float(catalog["Z_QN"][r[1]]))
    pick = (
        [qso[i] for i in np.linspace(0, len(qso) - 1, min(len(qso), max(n - 1, 1))).astype(int)]
        if qso
        else []
    )
    others = [r for r in rows if r not in pick]
    pick = (pick + others)[:n]
    fig = Figure(figsize=(9.0, 2.2 * len(pick)), layout="constrained")
    axes = fig.subplots(len(pick), 1, squeeze=False)[:, 0]
    wave = engine.grid.wave()
    rest = [
        *__import__("surveynet.quasar.lines", fromlist=["x"]).rest_wavelengths(engine.lines.lines)
    ]
    labels = [str(x) for x in engine.lines.lines]
    for ax, (k, ci) in zip(axes, pick, strict=True):
        t = int(tid[k])
        ti = tinfo.get(t)
        title = (
            f"TARGETID {t}: Z_QN {float(catalog['Z_QN'][ci]):.3f}, "
            f"IS_QSO_QN {bool(catalog['IS_QSO_QN'][ci])}"
        )
        if ti is not None:
            title += f"; truth {ti[0]} z = {ti[1]:.3f}"
        plot_spectrum_lines(
            wave,
            pre.x[k],
            np.asarray(catalog["Z_LINES"][ci]),
            np.asarray(catalog["C_LINES"][ci]),
            labels,
            rest,
            c_th=c_th,
            title=title,
            ax=ax,
        )
    return fig
