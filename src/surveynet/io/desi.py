"""DESI spectra I/O: coadd/spectra files, cframe exposures, and a DESI-format coadd writer.

Layouts (read by EXTNAME, never by HDU number):

* **coadd / spectra** files: ``FIBERMAP`` (one row per spectrum, ``TARGETID``), optionally
  ``EXP_FIBERMAP`` and ``SCORES``, and per camera ``{B,R,Z}_WAVELENGTH`` (n_pix,),
  ``{B,R,Z}_FLUX`` and ``_IVAR`` (n_spec, n_pix), optional ``_MASK`` (uint32) and
  ``_RESOLUTION`` (n_spec, n_diag, n_pix). A single combined camera ``BRZ_*`` is read as band
  ``"brz"``. Band keys of the returned :class:`~surveynet.io.container.Spectra` are the lower-case
  prefixes, sorted by wavelength.
* **cframe** exposures (one camera of one spectrograph): ``FLUX`` (often the primary HDU),
  ``IVAR``, ``MASK``, ``WAVELENGTH``, ``RESOLUTION``, ``FIBERMAP``; header ``CAMERA`` such as
  ``"b3"`` (band b/r/z, spectrograph 0-9).

Reading only what a step needs
------------------------------
:func:`read_desi_spectra` reads the HDUs asked for (``resolution=False`` skips the resolution
matrices, about 80 % of a coadd's bytes; ``mask=False`` the masks) and, with ``rows=``, only a
block of spectra; :func:`iter_desi_spectra` streams a file in row blocks, so that a file larger
than memory can be processed. Plain images are read straight into one buffer and byte-swapped
in place (float32 stays float32, one copy); each HDU's ``DATASUM`` is verified on the bytes
read (accumulated over blocks when streaming), so HDUs that are not read cost nothing.
astropy was measured against fitsio for this (``experiments/speed/readers.py``): on a
2,000-spectrum coadd both read the prediction HDUs in the same time, so fitsio is not needed.

Bad-input policy
----------------
* Structural problems are errors: a missing, non-FITS or truncated file, a missing HDU or
  ``TARGETID`` column, ``_MASK``/``_RESOLUTION`` present for some bands but not others,
  mis-shaped arrays, or non-finite / non-increasing wavelengths raise
  :class:`~surveynet.errors.InputError` naming the file and the HDU/column.
* Bad pixel *values* are mask-and-continue: NaN/inf flux or ivar and zero/negative ivar are
  returned exactly as stored (readers never alter data and never fail on them); call
  :meth:`Spectra.clean() <surveynet.io.container.Spectra.clean>` to zero the flux and ivar of
  every such pixel (and of every pixel with a non-zero mask) before using them.
* A coadd without ``FIBERMAP`` (e.g. QuasarNP's ``test_coadd.fits``, which holds only flux,
  ivar and wavelengths) is accepted: the reader builds a FIBERMAP whose ``TARGETID`` is the
  row index 0..n-1 and sets ``meta["TIDSYNTH"] = True`` (logged at WARNING level). A FIBERMAP
  without ``TARGETID`` is an error.

Writing (:func:`write_coadd`) produces the same layout with a provenance primary header
(plus ``NEXTEND``, so that a file cut at an HDU boundary is detected), an EXTNAME and BUNIT on
every HDU, float32 flux/ivar/resolution and uint32 masks, written to a
temporary file and renamed, so that a failed write never leaves a partial file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io._fitsread import Checksum, hdu_names, open_fits, read_image, read_table
from surveynet.io.container import Spectra
from surveynet.io.fits import provenance_header, table_hdu, write_hdulist

log = logging.getLogger(__name__)

__all__ = [
    "FLUX_UNIT",
    "IVAR_UNIT",
    "META_KEYS",
    "WAVE_UNIT",
    "iter_desi_spectra",
    "read_cframe",
    "read_cframes",
    "read_desi_spectra",
    "sniff",
    "write_coadd",
]

WAVE_UNIT = "Angstrom"
FLUX_UNIT = "10**-17 erg/(s cm2 Angstrom)"
IVAR_UNIT = "10**+34 (s2 cm4 Angstrom2) / erg2"

#: Header keywords copied into ``Spectra.meta`` when present (primary header, then FLUX header).
META_KEYS: tuple[str, ...] = (
    "SPGRP",
    "SPGRPVAL",
    "TILEID",
    "NIGHT",
    "EXPID",
    "MJD",
    "SPECTRO",
    "PETAL",
    "CAMERA",
    "SURVEY",
    "PROGRAM",
    "FAPRGRM",
    "HPXPIXEL",
    "HPXNSIDE",
    "HPXNEST",
    "SPECPROD",
    "FIBERMIN",
    "EXPTIME",
    "SEED",
    "PIPELINE",
    "SNVER",
    "PLATE",
    "PLATEID",
    "TIDSYNTH",
)

_BAND_ORDER = {"b": 0, "r": 1, "z": 2}
_STRUCTURAL = {
    "SIMPLE",
    "BITPIX",
    "NAXIS",
    "EXTEND",
    "XTENSION",
    "PCOUNT",
    "GCOUNT",
    "CHECKSUM",
    "DATASUM",
    "EXTNAME",
    "BSCALE",
    "BZERO",
    "END",
    "",
}


def _is_structural(key: str) -> bool:
    return key in _STRUCTURAL or re.fullmatch(r"NAXIS\d+", key) is not None


def _meta_from_headers(*headers: fits.Header) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for hdr in headers:
        for key in META_KEYS:
            if key in hdr and key not in meta:
                meta[key] = hdr[key]
    return meta


# ---------------------------------------------------------------------------------------------
# sniffing
# ---------------------------------------------------------------------------------------------


def _band_prefixes(names: Iterable[str]) -> list[str]:
    """Prefixes P with a ``P_FLUX`` HDU (e.g. ``B``, ``R``, ``Z``, ``BRZ``)."""
    out = []
    for n in names:
        m = re.fullmatch(r"([A-Z]+)_FLUX", n)
        if m:
            out.append(m.group(1))
    return out


def sniff(path: str | os.PathLike[str]) -> Literal["desi", "cframe", "spplate"] | None:
    """Guess the layout of a spectra file from its HDU names and primary header.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    {"desi", "cframe", "spplate"} or None
        ``"desi"`` for coadd/spectra files (``{B,R,Z}_FLUX`` HDUs), ``"cframe"`` for one-camera
        exposures (``FLUX``, ``IVAR`` and ``WAVELENGTH`` HDUs), ``"spplate"`` for BOSS/SDSS
        spPlate files (2-D primary image with ``COEFF0``/``COEFF1``), None otherwise.

    Raises
    ------
    InputError
        Missing, non-FITS or truncated file.
    """
    p = Path(path)
    with open_fits(p) as hdul:  # headers and file size only
        return layout_of(hdul)


def layout_of(hdul: fits.HDUList) -> Literal["desi", "cframe", "spplate"] | None:
    """:func:`sniff` on a file already open (:func:`surveynet.io._fitsread.open_fits`).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.

    Returns
    -------
    {"desi", "cframe", "spplate"} or None
        As :func:`sniff`.
    """
    names = hdu_names(hdul)
    if _band_prefixes(names):
        return "desi"
    if {"FLUX", "IVAR", "WAVELENGTH"} <= set(names):
        return "cframe"
    hdr = hdul[0].header
    if "COEFF0" in hdr and "COEFF1" in hdr and hdr.get("NAXIS", 0) == 2:
        return "spplate"
    return None


# ---------------------------------------------------------------------------------------------
# coadd / spectra files
# ---------------------------------------------------------------------------------------------


def _sort_bands(bands: Iterable[str], first_wave: dict[str, float]) -> tuple[str, ...]:
    return tuple(sorted(bands, key=lambda b: (first_wave.get(b, np.inf), _BAND_ORDER.get(b, 9), b)))


def _select_rows(
    fibermap: Table,
    targetids: Sequence[int] | NDArray[Any] | None,
    path: Path,
    hdu: str,
) -> NDArray[np.intp] | None:
    if targetids is None:
        return None
    want = np.atleast_1d(np.asarray(targetids, dtype=np.int64))
    have = np.asarray(fibermap["TARGETID"], dtype=np.int64)
    missing = np.setdiff1d(want, have)
    if missing.size:
        shown = ", ".join(str(t) for t in missing[:5]) + (" ..." if missing.size > 5 else "")
        raise InputError(
            f"{missing.size} requested TARGETID(s) not in file: {shown}",
            path=path,
            hdu=hdu,
            column="TARGETID",
        )
    return np.flatnonzero(np.isin(have, want))


def _choose_bands(names: list[str], bands: Sequence[str] | None, p: Path) -> list[str]:
    """The bands to read: all with a ``*_FLUX`` HDU, or those asked for (checked)."""
    prefixes = _band_prefixes(names)
    if not prefixes:
        raise InputError("no {B,R,Z}_FLUX HDU: not a DESI coadd/spectra file", path=p, hdu="B_FLUX")
    available = [pre.lower() for pre in prefixes]
    if bands is None:
        return available
    chosen = []
    for b in dict.fromkeys(x.lower() for x in bands):  # unique, in the given order
        if b not in available:
            raise InputError(
                f"band {b!r} not in file (has {available})", path=p, hdu=f"{b.upper()}_FLUX"
            )
        chosen.append(b)
    return chosen


def _desi_parts(
    names: list[str], chosen: list[str], resolution: bool, mask: bool, p: Path
) -> list[tuple[str, str, str]]:
    """(band, part, EXTNAME) of every image HDU to read, structure checked first.

    Raises
    ------
    InputError
        A band without ``_WAVELENGTH`` or ``_IVAR``, or ``_MASK``/``_RESOLUTION`` (when asked
        for) present in some bands but not others.
    """
    out = []
    for b in chosen:
        up = b.upper()
        for part in ("WAVELENGTH", "IVAR"):
            if f"{up}_{part}" not in names:
                raise InputError(
                    f"band {b!r} has {up}_FLUX but no {up}_{part}", path=p, hdu=f"{up}_{part}"
                )
        out += [(b, "WAVELENGTH", f"{up}_WAVELENGTH"), (b, "FLUX", f"{up}_FLUX")]
        out.append((b, "IVAR", f"{up}_IVAR"))
    for part, wanted in (("MASK", mask), ("RESOLUTION", resolution)):
        if not wanted:
            continue
        have = [b for b in chosen if f"{b.upper()}_{part}" in names]
        lacking = [b for b in chosen if b not in have]
        if have and lacking:
            raise InputError(
                f"bands {sorted(have)} have {part} but {lacking} do not (damaged file?)",
                path=p,
                hdu=f"{lacking[0].upper()}_{part}",
            )
        out += [(b, part, f"{b.upper()}_{part}") for b in have]
    return out


class _DesiFile:
    """An open DESI coadd/spectra file: layout checked, FIBERMAP and wavelengths read.

    Row blocks of the band arrays are then read with :meth:`block`; with ``checksum`` the
    DATASUM of every HDU read is accumulated over the blocks and checked by :meth:`verify`.
    """

    def __init__(
        self,
        hdul: fits.HDUList,
        p: Path,
        bands: Sequence[str] | None,
        *,
        resolution: bool,
        mask: bool,
        checksum: bool,
    ) -> None:
        self.hdul, self.p = hdul, p
        names = hdu_names(hdul)
        chosen = _choose_bands(names, bands, p)
        self.parts = _desi_parts(names, chosen, resolution, mask, p)
        self.checks: dict[str, Checksum] | None = None
        if checksum:
            self.checks = {
                ext: Checksum(hdul[ext], p, ext)
                for _, part, ext in self.parts
                if part != "WAVELENGTH"  # read whole (and checked) here
            }
            self.checks = {k: c for k, c in self.checks.items() if c.wanted}
        fibermap = None
        if "FIBERMAP" in names:
            fibermap = read_table(hdul, "FIBERMAP", p, required=("TARGETID",), checksum=checksum)
        self.meta = _meta_from_headers(hdul[0].header)
        self.wave: dict[str, NDArray[Any]] = {}
        n_spec: int | None = None if fibermap is None else len(fibermap)
        for b, part, ext in self.parts:
            if part == "WAVELENGTH":
                self.wave[b] = read_image(hdul, ext, p, ndim=1, dtype=np.float64, checksum=checksum)
            elif part == "FLUX":
                shape = tuple(hdul[ext].shape)
                if len(shape) != 2:
                    raise InputError(f"expected a 2-D array, got shape {shape}", path=p, hdu=ext)
                if n_spec is None:
                    n_spec = shape[0]
                if shape[0] != n_spec:
                    what = "FIBERMAP rows" if fibermap is not None else "spectra in the first band"
                    raise InputError(f"{shape[0]} spectra but {n_spec} {what}", path=p, hdu=ext)
        assert n_spec is not None
        if fibermap is None:
            log.warning("%s has no FIBERMAP; using row index 0..%d as TARGETID", p, n_spec - 1)
            fibermap = Table({"TARGETID": np.arange(n_spec, dtype=np.int64)})
            self.meta["TIDSYNTH"] = True
        self.fibermap = fibermap
        self.n_spec = n_spec
        _check_wave(self.wave, p)
        self.order = _sort_bands(chosen, {b: float(w[0]) for b, w in self.wave.items()})

    def block(self, rows: slice | None = None) -> Spectra:
        """Spectra of a contiguous block of rows (default all)."""
        p, hdul = self.p, self.hdul
        arrays: dict[str, dict[str, NDArray[Any]]] = {
            "FLUX": {},
            "IVAR": {},
            "MASK": {},
            "RESOLUTION": {},
        }
        for b, part, ext in self.parts:
            if part == "WAVELENGTH":
                continue
            ck: bool | Checksum = False
            if self.checks is not None:
                ck = self.checks.get(ext, False)
            arr = read_image(
                hdul, ext, p, ndim=3 if part == "RESOLUTION" else 2, rows=rows, checksum=ck
            )
            if part == "MASK" and arr.dtype.kind not in "iub":
                raise InputError(f"mask must be integer, got {arr.dtype}", path=p, hdu=ext)
            arrays[part][b] = arr
        fibermap = self.fibermap if rows is None else self.fibermap[rows]
        return Spectra(
            bands=self.order,
            wave=dict(self.wave),
            flux=arrays["FLUX"],
            ivar=arrays["IVAR"],
            fibermap=fibermap,
            mask=arrays["MASK"] or None,
            resolution=arrays["RESOLUTION"] or None,
            meta=dict(self.meta),
            source=str(p),
        )

    def verify(self) -> None:
        """Check the accumulated DATASUMs (after every row has been read once)."""
        for ck in (self.checks or {}).values():
            ck.verify()


def read_desi_spectra(
    path: str | os.PathLike[str],
    targetids: Sequence[int] | NDArray[Any] | None = None,
    bands: Sequence[str] | None = None,
    *,
    resolution: bool = True,
    mask: bool = True,
    rows: slice | None = None,
    checksum: bool = True,
) -> Spectra:
    """Read a DESI coadd or spectra file, only the HDUs asked for.

    Parameters
    ----------
    path : str or os.PathLike
        ``coadd-*.fits`` or ``spectra-*.fits`` (also our simulated coadds).
    targetids : sequence of int, optional
        Keep only these targets (rows stay in file order). Every requested TARGETID must be
        present, otherwise InputError.
    bands : sequence of str, optional
        Cameras to read, e.g. ``["b", "r"]`` (case-insensitive); default all present.
    resolution : bool
        Read the ``*_RESOLUTION`` HDUs (about 80 % of a coadd's bytes). Prediction steps pass
        False: they need FLUX, IVAR, MASK, WAVELENGTH and FIBERMAP only.
    mask : bool
        Read the ``*_MASK`` HDUs.
    rows : slice, optional
        A contiguous block of rows (spectra) to read; default all. Only those bytes are read.
    checksum : bool
        Verify the DATASUM of every HDU read (cheap: computed on the bytes being read; a
        partial ``rows`` read is not checked, see :func:`iter_desi_spectra`).

    Returns
    -------
    Spectra
        Flux/ivar/mask/resolution as stored (raw values and dtype: float32 stays float32, see
        the module's bad-input policy), wavelengths as float64, ``meta`` with the
        :data:`META_KEYS` found in the primary header, ``source`` the file path.

    Raises
    ------
    InputError
        Missing/truncated file, no ``*_FLUX`` HDU, a band without ``_WAVELENGTH`` or ``_IVAR``,
        a FIBERMAP without TARGETID or with the wrong number of rows, mis-shaped arrays,
        non-finite or non-increasing wavelengths, unknown band or TARGETID requested, data
        failing their DATASUM.

    Examples
    --------
    >>> spec = read_desi_spectra("coadd-5-169-thru20210419.fits")  # doctest: +SKIP
    >>> spec.bands, spec.flux["b"].shape  # doctest: +SKIP
    (('b', 'r', 'z'), (5, 2751))
    """
    p = Path(path)
    with open_fits(p) as hdul:
        return read_desi_open(
            hdul,
            p,
            targetids,
            bands,
            resolution=resolution,
            mask=mask,
            rows=rows,
            checksum=checksum,
        )


def read_desi_open(
    hdul: fits.HDUList,
    path: Path,
    targetids: Sequence[int] | NDArray[Any] | None = None,
    bands: Sequence[str] | None = None,
    *,
    resolution: bool = True,
    mask: bool = True,
    rows: slice | None = None,
    checksum: bool = True,
) -> Spectra:
    """:func:`read_desi_spectra` of a file already open (one header parse per file).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The file, opened by :func:`surveynet.io._fitsread.open_fits`.
    path : Path
        Its path (data are read from it; messages name it).
    targetids, bands, resolution, mask, rows, checksum
        As :func:`read_desi_spectra`.

    Returns
    -------
    Spectra
        As :func:`read_desi_spectra`.
    """
    f = _DesiFile(hdul, path, bands, resolution=resolution, mask=mask, checksum=checksum)
    spec = f.block(rows)
    if rows is None or rows.indices(f.n_spec) == (0, f.n_spec, 1):
        f.verify()
    rows_sel = _select_rows(spec.fibermap, targetids, path, "FIBERMAP")
    return spec if rows_sel is None else spec.select(rows_sel)


def iter_desi_spectra(
    path: str | os.PathLike[str],
    block_rows: int,
    *,
    bands: Sequence[str] | None = None,
    resolution: bool = False,
    mask: bool = True,
    checksum: bool = True,
) -> Iterator[Spectra]:
    """Stream a DESI coadd/spectra file in blocks of ``block_rows`` spectra.

    Only one block of band arrays is in memory at a time (the FIBERMAP and wavelengths are
    read once), so a file larger than memory can be processed. With ``checksum`` the DATASUM
    of every HDU read is accumulated over the blocks and checked after the last one (an
    :class:`~surveynet.errors.InputError` is then raised from the iterator).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    block_rows : int
        Spectra per block (>= 1).
    bands, resolution, mask, checksum
        As :func:`read_desi_spectra` (``resolution`` defaults to False here).

    Yields
    ------
    Spectra
        Consecutive blocks, in file order.

    Raises
    ------
    InputError
        As :func:`read_desi_spectra`.
    ValueError
        ``block_rows < 1``.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        yield from iter_desi_open(
            hdul, p, block_rows, bands=bands, resolution=resolution, mask=mask, checksum=checksum
        )


def iter_desi_open(
    hdul: fits.HDUList,
    path: Path,
    block_rows: int,
    *,
    bands: Sequence[str] | None = None,
    resolution: bool = False,
    mask: bool = True,
    checksum: bool = True,
) -> Iterator[Spectra]:
    """:func:`iter_desi_spectra` of a file already open (one header parse per file).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The file, opened by :func:`surveynet.io._fitsread.open_fits`.
    path : Path
        Its path.
    block_rows, bands, resolution, mask, checksum
        As :func:`iter_desi_spectra`.

    Yields
    ------
    Spectra
        Consecutive blocks, in file order.

    Raises
    ------
    ValueError
        ``block_rows < 1``.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    f = _DesiFile(hdul, path, bands, resolution=resolution, mask=mask, checksum=checksum)
    for start in range(0, f.n_spec, block_rows):
        yield f.block(slice(start, min(start + block_rows, f.n_spec)))
    f.verify()


def _check_wave(wave: dict[str, NDArray[Any]], path: Path, hdu_fmt: str = "{B}_WAVELENGTH") -> None:
    for b, w in wave.items():
        hdu = hdu_fmt.format(B=b.upper())
        if w.size < 2:
            raise InputError(f"wavelength needs >= 2 pixels, got {w.size}", path=path, hdu=hdu)
        if not np.all(np.isfinite(w)):
            raise InputError(
                f"wavelength has {int(np.sum(~np.isfinite(w)))} NaN/inf value(s)",
                path=path,
                hdu=hdu,
            )
        if not np.all(np.diff(w) > 0):
            bad = int(np.flatnonzero(np.diff(w) <= 0)[0])
            raise InputError(
                f"wavelength is not strictly increasing (pixel {bad + 1})", path=path, hdu=hdu
            )


# ---------------------------------------------------------------------------------------------
# cframes
# ---------------------------------------------------------------------------------------------


def _parse_camera(camera: Any, path: Path, hdu: str) -> tuple[str, int]:
    cam = str(camera).strip().lower()
    m = re.fullmatch(r"([brz])([0-9])", cam)
    if not m:
        raise InputError(
            f"CAMERA {camera!r} is not b/r/z followed by a spectrograph 0-9",
            path=path,
            hdu=hdu,
            column="CAMERA",
        )
    return m.group(1), int(m.group(2))


def read_cframe(
    path: str | os.PathLike[str],
    fibers: Sequence[int] | NDArray[Any] | None = None,
    *,
    resolution: bool = True,
    mask: bool = True,
    checksum: bool = True,
) -> Spectra:
    """Read one DESI cframe (one camera of one spectrograph, one exposure).

    Parameters
    ----------
    path : str or os.PathLike
        ``cframe-{b,r,z}{0-9}-{EXPID}.fits``.
    fibers : sequence of int, optional
        Keep the rows whose FIBERMAP ``FIBER`` is in this list (file order); every requested
        fiber must be present.
    resolution, mask : bool
        Read the ``RESOLUTION`` and ``MASK`` HDUs (when present).
    checksum : bool
        Verify the DATASUM of every HDU read.

    Returns
    -------
    Spectra
        One band keyed by the camera letter (``"b"``, ``"r"`` or ``"z"``); ``meta`` holds
        ``CAMERA`` (e.g. ``"b3"``), ``SPECTROGRAPH`` (int) and ``EXPID``, ``NIGHT`` etc. when
        present.

    Raises
    ------
    InputError
        Missing HDU (FLUX, IVAR, WAVELENGTH or FIBERMAP), missing or malformed CAMERA header,
        missing TARGETID/FIBER column, mis-shaped arrays, bad wavelengths, unknown fibers.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        names = hdu_names(hdul)
        for req in ("FLUX", "IVAR", "WAVELENGTH", "FIBERMAP"):
            if req not in names:
                raise InputError("required cframe HDU is missing", path=p, hdu=req)
        flux_hdu = hdul["FLUX"]
        hdr0 = hdul[0].header
        camera = flux_hdu.header.get("CAMERA", hdr0.get("CAMERA"))
        if camera is None:
            raise InputError("no CAMERA header keyword", path=p, hdu="FLUX", column="CAMERA")
        band, spectrograph = _parse_camera(camera, p, "FLUX")
        ck = checksum
        w = read_image(hdul, "WAVELENGTH", p, ndim=1, dtype=np.float64, checksum=ck)
        f = read_image(hdul, "FLUX", p, ndim=2, checksum=ck)
        iv = read_image(hdul, "IVAR", p, ndim=2, checksum=ck)
        m = read_image(hdul, "MASK", p, ndim=2, checksum=ck) if mask and "MASK" in names else None
        if m is not None and m.dtype.kind not in "iub":
            raise InputError(f"mask must be integer, got {m.dtype}", path=p, hdu="MASK")
        r = None
        if resolution and "RESOLUTION" in names:
            r = read_image(hdul, "RESOLUTION", p, ndim=3, checksum=ck)
        fibermap = read_table(hdul, "FIBERMAP", p, required=("TARGETID",), checksum=ck)
        meta = _meta_from_headers(flux_hdu.header, hdr0)
    if len(fibermap) != f.shape[0]:
        raise InputError(
            f"FIBERMAP has {len(fibermap)} rows but FLUX has {f.shape[0]} spectra",
            path=p,
            hdu="FIBERMAP",
        )
    _check_wave({band: w}, p, "WAVELENGTH")
    meta["CAMERA"] = f"{band}{spectrograph}"
    meta["SPECTROGRAPH"] = spectrograph
    spec = Spectra(
        bands=(band,),
        wave={band: w},
        flux={band: f},
        ivar={band: iv},
        fibermap=fibermap,
        mask=None if m is None else {band: m},
        resolution=None if r is None else {band: r},
        meta=meta,
        source=str(p),
    )
    if fibers is None:
        return spec
    if "FIBER" not in fibermap.colnames:
        raise InputError(
            "fibers= given but FIBERMAP has no FIBER column", path=p, hdu="FIBERMAP", column="FIBER"
        )
    want = np.atleast_1d(np.asarray(fibers, dtype=np.int64))
    have = np.asarray(fibermap["FIBER"], dtype=np.int64)
    missing = np.setdiff1d(want, have)
    if missing.size:
        raise InputError(
            f"fiber(s) {missing[:5].tolist()} not in file", path=p, hdu="FIBERMAP", column="FIBER"
        )
    return spec.select(np.flatnonzero(np.isin(have, want)))


def read_cframes(
    paths: Sequence[str | os.PathLike[str]],
    fibers: Sequence[int] | NDArray[Any] | None = None,
    **kwargs: Any,
) -> Spectra:
    """Merge the b/r/z cframes of one exposure and spectrograph into one multi-band Spectra.

    Parameters
    ----------
    paths : sequence of path
        One cframe per camera (any subset of b, r, z, each at most once).
    fibers : sequence of int, optional
        Passed to :func:`read_cframe`.
    **kwargs
        ``resolution``, ``mask``, ``checksum``: passed to :func:`read_cframe`.

    Returns
    -------
    Spectra
        Bands sorted b, r, z; FIBERMAP of the first file; ``meta["CAMERAS"]`` lists the cameras.

    Raises
    ------
    InputError
        Empty list, the same camera twice, files from different exposures (EXPID) or
        spectrographs, or different TARGETIDs/rows.
    """
    if len(paths) == 0:
        raise InputError("no cframe files given")
    parts = [read_cframe(p, fibers=fibers, **kwargs) for p in paths]
    first = parts[0]
    bands: list[str] = []
    for s in parts:
        b = s.bands[0]
        if b in bands:
            raise InputError(
                f"camera {b!r} given twice", path=s.source, hdu="FLUX", column="CAMERA"
            )
        bands.append(b)
        for key in ("SPECTROGRAPH", "EXPID"):
            if key in s.meta and key in first.meta and s.meta[key] != first.meta[key]:
                raise InputError(
                    f"{key} {s.meta[key]} differs from {first.meta[key]} in {first.source}",
                    path=s.source,
                    hdu="FLUX",
                    column=key,
                )
        if s.n_spec != first.n_spec or not np.array_equal(s.targetid, first.targetid):
            raise InputError(
                f"TARGETIDs differ from those of {first.source}",
                path=s.source,
                hdu="FIBERMAP",
                column="TARGETID",
            )
    order = _sort_bands(bands, {})
    by_band = {s.bands[0]: s for s in parts}
    has_mask = all(s.mask is not None for s in parts)
    has_res = all(s.resolution is not None for s in parts)
    meta = dict(first.meta)
    meta.pop("CAMERA", None)
    meta["CAMERAS"] = ",".join(by_band[b].meta["CAMERA"] for b in order)
    return Spectra(
        bands=order,
        wave={b: by_band[b].wave[b] for b in order},
        flux={b: by_band[b].flux[b] for b in order},
        ivar={b: by_band[b].ivar[b] for b in order},
        fibermap=first.fibermap,
        mask={b: by_band[b].mask[b] for b in order} if has_mask else None,  # type: ignore[index]
        resolution={b: by_band[b].resolution[b] for b in order} if has_res else None,  # type: ignore[index]
        meta=meta,
        source=",".join(str(s.source) for s in parts),
    )


# ---------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------


def _image_hdu(data: NDArray[Any], extname: str, bunit: str | None = None) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data=data, name=extname)
    if bunit is not None:
        hdu.header["BUNIT"] = bunit
    return hdu


def write_coadd(
    path: str | os.PathLike[str],
    spectra: Spectra,
    *,
    header: fits.Header | dict[str, Any] | None = None,
    extra_hdus: Sequence[fits.ImageHDU | fits.BinTableHDU] = (),
    overwrite: bool = False,
) -> Path:
    """Write spectra as a DESI-format coadd file, atomically.

    Layout: PRIMARY (provenance header, :func:`surveynet.io.fits.provenance_header`, plus
    ``header`` and the scalar ``spectra.meta`` entries), FIBERMAP, then per band
    ``{B}_WAVELENGTH`` (float64, BUNIT Angstrom), ``{B}_FLUX`` (float32, BUNIT
    ``10**-17 erg/(s cm2 Angstrom)``), ``{B}_IVAR`` (float32), ``{B}_MASK`` (uint32) and
    ``{B}_RESOLUTION`` (float32) when present, then ``extra_hdus``.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    spectra : Spectra
        What to write. float32 data round-trip exactly; float64 flux/ivar are rounded to float32.
    header : astropy.io.fits.Header or dict, optional
        Extra primary-header cards (e.g. a provenance header from the caller, which then
        takes precedence over the default ``PIPELINE = 'io'`` provenance).
    extra_hdus : sequence of HDU
        Appended after the band HDUs; each needs an EXTNAME.
    overwrite : bool
        Replace an existing file; otherwise :class:`FileExistsError`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        Invalid spectra (shapes, wavelengths, TARGETID) or a mask with values outside uint32.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    spectra.validate()
    src = spectra.source
    hdr = provenance_header(pipeline="io")
    extra: dict[str, Any] = {}
    if header is not None:
        for key, value in header.items():
            k = str(key).upper()
            if _is_structural(k) or k in ("COMMENT", "HISTORY"):
                continue
            extra[k] = value
    for key, value in spectra.meta.items():
        k = str(key).upper()
        scalar = isinstance(value, bool | int | float | str | np.integer | np.floating | np.bool_)
        if len(k) <= 8 and re.fullmatch(r"[A-Z0-9_-]+", k) and scalar and not _is_structural(k):
            extra.setdefault(k, value.item() if isinstance(value, np.generic) else value)
    for k, value in extra.items():
        # keys longer than 8 characters become explicit HIERARCH cards (no VerifyWarning)
        hdr[k if len(k) <= 8 else f"HIERARCH {k}"] = value
    hdus: list[Any] = [fits.PrimaryHDU(header=hdr)]
    hdus.append(table_hdu(spectra.fibermap, "FIBERMAP"))
    for b in spectra.bands:
        up = b.upper()
        hdus.append(
            _image_hdu(np.asarray(spectra.wave[b], dtype=np.float64), f"{up}_WAVELENGTH", WAVE_UNIT)
        )
        hdus.append(
            _image_hdu(np.asarray(spectra.flux[b], dtype=np.float32), f"{up}_FLUX", FLUX_UNIT)
        )
        hdus.append(
            _image_hdu(np.asarray(spectra.ivar[b], dtype=np.float32), f"{up}_IVAR", IVAR_UNIT)
        )
        if spectra.mask is not None and b in spectra.mask:
            m = np.asarray(spectra.mask[b])
            if m.dtype.kind not in "iub":
                raise InputError(f"mask must be integer, got {m.dtype}", path=src, hdu=f"{up}_MASK")
            if m.size and (m.min() < 0 or m.max() > np.iinfo(np.uint32).max):
                raise InputError("mask values must fit in uint32", path=src, hdu=f"{up}_MASK")
            hdus.append(_image_hdu(m.astype(np.uint32), f"{up}_MASK"))
        if spectra.resolution is not None and b in spectra.resolution:
            hdus.append(
                _image_hdu(np.asarray(spectra.resolution[b], dtype=np.float32), f"{up}_RESOLUTION")
            )
    hdus.extend(extra_hdus)
    hdus[0].header["NEXTEND"] = (len(hdus) - 1, "number of extensions (truncation check)")
    out = write_hdulist(path, hdus, overwrite=overwrite)
    log.debug("wrote %d spectra (%s) to %s", spectra.n_spec, ",".join(spectra.bands), out)
    return out
