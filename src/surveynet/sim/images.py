"""Science/reference image pairs with transients and artefacts (simulation.md section 7).

Each pair shares one sky: stars (dN/dm proportional to 10^(0.3 m)), PSF-convolved Sersic galaxies
(indices n=1 and n=4, rendered on a 5x finer grid so that a galaxy is the same object at every pixel
phase: :func:`galaxy_stamp`) and, on the science epoch only, transients (half on galaxy hosts,
offsets drawn from the host light), variable stars (real, not injected), cosmic rays, hot pixels, a
bad column and saturated stars with bleed trails (both epochs saturate). Every source is placed on
the sky and rendered at its own sub-pixel position in each frame through that frame's WCS: the
science frame is misaligned by a sub-pixel shift and a small rotation, so the two frames must be
registered before subtraction, exactly like real data.

The PSF is a Moffat profile [1 + (r/alpha)^2]^-beta with FWHM = 2 alpha sqrt(2^(1/beta) - 1),
varying linearly across the frame (FWHM and ellipticity) and differing between the epochs
(FWHM_sci / FWHM_ref in ``fwhm_ratio``); every rendered stamp is normalised to unit sum.
Magnitudes are physical: counts in ADU = 10^(-0.4 (m - zp)) for the frame's zero point
``MAGZP``. Noise: Poisson in electrons (``GAIN``) plus Gaussian read noise; the reference is
``ref_depth`` times deeper (a stack), with the same sky level per exposure scaled accordingly.

Pixel convention: 0-based numpy coordinates, ``x`` the column and ``y`` the row, the centre of
``data[j, i]`` at ``(x, y) = (i, j)``; WCS conversions use origin 0
(``pixel_to_world_values``). The truth table (``<name>_truth.fits``, EXTNAME ``TRUTH``) lists
every source and artefact with its ``KIND``, ``REAL`` (a genuine astrophysical change between
the epochs: ``transient`` and ``variable``), positions in both frames and the local PSF.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from numpy.typing import NDArray
from scipy.signal import fftconvolve

from surveynet.sim.image_config import ImageSimConfig

__all__ = [
    "BaseFrames",
    "ImageSimConfig",
    "SimulatedPair",
    "load_base_frames",
    "moffat_stamp",
    "psf_from_header",
    "read_truth",
    "simulate_pair",
    "write_pair",
]

log = logging.getLogger(__name__)

#: Truth kinds that are genuine changes between the epochs (labelled real).
REAL_KINDS = ("transient", "variable")


@dataclass
class SimulatedPair:
    """One simulated pair.

    Attributes
    ----------
    science, reference : ndarray of shape (ny, nx), float32
        Images (ADU).
    wcs_sci, wcs_ref : astropy.wcs.WCS
        Their WCS.
    header_sci, header_ref : astropy.io.fits.Header
        Instrument cards (GAIN, RDNOISE, MAGZP, SATURATE, SKYLEVEL, FWHM, FILTER, ...).
    truth : astropy.table.Table
        Every source and artefact (see the module docstring).
    """

    science: NDArray[np.float32]
    reference: NDArray[np.float32]
    wcs_sci: WCS
    wcs_ref: WCS
    header_sci: fits.Header
    header_ref: fits.Header
    truth: Table


# ----------------------------------------------------------------------------- PSF


def moffat_stamp(
    size: int,
    fwhm: float,
    beta: float,
    dx: float = 0.0,
    dy: float = 0.0,
    ellipticity: float = 0.0,
    angle: float = 0.0,
    oversample: int = 3,
) -> NDArray[np.float64]:
    """A unit-sum Moffat stamp centred at ``(size // 2 + dx, size // 2 + dy)``.

    Parameters
    ----------
    size : int
        Stamp side (px).
    fwhm : float
        FWHM (px) along the major axis.
    beta : float
        Moffat beta.
    dx, dy : float
        Sub-pixel offset of the centre (px).
    ellipticity : float
        1 - b/a.
    angle : float
        Position angle of the major axis (radians from +x).
    oversample : int
        Sub-pixels per pixel side (pixel integration).

    Returns
    -------
    ndarray of shape (size, size)
        Sums to 1.

    Examples
    --------
    >>> s = moffat_stamp(15, 3.0, 3.0)
    >>> round(float(s.sum()), 6), np.unravel_index(s.argmax(), s.shape)
    (1.0, (np.int64(7), np.int64(7)))
    """
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    u, v = _fine_grid(size, oversample, dx, dy, angle, max(1.0 - ellipticity, 1e-3))
    prof = (1.0 + (u * u + v * v) / alpha**2) ** (-beta)
    return _bin(prof, size, oversample)


def _fine_grid(
    size: int, oversample: int, dx: float, dy: float, angle: float, q: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Major and minor-axis coordinates (px) of the sub-pixel centres of a stamp.

    The stamp is ``size`` x ``size`` pixels cut ``oversample`` times per side, for a source at
    ``(size // 2 + dx, size // 2 + dy)``; the minor-axis coordinate is divided by ``q``. With an
    odd ``oversample`` one sub-pixel sits on each pixel centre.
    """
    c = size // 2
    sub = (np.arange(size * oversample) + 0.5) / oversample - 0.5 - c
    yy, xx = np.meshgrid(sub - dy, sub - dx, indexing="ij")
    ca, sa = np.cos(angle), np.sin(angle)
    return xx * ca + yy * sa, (-xx * sa + yy * ca) / q


def _bin(fine: NDArray[np.float64], size: int, oversample: int) -> NDArray[np.float64]:
    """Sum the sub-pixels of a fine grid into pixels; normalise to unit sum."""
    prof = fine.reshape(size, oversample, size, oversample).sum(axis=(1, 3))
    return np.asarray(prof / prof.sum(), dtype=np.float64)


@dataclass(frozen=True)
class PsfField:
    """A Moffat PSF varying linearly across the frame.

    Attributes
    ----------
    fwhm0 : float
        FWHM at the frame centre (px).
    gx, gy : float
        Relative FWHM change per half-frame along x and y.
    beta : float
        Moffat beta.
    e0 : float
        Ellipticity at the centre.
    angle : float
        Position angle (radians).
    nx, ny : int
        Frame shape.
    """

    fwhm0: float
    gx: float
    gy: float
    beta: float
    e0: float
    angle: float
    nx: int
    ny: int

    def at(self, x: float, y: float) -> tuple[float, float]:
        """FWHM and ellipticity at pixel ``(x, y)``.

        Parameters
        ----------
        x, y : float
            0-based pixel coordinates.

        Returns
        -------
        fwhm, ellipticity : float
        """
        u = (x - self.nx / 2) / (self.nx / 2)
        v = (y - self.ny / 2) / (self.ny / 2)
        f = self.fwhm0 * (1.0 + self.gx * u + self.gy * v)
        e = self.e0 * (1.0 + 0.5 * abs(u))
        return float(f), float(e)

    def stamp(self, x: float, y: float, size: int) -> NDArray[np.float64]:
        """Unit-sum stamp centred on the sub-pixel position ``(x, y)``.

        Parameters
        ----------
        x, y : float
            0-based pixel coordinates of the source.
        size : int
            Stamp side.

        Returns
        -------
        ndarray of shape (size, size)
            Centred on pixel ``(round(y), round(x))`` at the stamp's ``size // 2``.
        """
        f, e = self.at(x, y)
        return moffat_stamp(size, f, self.beta, x - round(x), y - round(y), e, self.angle)


def psf_from_header(header: fits.Header) -> PsfField:
    """The true PSF field of a simulated frame, from its header cards.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header written by :func:`write_pair` (``FWHM``, ``PSFBETA``, ``PSFGX``, ``PSFGY``,
        ``PSFELL``, ``PSFANG``, ``NAXIS1``, ``NAXIS2``).

    Returns
    -------
    PsfField
    """
    return PsfField(
        fwhm0=float(header["FWHM"]),
        gx=float(header.get("PSFGX", 0.0)),
        gy=float(header.get("PSFGY", 0.0)),
        beta=float(header["PSFBETA"]),
        e0=float(header.get("PSFELL", 0.0)),
        angle=float(header.get("PSFANG", 0.0)),
        nx=int(header["NAXIS1"]),
        ny=int(header["NAXIS2"]),
    )


GAL_OVERSAMPLE = 5
"""Sub-pixels per pixel side when rendering galaxies (:func:`galaxy_stamp`)."""


def _add_stamp(img: NDArray[np.float64], stamp: NDArray[np.float64], x: float, y: float) -> None:
    """Add ``stamp`` (centred at its ``size // 2``) to ``img`` at pixel ``(round(x), round(y))``."""
    s = stamp.shape[0]
    c = s // 2
    ix, iy = round(x), round(y)
    x0, y0 = ix - c, iy - c
    ny, nx = img.shape
    sx0, sy0 = max(0, -x0), max(0, -y0)
    sx1, sy1 = min(s, nx - x0), min(s, ny - y0)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] += stamp[sy0:sy1, sx0:sx1]


def galaxy_stamp(g: dict[str, Any], psf: PsfField, x: float, y: float) -> NDArray[np.float64]:
    """Unit-sum PSF-convolved Sersic galaxy centred on the sub-pixel position ``(x, y)``.

    The Sersic profile (with its sub-pixel offset) and the PSF (centred) are evaluated on a grid
    ``GAL_OVERSAMPLE`` times finer than the pixels, convolved there and summed into pixels, so
    the rendered galaxy is the same object at any pixel phase: the two epochs of a pair, whose
    phases differ, see the same galaxy. The Sersic radius is softened,
    ``r -> sqrt(r^2 + (1 / GAL_OVERSAMPLE)^2)``, i.e. a core of 0.2 px, far below any PSF: the
    n = 4 cusp (surface brightness ``exp(b_n)`` ~ 2,000 times that at ``r_e``, inside a
    radius ~ 3e-4 ``r_e``) is otherwise sampled or missed by a sub-pixel centre depending on
    the phase. Round 5 of issue 20 found that the earlier rendering (a 3x3-sampled
    unsoftened profile convolved with a PSF stamp that carried the sub-pixel offset a second
    time) changed the core of a compact n = 4 galaxy between the epochs by up to 140 % of its
    peak and moved every galaxy by up to 0.5 px: a nuclear flux change on every galaxy.

    Parameters
    ----------
    g : dict
        Galaxy with keys ``n`` (Sersic index), ``re`` (px), ``q`` (axis ratio), ``angle`` (rad).
    psf : PsfField
        The frame's PSF.
    x, y : float
        0-based pixel position of the galaxy centre.

    Returns
    -------
    ndarray
        Odd-sided stamp (21 to 101 px) centred on pixel ``(round(y), round(x))`` at its
        ``size // 2``, summing to 1.
    """
    os_ = GAL_OVERSAMPLE
    size = max(int(min(2 * int(6 * g["re"]) + 1, 101)), 21)
    n, re = float(g["n"]), float(g["re"])
    bn = 2.0 * n - 1.0 / 3.0 + 0.009876 / n  # Ciotti & Bertin (1999) to O(1/n)
    u, v = _fine_grid(size, os_, x - round(x), y - round(y), float(g["angle"]), float(g["q"]))
    r = np.sqrt(u * u + v * v + (1.0 / os_) ** 2)
    gal = np.exp(-bn * ((r / re) ** (1.0 / n) - 1.0))
    fwhm, ell = psf.at(x, y)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / psf.beta) - 1.0))
    pu, pv = _fine_grid(21, os_, 0.0, 0.0, psf.angle, max(1.0 - ell, 1e-3))
    ps = (1.0 + (pu * pu + pv * pv) / alpha**2) ** (-psf.beta)
    return _bin(fftconvolve(gal, ps / ps.sum(), mode="same"), size, os_)


def _make_wcs(
    nx: int, ny: int, pixscale: float, shift: tuple[float, float] = (0, 0), rot: float = 0.0
) -> WCS:
    """TAN WCS centred on (150, 2) deg; ``shift`` moves CRPIX (px), ``rot`` rotates (deg)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    # CRPIX is 1-based (FITS); the frame centre in 0-based pixels is ((nx - 1) / 2, (ny - 1) / 2)
    w.wcs.crpix = [(nx + 1) / 2 + shift[0], (ny + 1) / 2 + shift[1]]
    t = np.deg2rad(rot)
    s = pixscale / 3600.0
    w.wcs.cd = np.array([[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]])
    return w


def _bleed(img: NDArray[np.float64], sat: float) -> None:
    """Clip at ``sat`` and spread the excess charge up and down the columns (bleed trails)."""
    over = img > sat
    if not over.any():
        return
    cols = np.unique(np.nonzero(over)[1])
    ny = img.shape[0]
    for c in cols:
        col = img[:, c]
        rows = np.nonzero(col > sat)[0]
        excess = float((col[rows] - sat).sum())
        col[rows] = sat
        n_extra = int(excess / sat)
        lo, hi = rows.min(), rows.max()
        for k in range(n_extra // 2 + 1):
            for r in (lo - 1 - k, hi + 1 + k):
                if 0 <= r < ny:
                    col[r] = sat


@dataclass
class BaseFrames:
    """Real science and reference frames to inject the simulated sky onto.

    Attributes
    ----------
    science, reference : ndarray of shape (ny, nx), float64
        The frames (ADU; same shape).
    header_sci, header_ref : astropy.io.fits.Header
        Their headers (GAIN, SATURATE, MAGZP, FWHM and a celestial WCS are used when present).
    """

    science: NDArray[np.float64]
    reference: NDArray[np.float64]
    header_sci: fits.Header
    header_ref: fits.Header


def load_base_frames(
    science: str | os.PathLike[str], reference: str | os.PathLike[str]
) -> BaseFrames:
    """Read a real science/reference pair (first image HDU of each) for :func:`simulate_pair`.

    Parameters
    ----------
    science, reference : path
        FITS files of the same shape (pixel-aligned when they carry no WCS, e.g. the
        ProperImage pair in ``shared/data/transients/properimage_real_pair``).

    Returns
    -------
    BaseFrames

    Raises
    ------
    ValueError
        No 2-D image, or the shapes differ.
    """
    out = []
    for path in (science, reference):
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise ValueError(f"{path}: no 2-D image HDU")
            data = np.asarray(hdu.data, dtype=np.float64)
            hdr = hdu.header.copy()
            if "SATURATE" not in hdr and np.issubdtype(hdu.data.dtype, np.integer):
                # integer frames: the digitiser ceiling (after BZERO/BSCALE) is the saturation
                hdr["SATURATE"] = (float(np.nanmax(data)), "surveynet: max ADU of the frame")
            out.append((data, hdr))
    (sci, hs), (ref, hr) = out
    if sci.shape != ref.shape:
        raise ValueError(f"science {sci.shape} and reference {ref.shape} shapes differ")
    return BaseFrames(sci, ref, hs, hr)


def _robust_sigma(img: NDArray[Any]) -> float:
    """Pixel noise (ADU) from the median absolute difference of neighbouring pixels."""
    d = np.diff(img[:, : img.shape[1] - img.shape[1] % 2].ravel())
    d = d[np.isfinite(d)]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)) if d.size else 0.0


def _base_wcs(header: fits.Header) -> WCS | None:
    """Celestial WCS of a header, or None."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w = WCS(header, naxis=2)
        except Exception:  # malformed WCS cards: treated as no WCS
            return None
    return w if w.has_celestial else None


def simulate_pair(
    config: ImageSimConfig, rng: np.random.Generator, base: BaseFrames | None = None
) -> SimulatedPair:
    """Simulate one science/reference pair with its truth.

    Parameters
    ----------
    config : ImageSimConfig
        Settings.
    rng : numpy.random.Generator
        Random source.
    base : BaseFrames, optional
        Real frames to start from (see :func:`load_base_frames`): the simulated stars,
        galaxies, transients, variables and artefacts are added (noise-free flux plus its own
        Poisson noise; no simulated sky or read noise) to them. The frame shape is theirs
        (``nx``/``ny`` are ignored); their celestial WCS is used when both have one, otherwise
        the frames are taken as pixel-aligned and share a synthetic tangent-plane WCS (written to
        the output headers, ``SIMWCS = T``). GAIN, SATURATE, FWHM and MAGZP come from their
        headers when present; without MAGZP the zero point is ``zp`` shifted by
        ``2.5 log10(sigma_real / sigma_sim)`` so an injected source has the S/N it would have on
        a simulated frame (``sigma``: pixel noise). The truth table lists the injected sources
        only (the real frames' own stars are not in it).

    Returns
    -------
    SimulatedPair
    """
    cfg = config
    nx, ny = cfg.nx, cfg.ny
    shift = (
        float(rng.uniform(-cfg.max_shift, cfg.max_shift)),
        float(rng.uniform(-cfg.max_shift, cfg.max_shift)),
    )
    rot = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    wcs_ref = _make_wcs(nx, ny, cfg.pixscale)
    wcs_sci = _make_wcs(nx, ny, cfg.pixscale, shift, rot)
    fwhm_ref = float(rng.uniform(*cfg.fwhm_ref))
    fwhm_sci = fwhm_ref * float(rng.uniform(*cfg.fwhm_ratio))
    gains = {"ref": cfg.gain * cfg.ref_depth, "sci": cfg.gain}
    sats = {"ref": cfg.saturation, "sci": cfg.saturation}
    zp_ref = cfg.zp
    synthetic_wcs = False
    art_sigma = float(np.sqrt(cfg.sky / cfg.gain))  # artefact amplitudes scale with the noise
    if base is not None:
        ny, nx = base.reference.shape
        w_s, w_r = _base_wcs(base.header_sci), _base_wcs(base.header_ref)
        if w_s is not None and w_r is not None:
            wcs_sci, wcs_ref = w_s, w_r
        else:
            wcs_ref = wcs_sci = _make_wcs(nx, ny, cfg.pixscale)
            synthetic_wcs = True
        hdrs = {"ref": base.header_ref, "sci": base.header_sci}
        fw = {k: float(h.get("FWHM", 0.0) or 0.0) for k, h in hdrs.items()}
        if fw["ref"] > 0:
            fwhm_ref = fw["ref"]
        fwhm_sci = fw["sci"] if fw["sci"] > 0 else fwhm_ref * float(rng.uniform(*cfg.fwhm_ratio))
        for k, h in hdrs.items():
            gains[k] = float(h.get("GAIN", 0.0) or cfg.gain)
            sats[k] = float(h.get("SATURATE", 0.0) or cfg.saturation)
        if "MAGZP" in base.header_ref:
            zp_ref = float(base.header_ref["MAGZP"])
        else:
            sig_sim = np.sqrt(cfg.sky * cfg.gain + cfg.read_noise**2) / cfg.gain
            sig_real = _robust_sigma(base.reference)
            if sig_real > 0:
                zp_ref = cfg.zp + 2.5 * float(np.log10(sig_real / sig_sim))
        sig_sci = _robust_sigma(base.science)
        if sig_sci > 0:
            art_sigma *= sig_sci / (np.sqrt(cfg.sky * cfg.gain + cfg.read_noise**2) / cfg.gain)
    psfs = {}
    for name, f0 in (("ref", fwhm_ref), ("sci", fwhm_sci)):
        psfs[name] = PsfField(
            fwhm0=f0,
            gx=float(rng.uniform(-cfg.fwhm_variation, cfg.fwhm_variation)),
            gy=float(rng.uniform(-cfg.fwhm_variation, cfg.fwhm_variation)),
            beta=float(rng.uniform(*cfg.beta)),
            e0=float(rng.uniform(0, cfg.max_ellipticity)),
            angle=float(rng.uniform(0, np.pi)),
            nx=nx,
            ny=ny,
        )
    zp_sci = zp_ref + float(rng.uniform(-cfg.zp_offset, cfg.zp_offset))
    if base is not None and "MAGZP" in base.header_sci:
        zp_sci = float(base.header_sci["MAGZP"])
    zps = {"ref": zp_ref, "sci": zp_sci}

    rows: list[dict[str, Any]] = []
    # sources are drawn in reference pixels, then placed on the sky
    margin = 2

    def sky_of(x: NDArray[Any], y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        ra, dec = wcs_ref.pixel_to_world_values(x, y)
        return np.asarray(ra), np.asarray(dec)

    def add(kind: str, x: float, y: float, mag: float, frame: str, **extra: Any) -> None:
        rows.append({"kind": kind, "x_ref": x, "y_ref": y, "mag": mag, "frame": frame, **extra})

    # stars: dN/dm ~ 10^(0.3 m) on [m0, m1)
    m0, m1 = cfg.star_mags
    u = rng.uniform(size=cfg.n_stars)
    a0, a1 = 10 ** (0.3 * m0), 10 ** (0.3 * m1)
    star_mags = np.log10(a0 + u * (a1 - a0)) / 0.3
    for m in star_mags:
        add("star", rng.uniform(margin, nx - margin), rng.uniform(margin, ny - margin), m, "both")
    for _ in range(cfg.n_saturated):
        add(
            "saturated_star",
            rng.uniform(40, nx - 40),
            rng.uniform(40, ny - 40),
            float(rng.uniform(cfg.zp - 15.5, cfg.zp - 14.0)),
            "both",
        )
    galaxies = []
    for _ in range(cfg.n_galaxies):
        g = {
            "x": float(rng.uniform(20, nx - 20)),
            "y": float(rng.uniform(20, ny - 20)),
            "mag": float(rng.uniform(*cfg.galaxy_mags)),
            "n": float(rng.choice([1.0, 4.0])),
            "re": float(rng.uniform(0.5, 5.0) / cfg.pixscale),
            "q": float(rng.uniform(0.3, 1.0)),
            "angle": float(rng.uniform(0, np.pi)),
        }
        galaxies.append(g)
        add(
            "galaxy",
            g["x"],
            g["y"],
            g["mag"],
            "both",
            sersic_n=g["n"],
            re=g["re"],
            gal=len(galaxies) - 1,
        )
    # transients (science only); half on hosts (at most one per galaxy), offset drawn from the
    # host light: b_n (r / r_e)^(1/n) ~ Gamma(2n) is the Sersic light distribution (clipped at
    # 3 r_e)
    tm = cfg.transient_mags
    free_hosts = list(rng.permutation(len(galaxies)))
    for _ in range(cfg.n_transients):
        on_host = bool(free_hosts) and rng.uniform() < cfg.host_fraction
        if on_host:
            g = galaxies[int(free_hosts.pop())]
            bn = 2.0 * g["n"] - 1.0 / 3.0
            r = min(g["re"] * (float(rng.gamma(2.0 * g["n"], 1.0)) / bn) ** g["n"], 3 * g["re"])
            t = rng.uniform(0, 2 * np.pi)
            x, y = g["x"] + r * np.cos(t), g["y"] + r * np.sin(t) * g["q"]
        else:
            x, y = rng.uniform(margin, nx - margin), rng.uniform(margin, ny - margin)
        add("transient", float(x), float(y), float(rng.uniform(*tm)), "sci", host=int(on_host))
    # variable stars: a star that changes by 0.3-1 mag between the epochs
    n_var = min(cfg.n_variables, cfg.n_stars)
    var_idx: Any = rng.choice(cfg.n_stars, size=n_var, replace=False) if n_var else []
    for k in var_idx:
        rows[int(k)]["dmag"] = float(rng.uniform(0.3, 1.0) * rng.choice([-1, 1]))
        rows[int(k)]["kind"] = "variable"

    names = ("kind", "x_ref", "y_ref", "mag", "frame", "dmag", "host", "sersic_n", "re", "gal")
    dtypes = ("U16", "f8", "f8", "f8", "U4", "f8", "i4", "f8", "f8", "i4")
    defaults = {"dmag": 0.0, "host": 0, "sersic_n": 0.0, "re": 0.0, "gal": -1}
    tab = Table(names=names, dtype=dtypes)
    for r in rows:
        tab.add_row([r.get(k, defaults.get(k)) for k in names])
    ra, dec = sky_of(np.asarray(tab["x_ref"], float), np.asarray(tab["y_ref"], float))
    tab["ra"], tab["dec"] = ra, dec
    xs, ys = wcs_sci.world_to_pixel_values(ra, dec)
    tab["x_sci"], tab["y_sci"] = np.asarray(xs), np.asarray(ys)

    images = {}
    for name, xcol, ycol in (("ref", "x_ref", "y_ref"), ("sci", "x_sci", "y_sci")):
        psf = psfs[name]
        zp = zps[name]
        depth = cfg.ref_depth if name == "ref" else 1.0
        img = np.zeros((ny, nx), dtype=np.float64)
        fw = np.zeros(len(tab))
        for i, r in enumerate(tab):
            if r["frame"] == "sci" and name == "ref":
                fw[i] = psf.at(float(r[xcol]), float(r[ycol]))[0]
                continue
            x, y = float(r[xcol]), float(r[ycol])
            fw[i] = psf.at(x, y)[0]
            mag = float(r["mag"]) + (float(r["dmag"]) if name == "sci" else 0.0)
            flux = 10 ** (-0.4 * (mag - zp))
            if r["kind"] == "galaxy":
                st = galaxy_stamp(galaxies[int(r["gal"])], psf, x, y)
            else:
                size = 61 if r["kind"] == "saturated_star" or mag < zp - 13 else cfg.stamp
                st = psf.stamp(x, y, size)
            _add_stamp(img, flux * st, x, y)
        tab[f"fwhm_{name}"] = fw
        if base is not None:
            # real frame + injected flux with its own Poisson noise (the frame has sky + noise)
            g = gains[name]
            added = rng.poisson(np.clip(img, 0, None) * g).astype(np.float64) / g
            img = (base.reference if name == "ref" else base.science) + added
            _bleed(img, sats[name])
            images[name] = img
            continue
        # sky with a linear gradient
        yy, xx = np.mgrid[0:ny, 0:nx]
        gdir = rng.uniform(0, 2 * np.pi)
        sky = cfg.sky * (
            1.0
            + cfg.sky_gradient * ((xx / nx - 0.5) * np.cos(gdir) + (yy / ny - 0.5) * np.sin(gdir))
        )
        sky_level = cfg.sky * (1.0 + float(rng.uniform(-0.05, 0.05))) / cfg.sky
        expected = img + sky * sky_level
        # noise: a stack of `depth` exposures, averaged (in ADU per exposure)
        e = rng.poisson(np.clip(expected, 0, None) * cfg.gain * depth).astype(np.float64)
        e += rng.normal(0.0, cfg.read_noise * np.sqrt(depth), size=e.shape)
        img = e / (cfg.gain * depth)
        _bleed(img, cfg.saturation)
        images[name] = img

    # artefacts on the science frame
    sci = images["sci"]
    art: list[dict[str, Any]] = []
    for _ in range(cfg.n_cosmics):
        x0, y0 = float(rng.uniform(3, nx - 3)), float(rng.uniform(3, ny - 3))
        length = int(rng.integers(1, 6))
        t = rng.uniform(0, np.pi)
        amp = float(rng.uniform(10, 100) * art_sigma)
        for k in range(length):
            xi = int(np.clip(round(x0 + k * np.cos(t)), 0, nx - 1))
            yi = int(np.clip(round(y0 + k * np.sin(t)), 0, ny - 1))
            sci[yi, xi] += amp * float(rng.uniform(0.5, 1.0))
        # recorded at the middle of the track (where a detection's centroid falls)
        xm = x0 + 0.5 * (length - 1) * np.cos(t)
        ym = y0 + 0.5 * (length - 1) * np.sin(t)
        art.append({"kind": "cosmic", "x_sci": float(xm), "y_sci": float(ym)})
    for _ in range(cfg.n_hot):
        xi, yi = int(rng.integers(0, nx)), int(rng.integers(0, ny))
        sci[yi, xi] += float(rng.uniform(20, 200) * art_sigma)
        art.append({"kind": "hot_pixel", "x_sci": float(xi), "y_sci": float(yi)})
    for _ in range(cfg.n_bad_columns):
        xi = int(rng.integers(5, nx - 5))
        y0 = int(rng.integers(0, ny // 2))
        y1 = ny if rng.uniform() < 0.5 else int(rng.integers(ny // 2, ny))
        sci[y0:y1, xi] = float(rng.choice([0.0, sats["sci"] * 0.5]))
        art.append({"kind": "bad_column", "x_sci": float(xi), "y_sci": 0.5 * (y0 + y1 - 1)})
    for a in art:
        r2, d2 = wcs_sci.pixel_to_world_values(a["x_sci"], a["y_sci"])
        xr, yr = wcs_ref.world_to_pixel_values(r2, d2)
        tab.add_row(
            {
                "kind": a["kind"],
                "x_ref": float(xr),
                "y_ref": float(yr),
                "mag": 99.0,
                "frame": "sci",
                "dmag": 0.0,
                "host": 0,
                "sersic_n": 0.0,
                "re": 0.0,
                "gal": -1,
                "ra": float(r2),
                "dec": float(d2),
                "x_sci": a["x_sci"],
                "y_sci": a["y_sci"],
                "fwhm_ref": 0.0,
                "fwhm_sci": 0.0,
            }
        )
    # bleed-trail entries (one per saturated star)
    for r in list(tab[tab["kind"] == "saturated_star"]):
        tab.add_row({**{c: r[c] for c in tab.colnames}, "kind": "bleed", "frame": "both"})
    tab["real"] = np.isin(tab["kind"], REAL_KINDS)
    tab["id"] = np.arange(len(tab), dtype=np.int64)

    headers = {}
    for name, wcs in (("ref", wcs_ref), ("sci", wcs_sci)):
        h = wcs.to_header()
        if base is not None:
            real = (base.header_ref if name == "ref" else base.header_sci).copy()
            for key in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BZERO"):
                real.remove(key, ignore_missing=True, remove_all=True)
            real.remove("BSCALE", ignore_missing=True, remove_all=True)
            real.update(h)
            h = real
            h["SIMWCS"] = (synthetic_wcs, "surveynet: synthetic WCS (frames had none)")
            h["SIMBASE"] = (True, "surveynet: simulated sources on a real frame")
        h["GAIN"] = (gains[name], "e-/ADU (effective)")
        h["RDNOISE"] = (cfg.read_noise, "read noise per exposure (e-)")
        h["MAGZP"] = (round(zps[name], 6), "ADU = 10^(-0.4 (m - MAGZP))")
        h["SATURATE"] = (sats[name], "saturation level (ADU)")
        h["SKYLEVEL"] = (cfg.sky, "nominal sky (ADU)")
        h["FWHM"] = (round(psfs[name].fwhm0, 4), "PSF FWHM at the centre (px)")
        h["PSFBETA"] = (round(psfs[name].beta, 4), "Moffat beta")
        h["PSFGX"] = (round(psfs[name].gx, 5), "FWHM change per half-frame in x")
        h["PSFGY"] = (round(psfs[name].gy, 5), "FWHM change per half-frame in y")
        h["PSFELL"] = (round(psfs[name].e0, 5), "PSF ellipticity at the centre")
        h["PSFANG"] = (round(psfs[name].angle, 5), "PSF position angle (rad)")
        if base is None:
            h["FILTER"] = cfg.filter
            h["EXPTIME"] = (1.0, "s")
            h["NCOMBINE"] = (cfg.ref_depth if name == "ref" else 1.0, "exposures stacked")
        headers[name] = h
    return SimulatedPair(
        science=images["sci"].astype(np.float32),
        reference=images["ref"].astype(np.float32),
        wcs_sci=wcs_sci,
        wcs_ref=wcs_ref,
        header_sci=headers["sci"],
        header_ref=headers["ref"],
        truth=tab,
    )


def write_pair(
    pair: SimulatedPair,
    outdir: str | os.PathLike[str],
    name: str,
    *,
    provenance: fits.Header | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``<name>_sci.fits``, ``<name>_ref.fits`` and ``<name>_truth.fits`` atomically.

    Parameters
    ----------
    pair : SimulatedPair
        The pair.
    outdir : path
        Output folder.
    name : str
        File stem.
    provenance : astropy.io.fits.Header, optional
        Cards added to every primary header.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    dict
        ``{"sci": path, "ref": path, "truth": path}``.
    """
    from surveynet.io.fits import write_catalog, write_hdulist

    out = Path(outdir)
    paths = {}
    for key, data, hdr in (
        ("sci", pair.science, pair.header_sci),
        ("ref", pair.reference, pair.header_ref),
    ):
        h = fits.Header(hdr)
        if provenance is not None:
            h.update(provenance)
        h["EXTNAME"] = "SCI" if key == "sci" else "REF"
        h["BUNIT"] = "adu"
        paths[key] = write_hdulist(
            out / f"{name}_{key}.fits", [fits.PrimaryHDU(data, header=h)], overwrite=overwrite
        )
    truth = Table(pair.truth, copy=True)
    truth.meta = {}
    for c in ("x_ref", "y_ref", "x_sci", "y_sci", "fwhm_ref", "fwhm_sci", "re"):
        truth[c].unit = "pix"
    for c in ("ra", "dec"):
        truth[c].unit = "deg"
    for c in ("mag", "dmag"):
        truth[c].unit = "mag"
    hdr = fits.Header(provenance) if provenance is not None else fits.Header()
    hdr["PIXCONV"] = ("0-based", "numpy pixels: x = column, y = row")
    hdr["SCIFILE"] = paths["sci"].name
    hdr["REFFILE"] = paths["ref"].name
    paths["truth"] = write_catalog(
        out / f"{name}_truth.fits", {"TRUTH": truth}, hdr, overwrite=overwrite
    )
    log.info("wrote pair %s (%d truth rows)", name, len(truth))
    return paths


def read_truth(path: str | os.PathLike[str]) -> Table:
    """Read a truth file written by :func:`write_pair` (lower-case column names).

    Parameters
    ----------
    path : path
        ``<name>_truth.fits``.

    Returns
    -------
    astropy.table.Table
        Columns as in :attr:`SimulatedPair.truth`.
    """
    t = Table.read(path, hdu="TRUTH")
    for c in list(t.colnames):
        t.rename_column(c, c.lower())
    return t
