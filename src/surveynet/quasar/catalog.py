"""The QuasarNET catalogue: columns, provenance header, FITS writing and reading.

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
IS_QSO_QN       bool               at least ``predict.n_th`` lines with confidence > ``c_th``
P_QSO_QN        float32            calibrated quasar probability; only when the model carries a
                                   ``calibration`` (:mod:`surveynet.quasar.calibrate`)
C_BAL, Z_BAL    float32            BAL head (CIV(1548)) confidence and redshift
IS_BAL_QN       bool               C_BAL > ``predict.c_th``
QN_FLAG         int32              :class:`surveynet.quasar.preprocess.QNFlag` bitmask
SOURCE          str                input file name
ROW             int32              row of the spectrum in its file
PLATE, MJD,     int32              SDSS inputs only (spPlate, spec-lite): the spectrum's plate,
FIBERID                            MJD and fiber (-1 for rows of other files in a mixed run)
=============== ================== ==========================================================

When some inputs failed, HDU ``FAILED`` lists each (``SOURCE``, ``ERROR``). The primary header
holds the provenance (:func:`catalog_header`: model name and weights hash, the hash of the
resolved config and its ``predict`` keys, line order, input counts), and the resolved config is
saved beside the catalogue as ``NAME.config.json`` (:func:`surveynet.config.config_sidecar`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.sdss import SDSS_ID_COLUMNS, with_fiberid

CATALOG_HDU = "QN_CATALOG"
"""Extension name of the catalogue table."""
FAILED_HDU = "FAILED"
"""Extension name of the table of failed inputs."""
REQUIRED_COLUMNS = ("TARGETID", "C_LINES", "Z_QN")
"""Columns :func:`read_catalog` insists on."""
HEADER_KEYS = {
    "C_TH": "predict.c_th",
    "N_TH": "predict.n_th",
    "EDGE": "predict.edge",
}
"""Primary-header cards summarising the resolved config (card -> config key)."""


def catalog_rows(
    targetid: NDArray[Any],
    kept: NDArray[Any],
    flags: NDArray[Any],
    result: Any,
    lines: Any,
    *,
    c_th: float,
    n_th: int,
    calibration: Any = None,
) -> Table:
    """Build the catalogue rows of one set of spectra.

    Parameters
    ----------
    targetid : ndarray of int64, shape (n,)
        TARGETID of every input spectrum.
    kept : ndarray of bool, shape (n,)
        Spectra that went through the network (the others get NaN outputs).
    flags : ndarray of int, shape (n,)
        :class:`surveynet.quasar.preprocess.QNFlag` bits.
    result : surveynet.quasar.postprocess.QNResult
        Outputs of the kept spectra.
    lines : surveynet.quasar.config.LinesConfig
        The model's head-to-line mapping.
    c_th, n_th : float, int
        ``predict.c_th`` and ``predict.n_th``: the ``IS_QSO_QN`` / ``IS_BAL_QN`` rules.
    calibration : surveynet.quasar.calibrate.Calibration, optional
        The model's calibration: adds ``P_QSO_QN`` after ``IS_QSO_QN`` (None: no column).

    Returns
    -------
    astropy.table.Table
        The columns of the module docstring, without SOURCE and ROW.
    """
    from surveynet.quasar.lines import line_label

    n = len(targetid)
    nl, nbal = len(lines.lines), len(lines.lines_bal)
    c_lines = np.full((n, nl), np.nan, dtype=np.float32)
    z_lines = np.full((n, nl), np.nan, dtype=np.float32)
    c_bal = np.full((n, max(nbal, 1)), np.nan, dtype=np.float32)
    z_bal = np.full((n, max(nbal, 1)), np.nan, dtype=np.float32)
    zbest = np.full(n, np.nan, dtype=np.float64)
    c_lines[kept] = result.c_line
    z_lines[kept] = result.z_line
    zbest[kept] = result.zbest
    if nbal:
        c_bal[kept] = result.c_line_bal
        z_bal[kept] = result.z_line_bal
    is_qso = np.zeros(n, dtype=bool)
    is_qso[kept] = result.is_qso(c_th=c_th, n_th=n_th)
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
    if calibration is not None:
        t["P_QSO_QN"] = calibration.apply(c_lines).astype(np.float32)
    t["C_BAL"] = c_bal[:, 0]
    t["Z_BAL"] = z_bal[:, 0]
    t["IS_BAL_QN"] = np.nan_to_num(c_bal[:, 0], nan=-1.0) > c_th
    t["QN_FLAG"] = np.asarray(flags, dtype=np.int32)
    return t


def merge_rows(parts: Sequence[dict[str, NDArray[Any]]]) -> Table:
    """Stack the per-file rows (column name -> array dicts) into one catalogue table.

    Parameters
    ----------
    parts : sequence of dict
        What :func:`surveynet.quasar.predict.predict_file` returned for each good input, in
        input order.

    Returns
    -------
    astropy.table.Table
        The catalogue.

    Raises
    ------
    ValueError
        ``parts`` is empty.
    """
    if not parts:
        raise ValueError("no catalogue rows to merge")
    good = [Table(p) for p in parts]
    if len(good) == 1:
        return good[0]
    t = vstack(good, metadata_conflicts="silent")
    for c in SDSS_ID_COLUMNS:  # SDSS files next to DESI files: -1 where a file has none
        if c in t.colnames and getattr(t[c], "mask", None) is not None:
            t[c] = t[c].filled(-1)
    return t


def id_columns(fibermap: Table) -> Table:
    """The columns of a FIBERMAP that :func:`add_source_columns` reads (a narrow copy).

    Parameters
    ----------
    fibermap : astropy.table.Table
        A FIBERMAP (``Spectra.fibermap``) with TARGETID.

    Returns
    -------
    astropy.table.Table
        TARGETID and those of PLATE, MJD, FIBERID, FIBER it has.

    Examples
    --------
    >>> id_columns(Table({"TARGETID": [1], "FLUX_G": [2.0], "PLATE": [3]})).colnames
    ['TARGETID', 'PLATE']
    """
    keep = [c for c in ("TARGETID", *SDSS_ID_COLUMNS, "FIBER") if c in fibermap.colnames]
    return Table(fibermap[keep], copy=True)


def add_source_columns(t: Table, fibermap: Table, source: str) -> Table:
    """Append SOURCE and ROW, and PLATE, MJD, FIBERID when ``fibermap`` has them (SDSS inputs).

    The rows of ``t`` are the rows of ``fibermap`` (one catalogue row per input spectrum).

    Parameters
    ----------
    t : astropy.table.Table
        Catalogue rows of one file (:func:`catalog_rows`), in file order.
    fibermap : astropy.table.Table
        That file's FIBERMAP (``Spectra.fibermap``; blocks stacked in order).
    source : str
        The input file name.

    Returns
    -------
    astropy.table.Table
        ``t``, with the columns appended (SOURCE and ROW exactly as before; the others int32).

    Raises
    ------
    ValueError
        ``t`` and ``fibermap`` have different lengths.
    """
    if len(t) != len(fibermap):
        raise ValueError(f"{len(t)} catalogue rows for {len(fibermap)} spectra")
    t["SOURCE"] = np.full(len(t), source)
    t["ROW"] = np.arange(len(t), dtype=np.int32)
    fibermap = with_fiberid(fibermap)
    for c in SDSS_ID_COLUMNS:
        if c in fibermap.colnames:
            t[c] = np.asarray(fibermap[c], dtype=np.int32)
    return t


def catalog_header(
    engine: Any,
    config: Any,
    *,
    n_inputs: int,
    n_failed: int,
    config_file: str | os.PathLike[str] | None = None,
) -> fits.Header:
    """Return the provenance header of a QuasarNET catalogue.

    Parameters
    ----------
    engine : surveynet.quasar.engine.NumpyQuasarNet
        The model used (name, weights hash, line order, training seed).
    config : surveynet.quasar.config.QuasarConfig
        The resolved config (``CFGHASH`` is its hash; ``C_TH``, ``N_TH``, ``EDGE`` its
        ``predict`` keys).
    n_inputs, n_failed : int
        Input files, and how many failed.
    config_file : path, optional
        The saved config (``CFGFILE``, file name only).

    Returns
    -------
    astropy.io.fits.Header
        Primary-header cards.
    """
    from surveynet.config import header_cards
    from surveynet.io.fits import provenance_header
    from surveynet.predict import ModelCard, model_cards

    meta = engine.meta
    cards = header_cards(config, HEADER_KEYS)
    cfg_hash = cards.pop("CFGHASH")[0]
    extra: dict[str, Any] = {
        **cards,
        "LINES": (",".join(engine.lines.lines)[:60], "line order"),
        "LINESBAL": (",".join(engine.lines.lines_bal)[:60], "BAL heads"),
        "NINPUT": (int(n_inputs), "input files"),
        "NFAILED": (int(n_failed), "input files that failed"),
    }
    if config_file is not None:
        extra["CFGFILE"] = (Path(config_file).name[:60], "resolved config (JSON)")
    cal = meta.get("calibration")
    if isinstance(cal, dict):
        extra["PQSOCAL"] = (str(cal.get("method", ""))[:20], "P_QSO_QN calibration map")
        extra["PQSOT"] = (float(cal.get("temperature", float("nan"))), "P_QSO_QN temperature T")
        extra["PQSOB"] = (float(cal.get("bias", 0.0)), "P_QSO_QN bias b")
        extra["PQSORANK"] = (int(cal.get("rank", 1)), "P_QSO_QN score: rank-th largest C_LINES")
    model_name = str(meta.get("name") or config.predict.model)
    for key, value, comment in model_cards(
        [ModelCard("classifier", model_name, engine.weights_hash)]
    ):
        extra[key] = (value, comment)
    return provenance_header(
        pipeline="quasar",
        model_name=str(meta.get("name") or config.predict.model),
        model_hash=engine.weights_hash,
        config_hash=cfg_hash,
        seed=meta.get("training", {}).get("seed"),
        extra=extra,
    )


def write_catalog_file(
    out: str | os.PathLike[str],
    catalog: Table,
    header: fits.Header,
    *,
    failed: Table | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the catalogue (and the ``FAILED`` table, if any) atomically.

    Parameters
    ----------
    out : path
        FITS file to write.
    catalog : astropy.table.Table
        HDU ``QN_CATALOG``.
    header : astropy.io.fits.Header
        Primary header (:func:`catalog_header`).
    failed : astropy.table.Table, optional
        HDU ``FAILED`` (:func:`surveynet.predict.failed_table`).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        ``out``.
    """
    from surveynet.io.fits import write_catalog

    tables = {CATALOG_HDU: catalog}
    if failed is not None:
        tables[FAILED_HDU] = failed
    write_catalog(out, tables, header, overwrite=overwrite)
    return Path(out)


def read_catalog(path: str | os.PathLike[str]) -> tuple[Table, fits.Header]:
    """Read a ``surveynet quasar predict`` catalogue (HDU ``QN_CATALOG``) and its primary header.

    Parameters
    ----------
    path : path
        The catalogue.

    Returns
    -------
    table : astropy.table.Table
        The catalogue rows.
    header : astropy.io.fits.Header
        The primary header.

    Raises
    ------
    InputError
        Missing file, HDU or column (:data:`REQUIRED_COLUMNS`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", path=p)
    try:
        with fits.open(p) as hdul:
            hdr = hdul[0].header.copy()
            names = [h.name for h in hdul]
            if CATALOG_HDU not in names:
                raise InputError(f"no {CATALOG_HDU} HDU (HDUs: {names})", path=p, hdu=CATALOG_HDU)
            tab = Table.read(hdul[CATALOG_HDU], mask_invalid=False)
    except OSError as exc:
        raise InputError(f"unreadable FITS file ({exc})", path=p) from exc
    for col in REQUIRED_COLUMNS:
        if col not in tab.colnames:
            raise InputError("missing column", path=p, hdu=CATALOG_HDU, column=col)
    return tab, hdr
