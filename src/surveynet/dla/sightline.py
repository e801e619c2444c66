"""The sightline data structure of the DLA pipeline and its pixel helpers.

A :class:`Sightline` is a normalised, rebinned quasar spectrum with the absorbers known in it
(:class:`Dla`); :mod:`surveynet.dla.data` reads and prepares them. The helpers here map between
observed wavelengths and (fractional) pixels of a sightline's log-wavelength grid and select the
searched pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import LYA_REST

__all__ = [
    "Dla",
    "Sightline",
    "fractional_pixel",
    "pixel_position",
    "search_pixels",
    "sightline_arrays",
]


@dataclass(frozen=True)
class Dla:
    """One HI absorber attached to a sightline (truth or injected).

    Attributes
    ----------
    z_dla : float
        Absorber redshift.
    nhi : float
        log10 column density (cm^-2).
    dlaid : str
        Identifier (``DLAID`` of DLA_META, or ``TARGETID`` + 3-digit index).
    """

    z_dla: float
    nhi: float
    dlaid: str = ""

    @property
    def central_wavelength(self) -> float:
        """Observed Lyman-alpha wavelength (A) = (1 + z_dla) * 1215.6701."""
        return (1.0 + self.z_dla) * LYA_REST


@dataclass
class Sightline:
    """A normalised, rebinned quasar spectrum ready for windowing.

    Attributes
    ----------
    targetid : int
        DESI TARGETID (or any integer id).
    z_qso : float
        Quasar redshift.
    loglam : ndarray of shape (n_pix,)
        log10 observed wavelength (A), constant step after rebinning.
    flux : ndarray of shape (n_pix,)
        Flux divided by the median flux at rest 1420-1480 A (float64).
    error : ndarray of shape (n_pix,)
        1-sigma error of ``flux`` (same normalisation); ``inf`` where there is no data.
    s2n : float
        Median flux/error at rest 1420-1480 A (native pixels, before the camera cut and rebin).
    dlas : list of Dla
        Absorbers known in this sightline (truth or injected).
    ra, dec : float
        TARGET_RA, TARGET_DEC in degrees (NaN when unknown).
    camera : str
        "b", "r", "z" or "all".
    """

    targetid: int
    z_qso: float
    loglam: NDArray[np.float64]
    flux: NDArray[np.float64]
    error: NDArray[np.float64]
    s2n: float
    dlas: list[Dla] = field(default_factory=list)
    ra: float = float("nan")
    dec: float = float("nan")
    camera: str = "b"

    def __post_init__(self) -> None:
        n = np.shape(self.loglam)
        if np.shape(self.flux) != n or np.shape(self.error) != n:
            raise ValueError(
                f"Sightline {self.targetid}: loglam/flux/error shapes differ "
                f"({n}, {np.shape(self.flux)}, {np.shape(self.error)})"
            )

    @property
    def n_pix(self) -> int:
        """Number of pixels."""
        return int(np.size(self.loglam))

    @property
    def wave(self) -> NDArray[np.float64]:
        """Observed wavelength (A)."""
        return np.asarray(10.0 ** np.asarray(self.loglam, dtype=np.float64))

    @property
    def rest_wave(self) -> NDArray[np.float64]:
        """Rest-frame wavelength (A) of the quasar."""
        return self.wave / (1.0 + self.z_qso)

    @property
    def ivar(self) -> NDArray[np.float64]:
        """Inverse variance (0 where the error is infinite)."""
        e = np.asarray(self.error, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(np.isfinite(e) & (e > 0), 1.0 / np.where(e > 0, e, 1.0) ** 2, 0.0)

    def pixel_of(self, wavelength: float) -> int:
        """Index of the pixel nearest to an observed ``wavelength`` (A), clipped to [0, n_pix).

        Parameters
        ----------
        wavelength : float
            Observed wavelength (A).

        Returns
        -------
        int
        """
        ix = int(np.argmin(np.abs(self.loglam - np.log10(wavelength))))
        return ix

    def copy(self) -> Sightline:
        """Deep copy (arrays and the absorber list).

        Returns
        -------
        Sightline
        """
        return replace(
            self,
            loglam=self.loglam.copy(),
            flux=self.flux.copy(),
            error=self.error.copy(),
            dlas=list(self.dlas),
        )


# ----------------------------------------------------------------------------- pixel helpers


def search_pixels(
    sl: Sightline, rest_range: tuple[float, float] = (900.0, 1346.0)
) -> NDArray[np.int64]:
    """Indices of the pixels whose rest wavelength lies in ``rest_range`` (inclusive).

    These are the window centres of the window CNN and the searched pixels of every finder.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    rest_range : tuple of float
        Quasar rest-frame range (A).

    Returns
    -------
    ndarray of int64
        Sorted pixel indices.

    Examples
    --------
    >>> ll = np.log10(3600.0) + 1e-4 * np.arange(3000)
    >>> sl = Sightline(1, 3.2, ll, np.ones(3000), np.ones(3000), 5.0)
    >>> px = search_pixels(sl, (900.0, 1000.0))
    >>> bool(sl.rest_wave[px[0] - 1] < 900.0 <= sl.rest_wave[px[0]])
    True
    """
    rest = sl.rest_wave
    return np.flatnonzero((rest >= rest_range[0]) & (rest <= rest_range[1])).astype(np.int64)


def pixel_position(sl: Sightline, wave: float) -> float:
    """Fractional pixel index of observed wavelength ``wave`` (A) on the sightline's log grid.

    Assumes a constant log-wavelength step (a rebinned sightline), extrapolating beyond the
    ends.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    wave : float
        Observed wavelength (A).

    Returns
    -------
    float
        ``(log10(wave) - loglam[0]) / step``.

    Examples
    --------
    >>> ll = np.log10(4000.0) + 1e-4 * np.arange(10)
    >>> sl = Sightline(1, 3.0, ll, np.ones(10), np.ones(10), 5.0)
    >>> round(pixel_position(sl, 4000.0 * 10 ** 2.5e-4), 6)
    2.5
    """
    step = float(sl.loglam[1] - sl.loglam[0])
    return float((np.log10(wave) - sl.loglam[0]) / step)


def fractional_pixel(loglam: NDArray[np.float64], wave: float) -> float:
    """Pixel coordinate of ``wave`` on a log-wavelength grid (any steps).

    Interpolates ``log10(wave)`` on ``loglam`` inside the grid and extrapolates linearly with
    the end steps beyond it (the labels of absorbers just off the spectrum).

    Parameters
    ----------
    loglam : ndarray of shape (n,)
        log10 observed wavelength (A), increasing.
    wave : float
        Observed wavelength (A).

    Returns
    -------
    float
        Fractional pixel index.

    Examples
    --------
    >>> ll = np.log10(4000.0) + 1e-4 * np.arange(10)
    >>> round(fractional_pixel(ll, 4000.0 * 10 ** -2e-4), 6)
    -2.0
    """
    x = np.log10(wave)
    n = loglam.size
    if x < loglam[0]:
        return float((x - loglam[0]) / (loglam[1] - loglam[0]))
    if x > loglam[-1]:
        return float(n - 1 + (x - loglam[-1]) / (loglam[-1] - loglam[-2]))
    return float(np.interp(x, loglam, np.arange(n)))


def sightline_arrays(sightline: Sightline) -> dict[str, Any]:
    """Plain dict of a sightline (for npz/JSON export): arrays and scalars, no objects.

    Parameters
    ----------
    sightline : Sightline
        The sightline.

    Returns
    -------
    dict
        TARGETID, Z_QSO, S2N, LOGLAM, FLUX, ERROR and the absorbers' Z_DLA and NHI.
    """
    return {
        "TARGETID": sightline.targetid,
        "Z_QSO": sightline.z_qso,
        "S2N": sightline.s2n,
        "LOGLAM": sightline.loglam,
        "FLUX": sightline.flux,
        "ERROR": sightline.error,
        "Z_DLA": np.array([d.z_dla for d in sightline.dlas]),
        "NHI": np.array([d.nhi for d in sightline.dlas]),
    }
