"""``inject``: point sources with each image's own PSF (gmadet-sim, realbogus.md §1.1).

For every image: background and noise with sep, the PSF from the image's stars
(:func:`surveynet.transient.psf.estimate_psf`, linearly varying), then ``inject.n`` sources with
magnitudes uniform in ``[mag_min, mag_max)`` at the zero point ``inject.zp`` (0 = the image's
``MAGZP``: physical magnitudes; gmadet's arbitrary 30 when asked), at uniform **sub-pixel**
positions at least ``inject.margin`` px from the edges, each a unit-sum PSF stamp times
``10^(-0.4 (m - zp))`` ADU with Poisson noise in electrons (``GAIN``; none when the header has no
gain). The injected image is written to the output folder under the same name (the input is
never modified, unlike gmadet), with the cards ``NINJECT`` and ``INJZP``.

Positions file ``simulated_objects.ecsv`` (one per output folder, all images): columns ``idx``,
``filename``, ``x``, ``y``, ``ra``, ``dec``, ``mag``, ``filter``, ``flux`` (ADU), ``fwhm``. Pixel
convention: **0-based numpy coordinates** (x = column, y = row; the centre of ``data[j, i]`` is
``(i, j)``), and ``ra``, ``dec`` from ``WCS.pixel_to_world_values(x, y)`` with the same origin
(gmadet mixes 0-based pixels with ``wcs_pix2world(x, y, 1)``: a one-pixel offset). ``ra`` and
``dec`` are NaN for an image without WCS (e.g. the ProperImage pair).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from surveynet.errors import InputError
from surveynet.io.fits import atomic_path, provenance_header, write_hdulist
from surveynet.transient.config import InjectConfig
from surveynet.transient.psf import EmpiricalPsf, estimate_psf
from surveynet.transient.subtract import Frame, read_frame

__all__ = ["POSITIONS_FILE", "inject_files", "inject_frame"]

log = logging.getLogger(__name__)

#: Name of the positions file written by ``inject``.
POSITIONS_FILE = "simulated_objects.ecsv"


def inject_frame(
    frame: Frame, config: InjectConfig, rng: np.random.Generator
) -> tuple[np.ndarray, Table, EmpiricalPsf]:
    """Inject point sources into one frame.

    Parameters
    ----------
    frame : Frame
        The image (:func:`surveynet.transient.subtract.read_frame`).
    config : InjectConfig
        Settings.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    data : ndarray of shape (ny, nx), float64
        The image with the sources.
    positions : astropy.table.Table
        One row per source (``idx``, ``x``, ``y``, ``ra``, ``dec``, ``mag``, ``flux``, ``fwhm``).
    psf : EmpiricalPsf
        The PSF used.

    Raises
    ------
    InputError
        No zero point (``inject.zp`` 0 and no ``MAGZP``), too few stars for the PSF, or a
        frame smaller than twice the margin.
    """
    import sep

    data = frame.data
    ny, nx = data.shape
    zp = config.zp or frame.zp
    if zp <= 0:
        raise InputError(
            "no zero point: the header has no MAGZP; set --zp (inject.zp)", path=frame.path
        )
    if nx <= 2 * max(config.margin, config.psf_size) or ny <= 2 * max(
        config.margin, config.psf_size
    ):
        raise InputError(f"frame {data.shape} smaller than twice inject.margin", path=frame.path)
    bad = ~np.isfinite(data)
    sat = frame.saturation
    clean = np.ascontiguousarray(np.where(bad, 0.0, data))
    bkg = sep.Background(clean, mask=bad)
    sub = clean - bkg.back()
    psf = estimate_psf(
        sub,
        bkg.globalrms,
        mask=bad,
        saturation=sat,
        raw=clean,
        size=config.psf_size,
        max_stars=config.n_psf_stars,
        where=frame.name,
    )
    m = max(config.margin, psf.size // 2 + 1)
    x = rng.uniform(m, nx - 1 - m, size=config.n)
    y = rng.uniform(m, ny - 1 - m, size=config.n)
    if not config.sub_pixel:
        x, y = np.round(x), np.round(y)
    mags = rng.uniform(config.mag_min, config.mag_max, size=config.n)
    flux = 10 ** (-0.4 * (mags - zp))
    out = data.copy()
    h = psf.size // 2
    gain = frame.gain
    for xi, yi, f in zip(x, y, flux, strict=True):
        st = f * psf.stamp(float(xi), float(yi))
        if config.poisson and gain > 0:
            st = rng.poisson(np.clip(st, 0, None) * gain) / gain
        ix, iy = round(float(xi)), round(float(yi))
        out[iy - h : iy + h + 1, ix - h : ix + h + 1] += st
    if frame.wcs is not None:
        ra, dec = frame.wcs.pixel_to_world_values(x, y)
    else:
        ra = dec = np.full(config.n, np.nan)
    pos = Table(
        {
            "idx": np.arange(config.n, dtype=np.int64),
            "x": x,
            "y": y,
            "ra": np.asarray(ra, float),
            "dec": np.asarray(dec, float),
            "mag": mags,
            "flux": flux,
            "fwhm": np.full(config.n, psf.fwhm),
        }
    )
    return out, pos, psf


def inject_files(
    images: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: InjectConfig,
    *,
    overwrite: bool = False,
) -> Path:
    """Inject sources into every image and write the images and the positions file.

    Parameters
    ----------
    images : list of path
        FITS images.
    out : path
        Output folder (images keep their names; ``simulated_objects.ecsv`` beside them).
    config : InjectConfig
        Settings (``seed``: image ``i`` uses ``default_rng([seed, i])``).
    overwrite : bool
        Replace existing outputs (checked before any work).

    Returns
    -------
    Path
        The positions file.

    Raises
    ------
    FileExistsError
        Outputs exist and ``overwrite`` is False.
    """
    outd = Path(out)
    targets = [outd / Path(p).name for p in images] + [outd / POSITIONS_FILE]
    for t in targets:
        if t.exists() and not overwrite:
            raise FileExistsError(f"{t} exists; pass --overwrite to replace it")
    for p in images:
        if (outd / Path(p).name).resolve() == Path(p).resolve():
            raise InputError("output would overwrite the input image", path=p)
    tables = []
    for i, p in enumerate(images):
        frame = read_frame(p)
        rng = np.random.default_rng([config.seed, i])
        data, pos, psf = inject_frame(frame, config, rng)
        pos["filename"] = Path(p).name
        pos["filter"] = str(frame.header.get("FILTER", ""))
        hdr = fits.Header(frame.header)
        for k, v in provenance_header(pipeline="transient", seed=config.seed).items():
            hdr[k] = v
        hdr["NINJECT"] = (config.n, "point sources injected")
        hdr["INJZP"] = (round(config.zp or frame.zp, 6), "zero point of the injected mags")
        hdr["PSFFWHM"] = (round(psf.fwhm, 4), "FWHM of the estimated PSF (px)")
        hdr["EXTNAME"] = "SCI"
        for k in ("BZERO", "BSCALE"):
            hdr.remove(k, ignore_missing=True)
        write_hdulist(
            outd / Path(p).name,
            [fits.PrimaryHDU(data.astype(np.float32), header=hdr)],
            overwrite=overwrite,
        )
        tables.append(pos)
        log.info("%s: %d sources injected (PSF FWHM %.2f px)", Path(p).name, config.n, psf.fwhm)
    allpos = vstack(tables) if tables else Table()
    allpos = allpos[["idx", "filename", "x", "y", "ra", "dec", "mag", "filter", "flux", "fwhm"]]
    allpos["idx"] = np.arange(len(allpos), dtype=np.int64)
    allpos.meta["pixel_convention"] = (
        "0-based numpy: x = column, y = row; centre of data[j, i] at (i, j); ra/dec from "
        "WCS.pixel_to_world_values(x, y)"
    )
    allpos.meta["zp"] = config.zp or "MAGZP of each image"
    with atomic_path(outd / POSITIONS_FILE, overwrite=overwrite) as tmp:
        allpos.write(tmp, format="ascii.ecsv")
    return outd / POSITIONS_FILE
