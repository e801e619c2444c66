"""Registration and PSF-matched image subtraction in numpy/scipy (the HOTPANTS replacement).

1. **Registration** (``detect.register = "wcs"``): the reference is resampled onto the science
   pixel grid. The pixel-to-pixel map science -> sky -> reference is evaluated through the two
   WCS on a coarse grid and fitted by a cubic polynomial in (x, y) (exact to < 1e-4 px for TAN
   frames of a few thousand pixels), then applied with bilinear ``map_coordinates``. With
   ``register = "none"`` the frames must already be pixel-aligned and of the same shape (the
   ProperImage pair).
2. **Masks**: NaN/inf pixels, pixels at or above the saturation level (grown by 3 px), and
   science pixels whose reference position falls outside the reference.
3. **Backgrounds**: ``sep.Background`` (64 px meshes) of each frame, with the masks.
4. **Kernel** (Alard & Lupton 1998 with a delta-function basis): the sharper frame is convolved
   with a ``kernel_size`` x ``kernel_size`` kernel whose pixels vary as a polynomial of degree
   ``kernel_order`` in (x, y), fitted by ridge-regularised least squares on stamps of isolated,
   unsaturated stars (one sigma-clipping pass), plus a constant background offset. Applying it
   is one FFT per polynomial term (the kernel at each output pixel is the polynomial there).
5. **Difference** in science flux units: ``D = S - K*R`` (reference sharper) or
   ``D = (K*S - R) / sum(K)`` (science sharper), with its noise map from the background rms and
   the sources' Poisson noise (``GAIN``), propagated through the kernel, then scaled by the
   robust spread of sums over random apertures divided by their predicted errors (the kernel
   and the resampling correlate neighbouring pixels; ``info["noise_correction"]`` >= 1).

With ``method = "zogy"`` (``detect.method``), steps 4-5 are replaced by the proper image
subtraction of Zackay, Ofek & Gal-Yam (2016, ApJ 830, 27; "ZOGY"), as in ZTF's difference
images, see :func:`zogy_difference`: the PSF of each frame is estimated from its stars
(:func:`surveynet.transient.psf.estimate_psf`, its constant term), the flux ratio of the two
frames from the aperture fluxes of the stars found in both, and the difference ``D`` (eq. 13),
whose background noise is white, is returned in science flux units (``D F_n / F_D``, eq. 15),
so that a point source keeps its science-frame flux; its PSF is ``P_D`` (eq. 14).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from surveynet.errors import InputError
from surveynet.transient.psf import estimate_psf, find_stars

__all__ = [
    "Frame",
    "Subtraction",
    "ZogyResult",
    "read_frame",
    "register_to",
    "subtract",
    "zogy_difference",
]

log = logging.getLogger(__name__)


@dataclass
class Frame:
    """An image with what the pipeline needs from its header.

    Attributes
    ----------
    data : ndarray of shape (ny, nx), float64
        Pixels (ADU); NaN where invalid.
    header : astropy.io.fits.Header
        Primary (or first image) header.
    wcs : astropy.wcs.WCS or None
        Celestial WCS, None when the header has none.
    path : Path or None
        File read.
    gain : float
        e-/ADU (``GAIN``; 0 when absent: no Poisson term in the noise map).
    saturation : float
        ``SATURATE`` (inf when absent).
    zp : float
        ``MAGZP`` (0 when absent).
    """

    data: NDArray[np.float64]
    header: fits.Header
    wcs: WCS | None = None
    path: Path | None = None
    gain: float = 0.0
    saturation: float = np.inf
    zp: float = 0.0

    @property
    def name(self) -> str:
        """File name (or ``<memory>``)."""
        return self.path.name if self.path is not None else "<memory>"


def _celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial WCS of a header, or None."""
    import warnings

    if "CTYPE1" not in header:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        w = WCS(header).celestial
    return w if w.has_celestial else None


def read_frame(path: str | os.PathLike[str]) -> Frame:
    """Read the first image HDU of a FITS file.

    Parameters
    ----------
    path : path
        FITS image (int16 with BZERO, float32...).

    Returns
    -------
    Frame

    Raises
    ------
    InputError
        Unreadable file, no 2-D image.
    """
    p = Path(path)
    try:
        with fits.open(p) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise InputError("no 2-D image HDU", path=p)
            data = np.array(hdu.data, dtype=np.float64)
            header = hdu.header.copy()
    except OSError as exc:
        raise InputError(f"unreadable FITS file ({exc})", path=p) from exc
    return Frame(
        data=data,
        header=header,
        wcs=_celestial_wcs(header),
        path=p,
        gain=float(header.get("GAIN", 0.0) or 0.0),
        saturation=float(header.get("SATURATE", np.inf) or np.inf),
        zp=float(header.get("MAGZP", 0.0) or 0.0),
    )


def _pixel_map(
    src_wcs: WCS, dst_wcs: WCS, shape: tuple[int, int], step: int = 64
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reference-pixel coordinates of every science pixel (polynomial fit of a coarse grid)."""
    ny, nx = shape
    gy = np.linspace(0, ny - 1, max(4, ny // step + 1))
    gx = np.linspace(0, nx - 1, max(4, nx // step + 1))
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    ra, dec = src_wcs.pixel_to_world_values(xx.ravel(), yy.ravel())
    xr, yr = dst_wcs.world_to_pixel_values(ra, dec)
    u, v = xx.ravel() / nx, yy.ravel() / ny
    terms = [u**i * v**j for i in range(4) for j in range(4 - i)]
    a = np.column_stack(terms)
    cx, *_ = np.linalg.lstsq(a, np.asarray(xr), rcond=None)
    cy, *_ = np.linalg.lstsq(a, np.asarray(yr), rcond=None)
    # evaluate separably-ish on the full grid
    uu = np.arange(nx) / nx
    vv = np.arange(ny) / ny
    xmap = np.zeros(shape)
    ymap = np.zeros(shape)
    k = 0
    for i in range(4):
        for j in range(4 - i):
            t = np.outer(vv**j, uu**i)
            xmap += cx[k] * t
            ymap += cy[k] * t
            k += 1
    return xmap, ymap


def register_to(science: Frame, reference: Frame, *, method: str = "wcs") -> Frame:
    """The reference resampled onto the science pixel grid.

    Parameters
    ----------
    science, reference : Frame
        The two frames.
    method : {"wcs", "none"}
        WCS reprojection, or frames already aligned.

    Returns
    -------
    Frame
        Registered reference (NaN outside its footprint), with the science WCS.

    Raises
    ------
    InputError
        ``wcs`` without a WCS in either file; ``none`` with different shapes.
    """
    if method == "none":
        if science.data.shape != reference.data.shape:
            raise InputError(
                f"shape {reference.data.shape} differs from the science frame "
                f"{science.data.shape} ({science.name}); pixel-aligned frames "
                "(detect.register=none) must have the same shape",
                path=reference.path,
            )
        return reference
    if method != "wcs":
        raise ValueError(f"unknown registration {method!r}; use wcs or none")
    for f in (science, reference):
        if f.wcs is None:
            raise InputError(
                "no celestial WCS in the header, needed by detect.register=wcs "
                "(use --set detect.register=none for pixel-aligned frames)",
                path=f.path,
            )
    assert science.wcs is not None and reference.wcs is not None
    xmap, ymap = _pixel_map(science.wcs, reference.wcs, science.data.shape)
    src = reference.data
    bad = ~np.isfinite(src)
    filled = np.where(bad, 0.0, src)
    out = ndimage.map_coordinates(filled, [ymap, xmap], order=1, mode="constant", cval=np.nan)
    ny, nx = src.shape
    outside = (xmap < 0) | (xmap > nx - 1) | (ymap < 0) | (ymap > ny - 1)
    if bad.any():
        badr = ndimage.map_coordinates(bad.astype(np.float32), [ymap, xmap], order=1) > 0
        outside |= badr
    out[outside] = np.nan
    return Frame(
        data=out,
        header=reference.header,
        wcs=science.wcs,
        path=reference.path,
        gain=reference.gain,
        saturation=reference.saturation,
        zp=reference.zp,
    )


@dataclass
class Subtraction:
    """Result of :func:`subtract`.

    Attributes
    ----------
    science, reference : ndarray of shape (ny, nx)
        Background-subtracted science and registered reference (0 where masked).
    difference : ndarray of shape (ny, nx)
        Difference in science flux units (0 where masked).
    error : ndarray of shape (ny, nx)
        1-sigma noise of the difference.
    mask : ndarray of bool
        Invalid pixels of the difference (NaN, saturated, outside the reference, border).
    saturated : ndarray of bool
        Saturated pixels (grown), a subset of ``mask``.
    kernel : ndarray of shape (n_terms, k, k)
        PSF-matching kernel coefficients.
    convolved : str
        ``"reference"`` or ``"science"``: which frame was convolved.
    fwhm_sci, fwhm_ref : float
        Gaussian-equivalent FWHM (px) of each frame's stars.
    rms_sci, rms_ref : float
        Global background rms (ADU).
    n_stars : int
        Stars used by the kernel fit.
    info : dict
        More diagnostics.
    """

    science: NDArray[np.float64]
    reference: NDArray[np.float64]
    difference: NDArray[np.float64]
    error: NDArray[np.float64]
    mask: NDArray[np.bool_]
    saturated: NDArray[np.bool_]
    kernel: NDArray[np.float64]
    convolved: str
    fwhm_sci: float
    fwhm_ref: float
    rms_sci: float
    rms_ref: float
    n_stars: int
    info: dict[str, Any] = field(default_factory=dict)


def _poly_terms(order: int, u: Any, v: Any) -> list[Any]:
    """Monomials u^i v^j, i + j <= order (constant first)."""
    return [u**i * v**j for i in range(order + 1) for j in range(order + 1 - i)]


def _fft_correlate_many(
    img: NDArray[np.float64], kernels: NDArray[np.float64]
) -> list[NDArray[np.float64]]:
    """``correlate(img, k)`` ('same', zero padding) for several kernels sharing one FFT."""
    k = kernels.shape[-1]
    h = k // 2
    ny, nx = img.shape
    shape = (sfft.next_fast_len(ny + k - 1, real=True), sfft.next_fast_len(nx + k - 1, real=True))
    fi = sfft.rfft2(img, shape, workers=-1)
    outs = []
    for ker in kernels:
        fk = sfft.rfft2(ker[::-1, ::-1], shape, workers=-1)
        full = sfft.irfft2(fi * fk, shape, workers=-1)
        outs.append(full[h : h + ny, h : h + nx])
    return outs


def _noise_correction(
    diff: NDArray[np.float64],
    err: NDArray[np.float64],
    mask: NDArray[np.bool_],
    radius: float,
    n: int = 3000,
    seed: int = 0,
) -> float:
    """Factor (>= 1) by which aperture sums of ``diff`` vary more than ``err`` predicts.

    Parameters
    ----------
    diff, err : ndarray
        Difference and its per-pixel noise.
    mask : ndarray of bool
        Invalid pixels (avoided).
    radius : float
        Aperture radius (px).
    n : int
        Random apertures.
    seed : int
        Seed of their positions (deterministic output).

    Returns
    -------
    float
        1.4826 MAD of ``sum(diff) / sqrt(sum(err^2))`` over unmasked random apertures.
    """
    import sep

    ny, nx = diff.shape
    r = int(np.ceil(radius)) + 1
    if nx <= 2 * r or ny <= 2 * r:
        return 1.0
    rng = np.random.default_rng(seed)
    x = rng.uniform(r, nx - 1 - r, n)
    y = rng.uniform(r, ny - 1 - r, n)
    e = np.where(mask, 0.0, err)
    f, fe, flag = sep.sum_circle(np.ascontiguousarray(diff), x, y, radius, err=e, mask=mask)
    ok = (flag == 0) & (fe > 0)
    if ok.sum() < 50:
        return 1.0
    z = f[ok] / fe[ok]
    z = z[np.abs(z - np.median(z)) < 5 * 1.4826 * np.median(np.abs(z - np.median(z)))]
    c = float(1.4826 * np.median(np.abs(z - np.median(z))))
    return max(c, 1.0) if np.isfinite(c) else 1.0


def _fwhm(stars: NDArray[Any]) -> float:
    """Median Gaussian-equivalent FWHM of sep star rows."""
    return float(np.median(2.3548 * np.sqrt(0.5 * (stars["a"] ** 2 + stars["b"] ** 2))))


def _psf_at_origin(psf: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.float64]:
    """A centred (odd-sided) PSF stamp embedded in a ``shape`` array, its centre on pixel (0, 0)."""
    k = psf.shape[0]
    h = k // 2
    out = np.zeros(shape)
    out[:k, :k] = psf / psf.sum()
    return np.roll(out, (-h, -h), axis=(0, 1))


@dataclass
class ZogyResult:
    """Result of :func:`zogy_difference`.

    Attributes
    ----------
    difference : ndarray of shape (ny, nx)
        Proper difference ``D`` (ZOGY eq. 13), unit background noise (white).
    psf : ndarray of shape (k, k)
        Its PSF ``P_D`` (eq. 14), unit sum, centred.
    flux_zp : float
        Its flux zero point ``F_D`` (eq. 15): a source of true flux ``f`` (``F_n f`` counts in
        the new image) has total flux ``F_D f`` in ``D``.
    """

    difference: NDArray[np.float64]
    psf: NDArray[np.float64]
    flux_zp: float


def zogy_difference(
    new: NDArray[Any],
    ref: NDArray[Any],
    psf_new: NDArray[Any],
    psf_ref: NDArray[Any],
    *,
    sigma_new: float,
    sigma_ref: float,
    f_new: float = 1.0,
    f_ref: float = 1.0,
) -> ZogyResult:
    """Proper image subtraction of Zackay, Ofek & Gal-Yam (2016, ApJ 830, 27).

    With ``^`` the Fourier transform, the proper difference image (their eq. 13) is

    ``D^ = (F_r P_r^ N^ - F_n P_n^ R^) / sqrt(sigma_n^2 F_r^2 |P_r^|^2 + sigma_r^2 F_n^2 |P_n^|^2)``

    with flux zero point ``F_D = F_r F_n / sqrt(sigma_n^2 F_r^2 + sigma_r^2 F_n^2)`` (eq. 15) and
    PSF ``P_D^ = F_r F_n P_r^ P_n^ / (F_D sqrt(...))`` (eq. 14, the same denominator). For
    background-dominated noise ``D`` has white noise of unit variance. The images are zero-padded
    by the PSF size before the FFTs (no wrap-around); PSFs are spatially constant.

    Parameters
    ----------
    new, ref : ndarray of shape (ny, nx)
        Registered, background-subtracted new (science) image ``N`` and reference ``R`` (0 where
        masked).
    psf_new, psf_ref : ndarray of shape (k, k)
        Their PSFs ``P_n``, ``P_r``: odd sides, centred, normalised to unit sum here.
    sigma_new, sigma_ref : float
        Background noise (per pixel, image units) ``sigma_n``, ``sigma_r``.
    f_new, f_ref : float
        Flux zero points ``F_n``, ``F_r`` (counts per unit true flux; only the ratio matters
        for the shape of ``D``).

    Returns
    -------
    ZogyResult

    Raises
    ------
    ValueError
        Mismatched image shapes, an even-sided PSF, or a non-positive noise or zero point.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[-7:8, -7:8]
    >>> p = np.exp(-(x**2 + y**2) / 4.0)
    >>> n, r = rng.normal(0, 1, (2, 64, 64))
    >>> res = zogy_difference(n, r, p, p, sigma_new=1.0, sigma_ref=1.0)
    >>> bool(0.8 < res.difference.std() < 1.2)
    True
    """
    n = np.asarray(new, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if n.shape != r.shape or n.ndim != 2:
        raise ValueError(f"new and ref must be 2-D of the same shape, got {n.shape}, {r.shape}")
    for name, p in (("psf_new", psf_new), ("psf_ref", psf_ref)):
        if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] % 2 == 0:
            raise ValueError(f"{name} must be a square odd-sided stamp, got {p.shape}")
    if not (sigma_new > 0 and sigma_ref > 0 and f_new > 0 and f_ref > 0):
        raise ValueError("sigma_new, sigma_ref, f_new and f_ref must be positive")
    k = max(psf_new.shape[0], psf_ref.shape[0])
    ny, nx = n.shape
    shape = (sfft.next_fast_len(ny + k, real=True), sfft.next_fast_len(nx + k, real=True))
    pn = sfft.rfft2(_psf_at_origin(np.asarray(psf_new, float), shape), workers=-1)
    pr = sfft.rfft2(_psf_at_origin(np.asarray(psf_ref, float), shape), workers=-1)
    nf = sfft.rfft2(n, shape, workers=-1)
    rf = sfft.rfft2(r, shape, workers=-1)
    a = sigma_new**2 * f_ref**2
    b = sigma_ref**2 * f_new**2
    den = np.sqrt(a * np.abs(pr) ** 2 + b * np.abs(pn) ** 2)
    den = np.maximum(den, 1e-12 * float(den.max()))
    fd = f_ref * f_new / np.sqrt(a + b)
    d = sfft.irfft2((f_ref * pr * nf - f_new * pn * rf) / den, shape, workers=-1)[:ny, :nx]
    pd = np.roll(
        sfft.irfft2(f_ref * f_new * pr * pn / (fd * den), shape, workers=-1), (k // 2,) * 2, (0, 1)
    )[:k, :k]
    pd = pd / pd.sum()
    return ZogyResult(difference=d, psf=pd, flux_zp=float(fd))


def _gaussian_stamp(fwhm: float, size: int) -> NDArray[np.float64]:
    """Unit-sum circular Gaussian stamp."""
    h = size // 2
    y, x = np.mgrid[-h : h + 1, -h : h + 1]
    g = np.exp(-0.5 * (x**2 + y**2) / (fwhm / 2.3548) ** 2)
    return g / g.sum()


def _zp_flux_ratio(science: Frame, reference: Frame) -> float:
    """Reference/science flux ratio from the zero points (1 when either is unknown)."""
    if science.zp > 0 and reference.zp > 0:
        return float(10 ** (0.4 * (reference.zp - science.zp)))
    return 1.0


def _flux_ratio(
    sd: NDArray[np.float64],
    rd: NDArray[np.float64],
    stars: NDArray[Any],
    mask: NDArray[np.bool_],
    radius: float,
) -> float:
    """Median reference/science aperture-flux ratio of stars found in both (NaN if < 3)."""
    import sep

    if len(stars) < 3:
        return float("nan")
    x, y = stars["x"].astype(float), stars["y"].astype(float)
    fs, _, gs = sep.sum_circle(np.ascontiguousarray(sd), x, y, radius, mask=mask)
    fr, _, gr = sep.sum_circle(np.ascontiguousarray(rd), x, y, radius, mask=mask)
    ok = (gs == 0) & (gr == 0) & (fs > 0) & (fr > 0)
    if ok.sum() < 3:
        return float("nan")
    return float(np.median(fr[ok] / fs[ok]))


def subtract(
    science: Frame,
    reference: Frame,
    *,
    register: str = "wcs",
    kernel_size: int = 15,
    kernel_order: int = 1,
    n_stars: int = 60,
    saturation: float = 0.0,
    method: str = "al",
) -> Subtraction:
    """Register, match PSFs and subtract.

    Parameters
    ----------
    science, reference : Frame
        The frames (:func:`read_frame`).
    register : {"wcs", "none"}
        Registration (:func:`register_to`).
    kernel_size : int
        Kernel side (odd).
    kernel_order : int
        Degree of the kernel's spatial polynomial.
    n_stars : int
        Stars used at most in the kernel fit.
    saturation : float
        Saturation level (ADU); 0 = each frame's ``SATURATE`` card.
    method : {"al", "zogy"}
        Alard-Lupton kernel matching (default), or the proper image subtraction of Zackay,
        Ofek & Gal-Yam 2016 (:func:`zogy_difference`; ``kernel_order`` and ``n_stars`` unused
        but for the flux ratio, ``kernel`` holds the difference's PSF ``P_D``, ``convolved`` is
        ``"zogy"``).

    Returns
    -------
    Subtraction

    Raises
    ------
    InputError
        Missing WCS, mismatched shapes, a frame that is (almost) entirely masked, or too few
        stars to fit the kernel; the message names the file.
    """
    import sep

    if method not in ("al", "zogy"):
        raise ValueError(f"unknown subtraction method {method!r}; use al or zogy")
    if kernel_size % 2 == 0:
        kernel_size += 1
    if science.data.ndim != 2:
        raise InputError(f"expected a 2-D image, got shape {science.data.shape}", path=science.path)
    ref = register_to(science, reference, method=register)
    sat_s = saturation or science.saturation
    sat_r = saturation or reference.saturation
    s_raw, r_raw = science.data, ref.data
    bad_s = ~np.isfinite(s_raw)
    bad_r = ~np.isfinite(r_raw)
    sat = np.zeros(s_raw.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        sat |= np.where(bad_s, False, s_raw >= sat_s)
        sat |= np.where(bad_r, False, r_raw >= 0.95 * sat_r)
    if sat.any():
        sat = ndimage.binary_dilation(sat, iterations=3)
    mask = bad_s | bad_r | sat
    frac = float(mask.mean())
    if frac > 0.9:
        raise InputError(
            f"{100 * frac:.0f}% of the pixels are masked (NaN, saturated or outside the "
            f"reference {ref.name}): nothing to subtract",
            path=science.path,
        )
    sd = np.ascontiguousarray(np.where(mask, 0.0, s_raw))
    rd = np.ascontiguousarray(np.where(mask, 0.0, r_raw))
    bs = sep.Background(sd, mask=mask, bw=64, bh=64)
    br = sep.Background(rd, mask=mask, bw=64, bh=64)
    sd = np.where(mask, 0.0, sd - bs.back())
    rd = np.where(mask, 0.0, rd - br.back())
    rms_s, rms_r = float(bs.globalrms), float(br.globalrms)
    if not (rms_s > 0 and rms_r > 0):
        raise InputError("zero background noise (constant or empty frame)", path=science.path)

    size = kernel_size + 16
    iso = size / 2
    st_s = find_stars(
        sd, rms_s, mask=mask, saturation=np.inf, size=size, max_n=3 * n_stars, isolation=iso
    )
    st_r = find_stars(
        rd, rms_r, mask=mask, saturation=np.inf, size=size, max_n=3 * n_stars, isolation=iso
    )
    fw_s = _fwhm(st_s) if len(st_s) else float(science.header.get("FWHM", 0.0) or 0.0)
    fw_r = _fwhm(st_r) if len(st_r) else float(reference.header.get("FWHM", 0.0) or 0.0)
    if not (fw_s > 0 and fw_r > 0):
        raise InputError(
            f"no isolated stars to measure the PSF ({len(st_s)} in the science frame, "
            f"{len(st_r)} in the reference {ref.name}) and no FWHM header card",
            path=science.path,
        )
    if fw_r <= fw_s:
        sharp, broad, conv = rd, sd, "reference"
    else:
        sharp, broad, conv = sd, rd, "science"
    # stars present in both (within 1.5 px)
    from scipy.spatial import cKDTree

    if len(st_s) and len(st_r):
        d, _ = cKDTree(np.column_stack([st_r["x"], st_r["y"]])).query(
            np.column_stack([st_s["x"], st_s["y"]])
        )
        both = st_s[d < 1.5][:n_stars]
    else:
        both = st_s[:0]
    if method == "zogy":
        return _subtract_zogy(
            science,
            reference,
            sd,
            rd,
            mask,
            sat,
            frac,
            (rms_s, rms_r),
            (fw_s, fw_r),
            both,
            kernel_size,
        )
    ny, nx = sd.shape
    k = kernel_size
    h = k // 2
    hs = (size - k) // 2  # stamp half-size of the fitted region
    ncoef = len(_poly_terms(kernel_order, 0.0, 0.0))
    nk = k * k
    # per star: the Gram matrix of the sharp frame's k x k windows and its products with the
    # target; the design matrix [p_0 W, p_1 W, ..., 1] (p the star's polynomial terms) has the
    # normal equations of blocks p_i p_j W^T W, assembled without forming it
    stars_fit: list[dict[str, Any]] = []
    for s in both:
        ix, iy = round(float(s["x"])), round(float(s["y"]))
        if not (hs + h <= ix < nx - hs - h and hs + h <= iy < ny - hs - h):
            continue
        src = sharp[iy - hs - h : iy + hs + h + 1, ix - hs - h : ix + hs + h + 1]
        tgt = broad[iy - hs : iy + hs + 1, ix - hs : ix + hs + 1].ravel()
        cols = sliding_window_view(src, (k, k)).reshape(-1, nk)
        u, v = (ix - nx / 2) / (nx / 2), (iy - ny / 2) / (ny / 2)
        stars_fit.append(
            {
                "cols": cols,
                "b": tgt,
                "uv": (u, v),
                "g": cols.T @ cols,
                "s": cols.sum(axis=0),
                "cb": cols.T @ tgt,
                "sb": float(tgt.sum()),
                "n": float(len(tgt)),
            }
        )
    if len(stars_fit) < 3:
        log.warning(
            "%s: %d stars usable for the kernel fit; Gaussian kernel from the FWHMs instead",
            science.name,
            len(stars_fit),
        )
        kernel_order = 0
        sig = np.sqrt(max(max(fw_s, fw_r) ** 2 - min(fw_s, fw_r) ** 2, 0.01)) / 2.3548
        g = np.exp(-0.5 * (np.arange(k) - h) ** 2 / sig**2)
        gk = np.outer(g, g)
        ratio = _zp_flux_ratio(science, reference)
        scale = ratio if conv == "reference" else 1.0 / ratio
        sol = np.concatenate([(scale * gk / gk.sum()).ravel(), [0.0]])
        keep: list[int] = []
    else:
        sol = None

    def solve(idx: list[int], order: int) -> NDArray[np.float64]:
        nc = len(_poly_terms(order, 0.0, 0.0))
        m = nc * nk + 1
        ata = np.zeros((m, m))
        atb = np.zeros(m)
        for i in idx:
            st = stars_fit[i]
            p = np.asarray(_poly_terms(order, *st["uv"]), float)
            pp = np.outer(p, p)
            for a in range(nc):
                sa = slice(a * nk, (a + 1) * nk)
                for b in range(nc):
                    ata[sa, b * nk : (b + 1) * nk] += pp[a, b] * st["g"]
                ata[sa, -1] += p[a] * st["s"]
                ata[-1, sa] += p[a] * st["s"]
                atb[sa] += p[a] * st["cb"]
            ata[-1, -1] += st["n"]
            atb[-1] += st["sb"]
        lam = 1e-6 * np.trace(ata) / m
        return np.linalg.solve(ata + lam * np.eye(m), atb)

    def chi2(i: int, sol: NDArray[np.float64], order: int) -> float:
        st = stars_fit[i]
        p = _poly_terms(order, *st["uv"])
        keff = sum(c * sol[j * nk : (j + 1) * nk] for j, c in enumerate(p))
        return float(np.sum((st["cols"] @ keff + sol[-1] - st["b"]) ** 2))

    if sol is None:
        idx = list(range(len(stars_fit)))
        if len(idx) < 3 * ncoef and kernel_order > 0:
            log.info("%s: %d stars, constant kernel", science.name, len(idx))
            kernel_order, ncoef = 0, 1
        sol = solve(idx, kernel_order)
        chi = np.array([chi2(i, sol, kernel_order) for i in idx])
        keep = [i for i, c in zip(idx, chi, strict=True) if c <= 3.0 * np.median(chi)]
        if len(keep) >= 3 and len(keep) < len(idx):
            sol = solve(keep, kernel_order)
    kern = sol[:-1].reshape(-1, k, k)
    offset = float(sol[-1])
    uu = ((np.arange(nx) - nx / 2) / (nx / 2))[None, :]  # broadcast, no full grids
    vv = ((np.arange(ny) - ny / 2) / (ny / 2))[:, None]
    conv_terms = _fft_correlate_many(sharp, kern)
    polys = _poly_terms(kernel_order, uu, vv)
    matched = offset + sum(p * c for p, c in zip(polys, conv_terms, strict=True))
    ksum = float(kern[0].sum())
    # noise: background + Poisson of the sources, propagated through the kernel
    g_s = science.gain
    g_r = reference.gain
    var_s = rms_s**2 + (np.clip(sd, 0, None) / g_s if g_s > 0 else 0.0)
    var_r = rms_r**2 + (np.clip(rd, 0, None) / g_r if g_r > 0 else 0.0)
    k2 = float((kern[0] ** 2).sum())
    if conv == "reference":
        diff = broad - matched
        var = var_s + k2 * var_r
    else:
        diff = (matched - broad) / ksum
        var = (k2 * var_s + var_r) / ksum**2
    dmask = ndimage.binary_dilation(mask, iterations=h) if mask.any() else mask.copy()
    border = np.zeros_like(dmask)
    border[:h, :] = border[-h:, :] = True
    border[:, :h] = border[:, -h:] = True
    dmask |= border
    diff = np.where(dmask, 0.0, diff)
    err = np.sqrt(np.where(dmask, np.inf, var))
    # the kernel and the resampling correlate the noise of neighbouring pixels: a sum over an
    # aperture varies more than the per-pixel map says. Calibrate the map on random apertures
    # (robust spread of sum / predicted error, sources clipped) so that fluxes, S/N and the
    # detection threshold are right at the scale of a PSF.
    ncor = _noise_correction(diff, err, dmask, max(1.5 * max(fw_s, fw_r), 2.0))
    err = err * ncor
    log.info(
        "%s: kernel %dx%d order %d from %d stars, convolved %s (FWHM sci %.2f, ref %.2f)",
        science.name,
        k,
        k,
        kernel_order,
        len(keep),
        conv,
        fw_s,
        fw_r,
    )
    return Subtraction(
        science=sd,
        reference=rd,
        difference=diff,
        error=err,
        mask=dmask,
        saturated=sat,
        kernel=kern,
        convolved=conv,
        fwhm_sci=fw_s,
        fwhm_ref=fw_r,
        rms_sci=rms_s,
        rms_ref=rms_r,
        n_stars=len(keep),
        info={
            "masked_fraction": frac,
            "offset": offset,
            "kernel_sum": ksum,
            "kernel": "fit" if keep else "gaussian",
            "noise_correction": ncor,
        },
    )


def _subtract_zogy(
    science: Frame,
    reference: Frame,
    sd: NDArray[np.float64],
    rd: NDArray[np.float64],
    mask: NDArray[np.bool_],
    sat: NDArray[np.bool_],
    frac: float,
    rms: tuple[float, float],
    fwhm: tuple[float, float],
    both: NDArray[Any],
    kernel_size: int,
) -> Subtraction:
    """The ZOGY branch of :func:`subtract` (registered, background-subtracted frames)."""
    rms_s, rms_r = rms
    fw_s, fw_r = fwhm
    fwmax = max(fw_s, fw_r)
    size = max(kernel_size + 10, 2 * int(np.ceil(2.5 * fwmax)) + 1)
    size += 1 - size % 2
    psfs = []
    for data, rms_f, fw, frame in ((sd, rms_s, fw_s, science), (rd, rms_r, fw_r, reference)):
        try:
            psfs.append(
                estimate_psf(data, rms_f, mask=mask, size=size, where=frame.name).at(
                    data.shape[1] / 2, data.shape[0] / 2
                )
            )
        except InputError:
            log.warning("%s: too few PSF stars; Gaussian PSF of FWHM %.2f px", frame.name, fw)
            psfs.append(_gaussian_stamp(fw, size))
    ratio = _flux_ratio(sd, rd, both, mask, max(3.0 * fwmax, 4.0))
    if not np.isfinite(ratio) or ratio <= 0:
        ratio = _zp_flux_ratio(science, reference)
        log.warning("%s: flux ratio from the zero points (%.4g)", science.name, ratio)
    f_n, f_r = 1.0, ratio
    z = zogy_difference(
        sd, rd, psfs[0], psfs[1], sigma_new=rms_s, sigma_ref=rms_r, f_new=f_n, f_ref=f_r
    )
    scale = f_n / z.flux_zp  # D in science flux units: background noise f_n / F_D per pixel
    h = size // 2
    dmask = ndimage.binary_dilation(mask, iterations=h) if mask.any() else mask.copy()
    border = np.zeros_like(dmask)
    border[:h, :] = border[-h:, :] = True
    border[:, :h] = border[:, -h:] = True
    dmask |= border
    diff = np.where(dmask, 0.0, scale * z.difference)
    # background noise of D (white, eq. 13) plus the sources' Poisson noise of the two frames
    # in science flux units (not filtered: an approximation of ZOGY §3.3, then calibrated on
    # random apertures like the Alard-Lupton branch)
    var = scale**2 + (np.clip(sd, 0, None) / science.gain if science.gain > 0 else 0.0)
    if reference.gain > 0:
        var = var + np.clip(rd, 0, None) / reference.gain / f_r**2
    err = np.sqrt(np.where(dmask, np.inf, var))
    ncor = _noise_correction(diff, err, dmask, max(1.5 * fwmax, 2.0))
    err = err * ncor
    log.info(
        "%s: ZOGY, PSF %d px, flux ratio ref/sci %.4g, F_D %.4g (FWHM sci %.2f, ref %.2f)",
        science.name,
        size,
        ratio,
        z.flux_zp,
        fw_s,
        fw_r,
    )
    return Subtraction(
        science=sd,
        reference=rd,
        difference=diff,
        error=err,
        mask=dmask,
        saturated=sat,
        kernel=z.psf[None],
        convolved="zogy",
        fwhm_sci=fw_s,
        fwhm_ref=fw_r,
        rms_sci=rms_s,
        rms_ref=rms_r,
        n_stars=len(both),
        info={
            "masked_fraction": frac,
            "offset": 0.0,
            "kernel_sum": ratio,
            "kernel": "zogy",
            "flux_ratio": ratio,
            "zogy_flux_zp": z.flux_zp,
            "noise_correction": ncor,
        },
    )
