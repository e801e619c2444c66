"""Defensive FITS reading helpers shared by the spectra and truth readers (internal).

Every helper turns whatever astropy raises on a damaged file (truncation, bad headers, wrong
data types, missing HDUs) into :class:`surveynet.errors.InputError` naming the file and the HDU
or column, so that callers see one exception type for bad input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["hdu_names", "open_fits", "read_image", "read_table"]


def _check_truncation(hdul: fits.HDUList, path: Path) -> None:
    """Raise if any HDU extends past the end of the file, or if unparsed bytes follow the last HDU.

    astropy stops silently at an incomplete trailing header, so a file cut inside a header
    looks like a shorter valid file; non-blank bytes after the last complete HDU reveal it.
    """
    size = path.stat().st_size
    end = 0
    for i, hdu in enumerate(hdul):
        if type(hdu).__name__ == "_CorruptedHDU" or not hasattr(hdu, "fileinfo"):
            raise InputError(
                f"HDU {i} is corrupted (unparsable header or data size)", path=path, hdu=str(i)
            )
        info = hdu.fileinfo()
        if info is None:  # pragma: no cover - only for in-memory HDUs
            continue
        end = int(info["datLoc"]) + int(info["datSpan"])
        if end > size:
            try:
                name = str(hdu.name) or str(i)
            except Exception:  # damaged EXTNAME card
                name = str(i)
            raise InputError(
                f"file is truncated: HDU {i} needs bytes up to {end}, the file has {size}",
                path=path,
                hdu=name,
            )
    if size > end:
        with open(path, "rb") as fh:
            fh.seek(end)
            tail = fh.read(min(size - end, 1 << 20))
        if tail.strip(b"\x00 "):
            raise InputError(
                f"{size - end} unparsed byte(s) after HDU {len(hdul) - 1}: truncated or corrupt "
                "header of the next HDU",
                path=path,
            )


@contextlib.contextmanager
def open_fits(path: str | os.PathLike[str], *, checksum: bool = True) -> Iterator[fits.HDUList]:
    """Open a FITS file for reading, checking that it is complete.

    All HDU headers are parsed up front (so a damaged header fails here) and a file shorter
    than its headers announce is rejected. Warnings astropy emits on odd files (non-standard
    units, fixable cards) are logged at DEBUG level instead of being propagated; a
    truncation warning becomes an error, and so does a file with fewer extensions than its
    primary header's ``NEXTEND`` (written by :func:`surveynet.io.desi.write_coadd`). HDUs that
    carry ``DATASUM`` cards (DESI files and everything surveynet writes) are verified: a data
    mismatch (corrupted bytes) is an error; a header-only ``CHECKSUM`` mismatch (common in real
    files whose headers were touched after writing) is logged at WARNING level.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    checksum : bool
        Verify CHECKSUM/DATASUM cards (reads all data once); False for header-only sniffing.

    Raises
    ------
    InputError
        Missing, unreadable, non-FITS or truncated file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", path=p)
    # We own the file handle: astropy leaks it when fits.open fails half-way on a damaged file.
    with open(p, "rb") as fh:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = _open_checked(fh, p, caught, checksum)
        try:
            yield hdul
        finally:
            hdul.close()


def _open_checked(
    fh: Any, p: Path, caught: list[warnings.WarningMessage], checksum: bool
) -> fits.HDUList:
    try:
        hdul = fits.open(fh, memmap=False, lazy_load_hdus=False, checksum=checksum)
    except Exception as exc:
        raise InputError(f"not a readable FITS file ({type(exc).__name__}: {exc})", path=p) from exc
    try:
        if len(hdul) == 0:
            raise InputError("FITS file has no HDU", path=p)
        for w in caught:
            text = str(w.message).strip()
            low = text.lower()
            if "truncated" in low:
                raise InputError(f"file is truncated ({text})", path=p)
            if "datasum verification failed" in low:
                raise InputError(
                    f"corrupt data: {text} (the data bytes differ from those the DATASUM card "
                    "was computed for; if the file was edited on purpose, rewrite it with "
                    "checksum=True)",
                    path=p,
                )
            if "checksum verification failed" in low:
                log.warning("%s: %s (header only; data checksums match)", p, text)
            else:
                log.debug("%s: %s", p, text)
        _check_truncation(hdul, p)
        _parse_headers(hdul, p)
        _check_nextend(hdul, p)
    except InputError:
        hdul.close()
        raise
    except Exception as exc:
        hdul.close()
        raise InputError(f"not a readable FITS file ({type(exc).__name__}: {exc})", path=p) from exc
    caught.clear()
    return hdul


def _check_nextend(hdul: fits.HDUList, path: Path) -> None:
    """Reject a file cut at an HDU boundary (valid FITS) using ``NEXTEND`` when present."""
    nextend = hdul[0].header.get("NEXTEND")
    if isinstance(nextend, int) and not isinstance(nextend, bool) and len(hdul) - 1 < nextend:
        raise InputError(
            f"file is truncated: primary header announces NEXTEND = {nextend} extensions, "
            f"found {len(hdul) - 1}",
            path=path,
            hdu=str(len(hdul)),
        )


def _parse_headers(hdul: fits.HDUList, path: Path) -> None:
    """Parse every header card now (astropy parses lazily), so damage surfaces as InputError."""
    for i, hdu in enumerate(hdul):
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            try:
                for card in hdu.header.cards:
                    _ = card.value
                _ = str(hdu.name)
            except Exception as exc:
                raise InputError(
                    f"damaged header ({type(exc).__name__}: {exc})", path=path, hdu=str(i)
                ) from exc


def hdu_names(hdul: fits.HDUList) -> list[str]:
    """Upper-case EXTNAMEs (``PRIMARY`` for the first HDU when it has none)."""
    return [str(h.name).upper() for h in hdul]


def _find(hdul: fits.HDUList, key: str | int, path: Path) -> Any:
    try:
        return hdul[key]
    except (KeyError, IndexError) as exc:
        raise InputError("HDU is missing", path=path, hdu=str(key)) from exc


def read_image(
    hdul: fits.HDUList,
    key: str | int,
    path: Path,
    *,
    ndim: int | None = None,
    dtype: Any = None,
    name: str | None = None,
) -> NDArray[Any]:
    """Return the data of an image HDU as a native-byte-order numpy array.

    Parameters
    ----------
    hdul, key, path
        The open file, the HDU (EXTNAME or index) and the file path for messages.
    ndim : int, optional
        Required number of dimensions.
    dtype : numpy dtype, optional
        Cast to this type (e.g. float64 for wavelengths); otherwise the stored type is kept.
    name : str, optional
        HDU name used in messages (defaults to ``key``).
    """
    label = name or str(key)
    hdu = _find(hdul, key, path)
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        raise InputError(f"expected an image HDU, got {type(hdu).__name__}", path=path, hdu=label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = hdu.data
            if data is None:
                raise InputError("image HDU has no data", path=path, hdu=label)
            arr = np.asarray(data)
            if dtype is not None:
                arr = arr.astype(dtype)
            if not arr.dtype.isnative:
                arr = arr.astype(arr.dtype.newbyteorder("="))
            elif dtype is None:
                arr = np.array(arr, copy=True)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"cannot read image data ({type(exc).__name__}: {exc})", path=path, hdu=label
            ) from exc
    for w in caught:
        log.debug("%s[%s]: %s", path, label, w.message)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"unexpected data type {arr.dtype}", path=path, hdu=label)
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"expected a {ndim}-D array, got shape {arr.shape}", path=path, hdu=label)
    return arr


def read_table(
    hdul: fits.HDUList,
    key: str | int,
    path: Path,
    *,
    required: tuple[str, ...] = (),
    name: str | None = None,
) -> Table:
    """Return a binary-table HDU as an astropy Table (str text columns, no masking).

    ``TARGETID``, ``FIBER`` and ``FIBERID`` columns, when present, must be 1-D integers.

    Non-standard units are dropped silently (``unit_parse_strict='silent'``); NaNs and empty
    strings are kept as values (``mask_invalid=False``).

    Raises
    ------
    InputError
        HDU missing or not a table, unreadable, or lacking one of ``required`` columns.
    """
    label = name or str(key)
    hdu = _find(hdul, key, path)
    if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        raise InputError(f"expected a table HDU, got {type(hdu).__name__}", path=path, hdu=label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = Table.read(hdu, unit_parse_strict="silent", mask_invalid=False)
            for col in table.colnames:
                c = table[col]
                if c.dtype.kind == "S":
                    table[col] = np.char.decode(np.asarray(c), "ascii", errors="replace")
                elif not c.dtype.isnative:
                    table[col] = np.asarray(c).astype(c.dtype.newbyteorder("="))
        except Exception as exc:
            raise InputError(
                f"cannot read table ({type(exc).__name__}: {exc})", path=path, hdu=label
            ) from exc
    for w in caught:
        log.debug("%s[%s]: %s", path, label, w.message)
    upper = {c.upper(): c for c in table.colnames}
    for col in required:
        if col not in upper:
            raise InputError("required column is missing", path=path, hdu=label, column=col)
        if upper[col] != col:
            table.rename_column(upper[col], col)
    for col in ("TARGETID", "FIBER", "FIBERID"):
        if col in table.colnames:
            c = table[col]
            if c.dtype.kind not in "iu" or c.ndim != 1:
                raise InputError(
                    f"must be a 1-D integer column, got {c.dtype} with shape {c.shape}",
                    path=path,
                    hdu=label,
                    column=col,
                )
    return table
