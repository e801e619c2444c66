"""BOSS/SDSS spPlate reader.

Layout of an ``spPlate-PPPP-MMMMM.fits`` file (idlspec2d data model; HDUs by position, they
carry no EXTNAME in the real files):

====  ==========  ===============================================================
HDU   name        content
====  ==========  ===============================================================
0     (primary)   flux, float32 (n_fiber, n_pix), 1e-17 erg/s/cm^2/A; header ``COEFF0``,
                  ``COEFF1`` (log10 wavelength of pixel 0 and step), ``PLATEID``, ``MJD``
1     IVAR        inverse variance, same shape
2     ANDMASK     int32 pixel mask (AND over exposures), same shape
3     ORMASK      int32 pixel mask (OR over exposures), must exist (not returned)
4     WAVEDISP    wavelength dispersion in pixels, must exist (not returned)
5     PLUGMAP     binary table, one row per fiber (``FIBERID`` 1-based, RA, DEC, OBJTYPE ...);
                  without ``FIBERID``, FIBER = row + 1
====  ==========  ===============================================================

Wavelengths are ``10 ** (COEFF0 + COEFF1 * i)`` Angstrom (vacuum) for pixel ``i``.

The returned :class:`~surveynet.io.container.Spectra` has one band ``"brz"`` (the b and r arms
are already combined on one grid). Its FIBERMAP holds the PLUGMAP columns (when present) plus
``PLATE``, ``MJD``, ``FIBER`` (1-based) and ``TARGETID = PLATE * 10**9 + MJD * 10**4 + FIBER``.
That TARGETID is unique and invertible for PLATE < 9.2e9, MJD < 10**5 and FIBER < 10**4
(``FIBER = TARGETID % 10**4``, ``MJD = TARGETID // 10**4 % 10**5``, ``PLATE = TARGETID // 10**9``),
and never collides with DESI TARGETIDs of real targets in practice only by convention: keep
BOSS and DESI spectra in separate catalogues.

The ANDMASK becomes ``Spectra.mask`` (all bits, or only ``mask_bits``); flux and ivar are
returned as stored, so NaN/inf and non-positive ivar survive reading and are zeroed by
:meth:`Spectra.clean() <surveynet.io.container.Spectra.clean>` (mask-and-continue). QuasarNET
(ngbusca ``read_spplate``) only drops pixels with ANDMASK bit 25 set: pass
``mask_bits=1 << 25`` to reproduce that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io._fitsread import open_fits, read_image, read_table
from surveynet.io.container import Spectra

log = logging.getLogger(__name__)

__all__ = ["boss_targetid", "read_spplate"]

_HDU_NAMES = ("PRIMARY", "IVAR", "ANDMASK", "ORMASK", "WAVEDISP", "PLUGMAP")


def boss_targetid(plate: Any, mjd: Any, fiber: Any) -> NDArray[np.int64]:
    """TARGETID used for BOSS spectra: ``PLATE * 10**9 + MJD * 10**4 + FIBER``.

    Examples
    --------
    >>> int(boss_targetid(3586, 55181, 12))
    3586551810012
    """
    return (
        np.asarray(plate, dtype=np.int64) * 10**9
        + np.asarray(mjd, dtype=np.int64) * 10**4
        + np.asarray(fiber, dtype=np.int64)
    )


def _header_int(hdr: Any, keys: Sequence[str], path: Path) -> int:
    for key in keys:
        if key in hdr:
            try:
                return int(hdr[key])
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"{key} = {hdr[key]!r} is not an integer", path=path, hdu="PRIMARY", column=key
                ) from exc
    raise InputError(
        f"header keyword {keys[0]} is missing", path=path, hdu="PRIMARY", column=keys[0]
    )


def read_spplate(
    path: str | os.PathLike[str],
    fibers: Sequence[int] | NDArray[Any] | None = None,
    *,
    mask_bits: int | None = None,
    checksum: bool = True,
) -> Spectra:
    """Read a BOSS/SDSS spPlate file.

    Parameters
    ----------
    path : str or os.PathLike
        The spPlate file.
    fibers : sequence of int, optional
        1-based fiber numbers to keep (file order); each must exist.
    mask_bits : int, optional
        Keep only these ANDMASK bits in ``mask`` (e.g. ``1 << 25``); default all bits.
    checksum : bool
        Verify the DATASUM of every HDU read.

    Returns
    -------
    Spectra
        Band ``"brz"``; ``meta`` has ``PLATE``, ``MJD``, ``COEFF0``, ``COEFF1``.

    Raises
    ------
    InputError
        Missing/truncated file, fewer than 6 HDUs, missing COEFF0/COEFF1/PLATEID/MJD keyword,
        mis-shaped arrays, non-finite or non-increasing wavelengths (COEFF1 <= 0), a PLUGMAP
        with the wrong number of rows, unknown fibers.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        if len(hdul) < len(_HDU_NAMES):
            missing = _HDU_NAMES[len(hdul)]
            raise InputError(
                f"spPlate needs {len(_HDU_NAMES)} HDUs ({', '.join(_HDU_NAMES)}), found "
                f"{len(hdul)}: missing or truncated file",
                path=p,
                hdu=missing,
            )
        hdr = hdul[0].header
        ck = checksum
        flux = read_image(hdul, 0, p, ndim=2, name="PRIMARY", checksum=ck)
        ivar = read_image(hdul, 1, p, ndim=2, name="IVAR", checksum=ck)
        andmask = read_image(hdul, 2, p, ndim=2, name="ANDMASK", checksum=ck)
        plugmap = read_table(hdul, 5, p, name="PLUGMAP", checksum=ck)
        coeff = []
        for key in ("COEFF0", "COEFF1"):
            if key not in hdr:
                raise InputError(
                    f"header keyword {key} is missing", path=p, hdu="PRIMARY", column=key
                )
            try:
                coeff.append(float(hdr[key]))
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"{key} = {hdr[key]!r} is not a number", path=p, hdu="PRIMARY", column=key
                ) from exc
        plate = _header_int(hdr, ("PLATEID", "PLATE"), p)
        mjd = _header_int(hdr, ("MJD",), p)
    n_fiber, n_pix = flux.shape
    for name, arr in (("IVAR", ivar), ("ANDMASK", andmask)):
        if arr.shape != flux.shape:
            raise InputError(
                f"expected shape {flux.shape} like the flux, got {arr.shape}", path=p, hdu=name
            )
    if andmask.dtype.kind not in "iub":
        raise InputError(f"mask must be integer, got {andmask.dtype}", path=p, hdu="ANDMASK")
    c0, c1 = coeff
    if not (np.isfinite(c0) and np.isfinite(c1)) or c1 <= 0:
        raise InputError(
            f"COEFF0={c0}, COEFF1={c1} do not give an increasing wavelength grid",
            path=p,
            hdu="PRIMARY",
            column="COEFF1",
        )
    with np.errstate(over="ignore"):
        wave = 10.0 ** (c0 + c1 * np.arange(n_pix, dtype=np.float64))
    if not np.all(np.isfinite(wave)) or not np.all(np.diff(wave) > 0):
        raise InputError(
            "COEFF0/COEFF1 give non-finite or non-increasing wavelengths",
            path=p,
            hdu="PRIMARY",
            column="COEFF0",
        )
    fiber = np.arange(1, n_fiber + 1, dtype=np.int64)
    if len(plugmap) != n_fiber:
        raise InputError(
            f"PLUGMAP has {len(plugmap)} rows for {n_fiber} fibers", path=p, hdu="PLUGMAP"
        )
    fibermap = plugmap
    if "FIBERID" in fibermap.colnames:
        fid = np.asarray(fibermap["FIBERID"], dtype=np.int64)
        if np.unique(fid).size != n_fiber:
            raise InputError(
                "FIBERID values are not unique", path=p, hdu="PLUGMAP", column="FIBERID"
            )
        fiber = fid
    else:
        log.info("%s: PLUGMAP has no FIBERID column; FIBER = row + 1", p)
    fibermap["PLATE"] = np.full(n_fiber, plate, dtype=np.int64)
    fibermap["MJD"] = np.full(n_fiber, mjd, dtype=np.int64)
    fibermap["FIBER"] = fiber
    fibermap["TARGETID"] = boss_targetid(plate, mjd, fiber)
    mask = andmask if mask_bits is None else (andmask & np.asarray(mask_bits).astype(andmask.dtype))
    spec = Spectra(
        bands=("brz",),
        wave={"brz": wave},
        flux={"brz": flux},
        ivar={"brz": ivar},
        fibermap=fibermap,
        mask={"brz": mask},
        resolution=None,
        meta={"PLATE": plate, "MJD": mjd, "COEFF0": c0, "COEFF1": c1},
        source=str(p),
    )
    if fibers is None:
        return spec
    want = np.atleast_1d(np.asarray(fibers, dtype=np.int64))
    absent = np.setdiff1d(want, fiber)
    if absent.size:
        raise InputError(
            f"fiber(s) {absent[:5].tolist()} not in file", path=p, hdu="PLUGMAP", column="FIBER"
        )
    return spec.select(np.flatnonzero(np.isin(fiber, want)))
