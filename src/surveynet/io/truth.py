"""Truth and redshift-catalogue readers (quickquasars-style and surveynet mock truth files).

Truth files (``truth-*.fits`` of desisim quickquasars, and ``truth.fits`` written by
:mod:`surveynet.sim`) hold:

* ``TRUTH`` (required): one row per target; ``TARGETID`` and ``Z`` are required, ``OBJTYPE``,
  ``MAG``, ``IS_BAL``, ``BI_CIV`` ... are kept when present.
* ``TRUTH_QSO`` (optional): per-quasar extras (``BAL_TEMPLATEID``, ``BI_CIV``, ``AI_CIV`` ...).
  Its columns that ``TRUTH`` lacks are joined onto :attr:`Truth.targets` by ``TARGETID``
  (order of ``TRUTH`` kept); targets without a ``TRUTH_QSO`` row get NaN (float), -1 (int),
  False (bool) or "" (text).
* ``DLA_META`` (optional): one row per absorber, ``TARGETID``, ``Z_DLA``, ``NHI`` required,
  ``DLAID`` kept when present (``TARGETID*1000 + k`` in the mocks).
* ``BAL`` or ``BAL_META`` (optional): one row per BAL quasar with ``TARGETID``.

When ``IS_BAL`` is absent from the targets it is derived, and the rule recorded in
``Truth.meta["IS_BAL"]``: ``BI_CIV > 0`` if ``BI_CIV`` exists, else ``BAL_TEMPLATEID >= 0``
(quickquasars uses -1 for "no BAL template"), else TARGETID listed in the BAL table; with none
of these, ``IS_BAL`` is not added.

Redshift catalogues (:func:`read_zbest`): the ``ZBEST`` (redrock < 0.15) or ``REDSHIFTS`` HDU
with ``TARGETID`` and ``Z`` required (``SPECTYPE``, ``ZWARN``, ``ZERR`` ... kept).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io._fitsread import hdu_names, open_fits, read_table

log = logging.getLogger(__name__)

__all__ = ["Truth", "read_truth", "read_zbest"]


@dataclass
class Truth:
    """Contents of a truth file.

    Attributes
    ----------
    targets : astropy.table.Table
        One row per target (``TARGETID``, ``Z``, and OBJTYPE, MAG, IS_BAL, BI_CIV ... when present).
    dlas : astropy.table.Table or None
        ``DLA_META`` rows (``TARGETID``, ``Z_DLA``, ``NHI``, ``DLAID``), or None without that HDU.
    bal : astropy.table.Table or None
        ``BAL``/``BAL_META`` rows, or None.
    source : str or None
        The file read.
    meta : dict
        Notes such as how ``IS_BAL`` was derived.
    """

    targets: Table
    dlas: Table | None = None
    bal: Table | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def targetid(self) -> NDArray[np.int64]:
        """``TARGETID`` of the targets as int64."""
        return np.asarray(self.targets["TARGETID"], dtype=np.int64)

    def dlas_of(self, targetid: int) -> Table:
        """DLA_META rows of one target (empty table when none or no DLA_META)."""
        if self.dlas is None:
            return Table(
                names=("TARGETID", "Z_DLA", "NHI"), dtype=(np.int64, np.float64, np.float64)
            )
        return self.dlas[np.asarray(self.dlas["TARGETID"], dtype=np.int64) == int(targetid)]


def _fill_value(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu":
        return -1 if dtype.kind == "i" else 0
    if dtype.kind == "b":
        return False
    return ""


def _join_extra(targets: Table, extra: Table, path: Path, hdu: str) -> None:
    """Add ``extra``'s columns missing from ``targets`` (matched on TARGETID) in place."""
    tid = np.asarray(targets["TARGETID"], dtype=np.int64)
    etid = np.asarray(extra["TARGETID"], dtype=np.int64)
    if np.unique(etid).size != etid.size:
        raise InputError("duplicate TARGETID", path=path, hdu=hdu, column="TARGETID")
    lookup = {int(t): i for i, t in enumerate(etid)}
    rows = np.array([lookup.get(int(t), -1) for t in tid], dtype=np.intp)
    found = rows >= 0
    unmatched = int(np.sum(~np.isin(etid, tid)))
    if unmatched:
        log.warning("%s: %d %s row(s) have no TRUTH row; ignored", path, unmatched, hdu)
    for name in extra.colnames:
        if name in targets.colnames:
            continue
        src = np.asarray(extra[name])
        out = np.full((len(tid), *src.shape[1:]), _fill_value(src.dtype), dtype=src.dtype)
        out[found] = src[rows[found]]
        targets[name] = out
        if extra[name].unit is not None:
            targets[name].unit = extra[name].unit


def read_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a quickquasars-style or surveynet mock truth file.

    Parameters
    ----------
    path : str or os.PathLike
        File with a ``TRUTH`` HDU (and optionally ``TRUTH_QSO``, ``DLA_META``, ``BAL``).

    Returns
    -------
    Truth

    Raises
    ------
    InputError
        Missing/truncated file, no TRUTH HDU, a required column missing (TARGETID, Z in TRUTH;
        TARGETID, Z_DLA, NHI in DLA_META; TARGETID in TRUTH_QSO/BAL), duplicate TARGETIDs in TRUTH.

    Examples
    --------
    >>> truth = read_truth("truth-16-1375.fits")  # doctest: +SKIP
    >>> len(truth.targets), len(truth.dlas)  # doctest: +SKIP
    (5, 3)
    """
    p = Path(path)
    meta: dict[str, Any] = {}
    with open_fits(p) as hdul:
        names = hdu_names(hdul)
        if "TRUTH" not in names:
            raise InputError(f"no TRUTH HDU (HDUs: {', '.join(names)})", path=p, hdu="TRUTH")
        targets = read_table(hdul, "TRUTH", p, required=("TARGETID", "Z"))
        tid = np.asarray(targets["TARGETID"], dtype=np.int64)
        if np.unique(tid).size != tid.size:
            raise InputError("duplicate TARGETID", path=p, hdu="TRUTH", column="TARGETID")
        if "TRUTH_QSO" in names:
            _join_extra(
                targets, read_table(hdul, "TRUTH_QSO", p, required=("TARGETID",)), p, "TRUTH_QSO"
            )
        dlas = None
        if "DLA_META" in names:
            dlas = read_table(hdul, "DLA_META", p, required=("TARGETID", "Z_DLA", "NHI"))
            lead = [c for c in ("TARGETID", "Z_DLA", "NHI", "DLAID") if c in dlas.colnames]
            dlas = dlas[lead + [c for c in dlas.colnames if c not in lead]]
        bal = None
        for bal_name in ("BAL", "BAL_META"):
            if bal_name in names:
                bal = read_table(hdul, bal_name, p, required=("TARGETID",))
                break
    if "IS_BAL" not in targets.colnames:
        if "BI_CIV" in targets.colnames:
            bi = np.asarray(targets["BI_CIV"], dtype=np.float64)
            targets["IS_BAL"] = np.isfinite(bi) & (bi > 0)
            meta["IS_BAL"] = "derived: BI_CIV > 0"
        elif "BAL_TEMPLATEID" in targets.colnames:
            targets["IS_BAL"] = np.asarray(targets["BAL_TEMPLATEID"]) >= 0
            meta["IS_BAL"] = "derived: BAL_TEMPLATEID >= 0"
        elif bal is not None:
            targets["IS_BAL"] = np.isin(tid, np.asarray(bal["TARGETID"], dtype=np.int64))
            meta["IS_BAL"] = "derived: TARGETID in BAL table"
    return Truth(targets=targets, dlas=dlas, bal=bal, source=str(p), meta=meta)


def read_zbest(path: str | os.PathLike[str]) -> Table:
    """Read a redshift catalogue (``ZBEST`` or ``REDSHIFTS`` HDU).

    Parameters
    ----------
    path : str or os.PathLike
        ``zbest-*.fits`` / ``redrock-*.fits`` or a file written in that layout.

    Returns
    -------
    astropy.table.Table
        TARGETID, Z and the other columns as stored (text columns as str);
        ``table.meta["EXTNAME"]`` says which HDU was read.

    Raises
    ------
    InputError
        Missing/truncated file, neither HDU present, TARGETID or Z missing.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        names = hdu_names(hdul)
        for hdu in ("ZBEST", "REDSHIFTS"):
            if hdu in names:
                table = read_table(hdul, hdu, p, required=("TARGETID", "Z"))
                table.meta["EXTNAME"] = hdu
                return table
    raise InputError(f"no ZBEST or REDSHIFTS HDU (HDUs: {', '.join(names)})", path=p, hdu="ZBEST")
