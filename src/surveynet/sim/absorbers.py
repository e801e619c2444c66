"""Absorbers multiplied into the quasar models: forest, Lyman-limit systems, BALs and DLAs.

Each function draws from the batch generator and multiplies its transmission into the models in
place (rows = quasars, columns = the master grid of :func:`surveynet.sim.grid.master_grid`).
:func:`surveynet.sim.quasars.make_qsos` calls them in a fixed order (forest, Lyman-limit systems,
BALs, DLAs), which is part of the seeding. The physics (tau_eff fits, N_HI distributions, BAL
troughs) is in :mod:`surveynet.sim.igm`, the Voigt profiles in :mod:`surveynet.sim.voigt`. The
Lyman-series wavelengths are those of the Voigt table (:data:`surveynet.constants.LYA_ROUNDED`),
so that a DLA placed on a pixel has its profile centred there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import (
    C_KMS,
    F_LYA,
    GAMMA_LYA,
    LYA_ROUNDED,
    LYB_ROUNDED,
    LYG_ROUNDED,
    LYMAN_LIMIT,
    PI_E2_MEC,
    SIGMA_LL,
)
from surveynet.sim import igm
from surveynet.sim.config import SpectraSimConfig
from surveynet.sim.grid import master_grid
from surveynet.sim.instrument import DWAVE, N_MASTER, WAVE_MIN
from surveynet.sim.voigt import voigt_tau

__all__ = [
    "DLA_COLUMNS",
    "apply_forest",
    "insert_bal_templates",
    "insert_bals",
    "insert_dlas",
    "lyman_limit_systems",
    "wing_velocity",
]

#: Keys of the DLA rows returned by :func:`insert_dlas` (the DLA_META columns).
DLA_COLUMNS = ("TARGETID", "Z_DLA", "NHI", "DLAID", "Z_QSO")

#: Optical depth at which a DLA's Lorentz wing is truncated (design).
WING_TAU_MIN = 1e-4


def apply_forest(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
) -> None:
    """Multiply Lyman-alpha/beta forest transmissions into ``model``, in place.

    Quasars are processed in chunks of 64 of similar redshift, each needing only the pixels
    blueward of its highest Lyman-alpha (:func:`surveynet.sim.igm.forest_tau`).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar models (modified).
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``forest_*`` fields.
    """
    wave = master_grid().wave
    order = np.argsort(z, kind="stable")
    for start in range(0, z.size, 64):
        sel = order[start : start + 64]
        tau = igm.forest_tau(
            wave,
            z[sel],
            rng,
            sigma_g=cfg.forest_sigma_g,
            corr_px=cfg.forest_corr_px,
            fit=cfg.forest_fit,
            lyb=cfg.forest_lyb,
        )
        m = tau.shape[1]
        if m:
            np.negative(tau, out=tau)
            np.exp(tau, out=tau)
            model[sel, :m] *= tau


def wing_velocity(log_nhi: float, tau_min: float = WING_TAU_MIN) -> float:
    """Velocity beyond which the Lorentz wing of a Lyman-alpha absorber has tau < ``tau_min``.

    In the damping wing tau(u) ~ N (pi e^2 / m_e c) f lambda g / (pi u^2), with g = Gamma lambda
    / (4 pi) the Lorentz half width in velocity (606.1 cm/s, rounded to 0.1 cm/s as the mocks
    were seeded with); solved for u. It only sets where the profile is evaluated.

    Parameters
    ----------
    log_nhi : float
        log10 N_HI (cm^-2).
    tau_min : float
        Optical depth at the truncation.

    Returns
    -------
    float
        Velocity (km/s).

    Examples
    --------
    >>> round(wing_velocity(20.3)), round(wing_velocity(22.3) / wing_velocity(20.3), 1)
    (71914, 10.0)
    """
    lam_cm = LYA_ROUNDED / 1e8
    gamma = round(GAMMA_LYA * lam_cm / (4.0 * np.pi), 1)  # cm/s
    u2 = 10.0**log_nhi * PI_E2_MEC * F_LYA * lam_cm * gamma / (np.pi * tau_min)
    return float(np.sqrt(u2) / 1e5)


def insert_dlas(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
) -> tuple[list[dict[str, Any]], NDArray[np.int64]]:
    """Draw DLAs and multiply their Voigt transmissions into ``model``, in place.

    A quasar with z >= ``dla_z_min`` gets absorbers with probability ``dla_probability``, centred
    on master-grid pixels of :func:`surveynet.sim.igm.dla_window`: recipe ``desi``, one absorber
    plus, with probability ``dla_overlap_probability``, a second 30-120 pixels away; recipe
    ``sdss``, Poisson(``dla_dndz`` dz) absorbers redrawn until >= 1. log N_HI follows
    ``dla_nhi_distribution`` (:func:`surveynet.sim.igm.draw_nhi`); the profile has
    ``dla_lyman_series`` Lyman lines and Doppler b = ``dla_b_kms``, evaluated where the
    Lorentz wing exceeds tau = 1e-4.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar models (modified).
    z : ndarray of shape (n,)
        Quasar redshifts.
    tid : ndarray of int64, shape (n,)
        TARGETIDs.
    cfg : SpectraSimConfig
        ``dla_*`` fields.

    Returns
    -------
    rows : list of dict
        One dict per absorber with the keys of :data:`DLA_COLUMNS`; DLAID = TARGETID 1000 + k.
    counts : ndarray of int64, shape (n,)
        Absorbers per quasar.
    """
    wave = master_grid().wave
    n = z.size
    counts = np.zeros(n, dtype=np.int64)
    rows: list[dict[str, Any]] = []
    has = rng.uniform(0.0, 1.0, n) < cfg.dla_probability
    for i in np.nonzero(has & (z >= cfg.dla_z_min))[0]:
        lo, hi = igm.dla_window(float(z[i]), cfg.dla_wave_min)
        i0 = int(np.ceil((lo - WAVE_MIN) / DWAVE))
        i1 = int(np.floor((hi - WAVE_MIN) / DWAVE))
        i0, i1 = max(i0, 0), min(i1, N_MASTER - 1)
        if i1 <= i0:
            continue
        if cfg.dla_recipe == "desi":
            pix = [int(rng.integers(i0, i1 + 1))]
            if rng.uniform() < cfg.dla_overlap_probability:
                second = pix[0] + int(rng.choice([-1, 1])) * int(rng.integers(30, 121))
                if i0 <= second <= i1:
                    pix.append(second)
        else:  # sdss: Poisson(int l dz) redrawn until >= 1
            dz = (wave[i1] - wave[i0]) / LYA_ROUNDED
            k = 0
            for _ in range(1000):
                k = int(rng.poisson(cfg.dla_dndz * dz))
                if k >= 1:
                    break
            pix = [int(p) for p in rng.integers(i0, i1 + 1, max(k, 1))]
        nhi = igm.draw_nhi(rng, len(pix), cfg.dla_nhi_distribution)
        for k, (p, lognhi) in enumerate(zip(pix, nhi, strict=True)):
            z_dla = float(wave[p] / LYA_ROUNDED - 1.0)
            frac = min(wing_velocity(float(lognhi)) / C_KMS, 0.9) + 0.01
            lam_c = LYA_ROUNDED * (1.0 + z_dla)
            lo_lyb = (
                LYB_ROUNDED * (1.0 + z_dla) * (1.0 - frac)
                if cfg.dla_lyman_series > 1
                else lam_c * (1 - frac)
            )
            lo_lyg = LYG_ROUNDED * (1.0 + z_dla) * (1.0 - frac)
            j0, j1 = np.searchsorted(
                wave, [lo_lyg if cfg.dla_lyman_series > 2 else lo_lyb, lam_c * (1.0 + frac)]
            )
            tau = voigt_tau(
                wave[j0:j1],
                z_dla,
                float(lognhi),
                b_kms=cfg.dla_b_kms,
                n_lines=cfg.dla_lyman_series,
            )
            model[i, j0:j1] *= np.exp(-tau).astype(np.float32)
            rows.append(
                {
                    "TARGETID": int(tid[i]),
                    "Z_DLA": z_dla,
                    "NHI": float(lognhi),
                    "DLAID": int(tid[i]) * 1000 + k,
                    "Z_QSO": float(z[i]),
                }
            )
        counts[i] = len(pix)
    return rows, counts


def insert_bals(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Draw BAL troughs and multiply them into ``model``, in place.

    A quasar with z >= ``bal_z_min`` is a BAL with probability ``bal_fraction``: 1-3 Gaussian
    troughs in outflow velocity (redrawn up to 20 times until BI_CIV > 0), shared by the ions of
    :data:`surveynet.sim.igm.BAL_IONS` (plus the LoBAL ions with probability
    ``bal_lobal_fraction``).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar models (modified).
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``bal_*`` fields.

    Returns
    -------
    is_bal : ndarray of bool, shape (n,)
    bi, ai : ndarray of shape (n,)
        Balnicity and absorption indices of CIV (km/s).
    lobal : ndarray of bool, shape (n,)
    """
    wave = master_grid().wave
    n = z.size
    is_bal = np.zeros(n, dtype=bool)
    lobal = np.zeros(n, dtype=bool)
    bi = np.zeros(n)
    ai = np.zeros(n)
    draw = rng.uniform(0.0, 1.0, n) < cfg.bal_fraction
    vgrid = np.arange(0.0, 30000.0, 10.0)
    for i in np.nonzero(draw & (z >= cfg.bal_z_min))[0]:
        if cfg.bal_source == "random":
            is_bal[i] = True
            bi[i], ai[i], lobal[i] = _random_bal(rng, model[i], z[i], cfg, wave, vgrid)
            continue
        for _ in range(20):
            k = int(rng.integers(1, 4))
            cen = rng.uniform(3000.0, 25000.0, k)
            fwhm = rng.uniform(2000.0, 10000.0, k)
            depth = rng.uniform(0.3, 1.0, k)
            prof = igm.bal_profile(vgrid, cen, fwhm, depth)
            b = igm.balnicity_index(vgrid, prof)
            if b > 0:
                break
        if b <= 0:
            continue
        is_bal[i], bi[i], ai[i] = True, b, igm.absorption_index(vgrid, prof)
        lobal[i] = rng.uniform() < cfg.bal_lobal_fraction
        ions = igm.BAL_IONS + (igm.LOBAL_IONS if lobal[i] else ())
        for _, lam0 in ions:
            sl, v = _trough_window(wave, lam0, z[i])
            if v.size:
                model[i, sl] *= igm.bal_profile(v, cen, fwhm, depth).astype(np.float32)
    return is_bal, bi, ai, lobal


def _trough_window(
    wave: NDArray[np.float64], lam0: float, z_qso: float
) -> tuple[slice, NDArray[np.float64]]:
    """Master-grid slice and outflow velocities (km/s) of an ion's BAL region.

    The region is 0-32,000 km/s blueward of the line at ``z_qso``; empty off the grid.
    """
    lam_c = lam0 * (1.0 + z_qso)
    i0, i1 = (int(k) for k in np.searchsorted(wave, [lam_c * (1.0 - 32000.0 / C_KMS), lam_c]))
    i1 = max(i1, i0)
    return slice(i0, i1), C_KMS * (1.0 - wave[i0:i1] / lam_c)


def _random_bal(
    rng: np.random.Generator,
    row: NDArray[np.float32],
    z_qso: float,
    cfg: SpectraSimConfig,
    wave: NDArray[np.float64],
    vgrid: NDArray[np.float64],
) -> tuple[float, float, bool]:
    """Multiply random BAL troughs into one quasar model ``row``; return (BI_CIV, AI_CIV, LoBAL).

    The profile is :func:`surveynet.sim.igm.random_bal_profile`, applied in place. CIV takes it,
    the other ions of :data:`surveynet.sim.igm.BAL_IONS` (and the LoBAL ions, with probability
    ``bal_lobal_fraction``) a random fraction 0.2-1 of its optical depth.
    """
    prof = igm.random_bal_profile(rng, vgrid)
    lobal = bool(rng.uniform() < cfg.bal_lobal_fraction)
    tau = -np.log(np.clip(prof, 1e-6, 1.0))
    for name, lam0 in igm.BAL_IONS + (igm.LOBAL_IONS if lobal else ()):
        share = 1.0 if name == "CIV" else rng.uniform(0.2, 1.0)
        sl, v = _trough_window(wave, lam0, z_qso)
        if v.size:
            row[sl] *= np.exp(-share * np.interp(v, vgrid, tau, right=0.0)).astype(np.float32)
    return igm.balnicity_index(vgrid, prof), igm.absorption_index(vgrid, prof), lobal


def insert_bal_templates(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
    bals: Any,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Multiply real BAL absorption profiles into ``model``, in place (``bal_source="templates"``).

    The BAL quasars are drawn as in :func:`insert_bals` (z >= ``bal_z_min``, probability
    ``bal_fraction``); each takes one of the templates uniformly at random, whose transmission
    (rest frame) is interpolated at ``wave / (1 + z)`` and is 1 outside its range. The truth
    mirrors :func:`insert_bals`: IS_BAL True, BI_CIV and AI_CIV from the template's catalogue
    (BI_CIV may be 0 for templates with AI-only troughs), LOBAL False.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar models (modified).
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``bal_*`` fields.
    bals : BalTemplates
        :meth:`surveynet.sim.templates.TemplateLibrary.bal_templates`.

    Returns
    -------
    is_bal : ndarray of bool, shape (n,)
    bi, ai : ndarray of shape (n,)
        Balnicity and absorption indices of CIV (km/s).
    lobal : ndarray of bool, shape (n,)
        All False (the templates cover 944.6-1686.5 A rest: no MgII or AlIII troughs).
    """
    wave = master_grid().wave
    n = z.size
    is_bal = np.zeros(n, dtype=bool)
    bi = np.zeros(n)
    ai = np.zeros(n)
    draw = rng.uniform(0.0, 1.0, n) < cfg.bal_fraction
    wt = bals.wave
    for i in np.nonzero(draw & (z >= cfg.bal_z_min))[0]:
        k = int(rng.integers(0, bals.transmission.shape[0]))
        i0, i1 = np.searchsorted(wave, [wt[0] * (1.0 + z[i]), wt[-1] * (1.0 + z[i])])
        if i1 > i0:
            t = np.interp(wave[i0:i1] / (1.0 + z[i]), wt, bals.transmission[k])
            model[i, i0:i1] *= t.astype(np.float32)
        is_bal[i], bi[i], ai[i] = True, float(bals.bi_civ[k]), float(bals.ai_civ[k])
    return is_bal, bi, ai, np.zeros(n, dtype=bool)


def lyman_limit_systems(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
) -> NDArray[np.int64]:
    """Lyman-limit systems whose 912 A edge falls in the grid, multiplied into ``model``.

    Incidence dN/dz = ``lls_dndz`` (1 + z)^``lls_dndz_index`` (Songaila & Cowie 2010: 0.3, 1.94 for
    tau_LL >= 1), z drawn from that law between 3600 / 911.75 - 1 and z_qso; log N_HI in
    [17.2, 20.3) with dN/dN ~ N^-1.5 (design); tau = N sigma_LL (lambda / lambda_LL)^3.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar models (modified).
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``lls_*`` fields.

    Returns
    -------
    ndarray of int64, shape (n,)
        Systems per quasar.
    """
    wave = master_grid().wave
    z_lo = WAVE_MIN / LYMAN_LIMIT - 1.0
    e1 = cfg.lls_dndz_index + 1.0
    n_lls = np.zeros(z.size, dtype=np.int64)
    for i in np.nonzero(z > z_lo)[0]:
        a_lo, a_hi = (1.0 + z_lo) ** e1, (1.0 + z[i]) ** e1
        k = int(rng.poisson(cfg.lls_dndz / e1 * (a_hi - a_lo)))
        if k == 0:
            continue
        zz = (a_lo + rng.uniform(0.0, 1.0, k) * (a_hi - a_lo)) ** (1.0 / e1) - 1.0
        e = -0.5
        u = rng.uniform(0.0, 1.0, k)
        lo, hi = (10.0**17.2) ** e, (10.0**20.3) ** e
        lognhi = np.log10((lo + u * (hi - lo)) ** (1.0 / e))
        lam_ll = LYMAN_LIMIT * (1.0 + zz)
        j1 = int(np.searchsorted(wave, lam_ll.max()))
        x = wave[None, :j1] / lam_ll[:, None]
        tau = np.sum(np.where(x < 1.0, (10.0**lognhi * SIGMA_LL)[:, None] * x**3, 0.0), axis=0)
        model[i, :j1] *= np.exp(-np.minimum(tau, 50.0)).astype(np.float32)
        n_lls[i] = k
    return n_lls
