"""DESI-like instrument model for the spectral mocks.

Grids, LSF, sky, throughput, noise, photometry.

All cameras share one 0.8 A lattice starting at 3600 A (the *master grid*, 3600-9824 A, 7781
pixels); the B/R/Z arms are slices of it (simulation.md section 4):

======  ===========  ======  ====================
arm     range (A)    pixels  master-grid offset
======  ===========  ======  ====================
b       3600-5800    2751    0
r       5760-7620    2326    2700
z       7520-9824    2881    4900
======  ===========  ======  ====================

Noise (simulation.md section 4): electrons per pixel e = f K(lambda) with K = A t dlambda T(lambda)
lambda / (h c) (flux in 1e-17 erg/s/cm^2/A), variance e_obj + e_sky + RN^2, so ivar = K^2 / (K (f +
S Omega) + RN^2) in (1e-17 flux units)^-2. The relative throughput anchors below were read off the
sky-limited ivar envelope of the 25 SV1 spectra in
``instrument/desi_coadds/quasarnp-test_coadd.fits`` (70th-percentile filter over 61 pixels of the
median over the 22 spectra with median B ivar > 10) times the sky continuum (this folds the DESI
throughput, atmosphere and fibre losses, which are not available offline, into one empirical curve);
the per-arm scale is calibrated so that the default target mix reproduces the median ivar of that
coadd (B 14.7, R 79, Z 125). Sky continuum anchors are 20th percentiles of
``instrument/sky-uves.fits`` in wavelength bins; line amplitudes are design defaults, the [OI]
5578.89 A strength calibrated to the observed ivar dip (3.2 vs 26.7, ratio 0.12).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import C_AA_S

#: first wavelength and step of the master grid (Angstrom)
WAVE_MIN = 3600.0
DWAVE = 0.8
N_MASTER = 7781
#: arm -> (offset in the master grid, number of pixels)
ARMS: dict[str, tuple[int, int]] = {"b": (0, 2751), "r": (2700, 2326), "z": (4900, 2881)}
BANDS = ("b", "r", "z")
#: Gaussian LSF sigma in pixels per arm (real DESI coadd RESOLUTION rows, simulation.md section 4)
LSF_SIGMA_PX: dict[str, float] = {"b": 0.84, "r": 0.80, "z": 0.90}
N_DIAG = 11

HC_ERG_AA = 1.98644586e-8  # h c in erg A
#: Mayall collecting area (cm^2), approximate (8.6 m^2 unobscured; design default)
AREA_CM2 = 8.6e4
#: fibre solid angle in arcsec^2 (1.52 arcsec diameter; simulation.md section 4, approximate)
FIBRE_AREA_ARCSEC2 = 1.8

#: Sky continuum anchors (A, 1e-17 erg/s/cm^2/A/arcsec^2): 20th percentiles of sky-uves.fits per
#: bin.
SKY_CONT_ANCHORS = (
    (3600.0, 1.26),
    (3800.0, 1.00),
    (4500.0, 1.30),
    (5250.0, 0.95),
    (5750.0, 1.02),
    (6500.0, 0.90),
    (7250.0, 0.75),
    (7750.0, 0.72),
    (8250.0, 0.67),
    (9000.0, 0.59),
    (9824.0, 0.56),
)
#: Sky emission lines (vacuum A, integrated flux in 1e-17 erg/s/cm^2/arcsec^2); design-default
#: strengths,
#: [OI] 5578.89 calibrated to the SV1 ivar dip (simulation.md section 4).
SKY_LINES = (
    (4359.57, 2.0),
    (5462.27, 2.5),
    (5578.89, 23.0),
    (5891.58, 4.0),
    (5897.55, 4.0),
    (6302.04, 9.0),
    (6365.54, 3.0),
)
#: number, wavelength range and seed of the deterministic pseudo-OH forest (design default)
OH_N_LINES = 220
OH_RANGE = (6800.0, 9824.0)
OH_SEED = 20010611
OH_FLUX_MEDIAN = 1.2  # at 6800 A, growing as (lambda / 6800)^3

#: Sky-limited ivar envelope of the SV1 coadd (A, ivar); see the module docstring.
IVAR_ENVELOPE: dict[str, tuple[tuple[float, float], ...]] = {
    "b": (
        (3600, 0.4),
        (3700, 1.3),
        (3800, 2.8),
        (3900, 4.5),
        (4000, 7.1),
        (4100, 9.0),
        (4200, 11.3),
        (4300, 13.1),
        (4400, 13.6),
        (4500, 14.0),
        (4600, 16.4),
        (4700, 18.5),
        (4800, 23.6),
        (4900, 25.1),
        (5000, 26.2),
        (5100, 27.4),
        (5200, 28.3),
        (5300, 27.9),
        (5400, 27.4),
        (5500, 27.1),
        (5600, 27.0),
        (5700, 24.0),
        (5800, 19.6),
    ),
    "r": (
        (5760, 3.0),
        (5800, 30.0),
        (5860, 49.3),
        (5960, 59.5),
        (6060, 74.1),
        (6160, 81.9),
        (6260, 86.1),
        (6360, 96.1),
        (6460, 107.6),
        (6560, 116.7),
        (6660, 124.7),
        (6760, 133.6),
        (6860, 136.2),
        (6960, 139.0),
        (7060, 139.5),
        (7160, 137.0),
        (7260, 137.0),
        (7360, 135.8),
        (7460, 138.0),
        (7560, 58.2),
        (7620, 2.7),
    ),
    "z": (
        (7520, 57.5),
        (7620, 55.3),
        (7720, 157.2),
        (7820, 177.9),
        (7920, 182.3),
        (8020, 195.1),
        (8120, 216.9),
        (8220, 222.7),
        (8320, 238.5),
        (8420, 248.2),
        (8520, 260.0),
        (8620, 258.0),
        (8720, 258.0),
        (8820, 262.4),
        (8920, 265.0),
        (9020, 273.2),
        (9120, 276.4),
        (9220, 271.7),
        (9320, 127.1),
        (9420, 141.5),
        (9520, 133.9),
        (9620, 133.8),
        (9720, 102.4),
        (9824, 71.4),
    ),
}
#: typical object flux folded into the envelope (1e-17 units; faint SV1 targets)
ENVELOPE_OBJECT_FLUX = 0.3
#: per-arm calibration of K so that the default mix gives median ivar B 14.7, R 79, Z 125
ARM_CALIBRATION: dict[str, float] = {"b": 1.560, "r": 1.110, "z": 0.978}
#: read noise variance per extracted pixel (electrons^2; design default)
READ_NOISE_VAR = 40.0
#: reference exposure time (s) of the calibration (SV1 deep coadds; approximate)
REF_EXPTIME = 4000.0


def pixel_edges(centres: NDArray[np.floating]) -> NDArray[np.float64]:
    """Bin edges of a centre grid (midpoints, ends extrapolated by half a bin)."""
    c = np.asarray(centres, dtype=np.float64)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def master_wave() -> NDArray[np.float64]:
    """The 0.8 A master grid, 3600-9824 A (7781 pixels).

    Examples
    --------
    >>> w = master_wave()
    >>> w.size, float(w[0]), round(float(w[-1]), 6)
    (7781, 3600.0, 9824.0)
    """
    return WAVE_MIN + DWAVE * np.arange(N_MASTER, dtype=np.float64)


def arm_wave(band: str) -> NDArray[np.float64]:
    """Wavelength grid of one arm (``"b"``, ``"r"`` or ``"z"``).

    Examples
    --------
    >>> [arm_wave(b).size for b in "brz"]
    [2751, 2326, 2881]
    """
    off, n = ARMS[band]
    return WAVE_MIN + DWAVE * (off + np.arange(n, dtype=np.float64))


def ab_flam(
    mag: float | NDArray[np.float64], wave: float | NDArray[np.float64]
) -> NDArray[np.float64]:
    """f_lambda (erg/s/cm^2/A) of a source with flat AB magnitude ``mag`` at ``wave`` (A).

    f_nu = 10^(-0.4 (m + 48.6)), f_lambda = f_nu c / lambda^2.

    Examples
    --------
    >>> round(float(ab_flam(22.0, 3500.0)) / 1e-17, 3)
    1.408
    """
    m = np.asarray(mag, dtype=np.float64)
    w = np.asarray(wave, dtype=np.float64)
    return np.asarray(10.0 ** (-0.4 * (m + 48.6)) * C_AA_S / w**2)


# ---------------------------------------------------------------------------------------------
# filters
#: approximate DECam-like filter curves: (centre, half width of the flat top, edge sigma) in A
#: (design)
FILTERS: dict[str, tuple[float, float, float]] = {
    "g": (4800.0, 650.0, 60.0),
    "r": (6420.0, 700.0, 60.0),
    "z": (9150.0, 700.0, 60.0),  # truncated at 9824 A by the grid
}


@lru_cache(maxsize=8)
def filter_weights(name: str) -> tuple[NDArray[np.float64], float]:
    """Weights ``w`` on the master grid with ``flux @ w / norm`` = <f_nu> in the band.

    The flux is f_lambda.

    Returns ``(w, norm)`` where ``w = T lambda dlambda`` and ``norm = sum T (c/lambda) dlambda``, so
    that the AB magnitude is ``-2.5 log10(flux @ w / norm) - 48.6``.
    """
    c, hw, s = FILTERS[name]
    lam = master_wave()
    x = np.abs(lam - c) - hw
    t = np.where(x <= 0, 1.0, np.exp(-0.5 * (x / s) ** 2))
    w = t * lam * DWAVE
    norm = float(np.sum(t * C_AA_S / lam * DWAVE))
    return w, norm


@lru_cache(maxsize=1)
def _filter_matrix() -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    names = tuple(FILTERS)
    w = np.stack([filter_weights(b)[0] for b in names], axis=1)
    norms = np.array([filter_weights(b)[1] for b in names])
    return (w / norms[None, :] * 1e-17).astype(np.float32), norms


def synthetic_mags(flux_1e17: NDArray[np.floating]) -> dict[str, NDArray[np.float64]]:
    """AB magnitudes g, r, z of spectra on the master grid (flux in 1e-17 erg/s/cm^2/A).

    NaN where the band flux is <= 0. One float32 matrix product (the z filter is truncated at
    9824 A by the grid).
    """
    w, _ = _filter_matrix()
    fnu = (np.asarray(flux_1e17, dtype=np.float32) @ w).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(fnu > 0, -2.5 * np.log10(np.where(fnu > 0, fnu, 1.0)) - 48.6, np.nan)
    return {b: m[:, k] for k, b in enumerate(FILTERS)}


def synthetic_mag(flux_1e17: NDArray[np.floating], band: str = "r") -> NDArray[np.float64]:
    """AB magnitude in one band (see :func:`synthetic_mags`)."""
    return synthetic_mags(np.atleast_2d(flux_1e17))[band]


# ------------------------------------------------------------------------------------------------
# LSF
@lru_cache(maxsize=8)
def lsf_kernel(sigma_px: float, n_diag: int = N_DIAG) -> NDArray[np.float64]:
    """Normalised Gaussian kernel on offsets +h..-h (DESI diagonal order; symmetric)."""
    h = n_diag // 2
    off = np.arange(h, -h - 1, -1, dtype=np.float64)
    k = np.exp(-0.5 * (off / sigma_px) ** 2)
    return k / k.sum()


@lru_cache(maxsize=8)
def resolution_data(sigma_px: float, n_pix: int, n_diag: int = N_DIAG) -> NDArray[np.float32]:
    """DESI banded resolution ``data[d, j]`` (offsets +h..-h) of a Gaussian LSF.

    Rows are normalised to 1.

    The matrix is ``R[i, i + k] = data[d, i + k]`` with ``k = h - d`` (scipy ``dia_matrix``
    convention, as desispec ``Resolution``); rows cut by the array edges are renormalised.
    """
    ker = lsf_kernel(sigma_px, n_diag)
    h = n_diag // 2
    offs = np.arange(h, -h - 1, -1)
    rows = np.arange(n_pix)
    rowsum = np.zeros(n_pix)
    for d, k in enumerate(offs):
        ok = (rows + k >= 0) & (rows + k < n_pix)
        rowsum[ok] += ker[d]
    data = np.zeros((n_diag, n_pix))
    cols = np.arange(n_pix)
    for d, k in enumerate(offs):
        r = cols - k
        ok = (r >= 0) & (r < n_pix)
        data[d, ok] = ker[d] / rowsum[r[ok]]
    return data.astype(np.float32)


@lru_cache(maxsize=8)
def _edge_rowsums(sigma_px: float, n_pix: int, n_diag: int = N_DIAG) -> NDArray[np.float32]:
    """Sum of the kernel weights that fall inside the array, for the first and last h rows."""
    ker = lsf_kernel(sigma_px, n_diag)
    h = n_diag // 2
    ks = np.arange(-h, h + 1)
    idx = np.r_[np.arange(h), np.arange(n_pix - h, n_pix)]
    rs = np.array([ker[h - ks[(i + ks >= 0) & (i + ks < n_pix)]].sum() for i in idx])
    return rs.astype(np.float32)


def apply_resolution(
    flux: NDArray[np.floating], sigma_px: float, n_diag: int = N_DIAG
) -> NDArray[np.float32]:
    """``R @ flux`` for every row of ``flux`` (n_spec, n_pix), R of :func:`resolution_data`.

    Exactly the matrix written as RESOLUTION (Gaussian LSF, rows normalised): a correlation with
    the kernel (zeros outside the array), the first and last ``n_diag // 2`` rows renormalised.
    """
    from scipy.ndimage import correlate1d

    f = np.asarray(flux, dtype=np.float32)
    n_pix = f.shape[1]
    h = n_diag // 2
    ker = lsf_kernel(float(sigma_px), n_diag).astype(np.float32)  # symmetric: orientation is moot
    out = correlate1d(f, ker, axis=1, mode="constant", cval=0.0, output=np.float32)
    rs = _edge_rowsums(float(sigma_px), n_pix, n_diag)
    out[:, :h] /= rs[:h]
    out[:, n_pix - h :] /= rs[h:]
    return out


# ------------------------------------------------------------------------------------------------
# sky
@lru_cache(maxsize=1)
def _oh_lines() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(OH_SEED)
    lam = np.sort(rng.uniform(*OH_RANGE, OH_N_LINES))
    flux = OH_FLUX_MEDIAN * rng.lognormal(0.0, 0.8, OH_N_LINES) * (lam / OH_RANGE[0]) ** 3
    return lam, flux


def sky_continuum(wave: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sky continuum per arcsec^2 (1e-17 erg/s/cm^2/A/arcsec^2) at ``wave``."""
    a = np.array(SKY_CONT_ANCHORS)
    return np.interp(wave, a[:, 0], a[:, 1])


@lru_cache(maxsize=8)
def sky_spectrum(band: str, oi_scale: float = 1.0) -> NDArray[np.float64]:
    """Sky per fibre (1e-17 erg/s/cm^2/A) on one arm, lines convolved with the arm's LSF.

    ``oi_scale`` multiplies the strength of [OI] 5578.89 A (calibration hook).
    """
    w = arm_wave(band)
    sky = sky_continuum(w).copy()
    sig = LSF_SIGMA_PX[band] * DWAVE
    lam_oh, f_oh = _oh_lines()
    lines = list(SKY_LINES) + list(zip(lam_oh.tolist(), f_oh.tolist(), strict=True))
    for lam, f in lines:
        if lam == 5578.89:
            f *= oi_scale
        if lam < w[0] - 10 or lam > w[-1] + 10:
            continue
        i0, i1 = np.searchsorted(w, [lam - 6 * sig, lam + 6 * sig])
        x = w[i0:i1] - lam
        sky[i0:i1] += f / (np.sqrt(2 * np.pi) * sig) * np.exp(-0.5 * (x / sig) ** 2)
    return sky * FIBRE_AREA_ARCSEC2


# --------------------------------------------------------------------------------------------
# throughput
@lru_cache(maxsize=8)
def electrons_per_flux(band: str) -> NDArray[np.float64]:
    """K(lambda): electrons per pixel per unit flux (1e-17 erg/s/cm^2/A), reference exposure."""
    w = arm_wave(band)
    env = np.array(IVAR_ENVELOPE[band], dtype=np.float64)
    ivar_env = np.interp(w, env[:, 0], env[:, 1])
    sky_c = sky_continuum(w) * FIBRE_AREA_ARCSEC2
    # sky-limited: ivar ~ K / (f + S)  (read noise is a small correction, folded into the
    # calibration)
    return ARM_CALIBRATION[band] * ivar_env * (sky_c + ENVELOPE_OBJECT_FLUX)


def throughput(band: str) -> NDArray[np.float64]:
    """Implied total throughput T(lambda) of :func:`electrons_per_flux` (documentation, plots)."""
    w = arm_wave(band)
    k = electrons_per_flux(band)
    return k * HC_ERG_AA / (AREA_CM2 * REF_EXPTIME * DWAVE * w * 1e-17)


def variance(
    flux: NDArray[np.floating],
    band: str,
    exposure_factor: NDArray[np.floating],
    *,
    oi_scale: float = 1.0,
    read_noise_var: float = READ_NOISE_VAR,
) -> NDArray[np.float32]:
    """Variance (1e-17 flux units^2) of noise-free ``flux`` (n_spec, n_pix) on ``band``.

    var = (max(f, 0) + S) / (K e) + RN^2 / (K e)^2, with ``e = exposure_factor`` (n_spec,) scaling
    the exposure time relative to the calibration (ivar ~ t for sky-limited pixels). float32.
    """
    k = electrons_per_flux(band)
    inv_k = (1.0 / k).astype(np.float32)
    rn_k2 = (read_noise_var / k**2).astype(np.float32)
    sky = sky_spectrum(band, oi_scale).astype(np.float32)
    inv_e = (1.0 / np.asarray(exposure_factor, dtype=np.float64)).astype(np.float32)[:, None]
    var = np.maximum(np.asarray(flux, dtype=np.float32), np.float32(0.0))
    var += sky
    var *= inv_k
    var *= inv_e
    var += rn_k2[None, :] * (inv_e * inv_e)
    return var


def inverse_variance(
    flux: NDArray[np.floating],
    band: str,
    exposure_factor: NDArray[np.floating],
    *,
    oi_scale: float = 1.0,
    read_noise_var: float = READ_NOISE_VAR,
) -> NDArray[np.float32]:
    """Ivar = 1 / :func:`variance` (1e-17 flux units^-2), float32."""
    var = variance(flux, band, exposure_factor, oi_scale=oi_scale, read_noise_var=read_noise_var)
    return np.reciprocal(var, out=var)
