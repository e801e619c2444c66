"""QuasarNET preprocessing: ivar-weighted rebinning onto the model grid, then normalisation.

Algorithm (spec quasarnet.md §3; QuasarNP ``utils.regrid``/``utils.rebin``/``utils.renormalize``,
ngbusca/QuasarNET ``io.read_data``), reproduced on purpose so that the original weights give the
original answers:

1. Bin of a pixel: ``floor((log10 lam - log10 start) / step)`` (log grid) or
   ``floor(round((lam - start) / step, 10))`` (linear grid); pixels off the grid are dropped.
   ``grid.wave()[i]`` is the *lower edge* of bin ``i``.
2. Per camera, ``F_b = sum(flux * ivar)`` and ``W_b = sum(ivar)``; cameras are summed (which also
   combines overlaps); ``f_b = F_b / W_b`` where ``W_b > 0``, else 0. No interpolation.
3. ``mu = sum(W f) / sum(W)``, ``sigma = sqrt(sum(W (f - mu)^2) / sum(W))`` and
   ``x_b = (f_b - mu) / sigma`` for **every** bin, empty bins included (they hold ``-mu/sigma``,
   not 0: DESI bins 436-442 always).
4. Spectra with ``sum(W) = 0`` or ``sigma = 0`` are dropped and reported (flags
   :class:`QNFlag`); non-finite flux/ivar, negative ivar and masked pixels get ivar 0 and flux 0,
   so NaN never propagates.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.quasar.config import GridConfig

log = logging.getLogger(__name__)


class QNFlag(enum.IntFlag):
    """Per-spectrum preprocessing flags (bitmask; a ``QN_FLAG`` catalogue column).

    Bits 0-1 mean the spectrum was dropped (no network output: NaN in the catalogue); bit 2 is
    informational. Bits 3-15 are reserved.
    """

    #: Total inverse variance on the grid is 0 (empty or fully masked spectrum); dropped.
    NO_DATA = 1
    #: The ivar-weighted rms of the rebinned flux is 0 (constant flux); dropped.
    ZERO_RMS = 2
    #: Some pixels had non-finite flux or ivar (or negative ivar) and were masked.
    BAD_PIXELS = 4

    @classmethod
    def dropped_mask(cls) -> int:
        """Bits that mean "not fed to the network"."""
        return int(cls.NO_DATA | cls.ZERO_RMS)


@dataclass
class Rebinned:
    """Spectra rebinned onto the model grid (cameras summed).

    Attributes
    ----------
    flux : ndarray of shape (n_spec, n_bins)
        ivar-weighted mean flux per bin (0 where ``ivar`` is 0), float64.
    ivar : ndarray of shape (n_spec, n_bins)
        Sum of ivar per bin, float64.
    flags : ndarray of shape (n_spec,)
        :class:`QNFlag` bits found so far (``BAD_PIXELS``), int32.
    grid : GridConfig
        The grid.
    """

    flux: NDArray[np.float64]
    ivar: NDArray[np.float64]
    flags: NDArray[np.int32]
    grid: GridConfig


@dataclass
class Preprocessed:
    """Network input and bookkeeping.

    Attributes
    ----------
    x : ndarray of shape (n_kept, n_bins)
        Normalised flux of the kept spectra, float64 (the network input; it never sees ivar).
    kept : ndarray of shape (n_kept,)
        Row indices (into the input spectra) of the rows of ``x``, int64.
    dropped : ndarray of shape (n_dropped,)
        Row indices of dropped spectra, int64.
    flags : ndarray of shape (n_spec,)
        :class:`QNFlag` bitmask of every input spectrum, int32.
    ivar : ndarray of shape (n_kept, n_bins)
        Rebinned ivar of the kept spectra (for plots and training weights), float64.
    grid : GridConfig
        The grid.
    """

    x: NDArray[np.float64]
    kept: NDArray[np.int64]
    dropped: NDArray[np.int64]
    flags: NDArray[np.int32]
    ivar: NDArray[np.float64]
    grid: GridConfig

    @property
    def n_spec(self) -> int:
        """Number of input spectra (kept + dropped)."""
        return int(self.flags.size)


def regrid(wave: NDArray[Any], grid: GridConfig | NDArray[Any]) -> NDArray[np.int64]:
    """Bin index of each pixel wavelength on a grid of lower bin edges.

    Parameters
    ----------
    wave : ndarray of shape (n_pix,)
        Pixel wavelengths, Angstrom.
    grid : GridConfig or ndarray of shape (n_bins,)
        The target grid, or its lower bin edges (constant linear or log10 spacing).

    Returns
    -------
    ndarray of shape (n_pix,), int64
        Bin of each pixel; values < 0 or >= n_bins mean off the grid.

    Raises
    ------
    ValueError
        ``grid`` is an array with neither constant linear nor constant log10 spacing.

    Examples
    --------
    >>> g = GridConfig.log()
    >>> bool((regrid(g.wave(), g) == np.arange(443)).all())
    True
    >>> regrid(np.array([3600.0, 3608.0, 3609.0]), g).tolist()
    [0, 0, 1]
    """
    g = grid if isinstance(grid, GridConfig) else GridConfig.from_wave(np.asarray(grid))
    return g.bin_index(np.asarray(wave, dtype=np.float64))


def _weighted_arm(
    flux: NDArray[Any], ivar: NDArray[Any], mask: NDArray[Any] | None
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.bool_]]:
    """Return ``flux * ivar`` and ``ivar`` with bad pixels at 0, and "had bad pixels" per row.

    Bad pixels: non-finite flux or ivar, ivar <= 0, ``mask != 0``. The product is formed in the
    input precision (at least float32, native byte order) and later summed in float64, as
    QuasarNP does, which reproduces its ``coadd_rebinned.fits`` exactly for float32 DESI files.
    A few whole-batch passes over the pixels (product, bad-pixel tests, zeroing); no loop.
    """
    f_in, iv_in = np.asarray(flux), np.asarray(ivar)
    dtype = np.result_type(f_in.dtype, iv_in.dtype, np.float32)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    dtype = dtype.newbyteorder("=")
    if f_in.ndim != 2 or f_in.shape != iv_in.shape:
        raise ValueError(
            f"flux and ivar must be 2-D (n_spec, n_pix) of one shape; got {f_in.shape}, "
            f"{iv_in.shape}"
        )
    iv = np.array(iv_in, dtype=dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        fw = np.multiply(f_in, iv, dtype=dtype)
        nonfinite = ~np.isfinite(f_in)
        nonfinite |= ~np.isfinite(iv)
        nonfinite |= iv < 0
    bad = nonfinite | (iv <= 0)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != fw.shape:
            raise ValueError(f"mask has shape {m.shape}, flux {fw.shape}")
        bad |= m != 0
    np.copyto(fw, 0, where=bad)
    np.copyto(iv, 0, where=bad)
    return fw, iv, nonfinite.any(axis=1)


def rebin_arm(
    wave: NDArray[Any],
    flux: NDArray[Any],
    ivar: NDArray[Any],
    grid: GridConfig,
    *,
    mask: NDArray[Any] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sum ``flux * ivar`` and ``ivar`` per grid bin for one camera.

    Parameters
    ----------
    wave : ndarray of shape (n_pix,)
        Pixel wavelengths, Angstrom, increasing.
    flux, ivar : ndarray of shape (n_spec, n_pix)
        Flux and inverse variance. Non-finite values, negative ivar and ``mask != 0`` count as
        ivar 0 (and flux 0).
    grid : GridConfig
        Model grid.
    mask : ndarray of shape (n_spec, n_pix), optional
        Pixel mask (non-zero = bad).

    Returns
    -------
    flux_ivar, ivar_sum : ndarray of shape (n_spec, n_bins), float64
        ``sum(flux * ivar)`` and ``sum(ivar)`` per bin (the arrays of QuasarNP's
        ``coadd_rebinned.fits``).
    """
    fw, iv, _ = _weighted_arm(flux, ivar, mask)
    n_spec = fw.shape[0]
    out_fw = np.zeros((n_spec, grid.n_bins))
    out_w = np.zeros((n_spec, grid.n_bins))
    _rebin_add(np.asarray(wave, dtype=np.float64), fw, iv, grid, out_fw, out_w)
    return out_fw, out_w


def _rebin_add(
    wave: NDArray[np.float64],
    fw: NDArray[Any],
    iv: NDArray[Any],
    grid: GridConfig,
    out_fw: NDArray[np.float64],
    out_w: NDArray[np.float64],
) -> None:
    """Add the per-bin sums of ``fw`` and ``iv`` (n_spec, n_pix) into ``out_fw``, ``out_w``.

    One ``reduceat`` per array over the whole batch (pixels grouped by bin; each segment summed
    in float64, in pixel order).
    """
    idx = grid.bin_index(wave)
    keep = (idx >= 0) & (idx < grid.n_bins)
    if not keep.any():
        return
    if not keep.all():
        idx, fw, iv = idx[keep], fw[:, keep], iv[:, keep]
    if np.any(np.diff(idx) < 0):  # unsorted wavelengths: sort pixels (stable)
        order = np.argsort(idx, kind="stable")
        idx, fw, iv = idx[order], fw[:, order], iv[:, order]
    starts = np.flatnonzero(np.r_[True, np.diff(idx) != 0])
    bins = idx[starts]
    out_fw[:, bins] += np.add.reduceat(fw, starts, axis=1, dtype=np.float64)
    out_w[:, bins] += np.add.reduceat(iv, starts, axis=1, dtype=np.float64)


def rebin(
    waves: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    fluxes: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    ivars: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    grid: GridConfig,
    *,
    masks: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any] | None] | None = None,
) -> Rebinned:
    """Rebin several cameras onto the grid and combine them (ivar-weighted mean per bin).

    Parameters
    ----------
    waves, fluxes, ivars : dict of band to ndarray, or sequences in the same order
        Per camera: wavelengths (n_pix,), flux and ivar (n_spec, n_pix).
    grid : GridConfig
        Model grid.
    masks : same structure, optional
        Per camera pixel masks (non-zero = bad); None entries mean no mask.

    Returns
    -------
    Rebinned

    Raises
    ------
    ValueError
        Mismatched numbers of cameras or spectra, or mis-shaped arrays.
    """
    keys: list[Any]
    if isinstance(waves, Mapping):
        keys = list(waves)
        wl = [waves[k] for k in keys]
        fl = [fluxes[k] for k in keys]  # type: ignore[call-overload]
        il = [ivars[k] for k in keys]  # type: ignore[call-overload]
        ml = [None if masks is None else masks.get(k) for k in keys]  # type: ignore[union-attr]
    else:
        wl, fl, il = list(waves), list(fluxes), list(ivars)  # type: ignore[arg-type]
        ml = [None] * len(wl) if masks is None else list(masks)  # type: ignore[arg-type]
        keys = list(range(len(wl)))
    if not (len(wl) == len(fl) == len(il) == len(ml)) or not wl:
        raise ValueError(
            "waves, fluxes, ivars (and masks) must list the same, non-zero number of cameras"
        )
    n_spec = np.shape(fl[0])[0] if np.ndim(fl[0]) == 2 else -1
    fw = np.zeros((max(n_spec, 0), grid.n_bins))
    w = np.zeros_like(fw)
    badpix = np.zeros(max(n_spec, 0), dtype=bool)
    for k, wa, f, iv, m in zip(keys, wl, fl, il, ml, strict=True):  # cameras, not spectra
        wa = np.asarray(wa, dtype=np.float64)
        if np.ndim(f) != 2 or np.shape(f) != (n_spec, wa.size) or np.shape(iv) != np.shape(f):
            raise ValueError(
                f"camera {k!r}: flux/ivar must have shape (n_spec={n_spec}, n_pix={wa.size}); "
                f"got {np.shape(f)} and {np.shape(iv)}"
            )
        fwc, ivc, bp = _weighted_arm(f, iv, m)
        _rebin_add(wa, fwc, ivc, grid, fw, w)
        del fwc, ivc
        badpix |= bp
    flux = np.zeros_like(fw)
    np.divide(fw, w, out=flux, where=w > 0)
    flags = np.where(badpix, int(QNFlag.BAD_PIXELS), 0).astype(np.int32)
    return Rebinned(flux=flux, ivar=w, flags=flags, grid=grid)


def normalize(
    flux: NDArray[Any], ivar: NDArray[Any], *, rms_rtol: float = 1e-6
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int32]]:
    """Subtract the ivar-weighted mean and divide by the ivar-weighted rms, per spectrum.

    Parameters
    ----------
    flux : ndarray of shape (n_spec, n_bins)
        Rebinned flux (ivar-weighted mean per bin, any value where ivar is 0).
    ivar : ndarray of shape (n_spec, n_bins)
        Rebinned ivar (non-negative).
    rms_rtol : float
        A spectrum counts as zero-rms when ``sigma <= rms_rtol * |mu|`` (or ``sigma == 0``): a
        constant float32 spectrum has a rounding-noise sigma of ~1e-7 |mu|, and dividing by it
        would feed the network amplified noise.

    Returns
    -------
    x : ndarray of shape (n_kept, n_bins), float64
        ``(flux - mu) / sigma`` on every bin, empty bins included (QuasarNET behaviour).
    kept : ndarray of shape (n_kept,), int64
        Indices of the spectra kept.
    flags : ndarray of shape (n_spec,), int32
        ``QNFlag.NO_DATA`` (sum of ivar 0) or ``QNFlag.ZERO_RMS`` (sigma 0, see ``rms_rtol``)
        for dropped spectra.

    Examples
    --------
    >>> x, kept, flags = normalize(np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 2.0]]), np.ones((2, 3)))
    >>> kept.tolist(), flags.tolist()
    ([0], [0, 2])
    >>> np.round(x, 4).tolist()
    [[-1.2247, 0.0, 1.2247]]
    """
    f = np.asarray(flux, dtype=np.float64)
    w = np.asarray(ivar, dtype=np.float64)
    if f.ndim != 2 or f.shape != w.shape:
        raise ValueError(
            f"flux and ivar must be 2-D arrays of the same shape; got {f.shape}, {w.shape}"
        )
    f = np.where(w > 0, f, 0.0)  # values in empty bins carry no weight (and may be NaN)
    wsum = w.sum(axis=1)
    flags = np.zeros(f.shape[0], dtype=np.int32)
    nodata = ~(wsum > 0) | ~np.isfinite(wsum)
    flags[nodata] |= int(QNFlag.NO_DATA)
    safe = np.where(nodata, 1.0, wsum)
    mu = (w * f).sum(axis=1) / safe
    var = (w * (f - mu[:, None]) ** 2).sum(axis=1) / safe
    sigma = np.sqrt(var)
    zero = ~nodata & ~(sigma > rms_rtol * np.abs(mu))
    flags[zero] |= int(QNFlag.ZERO_RMS)
    kept = np.flatnonzero(flags == 0).astype(np.int64)
    x = (f[kept] - mu[kept, None]) / sigma[kept, None]
    return x, kept, flags


def preprocess_arrays(
    waves: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    fluxes: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    ivars: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]],
    grid: GridConfig,
    *,
    masks: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any] | None] | None = None,
) -> Preprocessed:
    """Rebin and normalise arrays of one or more cameras (see :func:`rebin`, :func:`normalize`).

    Returns
    -------
    Preprocessed
        ``x`` holds only the kept spectra; ``kept``/``dropped``/``flags`` index the input rows.
    """
    rb = rebin(waves, fluxes, ivars, grid, masks=masks)
    x, kept, nflags = normalize(rb.flux, rb.ivar)
    flags = (rb.flags | nflags).astype(np.int32)
    dropped = np.flatnonzero(nflags != 0).astype(np.int64)
    if dropped.size:
        log.info(
            "%d of %d spectra dropped (no data or zero rms): rows %s",
            dropped.size,
            flags.size,
            dropped[:20].tolist(),
        )
    return Preprocessed(x=x, kept=kept, dropped=dropped, flags=flags, ivar=rb.ivar[kept], grid=grid)


def preprocess(spectra: Any, grid: GridConfig) -> Preprocessed:
    """Preprocess a :class:`surveynet.io.spectra.Spectra` (all cameras) for the network.

    Parameters
    ----------
    spectra : surveynet.io.spectra.Spectra
        Spectra on any cameras (DESI b/r/z, BOSS b/r, or one band). Masked pixels
        (``mask != 0``), non-finite values and negative ivar are given zero weight.
    grid : GridConfig
        Model grid (from the model metadata: :func:`surveynet.quasar.config.grid_from_metadata`).

    Returns
    -------
    Preprocessed

    Raises
    ------
    InputError
        The spectra have mis-shaped arrays (names the source file and band).
    """
    bands = tuple(spectra.bands)
    masks = None if spectra.mask is None else {b: spectra.mask.get(b) for b in bands}
    try:
        return preprocess_arrays(
            {b: spectra.wave[b] for b in bands},
            {b: spectra.flux[b] for b in bands},
            {b: spectra.ivar[b] for b in bands},
            grid,
            masks=masks,
        )
    except ValueError as exc:
        raise InputError(str(exc), path=spectra.source) from exc
