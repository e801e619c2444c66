"""Seeded DESI-like spectral mocks: quasars (forest, DLAs, BALs), stars, galaxies and bad spectra.

:func:`simulate_spectra` returns a :class:`~surveynet.io.spectra.Spectra` on the DESI B/R/Z grids
(0.8 A) plus truth tables; :func:`simulate_to_files` writes DESI coadd files and ``truth.fits``.
Physics follows simulation.md sections 2-5 (constants cited there and in
:mod:`surveynet.sim.instrument` / :mod:`surveynet.sim.igm`). Two modes:

- **parametric** (default, no external file): broken power-law quasar continua with Vanden Berk et
  al. (2001) emission lines, Planck stars with absorption lines, two-population galaxies with D4000
  and nebular lines;
- **template** (``templates=PATH``, e.g. ``../shared/data/templates``): quasar continua = real BOSS
  PCA coefficients @ the SDSS eigenspectra (redrock ``rrtemplate-QSO-None-v0.1.fits``), Pickles
  stars, KC96 and desisim LRG galaxies (see :mod:`surveynet.sim.templates`).

Quasar redshifts (design default): with probability ``qso_hz_fraction`` (0.617 = 35.6 / (35.6 +
22.1), the BOSS DR12 QSO_HZ : QSO_LZ training ratio of quasarnet.md) uniform in [2.1, ``qso_z_max``
= 5], otherwise uniform in [``qso_z_min`` = 0.1, 2.1): more weight at high z, as QuasarNET's
training set. Magnitudes: dN/dm ~ 10^(0.3 m) within each class range (design default), as apparent r
(AB) of the final noise-free model through an approximate DECam-like r filter.

Randomness: run-level draws (class quotas, BAD sources) come from ``default_rng(seed)``; each batch
of ``batch_size`` spectra has its own ``default_rng([seed, batch_index])``, vectorised over its
spectra. A given (seed, n, config) is therefore bit-reproducible, any batch can be regenerated on
its own, and :func:`simulate_to_files` streams file by file with the same result as one in-memory
run. TARGETIDs are ``targetid_base(seed) + row``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import ConfigError
from surveynet.io.spectra import Spectra
from surveynet.sim import igm, instrument
from surveynet.sim.instrument import ARMS, BANDS, DWAVE, N_MASTER, WAVE_MIN

log = logging.getLogger(__name__)

CLASSES = ("QSO", "STAR", "GALAXY", "BAD")
BAD_MODES = ("ZERO_IVAR", "DEAD_ARM", "MASKED", "LOW_SN", "NAN_FLUX")

#: DESI specmask-like pixel mask bits
MASK_BADPIX = 1 << 0
MASK_COSMIC = 1 << 2
MASK_BADFIBER = 1 << 16
#: FIBERSTATUS bit of a dead fibre
FIBERSTATUS_DEAD = 1 << 8

#: Vanden Berk et al. (2001) Table 2 via simulation.md 2.2: (name, rest vacuum A, EW A, sigma A)
QSO_LINES: tuple[tuple[str, float, float, float], ...] = (
    ("LYB_OVI", 1033.03, 9.77, 7.76),
    ("LYA", 1215.67, 92.91, 19.46),
    ("NV", 1240.14, 1.11, 2.71),
    ("OI_SIII", 1305.42, 1.66, 5.42),
    ("SIIV_OIV", 1399.41, 8.13, 12.50),
    ("CIV", 1549.06, 23.78, 14.33),
    ("HEII", 1640.42, 0.51, 4.43),
    ("CIII", 1908.73, 21.19, 23.58),
    ("FEII_UV", 2324.58, 3.56, 22.23),
    ("MGII", 2798.75, 32.28, 34.95),
    ("FEII_UV78", 2964.28, 4.93, 22.92),
    ("OII", 3728.48, 1.56, 3.32),
    ("NEIII", 3869.85, 1.38, 5.31),
    ("HDELTA", 4102.89, 5.05, 18.62),
    ("HGAMMA", 4341.68, 12.62, 20.32),
    ("FEII_OPT1", 4564.71, 19.52, 61.69),
    ("HBETA", 4862.68, 46.21, 40.44),
    ("OIII_4960", 4960.30, 3.50, 3.85),
    ("OIII_5008", 5008.24, 13.23, 6.04),
    ("FEII_OPT2", 5305.97, 21.47, 74.83),
    ("HEI", 5877.29, 4.94, 23.45),
    ("HALPHA", 6564.61, 194.52, 47.39),
    ("NII", 6585.28, 2.02, 2.65),
    ("SII_6718", 6718.29, 1.65, 3.09),
    ("SII_6733", 6732.67, 1.49, 2.54),
)
_QSO_LINE_WAVE = np.array([x[1] for x in QSO_LINES])
_QSO_LINE_EW = np.array([x[2] for x in QSO_LINES])
_QSO_LINE_SIG = np.array([x[3] for x in QSO_LINES])
_CIV_INDEX = [x[0] for x in QSO_LINES].index("CIV")

#: stellar absorption lines (vacuum A; simulation.md 2.4)
BALMER = (6564.61, 4862.68, 4341.68, 4102.89)
CA_HK = (3934.77, 3969.59)
NA_D = (5891.58, 5897.56)
MG_B = (5168.76, 5174.12, 5185.04)
#: TiO band heads (A, approximate) with the redward recovery scale 150 A (design)
TIO_HEADS = (6158.0, 7053.0, 7666.0, 8432.0)
HC_OVER_K = 1.438777e8  # A K


@dataclass(frozen=True, kw_only=True)
class SpectraSimConfig:
    """Every knob of the spectral mocks (design defaults of simulation.md marked there).

    Class mix defaults to the BOSS DR12 QuasarNET training fractions (STAR 36.5 %, GALAXY 3.7 %,
    QSO_LZ + QSO_HZ 57.7 %, BAD 2.1 %; quasarnet.md). Counts are exact quotas (largest remainder).

    Groups of fields (override any with ``--set name=value``):

    - ``frac_*``: class fractions (normalised); ``mix=`` of :func:`simulate_spectra` overrides them.
    - ``qso_*``: redshift range and the QSO_HZ share above ``qso_z_split``; r-magnitude range with
      dN/dm ~ 10^(``mag_slope`` m); broken power law slopes (Vanden Berk 2001, Telfer 2002) with
      per-object scatter; line EW/sigma log-normal scatter; CIV blueshift upper bound (km/s).
      ``qso_zmag_table`` (path to a DESI ``dn_dzdM`` FITS file, e.g.
      ``../shared/data/igm/dn_dzdM_EDR.fits``) draws (z, r) jointly from the survey's number
      counts within the z and magnitude ranges instead (:func:`draw_zmag`).
    - ``forest*``: on/off, tau_eff fit (``becker13``, ``fg08``, ``kim07``, ``gpdla_dr16``),
      lognormal amplitude ``forest_sigma_g`` and correlation (pixels), Lyman-beta on/off;
      ``lyman_limit`` adds Lyman-limit systems with dN/dz = ``lls_dndz`` (1 + z)^``lls_dndz_index``.
    - ``bal_*``: fraction of z >= ``bal_z_min`` quasars with parametric troughs (BI_CIV > 0 by
      construction), LoBAL share.
    - ``dla_*``: probability of >= 1 DLA for z_qso >= ``dla_z_min`` (the DLA-free fraction is 1 -
      ``dla_probability``), N_HI distribution (``desi``, ``slls``, ``high``, ``mix``, ``sdss``,
      ``fn``: :func:`surveynet.sim.igm.draw_nhi`), recipe (``desi``: one DLA plus an optional
      second 30-120 px away; ``sdss``: Poisson(dN/dz dz) redrawn until >= 1), Doppler b,
      Lyman-series lines (1 = Lya only, as the London mocks), minimum wavelength 3700 A.
    - ``star_*``, ``galaxy_*``: magnitude ranges, T_eff range, WD/CV shares, radial velocities;
      ELG/LRG/BGS shares and velocity dispersions.
    - instrument: ``exposure_factor`` (ivar ~ exposure), per-spectrum log-normal scatter,
      ``lsf``/``lsf_sigma_px`` (B/R/Z pixels), ``noise``, dead-fibre and masked-pixel fractions,
      read-noise variance, [OI] 5578.9 sky-line scale, ``resolution`` (write RESOLUTION).
    - ``batch_size``: spectra per vectorised batch (part of the seeding: keep it fixed to
      reproduce).
    """

    # ---- class mix
    frac_qso: float = 0.577
    frac_star: float = 0.365
    frac_galaxy: float = 0.037
    frac_bad: float = 0.021
    # ---- quasars
    qso_z_min: float = 0.1
    qso_z_max: float = 5.0
    qso_z_split: float = 2.1
    qso_hz_fraction: float = 0.617
    qso_mag_range: tuple[float, float] = (17.0, 23.0)
    qso_zmag_table: str | None = None
    mag_slope: float = 0.3
    qso_alpha_blue: float = -0.44
    qso_alpha_red: float = -2.45
    qso_alpha_euv: float = -1.7
    qso_alpha_scatter: float = 0.3
    qso_break_euv: float = 1100.0
    qso_break_red: float = 5000.0
    line_ew_scatter_dex: float = 0.2
    line_sigma_scatter_dex: float = 0.1
    civ_blueshift_max_kms: float = 1500.0
    # ---- forest and IGM
    forest: bool = True
    forest_fit: str = "becker13"
    forest_sigma_g: float = 2.3
    forest_corr_px: float = 1.0
    forest_lyb: bool = True
    lyman_limit: bool = True
    lls_dndz: float = 0.3
    lls_dndz_index: float = 1.94
    # ---- BALs
    bal_fraction: float = 0.10
    bal_z_min: float = 1.6
    bal_lobal_fraction: float = 0.1
    # ---- DLAs
    dla_probability: float = 0.3
    dla_z_min: float = 2.0
    dla_nhi_distribution: str = "desi"
    dla_recipe: str = "desi"
    dla_b_kms: float = 30.0
    dla_lyman_series: int = 1
    dla_overlap_probability: float = 0.1
    dla_dndz: float = 0.18
    dla_wave_min: float = 3700.0
    # ---- stars
    star_mag_range: tuple[float, float] = (16.0, 22.0)
    star_teff_range: tuple[float, float] = (3000.0, 30000.0)
    star_wd_fraction: float = 0.05
    star_cv_fraction: float = 0.01
    star_rv_kms: float = 300.0
    # ---- galaxies: subtype fractions ELG, LRG, BGS
    galaxy_mag_range: tuple[float, float] = (17.0, 23.0)
    galaxy_subtype_fractions: tuple[float, float, float] = (0.4, 0.3, 0.3)
    galaxy_sigma_v_range: tuple[float, float] = (50.0, 200.0)
    # ---- instrument and noise
    exposure_factor: float = 1.0
    exposure_scatter: float = 0.1
    lsf: bool = True
    lsf_sigma_px: tuple[float, float, float] = (0.84, 0.80, 0.90)
    noise: bool = True
    dead_fibre_fraction: float = 0.005
    masked_pixel_fraction: float = 0.001
    read_noise_var: float = instrument.READ_NOISE_VAR
    sky_oi_scale: float = 1.0
    resolution: bool = True
    # ---- bookkeeping
    batch_size: int = 256

    def lsf_sigma(self, band: str) -> float:
        """Gaussian LSF sigma (pixels) of arm ``band`` (``b``, ``r``, ``z``)."""
        return float(self.lsf_sigma_px[BANDS.index(band)])

    def __post_init__(self) -> None:
        if min(self.lsf_sigma_px) <= 0:
            raise ConfigError(f"lsf_sigma_px must be > 0, got {self.lsf_sigma_px}")
        fr = (self.frac_qso, self.frac_star, self.frac_galaxy, self.frac_bad)
        if min(fr) < 0 or sum(fr) <= 0:
            raise ConfigError(f"class fractions must be >= 0 with a positive sum, got {fr}")
        if not 0 <= self.qso_z_min < self.qso_z_max <= 7.0:
            raise ConfigError(
                f"need 0 <= qso_z_min < qso_z_max <= 7, got {self.qso_z_min}, {self.qso_z_max}"
            )
        for name in ("qso_mag_range", "star_mag_range", "galaxy_mag_range"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"{name} must be (min, max), got {(lo, hi)}")
        if self.forest_fit not in igm.TAU_EFF_FITS:
            raise ConfigError(
                f"forest_fit must be one of {igm.TAU_EFF_FITS}, got {self.forest_fit!r}"
            )
        if self.dla_nhi_distribution not in igm.NHI_DISTRIBUTIONS:
            raise ConfigError(f"dla_nhi_distribution must be one of {igm.NHI_DISTRIBUTIONS}")
        if self.dla_recipe not in ("desi", "sdss"):
            raise ConfigError(f"dla_recipe must be 'desi' or 'sdss', got {self.dla_recipe!r}")
        if not 1 <= self.dla_lyman_series <= 3:
            raise ConfigError("dla_lyman_series must be 1 (Lya), 2 (+Lyb) or 3 (+Lyg)")
        for name in (
            "bal_fraction",
            "dla_probability",
            "dead_fibre_fraction",
            "masked_pixel_fraction",
            "star_wd_fraction",
            "star_cv_fraction",
            "dla_overlap_probability",
            "qso_hz_fraction",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        if self.exposure_factor <= 0:
            raise ConfigError(f"exposure_factor must be > 0, got {self.exposure_factor}")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be >= 1")


#: named presets (``--preset``); ``dla`` is the DLA-pipeline set of simulation.md 5.2 (z_qso >=
#: 2.33,
#: 20 % DLA-free sightlines, sub-DLAs from 19.3, overlapping pairs, BAL contaminants kept)
PRESETS: dict[str, dict[str, Any]] = {
    # "dla_only" is an alias of "dla" (filled in below)
    "generic": {},
    "qso": {"frac_qso": 1.0, "frac_star": 0.0, "frac_galaxy": 0.0, "frac_bad": 0.0},
    "dla": {
        "frac_qso": 1.0,
        "frac_star": 0.0,
        "frac_galaxy": 0.0,
        "frac_bad": 0.0,
        "qso_z_min": 2.33,
        "qso_z_max": 4.5,
        "qso_z_split": 2.33,
        "qso_hz_fraction": 1.0,
        "qso_mag_range": (18.5, 22.5),
        "dla_probability": 0.8,
        "dla_z_min": 2.33,
        "dla_nhi_distribution": "mix",
        "dla_overlap_probability": 0.2,
        "dead_fibre_fraction": 0.0,
    },
}


PRESETS["dla_only"] = PRESETS["dla"]


def preset_config(name: str, **overrides: Any) -> SpectraSimConfig:
    """A :class:`SpectraSimConfig` from a named preset (``generic``, ``qso``, ``dla``) plus
    overrides.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return SpectraSimConfig(**{**PRESETS[name], **overrides})


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"qso=0.6,star=0.3,galaxy=0.1"`` into a dict (keys qso/star/galaxy/bad).

    Examples
    --------
    >>> parse_mix("qso=0.6, star=0.4")
    {'qso': 0.6, 'star': 0.4}
    """
    out: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("qso", "star", "galaxy", "bad"):
            raise ConfigError(f"--mix item {item!r}: expected qso|star|galaxy|bad=FRACTION")
        try:
            out[key] = float(val)
        except ValueError:
            raise ConfigError(f"--mix item {item!r}: {val!r} is not a number") from None
    return out


def _apply_mix(config: SpectraSimConfig, mix: dict[str, float] | None) -> SpectraSimConfig:
    """Class fractions from ``mix``; without a ``bad`` key, BAD keeps ``config.frac_bad`` and the
    rest scale.
    """
    if not mix:
        return config
    unknown = set(mix) - {"qso", "star", "galaxy", "bad"}
    if unknown:
        raise ConfigError(f"unknown class(es) in mix: {sorted(unknown)}")
    vals = {k: float(mix.get(k, 0.0)) for k in ("qso", "star", "galaxy")}
    tot = sum(vals.values())
    if min(vals.values()) < 0 or (tot <= 0 and not mix.get("bad")):
        raise ConfigError(f"mix fractions must be >= 0 with a positive sum, got {mix}")
    bad = float(mix["bad"]) if "bad" in mix else config.frac_bad
    scale = (1.0 - bad) / tot if "bad" not in mix and tot > 0 else 1.0
    return dataclasses.replace(
        config,
        frac_qso=vals["qso"] * scale,
        frac_star=vals["star"] * scale,
        frac_galaxy=vals["galaxy"] * scale,
        frac_bad=bad,
    )


# -------------------------------------------------------------------------------------- helpers
_WAVE = instrument.master_wave()
_LNWAVE = np.log(_WAVE).astype(np.float32)
_WAVE32 = _WAVE.astype(np.float32)


def _quotas(n: int, fractions: NDArray[np.float64]) -> NDArray[np.int64]:
    """Integer counts summing to n, proportional to ``fractions`` (largest remainder)."""
    f = np.asarray(fractions, dtype=np.float64)
    f = f / f.sum()
    raw = f * n
    cnt = np.floor(raw).astype(np.int64)
    rest = n - int(cnt.sum())
    order = np.argsort(-(raw - cnt), kind="stable")
    cnt[order[:rest]] += 1
    return cnt


def _power_law_mags(
    rng: np.random.Generator, n: int, lo: float, hi: float, slope: float
) -> NDArray[np.float64]:
    """Magnitudes with dN/dm ~ 10^(slope m) in [lo, hi] (inverse CDF)."""
    u = rng.uniform(0.0, 1.0, n)
    if hi <= lo:
        return np.full(n, lo)
    if slope == 0:
        return lo + u * (hi - lo)
    a = slope * np.log(10.0)
    return lo + np.log1p(u * np.expm1(a * (hi - lo))) / a


_ZMAG_CACHE: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = {}


def load_zmag_table(
    path: str | os.PathLike[str],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(z_centres, r_centres, dn)`` of a DESI quasar number-count table (desisim
    ``dn_dzdM_EDR.fits``: HDUs Z_CENTERS, RMAG_CENTERS, DN_DZDM of shape (n_z, n_r)); cached."""
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
    table: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    z_range: tuple[float, float],
    mag_range: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Redshifts and r magnitudes drawn jointly from a number-count table (:func:`load_zmag_table`)
    restricted to ``z_range`` x ``mag_range``: a cell is drawn with probability dN times the
    fraction of it inside the ranges, then (z, r) uniformly within that part of the cell."""
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


def _add_gaussians(
    prof: NDArray[np.float32],
    rows: NDArray[np.int64],
    center_px: NDArray[np.float64],
    sigma_px: NDArray[np.float64],
    amp: NDArray[np.float64],
    *,
    n_sigma: float = 4.0,
) -> None:
    """prof[rows] += amp exp(-(i - c)^2 / 2 s^2) over +-n_sigma windows; ``prof`` has one spare last
    column.
    """
    n_pix = prof.shape[1] - 1
    ok = (
        (amp != 0)
        & (center_px + n_sigma * sigma_px > 0)
        & (center_px - n_sigma * sigma_px < n_pix - 1)
    )
    if not np.any(ok):
        return
    rows, c, s, a = rows[ok], center_px[ok], sigma_px[ok], amp[ok]
    ncol = prof.shape[1]
    flat = prof.reshape(-1)
    order = np.argsort(s, kind="stable")
    for start in range(0, order.size, 64):  # chunks of similar width keep the windows tight
        sel = order[start : start + 64]
        w = int(np.ceil(n_sigma * s[sel].max()))
        offs = np.arange(-w, w + 1)
        idx = np.rint(c[sel]).astype(np.int64)[:, None] + offs[None, :]
        x = ((idx - c[sel, None]) / s[sel, None]).astype(np.float32)
        x *= x
        x *= np.float32(-0.5)
        np.exp(x, out=x)
        x *= a[sel, None].astype(np.float32)
        idx[(idx < 0) | (idx >= n_pix)] = n_pix  # spare column
        idx += (rows[sel] * ncol)[:, None]
        flat[idx] += x


def _px(wave_obs: NDArray[np.float64]) -> NDArray[np.float64]:
    return (wave_obs - WAVE_MIN) / DWAVE


# ------------------------------------------------------------------------------------ quasars
def _qso_continuum(
    rng: np.random.Generator, z: NDArray[np.float64], cfg: SpectraSimConfig
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    n = z.size
    a1 = cfg.qso_alpha_blue + cfg.qso_alpha_scatter * rng.standard_normal(n)
    a2 = cfg.qso_alpha_red + cfg.qso_alpha_scatter * rng.standard_normal(n)
    ae = cfg.qso_alpha_euv + cfg.qso_alpha_scatter * rng.standard_normal(n)
    # ln f = -(2 + a1) (x - ln 1450) + (a1 - a2) max(x - ln l_red, 0) + (a1 - ae) min(x - ln l_euv,
    # 0),
    # x = ln(lambda / (1 + z)); the break terms only touch contiguous column ranges of each row.
    lz = np.log1p(z)
    p1 = (-(2.0 + a1)).astype(np.float32)
    lnf = np.multiply.outer(p1, _LNWAVE)
    lnf -= (p1 * (lz + np.log(1450.0)).astype(np.float32))[:, None]
    i_red = np.searchsorted(_WAVE, cfg.qso_break_red * (1.0 + z))
    i_euv = np.searchsorted(_WAVE, cfg.qso_break_euv * (1.0 + z))
    for i in range(n):
        if i_red[i] < N_MASTER:
            lnf[i, i_red[i] :] += np.float32(a1[i] - a2[i]) * (
                _LNWAVE[i_red[i] :] - np.float32(lz[i] + np.log(cfg.qso_break_red))
            )
        if i_euv[i] > 0:
            lnf[i, : i_euv[i]] += np.float32(a1[i] - ae[i]) * (
                _LNWAVE[: i_euv[i]] - np.float32(lz[i] + np.log(cfg.qso_break_euv))
            )
    np.exp(lnf, out=lnf)
    return lnf, a1


def qso_line_profile(
    rng: np.random.Generator, z: NDArray[np.float64], cfg: SpectraSimConfig
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Emission-line profile L (n, 7781) on the master grid: the continuum is multiplied by 1 + L.

    L = sum_l A_l exp(-(lambda - lambda_l (1+z))^2 / 2 s_l^2), A = EW / (sqrt(2 pi) sigma) (simqso
    convention), EW and sigma with log-normal scatter; CIV blueshifted by U(0,
    civ_blueshift_max_kms).
    Returns ``(L, civ_shift_kms)``.
    """
    n = z.size
    nl = len(QSO_LINES)
    ew = _QSO_LINE_EW[None, :] * 10.0 ** (cfg.line_ew_scatter_dex * rng.standard_normal((n, nl)))
    sig = _QSO_LINE_SIG[None, :] * 10.0 ** (
        cfg.line_sigma_scatter_dex * rng.standard_normal((n, nl))
    )
    civ_shift = rng.uniform(0.0, cfg.civ_blueshift_max_kms, n)
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    for li in range(nl):
        lam = _QSO_LINE_WAVE[li] * (1.0 + z)
        if li == _CIV_INDEX:
            lam = lam * (1.0 - civ_shift / instrument.C_KMS)
        s_obs = sig[:, li] * (1.0 + z) / DWAVE
        amp = ew[:, li] / (np.sqrt(2 * np.pi) * sig[:, li])
        _add_gaussians(prof, rows, _px(lam), s_obs, amp)
    return prof[:, :N_MASTER], civ_shift


#: Per-quasar truth columns filled by :func:`_make_qsos` (TRUTH and TRUTH_QSO).
QSO_INFO_COLUMNS = (
    "IS_BAL",
    "BI_CIV",
    "AI_CIV",
    "LOBAL",
    "N_DLA",
    "N_LLS",
    "ALPHA",
    "CIV_SHIFT",
    "TEMPLATEID",
    "FOREST_IN_TEMPLATE",
)


def _insert_dlas(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
) -> tuple[list[dict[str, Any]], NDArray[np.int64]]:
    """Multiply DLA Voigt profiles into ``model`` (rows = quasars); returns DLA rows and counts."""
    from surveynet.sim.voigt import voigt_tau

    n = z.size
    counts = np.zeros(n, dtype=np.int64)
    rows: list[dict[str, Any]] = []
    has = rng.uniform(0.0, 1.0, n) < cfg.dla_probability
    for i in np.nonzero(has & (z >= cfg.dla_z_min))[0]:
        lo, hi = igm.dla_window(float(z[i]), cfg.dla_wave_min)
        i0 = int(np.ceil((lo - WAVE_MIN) / DWAVE))
        i1 = int(np.floor((hi - WAVE_MIN) / DWAVE))
        i0, i1 = max(i0, 0), min(i1, N_MASTER - 1)
        if i1 <= i0:
            continue
        if cfg.dla_recipe == "desi":
            pix = [int(rng.integers(i0, i1 + 1))]
            if rng.uniform() < cfg.dla_overlap_probability:
                second = pix[0] + int(rng.choice([-1, 1])) * int(rng.integers(30, 121))
                if i0 <= second <= i1:
                    pix.append(second)
        else:  # sdss: Poisson(int l dz) redrawn until >= 1
            dz = (_WAVE[i1] - _WAVE[i0]) / igm.LYA
            k = 0
            for _ in range(1000):
                k = int(rng.poisson(cfg.dla_dndz * dz))
                if k >= 1:
                    break
            pix = [int(p) for p in rng.integers(i0, i1 + 1, max(k, 1))]
        nhi = igm.draw_nhi(rng, len(pix), cfg.dla_nhi_distribution)
        for k, (p, lognhi) in enumerate(zip(pix, nhi, strict=True)):
            z_dla = float(_WAVE[p] / igm.LYA - 1.0)
            # evaluate where the Lorentz wing can exceed tau = 1e-4 (damping-wing half width in
            # velocity)
            u_max = (
                np.sqrt(10.0**lognhi * 0.02654 * 0.4164 * 1215.67e-8 * 606.1 / (np.pi * 1e-4)) / 1e5
            )
            frac = min(u_max / instrument.C_KMS, 0.9) + 0.01
            lam_c = igm.LYA * (1.0 + z_dla)
            lo_lyb = (
                igm.LYB * (1.0 + z_dla) * (1.0 - frac)
                if cfg.dla_lyman_series > 1
                else lam_c * (1 - frac)
            )
            lo_lyg = 972.54 * (1.0 + z_dla) * (1.0 - frac)
            j0, j1 = np.searchsorted(
                _WAVE, [lo_lyg if cfg.dla_lyman_series > 2 else lo_lyb, lam_c * (1.0 + frac)]
            )
            tau = voigt_tau(
                _WAVE[j0:j1],
                z_dla,
                float(lognhi),
                b_kms=cfg.dla_b_kms,
                n_lines=cfg.dla_lyman_series,
            )
            model[i, j0:j1] *= np.exp(-tau).astype(np.float32)
            rows.append(
                {
                    "TARGETID": int(tid[i]),
                    "Z_DLA": z_dla,
                    "NHI": float(lognhi),
                    "DLAID": int(tid[i]) * 1000 + k,
                    "Z_QSO": float(z[i]),
                }
            )
        counts[i] = len(pix)
    return rows, counts


def _insert_bals(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    n = z.size
    is_bal = np.zeros(n, dtype=bool)
    lobal = np.zeros(n, dtype=bool)
    bi = np.zeros(n)
    ai = np.zeros(n)
    draw = rng.uniform(0.0, 1.0, n) < cfg.bal_fraction
    vgrid = np.arange(0.0, 30000.0, 10.0)
    for i in np.nonzero(draw & (z >= cfg.bal_z_min))[0]:
        for _ in range(20):
            k = int(rng.integers(1, 4))
            cen = rng.uniform(3000.0, 25000.0, k)
            fwhm = rng.uniform(2000.0, 10000.0, k)
            depth = rng.uniform(0.3, 1.0, k)
            prof = igm.bal_profile(vgrid, cen, fwhm, depth)
            b = igm.balnicity_index(vgrid, prof)
            if b > 0:
                break
        if b <= 0:
            continue
        is_bal[i], bi[i], ai[i] = True, b, igm.absorption_index(vgrid, prof)
        lobal[i] = rng.uniform() < cfg.bal_lobal_fraction
        ions = igm.BAL_IONS + (igm.LOBAL_IONS if lobal[i] else ())
        for _, lam0 in ions:
            lam_c = lam0 * (1.0 + z[i])
            lo = lam_c * (1.0 - 32000.0 / instrument.C_KMS)
            i0, i1 = np.searchsorted(_WAVE, [lo, lam_c])
            if i1 <= i0:
                continue
            v = instrument.C_KMS * (1.0 - _WAVE[i0:i1] / lam_c)
            model[i, i0:i1] *= igm.bal_profile(v, cen, fwhm, depth).astype(np.float32)
    return is_bal, bi, ai, lobal


def _lyman_limit_systems(
    rng: np.random.Generator,
    model: NDArray[np.float32],
    z: NDArray[np.float64],
    cfg: SpectraSimConfig,
) -> NDArray[np.int64]:
    """Lyman-limit systems whose 912 A edge falls in the grid, multiplied into ``model``.

    Incidence dN/dz = ``lls_dndz`` (1 + z)^``lls_dndz_index`` (Songaila & Cowie 2010: 0.3, 1.94 for
    tau_LL >= 1), z drawn from that law between 3600 / 911.75 - 1 and z_qso; log N_HI in
    [17.2, 20.3) with dN/dN ~ N^-1.5 (design); tau = N sigma_LL (lambda / lambda_LL)^3.
    """
    z_lo = WAVE_MIN / igm.LYMAN_LIMIT - 1.0
    e1 = cfg.lls_dndz_index + 1.0
    n_lls = np.zeros(z.size, dtype=np.int64)
    for i in np.nonzero(z > z_lo)[0]:
        a_lo, a_hi = (1.0 + z_lo) ** e1, (1.0 + z[i]) ** e1
        k = int(rng.poisson(cfg.lls_dndz / e1 * (a_hi - a_lo)))
        if k == 0:
            continue
        zz = (a_lo + rng.uniform(0.0, 1.0, k) * (a_hi - a_lo)) ** (1.0 / e1) - 1.0
        e = -0.5
        u = rng.uniform(0.0, 1.0, k)
        lo, hi = (10.0**17.2) ** e, (10.0**20.3) ** e
        lognhi = np.log10((lo + u * (hi - lo)) ** (1.0 / e))
        lam_ll = igm.LYMAN_LIMIT * (1.0 + zz)
        j1 = int(np.searchsorted(_WAVE, lam_ll.max()))
        x = _WAVE[None, :j1] / lam_ll[:, None]
        tau = np.sum(np.where(x < 1.0, (10.0**lognhi * igm.SIGMA_LL)[:, None] * x**3, 0.0), axis=0)
        model[i, :j1] *= np.exp(-np.minimum(tau, 50.0)).astype(np.float32)
        n_lls[i] = k
    return n_lls


def _make_qsos(
    rng: np.random.Generator,
    z: NDArray[np.float64],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
    templates: Any,
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    n = z.size
    info: dict[str, Any] = {}
    if templates is None:
        cont, alpha = _qso_continuum(rng, z, cfg)
        lines, civ_shift = qso_line_profile(rng, z, cfg)
        lines += np.float32(1.0)
        lines *= cont
        model = lines
        info["ALPHA"] = alpha
        info["CIV_SHIFT"] = civ_shift
        info["TEMPLATEID"] = np.full(n, -1, dtype=np.int64)
        forest_in_template = False
    else:
        model, tmpl_id, forest_in_template = templates.qso(rng, z, _WAVE)
        info["ALPHA"] = np.full(n, np.nan)
        info["CIV_SHIFT"] = np.zeros(n)
        info["TEMPLATEID"] = tmpl_id
    if cfg.forest:
        # chunks of similar redshift: each chunk only needs the pixels blueward of its highest Lya
        order = np.argsort(z, kind="stable")
        for start in range(0, n, 64):
            sel = order[start : start + 64]
            tau = igm.forest_tau(
                _WAVE,
                z[sel],
                rng,
                sigma_g=cfg.forest_sigma_g,
                corr_px=cfg.forest_corr_px,
                fit=cfg.forest_fit,
                lyb=cfg.forest_lyb,
            )
            m = tau.shape[1]
            if m:
                np.negative(tau, out=tau)
                np.exp(tau, out=tau)
                model[sel, :m] *= tau
    if cfg.lyman_limit:
        info["N_LLS"] = _lyman_limit_systems(rng, model, z, cfg)
    else:
        info["N_LLS"] = np.zeros(n, dtype=np.int64)
    is_bal, bi, ai, lobal = _insert_bals(rng, model, z, cfg)
    dlas, n_dla = _insert_dlas(rng, model, z, tid, cfg)
    info.update(
        IS_BAL=is_bal,
        BI_CIV=bi,
        AI_CIV=ai,
        LOBAL=lobal,
        N_DLA=n_dla,
        DLAS=dlas,
        FOREST_IN_TEMPLATE=np.full(n, forest_in_template),
    )
    return model, info


# ------------------------------------------------------------------------------------- stars
def _star_subtype(teff: NDArray[np.float64]) -> NDArray[np.str_]:
    edges = np.array([3700.0, 5200.0, 6000.0, 7500.0, 10000.0, 30000.0])
    names = np.array(["M", "K", "G", "F", "A", "B", "O"])
    return names[np.searchsorted(edges, teff)]


def _make_stars(
    rng: np.random.Generator, n: int, cfg: SpectraSimConfig, templates: Any
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    rv = rng.uniform(-cfg.star_rv_kms, cfg.star_rv_kms, n)
    z = rv / instrument.C_KMS
    u = rng.uniform(0.0, 1.0, n)
    kind = np.where(
        u < cfg.star_wd_fraction,
        "WD",
        np.where(u < cfg.star_wd_fraction + cfg.star_cv_fraction, "CV", "STAR"),
    )
    lo, hi = cfg.star_teff_range
    teff = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    teff = np.where(kind == "WD", rng.uniform(8000.0, 30000.0, n), teff)
    teff = np.where(kind == "CV", rng.uniform(10000.0, 20000.0, n), teff)
    sub = np.where(kind == "STAR", _star_subtype(teff), kind)
    if templates is not None:
        model, tmpl = templates.star(rng, teff, z, _WAVE)
        return model, {"Z": z, "TEFF": teff, "SUBTYPE": sub, "TEMPLATEID": tmpl}
    # Planck B_lambda (the +-300 km/s radial velocity is negligible for the continuum)
    x = np.multiply.outer((1.0 / teff).astype(np.float32), (HC_OVER_K / _WAVE).astype(np.float32))
    np.minimum(x, np.float32(80.0), out=x)
    np.expm1(x, out=x)
    cont = np.divide(((_WAVE / 5500.0) ** -5.0).astype(np.float32), x, out=x)
    prof = np.zeros((n, N_MASTER + 1), dtype=np.float32)
    rows = np.arange(n)
    lt = np.log10(teff / 9500.0)
    bal_ew = 1.0 + 9.0 * np.exp(-0.5 * (lt / 0.12) ** 2)
    bal_sig = np.full(n, 5.0)
    wd = kind == "WD"
    bal_ew = np.where(wd, rng.uniform(30.0, 80.0, n), bal_ew)
    bal_sig = np.where(wd, rng.uniform(30.0, 60.0, n), bal_sig)
    cv = kind == "CV"
    bal_ew = np.where(cv, -rng.uniform(20.0, 80.0, n), bal_ew)  # emission
    bal_sig = np.where(cv, 10.0, bal_sig)
    cool = ~(wd | cv)

    def add(lines: tuple[float, ...], ew: NDArray[np.float64], sig: NDArray[np.float64]) -> None:
        for lam in lines:
            _add_gaussians(
                prof,
                rows,
                _px(lam * (1.0 + z)),
                sig * (1 + z) / DWAVE,
                -ew / (np.sqrt(2 * np.pi) * sig),
            )

    add(BALMER, bal_ew, bal_sig)
    add(CA_HK, np.where(cool, 12.0 * np.clip((8000.0 - teff) / 3000.0, 0, 1), 0.0), np.full(n, 3.0))
    add(NA_D, np.where(cool, 3.0 * np.clip((6000.0 - teff) / 2000.0, 0, 1), 0.0), np.full(n, 2.0))
    add(MG_B, np.where(cool, 2.0 * np.clip((6500.0 - teff) / 2500.0, 0, 1), 0.0), np.full(n, 2.0))
    model = cont * np.maximum(np.float32(1.0) + prof[:, :N_MASTER], np.float32(0.02))
    mstar = np.nonzero(cool & (teff < 4000.0))[0]
    for i in mstar:
        d = 0.7 * min((4000.0 - teff[i]) / 1000.0, 1.0)
        for head in TIO_HEADS:
            h = head * (1.0 + z[i])
            j0 = int(np.searchsorted(_WAVE, h))
            j1 = int(np.searchsorted(_WAVE, h + 600.0))
            model[i, j0:j1] *= (1.0 - d * np.exp(-(_WAVE[j0:j1] - h) / 150.0)).astype(np.float32)
    return model, {
        "Z": z,
        "TEFF": teff,
        "SUBTYPE": sub,
        "TEMPLATEID": np.full(n, -1, dtype=np.int64),
    }


# ----------------------------------------------------------------------------------- galaxies
GALAXY_SUBTYPES = ("ELG", "LRG", "BGS")
_GAL_Z = {"ELG": (0.6, 1.6), "LRG": (0.3, 1.1), "BGS": (0.01, 0.4)}
_GAL_D4000 = {"ELG": (1.1, 1.4), "LRG": (1.7, 2.2), "BGS": (1.2, 2.0)}
_GAL_YOUNG = {"ELG": (0.6, 1.0), "LRG": (0.0, 0.1), "BGS": (0.1, 0.7)}
_GAL_HA_EW = {"ELG": (30.0, 150.0), "LRG": (0.0, 3.0), "BGS": (2.0, 40.0)}


def _make_galaxies(
    rng: np.random.Generator, n: int, cfg: SpectraSimConfig, templates: Any
) -> tuple[NDArray[np.float32], dict[str, Any]]:
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
        cont, tmpl = templates.galaxy(rng, sub, z, _WAVE)
    else:
        tmpl = np.full(n, -1, dtype=np.int64)
        lam_rest = _WAVE32[None, :] / (1.0 + z).astype(np.float32)[:, None]
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
        sig = lam * sigv / instrument.C_KMS
        _add_gaussians(
            prof,
            rows,
            _px(lam * (1.0 + z)),
            sig * (1.0 + z) / DWAVE,
            ew / (np.sqrt(2 * np.pi) * sig),
        )
    if templates is not None:  # template spectra carry their own lines
        return np.asarray(cont, dtype=np.float32), {
            "Z": z,
            "SUBTYPE": sub,
            "D4000": np.full(n, np.nan),
            "TEMPLATEID": tmpl,
        }
    model = cont * (np.float32(1.0) + prof[:, :N_MASTER])
    return model, {"Z": z, "SUBTYPE": sub, "D4000": d4000, "TEMPLATEID": tmpl}


# ------------------------------------------------------------------------------------- driver
_TRUTH_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("TARGETID", np.int64),
    ("OBJTYPE", "U6"),
    ("SUBTYPE", "U10"),
    ("SOURCETYPE", "U6"),
    ("Z", np.float64),
    ("MAG", np.float32),
    ("MAGFILTER", "U8"),
    ("IS_BAL", bool),
    ("BI_CIV", np.float32),
    ("AI_CIV", np.float32),
    ("LOBAL", bool),
    ("N_DLA", np.int16),
    ("N_LLS", np.int16),
    ("TEFF", np.float32),
    ("D4000", np.float32),
    ("ALPHA", np.float32),
    ("CIV_SHIFT", np.float32),
    ("TEMPLATEID", np.int64),
    ("FOREST_IN_TEMPLATE", bool),
    ("EXPFACTOR", np.float32),
    ("DEAD_FIBRE", bool),
    ("Z_CONF", np.int16),
    ("SNR_MEDIAN", np.float32),
    ("SNR_1420", np.float32),
)


def _empty_truth(n: int) -> dict[str, NDArray[Any]]:
    t: dict[str, NDArray[Any]] = {}
    for name, dt in _TRUTH_COLUMNS:
        if name in ("TEFF", "D4000", "ALPHA", "BI_CIV", "AI_CIV", "CIV_SHIFT"):
            t[name] = np.full(n, np.nan if name in ("TEFF", "D4000", "ALPHA") else 0.0, dtype=dt)
        elif name == "TEMPLATEID":
            t[name] = np.full(n, -1, dtype=dt)
        else:
            t[name] = np.zeros(n, dtype=dt)
    return t


def targetid_base(seed: int) -> int:
    """First TARGETID of a run: (seed mod 2^20) 10^7 + 1 (DLAID = TARGETID 1000 + k fits int64)."""
    return (int(seed) % (1 << 20)) * 10_000_000 + 1


def _simulate_batch(
    rng: np.random.Generator,
    cls: NDArray[np.str_],
    src: NDArray[np.str_],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
    templates: Any,
    out_flux: dict[str, NDArray[np.float32]],
    out_ivar: dict[str, NDArray[np.float32]],
    out_mask: dict[str, NDArray[np.int32]],
) -> tuple[dict[str, NDArray[Any]], list[dict[str, Any]], NDArray[np.float32]]:
    """One batch of spectra; fills ``out_*`` (views of the output arrays) and returns truth, DLAs,
    model.
    """
    n = cls.size
    model = np.empty((n, N_MASTER), dtype=np.float32)
    truth = _empty_truth(n)
    truth["TARGETID"][:] = tid
    truth["OBJTYPE"][:] = cls
    truth["SOURCETYPE"][:] = src
    truth["MAGFILTER"][:] = "r"
    mags = np.zeros(n)
    dlas: list[dict[str, Any]] = []
    # ---- quasars (also the sources of BAD spectra drawn as QSO)
    iq = np.nonzero(src == "QSO")[0]
    if iq.size:
        if cfg.qso_zmag_table:
            z, mags[iq] = draw_zmag(
                rng,
                iq.size,
                load_zmag_table(cfg.qso_zmag_table),
                (cfg.qso_z_min, cfg.qso_z_max),
                cfg.qso_mag_range,
            )
        else:
            hz = rng.uniform(0.0, 1.0, iq.size) < cfg.qso_hz_fraction
            zlo = min(max(cfg.qso_z_split, cfg.qso_z_min), cfg.qso_z_max)
            z = np.where(
                hz,
                rng.uniform(zlo, cfg.qso_z_max, iq.size),
                rng.uniform(cfg.qso_z_min, zlo, iq.size),
            )
            mags[iq] = _power_law_mags(rng, iq.size, *cfg.qso_mag_range, cfg.mag_slope)
        m, info = _make_qsos(rng, z, tid[iq], cfg, templates)
        model[iq] = m
        truth["Z"][iq] = z
        truth["SUBTYPE"][iq] = np.where(z >= cfg.qso_z_split, "HZ", "LZ")
        for k in QSO_INFO_COLUMNS:
            truth[k][iq] = info[k]
        dlas = info["DLAS"]
    # ---- stars
    js = np.nonzero(src == "STAR")[0]
    if js.size:
        mags[js] = _power_law_mags(rng, js.size, *cfg.star_mag_range, cfg.mag_slope)
        m, info = _make_stars(rng, js.size, cfg, templates)
        model[js] = m
        for k in ("Z", "TEFF", "SUBTYPE", "TEMPLATEID"):
            truth[k][js] = info[k]
    # ---- galaxies
    jg = np.nonzero(src == "GALAXY")[0]
    if jg.size:
        mags[jg] = _power_law_mags(rng, jg.size, *cfg.galaxy_mag_range, cfg.mag_slope)
        m, info = _make_galaxies(rng, jg.size, cfg, templates)
        model[jg] = m
        for k in ("Z", "SUBTYPE", "D4000", "TEMPLATEID"):
            truth[k][jg] = info[k]
    # ---- normalise to the drawn r magnitude (synthetic photometry of the noise-free model)
    m0 = instrument.synthetic_mags(model)
    mr = np.where(np.isfinite(m0["r"]), m0["r"], mags)
    dm = mags - mr
    scale = (10.0 ** (-0.4 * dm)).astype(np.float32)
    model *= scale[:, None]
    truth["MAG"][:] = mags
    truth["_FLUX"] = np.stack(
        [
            np.where(np.isfinite(m0[b]), 10.0 ** (-0.4 * (m0[b] + dm - 22.5)), 0.0)
            for b in ("g", "r", "z")
        ],
        axis=1,
    ).astype(np.float32)
    # ---- BAD modes
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
    s0 = np.searchsorted(_WAVE, 1420.0 * (1.0 + z))
    s1 = np.searchsorted(_WAVE, 1480.0 * (1.0 + z))
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
        # corruptions
        kill = dead | (dead_arm == a)
        kill[ib[bad_mode == "ZERO_IVAR"]] = True
        mk[kill] |= MASK_BADFIBER
        iv[kill] = 0.0
        obs[kill] = 0.0
        im = ib[bad_mode == "MASKED"]
        if im.size:
            frac = rng.uniform(0.55, 0.95, im.size)
            sel = rng.uniform(0.0, 1.0, (im.size, npx)) < frac[:, None]
            mk[im] |= np.where(sel, MASK_BADPIX, 0).astype(np.int32)
            ivs = iv[im]
            ivs[sel] = 0.0
            iv[im] = ivs
        inan = ib[bad_mode == "NAN_FLUX"]
        if inan.size:
            nanpix = rng.uniform(0.0, 1.0, (inan.size, npx)) < 0.5
            sub = obs[inan]
            sub[nanpix] = np.nan
            obs[inan] = sub
            ivs = iv[inan]
            ivs[nanpix] = 0.0
            iv[inan] = ivs
            mk[inan] |= np.where(nanpix, MASK_BADPIX, 0).astype(np.int32)
    truth["SNR_MEDIAN"][:] = np.median(np.concatenate(snr_parts, axis=1), axis=1)
    truth["SNR_1420"][:] = np.where(snr_den > 0, snr_num / np.maximum(snr_den, 1), -1.0)
    fib = np.zeros(n, dtype=np.int32)
    fib[dead] |= FIBERSTATUS_DEAD
    fib[ib[bad_mode == "ZERO_IVAR"]] |= FIBERSTATUS_DEAD
    truth["_FIBERSTATUS"] = fib
    return truth, dlas, model


def simulate_spectra(
    n: int,
    seed: int,
    *,
    config: SpectraSimConfig | None = None,
    mix: dict[str, float] | None = None,
    templates: str | os.PathLike[str] | Any | None = None,
    return_model: bool = False,
) -> tuple[Spectra, dict[str, Table]]:
    """Simulate ``n`` DESI-like spectra.

    Parameters
    ----------
    n : int
        Number of spectra.
    seed : int
        Seed of the ``numpy.random.Generator``; also fixes the TARGETIDs (:func:`targetid_base`).
    config : SpectraSimConfig, optional
        Defaults to ``SpectraSimConfig()``.
    mix : dict, optional
        Class fractions ``{"qso": .., "star": .., "galaxy": .., "bad": ..}`` overriding the
        config's; without ``bad`` the BAD share stays ``config.frac_bad`` and the others are
        rescaled.
    templates : path-like, optional
        Template folder (e.g. ``../shared/data/templates``) for the template mode, or a loaded
        :class:`surveynet.sim.templates.TemplateLibrary`.
    return_model : bool
        Also return the noise-free model before the LSF, on the 3600-9824 A master grid
        (:func:`surveynet.sim.instrument.master_wave`), as ``truth["MODEL"]["FLUX"]`` (n, 7781); for
        tests.

    Returns
    -------
    spectra : Spectra
        Bands b/r/z, flux and ivar in 1e-17 erg/s/cm^2/A (float32), mask (int32), resolution
        (n, 11, n_pix) float32 (shared rows, read-only view) unless ``config.resolution`` is False.
    truth : dict of str to Table
        ``TRUTH`` (one row per spectrum: TARGETID, OBJTYPE QSO/STAR/GALAXY/BAD, SUBTYPE, SOURCETYPE,
        Z, MAG, MAGFILTER, IS_BAL, BI_CIV, AI_CIV, LOBAL, N_DLA, N_LLS, TEFF, D4000, ALPHA,
        CIV_SHIFT, TEMPLATEID, FOREST_IN_TEMPLATE, EXPFACTOR, DEAD_FIBRE, Z_CONF, SNR_MEDIAN,
        SNR_1420) and
        ``DLA_META`` (TARGETID, Z_DLA, NHI, DLAID = TARGETID * 1000 + k, Z_QSO).

    Examples
    --------
    >>> spec, truth = simulate_spectra(4, seed=1)
    >>> spec.n_spec, spec.flux["b"].shape
    (4, (4, 2751))
    """
    cfg = _apply_mix(config or SpectraSimConfig(), mix)
    lib = _load_templates(templates, cfg)
    plan = _plan(n, seed, cfg)
    return _run_rows(plan, 0, n, cfg, lib, return_model=return_model)


@dataclass(frozen=True)
class _Plan:
    """Run-level draws: classes, BAD sources and TARGETIDs for all rows (cheap, from the seed)."""

    seed: int
    cls: NDArray[np.str_]
    src: NDArray[np.str_]
    tid: NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.cls.size)


def _load_templates(templates: Any, cfg: SpectraSimConfig) -> Any:
    if templates is None:
        return None
    from surveynet.sim.templates import TemplateLibrary

    if isinstance(templates, TemplateLibrary):
        return templates
    return TemplateLibrary.load(templates, forest_fit=cfg.forest_fit)


def _plan(n: int, seed: int, cfg: SpectraSimConfig) -> _Plan:
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    counts = _quotas(n, np.array([cfg.frac_qso, cfg.frac_star, cfg.frac_galaxy, cfg.frac_bad]))
    cls = np.repeat(np.array(CLASSES), counts)
    cls = cls[rng.permutation(n)] if n else cls
    src = cls.copy()
    ib = np.nonzero(cls == "BAD")[0]
    if ib.size:
        good = np.array([cfg.frac_qso, cfg.frac_star, cfg.frac_galaxy])
        good = good / good.sum() if good.sum() > 0 else np.array([1.0, 0.0, 0.0])
        src[ib] = np.array(CLASSES[:3])[rng.choice(3, size=ib.size, p=good)]
    tid = targetid_base(seed) + np.arange(n, dtype=np.int64)
    return _Plan(seed=int(seed), cls=cls, src=src, tid=tid)


def _batch_rng(seed: int, batch: int) -> np.random.Generator:
    """Generator of one batch, ``default_rng([seed, batch])``: any batch can be made alone."""
    return np.random.default_rng([int(seed) % (1 << 63), int(batch)])


def _run_rows(
    plan: _Plan,
    start: int,
    stop: int,
    cfg: SpectraSimConfig,
    lib: Any,
    *,
    return_model: bool = False,
) -> tuple[Spectra, dict[str, Table]]:
    """Spectra and truth of rows ``start:stop`` of a plan (simulating the batches covering them)."""
    bs = cfg.batch_size
    b_lo, b_hi = start // bs, (stop + bs - 1) // bs if stop > start else start // bs
    r0 = b_lo * bs
    r1 = min(b_hi * bs, plan.n)
    nrow = max(r1 - r0, 0)
    waves = {b: instrument.arm_wave(b) for b in BANDS}
    flux = {b: np.empty((nrow, waves[b].size), dtype=np.float32) for b in BANDS}
    ivar = {b: np.empty((nrow, waves[b].size), dtype=np.float32) for b in BANDS}
    mask = {b: np.empty((nrow, waves[b].size), dtype=np.int32) for b in BANDS}
    parts = []
    models = []
    for bi in range(b_lo, b_hi):
        s, e = bi * bs, min(plan.n, (bi + 1) * bs)
        rng = _batch_rng(plan.seed, bi)
        t, d, m = _simulate_batch(
            rng,
            plan.cls[s:e],
            plan.src[s:e],
            plan.tid[s:e],
            cfg,
            lib,
            {b: flux[b][s - r0 : e - r0] for b in BANDS},
            {b: ivar[b][s - r0 : e - r0] for b in BANDS},
            {b: mask[b][s - r0 : e - r0] for b in BANDS},
        )
        t["_RA"], t["_DEC"] = _sky_positions(rng, e - s)
        parts.append((t, d))
        if return_model:
            models.append(m)
    keys = (*[c for c, _ in _TRUTH_COLUMNS], "_FIBERSTATUS", "_FLUX", "_RA", "_DEC")
    if parts:
        tcols = {k: np.concatenate([p[0][k] for p in parts]) for k in keys}
    else:
        tcols = dict(_empty_truth(0))
        tcols.update(
            _FIBERSTATUS=np.zeros(0, np.int32),
            _FLUX=np.zeros((0, 3), np.float32),
            _RA=np.zeros(0),
            _DEC=np.zeros(0),
        )
    # trim to start:stop
    sl = slice(start - r0, stop - r0)
    n = max(stop - start, 0)
    tcols = {k: v[sl] for k, v in tcols.items()}
    flux = {b: flux[b][sl] for b in BANDS}
    ivar = {b: ivar[b][sl] for b in BANDS}
    mask = {b: mask[b][sl] for b in BANDS}
    resolution = None
    if cfg.resolution:
        resolution = {
            b: np.broadcast_to(
                instrument.resolution_data(cfg.lsf_sigma(b), waves[b].size),
                (n, instrument.N_DIAG, waves[b].size),
            )
            for b in BANDS
        }
    fibermap = _fibermap(tcols, n, start)
    truth_tab = Table({name: np.asarray(tcols[name], dtype=dt) for name, dt in _TRUTH_COLUMNS})
    truth_tab["MAG"].unit = "mag"
    truth_tab["BI_CIV"].unit = "km/s"
    truth_tab["AI_CIV"].unit = "km/s"
    truth_tab["CIV_SHIFT"].unit = "km/s"
    truth_tab["TEFF"].unit = "K"
    keep = set(np.asarray(tcols["TARGETID"]).tolist())
    rows = [r for p in parts for r in p[1] if r["TARGETID"] in keep]
    dla = Table(
        {
            "TARGETID": np.array([r["TARGETID"] for r in rows], dtype=np.int64),
            "Z_DLA": np.array([r["Z_DLA"] for r in rows], dtype=np.float64),
            "NHI": np.array([r["NHI"] for r in rows], dtype=np.float64),
            "DLAID": np.array([r["DLAID"] for r in rows], dtype=np.int64),
            "Z_QSO": np.array([r["Z_QSO"] for r in rows], dtype=np.float64),
        }
    )
    spectra = Spectra(
        bands=BANDS,
        wave=waves,
        flux=flux,
        ivar=ivar,
        fibermap=fibermap,
        mask=mask,
        resolution=resolution,
        meta={"SIMSEED": plan.seed, "SIMMODE": "template" if lib is not None else "parametric"},
        source=None,
    )
    truth = {"TRUTH": truth_tab, "DLA_META": dla}
    if return_model:
        allm = np.concatenate(models) if models else np.zeros((0, N_MASTER), np.float32)
        truth["MODEL"] = Table({"FLUX": allm[sl]})
    return spectra, truth


def _sky_positions(
    rng: np.random.Generator, n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Uniform positions on the sphere within -10 < Dec < 70 deg (design default)."""
    ra = rng.uniform(0.0, 360.0, n)
    lo, hi = np.sin(np.radians(-10.0)), np.sin(np.radians(70.0))
    dec = np.degrees(np.arcsin(rng.uniform(lo, hi, n)))
    return ra, dec


def _fibermap(tcols: dict[str, NDArray[Any]], n: int, start: int) -> Table:
    fm = Table()
    fm["TARGETID"] = np.asarray(tcols["TARGETID"], dtype=np.int64)
    fm["TARGET_RA"] = np.asarray(tcols["_RA"], dtype=np.float64)
    fm["TARGET_DEC"] = np.asarray(tcols["_DEC"], dtype=np.float64)
    fm["FIBER"] = (start + np.arange(n, dtype=np.int32)) % 5000
    fm["OBJTYPE"] = np.full(n, "TGT", dtype="U3")
    fm["COADD_FIBERSTATUS"] = np.asarray(tcols["_FIBERSTATUS"], dtype=np.int32)
    flux = np.asarray(tcols["_FLUX"], dtype=np.float32).reshape(n, 3)
    for k, b in enumerate("GRZ"):
        fm[f"FLUX_{b}"] = flux[:, k]
    fm["TARGET_RA"].unit = "deg"
    fm["TARGET_DEC"].unit = "deg"
    return fm


# ------------------------------------------------------------------------------------- files
def truth_qso_table(truth: Table) -> Table:
    """TRUTH_QSO: quasar rows with BAL and line metadata (QuasarNET BAL label: BI_CIV > 0)."""
    q = truth[truth["SOURCETYPE"] == "QSO"]
    cols = ["TARGETID", "Z", "MAG", *QSO_INFO_COLUMNS, "SNR_1420"]
    return Table(q[cols], copy=True)


def simulate_to_files(
    outdir: str | os.PathLike[str],
    n: int,
    seed: int,
    n_files: int = 1,
    overwrite: bool = False,
    quiet: bool = True,
    **kw: Any,
) -> tuple[list[Path], Path]:
    """Simulate ``n`` spectra and write ``n_files`` DESI coadd files plus ``truth.fits`` into
    ``outdir``.

    Parameters
    ----------
    outdir : path-like
        Output folder (created).
    n, seed : int
        As :func:`simulate_spectra`.
    n_files : int
        Number of ``coadd-NNN.fits`` files (spectra split in contiguous chunks).
    overwrite : bool
        Replace existing files; otherwise FileExistsError before anything is written.
    quiet : bool
        Hide the progress bar (one tick per written file).
    **kw
        ``config``, ``mix``, ``templates`` for :func:`simulate_spectra`.

    Returns
    -------
    coadds : list of Path
    truth : Path
        ``truth.fits`` with PRIMARY provenance, TRUTH, DLA_META and TRUTH_QSO HDUs.
    """
    from surveynet.config import config_hash, to_dict
    from surveynet.io.desi import write_coadd
    from surveynet.io.fits import atomic_path, provenance_header, write_catalog

    if n_files < 1:
        raise ConfigError(f"n_files must be >= 1, got {n_files}")
    out = Path(outdir)
    coadd_paths = [out / f"coadd-{k:03d}.fits" for k in range(n_files)]
    truth_path = out / "truth.fits"
    if not overwrite:
        for p in [*coadd_paths, truth_path]:
            if p.exists():
                raise FileExistsError(
                    f"{p} exists; pass overwrite=True (--overwrite) to replace it"
                )
    cfg = _apply_mix(kw.pop("config", None) or SpectraSimConfig(), kw.pop("mix", None))
    templates = kw.pop("templates", None)
    if kw:
        raise TypeError(f"unexpected keyword arguments {sorted(kw)}")
    from astropy.table import vstack

    lib = _load_templates(templates, cfg)
    plan = _plan(n, seed, cfg)
    chash = config_hash(cfg)
    extra = {
        "SIMMODE": "template" if lib is not None else "parametric",
        "NSPEC": n,
        "NFILES": n_files,
    }
    if templates is not None:
        extra["TEMPLDIR"] = str(templates)[-60:]
    bounds = np.linspace(0, n, n_files + 1).astype(int)
    truths, dlas = [], []
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc="simulate", unit="spec", disable=quiet)
    for k, path in enumerate(coadd_paths):
        # one file at a time: memory ~ one file's spectra (batches are seeded independently)
        sub, tr = _run_rows(plan, int(bounds[k]), int(bounds[k + 1]), cfg, lib)
        if sub.resolution is not None:  # shared rows are a broadcast view: materialise per file
            sub.resolution = {
                b: np.ascontiguousarray(r, dtype=np.float32) for b, r in sub.resolution.items()
            }
        hdr = provenance_header(
            pipeline="simulate", config_hash=chash, seed=seed, extra={**extra, "FILEIDX": k}
        )
        write_coadd(path, sub, header=hdr, overwrite=overwrite)
        bar.update(int(bounds[k + 1]) - int(bounds[k]))
        truths.append(tr["TRUTH"])
        dlas.append(tr["DLA_META"])
        del sub
    bar.close()
    truth_all = vstack(truths) if len(truths) > 1 else truths[0]
    dla_all = vstack(dlas) if len(dlas) > 1 else dlas[0]
    hdr = provenance_header(pipeline="simulate", config_hash=chash, seed=seed, extra=extra)
    import json

    cfg_json = json.dumps(to_dict(cfg), sort_keys=True)
    tables = {
        "TRUTH": truth_all,
        "DLA_META": dla_all,
        "TRUTH_QSO": truth_qso_table(truth_all),
    }
    write_catalog(truth_path, tables, hdr, overwrite=overwrite)
    with atomic_path(out / "simulate_config.json", overwrite=True) as tmp:
        tmp.write_text(cfg_json + "\n")
    log.info("wrote %d coadd file(s) and %s", n_files, truth_path)
    return coadd_paths, truth_path
