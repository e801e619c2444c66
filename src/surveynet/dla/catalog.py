"""From window or per-pixel CNN outputs to an absorber catalogue (dla.md section 5).

The same peak finder serves the sliding-window CNN (one prediction per window, indexed by its
centre pixel) and the fully-convolutional model (one prediction per pixel):

1. every window votes for pixel ``j + offset_j``; windows with confidence < ``level1`` vote with
   offset 0, i.e. for their own pixel (desi-dlas ``analyze_pred``; ``zero_negative_offsets=False``
   is the SDSS variant, raw offsets everywhere); votes are rounded to the nearest pixel
   (``vote_rounding="floor"``: the anchor's unit-bin histogram) and clipped to the searched range;
2. ``offset_hist`` = vote counts / ``norm`` (80 for +-60-px positives, scaled with ``samplerange``);
   ``conv_sum`` = 5-px box-car sum (padded with the histogram mean); ``smooth`` = median filter (9)
   with both end pixels set to 0;
3. peaks: repeatedly take argmax(smooth) while >= ``peak_thresh`` (0.2); ignore peaks within
   ``edge_px`` (10) of either end; move to the middle of a flat ridge; zero out on each side
   until smooth < ``dip`` (0.1), so two absorbers resolve only if the curve dips below 0.1;
4. ``DLA_CONFIDENCE`` = min(1, conv_sum[peak]); ``NHI`` = mean of the window N_HI over
   [peak - R, peak + R) (a side with another peak within 2R is dropped, peaks on both sides use
   half the distance to each), optionally bias-corrected (SDSS cubic); ``NHI_STD`` its std;
5. type: "DLA" if NHI >= 20.3, else "LYB" if the peak nearest to lambda*1215.67/1025.72 is within
   15 A and has NHI larger by > 0.3 dex, else "SUBDLA" (``lyb_first`` gives the SDSS order);
6. z_DLA = lambda(x) / 1215.6701 - 1 with x the centroid of the raw positive votes
   ``j + offset_j`` within ``centroid_radius`` px of the peak (sub-pixel; lambda interpolated in
   log wavelength), or the peak pixel itself when there is none or ``centroid_radius`` = 0
   (the anchor); with ``zc_nhi_min`` set, absorbers at least that strong are placed at the zero
   crossing of offset against pixel instead (:func:`zero_crossing`);
7. optional second-stage localisers (:mod:`surveynet.dla.refine`) move each absorber, then an
   optional vetter (:mod:`surveynet.dla.vet`) replaces ``DLA_CONFIDENCE`` by its probability
   that the absorber is real and drops those below its threshold (``surveynet dla predict``
   uses the bundled ones by default);
8. absorbers inside the black core (optical depth 1, times ``merge_core``) of a stronger one
   are merged into it (:func:`merge_core_overlaps`): the votes of one strong absorber can split
   into two peaks, and two absorbers inside one black core cannot be resolved.

The FITS catalogue (:func:`write_catalog`) has EXTNAME ``DLACAT`` with the columns picca reads
(TARGETID, Z_QSO, Z_DLA, NHI, DLA_CONFIDENCE, ABSORBER_TYPE, S2N, DLAID; never ``Z``), plus
NHI_STD, TARGET_RA, TARGET_DEC, and ``QSOCAT`` listing every searched sightline (TARGETID, Z_QSO,
S2N, N_DLA, WAVE_MIN, WAVE_MAX: the observed range searched), used by the evaluation to know
which truth absorbers could have been found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray
from scipy.signal import medfilt

from surveynet.dla.config import LYA_REST, LYB_REST, CatalogConfig
from surveynet.dla.sightline import Sightline

logger = logging.getLogger(__name__)

__all__ = [
    "DLA_COLUMNS",
    "Catalog",
    "SightlinePrediction",
    "VoteCurves",
    "absorbers_for_sightline",
    "catalog_from_predictions",
    "find_peaks",
    "merge_core_overlaps",
    "read_catalog",
    "vote_centroid",
    "vote_curves",
    "write_catalog",
]

#: Columns of the DLACAT table, in order.
DLA_COLUMNS = (
    "TARGETID",
    "Z_QSO",
    "Z_DLA",
    "NHI",
    "NHI_STD",
    "DLA_CONFIDENCE",
    "ABSORBER_TYPE",
    "S2N",
    "DLAID",
    "TARGET_RA",
    "TARGET_DEC",
)
_UNITS = {"TARGET_RA": "deg", "TARGET_DEC": "deg", "WAVE_MIN": "Angstrom", "WAVE_MAX": "Angstrom"}
#: Column comments (log quantities have no FITS-standard unit, so they are described here).
_COMMENTS = {
    "NHI": "log10 N_HI [cm-2]",
    "NHI_STD": "std of window log10 N_HI [dex]",
    "Z_DLA": "absorber redshift (Lyman-alpha)",
    "DLA_CONFIDENCE": "P(real) of the vetter, else min(1, votes)",
    "S2N": "median flux/error, rest 1420-1480 A",
    "WAVE_MIN": "bluest searched window centre",
    "WAVE_MAX": "reddest searched window centre",
}


@dataclass
class SightlinePrediction:
    """Model outputs for one sightline, window by window or pixel by pixel.

    Attributes
    ----------
    pixel : ndarray of shape (n,), int
        Sightline pixel of each prediction (window centre, or the pixel itself for the
        fully-convolutional model); strictly increasing.
    confidence : ndarray of shape (n,)
        Sigmoid of the classifier logit.
    offset : ndarray of shape (n,)
        Predicted pixel offset to the absorber centre (positive = redward).
    nhi : ndarray of shape (n,)
        Predicted log N_HI.
    """

    pixel: NDArray[np.integer[Any]]
    confidence: NDArray[np.floating[Any]]
    offset: NDArray[np.floating[Any]]
    nhi: NDArray[np.floating[Any]]

    def __post_init__(self) -> None:
        self.pixel = np.asarray(self.pixel, dtype=np.int64)
        n = self.pixel.shape
        for name in ("confidence", "offset", "nhi"):
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.shape != n:
                raise ValueError(f"SightlinePrediction.{name} has shape {arr.shape}, pixel {n}")
            setattr(self, name, arr)
        if n[0] > 1 and np.any(np.diff(self.pixel) <= 0):
            raise ValueError("SightlinePrediction.pixel must be strictly increasing")

    @classmethod
    def from_pixels(
        cls,
        confidence: NDArray[Any],
        offset: NDArray[Any],
        nhi: NDArray[Any],
        pixels: NDArray[np.integer[Any]] | None = None,
    ) -> SightlinePrediction:
        """Per-pixel outputs of the fully-convolutional model (``pixels`` default ``arange(n)``)."""
        c = np.asarray(confidence).reshape(-1)
        px = np.arange(c.size) if pixels is None else np.asarray(pixels)
        return cls(pixel=px, confidence=c, offset=offset, nhi=nhi)

    def restrict(self, pixels: NDArray[np.integer[Any]]) -> SightlinePrediction:
        """Keep the predictions at ``pixels`` (e.g. the REST_RANGE pixels of the sightline)."""
        keep = np.isin(self.pixel, pixels)
        return SightlinePrediction(
            self.pixel[keep], self.confidence[keep], self.offset[keep], self.nhi[keep]
        )


@dataclass
class VoteCurves:
    """Vote curves over sightline pixels ``lo .. lo + n - 1``.

    Attributes
    ----------
    lo : int
        First pixel of the searched range.
    offset_hist : ndarray of shape (n,)
        Normalised vote histogram.
    conv_sum : ndarray of shape (n,)
        Box-car sum of ``offset_hist``.
    smooth : ndarray of shape (n,)
        Median-filtered ``conv_sum`` (end pixels 0).
    """

    lo: int
    offset_hist: NDArray[np.float64]
    conv_sum: NDArray[np.float64]
    smooth: NDArray[np.float64]


def vote_curves(prediction: SightlinePrediction, config: CatalogConfig | None = None) -> VoteCurves:
    """Histogram the offset votes of a sightline and smooth them (steps 1-2 of the module doc).

    Examples
    --------
    >>> import numpy as np
    >>> px = np.arange(300)
    >>> conf = np.where(abs(px - 150) <= 60, 0.9, 0.1)
    >>> pred = SightlinePrediction(px, conf, np.clip(150 - px, -60, 60), np.full(300, 21.0))
    >>> v = vote_curves(pred)
    >>> round(float(v.offset_hist[150]), 4), round(float(v.smooth.max()), 4)
    (1.5125, 1.5125)
    """
    cfg = config or CatalogConfig()
    px = prediction.pixel
    if px.size == 0:
        z = np.zeros(0)
        return VoteCurves(0, z, z.copy(), z.copy())
    lo, hi = int(px[0]), int(px[-1])
    n = hi - lo + 1
    positive = prediction.confidence >= cfg.level1
    off = (
        np.where(positive, prediction.offset, 0.0)
        if cfg.zero_negative_offsets
        else prediction.offset
    )
    raw = px + off
    rounded = np.floor(raw) if cfg.vote_rounding == "floor" else np.rint(raw)
    target = np.clip(rounded, lo, hi).astype(np.int64) - lo
    hist = np.bincount(target, minlength=n).astype(np.float64) / cfg.norm
    half = cfg.boxcar // 2
    padded = np.concatenate(
        [np.full(half, hist.mean()), hist, np.full(cfg.boxcar - 1 - half, hist.mean())]
    )
    conv = np.convolve(padded, np.ones(cfg.boxcar), mode="valid")
    smooth = medfilt(conv, cfg.medfilt) if n >= cfg.medfilt else conv.copy()
    smooth[0] = smooth[-1] = 0.0
    return VoteCurves(lo, hist, conv, smooth)


def find_peaks(
    smooth: NDArray[np.float64], config: CatalogConfig | None = None
) -> NDArray[np.int64]:
    """Peak indices (into ``smooth``, sorted) of a smoothed vote curve (step 3 of the module doc).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(200.0)
    >>> s = np.exp(-0.5 * ((x - 60) / 6) ** 2) + 0.5 * np.exp(-0.5 * ((x - 140) / 6) ** 2)
    >>> find_peaks(s).tolist()
    [60, 140]
    """
    cfg = config or CatalogConfig()
    s = np.array(smooth, dtype=np.float64)
    n = s.size
    peaks = []
    while n:
        p = int(np.argmax(s))
        top = s[p]
        if top < cfg.peak_thresh:
            break
        r = p
        while r + 1 < n and s[r + 1] == top:
            r += 1
        mid = p + (r - p + 1) // 2  # middle of a flat ridge, as the anchor's ``ridge // 2``
        a = p
        while a - 1 >= 0 and s[a - 1] >= cfg.dip:
            a -= 1
        b = r
        while b + 1 < n and s[b + 1] >= cfg.dip:
            b += 1
        s[a : b + 1] = 0.0
        if mid <= cfg.edge_px or mid >= n - 1 - cfg.edge_px:
            continue
        peaks.append(mid)
    return np.array(sorted(peaks), dtype=np.int64)


def _nhi_range(peak: int, others: NDArray[np.int64], radius: int) -> tuple[int, int]:
    left = others[others < peak]
    right = others[others > peak]
    near_l = left.size and peak - left.max() <= 2 * radius
    near_r = right.size and right.min() - peak <= 2 * radius
    if near_l and near_r:
        return peak - (peak - int(left.max())) // 2, peak + (int(right.min()) - peak) // 2
    if near_l:
        return peak, peak + radius
    if near_r:
        return peak - radius, peak
    return peak - radius, peak + radius


def vote_centroid(
    prediction: SightlinePrediction, peak: int, config: CatalogConfig | None = None
) -> float:
    """Sub-pixel absorber position: mean of the raw positive votes within ``centroid_radius``.

    Returns ``float(peak)`` when ``centroid_radius`` is 0 or no positive vote lies that close.

    Examples
    --------
    >>> import numpy as np
    >>> px = np.arange(200)
    >>> pred = SightlinePrediction(px, np.ones(200), 100.4 - px, np.full(200, 21.0))
    >>> round(vote_centroid(pred, 100), 3)
    100.4
    """
    cfg = config or CatalogConfig()
    if cfg.centroid_radius <= 0:
        return float(peak)
    raw = prediction.pixel + prediction.offset
    sel = (prediction.confidence >= cfg.level1) & (np.abs(raw - peak) <= cfg.centroid_radius)
    if not sel.any():
        return float(peak)
    return float(np.mean(raw[sel]))


def zero_crossing(
    prediction: SightlinePrediction, peak: int, config: CatalogConfig | None = None
) -> float:
    """Sub-pixel absorber position where the predicted offset changes sign.

    Fits ``offset = a + b * pixel`` by least squares to the positive pixels (confidence >=
    ``level1``) whose raw votes ``j + offset_j`` lie within ``zc_radius`` of the peak and returns
    ``-a / b``. Unlike the vote centroid this is unbiased when the offsets are shrunk by a
    constant factor towards 0 and the positive pixels are not symmetric about the centre. Falls
    back to :func:`vote_centroid` with fewer than ``zc_min_pixels`` pixels, a slope > -0.05, or a
    crossing more than ``zc_radius`` from the peak.

    Examples
    --------
    >>> import numpy as np
    >>> px = np.arange(200)
    >>> off = 0.5 * (100.0 - px)          # offsets shrunk by half towards 0
    >>> pred = SightlinePrediction(px, np.full(200, 0.9), off, np.full(200, 22.0))
    >>> cfg = CatalogConfig(zc_radius=30)      # the vote peak was found 5 px off the centre
    >>> round(zero_crossing(pred, 95, cfg), 3), round(vote_centroid(pred, 95, cfg), 1)
    (100.0, 95.0)
    """
    cfg = config or CatalogConfig()
    raw = prediction.pixel + prediction.offset
    sel = (prediction.confidence >= cfg.level1) & (np.abs(raw - peak) <= cfg.zc_radius)
    if int(sel.sum()) >= max(cfg.zc_min_pixels, 2):
        x = prediction.pixel[sel].astype(np.float64)
        y = np.asarray(prediction.offset[sel], dtype=np.float64)
        xm = x.mean()
        den = float(np.sum((x - xm) ** 2))
        if den > 0:
            b = float(np.sum((x - xm) * (y - y.mean())) / den)
            if b <= -0.05:
                x0 = xm - y.mean() / b
                if abs(x0 - peak) <= cfg.zc_radius:
                    return float(x0)
    return vote_centroid(prediction, peak, cfg)


def _wave_at(loglam: NDArray[np.float64], x: float) -> float:
    """Observed wavelength at fractional pixel ``x`` (log-linear interpolation, clipped)."""
    n = loglam.size
    x = min(max(x, 0.0), n - 1.0)
    return float(10.0 ** np.interp(x, np.arange(n), loglam))


def merge_core_overlaps(rows: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """Merge absorbers lying inside the black core of a stronger one (step 7 of the module doc).

    ``rows`` are dicts with ``WAVE`` (observed Lyman-alpha A), ``NHI`` and ``DLA_CONFIDENCE``.
    From the strongest down, every weaker absorber within ``factor`` times the core half-width
    (optical depth 1) of a kept one is dropped; the kept one takes the larger confidence.

    Examples
    --------
    >>> rows = [dict(WAVE=4000.0, NHI=22.0, DLA_CONFIDENCE=0.6),
    ...         dict(WAVE=4030.0, NHI=21.5, DLA_CONFIDENCE=0.9),
    ...         dict(WAVE=4200.0, NHI=20.5, DLA_CONFIDENCE=0.7)]
    >>> [(r["WAVE"], r["DLA_CONFIDENCE"]) for r in merge_core_overlaps(rows, 1.0)]
    [(4000.0, 0.9), (4200.0, 0.7)]
    """
    from surveynet.sim.voigt import core_half_width

    order = sorted(range(len(rows)), key=lambda i: -rows[i]["NHI"])
    kept: dict[int, float] = {}  # kept row -> its merging radius (A)
    for i in order:
        r = rows[i]
        host = next((k for k, rad in kept.items() if abs(r["WAVE"] - rows[k]["WAVE"]) < rad), None)
        if host is None:
            kept[i] = factor * core_half_width(r["NHI"], r["WAVE"] / LYA_REST - 1.0)
        else:
            rows[host]["DLA_CONFIDENCE"] = max(rows[host]["DLA_CONFIDENCE"], r["DLA_CONFIDENCE"])
    return [rows[i] for i in sorted(kept)]


def peak_rows(
    sightline: Sightline, prediction: SightlinePrediction, config: CatalogConfig | None = None
) -> list[dict[str, Any]]:
    """The vote peaks of one sightline as rows (pix, NHI, NHI_STD, DLA_CONFIDENCE, VOTES, WAVE;
    VOTES is the summed vote at the peak, DLA_CONFIDENCE = min(1, VOTES))."""
    cfg = config or CatalogConfig()
    curves = vote_curves(prediction, cfg)
    peaks = find_peaks(curves.smooth, cfg) + curves.lo
    loglam = np.asarray(sightline.loglam, dtype=np.float64)
    rows = []
    for pk in peaks:
        a, b = _nhi_range(int(pk), peaks, cfg.nhi_radius)
        sel = (prediction.pixel >= a) & (prediction.pixel < b)
        if not sel.any():
            sel = np.zeros(prediction.pixel.size, bool)
            sel[int(np.argmin(np.abs(prediction.pixel - pk)))] = True
            logger.warning(
                "TARGETID %d: no prediction within the N_HI window of peak %d; nearest used",
                sightline.targetid,
                pk,
            )
        vals = prediction.nhi[sel]
        nhi = float(vals.mean())
        if cfg.bias_correct:
            nhi = float(np.polyval(cfg.bias_poly, nhi))
        votes = float(curves.conv_sum[pk - curves.lo])
        conf = min(1.0, votes)
        strong = cfg.zc_nhi_min is not None and nhi >= cfg.zc_nhi_min
        centre = zero_crossing if strong else vote_centroid
        rows.append(
            {
                "pix": int(pk),
                "NHI": nhi,
                "NHI_STD": float(vals.std()),
                "DLA_CONFIDENCE": conf,
                "VOTES": votes,
                "WAVE": _wave_at(loglam, centre(prediction, int(pk), cfg)),
            }
        )
    return rows


def rows_table(
    sightline: Sightline, rows: list[dict[str, Any]], config: CatalogConfig | None = None
) -> Table:
    """DLACAT table of one sightline's absorber rows (:func:`peak_rows`, possibly refined):
    core-overlap merge, Lyman-beta test and typing, sorted by Z_DLA."""
    cfg = config or CatalogConfig()
    if cfg.merge_core is not None:
        rows = merge_core_overlaps(rows, cfg.merge_core)
    for r in rows:
        lyb_partner = r["WAVE"] * LYA_REST / LYB_REST
        others = [o for o in rows if o is not r]
        near = min(others, key=lambda o: abs(o["WAVE"] - lyb_partner)) if others else None
        r["is_lyb"] = bool(
            near is not None
            and abs(near["WAVE"] - lyb_partner) <= cfg.lyb_tolerance
            and near["NHI"] - r["NHI"] > cfg.lyb_dnhi
        )
    types = []
    for r in rows:
        if cfg.lyb_first and r["is_lyb"]:
            types.append("LYB")
        elif r["NHI"] >= cfg.dla_nhi_min:
            types.append("DLA")
        elif r["is_lyb"]:
            types.append("LYB")
        else:
            types.append("SUBDLA")
    z = [r["WAVE"] / LYA_REST - 1.0 for r in rows]
    order = np.argsort(z, kind="stable")
    n = len(rows)
    t = Table(
        {
            "TARGETID": np.full(n, sightline.targetid, np.int64),
            "Z_QSO": np.full(n, sightline.z_qso),
            "Z_DLA": np.array(z, float)[order],
            "NHI": np.array([rows[i]["NHI"] for i in order], float),
            "NHI_STD": np.array([rows[i]["NHI_STD"] for i in order], float),
            "DLA_CONFIDENCE": np.array([rows[i]["DLA_CONFIDENCE"] for i in order], float),
            "ABSORBER_TYPE": np.array([types[i] for i in order], dtype="U6"),
            "S2N": np.full(n, sightline.s2n),
            "DLAID": np.array([f"{sightline.targetid}{k:03d}" for k in range(n)], dtype="U32"),
            "TARGET_RA": np.full(n, sightline.ra),
            "TARGET_DEC": np.full(n, sightline.dec),
        }
    )
    if cfg.vet_features:
        from surveynet.dla.vet import COLUMN_PREFIX, FEATURES

        for j, name in enumerate(FEATURES):
            t[COLUMN_PREFIX + name.upper()] = np.array(
                [rows[i]["FEATURES"][j] for i in order], float
            )
    return t


def absorbers_for_sightline(
    sightline: Sightline, prediction: SightlinePrediction, config: CatalogConfig | None = None
) -> Table:
    """Absorbers found in one sightline: a DLACAT table (possibly empty), sorted by Z_DLA."""
    return rows_table(sightline, peak_rows(sightline, prediction, config), config)


@dataclass
class Catalog:
    """A DLA catalogue: absorbers (``dlas``, DLACAT) and searched sightlines (``qsos``, QSOCAT)."""

    dlas: Table
    qsos: Table

    def __len__(self) -> int:
        return len(self.dlas)


def _empty_dlacat() -> Table:
    return Table(
        {
            "TARGETID": np.zeros(0, np.int64),
            "Z_QSO": np.zeros(0),
            "Z_DLA": np.zeros(0),
            "NHI": np.zeros(0),
            "NHI_STD": np.zeros(0),
            "DLA_CONFIDENCE": np.zeros(0),
            "ABSORBER_TYPE": np.zeros(0, "U6"),
            "S2N": np.zeros(0),
            "DLAID": np.zeros(0, "U32"),
            "TARGET_RA": np.zeros(0),
            "TARGET_DEC": np.zeros(0),
        }
    )


#: TARGETID -> sightline on a refiner's own grid; one such mapping (or None) per refiner.
RefineGrids = Mapping[int, Sightline] | Sequence[Mapping[int, Sightline] | None] | None


def catalog_from_predictions(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    config: CatalogConfig | None = None,
    *,
    rest_range: tuple[float, float] | None = (900.0, 1346.0),
    refiner: Any = None,
    refine_sightlines: RefineGrids = None,
    vetter: Any = None,
) -> Catalog:
    """Build the catalogue of a set of sightlines from their window or per-pixel predictions.

    Parameters
    ----------
    sightlines : sequence of Sightline
    predictions : sequence of SightlinePrediction
        One per sightline, same order. Window CNN: ``pixel`` = window-centre pixels; fully
        convolutional model: :meth:`SightlinePrediction.from_pixels` of the per-pixel outputs.
    config : CatalogConfig, optional
    rest_range : tuple of float or None
        Only predictions at pixels with rest wavelength in this range vote (the window centres
        of :func:`surveynet.dla.datasets.make_datasets`); None keeps all.
    refiner : surveynet.dla.refine.DLARefiner or sequence of them, optional
        Second-stage localiser(s) applied in turn to the vote peaks before the core-overlap
        merge.
    refine_sightlines : mapping or sequence of mappings, optional
        TARGETID -> the sightline on the refiner's own grid (when its data config differs from
        the finder's), one mapping per refiner; default: the finder's sightline.

    Returns
    -------
    Catalog
    """
    if len(sightlines) != len(predictions):
        raise ValueError(f"{len(sightlines)} sightlines but {len(predictions)} predictions")
    cfg = config or CatalogConfig()
    parts = []
    q: dict[str, list[Any]] = {
        k: []
        for k in (
            "TARGETID",
            "Z_QSO",
            "S2N",
            "TARGET_RA",
            "TARGET_DEC",
            "N_DLA",
            "WAVE_MIN",
            "WAVE_MAX",
        )
    }
    restricted, peaks = [], []
    for sl, pred in zip(sightlines, predictions, strict=True):
        if rest_range is not None:
            rest = sl.rest_wave
            pred = pred.restrict(np.flatnonzero((rest >= rest_range[0]) & (rest <= rest_range[1])))
        restricted.append(pred)
        peaks.append(peak_rows(sl, pred, cfg))
    refiners = [] if refiner is None else [refiner] if hasattr(refiner, "refine") else refiner
    grids = (
        list(refine_sightlines)
        if isinstance(refine_sightlines, (list, tuple))
        else [refine_sightlines] * len(refiners)
    )
    if len(grids) != len(refiners):
        raise ValueError(f"{len(refiners)} refiners but {len(grids)} refine_sightlines")
    pairs = list(zip(sightlines, peaks, strict=True))
    for ref, grid in zip(refiners, grids, strict=True):
        on = grid or {}
        ref.refine([(on.get(sl.targetid, sl), rows) for sl, rows in pairs])
    if vetter is not None or cfg.vet_features:
        from surveynet.dla.vet import row_features

        for k, (sl, pred, rows) in enumerate(zip(sightlines, restricted, peaks, strict=True)):
            for r, f in zip(rows, row_features(sl, pred, rows), strict=True):
                r["FEATURES"] = f
            if vetter is not None:
                peaks[k] = vetter.vet(rows)
    for sl, pred, rows in zip(sightlines, restricted, peaks, strict=True):
        t = rows_table(sl, rows, cfg)
        parts.append(t)
        w = sl.wave
        q["TARGETID"].append(sl.targetid)
        q["Z_QSO"].append(sl.z_qso)
        q["S2N"].append(sl.s2n)
        q["TARGET_RA"].append(sl.ra)
        q["TARGET_DEC"].append(sl.dec)
        q["N_DLA"].append(int(np.sum(t["ABSORBER_TYPE"] == "DLA")))
        q["WAVE_MIN"].append(float(w[pred.pixel[0]]) if pred.pixel.size else np.nan)
        q["WAVE_MAX"].append(float(w[pred.pixel[-1]]) if pred.pixel.size else np.nan)
    from astropy.table import vstack

    dlas = vstack([p for p in parts if len(p)]) if any(len(p) for p in parts) else _empty_dlacat()
    qsos = Table(
        {
            "TARGETID": np.array(q["TARGETID"], np.int64),
            "Z_QSO": np.array(q["Z_QSO"], float),
            "S2N": np.array(q["S2N"], float),
            "TARGET_RA": np.array(q["TARGET_RA"], float),
            "TARGET_DEC": np.array(q["TARGET_DEC"], float),
            "N_DLA": np.array(q["N_DLA"], np.int32),
            "WAVE_MIN": np.array(q["WAVE_MIN"], float),
            "WAVE_MAX": np.array(q["WAVE_MAX"], float),
        }
    )
    logger.info(
        "%d absorbers (%d DLA) in %d sightlines",
        len(dlas),
        int(np.sum(dlas["ABSORBER_TYPE"] == "DLA")),
        len(qsos),
    )
    return Catalog(dlas=dlas, qsos=qsos)


def write_catalog(
    path: str | os.PathLike[str],
    catalog: Catalog,
    *,
    config: Any = None,
    model_name: str | None = None,
    model_hash: str | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a catalogue as FITS (DLACAT + QSOCAT, provenance header), atomically.

    Parameters
    ----------
    path : str or os.PathLike
    catalog : Catalog
    config : dataclass or dict, optional
        Resolved configuration; its hash goes into the header (``CFGHASH``) and, for the
        catalogue section, the peak-finder thresholds (``PEAKTHR``, ``PEAKDIP``, ``LEVEL1``).
    model_name, model_hash : str, optional
    seed : int, optional
    overwrite : bool
        Replace an existing file (default: refuse).
    """
    from astropy.io import fits

    from surveynet.config import config_hash
    from surveynet.io.fits import provenance_header, table_hdu, write_hdulist

    extra: dict[str, Any] = {}
    cat = getattr(config, "catalog", config)
    if isinstance(cat, CatalogConfig):
        extra = {
            "PEAKTHR": cat.peak_thresh,
            "PEAKDIP": cat.dip,
            "LEVEL1": cat.level1,
            "NHIRAD": cat.nhi_radius,
        }
    hdr = provenance_header(
        pipeline="dla",
        model_name=model_name,
        model_hash=model_hash,
        config_hash=config_hash(config) if config is not None else None,
        seed=seed,
        extra=extra,
    )
    hdus: list[Any] = [fits.PrimaryHDU(header=hdr)]
    for name, t in (("DLACAT", catalog.dlas), ("QSOCAT", catalog.qsos)):
        hdu = table_hdu(Table(t, copy=True), name)
        for k, col in enumerate(hdu.columns.names, start=1):
            if col in _UNITS:
                hdu.header[f"TUNIT{k}"] = _UNITS[col]
            if col in _COMMENTS:
                hdu.header.comments[f"TTYPE{k}"] = _COMMENTS[col]
        hdus.append(hdu)
    return write_hdulist(path, hdus, overwrite=overwrite)


def read_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read a catalogue written by :func:`write_catalog` (QSOCAT optional).

    Raises
    ------
    InputError
        No DLACAT HDU or a missing required column (TARGETID, Z_DLA, NHI).
    """
    from astropy.io import fits

    from surveynet.errors import InputError

    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
    except OSError as exc:
        raise InputError(f"cannot read FITS ({exc})", path=p) from exc
    if "DLACAT" not in names:
        raise InputError(f"no DLACAT HDU (HDUs: {', '.join(names)})", path=p, hdu="DLACAT")
    dlas = Table.read(p, hdu="DLACAT")
    for c in ("TARGETID", "Z_DLA", "NHI"):
        if c not in dlas.colnames:
            raise InputError("missing column", path=p, hdu="DLACAT", column=c)
    if "ABSORBER_TYPE" in dlas.colnames:
        dlas["ABSORBER_TYPE"] = np.char.strip(np.asarray(dlas["ABSORBER_TYPE"]).astype(str))
    qsos = (
        Table.read(p, hdu="QSOCAT")
        if "QSOCAT" in names
        else Table({"TARGETID": np.unique(np.asarray(dlas["TARGETID"], np.int64))})
    )
    for t in (dlas, qsos):
        for c in t.colnames:
            t[c].unit = None
    return Catalog(dlas=dlas, qsos=qsos)
