"""Quasar sightlines for the DLA finder: selection, normalisation, S/N, constant-velocity rebinning.

Steps (dla.md section 1), applied by :func:`sightlines_from_spectra`:

1. keep quasars with ``z_qso >= data.z_qso_min``;
2. merge the cameras on one native grid (overlap: per pixel the value with the smaller error);
3. divide flux **and** error by the median flux at rest ``data.norm_range`` (1420-1480 A);
4. S/N = median(flux / error) over the same rest window, native pixels; keep S/N >= ``s2n_min``;
5. keep one camera (``data.camera``, "b" as the mock pipeline) or all of them ("all");
6. rebin to constant velocity (``data.velocity_ms``) with exact overlap weights, propagating the
   **variance** (the anchor rebins sigma like a flux and then rescales it "crudely").

Errors are stored as sigma; pixels without data carry ``error = inf`` (``ivar = 0``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.dla.config import C_MS, LYA_REST, DataConfig
from surveynet.errors import InputError
from surveynet.io.spectra import Spectra
from surveynet.sim.instrument import pixel_edges

logger = logging.getLogger(__name__)

__all__ = [
    "Dla",
    "Sightline",
    "estimate_s2n",
    "merge_cameras",
    "read_dla_truth",
    "read_qso_redshifts",
    "read_sightlines",
    "rebin",
    "sightlines_from_spectra",
]


@dataclass(frozen=True)
class Dla:
    """One HI absorber attached to a sightline (truth or injected).

    Attributes
    ----------
    z_dla : float
        Absorber redshift.
    nhi : float
        log10 column density (cm^-2).
    dlaid : str
        Identifier (``DLAID`` of DLA_META, or ``TARGETID`` + 3-digit index).
    """

    z_dla: float
    nhi: float
    dlaid: str = ""

    @property
    def central_wavelength(self) -> float:
        """Observed Lyman-alpha wavelength (A) = (1 + z_dla) * 1215.6701."""
        return (1.0 + self.z_dla) * LYA_REST


@dataclass
class Sightline:
    """A normalised, rebinned quasar spectrum ready for windowing.

    Attributes
    ----------
    targetid : int
        DESI TARGETID (or any integer id).
    z_qso : float
        Quasar redshift.
    loglam : ndarray of shape (n_pix,)
        log10 observed wavelength (A), constant step after rebinning.
    flux : ndarray of shape (n_pix,)
        Flux divided by the median flux at rest 1420-1480 A (float64).
    error : ndarray of shape (n_pix,)
        1-sigma error of ``flux`` (same normalisation); ``inf`` where there is no data.
    s2n : float
        Median flux/error at rest 1420-1480 A (native pixels, before the camera cut and rebin).
    dlas : list of Dla
        Absorbers known in this sightline (truth or injected).
    ra, dec : float
        TARGET_RA, TARGET_DEC in degrees (NaN when unknown).
    camera : str
        "b", "r", "z" or "all".
    """

    targetid: int
    z_qso: float
    loglam: NDArray[np.float64]
    flux: NDArray[np.float64]
    error: NDArray[np.float64]
    s2n: float
    dlas: list[Dla] = field(default_factory=list)
    ra: float = float("nan")
    dec: float = float("nan")
    camera: str = "b"

    def __post_init__(self) -> None:
        n = np.shape(self.loglam)
        if np.shape(self.flux) != n or np.shape(self.error) != n:
            raise ValueError(
                f"Sightline {self.targetid}: loglam/flux/error shapes differ "
                f"({n}, {np.shape(self.flux)}, {np.shape(self.error)})"
            )

    @property
    def n_pix(self) -> int:
        """Number of pixels."""
        return int(np.size(self.loglam))

    @property
    def wave(self) -> NDArray[np.float64]:
        """Observed wavelength (A)."""
        return np.asarray(10.0 ** np.asarray(self.loglam, dtype=np.float64))

    @property
    def rest_wave(self) -> NDArray[np.float64]:
        """Rest-frame wavelength (A) of the quasar."""
        return self.wave / (1.0 + self.z_qso)

    @property
    def ivar(self) -> NDArray[np.float64]:
        """Inverse variance (0 where the error is infinite)."""
        e = np.asarray(self.error, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(np.isfinite(e) & (e > 0), 1.0 / np.where(e > 0, e, 1.0) ** 2, 0.0)

    def pixel_of(self, wavelength: float) -> int:
        """Index of the pixel nearest to an observed ``wavelength`` (A), clipped to [0, n_pix)."""
        ix = int(np.argmin(np.abs(self.loglam - np.log10(wavelength))))
        return ix

    def copy(self) -> Sightline:
        """Deep copy (arrays and the absorber list)."""
        return replace(
            self,
            loglam=self.loglam.copy(),
            flux=self.flux.copy(),
            error=self.error.copy(),
            dlas=list(self.dlas),
        )


# ----------------------------------------------------------------------------- numerics


def rebin(
    wave: NDArray[np.float64],
    flux: NDArray[np.float64],
    error: NDArray[np.float64],
    velocity_ms: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Rebin a spectrum onto a constant-velocity grid, propagating the variance.

    The new grid is ``lambda_k = lambda_0 exp(k dlnl)`` with ``dlnl = ln(1 + v/c)`` starting at the
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
    if velocity_ms <= 0:
        raise ValueError(f"rebin: velocity_ms must be > 0, got {velocity_ms}")
    dlnl = np.log1p(velocity_ms / C_MS)
    old_e = pixel_edges(w)
    n_new = int(np.floor(np.log(w[-1] / w[0]) / dlnl)) + 1
    new_w = w[0] * np.exp(dlnl * np.arange(n_new))
    new_e = new_w * np.exp(np.array([-0.5, 0.5])[:, None] * dlnl)  # (2, m) lower/upper edges
    keep = (new_e[0] >= old_e[0]) & (new_e[1] <= old_e[-1])
    new_w = new_w[keep]
    lo, hi = new_e[0][keep], new_e[1][keep]
    if new_w.size == 0:
        return new_w, new_w.copy(), new_w.copy()
    edges_new = np.concatenate([lo, hi[-1:]])
    pts = np.union1d(old_e[(old_e >= edges_new[0]) & (old_e <= edges_new[-1])], edges_new)
    seg = np.diff(pts)
    mid = 0.5 * (pts[1:] + pts[:-1])
    iold = np.clip(np.searchsorted(old_e, mid) - 1, 0, w.size - 1)
    inew = np.clip(np.searchsorted(edges_new, mid) - 1, 0, new_w.size - 1)
    good = np.isfinite(e[iold]) & (e[iold] > 0) & np.isfinite(f[iold])
    wgt = np.where(good, seg, 0.0)
    m = new_w.size
    wsum = np.bincount(inew, wgt, minlength=m)
    fsum = np.bincount(inew, wgt * np.where(good, f[iold], 0.0), minlength=m)
    vsum = np.bincount(inew, wgt**2 * np.where(good, e[iold], 0.0) ** 2, minlength=m)
    ok = wsum > 0
    fn = np.zeros(m)
    en = np.full(m, np.inf)
    fn[ok] = fsum[ok] / wsum[ok]
    en[ok] = np.sqrt(vsum[ok]) / wsum[ok]
    if ok.any() and not ok.all():
        fn[~ok] = np.interp(new_w[~ok], new_w[ok], fn[ok])
    return new_w, fn, en


def estimate_s2n(
    wave: NDArray[np.float64],
    flux: NDArray[np.float64],
    error: NDArray[np.float64],
    z_qso: float,
    rest_range: tuple[float, float] = (1420.0, 1480.0),
) -> float:
    """S/N = median(flux / error) over rest ``rest_range`` on valid pixels (0.0 if none).

    This is the desi-dlas ``estimate_s2n`` and the DESI DR1 VAC ``S2N`` definition.
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

    Returns
    -------
    wave, flux, error : ndarray of shape (n_pix,)
    """
    bands = list(spectra.bands if bands is None else bands)
    waves, fluxes, errors = [], [], []
    for b in bands:
        w = np.asarray(spectra.wave[b], dtype=np.float64)
        f = np.asarray(spectra.flux[b][index], dtype=np.float64)
        iv = np.asarray(spectra.ivar[b][index], dtype=np.float64)
        bad = ~np.isfinite(f) | ~np.isfinite(iv) | (iv <= 0)
        if spectra.mask is not None and b in spectra.mask:
            bad |= np.asarray(spectra.mask[b][index]) != 0
        with np.errstate(divide="ignore"):
            e = np.where(bad, np.inf, 1.0 / np.sqrt(np.where(bad, 1.0, iv)))
        waves.append(w)
        fluxes.append(np.where(bad, 0.0, f))
        errors.append(e)
    order = np.argsort([w[0] for w in waves])
    waves = [waves[i] for i in order]
    fluxes = [fluxes[i] for i in order]
    errors = [errors[i] for i in order]
    W, F, E = waves[0], fluxes[0], errors[0]
    for w, f, e in zip(waves[1:], fluxes[1:], errors[1:], strict=True):
        if w[0] > W[-1]:
            W, F, E = np.concatenate([W, w]), np.concatenate([F, f]), np.concatenate([E, e])
            continue
        step = float(np.median(np.diff(w)))
        j = np.searchsorted(W, w, side="left").clip(0, W.size - 1)
        jm = (j - 1).clip(0)
        jn = np.where(np.abs(W[jm] - w) < np.abs(W[j] - w), jm, j)
        same = np.abs(W[jn] - w) < 1e-3 * step
        inside = w <= W[-1]
        if np.all(same[inside]):
            tgt = jn[inside]
            better = e[inside] < E[tgt]
            F, E = F.copy(), E.copy()
            F[tgt[better]] = f[inside][better]
            E[tgt[better]] = e[inside][better]
            W = np.concatenate([W, w[~inside]])
            F = np.concatenate([F, f[~inside]])
            E = np.concatenate([E, e[~inside]])
        else:
            cut = 0.5 * (w[0] + W[-1])
            k = W < cut
            m = w >= cut
            W, F, E = (
                np.concatenate([W[k], w[m]]),
                np.concatenate([F[k], f[m]]),
                np.concatenate([E[k], e[m]]),
            )
    return W, F, E


# ----------------------------------------------------------------------------- building


def _camera_range(spectra: Spectra, camera: str) -> tuple[float, float]:
    if camera == "all":
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
    for i, tid in enumerate(spectra.targetid):
        tid = int(tid)
        if tid not in zmap or not np.isfinite(zmap[tid]) or zmap[tid] < cfg.z_qso_min:
            n_z += 1
            continue
        z = zmap[tid]
        w, f, e = merge_cameras(spectra, i)
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
        sel = (w >= wmin) & (w <= wmax)
        w, f, e = w[sel], f[sel], e[sel]
        if cfg.velocity_ms > 0:
            w, f, e = rebin(w, f, e, cfg.velocity_ms)
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

    Returns
    -------
    Table
        Columns TARGETID (int64) and Z_QSO (float64), quasars only.

    Raises
    ------
    InputError
        Unreadable file or none of the layouts above.
    """
    from astropy.io import fits

    from surveynet.io.truth import read_truth, read_zbest

    cfg = config or DataConfig()
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
            qn = [
                h.name
                for h in hdul[1:]
                if isinstance(h, fits.BinTableHDU) and "Z_QN" in h.columns.names
            ]
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read FITS file ({exc})", path=p) from exc

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
        return _select(read_truth(p).targets, "Z", "OBJTYPE", ("IS_BAL", "BI_CIV"), "TRUTH")
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
    """
    from astropy.io import fits

    from surveynet.io.truth import read_truth

    cfg = config or DataConfig()
    p = Path(path)
    with fits.open(p, memmap=False) as hdul:
        if "TRUTH" not in [h.name for h in hdul]:
            return {}
    t = read_truth(p).dlas
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
    from surveynet.io.spectra import read_spectra

    cfg = config or DataConfig()
    spectra = spectra_path if isinstance(spectra_path, Spectra) else read_spectra(spectra_path)
    z = read_qso_redshifts(catalog_path, cfg)
    dlas = read_dla_truth(truth_path if truth_path is not None else catalog_path, cfg)
    return sightlines_from_spectra(spectra, z, cfg, dlas=dlas)


def sightline_arrays(sightline: Sightline) -> dict[str, Any]:
    """Plain dict of a sightline (for npz/JSON export): arrays and scalars, no objects."""
    return {
        "TARGETID": sightline.targetid,
        "Z_QSO": sightline.z_qso,
        "S2N": sightline.s2n,
        "LOGLAM": sightline.loglam,
        "FLUX": sightline.flux,
        "ERROR": sightline.error,
        "Z_DLA": np.array([d.z_dla for d in sightline.dlas]),
        "NHI": np.array([d.nhi for d in sightline.dlas]),
    }
