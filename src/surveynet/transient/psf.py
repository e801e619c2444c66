"""Empirical PSF of an image from its stars (the PSFEx replacement of the pipeline).

Stars are found with sep on the background-subtracted image; isolated, unsaturated, round,
high-S/N ones are cut out, recentred on their windowed centroid (cubic-spline shift) and fitted
pixel by pixel with a PSF that varies linearly across the frame (PSFEx ``PSFVAR_DEGREES`` 1):
``P(x, y) = P0 + u P1 + v P2`` with ``u, v`` the position scaled to [-1, 1]. Every rendered
stamp is shifted to its sub-pixel position, clipped at 0 and normalised to unit sum (gmadet does
not renormalise after resampling, realbogus.md §1.9).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from surveynet.errors import InputError

__all__ = ["EmpiricalPsf", "estimate_psf", "find_stars"]

log = logging.getLogger(__name__)


@dataclass
class EmpiricalPsf:
    """A linearly varying pixel PSF.

    Attributes
    ----------
    coeffs : ndarray of shape (3, size, size)
        ``P0, P1, P2`` (constant, x and y terms).
    nx, ny : int
        Frame shape the positions are scaled with.
    fwhm : float
        FWHM (px) of ``P0`` (from its second moments, Gaussian equivalent).
    n_stars : int
        Stars used.
    """

    coeffs: NDArray[np.float64]
    nx: int
    ny: int
    fwhm: float
    n_stars: int

    @property
    def size(self) -> int:
        """Stamp side (px)."""
        return int(self.coeffs.shape[-1])

    def at(self, x: float, y: float) -> NDArray[np.float64]:
        """Unit-sum PSF centred on the stamp centre, at frame position ``(x, y)``.

        Parameters
        ----------
        x, y : float
            0-based pixel coordinates (x = column).

        Returns
        -------
        ndarray of shape (size, size)
        """
        u = (x - self.nx / 2) / (self.nx / 2)
        v = (y - self.ny / 2) / (self.ny / 2)
        p = self.coeffs[0] + u * self.coeffs[1] + v * self.coeffs[2]
        p = np.clip(p, 0, None)
        s = p.sum()
        return p / s if s > 0 else self.coeffs[0] / self.coeffs[0].sum()

    def stamp(self, x: float, y: float) -> NDArray[np.float64]:
        """Unit-sum PSF at sub-pixel position ``(x, y)``, centred on pixel ``(round(x), round(y))``.

        Parameters
        ----------
        x, y : float
            0-based pixel coordinates of the source.

        Returns
        -------
        ndarray of shape (size, size)
        """
        p = self.at(x, y)
        dx, dy = x - round(x), y - round(y)
        if dx or dy:
            p = ndimage.shift(p, (dy, dx), order=3, mode="constant")
            p = np.clip(p, 0, None)
        return p / p.sum()


def _fwhm_from_moments(p: NDArray[np.float64]) -> float:
    """Gaussian-equivalent FWHM of a centred stamp from its second moments."""
    n = p.shape[0]
    c = n // 2
    yy, xx = np.mgrid[0:n, 0:n] - c
    w = np.clip(p, 0, None)
    r = (xx**2 + yy**2) <= (n // 3) ** 2
    w = w * r
    s2 = float((w * (xx**2 + yy**2)).sum() / w.sum()) / 2.0
    return float(2.3548 * np.sqrt(max(s2, 1e-6)))


def find_stars(
    data: NDArray[Any],
    err: float | NDArray[Any],
    *,
    mask: NDArray[np.bool_] | None = None,
    saturation: float = np.inf,
    raw: NDArray[Any] | None = None,
    size: int = 25,
    min_snr: float = 30.0,
    max_n: int = 60,
    isolation: float | None = None,
) -> NDArray[Any]:
    """Isolated, unsaturated, high-S/N point-like sources (sep catalogue rows), brightest first.

    Parameters
    ----------
    data : ndarray of shape (ny, nx)
        Background-subtracted image.
    err : float or ndarray
        Noise (ADU).
    mask : ndarray of bool, optional
        Bad pixels.
    saturation : float
        Saturation level of ``raw`` (stars touching it are rejected).
    raw : ndarray, optional
        Image before background subtraction (for the saturation test; default ``data``).
    size : int
        Stamp side: stars closer than ``size`` to another detection or ``size / 2`` to an
        edge are rejected.
    min_snr : float
        Minimum flux S/N.
    max_n : int
        Maximum number returned.
    isolation : float, optional
        No other detection brighter than 1 % of the star within this distance (px; default
        ``size``).

    Returns
    -------
    ndarray
        sep structured array of the selected stars.
    """
    import sep

    d = np.ascontiguousarray(data, dtype=np.float64)
    m = None if mask is None else np.ascontiguousarray(mask, dtype=bool)
    objs = sep.extract(d, 10.0, err=err, mask=m, minarea=5)
    if len(objs) == 0:
        return objs
    ny, nx = d.shape
    h = size // 2 + 2
    x, y = objs["x"], objs["y"]
    ok = (x > h) & (x < nx - 1 - h) & (y > h) & (y < ny - 1 - h) & (objs["flag"] == 0)
    errv = float(np.median(err)) if np.ndim(err) else float(err)
    snr = objs["flux"] / np.sqrt(objs["npix"] * errv**2 + np.clip(objs["flux"], 0, None))
    ok &= snr > min_snr
    ok &= objs["b"] / np.maximum(objs["a"], 1e-6) > 0.7
    r = raw if raw is not None else data
    peaks = np.array(
        [
            r[round(yy) - 2 : round(yy) + 3, round(xx) - 2 : round(xx) + 3].max() if o else 0.0
            for xx, yy, o in zip(x, y, ok, strict=True)
        ]
    )
    ok &= peaks < 0.8 * saturation
    if mask is not None:
        ok &= np.array(
            [
                not mask[
                    round(yy) - h + 2 : round(yy) + h - 1, round(xx) - h + 2 : round(xx) + h - 1
                ].any()
                if o
                else False
                for xx, yy, o in zip(x, y, ok, strict=True)
            ]
        )
    # isolation from every other detection
    if len(objs) > 1:
        from scipy.spatial import cKDTree

        iso = float(size if isolation is None else isolation)
        tree = cKDTree(np.column_stack([x, y]))
        for i in np.nonzero(ok)[0]:
            nb = [j for j in tree.query_ball_point((x[i], y[i]), iso) if j != i]
            if any(objs["flux"][j] > 0.01 * objs["flux"][i] for j in nb):
                ok[i] = False
    sel = objs[ok]
    sel = sel[np.argsort(-sel["flux"])]
    # drop the broadest (galaxies, blends): keep sizes near the median
    if len(sel) > 5:
        med = np.median(sel["a"])
        sel = sel[sel["a"] < 1.5 * med]
    return sel[:max_n]


def estimate_psf(
    data: NDArray[Any],
    err: float | NDArray[Any],
    *,
    mask: NDArray[np.bool_] | None = None,
    saturation: float = np.inf,
    raw: NDArray[Any] | None = None,
    size: int = 25,
    max_stars: int = 40,
    where: str = "",
) -> EmpiricalPsf:
    """Estimate a linearly varying PSF from the stars of an image.

    Parameters
    ----------
    data : ndarray of shape (ny, nx)
        Background-subtracted image.
    err : float or ndarray
        Noise (ADU).
    mask : ndarray of bool, optional
        Bad pixels.
    saturation : float
        Saturation level.
    raw : ndarray, optional
        Image before background subtraction.
    size : int
        PSF stamp side (odd).
    max_stars : int
        Stars used at most.
    where : str
        File name for error messages.

    Returns
    -------
    EmpiricalPsf

    Raises
    ------
    InputError
        Fewer than 3 usable stars.
    """
    if size % 2 == 0:
        size += 1
    stars = find_stars(
        data, err, mask=mask, saturation=saturation, raw=raw, size=size, max_n=max_stars
    )
    if len(stars) < 3:
        raise InputError(
            f"only {len(stars)} isolated unsaturated stars: cannot estimate the PSF",
            path=where or None,
        )
    ny, nx = data.shape
    h = size // 2
    stamps, us, vs = [], [], []
    for s in stars:
        xc, yc = float(s["x"]), float(s["y"])
        ix, iy = round(xc), round(yc)
        st = np.asarray(data[iy - h - 1 : iy + h + 2, ix - h - 1 : ix + h + 2], dtype=np.float64)
        st = ndimage.shift(st, (iy - yc, ix - xc), order=3, mode="nearest")[1:-1, 1:-1]
        tot = st.sum()
        if not np.isfinite(tot) or tot <= 0:
            continue
        stamps.append(st / tot)
        us.append((xc - nx / 2) / (nx / 2))
        vs.append((yc - ny / 2) / (ny / 2))
    a = np.array(stamps)
    n = len(a)
    if n < 3:
        raise InputError("fewer than 3 usable PSF stars", path=where or None)
    if n >= 8:
        design = np.column_stack([np.ones(n), us, vs])
        coef, *_ = np.linalg.lstsq(design, a.reshape(n, -1), rcond=None)
        coeffs = coef.reshape(3, size, size)
        # robustness: the constant term is the median stamp (outliers, blends)
        coeffs[0] = np.median(a, axis=0)
    else:
        coeffs = np.zeros((3, size, size))
        coeffs[0] = np.median(a, axis=0)
    coeffs[0] /= coeffs[0].sum()
    fwhm = _fwhm_from_moments(coeffs[0])
    log.debug("PSF from %d stars, FWHM %.2f px", n, fwhm)
    return EmpiricalPsf(coeffs=coeffs, nx=nx, ny=ny, fwhm=fwhm, n_stars=n)
