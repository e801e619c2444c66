"""Template mode of the spectral mocks: real continua from ``../shared/data/templates``.

See simulation.md 1, 2.3.

- Quasars: real per-object PCA coefficients (``desisim_basis_lite/qso_templates_v2.0-lite.fits``:
  ``BOSS_PCA``/``BOSS_Z`` for z >= 2.1, ``SDSS_PCA``/``SDSS_Z`` below, since BOSS targeted z > 2.2
  and its few low-z fits are poor, e.g. no H-alpha; TEMPLATEID = row, + 100000 for SDSS) times the
  four SDSS eigenspectra at full resolution (``redrock_templates/rrtemplate-QSO-None-v0.1.fits``;
  the lite ``SDSS_EIGEN`` every-10th-pixel basis is used when that file is absent). The eigenspectra
  were built from observed spectra, so each reconstructed continuum carries the mean forest
  absorption of its own redshift: it is divided by F(z_abs) (the configured tau_eff fit, at the
  template's redshift) below 1215.67 A rest (:data:`surveynet.constants.LYA_ROUNDED`) before the
  parametric forest is applied, so absorption is never applied twice (``FOREST_IN_TEMPLATE`` =
  True records this). Each mock quasar takes the coefficients of one of the 20 quasars of its set
  nearest in redshift.
- Stars: Pickles (1998) library (``pickles/*.fits``), the spectral type nearest to the drawn T_eff;
  or (``star_library`` = ``redrock`` / ``mixed``) redrock archetypes
  (``redrock_templates/rrtemplate-STAR-{A,B,F,G,K,M,WD,CV}-v0.1.fits``): ``ARCHETYPE_COEFF[k] @
  BASIS_VECTORS`` rebuilds archetype ``k`` on the files' linear 0.1 A grid (3000-11000 A); only the
  archetypes drawn are rebuilt, each box-averaged to the 0.8 A master-grid step and interpolated
  like the Pickles spectra (TEMPLATEID = archetype row). CV has no archetypes: a CV is a random
  combination of its three basis vectors (:func:`cv_coefficients`, TEMPLATEID = -1).
- BAL troughs (``bal_source`` = ``templates``): the normalised absorption profiles ``TEMP`` of
  ``desisim_basis_lite/bal_templates_v3.0-lite.fits`` (rest frame, CRVAL1 + CDELT1 i A) with their
  catalogue BI_CIV and AI_CIV (:meth:`TemplateLibrary.bal_templates`); the 53 of 54 with BI_CIV
  or AI_CIV > 0 (one has both 0).
- Quasar hosts (``qso_host``): KC96 elliptical, S0, Sa and Sb templates (:data:`KC96_HOST`),
  normalised at 5100 A rest (:meth:`TemplateLibrary.host`).
- Galaxies: LRG from ``desisim_basis_lite/lrg_templates_v2.1-lite.fits``; ELG from the KC96
  starburst templates, BGS from the other KC96 templates (``kc96/*.fits``), extended flat beyond
  their coverage.

Missing folders or files raise :class:`~surveynet.errors.InputError` naming them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import LYA_ROUNDED
from surveynet.errors import InputError
from surveynet.sim import igm

QSO_LITE = "desisim_basis_lite/qso_templates_v2.0-lite.fits"
QSO_BASIS = "redrock_templates/rrtemplate-QSO-None-v0.1.fits"
LRG_LITE = "desisim_basis_lite/lrg_templates_v2.1-lite.fits"
PICKLES = "pickles"
KC96 = "kc96"
#: approximate T_eff of the Pickles spectral classes (first letter of the file name)
PICKLES_TEFF = {
    "o": 40000.0,
    "b": 20000.0,
    "a": 9000.0,
    "f": 6750.0,
    "g": 5600.0,
    "k": 4400.0,
    "m": 3300.0,
}
#: quasars below this redshift take SDSS_PCA coefficients (TEMPLATEID = SDSS_ID_OFFSET + row)
SDSS_BOSS_SPLIT_Z = 2.1
SDSS_ID_OFFSET = 100000
KC96_ELG = ("starb1", "starb2", "starb3", "starb4", "starb5", "starb6")
KC96_BGS = ("elliptical", "s0", "sa", "sb", "sc", "bulge")
#: KC96 templates used as quasar hosts (those covering 1235 to >= 9900 A rest)
KC96_HOST = ("elliptical", "s0", "sa", "sb")
#: rest-frame window (A) where host and quasar fluxes are compared (the 5100 A luminosity of
#: quasar host decompositions, e.g. Shen et al. 2011, ApJS 194, 45)
HOST_NORM_WINDOW = (5050.0, 5150.0)
#: redrock star archetype files, by subtype (simulation.md 1)
REDROCK_STAR = "redrock_templates/rrtemplate-STAR-{sub}-v0.1.fits"
#: subtypes of the redrock star templates, in the order of ``star_redrock_fractions``
REDROCK_STAR_SUBTYPES = ("A", "B", "F", "G", "K", "M", "WD", "CV")
#: BAL absorption profiles (desisim)
BAL_LITE = "desisim_basis_lite/bal_templates_v3.0-lite.fits"
#: relative scatter of the 2nd and 3rd CV basis coefficients (units of the first vector's norm;
#: design choice: the CV file has no archetypes to draw from)
CV_COEFF_SCATTER = 0.2


def _need(path: Path) -> Path:
    if not path.exists():
        kind = "folder" if not path.suffix else "file"
        raise InputError(f"template {kind} missing: {path.name} (in {path.parent})", path=path)
    return path


def _pca_table(
    h: Any, name: str, zname: str, path: Path
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        pca = h[name].data
        coeff = np.stack([np.asarray(pca[c], dtype=np.float64) for c in pca.columns.names], axis=1)
        z = np.asarray(h[zname].data, dtype=np.float64)
    except KeyError as exc:
        raise InputError(f"missing HDU {exc}", path=path, hdu=name) from None
    return coeff, z


@lru_cache(maxsize=4)
def _load_qso(root: str) -> dict[str, Any]:
    from astropy.io import fits

    lite = _need(Path(root) / QSO_LITE)
    with fits.open(lite) as h:
        boss = _pca_table(h, "BOSS_PCA", "BOSS_Z", lite)
        sdss = _pca_table(h, "SDSS_PCA", "SDSS_Z", lite)
        lite_basis = np.asarray(h["SDSS_EIGEN"].data, dtype=np.float64)
        lite_wave = np.asarray(h["SDSS_EIGEN_WAVE"].data, dtype=np.float64)
    full = Path(root) / QSO_BASIS
    if full.exists():
        with fits.open(full) as h:
            hdu = h["BASIS_VECTORS"] if "BASIS_VECTORS" in h else h[0]
            basis = np.asarray(hdu.data, dtype=np.float64)
            c0, dc = float(hdu.header["CRVAL1"]), float(hdu.header["CDELT1"])
            wave = 10.0 ** (c0 + dc * np.arange(basis.shape[1]))
        name = QSO_BASIS
    else:
        basis, wave, name = lite_basis, lite_wave, QSO_LITE + "[SDSS_EIGEN]"
    return {"BOSS": boss, "SDSS": sdss, "basis": basis, "wave": wave, "name": name}


@lru_cache(maxsize=4)
def _load_spectra_table(path: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from astropy.io import fits

    with fits.open(_need(Path(path))) as h:
        d = h[1].data
        return np.asarray(d["WAVELENGTH"], dtype=np.float64), np.asarray(
            d["FLUX"], dtype=np.float64
        )


@lru_cache(maxsize=2)
def _load_lrg(root: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from astropy.io import fits

    with fits.open(_need(Path(root) / LRG_LITE)) as h:
        return np.asarray(h["WAVE"].data, dtype=np.float64), np.asarray(h[0].data, dtype=np.float64)


@lru_cache(maxsize=8)
def _load_redrock_star(
    path: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    """Wavelengths, basis vectors and archetype coefficients (None: no archetypes) of one file."""
    from astropy.io import fits

    p = _need(Path(path))
    with fits.open(p) as h:
        if "BASIS_VECTORS" not in h:
            raise InputError("missing HDU", path=p, hdu="BASIS_VECTORS")
        hb = h["BASIS_VECTORS"]
        basis = np.asarray(hb.data, dtype=np.float64)
        try:
            c0, dc = float(hb.header["CRVAL1"]), float(hb.header["CDELT1"])
        except KeyError as exc:
            raise InputError(f"missing header keyword {exc}", path=p, hdu="BASIS_VECTORS") from None
        wave = np.asarray(c0 + dc * np.arange(basis.shape[1]), dtype=np.float64)
        if hb.header.get("LOGLAM"):
            wave = np.asarray(10.0**wave, dtype=np.float64)
        coeff = (
            np.asarray(h["ARCHETYPE_COEFF"].data, dtype=np.float64)
            if "ARCHETYPE_COEFF" in h
            else None
        )
    if coeff is not None and coeff.shape[1] != basis.shape[0]:
        raise InputError(
            f"ARCHETYPE_COEFF has {coeff.shape[1]} columns for {basis.shape[0]} basis vectors",
            path=p,
            hdu="ARCHETYPE_COEFF",
        )
    return wave, basis, coeff


@lru_cache(maxsize=2)
def _load_bal(root: str) -> BalTemplates:
    from astropy.io import fits

    p = _need(Path(root) / BAL_LITE)
    with fits.open(p) as h:
        if "METADATA" not in h:
            raise InputError("missing HDU", path=p, hdu="METADATA")
        hd = h["METADATA"]
        cols: dict[str, NDArray[np.float64]] = {}
        for name in ("TEMP", "BI_CIV", "AI_CIV"):
            if name not in hd.columns.names:
                raise InputError("missing column", path=p, hdu="METADATA", column=name)
            cols[name] = np.asarray(hd.data[name], dtype=np.float64)
        try:
            c0, dc = float(hd.header["CRVAL1"]), float(hd.header["CDELT1"])
        except KeyError as exc:
            raise InputError(f"missing header keyword {exc}", path=p, hdu="METADATA") from None
    # a template with neither BI_CIV nor AI_CIV > 0 has no catalogued CIV trough: not used
    keep = (cols["BI_CIV"] > 0) | (cols["AI_CIV"] > 0)
    if not keep.any():
        raise InputError("no template with BI_CIV or AI_CIV > 0", path=p, hdu="METADATA")
    trans = np.clip(cols["TEMP"][keep], 0.0, 1.0)
    return BalTemplates(
        wave=np.asarray(c0 + dc * np.arange(trans.shape[1]), dtype=np.float64),
        transmission=trans,
        bi_civ=cols["BI_CIV"][keep],
        ai_civ=cols["AI_CIV"][keep],
    )


def cv_coefficients(rng: np.random.Generator, basis: NDArray[np.float64]) -> NDArray[np.float64]:
    """Random coefficients of a CV spectrum on the redrock CV basis (which has no archetypes).

    The first basis vector (the mean CV, positive) gets coefficient 1 (sign-matched to its median);
    the others N(0, :data:`CV_COEFF_SCATTER`) times the ratio of the first vector's norm to theirs,
    redrawn (up to 20 times) until under 1 % of the rebuilt pixels are negative. Design choice.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    basis : ndarray of shape (n_vec, n_wave)
        Basis vectors.

    Returns
    -------
    ndarray of shape (n_vec,)

    Examples
    --------
    >>> b = np.vstack([np.ones(10), np.linspace(-1, 1, 10)])
    >>> c = cv_coefficients(np.random.default_rng(0), b)
    >>> float(c[0]), bool(np.all(c @ b > 0))
    (1.0, True)
    """
    norm = np.sqrt(np.sum(basis**2, axis=1))
    c = np.zeros(basis.shape[0])
    c[0] = 1.0 if np.median(basis[0]) >= 0 else -1.0
    best = c.copy()
    for _ in range(20):
        c[1:] = CV_COEFF_SCATTER * rng.standard_normal(basis.shape[0] - 1) * norm[0] / norm[1:]
        if np.mean(c @ basis < 0) < 0.01:
            return c
    return best


def box_average(flux: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Running mean of ``width`` pixels (same length; edges averaged over what exists).

    Parameters
    ----------
    flux : ndarray of shape (n,)
        Spectrum on a linear grid.
    width : int
        Box width in pixels (1: unchanged).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> box_average(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3).tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    if width <= 1:
        return np.asarray(flux, dtype=np.float64)
    k = np.ones(width)
    num = np.convolve(flux, k, mode="same")
    den = np.convolve(np.ones(flux.size), k, mode="same")
    return np.asarray(num / den, dtype=np.float64)


@dataclass(frozen=True)
class BalTemplates:
    """The desisim BAL absorption profiles.

    Attributes
    ----------
    wave : ndarray of shape (n_wave,)
        Rest-frame wavelengths (A).
    transmission : ndarray of shape (n_template, n_wave)
        Normalised transmission (``TEMP``, clipped to [0, 1]).
    bi_civ, ai_civ : ndarray of shape (n_template,)
        Catalogue balnicity and absorption indices of CIV (km/s).
    """

    wave: NDArray[np.float64]
    transmission: NDArray[np.float64]
    bi_civ: NDArray[np.float64]
    ai_civ: NDArray[np.float64]


@dataclass
class TemplateLibrary:
    """Lazy access to the template folder (files are read on first use and cached)."""

    root: Path
    forest_fit: str = "becker13"
    _pickles: list[Path] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike[str], forest_fit: str = "becker13") -> TemplateLibrary:
        """Open a template folder after checking the files every class needs.

        Parameters
        ----------
        path : str or os.PathLike
            Template folder (e.g. ``../shared/data/templates``).
        forest_fit : str
            tau_eff fit used to divide out the quasar templates' own mean forest.

        Returns
        -------
        TemplateLibrary

        Raises
        ------
        InputError
            A missing folder or file (named).
        """
        root = Path(path)
        if not root.is_dir():
            raise InputError(f"template folder not found: {root}", path=root)
        _need(root / QSO_LITE)
        pick = sorted(_need(root / PICKLES).glob("*.fits"))
        if not pick:
            raise InputError(f"no Pickles *.fits in {root / PICKLES}", path=root / PICKLES)
        _need(root / KC96)
        _need(root / LRG_LITE)
        return cls(root=root, forest_fit=forest_fit, _pickles=pick)

    # ------------------------------------------------------------------------ quasars
    def qso(
        self, rng: np.random.Generator, z: NDArray[np.float64], wave: NDArray[np.float64]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64], bool]:
        """Continua of real BOSS/SDSS quasars on ``wave`` (observed), mean forest divided out.

        Parameters
        ----------
        rng : numpy.random.Generator
            The batch generator.
        z : ndarray of shape (n,)
            Redshifts.
        wave : ndarray
            Observed wavelengths (A).

        Returns
        -------
        flux : ndarray of shape (n, wave.size), float32
        ids : ndarray of int64, shape (n,)
            TEMPLATEID (+ 100000 for SDSS).
        forest_in_template : bool
            True: the templates' own forest was divided out.
        """
        q = _load_qso(str(self.root))
        basis, bwave = q["basis"], q["wave"]
        out = np.zeros((z.size, wave.size), dtype=np.float32)
        ids = np.zeros(z.size, dtype=np.int64)
        for i, zi in enumerate(z):
            # BOSS targeted z > 2.2 (its few low-z PCA fits are poor): SDSS coefficients below 2.1
            setname, offset = ("BOSS", 0) if zi >= SDSS_BOSS_SPLIT_Z else ("SDSS", SDSS_ID_OFFSET)
            coeff, zt = q[setname]
            order = np.argsort(zt, kind="stable")
            zs = zt[order]
            j = int(np.searchsorted(zs, zi))
            lo, hi = max(min(j, zs.size - 1) - 10, 0), min(max(j, 1) + 10, zs.size)
            k = int(order[rng.integers(lo, hi)])
            ids[i] = offset + k
            spec = coeff[k] @ basis
            absorbed = bwave < LYA_ROUNDED
            z_abs = bwave[absorbed] * (1.0 + zt[k]) / LYA_ROUNDED - 1.0
            spec[absorbed] /= igm.mean_transmission(np.maximum(z_abs, 0.0), self.forest_fit)
            out[i] = np.maximum(np.interp(wave / (1.0 + zi), bwave, spec, left=0.0, right=0.0), 0.0)
        return out, ids, True

    # -------------------------------------------------------------------------- stars
    def star(
        self,
        rng: np.random.Generator,
        teff: NDArray[np.float64],
        z: NDArray[np.float64],
        wave: NDArray[np.float64],
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Pickles spectra of the class nearest in T_eff, Doppler shifted by ``z``.

        Parameters
        ----------
        rng : numpy.random.Generator
            The batch generator (ties between classes).
        teff, z : ndarray of shape (n,)
            Effective temperatures (K) and redshifts.
        wave : ndarray
            Observed wavelengths (A).

        Returns
        -------
        flux : ndarray of shape (n, wave.size), float32
        ids : ndarray of int64, shape (n,)
        """
        cls_teff = np.array([PICKLES_TEFF.get(p.name[0].lower(), 5600.0) for p in self._pickles])
        out = np.zeros((teff.size, wave.size), dtype=np.float32)
        ids = np.zeros(teff.size, dtype=np.int64)
        for i, t in enumerate(teff):
            d = np.abs(np.log(cls_teff / t))
            cand = np.nonzero(d <= d.min() + 1e-9)[0]
            k = int(cand[rng.integers(0, cand.size)])
            w, f = _load_spectra_table(str(self._pickles[k]))
            out[i] = np.interp(wave / (1.0 + z[i]), w, f)
            ids[i] = k
        return out, ids

    def require(self, *, star_library: str, bal_source: str, qso_host: bool) -> None:
        """Check that the files the widened template options need exist.

        Parameters
        ----------
        star_library : {"pickles", "redrock", "mixed"}
            Star source (``redrock``/``mixed`` need the eight redrock star files).
        bal_source : {"parametric", "templates", "random"}
            BAL source (``templates`` needs :data:`BAL_LITE`).
        qso_host : bool
            Host light (needs the :data:`KC96_HOST` files).

        Raises
        ------
        InputError
            A missing file (named).
        """
        if star_library in ("redrock", "mixed"):
            for sub in REDROCK_STAR_SUBTYPES:
                _need(self.root / REDROCK_STAR.format(sub=sub))
        if bal_source == "templates":
            _need(self.root / BAL_LITE)
        if qso_host:
            for name in KC96_HOST:
                _need(self.root / KC96 / f"{name}.fits")

    def redrock_star(
        self,
        rng: np.random.Generator,
        sub: NDArray[np.str_],
        z: NDArray[np.float64],
        wave: NDArray[np.float64],
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Redrock archetype stars of the given subtypes, Doppler shifted by ``z``.

        One archetype of the subtype's file is drawn per star and rebuilt (``ARCHETYPE_COEFF[k] @
        BASIS_VECTORS``, negative pixels set to 0), box-averaged to the master-grid step
        (:data:`surveynet.sim.instrument.DWAVE`) and interpolated onto ``wave / (1 + z)``; CVs
        are random basis combinations (:func:`cv_coefficients`).

        Parameters
        ----------
        rng : numpy.random.Generator
            The batch generator.
        sub : ndarray of str, shape (n,)
            Subtypes, each one of :data:`REDROCK_STAR_SUBTYPES`.
        z : ndarray of shape (n,)
            Redshifts (radial velocity / c).
        wave : ndarray
            Observed wavelengths (A).

        Returns
        -------
        flux : ndarray of shape (n, wave.size), float32
        ids : ndarray of int64, shape (n,)
            Archetype row (-1 for CVs).

        Raises
        ------
        InputError
            A missing or malformed file (named).
        """
        from surveynet.sim.instrument import DWAVE

        out = np.zeros((sub.size, wave.size), dtype=np.float32)
        ids = np.full(sub.size, -1, dtype=np.int64)
        for i, (s, zi) in enumerate(zip(sub, z, strict=True)):
            if s not in REDROCK_STAR_SUBTYPES:
                raise ValueError(f"sub: unknown redrock star subtype {s!r}")
            w, basis, coeff = _load_redrock_star(str(self.root / REDROCK_STAR.format(sub=s)))
            if coeff is not None:
                k = int(rng.integers(0, coeff.shape[0]))
                c = coeff[k]
                ids[i] = k
            else:
                c = cv_coefficients(rng, basis)
            spec = np.maximum(c @ basis, 0.0)
            spec = box_average(spec, round(DWAVE / float(w[1] - w[0])))
            out[i] = np.interp(wave / (1.0 + zi), w, spec)
        return out, ids

    def bal_templates(self) -> BalTemplates:
        """The BAL absorption profiles of :data:`BAL_LITE` (read once, cached).

        Returns
        -------
        BalTemplates

        Raises
        ------
        InputError
            Missing file, HDU, column or header keyword (named).
        """
        return _load_bal(str(self.root))

    def host(
        self, rng: np.random.Generator, z: NDArray[np.float64], wave: NDArray[np.float64]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Host-galaxy spectra (:data:`KC96_HOST`) at redshift ``z``, 1 at 5100 A rest.

        Parameters
        ----------
        rng : numpy.random.Generator
            The batch generator.
        z : ndarray of shape (n,)
            Redshifts.
        wave : ndarray
            Observed wavelengths (A).

        Returns
        -------
        flux : ndarray of shape (n, wave.size), float32
            f_lambda with mean 1 over :data:`HOST_NORM_WINDOW` (rest).
        ids : ndarray of int64, shape (n,)
            Index in :data:`KC96_HOST`.
        """
        out = np.zeros((z.size, wave.size), dtype=np.float32)
        ids = np.zeros(z.size, dtype=np.int64)
        for i, zi in enumerate(z):
            k = int(rng.integers(0, len(KC96_HOST)))
            w, f = _load_spectra_table(str(self.root / KC96 / f"{KC96_HOST[k]}.fits"))
            win = (w >= HOST_NORM_WINDOW[0]) & (w <= HOST_NORM_WINDOW[1])
            norm = float(np.mean(f[win])) if win.any() else float(np.interp(5100.0, w, f))
            out[i] = np.maximum(np.interp(wave / (1.0 + zi), w, f, right=0.0), 0.0) / norm
            ids[i] = k
        return out, ids

    # ------------------------------------------------------------------------ galaxies
    def galaxy(
        self,
        rng: np.random.Generator,
        sub: NDArray[np.str_],
        z: NDArray[np.float64],
        wave: NDArray[np.float64],
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """LRG lite templates for LRG, KC96 starbursts for ELG, other KC96 types for BGS.

        Parameters
        ----------
        rng : numpy.random.Generator
            The batch generator.
        sub : ndarray of str, shape (n,)
            Subtypes (ELG, LRG, BGS).
        z : ndarray of shape (n,)
            Redshifts.
        wave : ndarray
            Observed wavelengths (A).

        Returns
        -------
        flux : ndarray of shape (n, wave.size), float32
        ids : ndarray of int64, shape (n,)
        """
        out = np.zeros((sub.size, wave.size), dtype=np.float32)
        ids = np.zeros(sub.size, dtype=np.int64)
        for i, (s, zi) in enumerate(zip(sub, z, strict=True)):
            if s == "LRG":
                w, flux = _load_lrg(str(self.root))
                k = int(rng.integers(0, flux.shape[0]))
                f = flux[k]
            else:
                names = KC96_ELG if s == "ELG" else KC96_BGS
                k = int(rng.integers(0, len(names)))
                w, f = _load_spectra_table(str(self.root / KC96 / f"{names[k]}.fits"))
            out[i] = np.maximum(np.interp(wave / (1.0 + zi), w, f), 0.0)
            ids[i] = k
        return out, ids
