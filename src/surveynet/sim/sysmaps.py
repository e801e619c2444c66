"""HEALPix imaging-systematics mocks for SYSNet (simulation.md section 6).

:func:`simulate_sysmaps` builds, on a RING HEALPix grid in equatorial coordinates:

- E(B-V) and ln N_HI from the real SFD and HI4PI maps in ``../shared/data/healpix`` (NSIDE 64,
  Galactic), sampled at every pixel's Galactic position (rotation + bilinear upgrade by
  ``healpy.get_interp_val``); without that folder, a documented synthetic Galactic model:
  E(B-V) = 0.02 csc|b| times a lognormal field, N_HI = 8.3e21 E(B-V) times a lognormal scatter;
- stellar density exponential in |b| with a gradient towards the bulge;
- airmass sec|dec - 32 deg|; per-band seeing and sky with declination passes ("stripes") and
  RA tiles; extinction-corrected depth from the Ivezic et al. (2019) scaling;
- a lognormal clustering field delta = exp(g - sigma^2/2) - 1 with g from ``healpy.synfast`` of
  a power-law C_ell (pixwin off: it needs a download);
- a non-linear selection F(s): linear terms in z-scored maps, a sigmoid completeness drop for
  shallow depth and an additive stellar-contamination term, normalised to <F> = 1 over the
  footprint (``null=True``: F = 1);
- footprint |b| > 20 deg and -10 < dec < 60 deg, fracgood from bright-star holes and edges
  (>= 0.2), counts N ~ Poisson(nbar f F (1 + delta)).

Written as a sysnetdev table (lower-case ``hpix, label, fracgood, features``, the feature names
in ``FEAT<i>`` cards) with ``TRUTH`` (HPIX, F_TRUE, DELTA, NBAR) and ``CL_TRUE`` (ELL, CL_G,
CL_DELTA, CL_DELTA_FOOT: the input Gaussian spectrum, the full-sky and the footprint pseudo-C_ell
(divided by f_sky) of the realised delta) HDUs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from surveynet.io.fits import provenance_header, write_hdulist

log = logging.getLogger(__name__)

FEATURE_NAMES = (
    "EBV",
    "lnHI",
    "nstar",
    "depth_g",
    "depth_r",
    "depth_z",
    "seeing_g",
    "seeing_r",
    "seeing_z",
    "skymag_r",
    "airmass",
)
#: DECam extinction coefficients R_g, R_r, R_z (Legacy Surveys).
R_GRZ = (3.214, 2.165, 1.211)


def shared_healpix_dir() -> Path:
    """``../shared/data/healpix`` (or ``$SURVEYNET_SHARED_DATA/healpix``) relative to the repo."""
    env = os.environ.get("SURVEYNET_SHARED_DATA")
    if env:
        return Path(env) / "healpix"
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "healpix"


@dataclass
class SysMock:
    """A simulated table with its truth.

    Attributes
    ----------
    hpix : ndarray of int64
        RING pixels of the footprint.
    label, fracgood : ndarray of float64
    features : ndarray of float64, shape (n, 11)
    feature_names : tuple of str
    nside : int
    f_true, delta, nbar : ndarray
        True selection, clustering contrast, expected count per full pixel.
    ell, cl_g, cl_delta, cl_delta_foot : ndarray
        Multipoles and spectra (see module docstring).
    real_maps : bool
        Whether the SFD/HI4PI maps were used.
    """

    hpix: NDArray[np.int64]
    label: NDArray[np.float64]
    fracgood: NDArray[np.float64]
    features: NDArray[np.float64]
    feature_names: tuple[str, ...]
    nside: int
    f_true: NDArray[np.float64]
    delta: NDArray[np.float64]
    nbar: float
    ell: NDArray[np.int64]
    cl_g: NDArray[np.float64]
    cl_delta: NDArray[np.float64]
    cl_delta_foot: NDArray[np.float64]
    real_maps: bool


def _zs(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """z-score of ``x``."""
    return (x - x.mean()) / x.std()


def _smooth_field(nside: int, rng: np.random.Generator, slope: float, lmin: int = 2) -> Any:
    """Unit-variance Gaussian map with C_ell ~ ell^slope (ell >= lmin)."""
    import healpy as hp

    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[lmin:] = ell[lmin:] ** slope
    alm = _synalm(cl, lmax, rng)
    m = hp.alm2map(alm, nside, lmax=lmax, pixwin=False)
    return (m - m.mean()) / m.std()


def _synalm(cl: NDArray[np.float64], lmax: int, rng: np.random.Generator) -> Any:
    """Gaussian a_lm with spectrum ``cl`` from a numpy Generator (healpy seeds globally)."""
    import healpy as hp

    ell, m = hp.Alm.getlm(lmax)
    sig = np.sqrt(cl[ell])
    re = rng.standard_normal(len(ell))
    im = rng.standard_normal(len(ell))
    alm = sig * (re + 1j * im) / np.sqrt(2.0)
    alm[m == 0] = sig[m == 0] * re[m == 0]
    return alm


def galactic_templates(
    theta: NDArray[np.float64],
    phi: NDArray[np.float64],
    b_deg: NDArray[np.float64],
    rng: np.random.Generator,
    nside: int,
    use_real: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """E(B-V) and ln N_HI at Galactic positions (theta, phi) = (colatitude, longitude) in radians.

    Returns ``(ebv, lnhi, real)``; ``real`` says whether the shared SFD/HI4PI maps were used.
    """
    import healpy as hp

    d = shared_healpix_dir()
    sfd, hi = d / "dust_ebv_SFD_healpix_lowres.fits", d / "h1_nh_HI4PI_healpix_lowres.fits"
    small = _smooth_field(nside, rng, -2.5, lmin=20)  # sub-template structure
    if use_real and sfd.is_file() and hi.is_file():
        ebv_map = hp.read_map(str(sfd), dtype=np.float64)
        hi_map = hp.read_map(str(hi), dtype=np.float64)
        ebv = hp.get_interp_val(ebv_map, theta, phi)
        ebv = ebv * np.exp(0.05 * _as_pix(small, theta, phi, nside))
        nhi = hp.get_interp_val(hi_map, theta, phi)
        return np.clip(ebv, 1e-3, None), np.log(np.clip(nhi, 1e18, None)), True
    log.info("shared healpix maps not found in %s: synthetic Galactic model", d)
    csc = 1.0 / np.clip(np.abs(np.sin(np.radians(b_deg))), 0.05, None)
    ebv = 0.02 * csc * np.exp(0.3 * _as_pix(small, theta, phi, nside))
    nhi = 8.3e21 * ebv * np.exp(0.1 * rng.standard_normal(len(ebv)))
    return ebv, np.log(nhi), False


def _as_pix(m: NDArray[np.float64], theta: Any, phi: Any, nside: int) -> NDArray[np.float64]:
    """Values of map ``m`` at positions (theta, phi)."""
    import healpy as hp

    return np.asarray(m[hp.ang2pix(nside, theta, phi)])


def simulate_sysmaps(
    nside: int,
    seed: int,
    *,
    null: bool = False,
    map_seed: int | None = None,
    nbar: float = 100.0,
    strength: float = 1.0,
    sigma_g: float = 0.35,
    cl_slope: float = -1.2,
    use_real_maps: bool = True,
) -> SysMock:
    """Simulate one mock table.

    Parameters
    ----------
    nside : int
        HEALPix nside (RING, equatorial).
    seed : int
        Seed of the clustering field, the counts and (unless ``map_seed``) the maps.
    null : bool
        No selection (F = 1): a null mock.
    map_seed : int, optional
        Seed of the imaging maps and footprint, so several mocks share one sky.
    nbar : float
        Mean count of a complete pixel.
    strength : float
        Scales the selection's departure from 1.
    sigma_g : float
        rms of the Gaussian field before the lognormal transform.
    cl_slope : float
        Power-law slope of the Gaussian field's C_ell (ell >= 2).
    use_real_maps : bool
        Use ``../shared/data/healpix`` when present.

    Returns
    -------
    SysMock
    """
    import healpy as hp

    if nside < 2 or nside & (nside - 1):
        raise ValueError(f"nside must be a power of two >= 2, got {nside}")
    mrng = np.random.default_rng(seed if map_seed is None else map_seed)
    rng = np.random.default_rng([seed, 1])
    npix = hp.nside2npix(nside)
    theta, phi = hp.pix2ang(nside, np.arange(npix))
    dec = 90.0 - np.degrees(theta)
    ra = np.degrees(phi)
    rot = hp.Rotator(coord=["C", "G"])
    gtheta, gphi = rot(theta, phi)
    b = 90.0 - np.degrees(gtheta)
    l_deg = np.degrees(gphi) % 360.0
    ebv, lnhi, real = galactic_templates(gtheta, gphi, b, mrng, nside, use_real_maps)
    lcen = np.where(l_deg > 180, l_deg - 360, l_deg)
    nstar = 3000.0 * np.exp(-np.abs(b) / 12.0) * (1 + 0.6 * np.exp(-((lcen / 60.0) ** 2))) + 200
    nstar *= np.exp(0.1 * mrng.standard_normal(npix))
    airmass = 1.0 / np.cos(np.radians(np.clip(np.abs(dec - 32.0), 0, 70)))
    # survey passes: declination stripes of 2 deg and RA tiles of 8 deg with random offsets
    stripe = mrng.normal(0, 1, 200)[((dec + 90) // 2).astype(int)]
    tile = mrng.normal(0, 1, (90, 45))[((dec + 90) // 2).astype(int), (ra // 8).astype(int)]
    smooth = _smooth_field(nside, mrng, -3.0)
    feats: dict[str, NDArray[np.float64]] = {"EBV": ebv, "lnHI": lnhi, "nstar": nstar}
    sky_r = 20.9 + 0.15 * stripe + 0.1 * smooth + 0.05 * mrng.standard_normal(npix)
    seeing = {}
    for j, band in enumerate("grz"):
        see = (
            1.3
            * airmass**0.6
            * np.exp(
                0.08 * stripe + 0.06 * tile + 0.03 * smooth + 0.02 * mrng.standard_normal(npix)
            )
        )
        seeing[band] = see * (1.05, 1.0, 0.95)[j]
    t_exp = 90.0 * (1 + 0.3 * (tile > 0.8))
    for j, band in enumerate("grz"):
        c = (24.9, 24.4, 23.4)[j]
        m5 = (
            c
            + 0.5 * (sky_r - 21)
            + 2.5 * np.log10(0.7 / seeing[band])
            + 1.25 * np.log10(t_exp / 30)
            - 0.15 * (airmass - 1)
            + 0.1 * tile
        )
        feats[f"depth_{band}"] = m5 - R_GRZ[j] * ebv
    for band in "grz":
        feats[f"seeing_{band}"] = seeing[band]
    feats["skymag_r"] = sky_r
    feats["airmass"] = airmass
    x_all = np.stack([feats[n] for n in FEATURE_NAMES], axis=1)

    foot = (np.abs(b) > 20) & (dec > -10) & (dec < 60)
    foot &= feats["depth_r"] > np.percentile(feats["depth_r"][foot], 2)
    hpix = np.where(foot)[0].astype(np.int64)
    n = len(hpix)
    holes = mrng.uniform(0, 1, n)
    fracgood = np.where(holes < 0.3, mrng.uniform(0.5, 1.0, n), 1.0)
    edge = np.minimum.reduce([np.abs(b[hpix]) - 20, dec[hpix] + 10, 60 - dec[hpix]])
    fracgood = np.clip(
        fracgood * np.clip(edge / (2 * hp.nside2resol(nside, arcmin=True) / 60), 0.2, 1.0), 0.2, 1.0
    )
    x = x_all[hpix]

    # selection: linear + sigmoid depth drop + additive stellar contamination, <F> = 1
    if null:
        f_true = np.ones(n)
    else:
        z = {k: _zs(feats[k][hpix]) for k in ("EBV", "seeing_r", "nstar", "lnHI")}
        lin = 1.0 - 0.06 * z["EBV"] + 0.04 * z["seeing_r"] - 0.03 * z["lnHI"]
        dr = feats["depth_r"][hpix]
        lim = np.percentile(dr, 15)
        drop = 1.0 / (1.0 + np.exp(-(dr - lim) / 0.08))
        contam = 0.15 * nstar[hpix] / np.median(nstar[hpix])
        f = np.clip(lin, 0.1, None) * (0.6 + 0.4 * drop) + contam
        f = f / f.mean()
        f_true = 1.0 + strength * (f - 1.0)

    # lognormal clustering
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1)
    cl_g = np.zeros(lmax + 1)
    cl_g[2:] = ell[2:].astype(float) ** cl_slope
    cl_g *= sigma_g**2 / np.sum((2 * ell + 1) / (4 * np.pi) * cl_g)
    g = hp.alm2map(_synalm(cl_g, lmax, rng), nside, lmax=lmax, pixwin=False)
    delta_full = np.exp(g - g.var() / 2) - 1.0
    delta_full -= delta_full.mean()
    cl_delta = hp.anafast(delta_full, lmax=lmax, use_pixel_weights=False)
    masked = np.zeros(npix)
    masked[hpix] = delta_full[hpix]
    fsky = n / npix
    cl_foot = hp.anafast(masked, lmax=lmax) / fsky
    delta = delta_full[hpix]
    lam = nbar * fracgood * f_true * np.clip(1.0 + delta, 0, None)
    label = rng.poisson(lam).astype(np.float64)
    return SysMock(
        hpix,
        label,
        fracgood,
        x,
        FEATURE_NAMES,
        nside,
        f_true,
        delta,
        nbar,
        ell,
        cl_g,
        cl_delta,
        cl_foot,
        real,
    )


def table_hdus(
    hpix: NDArray[np.int64],
    label: NDArray[np.float64],
    fracgood: NDArray[np.float64],
    features: NDArray[np.float64],
    feature_names: tuple[str, ...] | list[str],
    nside: int,
    *,
    nest: bool = False,
) -> fits.BinTableHDU:
    """The sysnetdev table HDU (EXTNAME ``SYSNET``, lower-case columns as sysnetdev reads them).

    Header: ``NSIDE``, ``ORDERING``, ``NFEAT`` and ``FEAT<i>`` feature names.
    """
    k = features.shape[1]
    cols = [
        fits.Column("label", "D", array=np.asarray(label, np.float64)),
        fits.Column("hpix", "K", array=np.asarray(hpix, np.int64)),
        fits.Column("features", f"{k}D", array=np.asarray(features, np.float64)),
        fits.Column("fracgood", "D", array=np.asarray(fracgood, np.float64)),
    ]
    h = fits.BinTableHDU.from_columns(cols)
    h.header["EXTNAME"] = "SYSNET"
    h.header["NSIDE"] = (int(nside), "HEALPix nside")
    h.header["ORDERING"] = ("NESTED" if nest else "RING", "HEALPix ordering")
    h.header["NFEAT"] = (k, "number of feature maps")
    for i, name in enumerate(feature_names):
        h.header[f"FEAT{i}"] = (str(name), f"features[{i}]")
    return h


def write_mock(
    path: str | os.PathLike[str], mock: SysMock, *, seed: int, null: bool, overwrite: bool = False
) -> Path:
    """Write a mock: SYSNET table, TRUTH and CL_TRUE HDUs, provenance header, atomically."""
    hdr = provenance_header(
        pipeline="sysnet",
        seed=seed,
        extra={"NULLMOCK": bool(null), "REALMAPS": bool(mock.real_maps), "NBAR": float(mock.nbar)},
    )
    truth = fits.BinTableHDU.from_columns(
        [
            fits.Column("HPIX", "K", array=mock.hpix),
            fits.Column("F_TRUE", "D", array=mock.f_true),
            fits.Column("DELTA", "D", array=mock.delta),
            fits.Column("NBAR", "D", array=np.full(len(mock.hpix), mock.nbar)),
        ]
    )
    truth.header["EXTNAME"] = "TRUTH"
    cl = fits.BinTableHDU.from_columns(
        [
            fits.Column("ELL", "K", array=mock.ell),
            fits.Column("CL_G", "D", array=mock.cl_g),
            fits.Column("CL_DELTA", "D", array=mock.cl_delta),
            fits.Column("CL_DELTA_FOOT", "D", array=mock.cl_delta_foot),
        ]
    )
    cl.header["EXTNAME"] = "CL_TRUE"
    tab = table_hdus(
        mock.hpix, mock.label, mock.fracgood, mock.features, mock.feature_names, mock.nside
    )
    return write_hdulist(path, [fits.PrimaryHDU(header=hdr), tab, truth, cl], overwrite=overwrite)
