"""Quasar models on the master grid: parametric continua, emission lines, then the IGM.

Parametric mode (default): a broken power law f_lambda ~ lambda^-(2 + alpha) with Vanden Berk et
al. (2001) / Telfer et al. (2002) slopes (per-object scatter) times 1 + L, L the Gaussian emission
lines of :data:`QSO_LINES`. Template mode: real PCA continua of
:class:`surveynet.sim.templates.TemplateLibrary`. Then :func:`make_qsos` applies the absorbers of
:mod:`surveynet.sim.absorbers` in a fixed order (forest, Lyman-limit systems, BALs, DLAs), which is
part of the seeding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import C_KMS
from surveynet.sim import absorbers
from surveynet.sim.config import SpectraSimConfig
from surveynet.sim.grid import add_gaussians, master_grid, pixel_position
from surveynet.sim.instrument import DWAVE, N_MASTER

__all__ = [
    "QSO_INFO_COLUMNS",
    "QSO_LINES",
    "add_host_light",
    "make_qsos",
    "qso_continuum",
    "qso_line_profile",
]

#: Vanden Berk et al. (2001) Table 2 via simulation.md 2.2 (composite line centres, kept as
#: published): (name, rest vacuum A, EW A, sigma A)
QSO_LINES: tuple[tuple[str, float, float, float], ...] = (
    ("LYB_OVI", 1033.03, 9.77, 7.76),
    ("LYA", 1215.67, 92.91, 19.46),
    ("NV", 1240.14, 1.11, 2.71),
    ("OI_SIII", 1305.42, 1.66, 5.42),
    ("SIIV_OIV", 1399.41, 8.13, 12.50),
    ("CIV", 1549.06, 23.78, 14.33),
    ("HEII", 1640.42, 0.51, 4.43),
    ("CIII", 1908.73, 21.19, 23.58),
    ("FEII_UV", 2324.58, 3.56, 22.23),
    ("MGII", 2798.75, 32.28, 34.95),
    ("FEII_UV78", 2964.28, 4.93, 22.92),
    ("OII", 3728.48, 1.56, 3.32),
    ("NEIII", 3869.85, 1.38, 5.31),
    ("HDELTA", 4102.89, 5.05, 18.62),
    ("HGAMMA", 4341.68, 12.62, 20.32),
    ("FEII_OPT1", 4564.71, 19.52, 61.69),
    ("HBETA", 4862.68, 46.21, 40.44),
    ("OIII_4960", 4960.30, 3.50, 3.85),
    ("OIII_5008", 5008.24, 13.23, 6.04),
    ("FEII_OPT2", 5305.97, 21.47, 74.83),
    ("HEI", 5877.29, 4.94, 23.45),
    ("HALPHA", 6564.61, 194.52, 47.39),
    ("NII", 6585.28, 2.02, 2.65),
    ("SII_6718", 6718.29, 1.65, 3.09),
    ("SII_6733", 6732.67, 1.49, 2.54),
)

#: Per-quasar truth columns filled by :func:`make_qsos` (TRUTH and TRUTH_QSO).
QSO_INFO_COLUMNS = (
    "IS_BAL",
    "BI_CIV",
    "AI_CIV",
    "LOBAL",
    "N_DLA",
    "N_LLS",
    "ALPHA",
    "CIV_SHIFT",
    "TEMPLATEID",
    "FOREST_IN_TEMPLATE",
)


def qso_continuum(
    rng: np.random.Generator, z: NDArray[np.float64], cfg: SpectraSimConfig
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Broken power-law continua on the master grid.

    ln f = -(2 + a1) (x - ln 1450) + (a1 - a2) max(x - ln l_red, 0) + (a1 - ae) min(x - ln l_euv,
    0) with x = ln(lambda / (1 + z)); each slope has a Gaussian per-object scatter.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``qso_alpha_*`` and ``qso_break_*`` fields.

    Returns
    -------
    continuum : ndarray of shape (n, 7781), float32
        f_lambda, 1 at 1450 A rest.
    alpha : ndarray of shape (n,)
        The blue slope a1 of each quasar.
    """
    grid = master_grid()
    n = z.size
    a1 = cfg.qso_alpha_blue + cfg.qso_alpha_scatter * rng.standard_normal(n)
    a2 = cfg.qso_alpha_red + cfg.qso_alpha_scatter * rng.standard_normal(n)
    ae = cfg.qso_alpha_euv + cfg.qso_alpha_scatter * rng.standard_normal(n)
    # the break terms only touch contiguous column ranges of each row
    lz = np.log1p(z)
    p1 = (-(2.0 + a1)).astype(np.float32)
    lnf = np.multiply.outer(p1, grid.lnwave32)
    lnf -= (p1 * (lz + np.log(1450.0)).astype(np.float32))[:, None]
    i_red = np.searchsorted(grid.wave, cfg.qso_break_red * (1.0 + z))
    i_euv = np.searchsorted(grid.wave, cfg.qso_break_euv * (1.0 + z))
    for i in range(n):
        if i_red[i] < N_MASTER:
            lnf[i, i_red[i] :] += np.float32(a1[i] - a2[i]) * (
                grid.lnwave32[i_red[i] :] - np.float32(lz[i] + np.log(cfg.qso_break_red))
            )
        if i_euv[i] > 0:
            lnf[i, : i_euv[i]] += np.float32(a1[i] - ae[i]) * (
                grid.lnwave32[: i_euv[i]] - np.float32(lz[i] + np.log(cfg.qso_break_euv))
            )
    np.exp(lnf, out=lnf)
    return lnf, a1


def qso_line_profile(
    rng: np.random.Generator, z: NDArray[np.float64], cfg: SpectraSimConfig
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Emission-line profile L (n, 7781) on the master grid: the continuum is multiplied by 1 + L.

    L = sum_l A_l exp(-(lambda - lambda_l (1+z))^2 / 2 s_l^2), A = EW / (sqrt(2 pi) sigma) (simqso
    convention), EW and sigma with log-normal scatter; CIV blueshifted by U(0,
    civ_blueshift_max_kms).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    z : ndarray of shape (n,)
        Quasar redshifts.
    cfg : SpectraSimConfig
        ``line_*_scatter_dex`` and ``civ_blueshift_max_kms``.

    Returns
    -------
    profile : ndarray of shape (n, 7781), float32
        L.
    civ_shift : ndarray of shape (n,)
        CIV blueshift (km/s).
    """
    n = z.size
    nl = len(QSO_LINES)
    line_wave = np.array([x[1] for x in QSO_LINES])
    line_ew = np.array([x[2] for x in QSO_LINES])
    line_sig = np.array([x[3] for x in QSO_LINES])
    civ_index = [x[0] for x in QSO_LINES].index("CIV")
    ew = line_ew[None, :] * 10.0 ** (cfg.line_ew_scatter_dex * rng.standard_normal((n, nl)))
    sig = line_sig[None, :] * 10.0 ** (cfg.line_sigma_scatter_dex * rng.standard_normal((n, nl)))
    civ_shift = rng.uniform(0.0, cfg.civ_blueshift_max_kms, n)
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    for li in range(nl):
        lam = line_wave[li] * (1.0 + z)
        if li == civ_index:
            lam = lam * (1.0 - civ_shift / C_KMS)
        s_obs = sig[:, li] * (1.0 + z) / DWAVE
        amp = ew[:, li] / (np.sqrt(2 * np.pi) * sig[:, li])
        add_gaussians(prof, rows, pixel_position(lam), s_obs, amp)
    return prof[:, :N_MASTER], civ_shift


def add_host_light(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
    templates: Any,
) -> NDArray[np.float64]:
    """Add host-galaxy light to the quasars below ``qso_host_z_max``, in place (template mode).

    Each such quasar gets a host template (:meth:`~surveynet.sim.templates.TemplateLibrary.host`,
    1 at 5100 A rest) scaled to ``ratio`` times the quasar's mean f_lambda over 5050-5150 A rest,
    ``ratio`` log-uniform in ``qso_host_ratio_range`` (see :class:`SpectraSimConfig`). The total
    is normalised to the drawn magnitude afterwards, like every model.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Quasar continua on the master grid (modified).
    z : ndarray of shape (n,)
        Redshifts.
    cfg : SpectraSimConfig
        ``qso_host_*`` fields.
    templates : TemplateLibrary
        The template library.

    Returns
    -------
    ndarray of shape (n,)
        Host/AGN ratio at 5100 A rest (0 where no host was added).
    """
    from surveynet.sim.templates import HOST_NORM_WINDOW

    wave = master_grid().wave
    ratio = np.zeros(z.size)
    idx = np.nonzero(z < cfg.qso_host_z_max)[0]
    if idx.size == 0:
        return ratio
    lo, hi = np.log(cfg.qso_host_ratio_range[0]), np.log(cfg.qso_host_ratio_range[1])
    ratio[idx] = np.exp(rng.uniform(lo, hi, idx.size))
    host, _ = templates.host(rng, z[idx], wave)
    for j, i in enumerate(idx):
        win = (wave >= HOST_NORM_WINDOW[0] * (1.0 + z[i])) & (
            wave <= HOST_NORM_WINDOW[1] * (1.0 + z[i])
        )
        agn = float(np.mean(model[i, win])) if win.any() else 0.0
        if agn > 0:
            model[i] += np.float32(ratio[i] * agn) * host[j]
        else:
            ratio[i] = 0.0
    return ratio


def make_qsos(
    rng: np.random.Generator,
    z: NDArray[np.float64],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
    templates: Any,
    *,
    keep_dla_free: bool = False,
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Noise-free quasar models (simulator units) with all their absorbers, and their truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    z : ndarray of shape (n,)
        Redshifts.
    tid : ndarray of int64, shape (n,)
        TARGETIDs (for the DLA rows).
    cfg : SpectraSimConfig
        The configuration.
    templates : TemplateLibrary or None
        Template mode when given.
    keep_dla_free : bool
        Also return, as ``info["MODEL_NO_DLA"]``, a copy of the models just before the DLAs were
        multiplied in (draws unchanged).

    Returns
    -------
    model : ndarray of shape (n, 7781), float32
        Models on the master grid.
    info : dict
        The :data:`QSO_INFO_COLUMNS` arrays, ``DLAS`` (the DLA rows of
        :func:`surveynet.sim.absorbers.insert_dlas`) and, with ``keep_dla_free``,
        ``MODEL_NO_DLA``.
    """
    n = z.size
    info: dict[str, Any] = {}
    if templates is None:
        cont, alpha = qso_continuum(rng, z, cfg)
        lines, civ_shift = qso_line_profile(rng, z, cfg)
        lines += np.float32(1.0)
        lines *= cont
        model = lines
        info["ALPHA"] = alpha
        info["CIV_SHIFT"] = civ_shift
        info["TEMPLATEID"] = np.full(n, -1, dtype=np.int64)
        forest_in_template = False
    else:
        model, tmpl_id, forest_in_template = templates.qso(rng, z, master_grid().wave)
        info["ALPHA"] = np.full(n, np.nan)
        info["CIV_SHIFT"] = np.zeros(n)
        info["TEMPLATEID"] = tmpl_id
        if cfg.qso_host:
            add_host_light(rng, model, z, cfg, templates)
    if cfg.forest:
        absorbers.apply_forest(rng, model, z, cfg)
    if cfg.lyman_limit:
        info["N_LLS"] = absorbers.lyman_limit_systems(rng, model, z, cfg)
    else:
        info["N_LLS"] = np.zeros(n, dtype=np.int64)
    if templates is not None and cfg.bal_source == "templates":
        is_bal, bi, ai, lobal = absorbers.insert_bal_templates(
            rng, model, z, cfg, templates.bal_templates()
        )
    else:
        is_bal, bi, ai, lobal = absorbers.insert_bals(rng, model, z, cfg)
    if keep_dla_free:
        info["MODEL_NO_DLA"] = model.copy()
    dlas, n_dla = absorbers.insert_dlas(rng, model, z, tid, cfg)
    info.update(
        IS_BAL=is_bal,
        BI_CIV=bi,
        AI_CIV=ai,
        LOBAL=lobal,
        N_DLA=n_dla,
        DLAS=dlas,
        FOREST_IN_TEMPLATE=np.full(n, forest_in_template),
    )
    return model, info
