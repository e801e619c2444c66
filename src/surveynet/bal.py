"""Broad absorption line (BAL) finder: continuum fit, balnicity and absorption indices, troughs.

Core module (numpy/scipy only; no pipeline imports): the quasar pipeline's ``bal`` step
(:mod:`surveynet.quasar.bal`) writes its results as a catalogue and the DLA pipeline
(:mod:`surveynet.dla.bal_mask`) masks the troughs it finds.

Method (:func:`find_bals`)
--------------------------
1. **Rest-frame binning.** Every camera's pixels are moved to the quasar rest frame and
   accumulated, inverse-variance weighted, onto one common log-wavelength grid
   (:attr:`BalConfig.dlog10`, 1e-4 dex = 69 km/s, over :attr:`BalConfig.fit_range`, 1270-2000 A:
   redward of Lyman-alpha/NV, so the forest never enters the fit). The grid is shared by all
   spectra, so the rest of the work is array arithmetic over ``(n_spec, n_bin)``.
2. **Continuum.** A linear model, fitted to all spectra at once by weighted least squares: a
   quadratic in log wavelength (a power law over this range) plus Gaussian emission lines of fixed
   centre and width (:data:`EMISSION_LINES`: NV, OI, CII, SiIV+OIV], CIV at three widths/shifts,
   HeII, OIII], AlIII, CIII]) with non-negative amplitudes (a line whose amplitude comes out
   negative is dropped for that spectrum in the next round). The fit is iterated
   (:attr:`BalConfig.n_iter`) with asymmetric clipping: bins more than
   :attr:`BalConfig.clip_low` sigma *below* the model (absorption) are excluded from the next
   round; nothing is clipped above. Weights are ``1 / (sigma^2 + (eps * median flux)^2)`` (eps =
   :attr:`BalConfig.model_error`), so that at high S/N the template's imperfection, not the
   photon noise, sets the clipping scale. No PCA templates are used (DESI's ``baltools`` fits
   PCA eigenspectra; Guo & Martini 2019, ApJ 879, 72; Filbert et al. 2024, MNRAS 532, 3669).
3. **Troughs.** On the normalised flux ``n = F / continuum`` (smoothed by an inverse-variance
   weighted boxcar of :attr:`BalConfig.smooth` bins for the detection only), a trough is a run of
   contiguous bins with ``n < 0.9 - detect_sigma * sigma_n`` inside the index's velocity window,
   at least ``min_width`` wide and significant: its mean ``1 - n/0.9`` exceeds
   :attr:`BalConfig.trough_sigma` times its standard error (the ``baltools`` test,
   Guo & Martini 2019).

   - Balnicity index (Weymann et al. 1991, ApJ 373, 23): window 3,000-25,000 km/s, troughs at
     least 2,000 km/s wide, ``BI = sum (1 - n/0.9) dv`` over each trough *beyond its first
     2,000 km/s counted from the high-velocity (blue) edge* (the contiguity factor C). Troughs
     are cut at the window edges.
   - Absorption index (Hall et al. 2002, ApJS 141, 267): window 0-25,000 km/s (DESI's range; Hall
     used 0-29,000), troughs at least 450 km/s wide, ``AI = sum (1 - n/0.9) dv`` over the whole
     trough (DESI's ``baltools`` also leaves out the first 450 km/s: its AI is smaller by at
     most 450 km/s x the depth per trough).

   The errors propagate the normalised-flux noise only: ``ERR = sqrt(sum (sigma_n dv / 0.9)^2)``
   over the bins counted.

Velocities
----------
Outflow velocities are positive blueward of the line: ``v = c (1 - lambda / lambda_line)``
(km/s), as in DESI's BAL catalogue (Filbert et al. 2024) and picca's BAL mask
(Ennesser et al. 2022, MNRAS 511, 3514): ``VMIN_*`` is the red (low-velocity) edge of a trough
and ``VMAX_*`` its blue edge, so the trough spans ``lambda_line (1 - VMAX/c)`` to
``lambda_line (1 - VMIN/c)``. Unused trough slots hold -1. Line centres follow DESI's
``baltools``: CIV 1549.06 A, SiIV 1396.76 A (:data:`BAL_LINES`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import C_KMS

__all__ = [
    "BAL_LINES",
    "EMISSION_LINES",
    "MASK_LINES",
    "MASK_LINES_STRONG",
    "NAI",
    "NBI",
    "BalConfig",
    "BalFlag",
    "BalResult",
    "bal_columns",
    "balnicity_troughs",
    "find_bals",
    "mask_from_troughs",
    "rest_bins",
    "trough_rest_ranges",
]

#: BAL search lines (rest vacuum A), DESI ``baltools`` convention.
BAL_LINES: dict[str, float] = {"CIV": 1549.06, "SIIV": 1396.76}
#: Trough slots per line of the balnicity (2000 km/s) and absorption (450 km/s) troughs, as in
#: DESI's BAL catalogue.
NBI = 5
NAI = 17

#: Lines whose BAL troughs land in the Lyman-alpha forest and the DLA search range (rest vacuum
#: A). The CIV troughs' velocities are transposed to each: the lines of picca's BAL mask
#: (Ennesser et al. 2022, MNRAS 511, 3514; igmhub/picca ``delta_extraction/masks/bal_mask.py``)
#: with the doublets resolved and laboratory wavelengths (Morton 2003, ApJS 149, 205).
MASK_LINES: tuple[tuple[str, float], ...] = (
    ("CIV_1548", 1548.20),
    ("CIV_1550", 1550.77),
    ("SIIV_1393", 1393.76),
    ("SIIV_1402", 1402.77),
    ("NV_1238", 1238.82),
    ("NV_1242", 1242.80),
    ("LYA", 1215.67),
    ("CIII*_1175", 1175.71),
    ("PV_1117", 1117.98),
    ("PV_1128", 1128.01),
    ("SIV_1062", 1062.66),
    ("SIV_1072", 1072.97),
    ("OI_1039", 1039.23),
    ("OVI_1031", 1031.93),
    ("OVI_1037", 1037.62),
    ("LYB", 1025.72),
)

#: The strong lines only (Lyman-alpha, -beta, NV, SiIV, CIV, OVI): the lines of the parametric
#: BAL troughs of the mocks (:data:`surveynet.sim.igm.BAL_IONS`, with Lyman-beta) and the ones
#: the issue names; ``predict.bal_lines = "strong"`` of the DLA pipeline.
MASK_LINES_STRONG: tuple[tuple[str, float], ...] = tuple(
    (n, w) for n, w in MASK_LINES if n.split("_")[0] in ("LYA", "LYB", "NV", "SIIV", "CIV", "OVI")
)

#: Emission lines of the continuum model: (name, rest A, velocity shift km/s (+ = blueshift),
#: Gaussian sigma km/s). CIV has a narrow and a broad component at rest and a blueshifted one.
EMISSION_LINES: tuple[tuple[str, float, float, float], ...] = (
    ("NV", 1240.81, 0.0, 2500.0),
    ("OI", 1304.35, 0.0, 1500.0),
    ("CII", 1335.30, 0.0, 1500.0),
    ("SIIV_OIV", 1399.80, 0.0, 2500.0),
    ("CIV_N", 1549.06, 0.0, 1200.0),
    ("CIV_B", 1549.06, 0.0, 3500.0),
    ("CIV_S", 1549.06, 1500.0, 2000.0),
    ("HEII", 1640.42, 0.0, 2000.0),
    ("OIII]", 1663.48, 0.0, 1000.0),
    ("ALIII", 1857.40, 0.0, 1500.0),
    ("CIII]", 1908.73, 0.0, 2500.0),
)


class BalFlag(enum.IntFlag):
    """Per-quasar flags of the BAL finder (``BALMASK`` column; 0 = measured).

    Attributes
    ----------
    BAD_Z : int
        Redshift not finite or <= 0: nothing measured.
    NO_CIV : int
        Less than :attr:`BalConfig.min_coverage` of the CIV window (0-25,000 km/s) has data:
        the CIV columns are 0 / -1.
    NO_SIIV : int
        Same for SiIV.
    LOW_SNR : int
        Median flux below the median error over the CIV window (``baltools``' test): no trough
        is searched in this spectrum.
    FIT_FAILED : int
        The continuum is not positive over the CIV window or the fit had too few bins.
    """

    BAD_Z = 1
    NO_CIV = 2
    NO_SIIV = 4
    LOW_SNR = 8
    FIT_FAILED = 16


@dataclass(frozen=True, kw_only=True)
class BalConfig:
    """Settings of :func:`find_bals` (defaults: the method of the module docstring).

    Attributes
    ----------
    fit_range : tuple of float
        Rest-frame range of the continuum fit (A).
    dlog10 : float
        Rest-grid step (dex); 1e-4 = 69 km/s.
    poly_order : int
        Order of the polynomial in log wavelength.
    n_iter : int
        Clipping rounds of the continuum fit.
    clip_low : float
        Bins more than this many sigma below the model are excluded from the next round.
    model_error : float
        Fractional model error added in quadrature to the noise (weights and clipping).
    smooth : int
        Boxcar (bins, odd) of the detection flux.
    detect_sigma : float
        A bin is in a trough when its smoothed ``n < 0.9 - detect_sigma * sigma``.
    trough_sigma : float
        Significance of a trough's mean depth below 0.9 needed to keep it.
    min_coverage : float
        Fraction of the CIV (SiIV) window's bins with data needed to measure it.
    vmax : float
        Upper end of both windows (km/s).
    bi_vmin : float
        Lower end of the BI window (km/s).
    bi_width : float
        Minimum BI trough width, and the part of it not counted (km/s).
    ai_width : float
        Minimum AI trough width (km/s).

    Examples
    --------
    >>> BalConfig().bi_width, BalConfig(smooth=5).smooth
    (2000.0, 5)
    """

    fit_range: tuple[float, float] = (1270.0, 2000.0)
    dlog10: float = 1e-4
    poly_order: int = 2
    n_iter: int = 6
    clip_low: float = 2.0
    model_error: float = 0.05
    smooth: int = 3
    detect_sigma: float = 0.5
    trough_sigma: float = 3.0
    min_coverage: float = 0.5
    vmax: float = 25000.0
    bi_vmin: float = 3000.0
    bi_width: float = 2000.0
    ai_width: float = 450.0

    def __post_init__(self) -> None:
        lo, hi = self.fit_range
        if not 0 < lo < hi:
            raise ValueError(f"fit_range must be (min, max) > 0, got {self.fit_range}")
        if self.dlog10 <= 0:
            raise ValueError(f"dlog10 must be > 0, got {self.dlog10}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number >= 1, got {self.smooth}")
        if self.n_iter < 0 or self.poly_order < 0:
            raise ValueError("n_iter and poly_order must be >= 0")
        lam_lo = min(BAL_LINES.values()) * (1.0 - self.vmax / C_KMS)
        if lam_lo < lo or max(BAL_LINES.values()) > hi:
            raise ValueError(
                f"fit_range {self.fit_range} must cover the search windows "
                f"({lam_lo:.1f}-{max(BAL_LINES.values()):.1f} A)"
            )


@dataclass
class BalResult:
    """Output of :func:`find_bals`.

    Attributes
    ----------
    columns : dict of str to ndarray
        DESI BAL-catalogue columns, one row per input spectrum (:func:`bal_columns` lists them).
    loglam : ndarray of shape (n_bin,)
        log10 rest wavelength (A) of the common grid.
    flux, ivar, continuum : ndarray of shape (n_spec, n_bin)
        Binned flux, its inverse variance and the fitted continuum.
    """

    columns: dict[str, NDArray[Any]]
    loglam: NDArray[np.float64]
    flux: NDArray[np.float64]
    ivar: NDArray[np.float64]
    continuum: NDArray[np.float64]


def bal_columns() -> list[tuple[str, str, int]]:
    """Names, units and widths (0 = scalar) of the BAL columns, in catalogue order.

    Returns
    -------
    list of (str, str, int)

    Examples
    --------
    >>> [c for c, _, _ in bal_columns()][:4]
    ['BI_CIV', 'ERR_BI_CIV', 'NCIV_2000', 'VMIN_CIV_2000']
    """
    out: list[tuple[str, str, int]] = []
    for ion in ("CIV", "SIIV"):
        for idx, tag, n in (("BI", "2000", NBI), ("AI", "450", NAI)):
            out += [
                (f"{idx}_{ion}", "km/s", 0),
                (f"ERR_{idx}_{ion}", "km/s", 0),
                (f"N{ion}_{tag}", "", 0),
                (f"VMIN_{ion}_{tag}", "km/s", n),
                (f"VMAX_{ion}_{tag}", "km/s", n),
                (f"POSMIN_{ion}_{tag}", "km/s", n),
                (f"FMIN_{ion}_{tag}", "", n),
            ]
    out += [("SNR_CIV", "", 0), ("BALMASK", "", 0)]
    return out


def _empty_columns(n: int) -> dict[str, NDArray[Any]]:
    cols: dict[str, NDArray[Any]] = {}
    for name, _, width in bal_columns():
        if name == "BALMASK":
            cols[name] = np.zeros(n, np.int32)
        elif name.startswith("N"):
            cols[name] = np.zeros(n, np.int16)
        elif width:
            cols[name] = np.full((n, width), -1.0, np.float32)
        else:
            cols[name] = np.zeros(n, np.float32)
    return cols


def rest_bins(config: BalConfig | None = None) -> NDArray[np.float64]:
    """Edges (log10 A) of the common rest-frame grid.

    Parameters
    ----------
    config : BalConfig, optional
        ``fit_range`` and ``dlog10``.

    Returns
    -------
    ndarray of shape (n_bin + 1,)

    Examples
    --------
    >>> e = rest_bins()
    >>> float(round(10 ** e[0], 1)), e.size - 1
    (1270.0, 1973)
    """
    cfg = config or BalConfig()
    lo, hi = np.log10(cfg.fit_range)
    n = int(np.ceil((hi - lo) / cfg.dlog10 - 1e-9))
    return np.asarray(lo + cfg.dlog10 * np.arange(n + 1), dtype=np.float64)


def _bin_spectra(
    wave: Mapping[str, NDArray[Any]],
    flux: Mapping[str, NDArray[Any]],
    ivar: Mapping[str, NDArray[Any]],
    z: NDArray[np.float64],
    edges: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse-variance weighted rest-frame binning of every camera, all spectra at once."""
    n_spec, n_bin = z.size, edges.size - 1
    lz = np.log10(1.0 + np.where(np.isfinite(z) & (z > 0), z, 0.0))
    sw = np.zeros(n_spec * n_bin)
    swf = np.zeros(n_spec * n_bin)
    rows = np.arange(n_spec)[:, None] * n_bin
    for band, w in wave.items():
        f = np.asarray(flux[band], dtype=np.float64)
        iv = np.asarray(ivar[band], dtype=np.float64)
        good = np.isfinite(f) & np.isfinite(iv) & (iv > 0)
        j = np.floor(
            (np.log10(np.asarray(w, np.float64))[None, :] - lz[:, None] - edges[0])
            / (edges[1] - edges[0])
        ).astype(np.int64)
        good &= (j >= 0) & (j < n_bin)
        idx = (rows + j)[good]
        sw += np.bincount(idx, iv[good], minlength=n_spec * n_bin)
        swf += np.bincount(idx, (iv * np.where(good, f, 0.0))[good], minlength=n_spec * n_bin)
    sw2 = sw.reshape(n_spec, n_bin)
    swf2 = swf.reshape(n_spec, n_bin)
    with np.errstate(invalid="ignore", divide="ignore"):
        fb = np.where(sw2 > 0, swf2 / np.where(sw2 > 0, sw2, 1.0), 0.0)
    return fb, sw2


def _basis(loglam: NDArray[np.float64], cfg: BalConfig) -> tuple[NDArray[np.float64], int]:
    """Continuum basis ``(n_bin, K)``: polynomial in log wavelength, then the emission lines."""
    lam = 10.0**loglam
    x = (loglam - loglam.mean()) / max(np.ptp(loglam) / 2.0, 1e-12)
    cols = [x**k for k in range(cfg.poly_order + 1)]
    for _, lam0, shift, sigma in EMISSION_LINES:
        centre = lam0 * (1.0 - shift / C_KMS)
        v = C_KMS * (lam / centre - 1.0)
        cols.append(np.exp(-0.5 * (v / sigma) ** 2))
    return np.stack(cols, axis=1), cfg.poly_order + 1


def _fit_continuum(
    fb: NDArray[np.float64],
    ivb: NDArray[np.float64],
    basis: NDArray[np.float64],
    n_poly: int,
    cfg: BalConfig,
) -> NDArray[np.float64]:
    """Iterative, asymmetrically clipped, non-negative-line weighted least squares (batched)."""
    n_spec, _ = fb.shape
    k = basis.shape[1]
    valid = ivb > 0
    scale = np.array([np.median(fb[i, valid[i]]) if valid[i].any() else 1.0 for i in range(n_spec)])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    with np.errstate(divide="ignore"):
        var = np.where(valid, 1.0 / np.where(valid, ivb, 1.0), np.inf)
    var_eff = var + (cfg.model_error * scale[:, None]) ** 2
    w_eff = np.where(valid, 1.0 / var_eff, 0.0)
    keep = valid.copy()
    active = np.ones((n_spec, k), dtype=bool)
    eye = np.eye(k)

    def solve() -> NDArray[np.float64]:
        w = w_eff * keep
        m = np.einsum("sj,jk,jl->skl", w, basis, basis, optimize=True)
        r = np.einsum("sj,sj,jk->sk", w, fb, basis, optimize=True)
        off = ~active
        m = np.where(off[:, :, None] | off[:, None, :], 0.0, m)
        ridge = 1e-10 * np.trace(m, axis1=1, axis2=2)[:, None, None] + 1e-30
        m = m + eye[None] * (off[:, :, None] + ridge)
        r = np.where(off, 0.0, r)
        return np.asarray(np.linalg.solve(m, r[:, :, None])[:, :, 0])

    coef = solve()
    for _ in range(cfg.n_iter):
        for _ in range(len(EMISSION_LINES)):  # drop negative lines, refit
            neg = coef[:, n_poly:] < 0
            if not neg.any():
                break
            active[:, n_poly:] &= ~neg
            coef = solve()
        model = coef @ basis.T
        keep = valid & ((fb - model) * np.sqrt(w_eff) > -cfg.clip_low)
        coef = solve()
    coef[:, n_poly:] = np.clip(coef[:, n_poly:], 0.0, None)
    return np.asarray(coef @ basis.T)


def _smooth(
    n: NDArray[np.float64], iv: NDArray[np.float64], width: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse-variance weighted boxcar of ``n`` along axis 1 (its sigma too); NaN where empty."""
    if width == 1:
        with np.errstate(divide="ignore"):
            s = np.where(iv > 0, 1.0 / np.sqrt(np.where(iv > 0, iv, 1.0)), np.nan)
        return np.where(iv > 0, n, np.nan), s
    h = width // 2
    pad_iv = np.pad(iv, ((0, 0), (h, h)))
    pad_f = np.pad(np.where(iv > 0, n * iv, 0.0), ((0, 0), (h, h)))
    c_iv = np.cumsum(np.pad(pad_iv, ((0, 0), (1, 0))), axis=1)
    c_f = np.cumsum(np.pad(pad_f, ((0, 0), (1, 0))), axis=1)
    s_iv = c_iv[:, width:] - c_iv[:, :-width]
    s_f = c_f[:, width:] - c_f[:, :-width]
    ok = s_iv > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ns = np.where(ok, s_f / np.where(ok, s_iv, 1.0), np.nan)
        # sigma of the mean of `width` correlated-free bins
        ss = np.where(ok, 1.0 / np.sqrt(np.where(ok, s_iv, 1.0)), np.nan)
    return ns, ss


def _fill_nan(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linear interpolation over NaNs along axis 1 (rows without any value stay NaN)."""
    out = a.copy()
    bad_rows = np.flatnonzero(np.isnan(out).any(axis=1))
    x = np.arange(out.shape[1])
    for i in bad_rows:
        ok = ~np.isnan(out[i])
        if ok.sum() >= 1:
            out[i, ~ok] = np.interp(x[~ok], x[ok], out[i, ok])
    return out


def balnicity_troughs(
    loglam_edges: NDArray[np.float64],
    norm_flux: NDArray[np.float64],
    norm_sigma: NDArray[np.float64],
    detect_flux: NDArray[np.float64],
    detect_sigma: NDArray[np.float64],
    line: float,
    *,
    vmin: float,
    vmax: float,
    min_width: float,
    skip_first: bool,
    config: BalConfig | None = None,
) -> list[list[dict[str, float]]]:
    """Troughs of one index (BI or AI) of one line in every spectrum.

    Parameters
    ----------
    loglam_edges : ndarray of shape (n_bin + 1,)
        Rest-grid edges (log10 A).
    norm_flux, norm_sigma : ndarray of shape (n_spec, n_bin)
        Normalised flux and its 1-sigma error (inf/NaN where there is no data).
    detect_flux, detect_sigma : ndarray of shape (n_spec, n_bin)
        The (smoothed) flux and error that define the troughs (no NaN).
    line : float
        Rest wavelength of the line (A).
    vmin, vmax : float
        Velocity window (km/s, positive = blueshift).
    min_width : float
        Minimum trough width (km/s).
    skip_first : bool
        Count the index only beyond the first ``min_width`` of each trough from its blue edge
        (the balnicity index), else over the whole trough (the absorption index).
    config : BalConfig, optional
        ``detect_sigma`` and ``trough_sigma``.

    Returns
    -------
    list (one per spectrum) of list of dict
        Troughs from the highest velocity down, each with VMIN, VMAX, POSMIN, FMIN, INDEX, ERR.

    Examples
    --------
    >>> e = rest_bins()
    >>> v = C_KMS * (1 - 10 ** (0.5 * (e[1:] + e[:-1])) / 1549.06)
    >>> n = np.where((v > 10000) & (v < 15000), 0.45, 1.0)[None]
    >>> s = np.full_like(n, 0.01)
    >>> t = balnicity_troughs(e, n, s, n, s, 1549.06, vmin=3000., vmax=25000.,
    ...                       min_width=2000., skip_first=True)[0]
    >>> len(t), abs(t[0]["INDEX"] - 1500) < 40
    (1, True)
    """
    cfg = config or BalConfig()
    lam_e = 10.0**loglam_edges
    v_e = C_KMS * (1.0 - lam_e / line)  # decreasing with bin index
    v_c = 0.5 * (v_e[1:] + v_e[:-1])
    sel = np.flatnonzero((v_c >= vmin) & (v_c <= vmax))
    out: list[list[dict[str, float]]] = [[] for _ in range(norm_flux.shape[0])]
    if sel.size == 0:
        return out
    j0w, j1w = int(sel[0]), int(sel[-1]) + 1
    # velocity extent of each bin clipped to the window
    hi_e = np.minimum(v_e[j0w:j1w], vmax)
    lo_e = np.maximum(v_e[j0w + 1 : j1w + 1], vmin)
    dv = np.clip(hi_e - lo_e, 0.0, None)
    df = detect_flux[:, j0w:j1w]
    ds = detect_sigma[:, j0w:j1w]
    below = df < 0.9 - cfg.detect_sigma * ds
    pad = np.zeros((below.shape[0], 1), dtype=bool)
    d = np.diff(np.concatenate([pad, below, pad], axis=1).astype(np.int8), axis=1)
    s_rows, s_cols = np.nonzero(d == 1)
    _, e_cols = np.nonzero(d == -1)
    cum = np.concatenate([[0.0], np.cumsum(dv)])
    widths = cum[e_cols] - cum[s_cols]
    for i, a, b, width in zip(s_rows, s_cols, e_cols, widths, strict=True):
        if width < min_width - 1e-6:
            continue
        nf = norm_flux[i, j0w + a : j0w + b]
        ns = norm_sigma[i, j0w + a : j0w + b]
        good = np.isfinite(nf) & np.isfinite(ns)
        nf = np.where(good, nf, df[i, a:b])
        ns = np.where(good, ns, ds[i, a:b])
        # significance of the mean depth (baltools' test)
        nb = b - a
        if np.mean(1.0 - nf / 0.9) <= cfg.trough_sigma * np.sqrt(np.sum(ns**2)) / nb / 0.9:
            continue
        dvt = dv[a:b]
        if skip_first:
            cum_end = np.cumsum(dvt)
            wgt = np.clip((cum_end - min_width) / np.where(dvt > 0, dvt, 1.0), 0.0, 1.0)
        else:
            wgt = np.ones(nb)
        idx = float(np.sum(wgt * dvt * (1.0 - nf / 0.9)))
        err = float(np.sqrt(np.sum((wgt * dvt * ns / 0.9) ** 2)))
        k = int(np.argmin(df[i, a:b]))
        out[i].append(
            {
                "VMAX": float(hi_e[a]),
                "VMIN": float(lo_e[b - 1]),
                "POSMIN": float(v_c[j0w + a + k]),
                "FMIN": float(df[i, a + k]),
                "INDEX": max(idx, 0.0),
                "ERR": err,
            }
        )
    return out


def find_bals(
    wave: Mapping[str, NDArray[Any]],
    flux: Mapping[str, NDArray[Any]],
    ivar: Mapping[str, NDArray[Any]],
    z: Sequence[float] | NDArray[Any],
    config: BalConfig | None = None,
) -> BalResult:
    """Balnicity and absorption indices of CIV and SiIV, with their troughs, for many quasars.

    Parameters
    ----------
    wave : dict of str to ndarray of shape (n_pix_band,)
        Observed wavelength (A) per camera (one camera: ``{"all": wave}``).
    flux, ivar : dict of str to ndarray of shape (n_spec, n_pix_band)
        Flux (any units) and inverse variance per camera; ivar <= 0 or non-finite = no data.
    z : array-like of shape (n_spec,)
        Quasar redshifts.
    config : BalConfig, optional
        Method settings.

    Returns
    -------
    BalResult
        ``columns`` as in DESI's BAL catalogue (:func:`bal_columns`), one row per spectrum.

    Raises
    ------
    ValueError
        Mismatched camera keys or shapes.

    Examples
    --------
    >>> lam = np.linspace(3600.0, 9800.0, 6000)
    >>> v = C_KMS * (1 - lam / (1549.06 * 3.5))
    >>> f = np.where((v > 8000) & (v < 14000), 0.3, 1.0)[None] * 10.0
    >>> r = find_bals({"all": lam}, {"all": f}, {"all": np.full_like(f, 1e4)}, [2.5])
    >>> int(r.columns["NCIV_2000"][0]), abs(float(r.columns["BI_CIV"][0]) - 4000 * 2 / 3) < 150
    (1, True)
    """
    cfg = config or BalConfig()
    zz = np.atleast_1d(np.asarray(z, dtype=np.float64))
    if set(wave) != set(flux) or set(wave) != set(ivar):
        raise ValueError(f"wave/flux/ivar cameras differ: {sorted(wave)}, {sorted(flux)}")
    for b in wave:
        shp = np.shape(flux[b])
        if len(shp) != 2 or shp != np.shape(ivar[b]) or shp != (zz.size, np.size(wave[b])):
            raise ValueError(
                f"camera {b}: flux/ivar must have shape (n_spec={zz.size}, "
                f"n_pix={np.size(wave[b])}), got {shp} and {np.shape(ivar[b])}"
            )
    edges = rest_bins(cfg)
    loglam = 0.5 * (edges[1:] + edges[:-1])
    cols = _empty_columns(zz.size)
    fb, ivb = _bin_spectra(wave, flux, ivar, zz, edges)
    bad_z = ~(np.isfinite(zz) & (zz > 0))
    ivb[bad_z] = 0.0
    basis, n_poly = _basis(loglam, cfg)
    cont = _fit_continuum(fb, ivb, basis, n_poly, cfg)
    flags = np.where(bad_z, int(BalFlag.BAD_Z), 0).astype(np.int32)
    ok_c = (cont > 0) & (ivb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nflux = np.where(ok_c, fb / np.where(ok_c, cont, 1.0), np.nan)
        nsig = np.where(ok_c, 1.0 / (np.sqrt(np.where(ok_c, ivb, 1.0)) * np.abs(cont)), np.nan)
    niv = np.where(ok_c, 1.0 / np.where(ok_c, nsig, 1.0) ** 2, 0.0)
    det_f, det_s = _smooth(np.nan_to_num(nflux, nan=1.0), niv, cfg.smooth)
    det_f = np.nan_to_num(_fill_nan(det_f), nan=1.0)
    det_s = np.nan_to_num(_fill_nan(det_s), nan=np.inf)
    lam_c = 10.0**loglam
    for ion, bit in (("CIV", BalFlag.NO_CIV), ("SIIV", BalFlag.NO_SIIV)):
        line = BAL_LINES[ion]
        v_c = C_KMS * (1.0 - lam_c / line)
        win = (v_c >= 0.0) & (v_c <= cfg.vmax)
        cover = (ivb[:, win] > 0).mean(axis=1)
        no_cov = cover < cfg.min_coverage
        flags |= np.where(no_cov, int(bit), 0).astype(np.int32)
        if ion == "CIV":
            with np.errstate(invalid="ignore", divide="ignore"):
                snr = np.array(
                    [
                        np.median((fb[i, win] * np.sqrt(ivb[i, win]))[ivb[i, win] > 0])
                        if (ivb[i, win] > 0).any()
                        else 0.0
                        for i in range(zz.size)
                    ]
                )
            cols["SNR_CIV"] = snr.astype(np.float32)
            low = snr < 1.0
            flags |= np.where(low & ~no_cov, int(BalFlag.LOW_SNR), 0).astype(np.int32)
            cpos = np.array([(cont[i, win] > 0).all() for i in range(zz.size)])
            flags |= np.where(~cpos & ~no_cov, int(BalFlag.FIT_FAILED), 0).astype(np.int32)
        skip = no_cov | bad_z | ((flags & (BalFlag.LOW_SNR | BalFlag.FIT_FAILED)) > 0)
        for idx, tag, nmax, vlo, width, first in (
            ("BI", "2000", NBI, cfg.bi_vmin, cfg.bi_width, True),
            ("AI", "450", NAI, 0.0, cfg.ai_width, False),
        ):
            troughs = balnicity_troughs(
                edges,
                nflux,
                nsig,
                det_f,
                det_s,
                line,
                vmin=vlo,
                vmax=cfg.vmax,
                min_width=width,
                skip_first=first,
                config=cfg,
            )
            for i, tl in enumerate(troughs):
                if skip[i] or not tl:
                    continue
                tl = tl[:nmax]
                cols[f"{idx}_{ion}"][i] = sum(t["INDEX"] for t in tl)
                cols[f"ERR_{idx}_{ion}"][i] = float(np.sqrt(sum(t["ERR"] ** 2 for t in tl)))
                cols[f"N{ion}_{tag}"][i] = len(tl)
                for key in ("VMIN", "VMAX", "POSMIN", "FMIN"):
                    cols[f"{key}_{ion}_{tag}"][i, : len(tl)] = [t[key] for t in tl]
    cols["BALMASK"] = flags
    return BalResult(columns=cols, loglam=loglam, flux=fb, ivar=ivb, continuum=cont)


def trough_rest_ranges(
    vmin: Sequence[float] | NDArray[Any],
    vmax: Sequence[float] | NDArray[Any],
    lines: Sequence[tuple[str, float]] = MASK_LINES,
    margin_kms: float = 0.0,
) -> NDArray[np.float64]:
    """Rest-frame wavelength ranges of troughs transposed to absorbing lines.

    A trough from ``vmin`` to ``vmax`` (positive outflow velocities) of line ``lambda_l`` spans
    ``lambda_l (1 - vmax/c)`` to ``lambda_l (1 - vmin/c)``; unused slots (-1) are ignored. A
    trough reaching the red end of the absorption-index window has ``vmin = 0`` and is kept
    (picca's mask drops ``vmin <= 0``; DESI's ``baltools`` never writes exactly 0 there).

    Parameters
    ----------
    vmin, vmax : array-like of shape (n_trough,)
        Trough limits (km/s).
    lines : sequence of (name, rest A)
        Lines to mask (default :data:`MASK_LINES`).
    margin_kms : float
        Widen every trough by this much on both sides (km/s).

    Returns
    -------
    ndarray of shape (n_range, 2)
        Rest-frame (min, max) wavelengths (A).

    Examples
    --------
    >>> r = trough_rest_ranges([5000.0, -1.0], [10000.0, -1.0], [("LYA", 1215.67)])
    >>> np.round(r, 2).tolist()
    [[1175.12, 1195.39]]
    """
    lo_v = np.atleast_1d(np.asarray(vmin, dtype=np.float64))
    hi_v = np.atleast_1d(np.asarray(vmax, dtype=np.float64))
    ok = (lo_v >= 0) & (hi_v > 0) & np.isfinite(lo_v) & np.isfinite(hi_v)
    lo_v = np.maximum(lo_v[ok] - margin_kms, 0.0)
    hi_v = hi_v[ok] + margin_kms
    lam = np.array([w for _, w in lines], dtype=np.float64)
    if lo_v.size == 0 or lam.size == 0:
        return np.zeros((0, 2))
    lo = np.outer(lam, 1.0 - hi_v / C_KMS).ravel()
    hi = np.outer(lam, 1.0 - lo_v / C_KMS).ravel()
    return np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1)


def mask_from_troughs(
    rest_wave: NDArray[np.floating], ranges: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """True for the pixels whose rest wavelength lies inside any of ``ranges`` (inclusive).

    Parameters
    ----------
    rest_wave : ndarray of shape (n_pix,)
        Rest-frame wavelengths (A), increasing.
    ranges : ndarray of shape (n_range, 2)
        From :func:`trough_rest_ranges`.

    Returns
    -------
    ndarray of bool, shape (n_pix,)

    Examples
    --------
    >>> mask_from_troughs(np.arange(10.0), np.array([[2.0, 4.0], [8.5, 20.0]])).astype(int).tolist()
    [0, 0, 1, 1, 1, 0, 0, 0, 0, 1]
    """
    rw = np.asarray(rest_wave, dtype=np.float64)
    m = np.zeros(rw.size, dtype=bool)
    if len(ranges) == 0:
        return m
    a = np.searchsorted(rw, ranges[:, 0], side="left")
    b = np.searchsorted(rw, ranges[:, 1], side="right")
    delta = np.zeros(rw.size + 1, dtype=np.int64)
    np.add.at(delta, a, 1)
    np.add.at(delta, b, -1)
    return np.asarray(np.cumsum(delta)[:-1] > 0)
