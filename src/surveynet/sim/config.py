"""Configuration of the spectral mocks: :class:`SpectraSimConfig`, named presets, class mixes.

Every knob of :func:`surveynet.sim.spectra.simulate_spectra` is a field of the frozen
:class:`SpectraSimConfig`; :data:`PRESETS` names the sets used by the pipelines (``generic``,
``qso``, ``dla``) and :func:`parse_mix` / :func:`apply_mix` handle the ``--mix`` class fractions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from surveynet.errors import ConfigError
from surveynet.sim import igm, instrument
from surveynet.sim.instrument import BANDS

__all__ = [
    "BAL_SOURCES",
    "PRESETS",
    "STAR_LIBRARIES",
    "SpectraSimConfig",
    "apply_mix",
    "parse_mix",
    "preset_config",
]

#: values of ``star_library``
STAR_LIBRARIES = ("pickles", "redrock", "mixed")
#: values of ``bal_source``
BAL_SOURCES = ("parametric", "templates", "random")


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
    - widened template family (template mode only; the defaults reproduce the earlier template
      mocks draw for draw, and a non-default value without ``templates`` raises
      :class:`~surveynet.errors.ConfigError`):

      - ``star_library``: ``"pickles"`` (Pickles spectrum nearest the drawn T_eff, with the
        ``star_wd_fraction``/``star_cv_fraction`` labels), ``"redrock"`` (every star a redrock
        archetype, :meth:`~surveynet.sim.templates.TemplateLibrary.redrock_star`) or ``"mixed"``
        (each star redrock with probability ``star_redrock_share``, else Pickles). Redrock stars
        have SUBTYPE A, B, F, G, K, M, WD or CV drawn with the weights
        ``star_redrock_fractions`` (that order; normalised) and TEFF NaN. The default weights
        (A 2, B 1, F 7, G 10, K 30, M 35, WD 12, CV 3 %) are a design choice: the stellar
        contaminants of DESI quasar targets are mostly K and M dwarfs; white dwarfs and CVs are
        kept as the blue contaminants.
      - ``star_bands``: share of the Pickles main-sequence stars (with ``star_library``
        ``"pickles"`` or ``"mixed"``) that get 1-4 synthetic molecular bands
        (:func:`surveynet.sim.stars.molecular_bands`): a sharp band head at an observed
        wavelength uniform in 3,800-9,800 A, depth 0.2-0.9, decaying
        exponentially to the red or to the blue over 30-400 A (log-uniform), the shape of the
        TiO, VO, CaH, C2 and CN bands of late-type and carbon stars. A generic family, so that a
        model can learn that a sharp break with a smooth recovery need not be Lyman-alpha
        without being shown the held-out archetypes. Design choice; default 0 (off).
      - ``star_cv_lines``: the Pickles-library CVs (hot Pickles spectra) get broad
        Balmer and helium emission lines (:func:`surveynet.sim.stars.cv_emission`), as the
        parametric mode's CVs have Balmer emission. Default False (the earlier template mocks).
      - ``bal_source``: ``"parametric"`` (Gaussian troughs, above) or ``"templates"``: each
        BAL (same ``bal_fraction`` and ``bal_z_min`` draw) multiplies one of the 53 desisim
        ``TEMP`` profiles with BI_CIV or AI_CIV > 0 in the rest frame
        (:func:`surveynet.sim.absorbers.insert_bal_templates`);
        truth BI_CIV/AI_CIV are the template's catalogue values (BI_CIV may be 0: AI-only
        absorbers), IS_BAL True, LOBAL False.
        ``"random"`` (either mode): 1-4 troughs per BAL of random shape,
        1 - d exp(-|(v - v_c) / w|^p) with v_c 1,000-25,000 km/s, w 300-8,000 km/s, p 1.5-8
        (Gaussian to flat-bottomed) and d 0.2-1 (:func:`surveynet.sim.igm.random_bal_profile`);
        SiIV, NV, OVI and Lyman-alpha absorb a random fraction (0.2-1) of CIV's depth. Not
        redrawn: truth BI_CIV/AI_CIV are measured on the CIV profile (BI_CIV may be 0), IS_BAL
        True. A generic family (design choice), so that a model can be trained without the
        real troughs and tested on them.
      - ``qso_host``: add host-galaxy light (KC96 elliptical/S0/Sa/Sb) to quasars with z <
        ``qso_host_z_max`` (<= 0.9, so that 5100 A rest stays on the grid), with a host/AGN
        f_lambda ratio at 5100 A rest log-uniform in ``qso_host_ratio_range``. Design choice
        (0.05, 1.5), bracketing the mean L_host/L_AGN(5100 A) of SDSS quasars of log L_5100 =
        43.5-45 erg/s in Shen et al. (2011, ApJS 194, 45, eq. 1: ~0.8 at 1e44 erg/s, ~0.2 at
        3e44) and allowing host-dominated faint objects.
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
    qso_host: bool = False
    qso_host_z_max: float = 0.8
    qso_host_ratio_range: tuple[float, float] = (0.05, 1.5)
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
    bal_source: str = "parametric"
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
    star_library: str = "pickles"
    star_redrock_fractions: tuple[float, ...] = (0.02, 0.01, 0.07, 0.10, 0.30, 0.35, 0.12, 0.03)
    star_redrock_share: float = 0.5
    star_bands: float = 0.0
    star_cv_lines: bool = False
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

    @property
    def widened(self) -> bool:
        """True when a widened-template option (stars, bands, BALs, hosts) is not its default."""
        return (
            self.star_library != "pickles"
            or self.bal_source == "templates"
            or self.qso_host
            or self.star_bands > 0
            or self.star_cv_lines
        )

    def lsf_sigma(self, band: str) -> float:
        """Gaussian LSF sigma of one arm.

        Parameters
        ----------
        band : {"b", "r", "z"}
            The arm.

        Returns
        -------
        float
            Sigma in pixels.
        """
        return float(self.lsf_sigma_px[BANDS.index(band)])

    def __post_init__(self) -> None:
        """Validate the fields (raises :class:`~surveynet.errors.ConfigError`)."""
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
            "star_redrock_share",
            "star_bands",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        if self.star_library not in STAR_LIBRARIES:
            raise ConfigError(
                f"star_library must be one of {STAR_LIBRARIES}, got {self.star_library!r}"
            )
        fr8 = self.star_redrock_fractions
        if len(fr8) != 8 or min(fr8) < 0 or sum(fr8) <= 0:
            raise ConfigError(
                "star_redrock_fractions needs 8 weights >= 0 (A, B, F, G, K, M, WD, CV) with a "
                f"positive sum, got {fr8}"
            )
        if self.bal_source not in BAL_SOURCES:
            raise ConfigError(f"bal_source must be one of {BAL_SOURCES}, got {self.bal_source!r}")
        lo_h, hi_h = self.qso_host_ratio_range
        if not 0 < lo_h <= hi_h:
            raise ConfigError(
                f"qso_host_ratio_range must be (min, max) with 0 < min, got {(lo_h, hi_h)}"
            )
        if not 0 < self.qso_host_z_max <= 0.9:
            raise ConfigError(f"qso_host_z_max must be in (0, 0.9], got {self.qso_host_z_max}")
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
    """A :class:`SpectraSimConfig` from a named preset plus overrides.

    Parameters
    ----------
    name : {"generic", "qso", "dla", "dla_only"}
        Key of :data:`PRESETS`.
    **overrides
        Field values replacing the preset's.

    Returns
    -------
    SpectraSimConfig

    Raises
    ------
    ConfigError
        Unknown preset or invalid field values.

    Examples
    --------
    >>> preset_config("dla").frac_qso, preset_config("generic", frac_bad=0.0).frac_bad
    (1.0, 0.0)
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return SpectraSimConfig(**{**PRESETS[name], **overrides})


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"qso=0.6,star=0.3,galaxy=0.1"`` into a dict (keys qso/star/galaxy/bad).

    Parameters
    ----------
    text : str
        Comma-separated ``class=fraction`` items.

    Returns
    -------
    dict of str to float

    Raises
    ------
    ConfigError
        Unknown class or a fraction that is not a number.

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


def apply_mix(config: SpectraSimConfig, mix: dict[str, float] | None) -> SpectraSimConfig:
    """Replace the class fractions of ``config`` by those of ``mix``.

    Parameters
    ----------
    config : SpectraSimConfig
        The configuration.
    mix : dict of str to float or None
        Fractions keyed ``qso``, ``star``, ``galaxy``, ``bad``; without a ``bad`` key BAD keeps
        ``config.frac_bad`` and the others are scaled to fill the rest. None or empty: unchanged.

    Returns
    -------
    SpectraSimConfig

    Raises
    ------
    ConfigError
        Unknown class, or negative fractions / no positive fraction.

    Examples
    --------
    >>> c = apply_mix(SpectraSimConfig(), {"qso": 1.0})
    >>> c.frac_qso, c.frac_star, c.frac_bad
    (0.979, 0.0, 0.021)
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
