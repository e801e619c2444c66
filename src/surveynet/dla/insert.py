"""Injection of synthetic HI absorbers into (DLA-free) sightlines for training and validation.

Follows zoujiaqi99/dla_cnn:desi/insert_dlas.py (dla.md section 2.2), with the defects fixed:

- N_HI uniform in the range of the mode (``dla`` 20.3-22.5, ``subdla`` 19.5-20.3, ``high``
  21.2-22.5, ``mix`` 19.3-22.5), or drawn from f(N) (Parks 2018 used pyigm's f(N); here the
  Gamma-function fit of Prochaska & Wolfe 2009, ApJ 696, 1543: f(N) ∝ (N/N_g)^a exp(-N/N_g),
  a = -1.80, log N_g = 21.48), truncated to the mode's range; both drawn by the package's one
  N_HI sampler, :func:`surveynet.sim.igm.draw_nhi`;
- z_abs: a uniformly random pixel with lambda < 0.99 * 1215.6701 (1 + z_qso), lambda > 912
  (1 + z_qso) and lambda >= 3700 A (all configurable); one absorber per call, ``overlap=True``
  adds a second one 30-120 pixels away (overlapping pairs);
- profile: Voigt optical depth of :func:`surveynet.sim.voigt.voigt_tau` (Lyman-alpha, optionally
  Lyman-beta and -gamma), b = 30 km/s, transmission smoothed by a Gaussian of FWHM 3 pixels;
- noise: ``keep_variance`` adds N(0,1) sigma sqrt(1 - F^2) (the total variance stays sigma^2);
  ``parks`` adds N(0,1) sigma (1 - F); ``none`` adds nothing and scales sigma by F;
- the injected absorber (z, log N_HI, DLAID = TARGETID + 3-digit index) is appended to
  ``sightline.dlas`` (the anchor's ``'00' + str(jj)`` raised NameError).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from surveynet.constants import LYA_REST
from surveynet.dla.config import NHI_RANGES, InsertConfig
from surveynet.dla.sightline import Dla, Sightline
from surveynet.sim.igm import draw_nhi
from surveynet.sim.voigt import voigt_tau

logger = logging.getLogger(__name__)

__all__ = [
    "absorber_pixels",
    "dla_transmission",
    "insert_dlas",
    "insert_dlas_many",
    "sample_nhi",
]


def sample_nhi(
    n: int, rng: np.random.Generator, *, mode: str = "dla", distribution: str = "uniform"
) -> NDArray[np.float64]:
    """Draw ``n`` log N_HI values for an insertion mode (:class:`InsertConfig` vocabulary).

    Translates the mode and distribution names of the DLA pipeline for the package's one N_HI
    sampler, :func:`surveynet.sim.igm.draw_nhi`.

    Parameters
    ----------
    n : int
        Number of draws.
    rng : numpy.random.Generator
        Source of randomness.
    mode : {"dla", "subdla", "high", "mix"}
        Range of :data:`surveynet.dla.config.NHI_RANGES`.
    distribution : {"uniform", "fn"}
        Uniform in log N (DESI anchor) or following the Gamma-function f(N) of Prochaska & Wolfe
        (2009) (``draw_nhi``'s ``gamma``).

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        Unknown mode or distribution.

    Examples
    --------
    >>> x = sample_nhi(1000, np.random.default_rng(0), mode="high", distribution="fn")
    >>> bool(x.min() >= 21.2 and x.max() <= 22.5 and np.median(x) < 21.85)
    True
    """
    if mode not in NHI_RANGES:
        raise ValueError(f"unknown N_HI mode {mode!r}; valid: {sorted(NHI_RANGES)}")
    if distribution not in ("uniform", "fn"):
        raise ValueError(f"unknown N_HI distribution {distribution!r}; valid: uniform, fn")
    kind = "uniform" if distribution == "uniform" else "gamma"
    return draw_nhi(rng, n, kind, nhi_range=NHI_RANGES[mode])


def absorber_pixels(sightline: Sightline, config: InsertConfig | None = None) -> NDArray[np.intp]:
    """Pixels where an absorber's Lyman-alpha centre may be placed.

    lambda < max_frac_lya * 1215.6701 (1 + z_qso), lambda > min_rest_lyman_limit (1 + z_qso),
    lambda >= wave_min, and the pixel has data (finite error).

    Parameters
    ----------
    sightline : Sightline
        Host sightline.
    config : InsertConfig, optional
        The rules (defaults).

    Returns
    -------
    ndarray of int
        Pixel indices.
    """
    cfg = config or InsertConfig()
    w = sightline.wave
    zq1 = 1.0 + sightline.z_qso
    ok = (
        (w < cfg.max_frac_lya * LYA_REST * zq1)
        & (w > cfg.min_rest_lyman_limit * zq1)
        & (w >= cfg.wave_min)
        & np.isfinite(sightline.error)
    )
    return np.flatnonzero(ok)


def dla_transmission(
    wave: NDArray[np.float64],
    absorbers: Sequence[tuple[float, float]],
    *,
    b_kms: float = 30.0,
    n_lines: int = 1,
    fwhm_pix: float = 3.0,
) -> NDArray[np.float64]:
    """Transmission exp(-sum tau) of absorbers [(z, log N_HI), ...] on ``wave`` (A).

    The transmission is smoothed with a Gaussian of FWHM ``fwhm_pix`` pixels (0: no smoothing),
    as the anchor's ``hi_model(fwhm=3)``.

    Parameters
    ----------
    wave : ndarray
        Observed wavelengths (A).
    absorbers : sequence of (float, float)
        ``(z_abs, log N_HI)`` pairs.
    b_kms : float
        Doppler parameter.
    n_lines : int
        Lyman-series lines (1-3).
    fwhm_pix : float
        Smoothing FWHM in pixels.

    Returns
    -------
    ndarray
        Transmission in [0, 1].
    """
    w = np.asarray(wave, dtype=np.float64)
    tau = np.zeros_like(w)
    for z, nhi in absorbers:
        tau += voigt_tau(w, z, nhi, b_kms=b_kms, n_lines=n_lines)
    trans = np.exp(-tau)
    if fwhm_pix > 0:
        trans = gaussian_filter1d(
            trans, fwhm_pix / (2.0 * np.sqrt(2.0 * np.log(2.0))), mode="nearest"
        )
    return np.clip(trans, 0.0, 1.0)


def insert_dlas(
    sightline: Sightline,
    rng: np.random.Generator,
    config: InsertConfig | None = None,
    *,
    z_dla: Sequence[float] | None = None,
    nhi: Sequence[float] | None = None,
) -> Sightline:
    """Return a copy of ``sightline`` with one absorber (two if ``overlap``) injected.

    Parameters
    ----------
    sightline : Sightline
        Host sightline (normalised, rebinned); its existing ``dlas`` are kept.
    rng : numpy.random.Generator
        Randomness for positions, N_HI and noise.
    config : InsertConfig, optional
    z_dla, nhi : sequence of float, optional
        Explicit absorber redshifts / log N_HI (override the random draws; same length).

    Returns
    -------
    Sightline
        New sightline; flux (and error for ``noise='none'``) modified, ``dlas`` extended with
        the injected absorbers (sorted by z).

    Raises
    ------
    ValueError
        When no pixel satisfies the absorber-redshift rules (e.g. z_qso too low for the
        3700 A limit) and no explicit ``z_dla`` is given.
    """
    cfg = config or InsertConfig()
    out = sightline.copy()
    wave = out.wave
    if z_dla is None:
        pix = absorber_pixels(out, cfg)
        if pix.size == 0:
            raise ValueError(
                f"sightline {out.targetid} (z_qso {out.z_qso:.3f}): no pixel allowed for a DLA"
            )
        first = int(rng.choice(pix))
        pixels = [first]
        if cfg.overlap:
            allowed = set(pix.tolist())
            lo, hi = cfg.overlap_px
            cands = [
                first + s * d
                for d in range(lo, hi + 1)
                for s in (-1, 1)
                if first + s * d in allowed
            ]
            if cands:
                pixels.append(int(rng.choice(cands)))
            else:
                logger.debug("sightline %d: no room for an overlapping partner", out.targetid)
        zs = [wave[p] / LYA_REST - 1.0 for p in pixels]
    else:
        zs = [float(z) for z in z_dla]
    if nhi is None:
        ns = sample_nhi(len(zs), rng, mode=cfg.nhi_mode, distribution=cfg.nhi_distribution).tolist()
    else:
        ns = [float(x) for x in nhi]
        if len(ns) != len(zs):
            raise ValueError(f"z_dla and nhi lengths differ ({len(zs)} vs {len(ns)})")
    trans = dla_transmission(
        wave,
        list(zip(zs, ns, strict=True)),
        b_kms=cfg.b_kms,
        n_lines=cfg.n_lines,
        fwhm_pix=cfg.fwhm_pix,
    )
    err = out.error
    finite = np.isfinite(err)
    noise = np.zeros_like(out.flux)
    if cfg.noise == "keep_variance":
        noise[finite] = (
            rng.standard_normal(finite.sum()) * err[finite] * np.sqrt(1.0 - trans[finite] ** 2)
        )
    elif cfg.noise == "parks":
        noise[finite] = rng.standard_normal(finite.sum()) * err[finite] * (1.0 - trans[finite])
    else:
        out.error = np.where(finite, err * trans, err)
    out.flux = out.flux * trans + noise
    start = len(out.dlas)
    new = [
        Dla(z_dla=z, nhi=n, dlaid=f"{out.targetid}{start + k:03d}")
        for k, (z, n) in enumerate(zip(zs, ns, strict=True))
    ]
    out.dlas = sorted([*out.dlas, *new], key=lambda d: d.z_dla)
    return out


def insert_dlas_many(
    sightlines: Sequence[Sightline],
    seed: int | np.random.Generator,
    config: InsertConfig | None = None,
    *,
    frac_without: float = 0.0,
) -> list[Sightline]:
    """Inject absorbers into each sightline (a fraction ``frac_without`` left untouched).

    Sightlines where no absorber can be placed are returned unchanged (logged at debug level).

    Parameters
    ----------
    sightlines : sequence of Sightline
        Hosts.
    seed : int or numpy.random.Generator
        Randomness.
    config : InsertConfig, optional
        Insertion rules.
    frac_without : float
        Share of sightlines left without absorbers.

    Returns
    -------
    list of Sightline
        Copies, in order.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = []
    for sl in sightlines:
        if frac_without > 0 and rng.uniform() < frac_without:
            out.append(sl.copy())
            continue
        try:
            out.append(insert_dlas(sl, rng, config))
        except ValueError as exc:
            logger.debug("%s", exc)
            out.append(sl.copy())
    return out
