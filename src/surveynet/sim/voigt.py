"""Voigt optical depth of HI absorbers (Lyman series), shared by the mocks and the DLA pipeline.

tau(u) = N * (pi e^2 / m_e c) * f * lambda0 * phi(u), with phi the Voigt profile in velocity
(``scipy.special.voigt_profile`` with sigma = b / sqrt(2) and gamma = Gamma lambda0 / (4 pi)).
Constants (:mod:`surveynet.constants`, Morton 2003): Lyman-alpha f = 0.4164, Gamma = 6.265e8
s^-1, lambda0 = 1215.67 A (:data:`~surveynet.constants.LYA_ROUNDED`, the value the bundled DLA
models were trained and calibrated with; the exact 1215.6701 would move their catalogues by up to
3e-5); Lyman-beta f = 0.07912, Gamma = 1.897e8 s^-1, lambda0 = 1025.7223 A; Lyman-gamma f =
0.0290, Gamma = 8.127e7 s^-1, lambda0 = 972.5368 A. Check: the line-centre optical depth for
b = 30 km/s is 2.526e-14 N (simulation.md section 3.4).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import voigt_profile

from surveynet.constants import (
    C_KMS,
    F_LYA,
    F_LYB,
    F_LYG,
    GAMMA_LYA,
    GAMMA_LYB,
    GAMMA_LYG,
    LYA_ROUNDED,
    LYB_REST,
    LYG_REST,
    PI_E2_MEC,
)

#: (name, lambda0 [A], oscillator strength f, damping Gamma [1/s]) of the Lyman series
LYMAN_SERIES: tuple[tuple[str, float, float, float], ...] = (
    ("LYA", LYA_ROUNDED, F_LYA, GAMMA_LYA),
    ("LYB", LYB_REST, F_LYB, GAMMA_LYB),
    ("LYG", LYG_REST, F_LYG, GAMMA_LYG),
)


def voigt_tau(
    wave: ArrayLike,
    z_abs: float,
    log_nhi: float,
    *,
    b_kms: float = 30.0,
    n_lines: int = 1,
) -> NDArray[np.float64]:
    """Optical depth of one HI absorber on an observed wavelength grid.

    Parameters
    ----------
    wave : array_like
        Observed (vacuum) wavelengths in Angstrom.
    z_abs : float
        Absorber redshift.
    log_nhi : float
        log10 column density in cm^-2.
    b_kms : float
        Doppler parameter in km/s.
    n_lines : int
        Number of Lyman-series lines (1 = Lyman-alpha only, 2 adds Lyman-beta, 3 Lyman-gamma).

    Returns
    -------
    tau : ndarray of the shape of ``wave``

    Examples
    --------
    >>> import numpy as np
    >>> tau = voigt_tau(np.array([1215.67 * 3.0]), 2.0, 20.0)
    >>> bool(np.isclose(tau[0], 2.526e-14 * 1e20, rtol=5e-3))
    True
    """
    w = np.asarray(wave, dtype=np.float64)
    if not 1 <= n_lines <= len(LYMAN_SERIES):
        raise ValueError(f"n_lines must be 1..{len(LYMAN_SERIES)}, got {n_lines}")
    nhi = 10.0 ** float(log_nhi)
    tau = np.zeros_like(w)
    sigma = b_kms * 1e5 / np.sqrt(2.0)  # cm/s
    for _, lam0, f, gamma in LYMAN_SERIES[:n_lines]:
        lam_obs = lam0 * (1.0 + z_abs)
        u = (w / lam_obs - 1.0) * C_KMS * 1e5  # cm/s
        lam_cm = lam0 * 1e-8
        gam = gamma * lam_cm / (4.0 * np.pi)  # Lorentz HWHM in cm/s
        phi = voigt_profile(u, sigma, gam)  # s/cm
        tau += nhi * PI_E2_MEC * f * lam_cm * phi
    return tau


def core_half_width(
    log_nhi: float, z_abs: float, *, b_kms: float = 30.0, tau: float = 1.0
) -> float:
    """Observed half-width (A) of a Lyman-alpha line out to optical depth ``tau``.

    Parameters
    ----------
    log_nhi : float
        log10 N_HI (cm^-2).
    z_abs : float
        Absorber redshift.
    b_kms : float
        Doppler parameter.
    tau : float
        Optical depth at the edge.

    Returns
    -------
    float
        Half-width (A); 0 when the centre itself is below ``tau``.

    Examples
    --------
    >>> a, b = core_half_width(20.3, 2.0), core_half_width(21.3, 2.0)
    >>> round(b / a, 2)                  # damping wings: width ~ sqrt(N)
    3.16
    """
    lam = LYMAN_SERIES[0][1] * (1.0 + z_abs)

    def excess(d: NDArray[np.float64]) -> NDArray[np.float64]:
        """Optical depth ``d`` A redward of the centre, minus ``tau``."""
        return voigt_tau(lam + d, z_abs, log_nhi, b_kms=b_kms) - tau

    if excess(np.zeros(1))[0] <= 0.0:
        return 0.0
    # tau falls monotonically away from the line centre: bracket the crossing, then narrow the
    # bracket on grids of 1,000 points (numpy only: no scipy.optimize import at start-up)
    steps = np.concatenate([[0.0], 2.0 ** np.arange(18.0)])  # 0, 1, 2, 4, ... 131072 A
    past = np.flatnonzero(excess(steps) < 0.0)
    if past.size == 0:
        return float(steps[-1])
    lo, hi = float(steps[past[0] - 1]), float(steps[past[0]])
    while hi - lo > 1e-6:
        grid = np.linspace(lo, hi, 1001)
        k = int(np.argmax(excess(grid) < 0.0))  # first grid point past the crossing
        lo, hi = float(grid[k - 1]), float(grid[k])
    return 0.5 * (lo + hi)


def rest_equivalent_width(
    log_nhi: float, *, b_kms: float = 30.0, span_kms: float = 30000.0
) -> float:
    """Rest-frame equivalent width (Angstrom) of a Lyman-alpha absorber, by direct integration.

    Parameters
    ----------
    log_nhi : float
        log10 N_HI (cm^-2).
    b_kms : float
        Doppler parameter.
    span_kms : float
        Integration half-range in velocity.

    Returns
    -------
    float

    Examples
    --------
    >>> round(rest_equivalent_width(20.3), 1)
    10.2
    """
    lam0 = LYMAN_SERIES[0][1]
    v = np.linspace(-span_kms, span_kms, 200001)
    wave = lam0 * (1.0 + v / C_KMS)
    tau = voigt_tau(wave, 0.0, log_nhi, b_kms=b_kms)
    return float(np.trapezoid(1.0 - np.exp(-tau), wave))
