"""``cutouts``: candidate stamps and, with ``--training``, labels (gmadet-cutouts, §1.3).

Reads every ``*_cands.fits`` of a detect folder with its ``*_diff.fits`` and writes one file
``cutouts.fits`` (instead of gmadet's thousands of small files):

- ``CUTOUTS``: float32 array (N, 3, size, size), channels ``[science, reference, difference]``
  (braai's order; the science and registered reference are background-subtracted), in ADU
  (no scaling, as gmadet). Centre: the candidate's pixel ``(round(x), round(y))`` sits at index
  ``size // 2`` (0-based) on both axes; for even sizes the window is ``[c - size/2, c + size/2)``.
  **Edge cutouts** keep the full size: pixels outside the frame are ``cutouts.pad_value`` (0) and
  the row gets ``EDGE = True`` (``convert`` leaves them out by default, ``predict`` scores them
  and keeps the flag).
- ``CANDIDATES``: one row per cutout: ``CANDID`` (unique over the folder: file index x 10^6 +
  candidate index), ``FILE``, ``X``, ``Y``, ``RA``, ``DEC``, ``MAG``, ``MAGERR``, ``SNR``,
  ``FWHM``, ``FWHMPSF``, ``FILTER``, ``FLAGS``, ``EDGE``; with ``--training`` also ``LABEL``
  (1 real, 0 bogus), ``TRUTH_KIND``, ``TRUTH_MAG``, ``TRUTH_ID``.
- ``CROSSMATCH`` (``--training``): one row per real source (simulated ``transient``/``variable``
  and injected): ``FILE``, ``X``, ``Y``, ``MAG``, ``KIND``, ``NMATCH`` (candidates within the
  radius), ``CLOSEST_CANDID`` (-1 if none), ``DETECTED``, ``FORCED_SNR`` (aperture S/N at the
  true position on the difference image, for detected and missed sources alike).

Labels (gmadet's rule, per image instead of across images): within ``cutouts.radius`` px, a
candidate is real when it is the closest candidate of exactly one real source; every other
candidate is bogus, with ``TRUTH_KIND`` the kind of the nearest truth row within the radius
(``cosmic``, ``hot_pixel``, ``bleed``, ``star``, ``galaxy``...), ``bad_column`` when within the
radius of a bad column's x, ``blend`` when it is the closest candidate of several real sources,
or ``noise`` (unattributed: noise peaks, subtraction residuals, cosmic-ray tracks' ends).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from surveynet.errors import InputError
from surveynet.io.fits import provenance_header, table_hdu, write_hdulist
from surveynet.sim.images import read_truth
from surveynet.transient.catalog import read_candidates
from surveynet.transient.config import CutoutConfig

__all__ = ["CUTOUT_FILE", "extract_cutouts", "label_candidates", "make_cutouts", "read_cutouts"]

log = logging.getLogger(__name__)

#: File written by ``cutouts``.
CUTOUT_FILE = "cutouts.fits"
#: Truth kinds that are genuine changes (labelled real).
REAL_KINDS = ("transient", "variable", "injected")


def extract_cutouts(
    images: list[NDArray[Any]], x: NDArray[Any], y: NDArray[Any], size: int, pad: float = 0.0
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Cut ``size`` x ``size`` stamps of several aligned images around pixel positions.

    Parameters
    ----------
    images : list of ndarray of shape (ny, nx)
        Aligned images (the channels).
    x, y : ndarray
        0-based positions (x = column).
    size : int
        Stamp side.
    pad : float
        Value of pixels outside the frame.

    Returns
    -------
    cutouts : ndarray of shape (N, n_images, size, size), float32
    edge : ndarray of bool
        True where a stamp reaches outside the frame.

    Examples
    --------
    >>> img = np.arange(100.0).reshape(10, 10)
    >>> c, e = extract_cutouts([img], np.array([5.0, 0.0]), np.array([5.0, 0.0]), 4)
    >>> c[0, 0, 2, 2] == img[5, 5], bool(e[0]), bool(e[1]), float(c[1, 0, 0, 0])
    (np.True_, False, True, 0.0)
    """
    ny, nx = images[0].shape
    n = len(x)
    out = np.full((n, len(images), size, size), pad, dtype=np.float32)
    edge = np.zeros(n, dtype=bool)
    h = size // 2
    for i in range(n):
        ix, iy = round(float(x[i])), round(float(y[i]))
        x0, y0 = ix - h, iy - h
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1, sy1 = min(size, nx - x0), min(size, ny - y0)
        edge[i] = (sx0, sy0, sx1, sy1) != (0, 0, size, size)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        for c, img in enumerate(images):
            out[i, c, sy0:sy1, sx0:sx1] = img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1]
    return out, edge


def _real_sources(header: fits.Header, filename: str) -> tuple[Table, Table | None]:
    """Real sources (x, y, mag, kind, id) of one science file, and its full truth table."""
    rows = []
    truth = None
    tf = header.get("TRUTHFIL")
    if tf and Path(tf).is_file():
        truth = read_truth(tf)
        # brightening only: detection is on positive differences (a fading variable is not
        # a positive candidate); a variable's magnitude is that of its flux change
        real = truth[np.asarray(truth["real"], bool) & (np.asarray(truth["dmag"]) <= 0)]
        for r in real:
            m = float(r["mag"])
            if str(r["kind"]) == "variable":
                df = 10 ** (-0.4 * (m + float(r["dmag"]))) - 10 ** (-0.4 * m)
                m = float(-2.5 * np.log10(df)) if df > 0 else 99.0
            rows.append((float(r["x_sci"]), float(r["y_sci"]), m, str(r["kind"]), int(r["id"])))
    pf = header.get("POSFILE")
    if pf and Path(pf).is_file():
        pos = Table.read(pf, format="ascii.ecsv")
        sci_name = Path(str(header.get("SCIFILE", filename))).name
        pos = pos[pos["filename"] == sci_name]
        for r in pos:
            rows.append(
                (float(r["x"]), float(r["y"]), float(r["mag"]), "injected", 100000 + int(r["idx"]))
            )
    t = (
        Table(
            rows=rows, names=("x", "y", "mag", "kind", "id"), dtype=("f8", "f8", "f8", "U16", "i8")
        )
        if rows
        else Table(names=("x", "y", "mag", "kind", "id"), dtype=("f8", "f8", "f8", "U16", "i8"))
    )
    return t, truth


def label_candidates(
    cands: Table, real: Table, truth: Table | None, radius: float
) -> tuple[NDArray[np.int16], NDArray[Any], NDArray[np.float64], NDArray[np.int64], Table]:
    """Label the candidates of one image against its real sources (see the module docstring).

    Parameters
    ----------
    cands : astropy.table.Table
        Candidates (``X``, ``Y``, ``CANDID``).
    real : astropy.table.Table
        Real sources (``x``, ``y``, ``mag``, ``kind``, ``id``).
    truth : astropy.table.Table or None
        Full truth (kinds of the bogus candidates).
    radius : float
        Match radius (px).

    Returns
    -------
    labels : ndarray of int16
        1 real, 0 bogus.
    kinds : ndarray of str
        Truth kind of each candidate.
    mags : ndarray
        True magnitude of real candidates (99 otherwise).
    ids : ndarray of int64
        Truth id (-1 if none).
    crossmatch : astropy.table.Table
        One row per real source: ``NMATCH``, ``CLOSEST`` (candidate row index, -1), ``DETECTED``.
    """
    n = len(cands)
    labels = np.zeros(n, dtype=np.int16)
    kinds = np.full(n, "noise", dtype="U16")
    mags = np.full(n, 99.0)
    ids = np.full(n, -1, dtype=np.int64)
    nm = np.zeros(len(real), dtype=np.int32)
    closest = np.full(len(real), -1, dtype=np.int64)
    cxy = (
        np.column_stack([np.asarray(cands["X"], float), np.asarray(cands["Y"], float)])
        if n
        else np.zeros((0, 2))
    )
    if truth is not None and n and len(truth):
        txy = np.column_stack(
            [np.asarray(truth["x_sci"], float), np.asarray(truth["y_sci"], float)]
        )
        d, j = cKDTree(txy).query(cxy)
        near = d <= radius
        kinds[near] = np.asarray(truth["kind"])[j[near]]
        ids[near] = np.asarray(truth["id"])[j[near]]
        # a bad column is a line: match on x alone
        for r in truth[np.asarray(truth["kind"]) == "bad_column"]:
            on = ~near & (np.abs(cxy[:, 0] - float(r["x_sci"])) <= radius)
            kinds[on] = "bad_column"
            ids[on] = int(r["id"])
    if n and len(real):
        tree = cKDTree(cxy)
        rxy = np.column_stack([np.asarray(real["x"], float), np.asarray(real["y"], float)])
        within = tree.query_ball_point(rxy, radius)
        d, j = tree.query(rxy)
        for i, w in enumerate(within):
            nm[i] = len(w)
            if w:
                closest[i] = j[i]
        count = np.bincount(closest[closest >= 0], minlength=n)
        for i in range(len(real)):
            c = closest[i]
            if c >= 0 and count[c] == 1:
                labels[c] = 1
                kinds[c] = str(real["kind"][i])
                mags[c] = float(real["mag"][i])
                ids[c] = int(real["id"][i])
            elif c >= 0:
                kinds[c] = "blend"
    xm = Table(
        {
            "X": np.asarray(real["x"], float),
            "Y": np.asarray(real["y"], float),
            "MAG": np.asarray(real["mag"], float),
            "KIND": np.asarray(real["kind"], "U16"),
            "TRUTH_ID": np.asarray(real["id"], np.int64),
            "NMATCH": nm,
            "CLOSEST": closest,
            "DETECTED": nm > 0,
        }
    )
    return labels, kinds, mags, ids, xm


def make_cutouts(
    detect_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: CutoutConfig,
    *,
    training: bool = False,
    overwrite: bool = False,
) -> Path:
    """Cut out every candidate of a detect folder (and label them with ``training``).

    Parameters
    ----------
    detect_dir : path
        Folder with ``*_cands.fits`` and ``*_diff.fits``.
    out : path
        Output folder (``cutouts.fits``).
    config : CutoutConfig
        Size, match radius, padding.
    training : bool
        Label the candidates through the truth/positions named in the candidate headers.
    overwrite : bool
        Replace an existing output (checked before any work).

    Returns
    -------
    Path
        ``out/cutouts.fits``.

    Raises
    ------
    InputError
        No candidate file in the folder; ``training`` without any truth or positions file.
    """
    import sep

    d = Path(detect_dir)
    target = Path(out) / CUTOUT_FILE
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    files = sorted(d.glob("*_cands.fits"))
    if not files:
        raise InputError("no *_cands.fits candidate files (run detect first)", path=d)
    all_cut, tabs, xms = [], [], []
    n_truth = 0
    for fi, cf in enumerate(files):
        cands, hdr = read_candidates(cf)
        diff_path = cf.with_name(str(hdr.get("DIFFFILE", cf.name.replace("_cands", "_diff"))))
        if not diff_path.is_file():
            raise InputError("difference file named in DIFFFILE is missing", path=diff_path)
        with fits.open(diff_path) as hd:
            imgs = [np.asarray(hd[n].data, np.float32) for n in ("SCI", "REF", "DIFF")]
            err = np.asarray(hd["ERR"].data, np.float64)
            mask = np.asarray(hd["MASK"].data, bool)
        x, y = np.asarray(cands["X"], float), np.asarray(cands["Y"], float)
        cut, edge = extract_cutouts(imgs, x, y, config.size, config.pad_value)
        t = Table()
        t["CANDID"] = fi * 1_000_000 + np.asarray(cands["CANDID"], np.int64)
        t["FILE"] = np.array([Path(str(hdr.get("SCIFILE", cf.name))).name] * len(cands), "U80")
        for c in ("X", "Y", "RA", "DEC", "MAG", "MAGERR", "SNR", "FWHM", "FWHMPSF", "FLAGS"):
            t[c] = cands[c]
        t["FILTER"] = np.array([str(hdr.get("FILTER", ""))] * len(cands), "U8")
        t["EDGE"] = np.asarray(cands["EDGE"], bool) | edge
        if training:
            real, truth = _real_sources(hdr, cf.name)
            n_truth += int(truth is not None) + int(bool(hdr.get("POSFILE")))
            lab, kinds, mags, ids, xm = label_candidates(cands, real, truth, config.radius)
            t["LABEL"] = lab
            t["TRUTH_KIND"] = kinds
            t["TRUTH_MAG"] = mags
            t["TRUTH_ID"] = ids
            xm["FILE"] = np.array([t["FILE"][0] if len(t) else cf.name] * len(xm), "U80")
            xm["CLOSEST_CANDID"] = np.where(
                xm["CLOSEST"] >= 0,
                fi * 1_000_000 + np.asarray(cands["CANDID"])[np.clip(xm["CLOSEST"], 0, None)]
                if len(cands)
                else -1,
                -1,
            ).astype(np.int64)
            r_ap = max(1.5 * float(hdr.get("FWHMSCI", 2.0)), 2.0)
            if len(xm):
                fl, fe, _ = sep.sum_circle(
                    np.ascontiguousarray(imgs[2], dtype=np.float64),
                    np.asarray(xm["X"]),
                    np.asarray(xm["Y"]),
                    r_ap,
                    err=err,
                    mask=mask,
                )
                xm["FORCED_SNR"] = np.where(fe > 0, fl / np.where(fe > 0, fe, 1), 0.0)
            else:
                xm["FORCED_SNR"] = np.zeros(0)
            xm.remove_column("CLOSEST")
            xms.append(xm)
        tabs.append(t)
        all_cut.append(cut)
    if training and n_truth == 0:
        raise InputError(
            "--training needs truth: no TRUTHFIL/POSFILE named in the candidate headers "
            "(simulate or inject beside the science frames)",
            path=d,
        )
    cube = np.concatenate(all_cut) if all_cut else np.zeros((0, 3, config.size, config.size))
    tab = vstack(tabs) if tabs else Table()
    hdr0 = provenance_header(pipeline="transient")
    hdr0["CUTSIZE"] = (config.size, "cutout side (px)")
    hdr0["CHANNELS"] = ("SCI,REF,DIFF", "cutout channels")
    hdr0["CENTER"] = (config.size // 2, "0-based index of the candidate pixel")
    hdr0["PIXCONV"] = ("0-based", "x = column, y = row")
    hdr0["TRAINING"] = (bool(training), "labelled through the truth")
    hdr0["RADIUS"] = (config.radius, "match radius (px)")
    hdus: list[Any] = [fits.PrimaryHDU(header=hdr0)]
    hdus.append(fits.ImageHDU(cube.astype(np.float32), name="CUTOUTS"))
    hdus.append(table_hdu(tab, "CANDIDATES"))
    if training:
        hdus.append(table_hdu(vstack(xms) if xms else Table(), "CROSSMATCH"))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_hdulist(target, hdus, overwrite=overwrite)
    log.info("%d cutouts from %d files", len(tab), len(files))
    return target


def read_cutouts(path: str | os.PathLike[str]) -> tuple[NDArray[np.float32], Table, Table | None]:
    """Read ``cutouts.fits`` (or the folder holding it).

    Parameters
    ----------
    path : path
        File or folder.

    Returns
    -------
    cube : ndarray of shape (N, 3, H, W), float32
    candidates : astropy.table.Table
    crossmatch : astropy.table.Table or None

    Raises
    ------
    InputError
        Missing file or HDU, or row counts that disagree.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CUTOUT_FILE
    if not p.is_file():
        raise InputError("no cutouts file (run cutouts first)", path=p)
    with fits.open(p) as hd:
        for name in ("CUTOUTS", "CANDIDATES"):
            if name not in hd:
                raise InputError("missing HDU", path=p, hdu=name)
        size = int(hd[0].header.get("CUTSIZE", 32))
        data = hd["CUTOUTS"].data
        cube = (
            np.zeros((0, 3, size, size), np.float32)
            if data is None
            else np.asarray(data, np.float32)
        )
        cands = Table.read(hd["CANDIDATES"]) if hd["CANDIDATES"].data is not None else Table()
        xm = Table.read(hd["CROSSMATCH"]) if "CROSSMATCH" in hd else None
    if cube.ndim != 4 or len(cube) != len(cands):
        raise InputError(
            f"CUTOUTS shape {cube.shape} does not match {len(cands)} CANDIDATES rows", path=p
        )
    return cube, cands, xm
