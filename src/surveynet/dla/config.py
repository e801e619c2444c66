"""Configuration of the DLA core: sightlines, insertion, datasets, catalogue and matching.

Every section is a frozen keyword-only dataclass with a default for every field, so a config can
be read from JSON/YAML with :func:`surveynet.config.from_dict` and overridden with
``--set section.key=value``. The model and training sections live in the models engineer's own
module; :class:`DLACoreConfig` nests the sections owned here (``data``, ``insert``, ``dataset``,
``catalog``, ``match``) and can be nested in turn in the full pipeline config.

Constants come from the anchors (dla.md): ``best_v`` pixel velocities from
zoujiaqi99/dla_cnn:desi/preprocess.py, REST_RANGE and window sizes from
cosmodesi/desi-dlas:desidlas/datasets/datasetting.py, peak finding from
DeepIGM/dla_cnn:dla_cnn/data_model/Prediction.py (``compute_peaks``), matching rules from
desi-dlas ``label_catalog`` (10 A) and DeepIGM vette_test ``score_ml_test`` (|dz| < 0.015).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Speed of light (m/s) as used by the anchor's rebin (zoujiaqi99/dla_cnn:desi/preprocess.py).
C_MS = 2.9979246e8
#: Lyman-alpha and Lyman-beta rest wavelengths (A) used for labels, z_DLA and LYB typing.
LYA_REST = 1215.6701
LYB_REST = 1025.722
#: Constant-velocity pixel sizes (m/s) of the DESI anchor ``best_v`` (1.0 A mock pixels).
BEST_V_MS: dict[str, float] = {"b": 62996.0, "r": 44859.0, "z": 34720.0, "all": 44735.0}
#: Same for SV-like 0.8 A pixels (``best_v_sv``).
BEST_V_SV_MS: dict[str, float] = {"b": 51028.0, "r": 35849.0, "z": 27656.0}


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Reading and preprocessing of quasar sightlines (dla.md section 1).

    Attributes
    ----------
    z_qso_min : float
        Keep quasars with z_qso >= this (mock pipeline 2.33).
    s2n_min : float
        Keep sightlines with S/N >= this (mock pipeline 1; real DESI 2023 used > 0).
    norm_range : tuple of float
        Rest-frame window (A) of the flux normalisation and of the S/N estimate.
    camera : {"b", "r", "z", "all"}
        Camera kept ("b" as in the mock pipeline) or all cameras merged ("all").
    pixel_velocity_ms : float or None
        Constant-velocity pixel size in m/s after rebinning; None takes ``BEST_V_MS[camera]``
        (62,996 m/s for "b", 44,735 m/s for "all"); 0 disables rebinning (native pixels).
    rest_range : tuple of float
        Rest-frame range (A) searched for absorbers: one window per pixel inside it.
    truth_nhi_min : float
        Truth absorbers (DLA_META) with log N_HI > this are attached to sightlines (anchor 19.3).
    truth_wave_min : float
        Truth absorbers must also have (1+z_DLA)*1215.67 > this (A; zoujiaqi99 uses 3600).
    qso_objtype : str
        OBJTYPE (truth files) or SPECTYPE (zbest files) of quasars.
    skip_bal : bool
        Drop quasars the redshift catalogue flags as BAL (``IS_BAL_QN`` of a QuasarNET
        catalogue, ``IS_BAL`` or ``BI_CIV > 0`` of a mock truth file), as the DESI DLA catalogues
        do (BAL troughs of OVI, Lyman-beta, NV and Lyman-alpha mimic DLAs; dla.md 1.1). A
        catalogue without a BAL flag is an error. Off for training: BAL sightlines are the
        negatives that teach the difference (simulation.md 5.2).
    """

    z_qso_min: float = 2.33
    s2n_min: float = 1.0
    norm_range: tuple[float, float] = (1420.0, 1480.0)
    camera: Literal["b", "r", "z", "all"] = "b"
    pixel_velocity_ms: float | None = None
    rest_range: tuple[float, float] = (900.0, 1346.0)
    truth_nhi_min: float = 19.3
    truth_wave_min: float = 3600.0
    qso_objtype: str = "QSO"
    skip_bal: bool = False

    @property
    def velocity_ms(self) -> float:
        """Resolved pixel velocity in m/s (0 = no rebinning)."""
        if self.pixel_velocity_ms is None:
            return BEST_V_MS[self.camera]
        return float(self.pixel_velocity_ms)


@dataclass(frozen=True, kw_only=True)
class InsertConfig:
    """Injection of synthetic absorbers into DLA-free sightlines (dla.md section 2).

    Attributes
    ----------
    nhi_mode : {"dla", "subdla", "high", "mix"}
        N_HI range: DLA [20.3, 22.5], sub-DLA [19.5, 20.3], high [21.2, 22.5], mix [19.3, 22.5]
        (zoujiaqi99/dla_cnn:desi/insert_dlas.py; Parks ``slls`` is 19.5-20.3).
    nhi_distribution : {"uniform", "fn"}
        Uniform in log N_HI (DESI anchor) or drawn from the column-density distribution f(N)
        (Parks 2018; here the Prochaska & Wolfe 2009 Gamma-function fit, see insert.py).
    n_lines : int
        Lyman-series lines: 1 (Lyman-alpha, as the London mocks), 2 (+ Lyman-beta), 3 (+ gamma).
    b_kms : float
        Doppler parameter (km/s).
    fwhm_pix : float
        Gaussian instrumental smoothing of the model, FWHM in pixels (anchor ``hi_model(fwhm=3)``);
        0 disables it.
    max_frac_lya : float
        Absorber observed wavelength < max_frac_lya * 1215.67 * (1 + z_qso) (~3000 km/s blueward).
    min_rest_lyman_limit : float
        Absorber observed wavelength > this * (1 + z_qso) (anchor 912 A).
    wave_min : float
        Absorber observed wavelength >= this (A, anchor 3700).
    overlap : bool
        Add a second absorber ``overlap_px`` pixels away (overlapping pairs).
    overlap_px : tuple of int
        Pixel separation range of an overlapping pair (anchor 30-120).
    noise : {"keep_variance", "none", "parks"}
        "keep_variance": add N(0,1)*err*sqrt(1-F^2), total variance unchanged (DESI anchor);
        "parks": add N(0,1)*err*(1-F) (SDSS anchor); "none": no noise added, error scaled by F.
    """

    nhi_mode: Literal["dla", "subdla", "high", "mix"] = "dla"
    nhi_distribution: Literal["uniform", "fn"] = "uniform"
    n_lines: int = 1
    b_kms: float = 30.0
    fwhm_pix: float = 3.0
    max_frac_lya: float = 0.99
    min_rest_lyman_limit: float = 912.0
    wave_min: float = 3700.0
    overlap: bool = False
    overlap_px: tuple[int, int] = (30, 120)
    noise: Literal["keep_variance", "none", "parks"] = "keep_variance"

    def __post_init__(self) -> None:
        if not 1 <= self.n_lines <= 3:
            raise ValueError(f"insert.n_lines must be 1..3, got {self.n_lines}")
        if self.overlap_px[0] < 1 or self.overlap_px[1] < self.overlap_px[0]:
            raise ValueError(f"insert.overlap_px must be 1 <= lo <= hi, got {self.overlap_px}")


#: log N_HI ranges of the insertion modes (zoujiaqi99/dla_cnn:desi/insert_dlas.py).
NHI_RANGES: dict[str, tuple[float, float]] = {
    "dla": (20.3, 22.5),
    "subdla": (19.5, 20.3),
    "high": (21.2, 22.5),
    "mix": (19.3, 22.5),
}


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """Windows and labels (dla.md sections 1.5 and 3).

    Attributes
    ----------
    kernel : int
        Window length in pixels for the single-channel datasets (400).
    smooth_kernel : int
        Window length of the smoothed 4-channel datasets (600).
    medfilt_sizes : tuple of int
        Median-filter sizes of the extra smoothed channels; channels are [raw, *medfilt_sizes].
    samplerange : int or None
        Positive half-width in pixels; None = int(0.3 * kernel / 2) (60 for 400 px, 90 for 600 px).
    border_factor : int
        Border (label -1) half-width = border_factor * samplerange around each absorber.
    lyb_border : bool
        Also mark +-samplerange around each absorber's Lyman-beta pixel as border.
    pad_npix : int
        Off-spectrum window parts are padded with the mean of the first/last ``pad_npix`` pixels.
    label_wave_min : float
        Absorbers are labelled only at observed wavelength >= this (A; zoujiaqi99 3570).
    balanced : bool
        Per sightline, min(#pos, #neg) random positives and negatives (borders dropped).
    seed : int
        Seed of the balanced sampling.
    """

    kernel: int = 400
    smooth_kernel: int = 600
    medfilt_sizes: tuple[int, ...] = (3, 7, 15)
    samplerange: int | None = None
    border_factor: int = 2
    lyb_border: bool = True
    pad_npix: int = 50
    label_wave_min: float = 3570.0
    balanced: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("kernel", "smooth_kernel"):
            if getattr(self, name) < 2:
                raise ValueError(f"dataset.{name} must be >= 2")
        if any(k < 1 or k % 2 == 0 for k in self.medfilt_sizes):
            raise ValueError(
                f"dataset.medfilt_sizes must be odd and positive, got {self.medfilt_sizes}"
            )

    def half_width(self, kernel: int | None = None) -> int:
        """Positive half-width (``samplerange``) for a window of ``kernel`` pixels."""
        if self.samplerange is not None:
            return int(self.samplerange)
        return int((self.kernel if kernel is None else kernel) * 0.3 / 2)


@dataclass(frozen=True, kw_only=True)
class CatalogConfig:
    """From window/pixel predictions to absorbers (dla.md section 5).

    Attributes
    ----------
    level1 : float
        Classification threshold on the sigmoid confidence (a window votes when conf >= level1).
    peak_thresh : float
        Minimum smoothed vote to accept a peak (``PEAK_THRESH`` = 0.2).
    dip : float
        Two peaks are separated only if the smoothed vote dips below this between them (0.1).
    vote_norm : float or None
        Vote normaliser; None = 80 * samplerange / 60 (80 for +-60 px windows).
    samplerange : int
        Positive half-width of the model's training labels (60 for 400-px windows, 90 for 600).
    boxcar : int
        Box-car width (pixels) summing the vote histogram (5).
    medfilt : int
        Median-filter size applied after the box-car (9).
    edge_px : int
        Peaks within this many pixels of either end of the searched range are ignored (10).
    nhi_radius : int
        N_HI = mean of window predictions over [peak - R, peak + R) (R = 40 DESI, 30 SDSS).
    bias_correct : bool
        Apply the SDSS cubic N_HI bias correction (Parks 2018).
    bias_poly : tuple of float
        Cubic coefficients (highest first) of the SDSS correction: NHI' = polyval(c, NHI).
    zero_negative_offsets : bool
        DESI: windows classified negative vote with offset 0, i.e. for their own pixel (a baseline
        of 1/norm per pixel); SDSS (False): every window votes with its raw offset.
    vote_rounding : {"nearest", "floor"}
        Vote target pixel: nearest pixel of j + offset, or the anchor's unit-bin histogram (floor,
        biased by -0.5 px).
    dla_nhi_min : float
        ABSORBER_TYPE "DLA" at N_HI >= this, else "LYB" (if a Lyman-beta ghost) or "SUBDLA".
    lyb_tolerance : float
        Observed-frame tolerance (A) when looking for the Lyman-alpha partner of a Lyman-beta ghost.
    lyb_dnhi : float
        The partner's N_HI must exceed this peak's by more than this (dex).
    lyb_first : bool
        SDSS order: test LYB before the DLA threshold (DESI tests DLA first).
    centroid_radius : float
        Z_DLA from the sub-pixel centroid of the raw (unrounded) positive votes ``j + offset_j``
        within this many pixels of the peak (0: the peak pixel itself, as the anchor). The
        anchor's integer peak is biased by +0.5 px on even-length flat ridges of the median-
        filtered curve and quantised to one pixel.
    zc_nhi_min : float or None
        Absorbers whose N_HI (step 4) is at least this are placed at the zero crossing of a
        straight line fitted to offset against pixel (:func:`surveynet.dla.catalog.zero_crossing`)
        instead of the vote centroid; None: never. Inside the black core of a strong absorber
        the network predicts offsets shrunk towards 0 (about half the true offset), so the votes
        spread over tens of pixels and their peak wanders, while the pixel where the predicted
        offset changes sign stays on the centre. 21.0 was chosen on the ``test_real`` mock
        (experiments/dla/README.md).
    zc_radius : float
        Pixels whose raw votes lie within this many pixels of the peak (and with confidence
        >= ``level1``) enter the zero-crossing fit; at least ``zc_min_pixels`` are needed.
    zc_min_pixels : int
        Fewer fitted pixels, a slope > -0.05, or a crossing farther than ``zc_radius`` from the
        peak fall back to the vote centroid.
    merge_core : float or None
        Absorbers closer to a stronger one (higher N_HI) than ``merge_core`` times the half-width
        of its black core (optical depth 1, :func:`surveynet.sim.voigt.core_half_width`) are
        merged into it: its position and N_HI are kept, its DLA_CONFIDENCE becomes the larger
        of the two. Inside a strong core the votes can split into two peaks; two absorbers
        inside one black core cannot be told apart from the spectrum. None: no merging. 1.0
        was chosen on the ``test_real`` mock (experiments/dla/README.md).
    refine_iterations : int
        Rounds of the second-stage localiser (``surveynet dla predict --refiner``,
        :class:`surveynet.dla.refine.DLARefiner`) applied to every vote peak before the merge;
        each round crops the sightline at the current position and moves it by the predicted
        offset.
    refine_nhi_weight : float
        The refined absorber's N_HI = (1 - w) x the first stage's + w x the refiner's (predicted on
        the crop centred at the refined position); 0 keeps the first stage's. 0.7 was chosen on
        the ``test_real`` mock (experiments/dla/README.md).
    refine_shifts : int
        Test-time averaging in each refiner's last round: the crop is also taken at the current
        pixel shifted by -k..+k pixels, and the refined position (and the refiner's logit and
        N_HI) is the mean over the 2k + 1 crops of (crop centre + predicted offset). 0: one crop.
        k = 4 lowered sigma(dz) by 1-2 % on the held-out mocks for 3.7x the refiners' time, so it
        is off by default (experiments/dla/README.md, "Twelfth round").
    vet_threshold : float or None
        With a vetter (``surveynet dla predict --vetter``, :mod:`surveynet.dla.vet`), absorbers
        whose probability of being real is below this are dropped; None: the vetter model's own
        threshold; 0 keeps every absorber.
    vet_features : bool
        Add the vetter's input features to the catalogue as columns ``VET_<NAME>`` (what
        ``surveynet dla train --set model.architecture=dla_vetter`` learns from).
    """

    level1: float = 0.5
    peak_thresh: float = 0.2
    dip: float = 0.1
    vote_norm: float | None = None
    samplerange: int = 60
    boxcar: int = 5
    medfilt: int = 9
    edge_px: int = 10
    nhi_radius: int = 40
    bias_correct: bool = False
    bias_poly: tuple[float, float, float, float] = (0.0028149, -0.0646188, -0.0042566, 23.5553)
    zero_negative_offsets: bool = True
    vote_rounding: Literal["nearest", "floor"] = "nearest"
    dla_nhi_min: float = 20.3
    lyb_tolerance: float = 15.0
    lyb_dnhi: float = 0.3
    lyb_first: bool = False
    centroid_radius: float = 4.0
    zc_nhi_min: float | None = 21.0
    zc_radius: float = 15.0
    zc_min_pixels: int = 5
    merge_core: float | None = 1.0
    refine_iterations: int = 3
    refine_nhi_weight: float = 0.7
    refine_shifts: int = 0
    vet_threshold: float | None = None
    vet_features: bool = False

    @property
    def norm(self) -> float:
        """Resolved vote normaliser."""
        return (
            float(self.vote_norm) if self.vote_norm is not None else 80.0 * self.samplerange / 60.0
        )


@dataclass(frozen=True, kw_only=True)
class MatchConfig:
    """Matching predicted absorbers to the truth (dla.md section 6.1).

    Attributes
    ----------
    rule : {"dlambda", "dz"}
        "dlambda": |delta lambda_obs| <= max_dlambda (DESI ``label_catalog``, 10 A);
        "dz": |delta z| < max_dz (Parks ``score_ml_test``, 0.015).
    max_dlambda : float
        Observed-wavelength tolerance in A.
    max_dz : float
        Redshift tolerance.
    allow_lyb : bool
        Let LYB-typed predictions match a truth absorber (DESI: no).
    unique : bool
        A prediction matches at most one truth absorber (DESI: yes).
    truth_nhi_floor : float
        :func:`surveynet.dla.evaluate.evaluate` ignores truth absorbers with log N_HI <= this
        (the anchor keeps DLA_META rows with NHI > 19.3; London mocks list many LLS below it).
    truth_nhi_min : float
        Truth absorbers with log N_HI >= this count in the completeness (20.3 = DLAs).
    dla_nhi_min : float
        A matched prediction counts "as DLA" when its N_HI > this (Parks: 20.2999).
    s2n_bins : tuple of float
        S/N bin edges of the completeness/purity tables.
    nhi_bins : tuple of float
        log N_HI bin edges.
    min_confidence : float
        Predictions with DLA_CONFIDENCE below this are dropped before matching: the purity cut
        of a user who keeps only confident absorbers (0 keeps all; ``--set min_confidence=0.4``).
    """

    rule: Literal["dlambda", "dz"] = "dlambda"
    max_dlambda: float = 10.0
    max_dz: float = 0.015
    allow_lyb: bool = False
    unique: bool = True
    truth_nhi_floor: float = 19.3
    truth_nhi_min: float = 20.3
    dla_nhi_min: float = 20.2999
    s2n_bins: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 1e9)
    nhi_bins: tuple[float, ...] = (19.3, 20.0, 20.3, 20.6, 21.0, 21.5, 23.0)
    min_confidence: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DLACoreConfig:
    """The DLA core sections: ``data``, ``insert``, ``dataset``, ``catalog``, ``match``."""

    data: DataConfig = field(default_factory=DataConfig)
    insert: InsertConfig = field(default_factory=InsertConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
