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
- Stars: Pickles (1998) library (``pickles/*.fits``), the spectral type nearest to the drawn T_eff.
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
