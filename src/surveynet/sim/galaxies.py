"""Galaxy models on the master grid: two-population continua with nebular lines, or templates."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import C_KMS
from surveynet.sim.config import SpectraSimConfig
from surveynet.sim.grid import add_rest_lines, master_grid
from surveynet.sim.instrument import N_MASTER

__all__ = ["GALAXY_SUBTYPES", "make_galaxies"]

#: Galaxy subtypes, in the order of ``galaxy_subtype_fractions``.
GALAXY_SUBTYPES = ("ELG", "LRG", "BGS")
_GAL_Z = {"ELG": (0.6, 1.6), "LRG": (0.3, 1.1), "BGS": (0.01, 0.4)}
_GAL_D4000 = {"ELG": (1.1, 1.4), "LRG": (1.7, 2.2), "BGS": (1.2, 2.0)}
_GAL_YOUNG = {"ELG": (0.6, 1.0), "LRG": (0.0, 0.1), "BGS": (0.1, 0.7)}
_GAL_HA_EW = {"ELG": (30.0, 150.0), "LRG": (0.0, 3.0), "BGS": (2.0, 40.0)}


def make_galaxies(
    rng: np.random.Generator, n: int, cfg: SpectraSimConfig, templates: Any
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Noise-free galaxy models on the master grid (simulator units) and their truth.

    Subtypes ELG/LRG/BGS in ``galaxy_subtype_fractions`` with their redshift, D4000, young-share
    and H-alpha EW ranges; nebular lines ([OII], H-beta, [OIII], [NII], H-alpha, [SII]) broadened
    by a velocity dispersion in ``galaxy_sigma_v_range``. Parametric mode: a young power law plus
    an old population with a 4000 A break; template mode: LRG/KC96 templates (which carry their
    own lines).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    n : int
        Number of galaxies.
    cfg : SpectraSimConfig
        ``galaxy_*`` fields.
    templates : TemplateLibrary or None
        Template mode when given.

    Returns
    -------
    model : ndarray of shape (n, 7781), float32
    info : dict
        ``Z``, ``SUBTYPE``, ``D4000``, ``TEMPLATEID`` arrays.
    """
    grid = master_grid()
    fr = np.asarray(cfg.galaxy_subtype_fractions, dtype=np.float64)
    sub = (
        np.array(GALAXY_SUBTYPES)[rng.choice(3, size=n, p=fr / fr.sum())]
        if n
        else np.array([], "<U3")
    )
    z = np.empty(n)
    d4000 = np.empty(n)
    young = np.empty(n)
    ha = np.empty(n)
    for s in GALAXY_SUBTYPES:
        m = sub == s
        k = int(m.sum())
        z[m] = rng.uniform(*_GAL_Z[s], k)
        d4000[m] = rng.uniform(*_GAL_D4000[s], k)
        young[m] = rng.uniform(*_GAL_YOUNG[s], k)
        ha[m] = rng.uniform(*_GAL_HA_EW[s], k)
    sigv = rng.uniform(*cfg.galaxy_sigma_v_range, n)
    oiii_hb = rng.uniform(0.5, 3.0, n)
    nii_ha = rng.uniform(0.1, 0.4, n)
    oii_hb = rng.uniform(1.5, 4.0, n)
    if templates is not None:
        cont, tmpl = templates.galaxy(rng, sub, z, grid.wave)
    else:
        tmpl = np.full(n, -1, dtype=np.int64)
        lam_rest = grid.wave32[None, :] / (1.0 + z).astype(np.float32)[:, None]
        step = np.float32(0.5) * (
            np.float32(1.0) + np.tanh((lam_rest - np.float32(4000.0)) / np.float32(30.0))
        )
        dprime = (d4000 / 1.162).astype(np.float32)[:, None]  # f_lambda step giving D4000 in f_nu
        old = np.float32(1.0) / dprime + (np.float32(1.0) - np.float32(1.0) / dprime) * step
        yng = (lam_rest / np.float32(5500.0)) ** np.float32(-2.0)
        y = young.astype(np.float32)[:, None]
        cont = (np.float32(1.0) - y) * old + y * yng
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    hb = ha / 2.86
    oiii = hb * oiii_hb
    nii = ha * nii_ha
    oii = hb * oii_hb
    lines = (
        (3727.09, oii * 0.43),
        (3729.88, oii * 0.57),
        (4862.68, hb),
        (4960.30, oiii / 2.98),
        (5008.24, oiii),
        (6549.86, nii / 2.95),
        (6564.61, ha),
        (6585.27, nii),
        (6718.29, ha * 0.15),
        (6732.67, ha * 0.11),
    )
    for lam, ew in lines:
        sig = lam * sigv / C_KMS
        add_rest_lines(prof, rows, lam, z, sig, ew)
    if templates is not None:  # template spectra carry their own lines
        return np.asarray(cont, dtype=np.float32), {
            "Z": z,
            "SUBTYPE": sub,
            "D4000": np.full(n, np.nan),
            "TEMPLATEID": tmpl,
        }
    model = cont * (np.float32(1.0) + prof[:, :N_MASTER])
    return model, {"Z": z, "SUBTYPE": sub, "D4000": d4000, "TEMPLATEID": tmpl}
