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

__all__ = ["Checksum", "hdu_names", "open_fits", "read_image", "read_table"]


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
def open_fits(path: str | os.PathLike[str], *, checksum: bool = False) -> Iterator[fits.HDUList]:
    """Open a FITS file for reading, checking that it is complete; no data are read.

    All HDU headers are parsed up front (so a damaged header fails here) and a file shorter
    than its headers announce is rejected. Warnings astropy emits on odd files (non-standard
    units, fixable cards) are logged at DEBUG level instead of being propagated; a
    truncation warning becomes an error, and so does a file with fewer extensions than its
    primary header's ``NEXTEND`` (written by :func:`surveynet.io.desi.write_coadd`).

    Checksums are verified where data are read: :func:`read_image` and :func:`read_table`
    check the ``DATASUM`` (and ``CHECKSUM``) cards of each HDU they read, on the bytes they
    read anyway (a few ms per 20 MB), so HDUs a step does not need (e.g. resolution matrices)
    cost nothing.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    checksum : bool
        Also verify the checksums of *every* HDU now, through astropy (reads all data once;
        the behaviour of surveynet <= 0.4). Default False: per HDU, when read.

    Yields
    ------
    astropy.io.fits.HDUList
        The open file (closed on exit).

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


#: BITPIX -> big-endian dtype of the raw data (FITS standard, section 5.2).
_BITPIX = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
#: BITPIX -> the BZERO that marks unsigned integers (stored with the sign bit flipped).
_UNSIGNED_BZERO = {16: 1 << 15, 32: 1 << 31, 64: 1 << 63}
_ONES = 0xFFFFFFFF  # ones'-complement sums are equal modulo 2**32 - 1


def _word_sum(words: NDArray[Any]) -> int:
    """Sum of 32-bit words (any byte order, values as stored) as a Python int."""
    return int(np.add.reduce(words.reshape(-1), dtype=np.uint64))


def _bytes_sum(buf: bytes | bytearray | memoryview | NDArray[Any]) -> int:
    """Sum of the big-endian 32-bit words of a byte buffer (zero-padded to 4 bytes)."""
    raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.size % 4:
        raw = np.concatenate([raw, np.zeros(4 - raw.size % 4, dtype=np.uint8)])
    return _word_sum(raw.view(">u4"))


def _read_at(path: Path, offset: int, nbytes: int) -> bytes:
    """``nbytes`` bytes of ``path`` from ``offset`` (short reads are the caller's check)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(nbytes)


class Checksum:
    """Running FITS checksum of one HDU's data, fed block by block.

    FITS ``DATASUM`` is the 32-bit ones'-complement sum of the data as big-endian words
    (FITS standard, appendix J); ``CHECKSUM`` makes header + data sum to -0. Both are sums, so
    they can be accumulated over row blocks read one at a time and checked after the last.

    Parameters
    ----------
    hdu : astropy.io.fits HDU
        An HDU of a file opened by :func:`open_fits`.
    path : Path
        The file (for messages and for the header bytes).
    label : str
        HDU name used in messages.
    """

    def __init__(self, hdu: Any, path: Path, label: str) -> None:
        self.path, self.label = path, label
        hdr = hdu.header
        self.datasum: int | None = None
        raw = hdr.get("DATASUM")
        if raw is not None:
            try:
                self.datasum = int(str(raw).strip())
            except ValueError:
                log.debug("%s[%s]: unparsable DATASUM %r ignored", path, label, raw)
        self.has_checksum = "CHECKSUM" in hdr
        self._info = hdu.fileinfo()
        self.total = 0

    @property
    def wanted(self) -> bool:
        """Whether the HDU carries a DATASUM card to verify."""
        return self.datasum is not None and self._info is not None

    def add(self, total: int) -> None:
        """Add the word sum of one block of data bytes (each block a multiple of 4 bytes)."""
        self.total += total

    def verify(self) -> None:
        """Compare with DATASUM (error) and CHECKSUM (warning: headers are often edited).

        Raises
        ------
        InputError
            The data bytes differ from those the DATASUM card was computed for.
        """
        if not self.wanted:
            return
        assert self.datasum is not None
        if self.total % _ONES != self.datasum % _ONES:
            raise InputError(
                f"corrupt data: Datasum verification failed for HDU {self.label!r} (the data "
                "bytes differ from those the DATASUM card was computed for; if the file was "
                "edited on purpose, rewrite it with checksum=True)",
                path=self.path,
                hdu=self.label,
            )
        if self.has_checksum:
            loc, dat = int(self._info["hdrLoc"]), int(self._info["datLoc"])
            if (_bytes_sum(_read_at(self.path, loc, dat - loc)) + self.total) % _ONES:
                log.warning(
                    "%s: Checksum verification failed for HDU %r (header only; data checksums "
                    "match)",
                    self.path,
                    self.label,
                )


def _raw_layout(hdu: Any) -> tuple[np.dtype[Any], bool] | None:
    """(big-endian dtype, unsigned flip) when the data can be read raw; None -> astropy decodes.

    Raw reading covers plain images: no BSCALE (or 1), no BLANK, BZERO 0 or the unsigned-integer
    convention, no compression.
    """
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU) or hdu.fileinfo() is None:
        return None
    hdr = hdu.header
    bitpix = hdr.get("BITPIX")
    if not isinstance(bitpix, int) or bitpix not in _BITPIX or "BLANK" in hdr:
        return None
    if hdr.get("BSCALE", 1) != 1:
        return None
    bzero = hdr.get("BZERO", 0)
    if bzero == 0:
        return np.dtype(_BITPIX[bitpix]), False
    if _UNSIGNED_BZERO.get(bitpix) == bzero:
        return np.dtype(_BITPIX[bitpix]), True
    return None


def _read_raw(
    hdu: Any, path: Path, label: str, layout: tuple[np.dtype[Any], bool], rows: slice | None
) -> tuple[NDArray[Any], int | None]:
    """Read rows (first numpy axis) of a plain image into native byte order, in place.

    Returns the array and the word sum of the raw bytes read (None when the block does not
    start and end on 4-byte words, i.e. cannot be summed on its own).
    """
    dt, unsigned = layout
    shape = tuple(int(n) for n in hdu.shape)
    if not shape:
        raise InputError("image HDU has no data", path=path, hdu=label)
    n_rows = shape[0]
    start, stop, step = (rows or slice(None)).indices(n_rows)
    if step != 1:
        raise ValueError(f"row blocks must be contiguous, got step {step}")
    stop = max(stop, start)
    row_items = int(np.prod(shape[1:], dtype=np.int64))
    arr = np.empty((stop - start, *shape[1:]), dtype=dt)
    nbytes = arr.nbytes
    offset = int(hdu.fileinfo()["datLoc"]) + start * row_items * dt.itemsize
    with open(path, "rb") as fh:
        fh.seek(offset)
        got = fh.readinto(arr.reshape(-1).view(np.uint8).data)
    if got != nbytes:
        raise InputError(
            f"file is truncated: needed {nbytes} data bytes at offset {offset}, got {got}",
            path=path,
            hdu=label,
        )
    total: int | None = None
    aligned = (offset % 4 == 0) and (nbytes % 4 == 0)
    if aligned and dt.itemsize < 4:
        total = _word_sum(arr.reshape(-1).view(np.uint8).view(">u4"))
    if not dt.isnative:
        arr.byteswap(inplace=True)
        arr = arr.view(dt.newbyteorder("="))
    if aligned and dt.itemsize >= 4:
        # after the swap of 4- or 8-byte items the native 32-bit words hold the same values
        # (for 8-byte items in swapped pairs), so their sum is the big-endian word sum
        total = _word_sum(arr.reshape(-1).view(np.uint32))
    if unsigned:
        u = arr.view(dt.newbyteorder("=").str.replace("i", "u"))
        u ^= np.array(1 << (8 * dt.itemsize - 1), dtype=u.dtype)
        arr = u
    return arr, total


def read_image(
    hdul: fits.HDUList,
    key: str | int,
    path: Path,
    *,
    ndim: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    rows: slice | None = None,
    checksum: bool | Checksum = True,
) -> NDArray[Any]:
    """Return the data of an image HDU as a native-byte-order numpy array.

    Plain images (the DESI and BOSS layouts) are read straight from the file into one buffer
    and byte-swapped in place: one copy, the stored dtype kept (float32 stays float32); scaled
    or compressed images are decoded by astropy.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The file, opened by :func:`open_fits`.
    key : str or int
        The HDU (EXTNAME or index).
    path : Path
        The file path (for reading and for messages).
    ndim : int, optional
        Required number of dimensions.
    dtype : numpy dtype, optional
        Cast to this type (e.g. float64 for wavelengths); otherwise the stored type is kept.
    name : str, optional
        HDU name used in messages (defaults to ``key``).
    rows : slice, optional
        Contiguous block of rows (first numpy axis, e.g. spectra) to read; default all.
    checksum : bool or Checksum
        True: verify the HDU's DATASUM when the whole HDU is read (a partial read is not
        checked). A :class:`Checksum` accumulates the block's sum instead (the caller verifies
        after the last block). False: no check.

    Returns
    -------
    ndarray
        The data (or the row block).

    Raises
    ------
    InputError
        HDU missing, not an image, unreadable, of the wrong dimension or type, or with data
        that fail the DATASUM check.
    """
    label = name or str(key)
    hdu = _find(hdul, key, path)
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        raise InputError(f"expected an image HDU, got {type(hdu).__name__}", path=path, hdu=label)
    if ndim is not None and len(hdu.shape) != ndim and hdu.shape:
        raise InputError(
            f"expected a {ndim}-D array, got shape {tuple(hdu.shape)}", path=path, hdu=label
        )
    layout = _raw_layout(hdu)
    whole = rows is None or rows.indices(int(hdu.shape[0]) if hdu.shape else 0)[:2] == (
        0,
        int(hdu.shape[0]) if hdu.shape else 0,
    )
    total: int | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if layout is not None:
                arr, total = _read_raw(hdu, path, label, layout, rows)
            else:
                data = hdu.data
                if data is None:
                    raise InputError("image HDU has no data", path=path, hdu=label)
                arr = np.asarray(data) if rows is None else np.asarray(data)[rows]
                if not arr.dtype.isnative:
                    arr = arr.astype(arr.dtype.newbyteorder("="))
                else:
                    arr = np.array(arr, copy=True)
                if (
                    checksum is not False
                    and whole
                    and isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU)
                ):
                    info = hdu.fileinfo()
                    if info is not None and "DATASUM" in hdu.header:
                        total = _bytes_sum(
                            _read_at(path, int(info["datLoc"]), int(info["datSpan"]))
                        )
            if dtype is not None and arr.dtype != np.dtype(dtype):
                arr = arr.astype(dtype)
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
    if isinstance(checksum, Checksum):
        if total is None:
            checksum.datasum = None  # a block off the 4-byte words: the sum cannot be formed
        else:
            checksum.add(total)
    elif checksum and whole and total is not None:
        ck = Checksum(hdu, path, label)
        ck.add(total)
        ck.verify()
    return arr


def read_table(
    hdul: fits.HDUList,
    key: str | int,
    path: Path,
    *,
    required: tuple[str, ...] = (),
    name: str | None = None,
    checksum: bool = True,
) -> Table:
    """Return a binary-table HDU as an astropy Table (str text columns, no masking).

    ``TARGETID``, ``FIBER`` and ``FIBERID`` columns, when present, must be 1-D integers.

    Non-standard units are dropped silently (``unit_parse_strict='silent'``); NaNs and empty
    strings are kept as values (``mask_invalid=False``).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The file, opened by :func:`open_fits`.
    key : str or int
        The HDU (EXTNAME or index).
    path : Path
        The file path (for messages).
    required : tuple of str
        Columns that must be present (matched case-insensitively, renamed to upper case).
    name : str, optional
        HDU name used in messages (defaults to ``key``).
    checksum : bool
        Verify the HDU's DATASUM card when present (the table bytes are summed once more).

    Returns
    -------
    astropy.table.Table
        The table.

    Raises
    ------
    InputError
        HDU missing or not a table, unreadable, lacking one of ``required`` columns, or with
        data that fail the DATASUM check.
    """
    label = name or str(key)
    hdu = _find(hdul, key, path)
    if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        raise InputError(f"expected a table HDU, got {type(hdu).__name__}", path=path, hdu=label)
    info = hdu.fileinfo()
    if checksum and info is not None and "DATASUM" in hdu.header:
        ck = Checksum(hdu, path, label)
        ck.add(_bytes_sum(_read_at(path, int(info["datLoc"]), int(info["datSpan"]))))
        ck.verify()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = Table.read(hdu, format="fits", unit_parse_strict="silent", mask_invalid=False)
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
