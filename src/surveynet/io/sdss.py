"""SDSS/BOSS/eBOSS spec-lite reader (``spec-PLATE-MJD-FIBER.fits``, one object per file).

The per-object format every DR12Q/DR16Q user downloads (idlspec2d ``spec`` data model). HDUs by
position (DR14 and later also carry EXTNAMEs ``COADD``, ``SPALL``, ``SPZLINE``):

====  ==========  ===============================================================
HDU   name        content
====  ==========  ===============================================================
0     (primary)   header only: ``PLATEID``, ``MJD``, ``FIBERID``, ``COEFF0``, ``COEFF1``
1     COADD       table, one row per pixel: ``LOGLAM`` (log10 A, vacuum), ``FLUX``
                  (1e-17 erg/s/cm^2/A), ``IVAR``, ``AND_MASK``, ``OR_MASK``, ``WDISP``,
                  ``SKY``, ``MODEL``
2     SPALL       table, one row: the pipeline's ``PLATE``, ``MJD``, ``FIBERID``, ``CLASS``,
                  ``Z``, ``Z_ERR``, ``ZWARNING``, ``PLUG_RA``, ``PLUG_DEC``, ``THING_ID`` ...
                  (optional: without it, PLATE/MJD/FIBERID come from the primary header)
3     SPZLINE     emission-line fits (not read)
====  ==========  ===============================================================

All BOSS spectra sit on one log-lambda grid of step 1e-4 (``10**(1e-4 * i)`` A for integer
``i``); each file covers its own stretch of it. :func:`read_speclite` reads one or many files
into one :class:`~surveynet.io.container.Spectra` with a single band ``"brz"`` on the union of
the files' stretches (pixels a file does not cover get flux 0, ivar 0 and mask bit
:data:`NO_DATA`).

TARGETID convention: the one of :func:`surveynet.io.boss.boss_targetid` (spPlate reader), so
that a spec-lite file and the spPlate it was cut from give the same TARGETID::

    TARGETID = PLATE * 10**9 + MJD * 10**4 + FIBERID

(invertible: ``FIBERID = TARGETID % 10**4``, ``MJD = TARGETID // 10**4 % 10**5``,
``PLATE = TARGETID // 10**9``). The FIBERMAP also holds ``PLATE``, ``MJD``, ``FIBERID``,
``FIBER`` (= FIBERID, as the spPlate reader), ``TARGET_RA``/``TARGET_DEC`` (PLUG_RA/PLUG_DEC),
``THING_ID``, the pipeline's ``CLASS``, ``Z``, ``Z_ERR``, ``ZWARNING`` (when SPALL has them) and
``FILENAME``.

:func:`is_speclite` recognises the layout on an open file (for the format dispatch of
:func:`surveynet.io.spectra.read_spectra`); this module imports no other reader front door.
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
from surveynet.io._fitsread import open_fits, read_table
from surveynet.io.boss import boss_targetid
from surveynet.io.container import Spectra

__all__ = [
    "DLOGLAM",
    "NO_DATA",
    "is_speclite",
    "read_speclite",
    "sniff_speclite",
]

#: Step of the BOSS log10-wavelength grid.
DLOGLAM = 1e-4
#: Mask bit set on pixels of the union grid that a file does not cover (bit 31, unused by the
#: idlspec2d pixel mask, whose bits stop at 28).
NO_DATA = np.int64(1) << 31
#: LOGLAM values must lie within this fraction of a pixel of the 1e-4 grid.
_GRID_TOL = 0.05
_PIXEL_COLUMNS = ("LOGLAM", "FLUX", "IVAR")
_SPALL_COLUMNS = ("THING_ID", "CLASS", "SUBCLASS", "Z", "Z_ERR", "ZWARNING")


def is_speclite(hdul: fits.HDUList) -> bool:
    """Whether an open FITS file has the spec-lite layout (HDU 1 a LOGLAM/FLUX/IVAR table).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.

    Returns
    -------
    bool
    """
    if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
        return False
    names = {n.upper() for n in hdul[1].columns.names}
    return set(_PIXEL_COLUMNS) <= names


def sniff_speclite(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a spec-lite file (headers only are read).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    bool

    Raises
    ------
    InputError
        Missing, non-FITS or truncated file.
    """
    with open_fits(Path(path)) as hdul:
        return is_speclite(hdul)


def _header_int(hdr: Any, key: str, path: Path) -> int | None:
    if key not in hdr:
        return None
    try:
        return int(hdr[key])
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{key} = {hdr[key]!r} is not an integer", path=path, hdu="PRIMARY", column=key
        ) from exc


def _read_one(path: Path, checksum: bool) -> tuple[NDArray[np.int64], dict[str, Any], Table]:
    """Grid index, pixel arrays and the one FIBERMAP row of one spec-lite file."""
    with open_fits(path) as hdul:
        if not is_speclite(hdul):
            raise InputError(
                "not a spec-lite file: HDU 1 must be a table with columns "
                + ", ".join(_PIXEL_COLUMNS),
                path=path,
                hdu="COADD",
            )
        hdr = hdul[0].header
        pix = read_table(hdul, 1, path, required=_PIXEL_COLUMNS, name="COADD", checksum=checksum)
        spall = None
        if len(hdul) > 2 and isinstance(hdul[2], fits.BinTableHDU):
            spall = read_table(hdul, 2, path, name="SPALL", checksum=checksum)
    ids: dict[str, int | None] = {}
    for key, hkey in (("PLATE", "PLATEID"), ("MJD", "MJD"), ("FIBERID", "FIBERID")):
        val = None
        if spall is not None and key in spall.colnames:
            if len(spall) != 1:
                raise InputError(
                    f"SPALL must have one row, found {len(spall)}", path=path, hdu="SPALL"
                )
            try:
                val = int(spall[key][0])
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"{key} = {spall[key][0]!r} is not an integer",
                    path=path,
                    hdu="SPALL",
                    column=key,
                ) from exc
        if val is None:
            val = _header_int(hdr, hkey, path)
        if val is None:
            raise InputError(
                f"{key} is neither a SPALL column nor a header keyword ({hkey})",
                path=path,
                hdu="SPALL",
                column=key,
            )
        ids[key] = val
    loglam = np.asarray(pix["LOGLAM"], dtype=np.float64)
    if loglam.ndim != 1 or loglam.size < 2:
        raise InputError(
            f"LOGLAM must be a 1-D column with >= 2 rows, got shape {loglam.shape}",
            path=path,
            hdu="COADD",
            column="LOGLAM",
        )
    if not np.all(np.isfinite(loglam)):
        raise InputError("LOGLAM has NaN/inf", path=path, hdu="COADD", column="LOGLAM")
    x = loglam / DLOGLAM
    idx = np.round(x).astype(np.int64)
    off = float(np.max(np.abs(x - idx)))
    if off > _GRID_TOL:
        raise InputError(
            f"LOGLAM is off the BOSS 1e-4 log10 grid by up to {off:.3f} pixel",
            path=path,
            hdu="COADD",
            column="LOGLAM",
        )
    if not np.all(np.diff(idx) > 0):
        raise InputError(
            "LOGLAM is not strictly increasing", path=path, hdu="COADD", column="LOGLAM"
        )
    arrays: dict[str, Any] = {}
    for col in ("FLUX", "IVAR"):
        arr = np.asarray(pix[col])
        if arr.shape != loglam.shape or arr.dtype.kind not in "fiu":
            raise InputError(
                f"expected a numeric column of shape {loglam.shape}, got {arr.dtype} {arr.shape}",
                path=path,
                hdu="COADD",
                column=col,
            )
        arrays[col] = arr
    if "AND_MASK" in pix.colnames:
        m = np.asarray(pix["AND_MASK"])
        if m.shape != loglam.shape or m.dtype.kind not in "iub":
            raise InputError(
                f"expected an integer column of shape {loglam.shape}, got {m.dtype} {m.shape}",
                path=path,
                hdu="COADD",
                column="AND_MASK",
            )
        arrays["AND_MASK"] = m.astype(np.int64)
    else:
        arrays["AND_MASK"] = np.zeros(loglam.shape, np.int64)
    row: dict[str, Any] = {
        "TARGETID": [int(boss_targetid(ids["PLATE"], ids["MJD"], ids["FIBERID"]))],
        "PLATE": [ids["PLATE"]],
        "MJD": [ids["MJD"]],
        "FIBERID": [ids["FIBERID"]],
        "FIBER": [ids["FIBERID"]],
    }
    for out, col in (("TARGET_RA", "PLUG_RA"), ("TARGET_DEC", "PLUG_DEC")):
        have = spall is not None and col in spall.colnames
        row[out] = [float(spall[col][0]) if have else np.nan]  # type: ignore[index]
    for col in _SPALL_COLUMNS:
        if spall is not None and col in spall.colnames:
            v = spall[col][0]
            row[col] = [str(v).strip() if isinstance(v, (str, bytes)) else v]
    row["FILENAME"] = [path.name]
    return idx, arrays, Table(row)


def read_speclite(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    mask_bits: int | None = None,
    checksum: bool = True,
) -> Spectra:
    """Read one or many SDSS spec-lite files into one :class:`Spectra`.

    Parameters
    ----------
    paths : path or sequence of paths
        ``spec-PLATE-MJD-FIBER.fits`` files.
    mask_bits : int, optional
        Keep only these AND_MASK bits in ``mask`` (e.g. ``1 << 25``, as QuasarNET's spPlate
        reader); default all bits. :data:`NO_DATA` is always kept.
    checksum : bool
        Verify the DATASUM of every HDU read.

    Returns
    -------
    Spectra
        One band ``"brz"`` on the union of the files' stretches of the 1e-4 log10 grid, one row
        per file in the given order; FIBERMAP as in the module docstring; ``meta`` has
        ``PLATE`` and ``MJD`` when all files share them, and ``DLOGLAM``.

    Raises
    ------
    InputError
        No file; missing, truncated or non-spec-lite file; missing LOGLAM/FLUX/IVAR column;
        LOGLAM off the 1e-4 grid or not increasing; mis-shaped columns; PLATE/MJD/FIBERID in
        neither SPALL nor the primary header; the same spectrum (TARGETID) twice. Each names the
        file, HDU and column.

    Examples
    --------
    >>> int(boss_targetid(3655, 55240, 310)) % 10**4
    310
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    plist = [Path(p) for p in paths]
    if not plist:
        raise InputError("no spec-lite file given")
    parts = [_read_one(p, checksum) for p in plist]
    lo = min(int(idx[0]) for idx, _, _ in parts)
    hi = max(int(idx[-1]) for idx, _, _ in parts)
    n_pix, n = hi - lo + 1, len(parts)
    dtype = np.result_type(*[a["FLUX"].dtype for _, a, _ in parts], np.float32)
    flux = np.zeros((n, n_pix), dtype=dtype)
    ivar = np.zeros((n, n_pix), dtype=dtype)
    mask = np.full((n, n_pix), NO_DATA, dtype=np.int64)
    for k, (idx, a, _) in enumerate(parts):
        j = idx - lo
        flux[k, j] = a["FLUX"]
        ivar[k, j] = a["IVAR"]
        m = a["AND_MASK"]
        mask[k, j] = m if mask_bits is None else m & np.int64(mask_bits)
    fibermap = vstack([t for _, _, t in parts], join_type="outer", metadata_conflicts="silent")
    for col in fibermap.colnames:  # columns missing in some files: fill, never mask
        if hasattr(fibermap[col], "mask"):
            fill = (
                np.nan
                if fibermap[col].dtype.kind == "f"
                else ("" if fibermap[col].dtype.kind in "US" else -1)
            )
            fibermap[col] = fibermap[col].filled(fill)
    tid = np.asarray(fibermap["TARGETID"], np.int64)
    uniq, counts = np.unique(tid, return_counts=True)
    if np.any(counts > 1):
        dup = int(uniq[counts > 1][0])
        files = [p.name for p, t in zip(plist, tid, strict=True) if t == dup]
        raise InputError(
            f"the same spectrum (TARGETID {dup}) is given twice: {', '.join(files)}",
            path=plist[0],
            hdu="SPALL",
            column="TARGETID",
        )
    wave = 10.0 ** (DLOGLAM * np.arange(lo, hi + 1, dtype=np.float64))
    meta: dict[str, Any] = {"DLOGLAM": DLOGLAM}
    for key in ("PLATE", "MJD"):
        vals = np.unique(np.asarray(fibermap[key]))
        if vals.size == 1:
            meta[key] = int(vals[0])
    return Spectra(
        bands=("brz",),
        wave={"brz": wave},
        flux={"brz": flux},
        ivar={"brz": ivar},
        fibermap=fibermap,
        mask={"brz": mask},
        resolution=None,
        meta=meta,
        source=str(plist[0]) if n == 1 else ",".join(str(p) for p in plist),
    )


#: Columns identifying an SDSS spectrum in catalogues, when the FIBERMAP has them.
SDSS_ID_COLUMNS = ("PLATE", "MJD", "FIBERID")


def with_fiberid(fibermap: Table) -> Table:
    """Return ``fibermap`` with FIBERID = FIBER for BOSS spPlates (PLATE and FIBER, no FIBERID).

    Parameters
    ----------
    fibermap : astropy.table.Table
        A Spectra fibermap.

    Returns
    -------
    astropy.table.Table
        The same table, or a shallow copy with a FIBERID column.

    Examples
    --------
    >>> with_fiberid(Table({"PLATE": [3655], "FIBER": [310]}))["FIBERID"].tolist()
    [310]
    """
    cols = fibermap.colnames
    if "FIBERID" in cols or "PLATE" not in cols or "FIBER" not in cols:
        return fibermap
    out = Table(fibermap, copy=False)
    out["FIBERID"] = fibermap["FIBER"]
    return out
