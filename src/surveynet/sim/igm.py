"""Intergalactic absorption for the quasar mocks: Lyman-alpha/beta forest, Lyman limit, DLAs, BAL
troughs.

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
tau_a(lambda 1215.67 / 1025.72) from the same sightline (section 3.3).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

LYA = 1215.67
LYB = 1025.72
LYMAN_LIMIT = 911.75
#: tau_beta / tau_alpha = f_b lambda_b / (f_a lambda_a)
LYB_TAU_RATIO = 0.1603
#: hydrogen photo-ionisation cross-section at the Lyman limit (cm^2)
SIGMA_LL = 6.30e-18
C_KMS = 299792.458

TAU_EFF_FITS = ("becker13", "fg08", "kim07", "gpdla_dr16")


def tau_eff(z: NDArray[np.floating] | float, fit: str = "becker13") -> NDArray[np.float64]:
    """Effective Lyman-alpha optical depth of the IGM at absorber redshift ``z``.

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
    """F(z) = exp(-tau_eff(z))."""
    return np.exp(-tau_eff(z, fit))


@lru_cache(maxsize=16)
def tau0_table(
    sigma_g: float, fit: str = "becker13", z_max: float = 7.0, dz: float = 0.005
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Redshift grid and tau0(z) such that E[exp(-tau0 exp(sigma_g g - sigma_g^2/2))] = F(z), g ~
    N(0,1).
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
    h = max(1, int(np.ceil(3 * corr_px)))
    x = np.arange(-h, h + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / corr_px) ** 2) if corr_px > 0 else (x == 0).astype(np.float64)
    return k / np.sqrt(np.sum(k * k))  # unit L2 norm -> unit variance field


def gaussian_field(
    rng: np.random.Generator, n: int, n_pix: int, corr_px: float
) -> NDArray[np.float32]:
    """Unit-variance correlated Gaussian field (n, n_pix): white noise convolved with a Gaussian
    FIR.
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

    Returns an array (n_qso, n_need) where ``n_need`` covers 1215.67 (1 + max z_qso); pixels further
    red have no forest absorption. Lyman-alpha applies where ``lya_min_rest < lambda / (1 + z_qso) <
    1215.67``; Lyman-beta (if ``lyb``) where ``lambda / (1 + z_qso) < 1025.72``, using the same
    sightline's Lyman-alpha field at ``lambda * 1215.67 / 1025.72``.
    """
    zq = np.asarray(z_qso, dtype=np.float64)
    n = zq.size
    n_need = 0 if n == 0 else min(int(np.searchsorted(wave, LYA * (1.0 + zq.max()))) + 1, wave.size)
    if n_need <= 1:
        return np.zeros((n, 0), dtype=np.float32)
    w = wave[:n_need]
    zgrid, t0 = tau0_table(float(sigma_g), fit)
    tau0 = np.interp(w / LYA - 1.0, zgrid, t0).astype(np.float32)
    tau = gaussian_field(rng, n, n_need, corr_px)
    tau *= np.float32(sigma_g)
    tau -= np.float32(0.5 * sigma_g**2)
    np.exp(tau, out=tau)
    tau *= tau0
    lo = np.searchsorted(w, lya_min_rest * (1.0 + zq), side="right")
    hi = np.searchsorted(w, LYA * (1.0 + zq), side="left")
    lyb_hi = np.searchsorted(w, LYB * (1.0 + zq), side="left")
    dw = w[1] - w[0]
    j = np.minimum(np.rint((w * (LYA / LYB) - w[0]) / dw).astype(np.int64), n_need - 1)
    for i in range(n):
        row = tau[i]
        tb = LYB_TAU_RATIO * row[j[: lyb_hi[i]]] if lyb and lyb_hi[i] > 0 else None
        row[: lo[i]] = 0.0
        row[hi[i] :] = 0.0
        if tb is not None:
            row[: lyb_hi[i]] += tb
    return tau


def lyman_limit_tau(wave: NDArray[np.float64], z_lls: float, log_nhi: float) -> NDArray[np.float64]:
    """Lyman-continuum optical depth N sigma_LL (lambda / lambda_LL)^3 below the limit of a system
    at z_lls.
    """
    lam_ll = LYMAN_LIMIT * (1.0 + z_lls)
    t = 10.0**log_nhi * SIGMA_LL * (wave / lam_ll) ** 3
    return np.where(wave < lam_ll, t, 0.0)


# -----------------------------------------------------------------------------------------------
# DLAs
NHI_DISTRIBUTIONS = ("desi", "slls", "high", "mix", "sdss", "fn")
_NHI_UNIFORM = {
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


def _draw_power_law(
    rng: np.random.Generator, n: int, segments: tuple[tuple[float, float, float], ...]
) -> NDArray[np.float64]:
    """log10 N drawn from a continuous piecewise power law dN/dN ~ c_k N^beta_k."""
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


def draw_nhi(rng: np.random.Generator, n: int, distribution: str = "desi") -> NDArray[np.float64]:
    """Draw ``n`` log10 N_HI values.

    ``desi``/``slls``/``high``/``mix``: uniform in [20.3, 22.5] / [19.5, 20.3] / [21.2, 22.5] /
    [19.3, 22.5] (desi ``insert_dlas``); ``sdss``: continuous piecewise power law in N (f(N)
    slopes) over the DLA range 20.3-22.5; ``fn``: the f(N) power law over 19.3-22.5, sub-DLAs
    included in their survey proportion (:data:`FN_SEGMENTS`).
    """
    if distribution in _NHI_UNIFORM:
        lo, hi = _NHI_UNIFORM[distribution]
        return rng.uniform(lo, hi, n)
    if distribution == "sdss":
        return _draw_power_law(rng, n, SDSS_FN_SEGMENTS)
    if distribution == "fn":
        return _draw_power_law(rng, n, FN_SEGMENTS)
    raise ValueError(
        f"unknown N_HI distribution {distribution!r}; choose one of {NHI_DISTRIBUTIONS}"
    )


def dla_window(z_qso: float, wave_min: float = 3700.0) -> tuple[float, float]:
    """Allowed observed-wavelength range of a DLA centre (DESI ``insert_dlas``).

    lambda < 0.99 * 1215.67 (1 + z_qso), lambda > 912 (1 + z_qso), lambda >= 3700 A.
    """
    return max(912.0 * (1.0 + z_qso), wave_min), 0.99 * LYA * (1.0 + z_qso)


# -----------------------------------------------------------------------------------------------
# BALs
#: ions whose troughs share the CIV velocity profile (rest vacuum A)
BAL_IONS = (
    ("CIV", 1549.06),
    ("SiIV", 1396.76),
    ("NV", 1240.14),
    ("OVI", 1033.83),
    ("LYA", 1215.67),
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
    """
    v = np.asarray(v_kms, dtype=np.float64)
    t = np.ones_like(v)
    for c, f, d in zip(
        np.atleast_1d(centres), np.atleast_1d(fwhm), np.atleast_1d(depth), strict=True
    ):
        s = f / 2.354820045
        t *= 1.0 - d * np.exp(-0.5 * ((v - c) / s) ** 2)
    return t


def _contiguous_run_weight(
    below: NDArray[np.bool_], dv: float, min_width: float
) -> NDArray[np.float64]:
    """C(v) on an ascending velocity grid, traversed from high to low velocity: 1 where the current
    run
    of ``below`` pixels already spans >= ``min_width`` km/s, else 0 (Weymann et al. 1991)."""
    rev = np.asarray(below, dtype=bool)[::-1]
    idx = np.arange(rev.size)
    last_break = np.maximum.accumulate(np.where(rev, -1, idx))
    run = np.where(rev, (idx - last_break) * dv, 0.0)
    return (run[::-1] >= min_width).astype(np.float64)


def balnicity_index(v_kms: NDArray[np.floating], transmission: NDArray[np.floating]) -> float:
    """BI = int_3000^25000 [1 - f(v)/0.9] C dv (Weymann et al. 1991), uniform velocity grid
    ascending.

    C = 1 only where f < 0.9 has held continuously for at least 2000 km/s, counting from large to
    small outflow velocity.

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
    """AI = int_0^25000 [1 - f(v)] C' dv with 450 km/s contiguity below f = 0.9 (Hall et al. 2002
    style).
    """
    v = np.asarray(v_kms, dtype=np.float64)
    f = np.asarray(transmission, dtype=np.float64)
    dv = float(v[1] - v[0])
    c = _contiguous_run_weight(f < 0.9, dv, 450.0)
    m = (v >= 0.0) & (v <= 25000.0)
    return float(np.sum(((1.0 - f) * c)[m]) * dv)
