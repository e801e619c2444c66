"""Reading DLA inputs and truth into sightlines, and preparing training sets (dla.md 1 and 3).

Sightlines (:func:`sightlines_from_spectra`, :func:`read_sightlines`):

1. keep quasars with ``z_qso >= data.z_qso_min``;
2. merge the cameras on one native grid (overlap: per pixel the value with the smaller error);
3. divide flux **and** error by the median flux at rest ``data.norm_range`` (1420-1480 A);
4. S/N = median(flux / error) over the same rest window, native pixels; keep S/N >= ``s2n_min``;
5. keep one camera (``data.camera``, "b" as the mock pipeline) or all of them ("all");
6. rebin to constant velocity (``data.velocity_ms``) with exact overlap weights, propagating the
   **variance** (the anchor rebins sigma like a flux and then rescales it "crudely").

Errors are stored as sigma; pixels without data carry ``error = inf`` (``ivar = 0``).

Labels per pixel ``j`` (:func:`label_sightline`), ``s = samplerange`` (60 for 400 px, 90 for 600):

- class 0; then -1 ("border", never trained) where ``|j - ix_DLA| <= border_factor * s`` and
  ``|j - ix_LyB| <= s``; then +1 where ``|j - ix_DLA| <= s`` (all ranges clipped to [0, n)).
- offset = ``ix_DLA - j`` of the nearest absorber for positives (> 0: absorber redward), 0 else.
- N_HI = log N of that absorber for positives, 0 else.

Window datasets: one window is centred on **every** pixel whose rest wavelength lies in
``data.rest_range`` (900-1346 A). A window centred on pixel ``j`` covers pixels
``[j - L//2, j + L//2)``; parts off the spectrum are padded with the mean flux of the
first/last ``pad_npix`` pixels (cosmodesi/desi-dlas:desidlas/datasets/datasetting.py
``split_sightline_into_samples``). Smoothed datasets (:func:`make_smoothdatasets`) have channels
``[raw, medfilt 3, medfilt 7, medfilt 15]`` in that order, as ``(n, C, L)`` arrays (channel axis
second, the torch layout; the anchor's ``reshape`` interleaved them). The median filters run on
the padded whole sightline, so a window's channels equal the fully-convolutional model's input
sliced at the same pixels. Datasets are stored as ``.npz`` (``allow_pickle=False``) or FITS
(image HDU ``FLUX`` + table ``LABELS``), never pickles.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from numpy.typing import NDArray

from surveynet.constants import LYA_REST, LYB_REST
from surveynet.dla.config import GRID_C_MS, DataConfig, DatasetConfig
from surveynet.dla.preprocess import InputSpec
from surveynet.dla.sightline import Dla, Sightline, fractional_pixel, search_pixels
from surveynet.errors import InputError
from surveynet.io.fits import (
    atomic_path,
    provenance_header,
    table_columns,
    table_hdu,
    write_hdulist,
)
from surveynet.io.sdss import read_speclite, sniff_speclite
from surveynet.io.spectra import Spectra, read_spectra
from surveynet.io.truth import read_truth, read_zbest
from surveynet.nn.numpy_ops import medfilt
from surveynet.sim.instrument import pixel_edges

logger = logging.getLogger(__name__)

__all__ = [
    "MergePlan",
    "PixelLabels",
    "RebinPlan",
    "WindowDataset",
    "estimate_s2n",
    "extract_windows",
    "label_sightline",
    "load_dataset",
    "make_datasets",
    "make_smoothdatasets",
    "merge_cameras",
    "padded_channels",
    "pixel_labels",
    "read_dla_truth",
    "read_qso_redshifts",
    "read_sightlines",
    "read_spectra_file",
    "read_training_sightlines",
    "rebin",
    "save_dataset",
    "select_s2n",
    "sightlines_from_spectra",
]


# ----------------------------------------------------------------------------- numerics


def rebin(
    wave: NDArray[np.float64],
    flux: NDArray[np.float64],
    error: NDArray[np.float64],
    velocity_ms: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Rebin a spectrum onto a constant-velocity grid, propagating the variance.

    The new grid is ``lambda_k = lambda_0 exp(k dlnl)`` with ``dlnl = ln(1 + v/c)``
    (c = :data:`~surveynet.dla.config.GRID_C_MS`, the anchor's grid convention) starting at the
    first native pixel centre (zoujiaqi99/dla_cnn:desi/preprocess.py ``rebin``). Each new pixel is
    the overlap-weighted mean of the native pixels it covers: with ``w_i`` the overlap length of
    native pixel ``i``, ``F = sum(w_i f_i) / sum(w_i)`` and
    ``var(F) = sum(w_i^2 s_i^2) / (sum w_i)^2``.
    Pixels with infinite or non-positive error get zero weight; a new pixel with no valid native
    pixel gets the linearly interpolated flux and ``error = inf``. New pixels not fully covered by
    the native grid are trimmed.

    Parameters
    ----------
    wave : ndarray of shape (n,)
        Native wavelengths (A), strictly increasing.
    flux, error : ndarray of shape (n,)
        Flux and 1-sigma error (``inf`` = no data).
    velocity_ms : float
        Pixel size in m/s.

    Returns
    -------
    wave_new, flux_new, error_new : ndarray of shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> w = 4000.0 * np.exp(np.arange(200) * 1e-4)
    >>> wn, fn, en = rebin(w, np.ones(200), np.ones(200), 2 * 2.9979246e8 * (np.exp(1e-4) - 1))
    >>> bool(np.allclose(fn, 1.0)) and bool(np.all(en < 1.0))
    True
    """
    w = np.asarray(wave, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    if not (w.shape == f.shape == e.shape) or w.ndim != 1:
        raise ValueError(
            f"rebin: wave/flux/error must be 1-D, same length; got {w.shape}, {f.shape}, {e.shape}"
        )
    return RebinPlan.build(w, velocity_ms).apply(f, e)


@dataclass(frozen=True)
class RebinPlan:
    """The wavelength-only part of :func:`rebin`: computed once for many spectra on one grid.

    Attributes
    ----------
    n_old : int
        Native pixels.
    wave : ndarray of shape (m,)
        New pixel centres.
    seg : ndarray
        Lengths of the pieces the native and new edges cut the axis into.
    iold, inew : ndarray of int
        Native and new pixel of each piece.
    """

    n_old: int
    wave: NDArray[np.float64]
    seg: NDArray[np.float64]
    iold: NDArray[np.int64]
    inew: NDArray[np.int64]

    @classmethod
    def build(cls, wave: NDArray[np.float64], velocity_ms: float) -> RebinPlan:
        """The plan of native grid ``wave`` (1-D, increasing) at pixel size ``velocity_ms``."""
        w = np.asarray(wave, dtype=np.float64)
        if velocity_ms <= 0:
            raise ValueError(f"rebin: velocity_ms must be > 0, got {velocity_ms}")
        dlnl = np.log1p(velocity_ms / GRID_C_MS)
        old_e = pixel_edges(w)
        n_new = int(np.floor(np.log(w[-1] / w[0]) / dlnl)) + 1
        new_w = w[0] * np.exp(dlnl * np.arange(n_new))
        new_e = new_w * np.exp(np.array([-0.5, 0.5])[:, None] * dlnl)  # (2, m) lower/upper edges
        keep = (new_e[0] >= old_e[0]) & (new_e[1] <= old_e[-1])
        new_w = new_w[keep]
        lo, hi = new_e[0][keep], new_e[1][keep]
        if new_w.size == 0:
            z = np.zeros(0, np.int64)
            return cls(w.size, new_w, np.zeros(0), z, z)
        edges_new = np.concatenate([lo, hi[-1:]])
        pts = np.union1d(old_e[(old_e >= edges_new[0]) & (old_e <= edges_new[-1])], edges_new)
        mid = 0.5 * (pts[1:] + pts[:-1])
        iold = np.clip(np.searchsorted(old_e, mid) - 1, 0, w.size - 1)
        inew = np.clip(np.searchsorted(edges_new, mid) - 1, 0, new_w.size - 1)
        return cls(w.size, new_w, np.diff(pts), iold, inew)

    def apply(
        self, flux: NDArray[np.float64], error: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """:func:`rebin` of one spectrum on the plan's native grid: ``(wave, flux, error)``."""
        new_w = self.wave
        if new_w.size == 0:
            return new_w, new_w.copy(), new_w.copy()
        f = np.asarray(flux, dtype=np.float64)
        e = np.asarray(error, dtype=np.float64)
        if f.shape != (self.n_old,) or e.shape != (self.n_old,):
            raise ValueError(f"rebin: flux/error must have shape ({self.n_old},)")
        iold, inew = self.iold, self.inew
        fo, eo = f[iold], e[iold]
        good = np.isfinite(eo) & (eo > 0) & np.isfinite(fo)
        wgt = np.where(good, self.seg, 0.0)
        m = new_w.size
        wsum = np.bincount(inew, wgt, minlength=m)
        fsum = np.bincount(inew, wgt * np.where(good, fo, 0.0), minlength=m)
        vsum = np.bincount(inew, wgt**2 * np.where(good, eo, 0.0) ** 2, minlength=m)
        ok = wsum > 0
        fn = np.zeros(m)
        en = np.full(m, np.inf)
        fn[ok] = fsum[ok] / wsum[ok]
        en[ok] = np.sqrt(vsum[ok]) / wsum[ok]
        if ok.any() and not ok.all():
            fn[~ok] = np.interp(new_w[~ok], new_w[ok], fn[ok])
        return new_w.copy(), fn, en


def estimate_s2n(
    wave: NDArray[np.float64],
    flux: NDArray[np.float64],
    error: NDArray[np.float64],
    z_qso: float,
    rest_range: tuple[float, float] = (1420.0, 1480.0),
) -> float:
    """S/N = median(flux / error) over rest ``rest_range`` on valid pixels (0.0 if none).

    This is the desi-dlas ``estimate_s2n`` and the DESI DR1 VAC ``S2N`` definition.

    Parameters
    ----------
    wave, flux, error : ndarray of shape (n,)
        Observed wavelength (A), flux and 1-sigma error (``inf`` = no data).
    z_qso : float
        Quasar redshift.
    rest_range : tuple of float
        Rest-frame window (A).

    Returns
    -------
    float
        The median S/N per pixel.

    Examples
    --------
    >>> w = np.linspace(5000.0, 6000.0, 501)
    >>> estimate_s2n(w, np.full(501, 2.0), np.full(501, 0.5), 2.5)
    4.0
    """
    rest = np.asarray(wave) / (1.0 + z_qso)
    sel = (rest >= rest_range[0]) & (rest <= rest_range[1]) & np.isfinite(error) & (error > 0)
    if not sel.any():
        return 0.0
    return float(np.median(flux[sel] / error[sel]))


def merge_cameras(
    spectra: Spectra, index: int, bands: Sequence[str] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Merge cameras of spectrum ``index`` onto one native grid (flux, 1-sigma error).

    Where camera grids coincide (same wavelength to 1e-3 of a pixel), the pixel with the smaller
    error wins (dla.md 1.2 ``camera='all'``). Where they overlap without coinciding, the overlap is
    split at its midpoint. Masked pixels (``mask != 0``), non-finite values and ``ivar <= 0`` get
    ``error = inf``.

    Parameters
    ----------
    spectra : Spectra
        Spectra of several targets.
    index : int
        Row of the target.
    bands : sequence of str, optional
        Cameras to merge (default: all of ``spectra.bands``).

    Returns
    -------
    wave, flux, error : ndarray of shape (n_pix,)
    """
    plan = MergePlan.build(spectra, bands)
    fl, er = plan.flux_error(spectra, slice(index, index + 1))
    f, e = plan.apply([x[0] for x in fl], [x[0] for x in er])
    return plan.wave.copy(), f, e


@dataclass(frozen=True)
class MergePlan:
    """The wavelength-only part of :func:`merge_cameras`, computed once per file.

    Attributes
    ----------
    bands : list of str
        Cameras in merge order (by first wavelength).
    wave : ndarray
        The merged native grid.
    steps : list of tuple
        Per camera after the first: ``("append",)``, ``("same", tgt, inside)`` or
        ``("cut", keep_old, keep_new)`` index arrays replayed on each spectrum.
    """

    bands: list[str]
    wave: NDArray[np.float64]
    steps: list[tuple[Any, ...]]

    @classmethod
    def build(cls, spectra: Spectra, bands: Sequence[str] | None = None) -> MergePlan:
        """The plan of ``spectra``'s camera grids (``bands`` default: all)."""
        names = list(spectra.bands if bands is None else bands)
        waves = {b: np.asarray(spectra.wave[b], dtype=np.float64) for b in names}
        order = sorted(names, key=lambda b: float(waves[b][0]))
        W = waves[order[0]]
        steps: list[tuple[Any, ...]] = []
        for b in order[1:]:
            w = waves[b]
            if w[0] > W[-1]:
                steps.append(("append",))
                W = np.concatenate([W, w])
                continue
            step = float(np.median(np.diff(w)))
            j = np.searchsorted(W, w, side="left").clip(0, W.size - 1)
            jm = (j - 1).clip(0)
            jn = np.where(np.abs(W[jm] - w) < np.abs(W[j] - w), jm, j)
            same = np.abs(W[jn] - w) < 1e-3 * step
            inside = w <= W[-1]
            if np.all(same[inside]):
                steps.append(("same", jn[inside], inside))
                W = np.concatenate([W, w[~inside]])
            else:
                cut = 0.5 * (w[0] + W[-1])
                k, m = W < cut, w >= cut
                steps.append(("cut", k, m))
                W = np.concatenate([W[k], w[m]])
        return cls(order, W, steps)

    def flux_error(
        self, spectra: Spectra, rows: slice | NDArray[np.int64]
    ) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
        """Per camera (plan order), flux with bad pixels zeroed and error (``inf`` = bad).

        Vectorised over ``rows``: arrays of shape (n_rows, n_pix_camera).
        """
        fl, er = [], []
        for b in self.bands:
            f = np.asarray(spectra.flux[b][rows], dtype=np.float64)
            iv = np.asarray(spectra.ivar[b][rows], dtype=np.float64)
            bad = ~np.isfinite(f) | ~np.isfinite(iv) | (iv <= 0)
            if spectra.mask is not None and b in spectra.mask:
                bad |= np.asarray(spectra.mask[b][rows]) != 0
            with np.errstate(divide="ignore"):
                er.append(np.where(bad, np.inf, 1.0 / np.sqrt(np.where(bad, 1.0, iv))))
            fl.append(np.where(bad, 0.0, f))
        return fl, er

    def apply(
        self, fluxes: Sequence[NDArray[np.float64]], errors: Sequence[NDArray[np.float64]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Merged ``(flux, error)`` of one spectrum from its per-camera rows (plan order)."""
        F, E = fluxes[0], errors[0]
        for st, f, e in zip(self.steps, fluxes[1:], errors[1:], strict=True):
            if st[0] == "append":
                F, E = np.concatenate([F, f]), np.concatenate([E, e])
            elif st[0] == "same":
                tgt, inside = st[1], st[2]
                better = e[inside] < E[tgt]
                F, E = F.copy(), E.copy()
                F[tgt[better]] = f[inside][better]
                E[tgt[better]] = e[inside][better]
                F = np.concatenate([F, f[~inside]])
                E = np.concatenate([E, e[~inside]])
            else:
                k, m = st[1], st[2]
                F, E = np.concatenate([F[k], f[m]]), np.concatenate([E[k], e[m]])
        return F, E


# ----------------------------------------------------------------------------- building


def _camera_range(spectra: Spectra, camera: str) -> tuple[float, float]:
    if camera == "all":
        return -np.inf, np.inf
    if camera not in spectra.bands and len(spectra.bands) == 1:
        # one combined band (BOSS spPlate / SDSS spec-lite "brz"): the searched rest range
        # picks the pixels; the camera only names the pixel size (data.velocity_ms)
        return -np.inf, np.inf
    if camera not in spectra.bands:
        raise InputError(
            f"camera {camera!r} not in the spectra (bands {spectra.bands})",
            path=spectra.source,
            hdu=f"{camera.upper()}_WAVELENGTH",
        )
    w = spectra.wave[camera]
    return float(w[0]), float(w[-1])


def _zmap(z_qso: Mapping[int, float] | Table) -> dict[int, float]:
    if isinstance(z_qso, Table):
        for col in ("Z_QSO", "Z", "Z_QN"):
            if col in z_qso.colnames:
                return {
                    int(t): float(z) for t, z in zip(z_qso["TARGETID"], z_qso[col], strict=True)
                }
        raise InputError("redshift table has no Z_QSO, Z or Z_QN column", column="Z")
    return {int(k): float(v) for k, v in z_qso.items()}


def sightlines_from_spectra(
    spectra: Spectra,
    z_qso: Mapping[int, float] | Table,
    config: DataConfig | None = None,
    *,
    dlas: Mapping[int, Sequence[Dla]] | None = None,
) -> list[Sightline]:
    """Build preprocessed sightlines from a :class:`~surveynet.io.spectra.Spectra`.

    Parameters
    ----------
    spectra : Spectra
        Spectra of any number of targets (DESI b/r/z cameras, or a single band).
    z_qso : dict of int to float, or Table
        Quasar redshift per TARGETID; a Table needs TARGETID and Z_QSO, Z or Z_QN. Targets without
        a redshift are skipped.
    config : DataConfig, optional
        Filters, normalisation window, camera and pixel velocity (defaults: DESI mock pipeline).
    dlas : dict of int to list of Dla, optional
        Truth absorbers per TARGETID to attach.

    Returns
    -------
    list of Sightline
        In the order of the spectra, filtered by z_qso and S/N.
    """
    cfg = config or DataConfig()
    zmap = _zmap(z_qso)
    dlas = dlas or {}
    fm = spectra.fibermap
    ra = (
        np.asarray(fm["TARGET_RA"], dtype=np.float64)
        if "TARGET_RA" in fm.colnames
        else np.full(len(fm), np.nan)
    )
    dec = (
        np.asarray(fm["TARGET_DEC"], dtype=np.float64)
        if "TARGET_DEC" in fm.colnames
        else np.full(len(fm), np.nan)
    )
    wmin, wmax = _camera_range(spectra, cfg.camera)
    out: list[Sightline] = []
    n_z = n_s2n = 0
    # the camera merge and the rebinning depend on the wavelengths only: planned once per file,
    # then applied to every spectrum (per-camera errors computed for all rows at once)
    rows = [
        i
        for i, tid in enumerate(spectra.targetid)
        if int(tid) in zmap and np.isfinite(zmap[int(tid)]) and zmap[int(tid)] >= cfg.z_qso_min
    ]
    n_z = spectra.n_spec - len(rows)
    plan = MergePlan.build(spectra) if rows else None
    fl, er = plan.flux_error(spectra, np.asarray(rows, np.int64)) if plan else ([], [])
    w_all = plan.wave if plan else np.zeros(0)
    sel_w = (w_all >= wmin) & (w_all <= wmax)
    rplan = (
        RebinPlan.build(w_all[sel_w], cfg.velocity_ms)
        if plan is not None and cfg.velocity_ms > 0
        else None
    )
    for r, i in enumerate(rows):
        tid = int(spectra.targetid[i])
        z = zmap[tid]
        w = w_all
        f, e = plan.apply([x[r] for x in fl], [x[r] for x in er])  # type: ignore[union-attr]
        rest = w / (1.0 + z)
        nsel = (rest >= cfg.norm_range[0]) & (rest <= cfg.norm_range[1]) & np.isfinite(e)
        norm = float(np.median(f[nsel])) if nsel.any() else 0.0
        if not np.isfinite(norm) or norm <= 0:
            logger.info(
                "TARGETID %d: no valid flux at rest %s A (median %.3g); skipped",
                tid,
                cfg.norm_range,
                norm,
            )
            n_s2n += 1
            continue
        f = f / norm
        e = e / norm
        s2n = estimate_s2n(w, f, e, z, cfg.norm_range)
        if s2n < cfg.s2n_min:
            n_s2n += 1
            continue
        w, f, e = w[sel_w], f[sel_w], e[sel_w]
        if rplan is not None:
            w, f, e = rplan.apply(f, e)
        valid = np.flatnonzero(np.isfinite(e))
        if valid.size < 2:
            n_s2n += 1
            continue
        sl = slice(valid[0], valid[-1] + 1)  # trim edges without data (DeepIGM PR #33)
        out.append(
            Sightline(
                targetid=tid,
                z_qso=z,
                loglam=np.log10(w[sl]),
                flux=f[sl],
                error=e[sl],
                s2n=s2n,
                dlas=sorted(dlas.get(tid, []), key=lambda d: d.z_dla),
                ra=float(ra[i]),
                dec=float(dec[i]),
                camera=cfg.camera,
            )
        )
    logger.info(
        "%d sightlines kept of %d spectra (%d failed z_qso >= %.2f, %d failed S/N >= %.2f)",
        len(out),
        spectra.n_spec,
        n_z,
        cfg.z_qso_min,
        n_s2n,
        cfg.s2n_min,
    )
    return out


# ----------------------------------------------------------------------------- files


@functools.lru_cache(maxsize=8)
def _truth_cached(path: str, stamp: tuple[int, int]) -> Any:
    """:func:`read_truth` of a file at a given (mtime_ns, size): read once per process."""
    return read_truth(path)


def _truth(path: Path) -> Any:
    """The truth tables of ``path`` (shared, do not modify), re-read when the file changes.

    ``dla predict`` reads the same truth file for every input file and data config (redshifts
    and DLA_META): one read per process instead of one per (file, config).
    """
    st = path.stat()
    return _truth_cached(str(path.resolve()), (st.st_mtime_ns, st.st_size))


def read_qso_redshifts(path: str | os.PathLike[str], config: DataConfig | None = None) -> Table:
    """Quasar redshifts from a truth file, a zbest/redrock file or a QuasarNET catalogue.

    Recognised layouts (by EXTNAME / columns):

    - truth file: HDU ``TRUTH`` (:func:`surveynet.io.truth.read_truth`); quasars have
      OBJTYPE == ``qso_objtype`` (all rows when OBJTYPE is absent);
    - zbest/redrock: HDU ``ZBEST`` or ``REDSHIFTS`` (:func:`surveynet.io.truth.read_zbest`);
      quasars have SPECTYPE == ``qso_objtype`` (all rows when SPECTYPE is absent);
    - quasar pipeline catalogue: a table HDU with TARGETID, Z_QN and IS_QSO_QN (true rows kept).

    With ``config.skip_bal``, quasars flagged as BAL are dropped too (truth: ``IS_BAL``, else
    ``BI_CIV > 0``; QuasarNET catalogue: ``IS_BAL_QN``); a catalogue without such a column
    raises :class:`InputError`.

    Parameters
    ----------
    path : str or os.PathLike
        The redshift source.
    config : DataConfig, optional
        ``qso_objtype`` and ``skip_bal``.

    Returns
    -------
    Table
        Columns TARGETID (int64) and Z_QSO (float64), quasars only.

    Raises
    ------
    InputError
        Unreadable file or none of the layouts above.
    """
    cfg = config or DataConfig()
    p = Path(path)
    tables = table_columns(p)
    names = [name for name, _ in tables]
    qn = [name for name, cols in tables if "Z_QN" in cols]

    def _not_bal(t: Table, cols: tuple[str, ...], hdu: str) -> NDArray[np.bool_]:
        """True for rows that are not BAL-flagged (all True unless ``skip_bal``)."""
        if not cfg.skip_bal:
            return np.ones(len(t), bool)
        for c in cols:
            if c in t.colnames:
                v = np.asarray(t[c])
                bal = v > 0 if c == "BI_CIV" else v.astype(bool)
                logger.info("%s: %d BAL-flagged rows (%s) skipped", p.name, int(bal.sum()), c)
                return ~bal
        raise InputError(
            f"skip_bal needs a BAL flag ({' or '.join(cols)}) in the redshift catalogue",
            path=p,
            hdu=hdu,
        )

    def _select(t: Table, zcol: str, typecol: str, bal_cols: tuple[str, ...], hdu: str) -> Table:
        keep = np.ones(len(t), bool)
        if typecol in t.colnames:
            typ = np.char.strip(np.asarray(t[typecol]).astype(str))
            keep = np.char.upper(typ) == cfg.qso_objtype.upper()
        keep &= _not_bal(t, bal_cols, hdu)
        return Table(
            {
                "TARGETID": np.asarray(t["TARGETID"], np.int64)[keep],
                "Z_QSO": np.asarray(t[zcol], np.float64)[keep],
            }
        )

    if "TRUTH" in names:
        return _select(_truth(p).targets, "Z", "OBJTYPE", ("IS_BAL", "BI_CIV"), "TRUTH")
    if "ZBEST" in names or "REDSHIFTS" in names:
        zb = read_zbest(p)  # header-only checksum mismatches are warnings there
        hdu = "ZBEST" if "ZBEST" in names else "REDSHIFTS"
        return _select(zb, "Z", "SPECTYPE", ("IS_BAL", "BI_CIV"), hdu)
    if qn:
        t = Table.read(p, hdu=qn[0])
        for c in ("TARGETID", "IS_QSO_QN"):
            if c not in t.colnames:
                raise InputError("missing column", path=p, hdu=qn[0], column=c)
        keep = np.asarray(t["IS_QSO_QN"]).astype(bool) & _not_bal(t, ("IS_BAL_QN",), qn[0])
        return Table(
            {
                "TARGETID": np.asarray(t["TARGETID"], np.int64)[keep],
                "Z_QSO": np.asarray(t["Z_QN"], np.float64)[keep],
            }
        )
    raise InputError(
        "not a truth (TRUTH), zbest (ZBEST/REDSHIFTS) or QuasarNET (Z_QN) catalogue", path=p
    )


def read_dla_truth(
    path: str | os.PathLike[str], config: DataConfig | None = None
) -> dict[int, list[Dla]]:
    """Truth absorbers from the ``DLA_META`` HDU of a truth file ({} when the file has none).

    Keeps rows with NHI > ``truth_nhi_min`` and (1+Z_DLA)*1215.67 > ``truth_wave_min``
    (dla.md 1.2). Files without a TRUTH HDU (zbest, QuasarNET catalogues) give {}.

    Parameters
    ----------
    path : str or os.PathLike
        Truth file (or any redshift source).
    config : DataConfig, optional
        ``truth_nhi_min`` and ``truth_wave_min``.

    Returns
    -------
    dict of int to list of Dla
        Absorbers per TARGETID.
    """
    cfg = config or DataConfig()
    p = Path(path)
    if "TRUTH" not in [name for name, _ in table_columns(p)]:
        return {}
    t = _truth(p).dlas
    if t is None:
        return {}
    out: dict[int, list[Dla]] = {}
    ids = np.asarray(t["DLAID"]).astype(str) if "DLAID" in t.colnames else None
    for k, row in enumerate(t):
        z, nhi = float(row["Z_DLA"]), float(row["NHI"])
        if nhi <= cfg.truth_nhi_min or (1.0 + z) * LYA_REST <= cfg.truth_wave_min:
            continue
        tid = int(row["TARGETID"])
        dlaid = ids[k] if ids is not None else f"{tid}{len(out.get(tid, [])):03d}"
        out.setdefault(tid, []).append(Dla(z_dla=z, nhi=nhi, dlaid=str(dlaid)))
    return out


def read_spectra_file(path: str | os.PathLike[str], **kwargs: Any) -> Spectra:
    """Read any spectra file the DLA pipeline takes, SDSS spec-lite files included.

    Spec-lite files (``spec-PLATE-MJD-FIBER.fits``) go to :func:`surveynet.io.sdss.read_speclite`,
    every other file to :func:`surveynet.io.spectra.read_spectra`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        Passed to :func:`~surveynet.io.spectra.read_spectra` (``checksum`` also to
        ``read_speclite``).

    Returns
    -------
    Spectra

    Raises
    ------
    InputError
        As the reader used.
    """
    if sniff_speclite(path):
        return read_speclite(path, checksum=kwargs.get("checksum", True))
    return read_spectra(path, **kwargs)


def read_sightlines(
    spectra_path: str | os.PathLike[str] | Spectra,
    catalog_path: str | os.PathLike[str],
    config: DataConfig | None = None,
    *,
    truth_path: str | os.PathLike[str] | None = None,
) -> list[Sightline]:
    """Read a DESI spectra/coadd file into preprocessed sightlines.

    Parameters
    ----------
    spectra_path : str, os.PathLike or Spectra
        DESI spectra or coadd file (read by EXTNAME, :func:`surveynet.io.desi.read_desi_spectra`),
        or its already-read :class:`~surveynet.io.spectra.Spectra` (several data configs, one read).
    catalog_path : str or os.PathLike
        Redshifts: a truth file, a zbest/redrock file or a QuasarNET catalogue
        (see :func:`read_qso_redshifts`). When it is a truth file with DLA_META, the truth
        absorbers are attached to the sightlines.
    config : DataConfig, optional
    truth_path : str or os.PathLike, optional
        A truth file whose DLA_META absorbers are attached (when ``catalog_path`` is a zbest
        file or a QuasarNET catalogue).

    Returns
    -------
    list of Sightline
    """
    cfg = config or DataConfig()
    spectra = spectra_path if isinstance(spectra_path, Spectra) else read_spectra_file(spectra_path)
    z = read_qso_redshifts(catalog_path, cfg)
    dlas = read_dla_truth(truth_path if truth_path is not None else catalog_path, cfg)
    return sightlines_from_spectra(spectra, z, cfg, dlas=dlas)


# ----------------------------------------------------------------------------- training sets


def select_s2n(sightlines: Sequence[Sightline], s2n_range: tuple[float, float]) -> list[Sightline]:
    """Sightlines with ``s2n_range[0] <= S/N < s2n_range[1]`` (a model's training S/N range).

    Parameters
    ----------
    sightlines : sequence of Sightline
        Candidates.
    s2n_range : tuple of float
        Lower (inclusive) and upper (exclusive) S/N.

    Returns
    -------
    list of Sightline
        In the input order.
    """
    return [sl for sl in sightlines if s2n_range[0] <= sl.s2n < s2n_range[1]]


def read_training_sightlines(
    files: Sequence[str | os.PathLike[str]],
    truth: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    data: DataConfig | None = None,
    *,
    max_sightlines: int | None = None,
) -> list[Sightline]:
    """Preprocessed sightlines of mock coadd files with their truth absorbers (DLA_META).

    Parameters
    ----------
    files : sequence of path
        Coadd files.
    truth : path or sequence of paths
        One truth file or several (e.g. the coadds of two mocks): their quasar redshifts and
        absorbers are merged by TARGETID.
    data : DataConfig, optional
        How sightlines are read (default :class:`DataConfig`).
    max_sightlines : int, optional
        Stop after this many sightlines (0: all); default ``data.max_sightlines``.

    Returns
    -------
    list of Sightline
        In file order.

    Raises
    ------
    InputError
        No truth file, or a TARGETID in more than one truth file.
    """
    cfg = data or DataConfig()
    truths = [truth] if isinstance(truth, (str, os.PathLike)) else list(truth)
    if not truths:
        raise InputError("no truth file")
    z = vstack([read_qso_redshifts(t, cfg) for t in truths])
    ids, counts = np.unique(np.asarray(z["TARGETID"]), return_counts=True)
    if np.any(counts > 1):
        raise InputError(
            f"TARGETID {int(ids[counts > 1][0])} appears in more than one truth file "
            f"({', '.join(map(str, truths))})"
        )
    dlas: dict[int, list[Any]] = {}
    for t in truths:
        dlas.update(read_dla_truth(t, cfg))
    limit = cfg.max_sightlines if max_sightlines is None else max_sightlines
    out: list[Sightline] = []
    for f in files:
        out.extend(sightlines_from_spectra(read_spectra_file(f), z, cfg, dlas=dlas))
        if limit and len(out) >= limit:
            return out[:limit]
    logger.info(
        "%d training sightlines (%d absorbers) from %d files",
        len(out),
        sum(len(s.dlas) for s in out),
        len(files),
    )
    return out


# ----------------------------------------------------------------------------- labels and windows


@dataclass
class PixelLabels:
    """Per-pixel labels of one sightline.

    Attributes
    ----------
    classification : ndarray of shape (n_pix,), int8
        1 (absorber within +-s), 0 (negative) or -1 (border, not trained).
    offset : ndarray of shape (n_pix,), float32
        ``ix_DLA - j`` for positives, 0 elsewhere.
    nhi : ndarray of shape (n_pix,), float32
        log N_HI for positives, 0 elsewhere.
    """

    classification: NDArray[np.int8]
    offset: NDArray[np.float32]
    nhi: NDArray[np.float32]


@dataclass
class WindowDataset:
    """Windows with their labels, ready for training or prediction.

    Attributes
    ----------
    flux : ndarray of shape (n, C, L), float32
        Window flux, channels first (C = 1 raw, or 4 = raw + median filters 3, 7, 15).
    labels_classifier : ndarray of shape (n,), int8
        1, 0 or -1 (border).
    labels_offset : ndarray of shape (n,), float32
    col_density : ndarray of shape (n,), float32
    targetid : ndarray of shape (n,), int64
        Sightline of each window.
    pixel : ndarray of shape (n,), int32
        Window-centre pixel in its sightline.
    """

    flux: NDArray[np.float32]
    labels_classifier: NDArray[np.int8]
    labels_offset: NDArray[np.float32]
    col_density: NDArray[np.float32]
    targetid: NDArray[np.int64]
    pixel: NDArray[np.int32]

    def __post_init__(self) -> None:
        n = len(self.flux)
        if np.ndim(self.flux) != 3:
            raise ValueError(
                f"WindowDataset.flux must be (n, C, L), got shape {np.shape(self.flux)}"
            )
        for f in fields(self)[1:]:
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"WindowDataset.{f.name} has {len(getattr(self, f.name))} rows, flux {n}"
                )

    def __len__(self) -> int:
        return len(self.flux)

    @property
    def n_channels(self) -> int:
        """Number of channels C."""
        return int(self.flux.shape[1])

    @property
    def kernel(self) -> int:
        """Window length L."""
        return int(self.flux.shape[2])

    @classmethod
    def concatenate(
        cls, parts: Sequence[WindowDataset], *, n_channels: int = 1, kernel: int = 400
    ) -> WindowDataset:
        """Concatenate datasets (an empty dataset of the given shape when ``parts`` is empty).

        Parameters
        ----------
        parts : sequence of WindowDataset
            Datasets of one window shape.
        n_channels, kernel : int
            Shape of the empty dataset returned when ``parts`` is empty.

        Returns
        -------
        WindowDataset
        """
        if not parts:
            return cls(
                flux=np.zeros((0, n_channels, kernel), np.float32),
                labels_classifier=np.zeros(0, np.int8),
                labels_offset=np.zeros(0, np.float32),
                col_density=np.zeros(0, np.float32),
                targetid=np.zeros(0, np.int64),
                pixel=np.zeros(0, np.int32),
            )
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


# ----------------------------------------------------------------------------- labels


def label_sightline(
    sightline: Sightline,
    config: DatasetConfig | None = None,
    *,
    kernel: int | None = None,
    rest_range: tuple[float, float] = (900.0, 1346.0),
) -> PixelLabels:
    """Per-pixel class/offset/N_HI labels of a sightline from its ``dlas``.

    Absorbers are labelled when ``rest_range[0] < lambda_rest < rest_range[1]`` and
    ``lambda_obs >= label_wave_min``; their pixel may lie just off the spectrum (labels are
    clipped to [0, n), the anchor's negative-start slices and IndexError are avoided).

    Parameters
    ----------
    sightline : Sightline
        The sightline with its absorbers (``dlas``).
    config : DatasetConfig, optional
        ``samplerange`` (or the ``kernel`` rule), ``border_factor``, ``lyb_border``,
        ``label_wave_min``.
    kernel : int, optional
        Window length setting the half-width when ``samplerange`` is None.
    rest_range : tuple of float
        Searched rest-frame range (A).

    Returns
    -------
    PixelLabels

    Examples
    --------
    >>> import numpy as np
    >>> from surveynet.dla.sightline import Sightline, Dla
    >>> ll = np.log10(3600.0) + 1e-4 * np.arange(3000)
    >>> dla = Dla(10 ** ll[1500] / 1215.6701 - 1, 21.0)
    >>> sl = Sightline(1, 3.0, ll, np.ones(3000), np.ones(3000), 5.0, [dla])
    >>> lab = label_sightline(sl)
    >>> lab.classification[[1500, 1561, 1621]].tolist(), float(lab.offset[1440])
    ([1, -1, 0], 60.0)
    """
    cfg = config or DatasetConfig()
    s = cfg.half_width(kernel)
    n = sightline.n_pix
    cls = np.zeros(n, np.int8)
    off = np.zeros(n, np.float32)
    nhi = np.zeros(n, np.float32)
    best = np.full(n, np.inf)
    ll = np.asarray(sightline.loglam, dtype=np.float64)
    j = np.arange(n)
    dlas = []
    for d in sightline.dlas:
        lam = d.central_wavelength
        rest = lam / (1.0 + sightline.z_qso)
        if not (rest_range[0] < rest < rest_range[1]) or lam < cfg.label_wave_min:
            continue
        dlas.append((round(fractional_pixel(ll, lam)), d))
    for ix, d in dlas:
        lo, hi = max(ix - cfg.border_factor * s, 0), min(ix + cfg.border_factor * s + 1, n)
        if lo < hi:
            cls[lo:hi] = -1
        if cfg.lyb_border:
            iy = round(fractional_pixel(ll, d.central_wavelength * LYB_REST / LYA_REST))
            lo, hi = max(iy - s, 0), min(iy + s + 1, n)
            if lo < hi:
                cls[lo:hi] = -1
    for ix, d in dlas:
        lo, hi = max(ix - s, 0), min(ix + s + 1, n)
        if lo >= hi:
            continue
        sl = slice(lo, hi)
        dist = np.abs(ix - j[sl]).astype(float)
        closer = dist < best[sl]
        cls[sl] = 1
        off[sl] = np.where(closer, ix - j[sl], off[sl])
        nhi[sl] = np.where(closer, d.nhi, nhi[sl])
        best[sl] = np.where(closer, dist, best[sl])
    return PixelLabels(classification=cls, offset=off, nhi=nhi)


def pixel_labels(sl: Sightline, spec: InputSpec) -> PixelLabels:
    """Per-pixel labels of ``sl`` (dla.md §3) with the label settings a model stores.

    Parameters
    ----------
    sl : Sightline
        The sightline with its absorbers (``sl.dlas``).
    spec : InputSpec
        The model's ``samplerange``, ``border_factor``, ``label_wave_min`` and ``rest_range``.

    Returns
    -------
    PixelLabels
        :func:`label_sightline` with those settings.
    """
    cfg = DatasetConfig(
        samplerange=spec.samplerange,
        border_factor=spec.border_factor,
        label_wave_min=spec.label_wave_min,
    )
    return label_sightline(sl, cfg, rest_range=spec.rest_range)


# ----------------------------------------------------------------------------- windows


def padded_channels(
    sightline: Sightline, kernel: int, medfilt_sizes: Sequence[int] = (), *, pad_npix: int = 50
) -> tuple[NDArray[np.float32], int]:
    """Flux channels of the whole sightline, padded by ``kernel // 2`` pixels on each side.

    Parameters
    ----------
    sightline : Sightline
        The sightline.
    kernel : int
        Window length (the padding is ``kernel // 2``).
    medfilt_sizes : sequence of int
        Sizes of the median-filtered channels.
    pad_npix : int
        The padding is the mean of the first/last ``pad_npix`` pixels.

    Returns
    -------
    channels : ndarray of shape (1 + len(medfilt_sizes), n_pix + 2 * (kernel // 2)), float32
        ``[raw, medfilt k1, medfilt k2, ...]`` (``scipy.signal.medfilt`` of the padded raw flux).
    pad : int
        Number of padded pixels on the left: sightline pixel ``j`` is column ``j + pad``.
    """
    f = np.asarray(sightline.flux, dtype=np.float64)
    f = np.where(np.isfinite(f), f, 0.0)
    pad = kernel // 2
    left = np.full(pad, f[:pad_npix].mean())
    right = np.full(pad, f[-pad_npix:].mean())
    raw = np.concatenate([left, f, right])
    chans = [raw] + [medfilt(raw, int(k)) for k in medfilt_sizes]
    return np.stack(chans).astype(np.float32), pad


def extract_windows(
    sightline: Sightline,
    pixels: NDArray[np.integer],
    kernel: int,
    medfilt_sizes: Sequence[int] = (),
    *,
    pad_npix: int = 50,
) -> NDArray[np.float32]:
    """Windows of ``kernel`` pixels centred on ``pixels``: array of shape (n, C, kernel).

    Window ``i`` covers sightline pixels ``[p - kernel//2, p - kernel//2 + kernel)``, p = pixels[i].

    Parameters
    ----------
    sightline : Sightline
        The sightline.
    pixels : ndarray of int
        Window-centre pixels.
    kernel : int
        Window length.
    medfilt_sizes : sequence of int
        Sizes of the median-filtered channels.
    pad_npix : int
        Edge padding (see :func:`padded_channels`).

    Returns
    -------
    ndarray of shape (n, C, kernel), float32
    """
    chans, pad = padded_channels(sightline, kernel, medfilt_sizes, pad_npix=pad_npix)
    px = np.asarray(pixels, dtype=np.intp)
    starts = px + pad - kernel // 2
    if chans.shape[1] < kernel:  # tiny spectrum: pad more on the right
        chans = np.pad(chans, ((0, 0), (0, kernel - chans.shape[1])), mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(chans, kernel, axis=1)  # (C, n_start, kernel)
    return np.ascontiguousarray(view[:, starts, :].transpose(1, 0, 2))


def _make(
    sightlines: Sequence[Sightline],
    kernel: int,
    medfilt_sizes: Sequence[int],
    config: DatasetConfig,
    data: DataConfig,
    balanced: bool,
    rng: np.random.Generator,
) -> WindowDataset:
    parts = []
    for sl in sightlines:
        lab = label_sightline(sl, config, kernel=kernel, rest_range=data.rest_range)
        px = search_pixels(sl, data.rest_range)
        if balanced:
            c = lab.classification[px]
            pos, neg = px[c == 1], px[c == 0]
            k = min(pos.size, neg.size)
            if k == 0:
                continue  # a DLA-free sightline contributes nothing (anchor behaviour)
            px = np.sort(
                np.concatenate(
                    [rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)]
                )
            )
        if px.size == 0:
            continue
        parts.append(
            WindowDataset(
                flux=extract_windows(sl, px, kernel, medfilt_sizes, pad_npix=config.pad_npix),
                labels_classifier=lab.classification[px],
                labels_offset=lab.offset[px],
                col_density=lab.nhi[px],
                targetid=np.full(px.size, sl.targetid, np.int64),
                pixel=px.astype(np.int32),
            )
        )
    ds = WindowDataset.concatenate(parts, n_channels=1 + len(medfilt_sizes), kernel=kernel)
    logger.info(
        "%d windows from %d sightlines (kernel %d, %d channels, balanced=%s)",
        len(ds),
        len(sightlines),
        kernel,
        1 + len(medfilt_sizes),
        balanced,
    )
    return ds


def make_datasets(
    sightlines: Sequence[Sightline],
    config: DatasetConfig | None = None,
    *,
    data: DataConfig | None = None,
    balanced: bool | None = None,
    rng: np.random.Generator | None = None,
) -> WindowDataset:
    """Single-channel windows (``config.kernel`` = 400 px) with labels.

    Parameters
    ----------
    sightlines : sequence of Sightline
    config : DatasetConfig, optional
    data : DataConfig, optional
        Supplies ``rest_range`` (window centres).
    balanced : bool, optional
        True: per sightline min(#pos, #neg) random positives and negatives, borders dropped
        (training); False: every window of the rest range (validation/prediction). Default
        ``config.balanced``.
    rng : numpy.random.Generator, optional
        Sampling randomness (default ``default_rng(config.seed)``).

    Returns
    -------
    WindowDataset
        ``flux`` of shape (n, 1, kernel).
    """
    cfg = config or DatasetConfig()
    return _make(
        sightlines,
        cfg.kernel,
        (),
        cfg,
        data or DataConfig(),
        cfg.balanced if balanced is None else balanced,
        rng or np.random.default_rng(cfg.seed),
    )


def make_smoothdatasets(
    sightlines: Sequence[Sightline],
    config: DatasetConfig | None = None,
    *,
    data: DataConfig | None = None,
    balanced: bool | None = None,
    rng: np.random.Generator | None = None,
) -> WindowDataset:
    """Smoothed 4-channel windows (``smooth_kernel`` = 600 px, channels [raw, mf3, mf7, mf15]).

    The positive half-width is ``int(0.3 * 600 / 2) = 90`` unless ``config.samplerange`` is set.
    Parameters as :func:`make_datasets`; ``flux`` has shape (n, 1 + len(medfilt_sizes), 600).

    Returns
    -------
    WindowDataset
    """
    cfg = config or DatasetConfig()
    return _make(
        sightlines,
        cfg.smooth_kernel,
        cfg.medfilt_sizes,
        cfg,
        data or DataConfig(),
        cfg.balanced if balanced is None else balanced,
        rng or np.random.default_rng(cfg.seed),
    )


# ----------------------------------------------------------------------------- storage

_LABEL_COLS = ("labels_classifier", "labels_offset", "col_density", "targetid", "pixel")


def save_dataset(
    path: str | os.PathLike[str], dataset: WindowDataset, *, overwrite: bool = False
) -> Path:
    """Write a dataset atomically as ``.npz`` (compressed, no pickle) or ``.fits``.

    FITS layout: primary HDU with a provenance header, image HDU ``FLUX`` (n, C, L) and table
    HDU ``LABELS`` with LABELS_CLASSIFIER, LABELS_OFFSET, COL_DENSITY, TARGETID, PIXEL.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` or ``.fits`` file.
    dataset : WindowDataset
        The windows.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        ``path``.
    """
    p = Path(path)
    if p.suffix == ".npz":
        with atomic_path(p, overwrite=overwrite) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, flux=dataset.flux, **{c: getattr(dataset, c) for c in _LABEL_COLS}
                )
        return p
    if p.suffix in (".fits", ".fit") or p.name.endswith(".fits.gz"):
        img = fits.ImageHDU(dataset.flux, name="FLUX")
        tab = table_hdu(Table({c.upper(): getattr(dataset, c) for c in _LABEL_COLS}), "LABELS")
        return write_hdulist(
            p,
            [fits.PrimaryHDU(header=provenance_header(pipeline="dla")), img, tab],
            overwrite=overwrite,
        )
    raise ValueError(f"{p}: dataset files must end in .npz or .fits")


def load_dataset(path: str | os.PathLike[str]) -> WindowDataset:
    """Read a dataset written by :func:`save_dataset`.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` or FITS file.

    Returns
    -------
    WindowDataset

    Raises
    ------
    InputError
        Missing array/HDU/column or unreadable file.
    """
    p = Path(path)
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in ("flux", *_LABEL_COLS) if k not in z.files]
                if missing:
                    raise InputError(f"missing array(s) {missing}", path=p)
                return WindowDataset(flux=z["flux"], **{c: z[c] for c in _LABEL_COLS})
        except (OSError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"cannot read npz ({exc})", path=p) from exc
    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
            for h in ("FLUX", "LABELS"):
                if h not in names:
                    raise InputError("missing HDU", path=p, hdu=h)
            flux = np.asarray(hdul["FLUX"].data, dtype=np.float32)
            lab = hdul["LABELS"].data
            kw = {}
            for c in _LABEL_COLS:
                if c.upper() not in lab.columns.names:
                    raise InputError("missing column", path=p, hdu="LABELS", column=c.upper())
                kw[c] = np.asarray(lab[c.upper()])
    except OSError as exc:
        raise InputError(f"cannot read FITS ({exc})", path=p) from exc
    return WindowDataset(flux=flux, **kw)
