"""From noise-free models to observed spectra: magnitudes, exposure, LSF, noise, masks, BAD modes.

The models of a batch are scaled to their drawn r magnitudes by synthetic photometry
(:func:`normalise_to_magnitudes`); :func:`observe` then draws exposure factors, dead fibres and
the BAD-spectrum corruptions and, per arm, applies the LSF, the variance model of
:mod:`surveynet.sim.instrument`, Gaussian noise and the pixel masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.sim import instrument
from surveynet.sim.config import SpectraSimConfig
from surveynet.sim.grid import master_grid
from surveynet.sim.instrument import ARMS, BANDS

__all__ = [
    "BAD_MODES",
    "FIBERSTATUS_DEAD",
    "MASK_BADFIBER",
    "MASK_BADPIX",
    "MASK_COSMIC",
    "normalise_to_magnitudes",
    "observe",
]

#: Corruptions of the BAD class.
BAD_MODES = ("ZERO_IVAR", "DEAD_ARM", "MASKED", "LOW_SN", "NAN_FLUX")

#: DESI specmask-like pixel mask bits
MASK_BADPIX = 1 << 0
MASK_COSMIC = 1 << 2
MASK_BADFIBER = 1 << 16
#: FIBERSTATUS bit of a dead fibre
FIBERSTATUS_DEAD = 1 << 8


def normalise_to_magnitudes(
    model: NDArray[np.float32], mags: NDArray[np.float64]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Scale models to AB r magnitudes by synthetic photometry of the noise-free model.

    Parameters
    ----------
    model : ndarray of shape (n, 7781), float32
        Models on the master grid (scaled in place).
    mags : ndarray of shape (n,)
        Target r magnitudes; rows whose r flux is not positive keep their scale.

    Returns
    -------
    scale : ndarray of shape (n,), float32
        The factors applied.
    flux_grz : ndarray of shape (n, 3), float32
        g, r, z fluxes (nanomaggies) of the scaled models (0 where undefined).
    """
    m0 = instrument.synthetic_mags(model)
    mr = np.where(np.isfinite(m0["r"]), m0["r"], mags)
    dm = mags - mr
    scale = (10.0 ** (-0.4 * dm)).astype(np.float32)
    model *= scale[:, None]
    flux = np.stack(
        [
            np.where(np.isfinite(m0[b]), 10.0 ** (-0.4 * (m0[b] + dm - 22.5)), 0.0)
            for b in ("g", "r", "z")
        ],
        axis=1,
    ).astype(np.float32)
    return scale, flux


def observe(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    cls: NDArray[np.str_],
    src: NDArray[np.str_],
    truth: dict[str, NDArray[Any]],
    cfg: SpectraSimConfig,
    out_flux: dict[str, NDArray[np.float32]],
    out_ivar: dict[str, NDArray[np.float32]],
    out_mask: dict[str, NDArray[np.int32]],
) -> None:
    """Observe a batch of scaled models: write flux, ivar and mask, fill the observing truth.

    Draw order (part of the seeding): BAD modes, exposure factors, dead fibres, dead arms, then
    per arm the noise, cosmic-ray pixels and the MASKED / NAN_FLUX corruptions.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    model : ndarray of shape (n, 7781), float32
        Noise-free models in flux units (1e-17 erg/s/cm^2/A), before the LSF.
    cls, src : ndarray of str, shape (n,)
        Class and source class of each row.
    truth : dict of str to ndarray
        Truth columns of the batch; ``SUBTYPE`` (BAD rows), ``EXPFACTOR``, ``DEAD_FIBRE``,
        ``Z_CONF``, ``SNR_MEDIAN``, ``SNR_1420`` and ``_FIBERSTATUS`` are filled; ``Z`` and
        ``OBJTYPE`` are read.
    cfg : SpectraSimConfig
        Instrument and noise fields.
    out_flux, out_ivar, out_mask : dict of str to ndarray of shape (n, n_pix_arm)
        Output arrays per arm (written).
    """
    wave = master_grid().wave
    n = cls.size
    ib = np.nonzero(cls == "BAD")[0]
    bad_mode = (
        np.array(BAD_MODES)[rng.integers(0, len(BAD_MODES), ib.size)]
        if ib.size
        else np.array([], "U9")
    )
    truth["SUBTYPE"][ib] = bad_mode
    # ---- exposure
    expf = cfg.exposure_factor * np.exp(cfg.exposure_scatter * rng.standard_normal(n))
    expf[ib[bad_mode == "LOW_SN"]] *= 1e-3
    truth["EXPFACTOR"][:] = expf
    dead = rng.uniform(0.0, 1.0, n) < cfg.dead_fibre_fraction
    truth["DEAD_FIBRE"][:] = dead
    # visual-inspection confidence (quasarnet.md 5.1): 3 = confident; a BAD spectrum or a fibre
    # without data cannot be classified by eye
    truth["Z_CONF"][:] = np.where(dead | (truth["OBJTYPE"] == "BAD"), 0, 3)
    dead_arm = np.full(n, -1)
    n_dead_arm = int(np.sum(bad_mode == "DEAD_ARM"))
    dead_arm[ib[bad_mode == "DEAD_ARM"]] = rng.integers(0, 3, n_dead_arm)
    # S/N in 1420-1480 A rest (quasars; simulation.md 5.2): pixel range on the master grid per row
    z = truth["Z"]
    s0 = np.searchsorted(wave, 1420.0 * (1.0 + z))
    s1 = np.searchsorted(wave, 1480.0 * (1.0 + z))
    snr_num = np.zeros(n)
    snr_den = np.zeros(n)
    snr_parts = []
    # ---- per arm: LSF, variance, noise, masks (written straight into the output arrays)
    for a, band in enumerate(BANDS):
        off, npx = ARMS[band]
        f = model[:, off : off + npx]
        if cfg.lsf:
            f = instrument.apply_resolution(f, cfg.lsf_sigma(band))
        else:
            f = np.array(f, dtype=np.float32)
        var = instrument.variance(
            f, band, expf, oi_scale=cfg.sky_oi_scale, read_noise_var=cfg.read_noise_var
        )
        obs = out_flux[band]
        iv = np.reciprocal(var, out=out_ivar[band])
        if cfg.noise:
            rng.standard_normal(f.shape, dtype=np.float32, out=obs)
            obs *= np.sqrt(var, out=var)  # var is not needed any more
            obs += f
        else:
            obs[:] = f
        mk = out_mask[band]
        mk[:] = 0
        snr = f[:, ::8] * np.sqrt(iv[:, ::8])
        snr_parts.append(snr)
        for i in np.nonzero((s1 > s0) & (s0 < off + npx) & (s1 > off) & (src == "QSO"))[0]:
            j0, j1 = max(int(s0[i]) - off, 0), min(int(s1[i]) - off, npx)
            snr_num[i] += float(np.sum(f[i, j0:j1] * np.sqrt(iv[i, j0:j1])))
            snr_den[i] += j1 - j0
        if cfg.masked_pixel_fraction > 0:
            n_hit = int(rng.binomial(f.size, cfg.masked_pixel_fraction))
            hit = rng.integers(0, f.size, n_hit)
            mk.reshape(-1)[hit] |= MASK_COSMIC
            iv.reshape(-1)[hit] = 0.0
        kill = dead | (dead_arm == a)
        kill[ib[bad_mode == "ZERO_IVAR"]] = True
        _corrupt(rng, obs, iv, mk, kill, ib[bad_mode == "MASKED"], ib[bad_mode == "NAN_FLUX"])
    truth["SNR_MEDIAN"][:] = np.median(np.concatenate(snr_parts, axis=1), axis=1)
    truth["SNR_1420"][:] = np.where(snr_den > 0, snr_num / np.maximum(snr_den, 1), -1.0)
    fib = np.zeros(n, dtype=np.int32)
    fib[dead] |= FIBERSTATUS_DEAD
    fib[ib[bad_mode == "ZERO_IVAR"]] |= FIBERSTATUS_DEAD
    truth["_FIBERSTATUS"] = fib


def _corrupt(
    rng: np.random.Generator,
    obs: NDArray[np.float32],
    iv: NDArray[np.float32],
    mk: NDArray[np.int32],
    kill: NDArray[np.bool_],
    masked: NDArray[np.intp],
    nan_rows: NDArray[np.intp],
) -> None:
    """Apply dead fibres/arms and the MASKED and NAN_FLUX corruptions to one arm, in place.

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    obs, iv : ndarray of shape (n, n_pix), float32
        Flux and inverse variance of the arm.
    mk : ndarray of shape (n, n_pix), int32
        Mask of the arm.
    kill : ndarray of bool, shape (n,)
        Rows without data in this arm (ivar 0, flux 0, BADFIBER).
    masked : ndarray of int
        Rows with 55-95 % of their pixels masked (BADPIX, ivar 0).
    nan_rows : ndarray of int
        Rows with half of their pixels NaN (BADPIX, ivar 0).
    """
    npx = obs.shape[1]
    mk[kill] |= MASK_BADFIBER
    iv[kill] = 0.0
    obs[kill] = 0.0
    if masked.size:
        frac = rng.uniform(0.55, 0.95, masked.size)
        sel = rng.uniform(0.0, 1.0, (masked.size, npx)) < frac[:, None]
        mk[masked] |= np.where(sel, MASK_BADPIX, 0).astype(np.int32)
        ivs = iv[masked]
        ivs[sel] = 0.0
        iv[masked] = ivs
    if nan_rows.size:
        nanpix = rng.uniform(0.0, 1.0, (nan_rows.size, npx)) < 0.5
        sub = obs[nan_rows]
        sub[nanpix] = np.nan
        obs[nan_rows] = sub
        ivs = iv[nan_rows]
        ivs[nanpix] = 0.0
        iv[nan_rows] = ivs
        mk[nan_rows] |= np.where(nanpix, MASK_BADPIX, 0).astype(np.int32)
