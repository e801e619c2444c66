"""The in-memory spectra container shared by every reader, writer and pipeline.

A :class:`Spectra` holds one or more cameras (``b``, ``r``, ``z`` for DESI; ``b``, ``r`` for
BOSS; or a single ``brz``/``all`` band) on their own wavelength grids, with flux, inverse
variance, an integer pixel mask, an optional resolution matrix and a FIBERMAP table with
``TARGETID``. Units: wavelength in Angstrom (vacuum), flux in 1e-17 erg/s/cm^2/A, ivar in its
inverse square. Masked pixels (``mask != 0``) must be treated as ``ivar == 0`` by consumers;
:meth:`Spectra.clean` makes that explicit.

The readers (:mod:`surveynet.io.desi`, :mod:`surveynet.io.boss`) build it; the front door
:func:`surveynet.io.spectra.read_spectra` dispatches between them. This module imports no reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import InputError

__all__ = ["Spectra"]


@dataclass
class Spectra:
    """Spectra of ``n_spec`` targets on one or more cameras.

    Attributes
    ----------
    bands : tuple of str
        Camera names in wavelength order, e.g. ``("b", "r", "z")``.
    wave : dict of str to ndarray of shape (n_pix_band,)
        Wavelength grid per band, Angstrom, strictly increasing.
    flux : dict of str to ndarray of shape (n_spec, n_pix_band)
        Flux density, 1e-17 erg/s/cm^2/A (float32 or float64).
    ivar : dict of str to ndarray of shape (n_spec, n_pix_band)
        Inverse variance of ``flux``; 0 marks unusable pixels.
    mask : dict of str to ndarray of shape (n_spec, n_pix_band), optional
        Integer pixel mask (non-zero = bad), or None.
    resolution : dict of str to ndarray of shape (n_spec, n_diag, n_pix_band), optional
        DESI-style banded resolution matrix, or None.
    fibermap : astropy.table.Table
        One row per spectrum; must contain ``TARGETID``.
    meta : dict
        Header keywords worth keeping (e.g. ``SPGRP``, ``TILEID``, ``PLATE``).
    source : str or None
        File the spectra were read from (used in error messages).
    """

    bands: tuple[str, ...]
    wave: dict[str, NDArray[np.float64]]
    flux: dict[str, NDArray[Any]]
    ivar: dict[str, NDArray[Any]]
    fibermap: Table
    mask: dict[str, NDArray[Any]] | None = None
    resolution: dict[str, NDArray[Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        """Validate on construction (see :meth:`validate`)."""
        self.validate()

    @property
    def n_spec(self) -> int:
        """Number of spectra.

        Returns
        -------
        int
        """
        return len(self.fibermap)

    @property
    def targetid(self) -> NDArray[np.int64]:
        """``TARGETID`` column as int64.

        Returns
        -------
        ndarray of int64, shape (n_spec,)
        """
        return np.asarray(self.fibermap["TARGETID"], dtype=np.int64)

    def validate(self) -> None:
        """Check shapes, monotonic wavelengths and the presence of TARGETID.

        Raises
        ------
        InputError
            Naming the file (``source``), band and array at fault.
        """
        src = self.source
        if "TARGETID" not in self.fibermap.colnames:
            raise InputError(
                "FIBERMAP has no TARGETID column", path=src, hdu="FIBERMAP", column="TARGETID"
            )
        n = len(self.fibermap)
        for b in self.bands:
            up = b.upper()
            for name, d in (("WAVELENGTH", self.wave), ("FLUX", self.flux), ("IVAR", self.ivar)):
                if b not in d:
                    raise InputError(f"band {b!r} has no {name}", path=src, hdu=f"{up}_{name}")
            w = np.asarray(self.wave[b])
            if w.ndim != 1 or w.size < 2:
                raise InputError(
                    f"wavelength must be 1-D with >= 2 pixels, got shape {w.shape}",
                    path=src,
                    hdu=f"{up}_WAVELENGTH",
                )
            if not np.all(np.isfinite(w)):
                raise InputError("wavelength has NaN/inf", path=src, hdu=f"{up}_WAVELENGTH")
            if not np.all(np.diff(w) > 0):
                raise InputError(
                    "wavelength is not strictly increasing", path=src, hdu=f"{up}_WAVELENGTH"
                )
            shape = (n, w.size)
            for name, d in (("FLUX", self.flux), ("IVAR", self.ivar)):
                if np.shape(d[b]) != shape:
                    raise InputError(
                        f"expected shape {shape} (n_spec, n_wave), got {np.shape(d[b])}",
                        path=src,
                        hdu=f"{up}_{name}",
                    )
            if self.mask is not None and b in self.mask and np.shape(self.mask[b]) != shape:
                raise InputError(
                    f"expected shape {shape}, got {np.shape(self.mask[b])}",
                    path=src,
                    hdu=f"{up}_MASK",
                )
            if self.resolution is not None and b in self.resolution:
                r = np.shape(self.resolution[b])
                if len(r) != 3 or r[0] != n or r[2] != w.size:
                    raise InputError(
                        f"expected shape ({n}, n_diag, {w.size}), got {r}",
                        path=src,
                        hdu=f"{up}_RESOLUTION",
                    )

    def clean(self) -> Spectra:
        """Return a copy where bad pixels get ivar 0 and flux 0.

        Bad pixels: non-finite flux or ivar, ivar <= 0, or a non-zero mask.

        This is the documented mask-and-continue rule for bad pixels: they carry no weight
        downstream, and their flux is set to 0 so that no NaN can propagate.

        Returns
        -------
        Spectra
            Flux and ivar as float64 copies; the other members shared.
        """
        flux, ivar = {}, {}
        for b in self.bands:
            f = np.array(self.flux[b], dtype=np.float64)
            iv = np.array(self.ivar[b], dtype=np.float64)
            bad = ~np.isfinite(f) | ~np.isfinite(iv) | (iv <= 0)
            if self.mask is not None and b in self.mask:
                bad |= np.asarray(self.mask[b]) != 0
            f[bad] = 0.0
            iv[bad] = 0.0
            flux[b], ivar[b] = f, iv
        return Spectra(
            bands=self.bands,
            wave=dict(self.wave),
            flux=flux,
            ivar=ivar,
            fibermap=self.fibermap,
            mask=None if self.mask is None else dict(self.mask),
            resolution=self.resolution,
            meta=dict(self.meta),
            source=self.source,
        )

    def select(self, index: NDArray[Any] | slice | list[int]) -> Spectra:
        """Subset of spectra by row index, boolean mask or slice.

        Parameters
        ----------
        index : ndarray, slice or list of int
            Rows to keep.

        Returns
        -------
        Spectra
        """

        def sub(d: dict[str, NDArray[Any]] | None) -> dict[str, NDArray[Any]] | None:
            """Rows ``index`` of every band of ``d``."""
            return None if d is None else {b: np.asarray(v)[index] for b, v in d.items()}

        return Spectra(
            bands=self.bands,
            wave=dict(self.wave),
            flux=sub(self.flux) or {},
            ivar=sub(self.ivar) or {},
            fibermap=self.fibermap[index],
            mask=sub(self.mask),
            resolution=sub(self.resolution),
            meta=dict(self.meta),
            source=self.source,
        )
