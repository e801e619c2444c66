"""``detect``: subtraction and detection on the difference image (gmadet-run, realbogus.md §1.2).

For each science frame: :func:`surveynet.transient.subtract.subtract` against its reference,
then sep on the difference with the propagated noise map (``detect.threshold`` sigma, gmadet 4;
positive detections only, as gmadet's ``FlagSub``), aperture photometry and shape measures,
flags (:class:`~surveynet.transient.catalog.CandidateFlag`). Writes, per science file
``<stem>.fits`` (``<stem>`` drops a trailing ``_sci``):

- ``<stem>_diff.fits``: HDUs ``DIFF`` (difference, science flux units), ``ERR`` (its 1-sigma
  noise, 0 where masked), ``MASK`` (uint8, 1 = invalid), ``SCI`` (background-subtracted
  science), ``REF`` (registered, background-subtracted reference), ``KERNEL``;
- ``<stem>_cands.fits``: the candidate table (:mod:`surveynet.transient.catalog`), whose header
  names these files and the truth found beside the science frame (``<stem>_truth.fits`` of
  ``simulate``, ``simulated_objects.ecsv`` of ``inject``).

An empty candidate list is a valid output (a table with no rows), not an error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from surveynet.errors import InputError
from surveynet.io.fits import provenance_header, write_catalog, write_hdulist
from surveynet.transient.catalog import CANDIDATE_COLUMNS, CandidateFlag, empty_candidates
from surveynet.transient.config import DetectConfig
from surveynet.transient.subtract import Frame, Subtraction, read_frame, subtract

__all__ = ["detect_candidates", "detect_files", "detect_pair", "stem_of"]

log = logging.getLogger(__name__)


def stem_of(path: str | os.PathLike[str]) -> str:
    """File stem without ``.fits``/``.fit``/``.fits.gz`` and a trailing ``_sci``.

    Parameters
    ----------
    path : path
        Science file.

    Returns
    -------
    str

    Examples
    --------
    >>> stem_of("out/pair000_sci.fits")
    'pair000'
    """
    name = Path(path).name
    for ext in (".fits.gz", ".fits", ".fit", ".fts"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return name[:-4] if name.endswith("_sci") else name


def detect_candidates(
    sub: Subtraction, science: Frame, config: DetectConfig, *, cutout_size: int = 32
) -> Table:
    """Detect and measure candidates on a difference image.

    Parameters
    ----------
    sub : Subtraction
        Output of :func:`subtract`.
    science : Frame
        The science frame (WCS, zero point).
    config : DetectConfig
        Threshold, minimum area, edge distance.
    cutout_size : int
        Cutout side, for the default edge distance (half of it).

    Returns
    -------
    astropy.table.Table
        Candidate rows (possibly none), highest S/N first, ``CANDID`` 0..n-1.
    """
    import sep

    diff = np.ascontiguousarray(sub.difference)
    err = np.ascontiguousarray(np.where(sub.mask, 0.0, sub.error))
    err_det = np.where(sub.mask, 1e30, err)
    ny, nx = diff.shape
    try:
        objs = sep.extract(
            diff, config.threshold, err=err_det, mask=sub.mask, minarea=config.minarea
        )
    except Exception as exc:  # sep raises plain Exception on pixel-stack overflow
        if "pixstack" in str(exc) or "overflow" in str(exc):
            sep.set_extract_pixstack(int(5e6))
            objs = sep.extract(
                diff, config.threshold, err=err_det, mask=sub.mask, minarea=config.minarea
            )
        else:
            raise InputError(
                f"sep failed on the difference image ({exc})", path=science.path
            ) from exc
    t = empty_candidates()
    if len(objs) == 0:
        return t
    x, y = objs["x"].astype(float), objs["y"].astype(float)
    fw_psf = sub.fwhm_sci
    r_ap = max(1.5 * fw_psf, 2.0)
    flux, fluxerr, aflag = sep.sum_circle(diff, x, y, r_ap, err=err, mask=sub.mask)
    fluxerr = np.where(fluxerr > 0, fluxerr, np.nan)
    snr = flux / fluxerr
    zp = science.zp
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where((flux > 0) & (zp > 0), zp - 2.5 * np.log10(flux), 99.0)
        magerr = np.where((flux > 0) & (zp > 0), 1.0857 * fluxerr / flux, 99.0)
    ix = np.clip(np.round(x).astype(int), 0, nx - 1)
    iy = np.clip(np.round(y).astype(int), 0, ny - 1)
    edge_d = config.edge or cutout_size // 2
    edge = (x < edge_d) | (y < edge_d) | (x > nx - 1 - edge_d) | (y > ny - 1 - edge_d)
    from scipy import ndimage

    near_mask = ndimage.binary_dilation(sub.mask, iterations=3)[iy, ix]
    near_sat = (
        ndimage.binary_dilation(sub.saturated, iterations=3)[iy, ix]
        if (sub.saturated.any())
        else np.zeros(len(x), bool)
    )
    flags = np.zeros(len(x), dtype=np.int32)
    flags |= np.where(edge, int(CandidateFlag.EDGE), 0).astype(np.int32)
    flags |= np.where(near_mask, int(CandidateFlag.NEAR_MASK), 0).astype(np.int32)
    flags |= np.where(near_sat, int(CandidateFlag.SATURATED), 0).astype(np.int32)
    blended = (objs["flag"] & (sep.OBJ_MERGED | sep.OBJ_TRUNC)) != 0
    flags |= np.where(blended, int(CandidateFlag.BLENDED), 0).astype(np.int32)
    trunc = (aflag & (sep.APER_TRUNC | sep.APER_HASMASKED)) != 0
    flags |= np.where(trunc, int(CandidateFlag.APER_TRUNC), 0).astype(np.int32)
    a, b = objs["a"].astype(float), objs["b"].astype(float)
    fwhm = 2.0 * np.sqrt(np.log(2.0) * (a**2 + b**2))
    peak = objs["peak"].astype(float)
    if science.wcs is not None:
        ra, dec = science.wcs.pixel_to_world_values(x, y)
    else:
        ra = dec = np.full(len(x), np.nan)
    vals: dict[str, Any] = {
        "CANDID": np.arange(len(x), dtype=np.int64),
        "X": x,
        "Y": y,
        "RA": np.asarray(ra, float),
        "DEC": np.asarray(dec, float),
        "FLUX": flux,
        "FLUXERR": fluxerr,
        "SNR": snr,
        "MAG": mag,
        "MAGERR": magerr,
        "PEAK": peak,
        "PEAK_SNR": peak / np.where(err[iy, ix] > 0, err[iy, ix], np.nan),
        "A": a,
        "B": b,
        "THETA": objs["theta"].astype(float),
        "FWHM": fwhm,
        "ELONG": a / np.maximum(b, 1e-6),
        "NPIX": objs["npix"].astype(np.int32),
        "FWHMPSF": np.full(len(x), fw_psf),
        "FWHM_RATIO": fwhm / fw_psf,
        "SEP_FLAG": objs["flag"].astype(np.int32),
        "FLAGS": flags,
        "EDGE": edge,
    }
    t = Table({k: np.asarray(vals[k]).astype(CANDIDATE_COLUMNS[k][0]) for k in CANDIDATE_COLUMNS})
    for name, (_, unit) in CANDIDATE_COLUMNS.items():
        if unit:
            t[name].unit = unit
    order = np.argsort(-np.nan_to_num(t["SNR"], nan=-np.inf), kind="stable")
    t = t[order]
    if config.max_candidates and len(t) > config.max_candidates:
        t = t[: config.max_candidates]
    t["CANDID"] = np.arange(len(t), dtype=np.int64)
    return t


def _truth_files(science: Path) -> dict[str, str]:
    """Truth and positions files found beside a science frame."""
    out = {}
    truth = science.with_name(stem_of(science) + "_truth.fits")
    if truth.is_file():
        out["TRUTHFIL"] = str(truth.resolve())
    pos = science.with_name("simulated_objects.ecsv")
    if pos.is_file():
        out["POSFILE"] = str(pos.resolve())
    return out


def detect_pair(
    science_path: str | os.PathLike[str],
    reference_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: DetectConfig,
    *,
    cutout_size: int = 32,
    overwrite: bool = False,
    config_hash: str | None = None,
) -> Path:
    """Subtract, detect and write one science frame's difference and candidate files.

    Parameters
    ----------
    science_path, reference_path : path
        The two frames.
    out : path
        Output folder.
    config : DetectConfig
        Settings.
    cutout_size : int
        Cutout side (default edge distance).
    overwrite : bool
        Replace existing outputs (checked before any work).
    config_hash : str, optional
        Recorded in the headers.

    Returns
    -------
    Path
        The candidate file.

    Raises
    ------
    InputError
        Bad input (see :func:`subtract`).
    FileExistsError
        Outputs exist and ``overwrite`` is False.
    """
    sp = Path(science_path)
    outd = Path(out)
    stem = stem_of(sp)
    diff_path = outd / f"{stem}_diff.fits"
    cand_path = outd / f"{stem}_cands.fits"
    for p in (diff_path, cand_path):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    sci = read_frame(sp)
    ref = read_frame(reference_path)
    sub = subtract(
        sci,
        ref,
        register=config.register,
        kernel_size=config.kernel_size,
        kernel_order=config.kernel_order,
        n_stars=config.n_kernel_stars,
        saturation=config.saturation,
        method=config.method,
    )
    cands = detect_candidates(sub, sci, config, cutout_size=cutout_size)
    hdr = provenance_header(pipeline="transient", config_hash=config_hash)
    files = {
        "SCIFILE": str(sp.resolve()),
        "REFFILE": str(Path(reference_path).resolve()),
        "DIFFFILE": diff_path.name,
        **_truth_files(sp),
    }
    info = {
        "PIXCONV": ("0-based", "x = column, y = row of the numpy array"),
        "FWHMSCI": (round(sub.fwhm_sci, 4), "science stars FWHM (px)"),
        "FWHMREF": (round(sub.fwhm_ref, 4), "reference stars FWHM (px)"),
        "CONVOLVD": (sub.convolved, "frame convolved by the matching kernel"),
        "KSTARS": (sub.n_stars, "stars in the kernel fit"),
        "RMSSCI": (round(sub.rms_sci, 4), "science background rms (ADU)"),
        "RMSREF": (round(sub.rms_ref, 4), "reference background rms (ADU)"),
        "MAGZP": (sci.zp, "science zero point"),
        "FILTER": str(sci.header.get("FILTER", "")),
        "NOISECOR": (
            round(float(sub.info.get("noise_correction", 1.0)), 4),
            "ERR scale from random apertures",
        ),
        "MASKFRAC": (round(float(sub.mask.mean()), 5), "masked fraction of the difference"),
        "NCAND": (len(cands), "candidates"),
    }
    dh = fits.Header(hdr)
    for k, v in {**files, **info}.items():
        dh[k] = v
    hdus: list[Any] = [fits.PrimaryHDU(header=dh)]
    w = sci.wcs.to_header() if sci.wcs is not None else fits.Header()
    for name, arr in (
        ("DIFF", sub.difference.astype(np.float32)),
        ("ERR", np.where(sub.mask, 0.0, sub.error).astype(np.float32)),
        ("MASK", sub.mask.astype(np.uint8)),
        ("SCI", sub.science.astype(np.float32)),
        ("REF", sub.reference.astype(np.float32)),
        ("KERNEL", sub.kernel.astype(np.float32)),
    ):
        h = fits.ImageHDU(arr, header=w if name != "KERNEL" else None, name=name)
        hdus.append(h)
    write_hdulist(diff_path, hdus, overwrite=overwrite)
    write_catalog(cand_path, {"CANDIDATES": cands}, dh, overwrite=overwrite)
    log.info("%s: %d candidates", sp.name, len(cands))
    return cand_path


_SEP = "\x1f"  # joins a science and a reference path into one runner item


def _detect_item(
    item: str,
    *,
    out: str,
    config: DetectConfig,
    cutout_size: int,
    overwrite: bool,
    config_hash: str | None,
) -> str:
    """Runner task: one ``science<SEP>reference`` pair -> its candidate file path."""
    sci, ref = item.split(_SEP)
    return str(
        detect_pair(
            sci,
            ref,
            out,
            config,
            cutout_size=cutout_size,
            overwrite=overwrite,
            config_hash=config_hash,
        )
    )


def detect_files(
    sciences: list[str | os.PathLike[str]],
    references: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: DetectConfig,
    *,
    cutout_size: int = 32,
    overwrite: bool = False,
    config_hash: str | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = True,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Run :func:`detect_pair` on many frames; a bad frame is reported, not fatal.

    Parameters
    ----------
    sciences : list of path
        Science frames.
    references : list of path
        One reference for all, or one per science frame.
    out : path
        Output folder.
    config : DetectConfig
        Settings.
    cutout_size : int
        Cutout side.
    overwrite : bool
        Replace outputs.
    config_hash : str, optional
        Recorded in the headers.
    workers, scheduler : int, str
        :func:`surveynet.runner.run_batch` settings (0 = in process; many frames on Dask).
    quiet : bool
        No progress bar.

    Returns
    -------
    written : list of Path
        Candidate files.
    failed : list of (str, str)
        ``(science file, reason)`` of each failure.

    Raises
    ------
    InputError
        The numbers of science and reference frames do not match.
    """
    if len(references) not in (1, len(sciences)):
        raise InputError(
            f"{len(references)} reference frames for {len(sciences)} science frames: give one "
            "reference, or one per science frame",
            column="--reference",
        )
    refs = references * len(sciences) if len(references) == 1 else references
    outd = Path(out)
    outd.mkdir(parents=True, exist_ok=True)
    from surveynet.runner import run_batch

    items = [f"{s}{_SEP}{r}" for s, r in zip(sciences, refs, strict=True)]
    results = run_batch(
        _detect_item,
        items,
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        desc="transient detect",
        out=str(outd),
        config=config,
        cutout_size=cutout_size,
        overwrite=overwrite,
        config_hash=config_hash,
    )
    written, failed = [], []
    for res in results:
        sci = res.input.split(_SEP)[0]
        if res.ok:
            written.append(Path(res.value))
        else:
            log.warning("%s: %s", sci, res.error)
            failed.append((sci, str(res.error)))
    return written, failed
