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
from surveynet.transient.psf import find_stars

__all__ = ["Frame", "Subtraction", "read_frame", "register_to", "subtract"]

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


def subtract(
    science: Frame,
    reference: Frame,
    *,
    register: str = "wcs",
    kernel_size: int = 15,
    kernel_order: int = 1,
    n_stars: int = 60,
    saturation: float = 0.0,
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
        scale = 1.0
        if science.zp > 0 and reference.zp > 0:
            dz = reference.zp - science.zp
            scale = 10 ** (0.4 * dz) if conv == "reference" else 10 ** (-0.4 * dz)
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
