"""The simulator's master wavelength grid, cached on first use, and line profiles drawn on it.

Every source model (quasars, stars, galaxies) is built on the 0.8 A master grid of
:func:`surveynet.sim.instrument.master_wave` (3600-9824 A, 7781 pixels) before the instrument
slices it into the B/R/Z arms. Nothing is computed at import: :func:`master_grid` builds the
arrays once, on its first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from surveynet.sim import instrument
from surveynet.sim.instrument import DWAVE, WAVE_MIN

__all__ = ["MasterGrid", "add_gaussians", "add_rest_lines", "master_grid", "pixel_position"]


@dataclass(frozen=True)
class MasterGrid:
    """The master grid in the precisions the simulator uses.

    Attributes
    ----------
    wave : ndarray of shape (7781,), float64
        Wavelengths (A).
    wave32 : ndarray of shape (7781,), float32
        The same, float32.
    lnwave32 : ndarray of shape (7781,), float32
        ``log(wave)`` computed in float64, stored as float32.
    """

    wave: NDArray[np.float64]
    wave32: NDArray[np.float32]
    lnwave32: NDArray[np.float32]


@lru_cache(maxsize=1)
def master_grid() -> MasterGrid:
    """The cached :class:`MasterGrid` (arrays read-only).

    Returns
    -------
    MasterGrid

    Examples
    --------
    >>> g = master_grid()
    >>> g.wave.size, g.wave32.dtype.name, float(g.wave[0])
    (7781, 'float32', 3600.0)
    """
    wave = instrument.master_wave()
    lnwave = np.log(wave).astype(np.float32)
    wave32 = wave.astype(np.float32)
    for a in (wave, lnwave, wave32):
        a.setflags(write=False)
    return MasterGrid(wave=wave, wave32=wave32, lnwave32=lnwave)


def pixel_position(wave_obs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fractional master-grid pixel of observed wavelengths.

    Parameters
    ----------
    wave_obs : ndarray
        Observed wavelengths (A).

    Returns
    -------
    ndarray
        ``(wave_obs - 3600) / 0.8``, of the shape of ``wave_obs``.

    Examples
    --------
    >>> pixel_position(np.array([3600.0, 3604.0])).tolist()
    [0.0, 5.0]
    """
    return (wave_obs - WAVE_MIN) / DWAVE


def add_gaussians(
    prof: NDArray[np.float32],
    rows: NDArray[np.int64],
    center_px: NDArray[np.float64],
    sigma_px: NDArray[np.float64],
    amp: NDArray[np.float64],
    *,
    n_sigma: float = 4.0,
) -> None:
    """Add Gaussians ``amp exp(-(i - c)^2 / 2 s^2)`` to rows of ``prof``, in place.

    Each Gaussian is evaluated over +-``n_sigma`` sigma only; Gaussians are processed in chunks of
    similar width so that the windows stay tight.

    Parameters
    ----------
    prof : ndarray of shape (n, n_pix + 1), float32
        Profiles; the last column is a spare that absorbs the out-of-range taps.
    rows : ndarray of int, shape (m,)
        Row of ``prof`` of each Gaussian.
    center_px, sigma_px : ndarray of shape (m,)
        Centre and width in pixels.
    amp : ndarray of shape (m,)
        Peak amplitude (Gaussians with ``amp == 0`` are skipped).
    n_sigma : float
        Half-width of the evaluation window in units of sigma.

    Examples
    --------
    >>> p = np.zeros((1, 11), np.float32)
    >>> add_gaussians(p, np.array([0]), np.array([5.0]), np.array([1.0]), np.array([2.0]))
    >>> float(p[0, 5]), round(float(p[0, 4]), 4)
    (2.0, 1.2131)
    """
    n_pix = prof.shape[1] - 1
    ok = (
        (amp != 0)
        & (center_px + n_sigma * sigma_px > 0)
        & (center_px - n_sigma * sigma_px < n_pix - 1)
    )
    if not np.any(ok):
        return
    rows, c, s, a = rows[ok], center_px[ok], sigma_px[ok], amp[ok]
    ncol = prof.shape[1]
    flat = prof.reshape(-1)
    order = np.argsort(s, kind="stable")
    for start in range(0, order.size, 64):  # chunks of similar width keep the windows tight
        sel = order[start : start + 64]
        w = int(np.ceil(n_sigma * s[sel].max()))
        offs = np.arange(-w, w + 1)
        idx = np.rint(c[sel]).astype(np.int64)[:, None] + offs[None, :]
        x = ((idx - c[sel, None]) / s[sel, None]).astype(np.float32)
        x *= x
        x *= np.float32(-0.5)
        np.exp(x, out=x)
        x *= a[sel, None].astype(np.float32)
        idx[(idx < 0) | (idx >= n_pix)] = n_pix  # spare column
        idx += (rows[sel] * ncol)[:, None]
        flat[idx] += x


def add_rest_lines(
    prof: NDArray[np.float32],
    rows: NDArray[np.int64],
    rest_wave: float,
    z: NDArray[np.float64],
    sigma_rest: NDArray[np.float64],
    ew_rest: NDArray[np.float64],
) -> None:
    """Add one Gaussian line per row, given in the rest frame, to ``prof`` (:func:`add_gaussians`).

    The line of rest wavelength ``rest_wave``, width ``sigma_rest`` and equivalent width
    ``ew_rest`` (A, relative to the local continuum) lands at ``rest_wave (1 + z)`` with width
    ``sigma_rest (1 + z)``; its peak ``ew_rest / (sqrt(2 pi) sigma_rest)`` does not change with
    redshift.

    Parameters
    ----------
    prof : ndarray of shape (n, n_pix + 1), float32
        Profiles on the master grid (last column spare), modified.
    rows : ndarray of int, shape (m,)
        Row of ``prof`` of each line.
    rest_wave : float
        Rest wavelength (A).
    z : ndarray of shape (m,)
        Redshifts.
    sigma_rest, ew_rest : ndarray of shape (m,)
        Rest-frame Gaussian sigma and equivalent width (A).

    Examples
    --------
    >>> p = np.zeros((1, 101), np.float32)
    >>> add_rest_lines(p, np.array([0]), 3640.0, np.zeros(1), np.array([2.0]), np.array([5.0]))
    >>> round(float(p[0, 50]), 4)  # 3640 A is master pixel 50; peak 5 / (sqrt(2 pi) 2)
    0.9974
    """
    add_gaussians(
        prof,
        rows,
        pixel_position(rest_wave * (1.0 + z)),
        sigma_rest * (1.0 + z) / DWAVE,
        ew_rest / (np.sqrt(2.0 * np.pi) * sigma_rest),
    )
