"""``surveynet quasar bal``: BAL catalogue (balnicity/absorption indices and troughs) of quasars.

Spectra files (DESI coadd/spectra, BOSS spPlate, SDSS spec-lite, read by
:func:`surveynet.io.spectra.read_spectra`) and a redshift catalogue in, one ``BALCAT`` table
out: TARGETID, Z, SOURCE, ROW and the DESI BAL-catalogue columns of
:func:`surveynet.bal.bal_columns` (BI_CIV, ERR_BI_CIV, NCIV_2000, VMIN_CIV_2000, ...,
AI_SIIV, ..., SNR_CIV, BALMASK). The measurement is the core :func:`surveynet.bal.find_bals`
(its docstring has the method, the references and the velocity convention: positive outflow
velocities, VMIN = red edge, VMAX = blue edge, -1 = unused slot). The step follows the other
predict-like steps: files run through :func:`surveynet.predict.predict_over_files` (bad files are
listed in a ``FAILED`` HDU, exit code 3), the catalogue is written to a temporary name and renamed,
and the resolved config is saved beside it.

Redshifts: the first table HDU of ``--qso-catalog`` with TARGETID and the redshift column
(``--z-col``; default Z_QN, else Z). Rows flagged not-quasar are left out: ``IS_QSO_QN`` false
(QuasarNET catalogue) or OBJTYPE/SPECTYPE other than QSO (truth, zbest/redrock files).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack

from surveynet.bal import BalConfig, bal_columns, find_bals
from surveynet.errors import InputError
from surveynet.io.fits import table_columns
from surveynet.predict import PredictResult

log = logging.getLogger(__name__)

__all__ = ["BALCAT_HDU", "bal_file", "bal_files", "bal_table", "read_redshifts"]

#: EXTNAME of the catalogue table.
BALCAT_HDU = "BALCAT"


def read_redshifts(path: str | os.PathLike[str], z_col: str | None = None) -> dict[int, float]:
    """Quasar redshifts per TARGETID from a catalogue file.

    Parameters
    ----------
    path : str or os.PathLike
        QuasarNET catalogue (``Z_QN``, ``IS_QSO_QN``), truth file (``TRUTH``: ``Z``, OBJTYPE) or
        zbest/redrock file (``Z``, SPECTYPE): the first table HDU with TARGETID and ``z_col``.
    z_col : str, optional
        Redshift column; None: ``Z_QN`` if present, else ``Z``.

    Returns
    -------
    dict of int to float
        Quasars only.

    Raises
    ------
    InputError
        Unreadable file, or no table HDU with TARGETID and the redshift column (named).
    """
    p = Path(path)
    hdus = table_columns(p)
    for name, colnames in hdus:
        if "TARGETID" not in colnames:
            continue
        zc = z_col or ("Z_QN" if "Z_QN" in colnames else "Z")
        if zc not in colnames:
            continue
        t = Table.read(p, hdu=name)
        keep = np.ones(len(t), dtype=bool)
        if "IS_QSO_QN" in t.colnames:
            keep &= np.asarray(t["IS_QSO_QN"]).astype(bool)
        for c in ("OBJTYPE", "SPECTYPE"):
            if c in t.colnames:
                keep &= np.char.upper(np.char.strip(np.asarray(t[c]).astype(str))) == "QSO"
        tid = np.asarray(t["TARGETID"], np.int64)[keep]
        z = np.asarray(t[zc], np.float64)[keep]
        return {int(a): float(b) for a, b in zip(tid, z, strict=True)}
    raise InputError(
        f"no table HDU with TARGETID and {z_col or 'Z_QN or Z'}",
        path=p,
        column=z_col or "Z_QN",
    )


def bal_table(spectra: Any, z: dict[int, float], config: BalConfig | None = None) -> Table:
    """BAL columns of the quasars of a :class:`~surveynet.io.spectra.Spectra`.

    Parameters
    ----------
    spectra : surveynet.io.spectra.Spectra
        Spectra of any targets.
    z : dict of int to float
        Quasar redshifts; targets without one are left out.
    config : BalConfig, optional
        Finder settings.

    Returns
    -------
    Table
        TARGETID, Z, ROW (index in ``spectra``) and :func:`surveynet.bal.bal_columns`.
    """
    sp = spectra.clean() if hasattr(spectra, "clean") else spectra
    tid = sp.targetid
    rows = np.flatnonzero([int(t) in z for t in tid])
    zz = np.array([z[int(t)] for t in tid[rows]], dtype=np.float64)
    res = find_bals(
        sp.wave,
        {b: np.asarray(sp.flux[b])[rows] for b in sp.bands},
        {b: np.asarray(sp.ivar[b])[rows] for b in sp.bands},
        zz,
        config,
    )
    t = Table({"TARGETID": tid[rows], "Z": zz, "ROW": rows.astype(np.int32)})
    for name, unit, _ in bal_columns():
        t[name] = res.columns[name]
        if unit:
            t[name].unit = unit
    return t


def bal_file(
    path: str, *, redshifts: dict[int, float], config: dict[str, Any] | None = None
) -> Table:
    """BAL table of one spectra file (module level, for the batch runner).

    Parameters
    ----------
    path : str
        Spectra file.
    redshifts : dict of int to float
        Quasar redshifts per TARGETID.
    config : dict, optional
        :class:`surveynet.bal.BalConfig` fields.

    Returns
    -------
    Table
        :func:`bal_table` with SOURCE (the file name).
    """
    from surveynet.config import from_dict
    from surveynet.io.spectra import read_spectra

    cfg = from_dict(BalConfig, config or {})
    sp = read_spectra(path, resolution=False)
    t = bal_table(sp, redshifts, cfg)
    t["SOURCE"] = np.full(len(t), Path(path).name)
    log.info("%s: %d quasars, %d with BI_CIV > 0", path, len(t), int((t["BI_CIV"] > 0).sum()))
    return t


def bal_files(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    qso_catalog: str | os.PathLike[str],
    z_col: str | None = None,
    config: Any = None,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> PredictResult:
    """Run the BAL finder over many spectra files and write one catalogue atomically.

    Parameters
    ----------
    inputs : sequence of path
        Spectra files.
    out : path
        Catalogue to write (HDU ``BALCAT``); the resolved config goes beside it
        (``NAME.config.json``).
    qso_catalog : path
        Redshift source (:func:`read_redshifts`).
    z_col : str, optional
        Its redshift column.
    config : QuasarConfig, optional
        The resolved config (its ``bal`` section).
    workers, scheduler : int, str
        Batch-runner settings (0 = in process).
    quiet : bool
        No progress bar.
    overwrite : bool
        Replace an existing catalogue (checked before any work).

    Returns
    -------
    surveynet.predict.PredictResult
        ``exit_code`` 3 when some inputs failed (listed in the ``FAILED`` HDU).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    InputError
        Bad redshift catalogue, no inputs, or every input failed.
    """
    from surveynet.config import config_hash, config_sidecar, save_config, to_dict
    from surveynet.io.fits import provenance_header, write_catalog
    from surveynet.predict import check_output, predict_over_files
    from surveynet.quasar.config import QuasarConfig

    cfg = config if config is not None else QuasarConfig()
    outp = check_output(out, overwrite)
    sidecar = check_output(config_sidecar(outp), overwrite)
    z = read_redshifts(qso_catalog, z_col)
    if not z:
        raise InputError("no quasar rows", path=qso_catalog)

    def merge(parts: list[Table]) -> Table:
        return vstack(parts) if parts else Table()

    def write(path: Path, merged: Table, failed: Table | None) -> Path:
        extra = {
            "ZSOURCE": (Path(qso_catalog).name[:60], "redshift catalogue"),
            "NINPUT": (len(inputs), "input files"),
            "NFAILED": (0 if failed is None else len(failed), "input files that failed"),
            "CFGFILE": (sidecar.name[:60], "resolved config (JSON)"),
        }
        hdr = provenance_header(pipeline="quasar", config_hash=config_hash(cfg), extra=extra)
        tables = {BALCAT_HDU: merged}
        if failed is not None:
            tables["FAILED"] = failed
        write_catalog(path, tables, hdr, overwrite=overwrite)
        save_config(cfg, sidecar)
        return path

    return predict_over_files(
        bal_file,
        inputs,
        outp,
        merge=merge,
        write=write,
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        overwrite=overwrite,
        desc="quasar bal",
        redshifts=z,
        config=to_dict(cfg.bal) if dataclasses.is_dataclass(cfg.bal) else dict(cfg.bal),
    )
