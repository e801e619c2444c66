"""Intergalactic absorption for the quasar mocks: Lyman-alpha/beta forest, Lyman limit, DLAs, BALs.

Mean transmission fits F(z) = exp(-tau_eff(z)) (simulation.md section 3.1):

- ``becker13`` (default): tau = 0.751 ((1+z)/4.5)^2.90 - 0.132 (Becker et al. 2013, MNRAS 430,
  2067);
- ``fg08``: 0.0018 (1+z)^3.92 (Faucher-Giguere et al. 2008);
- ``kim07``: 0.0023 (1+z)^3.65 (Kim et al. 2007);
- ``gpdla_dr16``: 0.00554 (1+z)^3.182 (GP-DLA DR16 marginalised).

Fluctuations (section 3.2, design): a unit-variance Gaussian field g on the 0.8 A pixels, correlated
by a short Gaussian FIR filter, gives tau = tau0(z) exp(sigma_g g - sigma_g^2 / 2) with tau0(z)
solved on a redshift grid so that <exp(-tau)> = F(z) exactly for g ~ N(0, 1) (Gauss-Hermite
quadrature + bisection). Because every pixel's g is marginally N(0, 1), the expected transmission of
each pixel is F(z) exactly. The field is generated directly on the pixel grid (not on a 10 km/s
grid) for speed; sigma_g is the per-pixel amplitude. Calibration: with the default sigma_g = 2.3
(corr_px = 1) the per-pixel transmission std is 0.31 at z_abs ~ 3 (F = 0.75), against 0.33 for the
shared ``igm/transmission-16-1747`` skewers rebinned to 0.8 A over 1040-1200 A rest (their mean
0.66-0.71 is below F(z), so only the amplitude is used). Lyman-beta: tau_b(lambda) = 0.1603
tau_a(lambda 1215.6701 / 1025.7223) from the same sightline (section 3.3). Rest wavelengths and
the Lyman-limit cross-section come from :mod:`surveynet.constants`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import LYA_ROUNDED, LYB_ROUNDED, LYMAN_LIMIT, SIGMA_LL

# The forest recipe works with the Lyman-alpha/beta wavelengths rounded to 0.01 A
# (:data:`surveynet.constants.LYA_ROUNDED`, simulation.md 3.3): forest edges, absorber redshift of
# a pixel, the Lyman-beta forest mapped onto the Lyman-alpha field; so do the BAL ions, the
# template-forest removal and the DLAs. The mocks were calibrated and seeded with these values.
#: tau_beta / tau_alpha = f_b lambda_b / (f_a lambda_a)
LYB_TAU_RATIO = 0.1603

TAU_EFF_FITS = ("becker13", "fg08", "kim07", "gpdla_dr16")


def tau_eff(z: NDArray[np.floating] | float, fit: str = "becker13") -> NDArray[np.float64]:
    """Effective Lyman-alpha optical depth of the IGM at absorber redshift ``z``.

    Parameters
    ----------
    z : float or ndarray
        Absorber redshift.
    fit : {"becker13", "fg08", "kim07", "gpdla_dr16"}
        The tau_eff(z) fit (module docstring).

    Returns
    -------
    ndarray
        tau_eff (at least 1e-6), of the shape of ``z``.

    Raises
    ------
    ValueError
        Unknown fit.

    Examples
    --------
    >>> round(float(np.exp(-tau_eff(3.0))), 3)
    0.669
    >>> round(float(np.exp(-tau_eff(2.0, "fg08"))), 3)
    0.875
    """
    zz = np.asarray(z, dtype=np.float64)
    if fit == "becker13":
        t = 0.751 * ((1.0 + zz) / 4.5) ** 2.90 - 0.132
    elif fit == "fg08":
        t = 0.0018 * (1.0 + zz) ** 3.92
    elif fit == "kim07":
        t = 0.0023 * (1.0 + zz) ** 3.65
    elif fit == "gpdla_dr16":
        t = 0.00554 * (1.0 + zz) ** 3.182
    else:
        raise ValueError(f"unknown tau_eff fit {fit!r}; choose one of {TAU_EFF_FITS}")
    return np.asarray(np.maximum(t, 1e-6))


def mean_transmission(
    z: NDArray[np.floating] | float, fit: str = "becker13"
) -> NDArray[np.float64]:
    """Mean forest transmission F(z) = exp(-tau_eff(z)).

    Parameters
    ----------
    z : float or ndarray
        Absorber redshift.
    fit : str
        As :func:`tau_eff`.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> round(float(mean_transmission(3.0)), 3)
    0.669
    """
    return np.exp(-tau_eff(z, fit))


@lru_cache(maxsize=16)
def tau0_table(
    sigma_g: float, fit: str = "becker13", z_max: float = 7.0, dz: float = 0.005
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lognormal forest amplitude tau0(z) reproducing the mean transmission (cached).

    tau0 solves E[exp(-tau0 exp(sigma_g g - sigma_g^2 / 2))] = F(z) for g ~ N(0, 1)
    (Gauss-Hermite quadrature of 120 nodes, bisection in log10 tau0).

    Parameters
    ----------
    sigma_g : float
        Amplitude of the Gaussian field.
    fit : str
        tau_eff fit (:func:`tau_eff`).
    z_max, dz : float
        Redshift grid 0..z_max step dz.

    Returns
    -------
    z, tau0 : ndarray
    """
    z = np.arange(0.0, z_max + dz, dz)
    target = mean_transmission(z, fit)
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    amp = np.exp(sigma_g * x - 0.5 * sigma_g**2)
    lo = np.full(z.size, -12.0)
    hi = np.full(z.size, 4.0)
    for _ in range(70):  # bisection in log10 tau0 (the mean is monotonic in tau0)
        mid = 0.5 * (lo + hi)
        mean = np.exp(-(10.0**mid)[:, None] * amp[None, :]) @ w
        too_much = mean < target
        hi = np.where(too_much, mid, hi)
        lo = np.where(too_much, lo, mid)
    return z, 10.0 ** (0.5 * (lo + hi))


@lru_cache(maxsize=16)
def _corr_kernel(corr_px: float) -> NDArray[np.float64]:
    """Gaussian FIR of sigma ``corr_px`` pixels (+-3 sigma, unit L2 norm; a delta for 0).

    Parameters
    ----------
    corr_px : float
        Correlation length in pixels.

    Returns
    -------
    ndarray
        Odd-length kernel.
    """
    h = max(1, int(np.ceil(3 * corr_px)))
    x = np.arange(-h, h + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / corr_px) ** 2) if corr_px > 0 else (x == 0).astype(np.float64)
    return k / np.sqrt(np.sum(k * k))  # unit L2 norm -> unit variance field


def gaussian_field(
    rng: np.random.Generator, n: int, n_pix: int, corr_px: float
) -> NDArray[np.float32]:
    """Unit-variance correlated Gaussian field: white noise convolved with a Gaussian FIR.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n, n_pix : int
        Shape of the field.
    corr_px : float
        Correlation length in pixels (:func:`_corr_kernel`).

    Returns
    -------
    ndarray of shape (n, n_pix), float32
    """
    from scipy.ndimage import correlate1d

    k = _corr_kernel(corr_px).astype(np.float32)
    h = k.size // 2
    white = rng.standard_normal((n, n_pix + 2 * h), dtype=np.float32)
    if h == 0:
        return white
    return correlate1d(white, k, axis=1, mode="constant", output=np.float32)[:, h : h + n_pix]


def forest_tau(
    wave: NDArray[np.float64],
    z_qso: NDArray[np.floating],
    rng: np.random.Generator,
    *,
    sigma_g: float = 2.3,
    corr_px: float = 1.0,
    fit: str = "becker13",
    lyb: bool = True,
    lya_min_rest: float = LYMAN_LIMIT,
) -> NDArray[np.float32]:
    """Forest optical depth on the first ``n_need`` pixels of a uniform grid ``wave``.

    ``n_need`` covers 1215.67 (1 + max z_qso); pixels further red have no forest absorption.
    Lyman-alpha applies where ``lya_min_rest < lambda / (1 + z_qso) < 1215.67``; Lyman-beta (if
    ``lyb``) where ``lambda / (1 + z_qso) < 1025.72``, using the same sightline's Lyman-alpha field
    at ``lambda * 1215.67 / 1025.72`` (:data:`surveynet.constants.LYA_ROUNDED`, ``LYB_ROUNDED``).

    Parameters
    ----------
    wave : ndarray
        Uniform observed wavelength grid (A).
    z_qso : ndarray of shape (n_qso,)
        Quasar redshifts.
    rng : numpy.random.Generator
        Source of the Gaussian field.
    sigma_g : float
        Lognormal amplitude.
    corr_px : float
        Correlation length of the field in pixels.
    fit : str
        tau_eff fit (:func:`tau_eff`).
    lyb : bool
        Add the Lyman-beta forest.
    lya_min_rest : float
        Bluest rest wavelength of the Lyman-alpha forest (A).

    Returns
    -------
    ndarray of shape (n_qso, n_need), float32
    """
    zq = np.asarray(z_qso, dtype=np.float64)
    n = zq.size
    n_need = (
        0
        if n == 0
        else min(int(np.searchsorted(wave, LYA_ROUNDED * (1.0 + zq.max()))) + 1, wave.size)
    )
    if n_need <= 1:
        return np.zeros((n, 0), dtype=np.float32)
    w = wave[:n_need]
    zgrid, t0 = tau0_table(float(sigma_g), fit)
    tau0 = np.interp(w / LYA_ROUNDED - 1.0, zgrid, t0).astype(np.float32)
    tau = gaussian_field(rng, n, n_need, corr_px)
    tau *= np.float32(sigma_g)
    tau -= np.float32(0.5 * sigma_g**2)
    np.exp(tau, out=tau)
    tau *= tau0
    lo = np.searchsorted(w, lya_min_rest * (1.0 + zq), side="right")
    hi = np.searchsorted(w, LYA_ROUNDED * (1.0 + zq), side="left")
    lyb_hi = np.searchsorted(w, LYB_ROUNDED * (1.0 + zq), side="left")
    dw = w[1] - w[0]
    j = np.minimum(
        np.rint((w * (LYA_ROUNDED / LYB_ROUNDED) - w[0]) / dw).astype(np.int64), n_need - 1
    )
    for i in range(n):
        row = tau[i]
        tb = LYB_TAU_RATIO * row[j[: lyb_hi[i]]] if lyb and lyb_hi[i] > 0 else None
        row[: lo[i]] = 0.0
        row[hi[i] :] = 0.0
        if tb is not None:
            row[: lyb_hi[i]] += tb
    return tau


def lyman_limit_tau(wave: NDArray[np.float64], z_lls: float, log_nhi: float) -> NDArray[np.float64]:
    """Lyman-continuum optical depth of a system, N sigma_LL (lambda / lambda_LL)^3 below its limit.

    Parameters
    ----------
    wave : ndarray
        Observed wavelengths (A).
    z_lls : float
        Redshift of the system.
    log_nhi : float
        log10 N_HI (cm^-2).

    Returns
    -------
    ndarray
        0 redward of the observed Lyman limit.

    Examples
    --------
    >>> lyman_limit_tau(np.array([911.0, 912.0]) * 3.0, 2.0, 17.2).round(2).tolist()
    [1.0, 0.0]
    """
    lam_ll = LYMAN_LIMIT * (1.0 + z_lls)
    t = 10.0**log_nhi * SIGMA_LL * (wave / lam_ll) ** 3
    return np.where(wave < lam_ll, t, 0.0)


# -----------------------------------------------------------------------------------------------
# DLAs
#: ``dla_nhi_distribution`` values of the simulator (:func:`draw_nhi` also takes ``uniform`` and
#: ``gamma`` over an explicit range)
NHI_DISTRIBUTIONS = ("desi", "slls", "high", "mix", "sdss", "fn")
#: Named uniform log N_HI ranges (zoujiaqi99/dla_cnn:desi/insert_dlas.py modes; the DLA pipeline
#: calls ``desi`` and ``slls`` ``dla`` and ``subdla``)
NHI_UNIFORM_RANGES: dict[str, tuple[float, float]] = {
    "desi": (20.3, 22.5),
    "slls": (19.5, 20.3),
    "high": (21.2, 22.5),
    "mix": (19.3, 22.5),
}
#: piecewise power law dN/dN_HI ~ N^beta (slopes of the fN_spline_z24 f(N) spline; simulation.md
#: 3.4)
SDSS_FN_SEGMENTS = ((20.3, 21.0, -1.64), (21.0, 21.5, -2.25), (21.5, 22.5, -3.11))
#: ``fn``: the same f(N) extended down to the ``mix`` range's lower end, 19.3 (slope -1.09 of the
#: desisim fN_spline_z24 spline between log N 19.3 and 20.3), so that sub-DLAs and DLAs come in
#: the proportion of a real survey (67 % / 33 %; 1.59 sub-DLAs of 19.5-20.3 per DLA, against the
#: spline's l(X) ratio 0.096 / 0.057 = 1.68)
FN_SEGMENTS = ((19.3, 20.3, -1.09), *SDSS_FN_SEGMENTS)
#: ``gamma``: the Gamma-function fit of f(N) at z ~ 3, f(N) ~ (N / N_g)^alpha exp(-N / N_g), of
#: Prochaska & Wolfe (2009, ApJ 696, 1543): slope alpha and log10 N_g (cm^-2)
FN_GAMMA_ALPHA = -1.80
FN_GAMMA_LOG_N = 21.48


def _draw_power_law(
    rng: np.random.Generator, n: int, segments: tuple[tuple[float, float, float], ...]
) -> NDArray[np.float64]:
    """log10 N drawn from a continuous piecewise power law dN/dN ~ c_k N^beta_k.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of draws.
    segments : tuple of (float, float, float)
        ``(log N_lo, log N_hi, beta)`` per segment, contiguous.

    Returns
    -------
    ndarray of shape (n,)
    """
    coef = [1.0]
    for k in range(1, len(segments)):
        nb = 10.0 ** segments[k][0]
        coef.append(coef[-1] * nb ** (segments[k - 1][2] - segments[k][2]))
    masses = []
    for (a, b, beta), c in zip(segments, coef, strict=True):
        masses.append(c * ((10.0**b) ** (beta + 1) - (10.0**a) ** (beta + 1)) / (beta + 1))
    p = np.array(masses) / np.sum(masses)
    seg = rng.choice(len(p), size=n, p=p)
    u = rng.uniform(0.0, 1.0, n)
    out = np.empty(n)
    for k, (a, b, beta) in enumerate(segments):
        m = seg == k
        e = beta + 1
        lo, hi = (10.0**a) ** e, (10.0**b) ** e
        out[m] = np.log10((lo + u[m] * (hi - lo)) ** (1.0 / e))
    return out


def _draw_gamma(rng: np.random.Generator, n: int, lo: float, hi: float) -> NDArray[np.float64]:
    """log10 N from the Gamma-function f(N) truncated to [lo, hi] (inverse CDF, 0.001 dex grid).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of draws.
    lo, hi : float
        log10 N_HI range.

    Returns
    -------
    ndarray of shape (n,)
    """
    grid = np.linspace(lo, hi, round((hi - lo) / 1e-3) + 1)
    x = 10.0 ** (grid - FN_GAMMA_LOG_N)
    pdf = x ** (FN_GAMMA_ALPHA + 1.0) * np.exp(-x)  # f(N) dN / dlogN ~ N f(N)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.uniform(size=n), cdf, grid)


def draw_nhi(
    rng: np.random.Generator,
    n: int,
    distribution: str = "desi",
    *,
    nhi_range: tuple[float, float] | None = None,
) -> NDArray[np.float64]:
    """Draw ``n`` log10 N_HI values: the one N_HI sampler of the package.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of draws.
    distribution : str
        ``desi``/``slls``/``high``/``mix``: uniform in [20.3, 22.5] / [19.5, 20.3] / [21.2, 22.5]
        / [19.3, 22.5] (:data:`NHI_UNIFORM_RANGES`, desi ``insert_dlas``); ``sdss``: continuous
        piecewise power law in N (f(N) slopes) over the DLA range 20.3-22.5; ``fn``: the f(N)
        power law over 19.3-22.5, sub-DLAs included in their survey proportion
        (:data:`FN_SEGMENTS`); ``uniform``: uniform in ``nhi_range``; ``gamma``: the Prochaska &
        Wolfe (2009) Gamma-function f(N) truncated to ``nhi_range``.
    nhi_range : tuple of float, optional
        ``(lo, hi)`` of ``uniform`` and ``gamma`` (required there, refused elsewhere).

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        Unknown distribution, or ``nhi_range`` missing or misplaced.

    Examples
    --------
    >>> x = draw_nhi(np.random.default_rng(0), 1000, "gamma", nhi_range=(21.2, 22.5))
    >>> bool(x.min() >= 21.2 and x.max() <= 22.5 and np.median(x) < 21.85)
    True
    >>> float(draw_nhi(np.random.default_rng(0), 1, "slls")[0]) < 20.3
    True
    """
    ranged = distribution in ("uniform", "gamma")
    if ranged != (nhi_range is not None):
        raise ValueError(
            "nhi_range is required by the 'uniform' and 'gamma' N_HI distributions only, "
            f"got distribution {distribution!r} with nhi_range {nhi_range}"
        )
    if nhi_range is not None:
        lo, hi = nhi_range
        if distribution == "uniform":
            return rng.uniform(lo, hi, size=n)
        return _draw_gamma(rng, n, lo, hi)
    if distribution in NHI_UNIFORM_RANGES:
        lo, hi = NHI_UNIFORM_RANGES[distribution]
        return rng.uniform(lo, hi, n)
    if distribution == "sdss":
        return _draw_power_law(rng, n, SDSS_FN_SEGMENTS)
    if distribution == "fn":
        return _draw_power_law(rng, n, FN_SEGMENTS)
    raise ValueError(
        f"unknown N_HI distribution {distribution!r}; choose one of "
        f"{(*NHI_DISTRIBUTIONS, 'uniform', 'gamma')}"
    )


def dla_window(z_qso: float, wave_min: float = 3700.0) -> tuple[float, float]:
    """Allowed observed-wavelength range of a DLA centre (DESI ``insert_dlas``).

    lambda < 0.99 * 1215.67 (1 + z_qso), lambda > 912 (1 + z_qso), lambda >= ``wave_min``.

    Parameters
    ----------
    z_qso : float
        Quasar redshift.
    wave_min : float
        Bluest allowed wavelength (A).

    Returns
    -------
    lo, hi : float
        Observed wavelengths (A); empty when ``hi <= lo``.

    Examples
    --------
    >>> [round(x, 2) for x in dla_window(3.0)]
    [3700.0, 4814.05]
    """
    return max(912.0 * (1.0 + z_qso), wave_min), 0.99 * LYA_ROUNDED * (1.0 + z_qso)


# -----------------------------------------------------------------------------------------------
# BALs
#: ions whose troughs share the CIV velocity profile (rest vacuum A)
BAL_IONS = (
    ("CIV", 1549.06),
    ("SiIV", 1396.76),
    ("NV", 1240.14),
    ("OVI", 1033.83),
    ("LYA", LYA_ROUNDED),
)
LOBAL_IONS = (("AlIII", 1857.40), ("MgII", 2798.75))


def bal_profile(
    v_kms: NDArray[np.floating],
    centres: NDArray[np.floating],
    fwhm: NDArray[np.floating],
    depth: NDArray[np.floating],
) -> NDArray[np.float64]:
    """Normalised transmission of Gaussian troughs in outflow velocity (v > 0 = blueshifted).

    Troughs multiply: prod_k (1 - d_k exp(-(v - v_k)^2 / 2 s_k^2)), s = FWHM / 2.3548.

    Parameters
    ----------
    v_kms : ndarray
        Outflow velocities (km/s).
    centres, fwhm, depth : ndarray of shape (k,)
        Trough centres and widths (km/s) and depths (0-1).

    Returns
    -------
    ndarray
        Transmission, of the shape of ``v_kms``.
    """
    v = np.asarray(v_kms, dtype=np.float64)
    t = np.ones_like(v)
    for c, f, d in zip(
        np.atleast_1d(centres), np.atleast_1d(fwhm), np.atleast_1d(depth), strict=True
    ):
        s = f / 2.354820045
        t *= 1.0 - d * np.exp(-0.5 * ((v - c) / s) ** 2)
    return t


def random_bal_profile(
    rng: np.random.Generator, v_kms: NDArray[np.floating]
) -> NDArray[np.float64]:
    """CIV transmission of 1-4 BAL troughs of random shape in outflow velocity.

    Used by ``bal_source`` = ``"random"``. Each trough is 1 - d exp(-|(v - v_c) / w|^p) with
    v_c uniform in 1,000-25,000 km/s, w log-uniform in 300-8,000 km/s, p uniform in 1.5-8
    (Gaussian-like to flat-bottomed with sharp edges) and d uniform in 0.2-1; troughs multiply.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    v_kms : ndarray
        Outflow velocities (km/s).

    Returns
    -------
    ndarray
        Transmission in [0, 1], of the shape of ``v_kms``.

    Examples
    --------
    >>> t = random_bal_profile(np.random.default_rng(1), np.arange(0.0, 30000.0, 10.0))
    >>> bool(0.0 <= t.min() < 0.9), bool(t.max() <= 1.0)
    (True, True)
    """
    v = np.asarray(v_kms, dtype=np.float64)
    t = np.ones_like(v)
    for _ in range(int(rng.integers(1, 5))):
        vc = rng.uniform(1000.0, 25000.0)
        w = np.exp(rng.uniform(np.log(300.0), np.log(8000.0)))
        p = rng.uniform(1.5, 8.0)
        d = rng.uniform(0.2, 1.0)
        t *= 1.0 - d * np.exp(-(np.abs((v - vc) / w) ** p))
    return t


def _contiguous_run_weight(
    below: NDArray[np.bool_], dv: float, min_width: float
) -> NDArray[np.float64]:
    """Contiguity weight C(v) of the balnicity and absorption indices (Weymann et al. 1991).

    On an ascending velocity grid traversed from high to low velocity: 1 where the current run of
    ``below`` pixels already spans >= ``min_width`` km/s, else 0.

    Parameters
    ----------
    below : ndarray of bool
        Pixels below the 0.9 threshold.
    dv : float
        Grid step (km/s).
    min_width : float
        Required run length (km/s).

    Returns
    -------
    ndarray of float64
    """
    rev = np.asarray(below, dtype=bool)[::-1]
    idx = np.arange(rev.size)
    last_break = np.maximum.accumulate(np.where(rev, -1, idx))
    run = np.where(rev, (idx - last_break) * dv, 0.0)
    return (run[::-1] >= min_width).astype(np.float64)


def balnicity_index(v_kms: NDArray[np.floating], transmission: NDArray[np.floating]) -> float:
    """Balnicity index BI = int_3000^25000 [1 - f(v)/0.9] C dv (Weymann et al. 1991).

    C = 1 only where f < 0.9 has held continuously for at least 2000 km/s, counting from large to
    small outflow velocity.

    Parameters
    ----------
    v_kms : ndarray
        Uniform, ascending outflow velocity grid (km/s).
    transmission : ndarray
        Normalised flux on it.

    Returns
    -------
    float
        BI (km/s).

    Examples
    --------
    >>> v = np.arange(0.0, 30000.0, 10.0)
    >>> f = np.where((v > 10000) & (v < 15000), 0.45, 1.0)  # a 5000 km/s box at half depth
    >>> round(balnicity_index(v, f))
    1500
    """
    v = np.asarray(v_kms, dtype=np.float64)
    f = np.asarray(transmission, dtype=np.float64)
    dv = float(v[1] - v[0])
    c = _contiguous_run_weight(f < 0.9, dv, 2000.0)
    m = (v >= 3000.0) & (v <= 25000.0)
    return float(np.sum(((1.0 - f / 0.9) * c)[m]) * dv)


def absorption_index(v_kms: NDArray[np.floating], transmission: NDArray[np.floating]) -> float:
    """Absorption index AI = int_0^25000 [1 - f(v)] C' dv (Hall et al. 2002 style).

    C' requires 450 km/s of contiguity below f = 0.9.

    Parameters
    ----------
    v_kms : ndarray
        Uniform, ascending outflow velocity grid (km/s).
    transmission : ndarray
        Normalised flux on it.

    Returns
    -------
    float
        AI (km/s).
    """
    v = np.asarray(v_kms, dtype=np.float64)
    f = np.asarray(transmission, dtype=np.float64)
    dv = float(v[1] - v[0])
    c = _contiguous_run_weight(f < 0.9, dv, 450.0)
    m = (v >= 0.0) & (v <= 25000.0)
    return float(np.sum(((1.0 - f) * c)[m]) * dv)
