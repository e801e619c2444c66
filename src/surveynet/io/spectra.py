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
from pathlib import Path
from typing import Any

from surveynet.errors import InputError
from surveynet.io import boss, desi
from surveynet.io.container import Spectra

__all__ = ["Spectra", "read_spectra"]


def read_spectra(path: str | os.PathLike[str], **kwargs: Any) -> Spectra:
    """Read DESI coadd/spectra, DESI cframe or BOSS spPlate files, detected from their HDUs.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        Passed to the specific reader: ``targetids=``, ``bands=`` for DESI coadd/spectra files
        (:func:`surveynet.io.desi.read_desi_spectra`), ``fibers=`` for cframes
        (:func:`surveynet.io.desi.read_cframe`) and spPlates
        (:func:`surveynet.io.boss.read_spplate`, which also takes ``mask_bits=``).

    Returns
    -------
    Spectra

    Raises
    ------
    InputError
        Unreadable or truncated file, unknown layout, missing HDU, bad shapes.
    """
    p = Path(path)
    kind = desi.sniff(p)
    if kind == "desi":
        return desi.read_desi_spectra(p, **kwargs)
    if kind == "cframe":
        return desi.read_cframe(p, **kwargs)
    if kind == "spplate":
        return boss.read_spplate(p, **kwargs)
    raise InputError("not a DESI coadd/spectra, DESI cframe or BOSS spPlate file", path=p)
