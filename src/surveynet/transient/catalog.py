"""Candidate and score tables of the transient pipeline: columns, flags, FITS I/O.

Candidate files ``<stem>_cands.fits`` (EXTNAME ``CANDIDATES``) hold one row per detection on the
difference image; the primary header names the science, reference, difference and truth files
(``SCIFILE``, ``REFFILE``, ``DIFFFILE``, ``TRUTHFIL``, ``POSFILE``) and the pixel convention
(``PIXCONV = '0-based'``: x = column, y = row of the numpy array, as everywhere in the pipeline).

Columns (units in TUNIT): ``CANDID`` (int64, unique within the file), ``X``, ``Y`` (px),
``RA``, ``DEC`` (deg; NaN without WCS), ``FLUX``, ``FLUXERR`` (ADU, circular aperture of radius
``1.5 FWHM`` on the difference), ``SNR`` (= FLUX / FLUXERR, the S/N used in every figure),
``MAG``, ``MAGERR`` (``MAGZP`` of the science frame; 99 when FLUX <= 0 or no zero point),
``PEAK``, ``PEAK_SNR``, ``A``, ``B``, ``THETA``, ``FWHM`` (px), ``ELONG`` (A / B), ``NPIX``,
``FWHMPSF`` (science PSF FWHM), ``FWHM_RATIO``, ``SEP_FLAG`` (sep's flags), ``FLAGS``
(:class:`CandidateFlag` bits) and ``EDGE`` (bool).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from surveynet.errors import InputError

__all__ = ["CANDIDATE_COLUMNS", "CandidateFlag", "read_candidates"]


class CandidateFlag(enum.IntFlag):
    """Quality bits of a candidate (``FLAGS`` column); bits 5-15 reserved.

    Attributes
    ----------
    EDGE
        Closer to the frame edge than ``detect.edge`` (its cutout is padded).
    NEAR_MASK
        Masked pixels (NaN, outside the reference) within 3 px.
    SATURATED
        Saturated pixels (grown by 3 px) within 3 px.
    BLENDED
        sep flagged it merged or truncated.
    APER_TRUNC
        Its photometric aperture is truncated by the frame or the mask.
    """

    EDGE = 1
    NEAR_MASK = 2
    SATURATED = 4
    BLENDED = 8
    APER_TRUNC = 16


CANDIDATE_COLUMNS = {
    "CANDID": ("i8", ""),
    "X": ("f8", "pix"),
    "Y": ("f8", "pix"),
    "RA": ("f8", "deg"),
    "DEC": ("f8", "deg"),
    "FLUX": ("f8", "adu"),
    "FLUXERR": ("f8", "adu"),
    "SNR": ("f8", ""),
    "MAG": ("f8", "mag"),
    "MAGERR": ("f8", "mag"),
    "PEAK": ("f8", "adu"),
    "PEAK_SNR": ("f8", ""),
    "A": ("f8", "pix"),
    "B": ("f8", "pix"),
    "THETA": ("f8", "rad"),
    "FWHM": ("f8", "pix"),
    "ELONG": ("f8", ""),
    "NPIX": ("i4", "pix"),
    "FWHMPSF": ("f8", "pix"),
    "FWHM_RATIO": ("f8", ""),
    "SEP_FLAG": ("i4", ""),
    "FLAGS": ("i4", ""),
    "EDGE": ("bool", ""),
}


def empty_candidates() -> Table:
    """A candidate table with no rows and every column.

    Returns
    -------
    astropy.table.Table
    """
    t = Table(names=list(CANDIDATE_COLUMNS), dtype=[v[0] for v in CANDIDATE_COLUMNS.values()])
    for name, (_, unit) in CANDIDATE_COLUMNS.items():
        if unit:
            t[name].unit = unit
    return t


def read_candidates(path: str | os.PathLike[str]) -> tuple[Table, fits.Header]:
    """Read a candidate file.

    Parameters
    ----------
    path : path
        ``<stem>_cands.fits``.

    Returns
    -------
    table : astropy.table.Table
        The ``CANDIDATES`` rows (may be empty).
    header : astropy.io.fits.Header
        Its primary header (file names, FWHMs, zero point).

    Raises
    ------
    InputError
        Missing file, HDU or column.
    """
    p = Path(path)
    try:
        with fits.open(p) as hdul:
            if "CANDIDATES" not in hdul:
                raise InputError("no CANDIDATES HDU", path=p)
            t = Table.read(hdul["CANDIDATES"])
            hdr = hdul[0].header.copy()
    except OSError as exc:
        raise InputError(f"unreadable candidate file ({exc})", path=p) from exc
    for c in ("CANDID", "X", "Y", "SNR", "FLAGS"):
        if c not in t.colnames:
            raise InputError("missing column", path=p, hdu="CANDIDATES", column=c)
    return t, hdr
