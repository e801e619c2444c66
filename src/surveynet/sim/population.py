"""Who is simulated: class quotas, TARGETIDs, per-batch seeds, redshifts, magnitudes, positions.

Quasar redshifts (design default): with probability ``qso_hz_fraction`` (0.617 = 35.6 / (35.6 +
22.1), the BOSS DR12 QSO_HZ : QSO_LZ training ratio of quasarnet.md) uniform in [2.1,
``qso_z_max`` = 5], otherwise uniform in [``qso_z_min`` = 0.1, 2.1): more weight at high z, as
QuasarNET's training set. Magnitudes: dN/dm ~ 10^(0.3 m) within each class range (design
default). ``qso_zmag_table`` replaces both by a joint draw from a DESI number-count table
(:func:`draw_zmag`).

Randomness: run-level draws (class quotas, BAD sources) come from ``default_rng(seed)``
(:func:`make_plan`); each batch has its own :func:`batch_rng`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ConfigError
from surveynet.sim import instrument
from surveynet.sim.config import SpectraSimConfig

__all__ = [
    "CLASSES",
    "SimPlan",
    "batch_rng",
    "draw_qso_redshifts",
    "draw_zmag",
    "load_zmag_table",
    "make_plan",
    "power_law_mags",
    "quotas",
    "sky_positions",
    "targetid_base",
]

#: Object classes of the mocks, in the order of the ``frac_*`` fields.
CLASSES = ("QSO", "STAR", "GALAXY", "BAD")

ZmagTable = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def quotas(n: int, fractions: NDArray[np.float64]) -> NDArray[np.int64]:
    """Integer counts summing to ``n``, proportional to ``fractions`` (largest remainder).

    Parameters
    ----------
    n : int
        Total.
    fractions : ndarray of shape (k,)
        Non-negative weights (normalised here).

    Returns
    -------
    ndarray of int64, shape (k,)

    Examples
    --------
    >>> quotas(10, np.array([0.5, 0.26, 0.24])).tolist()
    [5, 3, 2]
    """
    f = np.asarray(fractions, dtype=np.float64)
    f = f / f.sum()
    raw = f * n
    cnt = np.floor(raw).astype(np.int64)
    rest = n - int(cnt.sum())
    order = np.argsort(-(raw - cnt), kind="stable")
    cnt[order[:rest]] += 1
    return cnt


def power_law_mags(
    rng: np.random.Generator, n: int, lo: float, hi: float, slope: float
) -> NDArray[np.float64]:
    """Magnitudes with dN/dm ~ 10^(slope m) in [lo, hi], by inverse CDF.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (one uniform draw per magnitude).
    n : int
        Number of magnitudes.
    lo, hi : float
        Range; ``hi <= lo`` gives ``lo`` everywhere.
    slope : float
        Logarithmic slope (0: uniform).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> m = power_law_mags(np.random.default_rng(0), 1000, 17.0, 23.0, 0.3)
    >>> bool(m.min() >= 17.0 and m.max() <= 23.0 and np.median(m) > 20.0)
    True
    """
    u = rng.uniform(0.0, 1.0, n)
    if hi <= lo:
        return np.full(n, lo)
    if slope == 0:
        return lo + u * (hi - lo)
    a = slope * np.log(10.0)
    return lo + np.log1p(u * np.expm1(a * (hi - lo))) / a


_ZMAG_CACHE: dict[str, ZmagTable] = {}


def load_zmag_table(path: str | os.PathLike[str]) -> ZmagTable:
    """Read a DESI quasar number-count table (cached per resolved path).

    Parameters
    ----------
    path : str or os.PathLike
        desisim ``dn_dzdM_EDR.fits``-like file: HDUs Z_CENTERS, RMAG_CENTERS and DN_DZDM of
        shape (n_z, n_r).

    Returns
    -------
    z_centres, r_centres, dn : ndarray

    Raises
    ------
    ConfigError
        Unreadable file, missing HDU, mis-shaped or negative counts.
    """
    from astropy.io import fits

    key = str(Path(path).resolve())
    if key not in _ZMAG_CACHE:
        try:
            with fits.open(path) as hdul:
                names = {h.name for h in hdul}
                for need in ("Z_CENTERS", "RMAG_CENTERS", "DN_DZDM"):
                    if need not in names:
                        raise ConfigError(f"{path}: no HDU {need} (qso_zmag_table)")
                zc = np.asarray(hdul["Z_CENTERS"].data, dtype=np.float64)
                rc = np.asarray(hdul["RMAG_CENTERS"].data, dtype=np.float64)
                dn = np.asarray(hdul["DN_DZDM"].data, dtype=np.float64)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read qso_zmag_table ({exc})") from exc
        if dn.shape != (zc.size, rc.size) or zc.size < 2 or rc.size < 2:
            raise ConfigError(
                f"{path}: DN_DZDM has shape {dn.shape}, expected (len Z_CENTERS, len RMAG_CENTERS)"
                f" = ({zc.size}, {rc.size})"
            )
        if not np.all(np.isfinite(dn)) or dn.min() < 0:
            raise ConfigError(f"{path}: DN_DZDM must be finite and >= 0")
        _ZMAG_CACHE[key] = (zc, rc, dn)
    return _ZMAG_CACHE[key]


def draw_zmag(
    rng: np.random.Generator,
    n: int,
    table: ZmagTable,
    z_range: tuple[float, float],
    mag_range: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Redshifts and r magnitudes drawn jointly from a number-count table.

    A cell is drawn with probability dN times the fraction of it inside the ranges, then (z, r)
    uniformly within that part of the cell.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of draws.
    table : tuple of ndarray
        ``(z_centres, r_centres, dn)`` from :func:`load_zmag_table`.
    z_range, mag_range : tuple of float
        Redshift and magnitude ranges.

    Returns
    -------
    z, mag : ndarray of shape (n,)

    Raises
    ------
    ConfigError
        No quasar of the table falls in the ranges.
    """
    zc, rc, dn = table
    ze, re = instrument.pixel_edges(zc), instrument.pixel_edges(rc)
    zlo = np.clip(ze[:-1], *z_range)
    zhi = np.clip(ze[1:], *z_range)
    rlo = np.clip(re[:-1], *mag_range)
    rhi = np.clip(re[1:], *mag_range)
    fz = (zhi - zlo) / np.diff(ze)
    fr = (rhi - rlo) / np.diff(re)
    w = dn * fz[:, None] * fr[None, :]
    total = w.sum()
    if not total > 0:
        raise ConfigError(f"qso_zmag_table has no quasars in z {z_range} x r {mag_range}")
    cell = rng.choice(w.size, size=n, p=(w / total).ravel())
    iz, ir = np.divmod(cell, rc.size)
    z = zlo[iz] + rng.uniform(0.0, 1.0, n) * (zhi[iz] - zlo[iz])
    mag = rlo[ir] + rng.uniform(0.0, 1.0, n) * (rhi[ir] - rlo[ir])
    return z, mag


def draw_qso_redshifts(
    rng: np.random.Generator, n: int, cfg: SpectraSimConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Redshifts and r magnitudes of ``n`` quasars (module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    n : int
        Number of quasars.
    cfg : SpectraSimConfig
        ``qso_*`` fields and ``mag_slope``.

    Returns
    -------
    z, mag : ndarray of shape (n,)
    """
    if cfg.qso_zmag_table:
        return draw_zmag(
            rng,
            n,
            load_zmag_table(cfg.qso_zmag_table),
            (cfg.qso_z_min, cfg.qso_z_max),
            cfg.qso_mag_range,
        )
    hz = rng.uniform(0.0, 1.0, n) < cfg.qso_hz_fraction
    zlo = min(max(cfg.qso_z_split, cfg.qso_z_min), cfg.qso_z_max)
    z = np.where(
        hz,
        rng.uniform(zlo, cfg.qso_z_max, n),
        rng.uniform(cfg.qso_z_min, zlo, n),
    )
    return z, power_law_mags(rng, n, *cfg.qso_mag_range, cfg.mag_slope)


def targetid_base(seed: int) -> int:
    """First TARGETID of a run.

    Parameters
    ----------
    seed : int
        Run seed.

    Returns
    -------
    int
        ``(seed mod 2^20) 10^7 + 1`` (so that DLAID = TARGETID 1000 + k fits int64).

    Examples
    --------
    >>> targetid_base(7)
    70000001
    """
    return (int(seed) % (1 << 20)) * 10_000_000 + 1


@dataclass(frozen=True)
class SimPlan:
    """Run-level draws for all rows of a run (cheap, from the seed alone).

    Attributes
    ----------
    seed : int
        Run seed.
    cls : ndarray of str, shape (n,)
        Class of each row (:data:`CLASSES`).
    src : ndarray of str, shape (n,)
        Source class: the class, or for BAD rows the class whose model is corrupted.
    tid : ndarray of int64, shape (n,)
        TARGETIDs.
    """

    seed: int
    cls: NDArray[np.str_]
    src: NDArray[np.str_]
    tid: NDArray[np.int64]

    @property
    def n(self) -> int:
        """Number of rows.

        Returns
        -------
        int
        """
        return int(self.cls.size)


def make_plan(n: int, seed: int, cfg: SpectraSimConfig) -> SimPlan:
    """Classes (exact quotas, shuffled), BAD sources and TARGETIDs of a run.

    Parameters
    ----------
    n : int
        Number of spectra.
    seed : int
        Run seed (``default_rng(seed)`` draws the plan).
    cfg : SpectraSimConfig
        Class fractions.

    Returns
    -------
    SimPlan

    Raises
    ------
    ConfigError
        ``n < 0``.

    Examples
    --------
    >>> p = make_plan(4, 1, SpectraSimConfig(frac_star=0.0, frac_galaxy=0.0, frac_bad=0.0))
    >>> p.cls.tolist(), int(p.tid[0])
    (['QSO', 'QSO', 'QSO', 'QSO'], 10000001)
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    counts = quotas(n, np.array([cfg.frac_qso, cfg.frac_star, cfg.frac_galaxy, cfg.frac_bad]))
    cls = np.repeat(np.array(CLASSES), counts)
    cls = cls[rng.permutation(n)] if n else cls
    src = cls.copy()
    ib = np.nonzero(cls == "BAD")[0]
    if ib.size:
        good = np.array([cfg.frac_qso, cfg.frac_star, cfg.frac_galaxy])
        good = good / good.sum() if good.sum() > 0 else np.array([1.0, 0.0, 0.0])
        src[ib] = np.array(CLASSES[:3])[rng.choice(3, size=ib.size, p=good)]
    tid = targetid_base(seed) + np.arange(n, dtype=np.int64)
    return SimPlan(seed=int(seed), cls=cls, src=src, tid=tid)


def batch_rng(seed: int, batch: int) -> np.random.Generator:
    """Generator of one batch, ``default_rng([seed, batch])``: any batch can be made alone.

    Parameters
    ----------
    seed : int
        Run seed (taken modulo 2^63).
    batch : int
        Batch index.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng([int(seed) % (1 << 63), int(batch)])


def sky_positions(
    rng: np.random.Generator, n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Uniform positions on the sphere within -10 < Dec < 70 deg (design default).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of positions.

    Returns
    -------
    ra, dec : ndarray of shape (n,)
        Degrees.
    """
    ra = rng.uniform(0.0, 360.0, n)
    lo, hi = np.sin(np.radians(-10.0)), np.sin(np.radians(70.0))
    dec = np.degrees(np.arcsin(rng.uniform(lo, hi, n)))
    return ra, dec
