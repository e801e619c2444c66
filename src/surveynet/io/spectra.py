"""Spectra files in, :class:`Spectra` out: the front door of the spectra readers.

:func:`read_spectra` sniffs the file and dispatches to the DESI or BOSS reader. The container
:class:`Spectra` is defined in :mod:`surveynet.io.container` (which both readers import) and
re-exported here: cameras on their own wavelength grids with flux, inverse variance, mask,
optional resolution and a FIBERMAP with ``TARGETID`` (units and the mask-and-continue rule there).

Readers for DESI coadd/spectra, cframe, BOSS spPlate and truth/zbest files live in
:mod:`surveynet.io.desi`, :mod:`surveynet.io.boss` and :mod:`surveynet.io.truth`;
:func:`read_spectra` dispatches on the file content (:func:`surveynet.io.desi.sniff`).

Bad input: structural problems (missing/truncated file, missing HDU or TARGETID, mis-shaped
arrays, non-finite or non-increasing wavelengths) raise :class:`~surveynet.errors.InputError`
naming the file and HDU/column. Bad pixel values (NaN/inf flux or ivar, ivar <= 0) are
mask-and-continue: readers return them unchanged and :meth:`Spectra.clean` zeroes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from surveynet.errors import InputError
from surveynet.io import boss, desi, sdss
from surveynet.io._fitsread import open_fits
from surveynet.io.container import Spectra

__all__ = ["Spectra", "iter_spectra", "read_spectra"]


def read_spectra(
    path: str | os.PathLike[str],
    *,
    resolution: bool = True,
    checksum: bool = True,
    **kwargs: Any,
) -> Spectra:
    """Read DESI coadd/spectra, DESI cframe or BOSS spPlate files, detected from their HDUs.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    resolution : bool
        Read resolution matrices (DESI files; most of their bytes). Steps that do not use them
        pass False.
    checksum : bool
        Verify the DATASUM of every HDU read (cheap: on the bytes being read).
    **kwargs
        Passed to the specific reader: ``targetids=``, ``bands=``, ``mask=``, ``rows=`` for
        DESI coadd/spectra files (:func:`surveynet.io.desi.read_desi_spectra`), ``fibers=``,
        ``mask=`` for cframes (:func:`surveynet.io.desi.read_cframe`) and ``fibers=``,
        ``mask_bits=`` for spPlates (:func:`surveynet.io.boss.read_spplate`).

    Returns
    -------
    Spectra
        The spectra, stored dtypes kept (float32 stays float32).

    Raises
    ------
    InputError
        Unreadable or truncated file, unknown layout, missing HDU, bad shapes, corrupt data.
    """
    p = Path(path)
    with open_fits(p) as hdul:  # headers parsed once for sniffing and reading
        kind: str | None = desi.layout_of(hdul)
        if kind is None and sdss.is_speclite(hdul):
            kind = "speclite"
        if kind == "desi":
            return desi.read_desi_open(hdul, p, resolution=resolution, checksum=checksum, **kwargs)
    if kind == "cframe":
        return desi.read_cframe(p, resolution=resolution, checksum=checksum, **kwargs)
    if kind == "spplate":
        return boss.read_spplate(p, checksum=checksum, **kwargs)
    if kind == "speclite":
        return sdss.read_speclite(p, checksum=checksum, **kwargs)
    raise InputError(
        "not a DESI coadd/spectra, DESI cframe, BOSS spPlate or SDSS spec-lite file", path=p
    )


def iter_spectra(
    path: str | os.PathLike[str],
    block_rows: int,
    *,
    resolution: bool = False,
    checksum: bool = True,
) -> Iterator[Spectra]:
    """Stream a spectra file in blocks of at most ``block_rows`` spectra (for prediction).

    DESI coadd/spectra files are read block by block (:func:`surveynet.io.desi.iter_desi_spectra`:
    memory bounded by the block, DATASUMs checked after the last block); cframes and spPlates
    (500-1000 spectra each) are read whole and cut into blocks.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    block_rows : int
        Spectra per block (>= 1).
    resolution : bool
        Read resolution matrices (default False: prediction does not use them).
    checksum : bool
        Verify the DATASUM of every HDU read.

    Yields
    ------
    Spectra
        Consecutive blocks in file order.

    Raises
    ------
    InputError
        As :func:`read_spectra`.
    """
    p = Path(path)
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    with open_fits(p) as hdul:
        if desi.layout_of(hdul) == "desi":
            yield from desi.iter_desi_open(
                hdul, p, block_rows, resolution=resolution, checksum=checksum
            )
            return
    spec = read_spectra(p, resolution=resolution, checksum=checksum)
    if spec.n_spec <= block_rows:
        yield spec
        return
    for start in range(0, spec.n_spec, block_rows):
        yield spec.select(slice(start, start + block_rows))
