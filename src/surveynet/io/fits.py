"""FITS helpers: atomic writes, provenance headers, catalogue tables.

Outputs are written to ``<name>.tmp-<pid>`` in the destination folder and renamed with
:func:`os.replace`, so a crash never leaves a partial file under the final name (redrock's
``write_zbest`` does the same). Existing files are refused unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

import surveynet
from surveynet.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.
    overwrite : bool
        Replace an existing file; otherwise :class:`FileExistsError` is raised up front.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite=True (--overwrite) to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def provenance_header(
    *,
    pipeline: str,
    model_name: str | None = None,
    model_hash: str | None = None,
    config_hash: str | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> fits.Header:
    """Primary-header cards recording how an output was made.

    Keys: ``SNVER`` (package version), ``PIPELINE``, ``MODEL``, ``MODELHSH``, ``CFGHASH``,
    ``SEED``, ``NUMPYVER``, ``ASTRPVER``, ``PYVER``, ``DATE``, plus ``extra`` (keys upper-cased,
    at most 8 characters).
    """
    import astropy

    hdr = fits.Header()
    hdr["SNVER"] = (surveynet.__version__, "surveynet version")
    hdr["PIPELINE"] = (pipeline, "surveynet pipeline")
    if model_name is not None:
        name = str(model_name)
        # A long value keeps the card within 80 characters by dropping its comment.
        hdr["MODEL"] = (name[:68], "model name or directory") if len(name) <= 40 else name[:68]
    if model_hash is not None:
        hdr["MODELHSH"] = (model_hash, "sha256 of model.safetensors (first 16 hex)")
    if config_hash is not None:
        hdr["CFGHASH"] = (config_hash, "sha256 of the resolved config (first 16 hex)")
    if seed is not None:
        hdr["SEED"] = (int(seed), "random seed")
    hdr["NUMPYVER"] = (np.__version__, "numpy version")
    hdr["ASTRPVER"] = (astropy.__version__, "astropy version")
    hdr["PYVER"] = (platform.python_version(), "python version")
    hdr["DATE"] = (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "UTC",
    )
    for k, v in (extra or {}).items():
        hdr[k.upper()[:8]] = v
    return hdr


def write_hdulist(
    path: str | os.PathLike[str],
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU],
    *,
    overwrite: bool = False,
) -> Path:
    """Write HDUs atomically; every extension must carry an EXTNAME."""
    for h in hdus[1:]:
        if not h.header.get("EXTNAME"):
            raise ValueError("every extension HDU needs an EXTNAME")
    # NEXTEND lets readers detect a file cut exactly at an HDU boundary.
    hdus[0].header["NEXTEND"] = (len(hdus) - 1, "number of extensions")
    with atomic_path(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp, checksum=True)
    return Path(path)


def table_columns(path: str | os.PathLike[str]) -> list[tuple[str, list[str]]]:
    """``(EXTNAME, column names)`` of every binary-table HDU of a FITS file, in file order.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file.

    Returns
    -------
    list of tuple
        One ``(name, columns)`` per binary table.

    Raises
    ------
    InputError
        The file cannot be read as FITS (names the file).
    """
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            return [
                (h.name, list(h.columns.names)) for h in hdul[1:] if isinstance(h, fits.BinTableHDU)
            ]
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read FITS file ({exc})", path=p) from exc


def table_hdu(table: Table, extname: str) -> fits.BinTableHDU:
    """A BinTableHDU of ``table`` with EXTNAME set and upper-case column names."""
    t = Table(table, copy=False)
    for name in list(t.colnames):
        if name != name.upper():
            t.rename_column(name, name.upper())
    hdu = fits.table_to_hdu(t)
    hdu.header["EXTNAME"] = extname
    return hdu


def write_catalog(
    path: str | os.PathLike[str],
    tables: dict[str, Table],
    header: fits.Header,
    *,
    overwrite: bool = False,
) -> Path:
    """Write one or more tables (EXTNAME -> Table) with a provenance primary header, atomically."""
    hdus: list[Any] = [fits.PrimaryHDU(header=header)]
    for name, t in tables.items():
        hdus.append(table_hdu(t, name))
    return write_hdulist(path, hdus, overwrite=overwrite)
