"""Star models on the master grid: Planck continua with absorption lines, or Pickles templates.

Line lists are vacuum wavelengths (simulation.md 2.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import C_KMS
from surveynet.sim.config import SpectraSimConfig
from surveynet.sim.grid import add_rest_lines, master_grid
from surveynet.sim.instrument import N_MASTER

__all__ = [
    "BALMER",
    "CA_HK",
    "HC_OVER_K",
    "HE_LINES",
    "MG_B",
    "NA_D",
    "TIO_HEADS",
    "cv_emission",
    "make_stars",
    "molecular_bands",
    "star_subtype",
]

#: stellar absorption lines (vacuum A; simulation.md 2.4)
BALMER = (6564.61, 4862.68, 4341.68, 4102.89)
CA_HK = (3934.77, 3969.59)
NA_D = (5891.58, 5897.56)
MG_B = (5168.76, 5174.12, 5185.04)
#: TiO band heads (A, approximate) with the redward recovery scale 150 A (design)
TIO_HEADS = (6158.0, 7053.0, 7666.0, 8432.0)
#: helium emission lines of cataclysmic variables (vacuum A): HeI 4472, 5877, 6680, HeII 4687
HE_LINES = (4472.73, 5877.25, 6679.99, 4687.02)
#: h c / k_B (A K), for the Planck function
HC_OVER_K = 1.438777e8


def star_subtype(teff: NDArray[np.float64]) -> NDArray[np.str_]:
    """Spectral class (O, B, A, F, G, K, M) of effective temperatures.

    Parameters
    ----------
    teff : ndarray
        T_eff (K).

    Returns
    -------
    ndarray of str

    Examples
    --------
    >>> star_subtype(np.array([3000.0, 5800.0, 40000.0])).tolist()
    ['M', 'G', 'O']
    """
    edges = np.array([3700.0, 5200.0, 6000.0, 7500.0, 10000.0, 30000.0])
    names = np.array(["M", "K", "G", "F", "A", "B", "O"])
    return names[np.searchsorted(edges, teff)]


def molecular_bands(
    rng: np.random.Generator, n: int, wave: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Transmission of 1-4 synthetic molecular bands per star, shape (n, wave.size).

    Each band has a sharp head at an observed wavelength uniform in 3,800-9,800 A and a depth d
    uniform in 0.2-0.9; on one side of the head (red or blue, even odds) the transmission is
    1 - d exp(-|lambda - head| / L) with L log-uniform in 30-400 A, on the other 1. Bands
    multiply. This is the shape of the TiO, VO and CaH bands of M dwarfs (degraded to the red)
    and of the C2 and CN bands of carbon stars (degraded to the blue), with random heads so that
    no real band list is copied.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    n : int
        Number of stars.
    wave : ndarray
        Observed wavelengths (A).

    Returns
    -------
    ndarray of float32, shape (n, wave.size)
        Transmission in (0, 1].

    Examples
    --------
    >>> t = molecular_bands(np.random.default_rng(0), 3, np.linspace(3600.0, 9800.0, 500))
    >>> t.shape, bool(t.min() > 0.0), bool(t.max() <= 1.0), bool((t < 0.99).any(axis=1).all())
    ((3, 500), True, True, True)
    """
    out = np.ones((n, wave.size), dtype=np.float32)
    n_bands = rng.integers(1, 5, n)
    for k in range(n):
        for _ in range(int(n_bands[k])):
            head = rng.uniform(3800.0, 9800.0)
            depth = rng.uniform(0.2, 0.9)
            scale = np.exp(rng.uniform(np.log(30.0), np.log(400.0)))
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            x = side * (wave - head)
            out[k] *= np.where(x >= 0.0, 1.0 - depth * np.exp(-x / scale), 1.0).astype(np.float32)
    return out


def cv_emission(rng: np.random.Generator, z: NDArray[np.float64]) -> NDArray[np.float32]:
    """Factor 1 + L of broad Balmer and helium emission lines of cataclysmic variables.

    L is relative to the local continuum, shape (z.size, N_MASTER) on the master grid, added by
    :func:`surveynet.sim.grid.add_rest_lines` as the parametric stars' lines. Per star: H-alpha
    rest EW log-uniform in 20-200 A; H-beta = H-alpha x U(0.4, 1.0), H-gamma 0.7 and H-delta
    0.5 x H-beta; HeI 4472 and HeI 5877 x U(0.05, 0.3) of H-beta and H-alpha, HeI 6680 0.1 x
    H-alpha, HeII 4687 x U(0, 0.8) of H-beta; one Gaussian sigma U(8, 25) A for all lines (FWHM
    ~ 1,000-3,000 km/s, broad accretion-disc lines). A design choice, not a fit: a generic
    family of emission-line stars, not a copy of any library.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    z : ndarray of shape (n,)
        Radial velocity / c.

    Returns
    -------
    ndarray of float32, shape (n, N_MASTER)
        1 + L >= 1.

    Examples
    --------
    >>> from surveynet.sim.grid import pixel_position
    >>> f = cv_emission(np.random.default_rng(0), np.zeros(2))
    >>> ha = int(round(float(pixel_position(np.array(6564.61)))))
    >>> bool(f.min() >= 1.0), bool((f[:, ha] > 1.5).all())
    (True, True)
    """
    n = z.size
    ha = np.exp(rng.uniform(np.log(20.0), np.log(200.0), n))
    hb = ha * rng.uniform(0.4, 1.0, n)
    ews = (
        ha,
        hb,
        0.7 * hb,
        0.5 * hb,
        hb * rng.uniform(0.05, 0.3, n),
        ha * rng.uniform(0.05, 0.3, n),
        0.1 * ha,
        hb * rng.uniform(0.0, 0.8, n),
    )
    sig = rng.uniform(8.0, 25.0, n)
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    for lam, ew in zip(BALMER + HE_LINES, ews, strict=True):
        add_rest_lines(prof, rows, lam, z, sig, ew)
    return np.float32(1.0) + prof[:, :N_MASTER]


def _generic_families(
    rng: np.random.Generator,
    cfg: SpectraSimConfig,
    model: NDArray[np.float32],
    star: NDArray[np.bool_],
    cv: NDArray[np.bool_],
    z: NDArray[np.float64],
    wave: NDArray[np.float64],
) -> None:
    """Apply the generic star families to Pickles rows of ``model``, in place.

    The ``star_bands`` share of the main-sequence rows ``star`` is multiplied by
    :func:`molecular_bands` and, with ``star_cv_lines``, the CV rows ``cv`` by
    :func:`cv_emission`; nothing is drawn when both options are off.
    """
    if cfg.star_bands > 0:
        banded = (rng.uniform(0.0, 1.0, star.size) < cfg.star_bands) & star
        if banded.any():
            model[banded] *= molecular_bands(rng, int(banded.sum()), wave)
    if cfg.star_cv_lines and cv.any():
        model[cv] *= cv_emission(rng, z[cv])


def _redrock_stars(
    rng: np.random.Generator,
    cfg: SpectraSimConfig,
    templates: Any,
    teff: NDArray[np.float64],
    z: NDArray[np.float64],
    sub: NDArray[np.str_],
    wave: NDArray[np.float64],
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Stars of ``star_library`` = ``redrock`` or ``mixed`` (after the Pickles-mode draws).

    Each star is a redrock archetype with probability 1 (``redrock``) or ``star_redrock_share``
    (``mixed``); those get a subtype drawn with ``star_redrock_fractions``
    (:data:`surveynet.sim.templates.REDROCK_STAR_SUBTYPES`) and TEFF NaN; the others stay
    Pickles stars of the drawn T_eff.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    cfg : SpectraSimConfig
        ``star_library``, ``star_redrock_fractions``, ``star_redrock_share``.
    templates : TemplateLibrary
        The template library.
    teff, z : ndarray of shape (n,)
        Drawn T_eff (K) and radial velocity / c.
    sub : ndarray of str, shape (n,)
        Pickles-mode subtypes (kept for the Pickles stars).
    wave : ndarray
        Master-grid wavelengths (A).

    Returns
    -------
    model : ndarray of shape (n, wave.size), float32
    info : dict
        ``Z``, ``TEFF``, ``SUBTYPE``, ``TEMPLATEID`` arrays.
    """
    from surveynet.sim.templates import REDROCK_STAR_SUBTYPES

    n = z.size
    share = 1.0 if cfg.star_library == "redrock" else cfg.star_redrock_share
    rr = rng.uniform(0.0, 1.0, n) < share
    fr = np.asarray(cfg.star_redrock_fractions, dtype=np.float64)
    rr_sub = np.array(REDROCK_STAR_SUBTYPES)[rng.choice(fr.size, size=n, p=fr / fr.sum())]
    sub = np.where(rr, rr_sub, sub).astype("<U2")
    teff = np.where(rr, np.nan, teff)
    model = np.zeros((n, wave.size), dtype=np.float32)
    tmpl = np.full(n, -1, dtype=np.int64)
    if (~rr).any():
        model[~rr], tmpl[~rr] = templates.star(rng, teff[~rr], z[~rr], wave)
    if rr.any():
        model[rr], tmpl[rr] = templates.redrock_star(rng, sub[rr], z[rr], wave)
    pickles_star = ~rr & ~np.isin(sub, ["WD", "CV"])
    _generic_families(rng, cfg, model, pickles_star, ~rr & (sub == "CV"), z, wave)
    return model, {"Z": z, "TEFF": teff, "SUBTYPE": sub, "TEMPLATEID": tmpl}


def make_stars(
    rng: np.random.Generator, n: int, cfg: SpectraSimConfig, templates: Any
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Noise-free star models on the master grid (simulator units) and their truth.

    Main-sequence stars (log-uniform T_eff in ``star_teff_range``), white dwarfs (broad Balmer
    absorption) and cataclysmic variables (Balmer emission), with radial velocities uniform in
    +-``star_rv_kms``. Parametric mode: a Planck continuum with Balmer, Ca H&K, Na D, Mg b
    absorption and TiO bands below 4000 K; template mode: the Pickles spectrum nearest in T_eff
    (a ``star_bands`` share of the main-sequence ones times :func:`molecular_bands`; with
    ``star_cv_lines`` the CVs times :func:`cv_emission`), or with
    ``star_library`` = ``redrock``/``mixed`` redrock archetypes (:func:`_redrock_stars`).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    n : int
        Number of stars.
    cfg : SpectraSimConfig
        ``star_*`` fields.
    templates : TemplateLibrary or None
        Template mode when given.

    Returns
    -------
    model : ndarray of shape (n, 7781), float32
    info : dict
        ``Z``, ``TEFF``, ``SUBTYPE``, ``TEMPLATEID`` arrays.
    """
    wave = master_grid().wave
    rv = rng.uniform(-cfg.star_rv_kms, cfg.star_rv_kms, n)
    z = rv / C_KMS
    u = rng.uniform(0.0, 1.0, n)
    kind = np.where(
        u < cfg.star_wd_fraction,
        "WD",
        np.where(u < cfg.star_wd_fraction + cfg.star_cv_fraction, "CV", "STAR"),
    )
    lo, hi = cfg.star_teff_range
    teff = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    teff = np.where(kind == "WD", rng.uniform(8000.0, 30000.0, n), teff)
    teff = np.where(kind == "CV", rng.uniform(10000.0, 20000.0, n), teff)
    sub = np.where(kind == "STAR", star_subtype(teff), kind)
    if templates is not None and cfg.star_library != "pickles":
        return _redrock_stars(rng, cfg, templates, teff, z, sub, wave)
    if templates is not None:
        model, tmpl = templates.star(rng, teff, z, wave)
        _generic_families(rng, cfg, model, kind == "STAR", kind == "CV", z, wave)
        return model, {"Z": z, "TEFF": teff, "SUBTYPE": sub, "TEMPLATEID": tmpl}
    # Planck B_lambda (the +-300 km/s radial velocity is negligible for the continuum)
    x = np.multiply.outer((1.0 / teff).astype(np.float32), (HC_OVER_K / wave).astype(np.float32))
    np.minimum(x, np.float32(80.0), out=x)
    np.expm1(x, out=x)
    cont = np.divide(((wave / 5500.0) ** -5.0).astype(np.float32), x, out=x)
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    lt = np.log10(teff / 9500.0)
    bal_ew = 1.0 + 9.0 * np.exp(-0.5 * (lt / 0.12) ** 2)
    bal_sig = np.full(n, 5.0)
    wd = kind == "WD"
    bal_ew = np.where(wd, rng.uniform(30.0, 80.0, n), bal_ew)
    bal_sig = np.where(wd, rng.uniform(30.0, 60.0, n), bal_sig)
    cv = kind == "CV"
    bal_ew = np.where(cv, -rng.uniform(20.0, 80.0, n), bal_ew)  # emission
    bal_sig = np.where(cv, 10.0, bal_sig)
    cool = ~(wd | cv)

    def add(lines: tuple[float, ...], ew: NDArray[np.float64], sig: NDArray[np.float64]) -> None:
        """Add absorption lines to ``prof``.

        Parameters
        ----------
        lines : tuple of float
            Rest wavelengths (A).
        ew, sig : ndarray of shape (n,)
            Rest equivalent width and sigma (A) per star (negative EW: emission).
        """
        for lam in lines:
            add_rest_lines(prof, rows, lam, z, sig, -ew)

    add(BALMER, bal_ew, bal_sig)
    add(CA_HK, np.where(cool, 12.0 * np.clip((8000.0 - teff) / 3000.0, 0, 1), 0.0), np.full(n, 3.0))
    add(NA_D, np.where(cool, 3.0 * np.clip((6000.0 - teff) / 2000.0, 0, 1), 0.0), np.full(n, 2.0))
    add(MG_B, np.where(cool, 2.0 * np.clip((6500.0 - teff) / 2500.0, 0, 1), 0.0), np.full(n, 2.0))
    model = cont * np.maximum(np.float32(1.0) + prof[:, :N_MASTER], np.float32(0.02))
    mstar = np.nonzero(cool & (teff < 4000.0))[0]
    for i in mstar:
        d = 0.7 * min((4000.0 - teff[i]) / 1000.0, 1.0)
        for head in TIO_HEADS:
            h = head * (1.0 + z[i])
            j0 = int(np.searchsorted(wave, h))
            j1 = int(np.searchsorted(wave, h + 600.0))
            model[i, j0:j1] *= (1.0 - d * np.exp(-(wave[j0:j1] - h) / 150.0)).astype(np.float32)
    return model, {
        "Z": z,
        "TEFF": teff,
        "SUBTYPE": sub,
        "TEMPLATEID": np.full(n, -1, dtype=np.int64),
    }
