"""From window or per-pixel finder outputs to absorber rows (dla.md section 5).

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
5. the observed Lyman-alpha wavelength ``WAVE`` = lambda(x), with x the centroid of the raw
   positive votes ``j + offset_j`` within ``centroid_radius`` px of the peak (sub-pixel; lambda
   interpolated in log wavelength), or the peak pixel itself when there is none or
   ``centroid_radius`` = 0 (the anchor); with ``zc_nhi_min`` set, absorbers at least that strong
   are placed at the zero crossing of offset against pixel instead (:func:`zero_crossing`).

Steps 1-5 give one row (a dict) per vote peak (:func:`peak_rows`). The optional second-stage
localisers (:mod:`surveynet.dla.refine`) and vetter (:mod:`surveynet.dla.vet`) then act on the
rows (:mod:`surveynet.dla.predict` chains the stages), and :func:`type_absorbers` finishes them:

6. absorbers inside the black core (optical depth 1, times ``merge_core``) of a stronger one are
   merged into it (:func:`merge_core_overlaps`): the votes of one strong absorber can split into
   two peaks, and two absorbers inside one black core cannot be resolved;
7. type: "DLA" if NHI >= 20.3, else "LYB" if the peak nearest to lambda*1215.67/1025.72 is within
   15 A and has NHI larger by > 0.3 dex, else "SUBDLA" (``lyb_first`` gives the SDSS order).

z_DLA = WAVE / 1215.6701 - 1 (:mod:`surveynet.dla.catalog` writes the tables).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import LYA_REST, LYB_REST
from surveynet.dla.config import PredictConfig
from surveynet.dla.sightline import Sightline, search_pixels
from surveynet.nn.numpy_ops import medfilt
from surveynet.sim.voigt import core_half_width

logger = logging.getLogger(__name__)

__all__ = [
    "SightlinePrediction",
    "VoteCurves",
    "find_peaks",
    "merge_core_overlaps",
    "peak_rows",
    "searched_predictions",
    "type_absorbers",
    "vote_centroid",
    "vote_curves",
    "zero_crossing",
]


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
        """Per-pixel outputs of the fully-convolutional model (``pixels`` default ``arange(n)``).

        Parameters
        ----------
        confidence, offset, nhi : ndarray of shape (n,)
            Sigmoid confidence, offset (pixels) and log N_HI of each pixel.
        pixels : ndarray of int, optional
            Their sightline pixels (default ``arange(n)``).

        Returns
        -------
        SightlinePrediction
        """
        c = np.asarray(confidence).reshape(-1)
        px = np.arange(c.size) if pixels is None else np.asarray(pixels)
        return cls(pixel=px, confidence=c, offset=offset, nhi=nhi)

    def restrict(self, pixels: NDArray[np.integer[Any]]) -> SightlinePrediction:
        """Keep the predictions at ``pixels`` (e.g. the REST_RANGE pixels of the sightline).

        Parameters
        ----------
        pixels : ndarray of int
            Sightline pixels to keep.

        Returns
        -------
        SightlinePrediction
            A new prediction with those pixels only.
        """
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


def vote_curves(prediction: SightlinePrediction, config: PredictConfig | None = None) -> VoteCurves:
    """Histogram the offset votes of a sightline and smooth them (steps 1-2 of the module doc).

    Parameters
    ----------
    prediction : SightlinePrediction
        The searched pixels' outputs.
    config : PredictConfig, optional
        ``level1``, ``zero_negative_offsets``, ``vote_rounding``, ``norm``, ``boxcar``,
        ``medfilt``.

    Returns
    -------
    VoteCurves

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
    cfg = config or PredictConfig()
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
    smooth: NDArray[np.float64], config: PredictConfig | None = None
) -> NDArray[np.int64]:
    """Peak indices (into ``smooth``, sorted) of a smoothed vote curve (step 3 of the module doc).

    Parameters
    ----------
    smooth : ndarray of shape (n,)
        Smoothed vote curve (:attr:`VoteCurves.smooth`).
    config : PredictConfig, optional
        ``peak_thresh``, ``dip``, ``edge_px``.

    Returns
    -------
    ndarray of int64
        Peak indices into ``smooth``, sorted.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(200.0)
    >>> s = np.exp(-0.5 * ((x - 60) / 6) ** 2) + 0.5 * np.exp(-0.5 * ((x - 140) / 6) ** 2)
    >>> find_peaks(s).tolist()
    [60, 140]
    """
    cfg = config or PredictConfig()
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
    prediction: SightlinePrediction, peak: int, config: PredictConfig | None = None
) -> float:
    """Sub-pixel absorber position: mean of the raw positive votes within ``centroid_radius``.

    Returns ``float(peak)`` when ``centroid_radius`` is 0 or no positive vote lies that close.


    Parameters
    ----------
    prediction : SightlinePrediction
        The searched pixels' outputs.
    peak : int
        Peak pixel.
    config : PredictConfig, optional
        ``centroid_radius``, ``level1``.

    Returns
    -------
    float
        Fractional pixel of the absorber.

    Examples
    --------
    >>> import numpy as np
    >>> px = np.arange(200)
    >>> pred = SightlinePrediction(px, np.ones(200), 100.4 - px, np.full(200, 21.0))
    >>> round(vote_centroid(pred, 100), 3)
    100.4
    """
    cfg = config or PredictConfig()
    if cfg.centroid_radius <= 0:
        return float(peak)
    raw = prediction.pixel + prediction.offset
    sel = (prediction.confidence >= cfg.level1) & (np.abs(raw - peak) <= cfg.centroid_radius)
    if not sel.any():
        return float(peak)
    return float(np.mean(raw[sel]))


def zero_crossing(
    prediction: SightlinePrediction, peak: int, config: PredictConfig | None = None
) -> float:
    """Sub-pixel absorber position where the predicted offset changes sign.

    Fits ``offset = a + b * pixel`` by least squares to the positive pixels (confidence >=
    ``level1``) whose raw votes ``j + offset_j`` lie within ``zc_radius`` of the peak and returns
    ``-a / b``. Unlike the vote centroid this is unbiased when the offsets are shrunk by a
    constant factor towards 0 and the positive pixels are not symmetric about the centre. Falls
    back to :func:`vote_centroid` with fewer than ``zc_min_pixels`` pixels, a slope > -0.05, or a
    crossing more than ``zc_radius`` from the peak.


    Parameters
    ----------
    prediction : SightlinePrediction
        The searched pixels' outputs.
    peak : int
        Peak pixel.
    config : PredictConfig, optional
        ``zc_radius``, ``zc_min_pixels``, ``level1`` (and the centroid's settings).

    Returns
    -------
    float
        Fractional pixel of the absorber.

    Examples
    --------
    >>> import numpy as np
    >>> px = np.arange(200)
    >>> off = 0.5 * (100.0 - px)          # offsets shrunk by half towards 0
    >>> pred = SightlinePrediction(px, np.full(200, 0.9), off, np.full(200, 22.0))
    >>> cfg = PredictConfig(zc_radius=30)      # the vote peak was found 5 px off the centre
    >>> round(zero_crossing(pred, 95, cfg), 3), round(vote_centroid(pred, 95, cfg), 1)
    (100.0, 95.0)
    """
    cfg = config or PredictConfig()
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


def wave_at(loglam: NDArray[np.float64], x: float) -> float:
    """Observed wavelength at fractional pixel ``x`` (log-linear interpolation, clipped).

    Parameters
    ----------
    loglam : ndarray of shape (n,)
        log10 observed wavelength of the pixels.
    x : float
        Fractional pixel (clipped to [0, n - 1]).

    Returns
    -------
    float
        Observed wavelength (A).

    Examples
    --------
    >>> round(wave_at(np.log10([4000.0, 4001.0]), 0.5), 3)
    4000.5
    """
    n = loglam.size
    x = min(max(x, 0.0), n - 1.0)
    return float(10.0 ** np.interp(x, np.arange(n), loglam))


def merge_core_overlaps(rows: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """Merge absorbers lying inside the black core of a stronger one (step 6 of the module doc).

    ``rows`` are dicts with ``WAVE`` (observed Lyman-alpha A), ``NHI`` and ``DLA_CONFIDENCE``.
    From the strongest down, every weaker absorber within ``factor`` times the core half-width
    (optical depth 1) of a kept one is dropped; the kept one takes the larger confidence.


    Parameters
    ----------
    rows : list of dict
        One sightline's absorber rows.
    factor : float
        Merging radius in core half-widths (``predict.merge_core``).

    Returns
    -------
    list of dict
        The kept rows, in the input order.

    Examples
    --------
    >>> rows = [dict(WAVE=4000.0, NHI=22.0, DLA_CONFIDENCE=0.6),
    ...         dict(WAVE=4030.0, NHI=21.5, DLA_CONFIDENCE=0.9),
    ...         dict(WAVE=4200.0, NHI=20.5, DLA_CONFIDENCE=0.7)]
    >>> [(r["WAVE"], r["DLA_CONFIDENCE"]) for r in merge_core_overlaps(rows, 1.0)]
    [(4000.0, 0.9), (4200.0, 0.7)]
    """
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
    sightline: Sightline, prediction: SightlinePrediction, config: PredictConfig | None = None
) -> list[dict[str, Any]]:
    """The vote peaks of one sightline as rows.

    Columns pix, NHI, NHI_STD, DLA_CONFIDENCE, VOTES, WAVE; VOTES is the summed vote at the
    peak, DLA_CONFIDENCE = min(1, VOTES).

    Parameters
    ----------
    sightline : Sightline
        The sightline (its log-wavelength grid places the absorbers).
    prediction : SightlinePrediction
        Its searched pixels' outputs.
    config : PredictConfig, optional
        Peak finding (steps 1-5 of the module doc).

    Returns
    -------
    list of dict
        One row per vote peak, in pixel order.
    """
    cfg = config or PredictConfig()
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
                "WAVE": wave_at(loglam, centre(prediction, int(pk), cfg)),
            }
        )
    return rows


def searched_predictions(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    rest_range: tuple[float, float] | None = (900.0, 1346.0),
) -> list[SightlinePrediction]:
    """Each sightline's predictions at the pixels it is searched on (only those vote).

    Parameters
    ----------
    sightlines : sequence of Sightline
        The sightlines.
    predictions : sequence of SightlinePrediction
        One per sightline, same order.
    rest_range : tuple of float or None
        Rest-frame range (A) of the searched pixels (the window centres of
        :func:`surveynet.dla.data.make_datasets`); None keeps every prediction.

    Returns
    -------
    list of SightlinePrediction

    Raises
    ------
    ValueError
        The two sequences differ in length.
    """
    if len(sightlines) != len(predictions):
        raise ValueError(f"{len(sightlines)} sightlines but {len(predictions)} predictions")
    if rest_range is None:
        return list(predictions)
    return [
        pred.restrict(search_pixels(sl, rest_range))
        for sl, pred in zip(sightlines, predictions, strict=True)
    ]


def type_absorbers(
    rows: list[dict[str, Any]], config: PredictConfig | None = None
) -> list[dict[str, Any]]:
    """Finish one sightline's absorber rows: core-overlap merge, Lyman-beta test and typing.

    Steps 6-7 of the module doc, after the refiners and the vetter.

    Parameters
    ----------
    rows : list of dict
        :func:`peak_rows` of one sightline (``WAVE``, ``NHI``, ``DLA_CONFIDENCE``; possibly
        refined or vetted).
    config : PredictConfig, optional
        ``merge_core``, ``dla_nhi_min``, ``lyb_tolerance``, ``lyb_dnhi``, ``lyb_first``.

    Returns
    -------
    list of dict
        The kept rows, each with ``is_lyb`` and ``ABSORBER_TYPE`` ("DLA", "SUBDLA" or "LYB"),
        in the input order.

    Examples
    --------
    >>> rows = [dict(WAVE=4000.0 * LYB_REST / LYA_REST, NHI=20.0, DLA_CONFIDENCE=0.5),
    ...         dict(WAVE=4000.0, NHI=21.0, DLA_CONFIDENCE=1.0)]
    >>> [r["ABSORBER_TYPE"] for r in type_absorbers(rows)]
    ['LYB', 'DLA']
    """
    cfg = config or PredictConfig()
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
    for r in rows:
        if cfg.lyb_first and r["is_lyb"]:
            r["ABSORBER_TYPE"] = "LYB"
        elif r["NHI"] >= cfg.dla_nhi_min:
            r["ABSORBER_TYPE"] = "DLA"
        elif r["is_lyb"]:
            r["ABSORBER_TYPE"] = "LYB"
        else:
            r["ABSORBER_TYPE"] = "SUBDLA"
    return rows
