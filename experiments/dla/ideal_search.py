"""A blind search by an observer given each quasar's continuum and forest, or less (13th round).

    python experiments/dla/ideal_search.py MOCKSET CATALOG.fits OUT.fits [--s2n LO HI]
        [--given {forest,continuum,nothing}]

``ideal_observer.py`` gives each truth DLA the matched-filter S/N of an observer who also knows
where the DLA is. The completeness such an observer reaches at 90 % purity was only estimated
from a guessed number of independent trial positions. This script runs the search itself.

The mock set ``MOCKSET`` of ``make_mocks.py`` is regenerated in memory, with each quasar's
noise-free model before its absorbers (continuum times forest, in flux units). For every
sightline of CATALOG's QSOCAT (the sightlines and wavelength ranges the bundled finder searched;
``--s2n`` keeps a range of its S/N) the observer forms the residual r = model - flux per B/R/Z
pixel, with the model passed through the arm's LSF. Only the pixel noise and the absorbers
remain in r. Templates of Lyman-alpha absorbers at log N_HI 19.8-22.2 (b = 30 km/s, as the
mock's) are d = model x (1 - exp(-tau)). The log-likelihood gain of one absorber at
(lambda, N_HI) over none is dchi2 = 2 sum(d r ivar) - sum(d^2 ivar). It is evaluated at every
pixel of a 62,996 m/s log-wavelength grid (the finder's): the per-pixel sums are binned onto
that grid and correlated with each template, which is exact up to the binning.

Detections are made by matching pursuit. The largest sqrt(max over N_HI of dchi2) gives a
position and N_HI (grid step 0.1 dex). That template is subtracted from the residual, and the
next is sought outside the black core (optical depth 1) of each one found. The search stops
below 2. It runs over the searched range plus ~200 A on each side, so that absorbers just
outside are explained, but only detections inside the range are kept. The detections are
written as a DLA catalogue (DLA_CONFIDENCE = sqrt(dchi2); ABSORBER_TYPE DLA at N_HI >= 20.3,
else SUBDLA), so that
``heldout_figures.py`` scores them exactly as the finder's catalogue. The completeness at 90 %
purity there is the blind ideal observer's.

The model is used without the LSF inside the templates and without the absorbers' Lyman-beta
(the mocks insert Lyman-alpha only). The search is therefore slightly less than optimal, so its
figures are close to, but not above, what an observer with this knowledge could reach. A real
finder also has to estimate the continuum and forest, which this one is given.

``--given`` (fifteenth round) sets what the observer is given. ``forest`` (the default) is the
observer above. ``continuum``: it is not given the forest's realisation. Its model is the
DLA-free model after the LSF smoothed by a 61-pixel (~50 A) running mean (the continuum times the
local mean transmission), and the forest about that mean is extra white noise of its local
variance (the running mean of the squared difference over the same 61 pixels), as in the
forest-as-noise variant of ``ideal_observer.py``: the weights are 1 / (1 / ivar + var_forest).
``nothing``: it estimates that smooth model from the observed flux, as the ivar-weighted running
mean over 151 pixels (~120 A) with the forest variance from the running excess of the squared
residual over the pixel variance (:func:`data_model`); after a first search, the pixels within
twice the core half-width of each detection with sqrt(dchi2) >= 3 are left out of the running
means and the search is run again. The 61-pixel mean keeps the forest's average over ~50 A, a
few per cent of the continuum, but that part of its realisation is worth 1.9 points of
completeness at S/N > 3 to this searcher (sixteenth round). ``forest`` bounds what any finder can
reach; ``continuum`` is a linear searcher still handed the smooth continuum and the forest's
large-scale realisation, which a finder must estimate; ``nothing`` is a classical searcher that
works from the spectrum alone, as a finder must.

``family*`` (sixteenth round): an observer who knows how the mock makes a quasar but not which
quasar it is. The mock's continuum (``surveynet.sim.quasars``, parametric mode) is a broken power
law times Gaussian emission lines. Its amplitude, blue slope and the Lyman-alpha line are pinned
by the thousands of pixels redward of Lyman-alpha and are taken as known. Three parameters act
only in the forest and must be inferred there: the EUV slope below 1,100 A rest and the
Lyman-beta/OVI line's EW and width (:func:`regenerate_family` reads their true values by
replaying the simulator's draws). The smooth model is that continuum times the transmission's
~240 A running mean (the mean transmission: no realisation), the forest about it white noise of
its local variance. The three parameters are marginalised analytically, linearised
(:func:`family_projection`, the ``proj`` of :func:`search_sightline`): ``family`` with no prior
(least squares), ``family_bayes`` with the population's prior (its mean and widths, the Bayes
observer of this model), ``family_prior`` with the population's widths centred on the true
values (more than an observer can know), ``family_known`` with the parameters known.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy.ndimage import uniform_filter1d
from scipy.signal import fftconvolve

from surveynet.constants import C_KMS, LYA_REST
from surveynet.dla.catalog import Catalog, read_catalog, write_catalog
from surveynet.dla.config import BEST_V_MS
from surveynet.sim.igm import mean_transmission
from surveynet.sim.instrument import ARMS, BANDS, apply_resolution, master_wave
from surveynet.sim.quasars import QSO_LINES
from surveynet.sim.voigt import core_half_width, voigt_tau

sys.path.insert(0, str(Path(__file__).parent))
from ideal_observer import flux_scale, regenerate
from make_mocks import SETS

#: the finder's log-wavelength pixel (the B camera's 62,996 m/s; dla.md section 1.4)
DLOG = float(np.log10(1.0 + BEST_V_MS["b"] / (1e3 * C_KMS)))
NHI_GRID = tuple(np.round(np.arange(19.8, 22.45, 0.1), 2))
STAT_MIN = 2.0


def templates(b_kms: float = 30.0, z_ref: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Absorption profiles 1 - exp(-tau) of ``NHI_GRID`` on the log grid, centred at index W
    (in velocity they do not depend on the redshift), cut where the strongest one's optical depth
    falls below 0.01.
    """
    lam_c = LYA_REST * (1.0 + z_ref)
    tau_max = voigt_tau(lam_c * 10.0 ** (np.arange(1, 4000) * DLOG), z_ref, max(NHI_GRID))
    half = int(np.argmax(tau_max < 1e-2)) + 1
    j = np.arange(-half, half + 1)
    wave = lam_c * 10.0 ** (j * DLOG)
    k = np.stack([1.0 - np.exp(-voigt_tau(wave, z_ref, n, b_kms=b_kms)) for n in NHI_GRID])
    return k, j


def search_sightline(
    a: np.ndarray,
    b: np.ndarray,
    kern: np.ndarray,
    lo: int,
    hi: int,
    log_grid: np.ndarray,
    ext: int,
    proj: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[tuple[int, float, float]]:
    """Detections (bin, N_HI, sqrt(dchi2)) within bins ``lo..hi`` of the binned sums
    ``a = sum f0 r ivar`` and ``b = sum f0^2 ivar``, by matching pursuit over ``lo - ext ..
    hi + ext``: the best template is subtracted from the residual before the next one is sought,
    and none is sought inside the black core of one found before.

    ``proj = (cj, g_inv, jr)`` marginalises linear continuum parameters (``--given family``):
    ``cj`` (k, nbin) the binned sums of f0 w J_c, ``jr`` (k,) the sums of J_c w r over all pixels
    and ``g_inv`` the inverse of J^T w J plus the prior precision. The weights w are then
    replaced by P = w - w J g_inv J^T w in both sums (Woodbury: the covariance w^-1 + J C J^T).
    """
    half = (kern.shape[1] - 1) // 2
    den = np.stack([fftconvolve(b, (k * k)[::-1], mode="same") for k in kern])
    num = np.stack([fftconvolve(a, k[::-1], mode="same") for k in kern])
    h = dwj = None
    if proj is not None:
        cj, g_inv, jr = proj
        # dwj[t, c, i] = d^T w J_c for template t at bin i
        dwj = np.stack([np.stack([fftconvolve(c, k[::-1], mode="same") for c in cj]) for k in kern])
        h = np.einsum("tcn,cd->tdn", dwj, g_inv)
        num -= np.einsum("tdn,d->tn", h, jr)
        den -= np.einsum("tdn,tdn->tn", h, dwj)
    live = np.zeros(a.size, bool)
    live[max(lo - ext, 0) : hi + ext + 1] = True
    cols = np.arange(a.size)
    out = []
    for _ in range(50):
        dchi2 = 2.0 * num - den
        best = np.argmax(dchi2, axis=0)
        stat = np.where(live, np.sqrt(np.clip(dchi2[best, cols], 0.0, None)), 0.0)
        i = int(np.argmax(stat))
        if stat[i] < STAT_MIN:
            break
        nhi = NHI_GRID[best[i]]
        if lo <= i <= hi:
            out.append((i, nhi, float(stat[i])))
        j0, j1 = max(i - half, 0), min(i + half + 1, a.size)
        delta = np.zeros(a.size)
        delta[j0:j1] = kern[best[i], j0 - i + half : j1 - i + half] * b[j0:j1]
        num -= np.stack([fftconvolve(delta, k[::-1], mode="same") for k in kern])
        if h is not None and dwj is not None:
            num += np.einsum("tdn,d->tn", h, dwj[best[i], :, i])
        lam = 10.0 ** log_grid[i]
        core = core_half_width(nhi, lam / LYA_REST - 1.0)
        span = int(np.ceil(np.log10(1.0 + core / lam) / DLOG))
        live[max(i - span, 0) : i + span + 1] = False
    return out


def forest_as_noise(
    f0: np.ndarray, iv: np.ndarray, width: int = 61
) -> tuple[np.ndarray, np.ndarray]:
    """The smooth model (running mean of ``f0`` over ``width`` pixels) and the weights
    1 / (1 / ivar + var_forest) of an observer who takes the forest about that mean as white noise
    of its local variance; pixels with ivar 0 keep weight 0.

    Examples
    --------
    >>> f0 = np.tile([1.0, 0.0], 100)            # a forest of alternating 1 and 0 about 0.5
    >>> m, w = forest_as_noise(f0, np.full(200, 4.0), width=51)
    >>> bool(np.allclose(m[50:150], 0.5, atol=0.02)), round(float(w[100]), 1)  # 1 / (1/4 + 1/4)
    (True, 2.0)
    """
    m = uniform_filter1d(f0, width, mode="nearest")
    var = uniform_filter1d((f0 - m) ** 2, width, mode="nearest")
    ok = iv > 0
    w = np.zeros_like(iv)
    w[ok] = 1.0 / (1.0 / iv[ok] + var[ok])
    return m, w


def data_model(
    obs: np.ndarray, iv: np.ndarray, mask: np.ndarray, width: int = 151
) -> tuple[np.ndarray, np.ndarray]:
    """The smooth model and weights of an observer given nothing: the ivar-weighted running mean
    of the observed flux over ``width`` pixels (~120 A) without the ``mask``ed pixels, and
    1 / (1 / ivar + var_forest) with var_forest the running excess of the squared residual over
    the pixel variance.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> obs = 2.0 + rng.normal(0.0, 0.5, 2000)          # no forest: var_forest ~ 0
    >>> m, w = data_model(obs, np.full(2000, 4.0), np.zeros(2000, bool))
    >>> bool(abs(m[1000] - 2.0) < 0.1), bool(3.0 < w[1000] <= 4.0)
    (True, True)
    """
    ok = (iv > 0) & ~mask
    u = lambda x: uniform_filter1d(np.where(ok, x, 0.0), width, mode="nearest")  # noqa: E731
    den = u(iv)
    m = np.where(den > 0, u(obs * iv) / np.where(den > 0, den, 1.0), 0.0)
    n = u(np.ones_like(obs))
    n_safe = np.where(n > 0, n, 1.0)
    excess = (u((obs - m) ** 2) - u(1.0 / np.where(ok, iv, 1.0))) / n_safe
    var = np.clip(excess, 0.0, None)
    w = np.zeros_like(iv)
    w[iv > 0] = 1.0 / (1.0 / iv[iv > 0] + var[iv > 0])
    return m, w


def data_arms(arms: list, cores: list[tuple[float, float]] = ()) -> list:
    """``(f0, obs, weights, idx)`` per arm from ``(obs, ivar, idx, wave)`` by
    :func:`data_model`, with the pixels within each ``(wave, half width)`` of ``cores`` left out
    of the running means.
    """
    out = []
    for obs, iv, idx, wave in arms:
        mask = np.zeros(obs.size, bool)
        for lam, half in cores:
            mask |= np.abs(wave - lam) <= half
        m, w = data_model(obs, iv, mask)
        out.append((m, obs, w, idx))
    return out


def binned(arms: list, nbin: int) -> tuple[np.ndarray, np.ndarray]:
    """``a = sum f0 (f0 - obs) w`` and ``b = sum f0^2 w`` on the search grid over the arms'
    ``(f0, obs, w, idx)``.
    """
    a = np.zeros(nbin)
    b = np.zeros(nbin)
    for f0, obs, w, idx in arms:
        np.add.at(a, idx, f0 * (f0 - obs) * w)
        np.add.at(b, idx, f0 * f0 * w)
    return a, b


REST_GRID = np.arange(850.0, 1450.0, 1.0)


def forest_mean(wave: np.ndarray, z_qso: float, fit: str) -> np.ndarray:
    """Mean Lyman-alpha transmission at observed ``wave`` blueward of the quasar's Lyman-alpha
    (1 redward).
    """
    z_abs = wave / LYA_REST - 1.0
    return np.where(z_abs < z_qso, mean_transmission(np.clip(z_abs, 0.0, None), fit), 1.0)


def mean_shape(set_name: str) -> np.ndarray:
    """The population's mean rest-frame continuum shape on ``REST_GRID``: the median over the
    quasars of mock ``set_name`` of the DLA-free model divided by the mean transmission, each
    normalised to its mean over 1,050-1,180 A.
    """
    spec, truth, final, kept, row_of = regenerate(set_name)
    cfg = SETS[set_name]["config"]
    master = master_wave()
    tt = truth["TRUTH"]
    z = {int(t): float(v) for t, v in zip(tt["TARGETID"], tt["Z"], strict=True)}
    curves = []
    for tid, k in row_of.items():
        zq = z[tid]
        if zq < 2.0:
            continue
        m0 = kept[tid][0] if tid in kept else final[k]
        rest = master / (1.0 + zq)
        c = np.interp(REST_GRID, rest, m0 / forest_mean(master, zq, cfg.forest_fit), np.nan, np.nan)
        norm = np.nanmean(c[(REST_GRID >= 1050.0) & (REST_GRID <= 1180.0)])
        if np.isfinite(norm) and norm > 0:
            curves.append(c / norm)
    return np.nanmedian(np.array(curves), axis=0)


def picca_arms(
    arms: list, shape: np.ndarray, z_qso: float, fit: str, span: tuple[float, float], cores=()
) -> list:
    """``(f0, obs, weights, idx)`` per arm for an observer who knows the population's mean shape
    and mean transmission and fits each quasar's amplitude and tilt, C = shape x F x (a + b x),
    x = log10(wave / 4000 A), to the pixels within ``span`` (A) outside the ``cores``, by weighted
    least squares with the forest's relative variance fitted as well (3 iterations). Pixels
    outside ``span`` or the shape's range get weight 0.
    """
    rows = []
    for obs, iv, idx, wave in arms:
        base = np.interp(wave / (1.0 + z_qso), REST_GRID, shape, np.nan, np.nan)
        base = base * forest_mean(wave, z_qso, fit)
        use = (wave >= span[0]) & (wave <= span[1]) & np.isfinite(base) & (iv > 0)
        fit_px = use.copy()
        for lam, half in cores:
            fit_px &= np.abs(wave - lam) > half
        rows.append((obs, iv, idx, wave, np.nan_to_num(base), use, fit_px))
    o = np.concatenate([r[0][r[6]] for r in rows])
    v = np.concatenate([r[1][r[6]] for r in rows])
    g = np.concatenate([r[4][r[6]] for r in rows])
    x = np.concatenate([np.log10(r[3][r[6]] / 4000.0) for r in rows])
    coef, var_rel = np.array([1.0, 0.0]), 0.1
    if o.size > 10:
        for _ in range(3):
            mdl = g * (coef[0] + coef[1] * x)
            w = 1.0 / (1.0 / v + var_rel * mdl**2)
            a_mat = np.stack([g, g * x], axis=1)
            coef = np.linalg.lstsq(a_mat * np.sqrt(w)[:, None], o * np.sqrt(w), rcond=None)[0]
            mdl = g * (coef[0] + coef[1] * x)
            var_rel = max(float(np.sum((o - mdl) ** 2 - 1.0 / v) / np.sum(mdl**2)), 0.0)
    out = []
    for obs, iv, idx, wave, base, use, _ in rows:
        mdl = base * (coef[0] + coef[1] * np.log10(wave / 4000.0))
        w = np.zeros_like(iv)
        w[use] = 1.0 / (1.0 / iv[use] + var_rel * mdl[use] ** 2)
        out.append((mdl, obs, w, idx))
    return out


#: rest wavelength (A) and population EW / sigma (A) of the mock's Lyman-beta/OVI line
#: (``surveynet.sim.quasars.QSO_LINES`` row 0, Vanden Berk et al. 2001)
OVI_REST, OVI_EW, OVI_SIGMA = QSO_LINES[0][1:]


def regenerate_family(set_name: str):
    """:func:`ideal_observer.regenerate` plus, per row, the quasar's continuum before the forest
    (simulator units, the emission lines included) and the true values of the three continuum
    parameters that the red side leaves free: the EUV slope and the Lyman-beta/OVI line's EW and
    sigma (rest A). The simulator is run unchanged (same draws, bit-identical mock); the
    parameters are read by replaying the generator's draws on a copy of it.
    """
    from surveynet.sim import absorbers, quasars

    conts: list[np.ndarray] = []
    pars: list[np.ndarray] = []
    orig = (quasars.qso_continuum, quasars.qso_line_profile, absorbers.apply_forest)

    def continuum(rng, z, cfg):  # a1, a2, ae are drawn in that order
        r2 = copy.deepcopy(rng)
        r2.standard_normal(z.size), r2.standard_normal(z.size)
        pars.append(cfg.qso_alpha_euv + cfg.qso_alpha_scatter * r2.standard_normal(z.size))
        return orig[0](rng, z, cfg)

    def lines(rng, z, cfg):  # EW then sigma scatter, (n, lines) each; OVI is line 0
        r2 = copy.deepcopy(rng)
        shape = (z.size, len(QSO_LINES))
        ew = OVI_EW * 10.0 ** (cfg.line_ew_scatter_dex * r2.standard_normal(shape)[:, 0])
        sig = OVI_SIGMA * 10.0 ** (cfg.line_sigma_scatter_dex * r2.standard_normal(shape)[:, 0])
        pars[-1] = np.stack([pars[-1], ew, sig], axis=1)
        return orig[1](rng, z, cfg)

    def forest(rng, model, z, cfg):
        conts.append(model.copy())
        return orig[2](rng, model, z, cfg)

    quasars.qso_continuum, quasars.qso_line_profile, absorbers.apply_forest = (
        continuum,
        lines,
        forest,
    )
    try:
        spec, truth, final, kept, row_of = regenerate(set_name)
    finally:
        quasars.qso_continuum, quasars.qso_line_profile, absorbers.apply_forest = orig
    cont, par = np.concatenate(conts), np.concatenate(pars)
    if cont.shape[0] != final.shape[0]:
        raise RuntimeError(f"{set_name}: {cont.shape[0]} continua for {final.shape[0]} rows")
    return spec, truth, final, kept, row_of, cont, par


def ovi_line(rest: np.ndarray, ew: float, sig: float) -> np.ndarray:
    """The mock's Lyman-beta/OVI emission L = EW / (sqrt(2 pi) sigma) exp(-u^2 / 2) (rest A)."""
    u = (rest - OVI_REST) / sig
    return ew / (np.sqrt(2.0 * np.pi) * sig) * np.exp(-0.5 * u * u)


def prior_of(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and standard deviation of (EUV slope, OVI EW in A, ln OVI sigma): the
    simulator's normal slope, and the moments of its log-normal EW (10^(0.2 N) scatter).
    """
    s_ew = cfg.line_ew_scatter_dex * np.log(10.0)
    ew_mean = OVI_EW * np.exp(0.5 * s_ew**2)
    mean = np.array([cfg.qso_alpha_euv, ew_mean, np.log(OVI_SIGMA)])
    sd = np.array(
        [
            cfg.qso_alpha_scatter,
            ew_mean * np.sqrt(np.expm1(s_ew**2)),
            cfg.line_sigma_scatter_dex * np.log(10.0),
        ]
    )
    return mean, sd


def family_arms(
    m0: np.ndarray,
    cont: np.ndarray,
    par: np.ndarray,
    z_qso: float,
    spec,
    k: int,
    cfg,
    bin_of,
    centre: str = "truth",
    window: int = 301,
) -> list:
    """``(f0, obs, weights, idx, J)`` per arm of an observer who knows the continuum family.

    The smooth model is s = C x F, C the continuum in flux units (the true one scaled to the
    DLA-free model ``m0`` redward of 1,560 A rest), F the transmission's running mean over
    ``window`` master pixels (301: ~240 A). The forest about the true s is white noise of its
    local (61-pixel) variance. J holds the derivatives of s in the three parameters the red side
    leaves free: the EUV slope (s ln(1100 A / lambda_rest) below the break), the Lyman-beta/OVI
    line's EW (P L / EW) and ln sigma at fixed EW (P L (u^2 - 1)), with P = C / (1 + L) the
    continuum under the line L and u its standardised offset. ``centre="truth"`` evaluates s
    and J at the quasar's true parameters, ``"population"`` at the population's mean
    (:func:`prior_of`): C then has the mean OVI line in place of the true one and the mean EUV
    slope.
    """
    master = master_wave()
    rest = master / (1.0 + z_qso)
    c_sim = cont.astype(np.float64)
    red = (rest > 1560.0) & (c_sim > 0)
    c_f = c_sim * float(np.median(m0[red] / c_sim[red]))
    t = np.where(c_f > 0, m0 / np.where(c_f > 0, c_f, 1.0), 1.0)
    f_mean = uniform_filter1d(t, window, mode="nearest")
    s_true = c_f * f_mean
    euv = np.where(rest < cfg.qso_break_euv, np.log(cfg.qso_break_euv / rest), 0.0)
    line_t = ovi_line(rest, par[1], par[2])
    if centre == "truth":
        ae, ew, sig, line = par[0], par[1], par[2], line_t
        s = s_true
    else:
        ae, ew, log_sig = prior_of(cfg)[0]
        sig = float(np.exp(log_sig))
        line = ovi_line(rest, ew, sig)
        s = s_true * (1.0 + (line - line_t) / (1.0 + line_t)) * np.exp((ae - par[0]) * euv)
    u = (rest - OVI_REST) / sig
    under = s / (1.0 + line) * line
    jac = np.stack([s * euv, under / ew, under * (u * u - 1.0)])
    arms = []
    for band in BANDS:
        off, npx = ARMS[band]
        lsf = cfg.lsf_sigma(band)
        f0 = apply_resolution(s[None, off : off + npx], lsf)[0].astype(np.float64)
        f0_true = apply_resolution(s_true[None, off : off + npx], lsf)[0].astype(np.float64)
        m_arm = apply_resolution(m0[None, off : off + npx], lsf)[0].astype(np.float64)
        j_arm = apply_resolution(jac[:, off : off + npx], lsf).astype(np.float64)
        iv = np.asarray(spec.ivar[band][k], np.float64)
        var = uniform_filter1d((m_arm - f0_true) ** 2, 61, mode="nearest")
        w = np.zeros_like(iv)
        w[iv > 0] = 1.0 / (1.0 / iv[iv > 0] + var[iv > 0])
        obs = np.asarray(spec.flux[band][k], np.float64)
        arms.append((f0, obs, w, bin_of[off : off + npx], j_arm))
    return arms


def family_projection(
    arms: list, nbin: int, prior_sd: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cj, g_inv, jr)`` of :func:`search_sightline` from :func:`family_arms`: a flat prior on
    the three parameters (``prior_sd`` None) or a Gaussian prior of those widths centred on the
    true values.
    """
    nj = arms[0][4].shape[0]
    cj = np.zeros((nj, nbin))
    g = np.zeros((nj, nj))
    jr = np.zeros(nj)
    for f0, obs, w, idx, jac in arms:
        for c in range(nj):
            np.add.at(cj[c], idx, f0 * w * jac[c])
        g += (jac * w) @ jac.T
        jr += (jac * w) @ (f0 - obs)
    if prior_sd is not None:
        g += np.diag(1.0 / prior_sd**2)
    return cj, np.linalg.pinv(g, rcond=1e-10), jr


def main(
    set_name: str,
    catalog: str,
    out: str,
    s2n: tuple[float, float],
    given: str = "forest",
    shape_mock: str = "test_desi2",
    window: int = 301,
) -> Catalog:
    shape = mean_shape(shape_mock) if given == "mean" else None
    cfg = SETS[set_name]["config"]
    family = given.startswith("family")
    if family:
        spec, truth, final, kept, row_of, conts, pars = regenerate_family(set_name)
        # family: no prior; family_prior: the population's widths centred on the truth;
        # family_bayes: the population's prior (mean and widths); family_known: none free
        prior_sd = None if given in ("family", "family_known") else prior_of(cfg)[1]
        centre = "population" if given == "family_bayes" else "truth"
    else:
        spec, truth, final, kept, row_of = regenerate(set_name)
    master = master_wave()
    log0 = np.log10(master[0])
    nbin = int(np.ceil((np.log10(master[-1]) - log0) / DLOG)) + 1
    grid = log0 + DLOG * np.arange(nbin)
    bin_of = np.floor((np.log10(master) - log0) / DLOG + 0.5).astype(np.int64)
    kern, _ = templates(cfg.dla_b_kms)
    ext = int(np.ceil(np.log10(1.0 + 200.0 / 4000.0) / DLOG))  # ~200 A beyond the range
    q = read_catalog(catalog).qsos
    q = q[(np.asarray(q["S2N"], float) > s2n[0]) & (np.asarray(q["S2N"], float) < s2n[1])]
    keys = ("TARGETID", "Z_QSO", "Z_DLA", "NHI", "STAT", "S2N", "DLAID")
    rows: dict[str, list] = {c: [] for c in keys}
    for n_done, qrow in enumerate(q):
        tid = int(qrow["TARGETID"])
        k = row_of[tid]
        if tid in kept:
            pre, post = kept[tid]
            m0 = flux_scale(final[k], post) * pre.astype(np.float64)
        else:
            m0 = final[k].astype(np.float64)
        lo = int(np.searchsorted(grid, np.log10(float(qrow["WAVE_MIN"]))))
        hi = int(np.searchsorted(grid, np.log10(float(qrow["WAVE_MAX"])))) - 1
        arms = []
        proj = None
        if family:
            z_true = float(truth["TRUTH"]["Z"][k])
            arms = family_arms(m0, conts[k], pars[k], z_true, spec, k, cfg, bin_of, centre, window)
            if given != "family_known":
                proj = family_projection(arms, nbin, prior_sd)
            arms = [arm[:4] for arm in arms]
        for band in () if family else BANDS:
            off, npx = ARMS[band]
            obs = np.asarray(spec.flux[band][k], np.float64)
            iv = np.asarray(spec.ivar[band][k], np.float64)
            idx = bin_of[off : off + npx]
            if given in ("nothing", "mean"):
                arms.append((obs, iv, idx, master[off : off + npx]))
                continue
            f0 = apply_resolution(m0[None, off : off + npx], cfg.lsf_sigma(band))[0]
            f0 = f0.astype(np.float64)
            if given == "continuum":
                f0, iv = forest_as_noise(f0, iv)
            arms.append((f0, obs, iv, idx))
        if given == "nothing":
            # pass 1 on the running means of the data; pass 2 with the cores found masked
            found = search_sightline(
                *binned(data_arms(arms), nbin), kern, lo - ext, hi + ext, grid, 0
            )
            cores = [
                (10.0 ** grid[i], 2.0 * core_half_width(n, 10.0 ** grid[i] / LYA_REST - 1.0))
                for i, n, st in found
                if st >= 3.0
            ]
            arms = data_arms(arms, cores)
        elif given == "mean":
            zq = float(qrow["Z_QSO"])
            span = (10.0 ** grid[max(lo - ext, 0)], 10.0 ** grid[min(hi + ext, nbin - 1)])
            first = picca_arms(arms, shape, zq, cfg.forest_fit, span)
            found = search_sightline(*binned(first, nbin), kern, lo - ext, hi + ext, grid, 0)
            cores = [
                (10.0 ** grid[i], 2.0 * core_half_width(n, 10.0 ** grid[i] / LYA_REST - 1.0))
                for i, n, st in found
                if st >= 3.0
            ]
            arms = picca_arms(arms, shape, zq, cfg.forest_fit, span, cores)
        a, b = binned(arms, nbin)
        found = search_sightline(a, b, kern, lo, hi, grid, ext, proj)
        for j, (i, nhi, stat) in enumerate(found):
            rows["DLAID"].append(tid * 1000 + j)
            rows["TARGETID"].append(tid)
            rows["Z_QSO"].append(float(qrow["Z_QSO"]))
            rows["Z_DLA"].append(10.0 ** grid[i] / LYA_REST - 1.0)
            rows["NHI"].append(nhi)
            rows["STAT"].append(stat)
            rows["S2N"].append(float(qrow["S2N"]))
        if (n_done + 1) % 2000 == 0:
            print(f"{n_done + 1} / {len(q)} sightlines", file=sys.stderr)
    tid = np.array(rows["TARGETID"], np.int64)
    dlas = Table(
        {
            "TARGETID": tid,
            "Z_QSO": np.array(rows["Z_QSO"]),
            "Z_DLA": np.array(rows["Z_DLA"]),
            "NHI": np.array(rows["NHI"]),
            "NHI_STD": np.zeros(tid.size),
            "DLA_CONFIDENCE": np.array(rows["STAT"]),
            "ABSORBER_TYPE": np.where(np.array(rows["NHI"]) >= 20.3, "DLA", "SUBDLA"),
            "S2N": np.array(rows["S2N"]),
            "DLAID": np.array(rows["DLAID"], np.int64),
            "TARGET_RA": np.zeros(tid.size),
            "TARGET_DEC": np.zeros(tid.size),
        }
    )
    result = Catalog(dlas=dlas, qsos=q)
    name = "ideal_search" if given == "forest" else f"ideal_search_given_{given}"
    write_catalog(out, result, overwrite=True, model_name=name)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mockset")
    ap.add_argument("catalog")
    ap.add_argument("out")
    ap.add_argument("--s2n", nargs=2, type=float, default=(0.0, 1e9))
    ap.add_argument(
        "--given",
        choices=(
            "forest",
            "continuum",
            "family",
            "family_prior",
            "family_known",
            "family_bayes",
            "mean",
            "nothing",
        ),
        default="forest",
        help="what the observer is given: the continuum and forest (default), the smooth "
        "continuum only (the forest as white noise), the continuum's family with its free "
        "parameters fitted (family: no prior; family_prior: a prior of the population's widths "
        "centred on the truth; family_bayes: the population's prior; family_known: the "
        "parameters known), the population's mean "
        "continuum shape "
        "(amplitude and tilt fitted per quasar), or nothing (running means of the data)",
    )
    ap.add_argument(
        "--shape-mock", default="test_desi2", help="mock set of the mean shape (--given mean)"
    )
    ap.add_argument(
        "--window",
        type=int,
        default=301,
        help="master pixels of the transmission's running mean (--given family*; 301 = ~240 A)",
    )
    ns = ap.parse_args()
    main(ns.mockset, ns.catalog, ns.out, tuple(ns.s2n), ns.given, ns.shape_mock, ns.window)
