"""The one configuration root of the DLA pipeline: :class:`DLAConfig` and its sections.

Every command of ``surveynet dla`` (``train``, ``predict``, ``evaluate``) resolves the same
:class:`DLAConfig` from ``--config FILE`` and repeatable ``--set section.key=value``; every
command-line flag is a key of it (the flag is a shortcut that sets the key):

========================  ==========================
flag                      key
========================  ==========================
``--model M`` (repeat)    ``predict.models``
``--refiner M[,M]``       ``predict.refiner``
``--vetter M``            ``predict.vetter``
``--skip-bal``            ``predict.skip_bal``
``--bal MODE``            ``predict.bal``
``--max-sightlines N``    ``data.max_sightlines``
``--seed S``              ``train.seed``
``--init MODEL``          ``train.init``
========================  ==========================

Sections: ``data`` (:class:`DataConfig`, reading sightlines), ``input`` (:class:`InputConfig`,
network inputs), ``dataset`` (:class:`DatasetConfig`, windows and labels), ``insert``
(:class:`InsertConfig`, synthetic absorbers), ``model`` (:class:`ModelSection`, architectures),
``train`` (:class:`TrainConfig`), ``predict`` (:class:`PredictConfig`, vote peaks, refiners,
vetter) and ``evaluate`` (:class:`EvaluateConfig`, matching to the truth). Each section is a
frozen keyword-only dataclass with a default for every field, read with
:func:`surveynet.config.from_dict` (unknown keys rejected).

Saved models written before this root existed store ``config.json["training"]["config"]`` with
only the ``data``, ``dataset``, ``input``, ``model`` and ``train`` sections, and catalogues
configured the peak finder with a flat dict of ``predict`` keys: :func:`migrate_config` turns
any of these shapes into a :class:`DLAConfig` dict, and :func:`training_config` reads the
training config of a saved model in either shape.

Constants come from the anchors (dla.md): ``best_v`` pixel velocities from
zoujiaqi99/dla_cnn:desi/preprocess.py, REST_RANGE and window sizes from
cosmodesi/desi-dlas:desidlas/datasets/datasetting.py, peak finding from
DeepIGM/dla_cnn:dla_cnn/data_model/Prediction.py (``compute_peaks``), matching rules from
desi-dlas ``label_catalog`` (10 A) and DeepIGM vette_test ``score_ml_test`` (|dz| < 0.015).
Physical constants come from :mod:`surveynet.constants`; :data:`GRID_C_MS` is the anchor's
pixel-grid convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from surveynet.config import from_dict
from surveynet.constants import DLA_LOG_NHI_MIN

__all__ = [
    "BEST_V_MS",
    "BEST_V_SV_MS",
    "GRID_C_MS",
    "NHI_RANGES",
    "VET_COLUMN_PREFIX",
    "VET_FEATURES",
    "DLAConfig",
    "DataConfig",
    "DatasetConfig",
    "EvaluateConfig",
    "FCNConfig",
    "InputConfig",
    "InsertConfig",
    "ModelSection",
    "PredictConfig",
    "RefinerConfig",
    "TrainConfig",
    "VetterConfig",
    "WindowCNNConfig",
    "migrate_config",
    "training_config",
]

#: The speed of light (m/s) of the anchor's constant-velocity grid, dlnlambda = ln(1 + v /
#: GRID_C_MS) (zoujiaqi99/dla_cnn:desi/preprocess.py ``rebin``: 2.9979246e8, one digit fewer than
#: the SI value :data:`surveynet.constants.C_MS`). A grid convention, not a physical constant: the
#: bundled models' pixel grids are defined with it. With the exact c the grid moves by ~3e-9
#: (relative) and the bundled models' catalogue of the 150-spectrum demo mock by up to 4e-6 in
#: NHI and DLA_CONFIDENCE, so the grid keeps the anchor's value.
GRID_C_MS = 2.9979246e8
#: Constant-velocity pixel sizes (m/s) of the DESI anchor ``best_v`` (1.0 A mock pixels).
BEST_V_MS: dict[str, float] = {"b": 62996.0, "r": 44859.0, "z": 34720.0, "all": 44735.0}
#: Same for SV-like 0.8 A pixels (``best_v_sv``).
BEST_V_SV_MS: dict[str, float] = {"b": 51028.0, "r": 35849.0, "z": 27656.0}

#: log N_HI ranges of the insertion modes (zoujiaqi99/dla_cnn:desi/insert_dlas.py).
NHI_RANGES: dict[str, tuple[float, float]] = {
    "dla": (DLA_LOG_NHI_MIN, 22.5),
    "subdla": (19.5, DLA_LOG_NHI_MIN),
    "high": (21.2, 22.5),
    "mix": (19.3, 22.5),
}

#: The absorber vetter's input features, in order (defined in :mod:`surveynet.dla.vet`; a
#: ``dla_vetter`` model stores them and is refused when they differ).
VET_FEATURES: tuple[str, ...] = (
    "log_votes",
    "pix_conf_max",
    "pix_conf_mean",
    "nhi",
    "nhi_std",
    "log_err",
    "flux",
    "core_flux",
    "core_signif",
    "refine_logit",
    "refine_shift",
    "log_s2n",
    "log_wave",
    "rest_wave",
    "n_peaks",
    "log_err_rel",
    "voigt_lr",
)

#: Catalogue column prefix of the vetter features (``predict.vet_features``): ``VET_<NAME>``.
VET_COLUMN_PREFIX = "VET_"


# ----------------------------------------------------------------------------- data


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
        negatives that teach the difference (simulation.md 5.2). At prediction time
        ``predict.skip_bal`` sets it for every model.
    max_sightlines : int
        ``surveynet dla train --max-sightlines``: use at most this many training sightlines
        (0 = all). It does not change how a sightline is read, so it takes no part in comparing
        two data configs (an ensemble's members must read alike).
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
    max_sightlines: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.max_sightlines < 0:
            raise ValueError(f"data.max_sightlines must be >= 0, got {self.max_sightlines}")

    @property
    def velocity_ms(self) -> float:
        """Resolved pixel velocity in m/s (0 = no rebinning).

        Returns
        -------
        float
            ``pixel_velocity_ms``, or ``BEST_V_MS[camera]`` when it is None.
        """
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
        """Positive label half-width (``samplerange``) for a window of ``kernel`` pixels.

        Parameters
        ----------
        kernel : int, optional
            Window length (default ``self.kernel``).

        Returns
        -------
        int
            ``samplerange`` when set, else ``int(0.3 * kernel / 2)``.

        Examples
        --------
        >>> DatasetConfig().half_width(), DatasetConfig().half_width(600)
        (60, 90)
        """
        if self.samplerange is not None:
            return int(self.samplerange)
        return int((self.kernel if kernel is None else kernel) * 0.3 / 2)


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    """Model inputs and the training subset.

    Attributes
    ----------
    channels : tuple of int
        0 = raw flux, k > 0 = median filter of size k; low S/N: (0, 3, 7, 15); -1 = the 1-sigma
        error capped at ``clip`` (e.g. (0, -1): flux and error).
    s2n_range : tuple of float
        Train on sightlines with s2n_range[0] <= S/N < s2n_range[1]; at prediction time the
        model is applied in this S/N range when paired with another model.
    pad_npix : int
        Edge padding uses the mean of the first/last ``pad_npix`` pixels.
    clip : float
        Flux clipped to [-clip, clip] (the error channel to [0, clip]).
    """

    channels: tuple[int, ...] = (0,)
    s2n_range: tuple[float, float] = (0.0, 1e9)
    pad_npix: int = 50
    clip: float = 10.0


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True, kw_only=True)
class WindowCNNConfig:
    """Sliding-window CNN of Parks et al. 2018 (``Model_v5``; dla.md §4).

    Defaults are the SDSS v7.1 / v6.1.2 shape (DeepIGM/dla_cnn:dla_cnn/localize_model.py,
    ``parameter_names``/``parameters`` columns; 652,101 parameters). The DESI column-0 shape
    (cosmodesi/desi-dlas:desidlas/training/parameterset.py) is :meth:`desi`.

    Attributes
    ----------
    in_channels : int
        Input channels (1 high S/N; 4 = [raw, medfilt 3, 7, 15] low S/N).
    window : int
        Window length in pixels (400 or 600).
    conv_kernels, conv_filters, conv_strides : tuple of 3 int
        The three 'SAME' convolutions (each followed by ReLU).
    pool_kernels, pool_strides : tuple of 3 int
        The three 'SAME' max-pools.
    fc1 : int
        Width of the shared fully connected layer.
    fc2 : tuple of 3 int
        Widths of the classifier / offset / log N_HI branches.
    dropout_keep : float
        Keep probability of dropout after FC1 and FC2 (training only).
    nhi_shift : float
        Constant added to the log N_HI output (0 in the anchor; 20 speeds up training).
    init : {'default', 'anchor'}
        torch default initialisation, or the anchor's truncated normal (sigma 0.1, zero biases).
    """

    in_channels: int = 1
    window: int = 400
    conv_kernels: tuple[int, int, int] = (32, 16, 16)
    conv_filters: tuple[int, int, int] = (100, 96, 96)
    conv_strides: tuple[int, int, int] = (3, 1, 1)
    pool_kernels: tuple[int, int, int] = (7, 6, 6)
    pool_strides: tuple[int, int, int] = (4, 4, 4)
    fc1: int = 350
    fc2: tuple[int, int, int] = (200, 350, 150)
    dropout_keep: float = 0.98
    nhi_shift: float = 0.0
    init: Literal["default", "anchor"] = "default"

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.window < 8:
            raise ValueError("in_channels must be >= 1 and window >= 8")
        if not 0.0 < self.dropout_keep <= 1.0:
            raise ValueError("dropout_keep must be in (0, 1]")

    @classmethod
    def desi(cls, in_channels: int = 1, window: int = 400) -> WindowCNNConfig:
        """DESI column-0 hyper-parameters (dla.md §4.2; ~2.3 M parameters with 4 channels).

        Parameters
        ----------
        in_channels : int
            Input channels.
        window : int
            Window length in pixels.

        Returns
        -------
        WindowCNNConfig
        """
        return cls(
            in_channels=in_channels,
            window=window,
            conv_kernels=(40, 32, 20),
            conv_filters=(100, 256, 128),
            conv_strides=(5, 2, 1),
            pool_kernels=(7, 4, 6),
            pool_strides=(1, 5, 6),
            fc1=500,
            fc2=(700, 500, 150),
            dropout_keep=0.9,
        )


@dataclass(frozen=True, kw_only=True)
class FCNConfig:
    """Fully-convolutional whole-sightline finder (per-pixel logit, offset, log N_HI).

    Two strided stem convolutions reduce the resolution by ``prod(stem_strides)``; residual
    blocks of dilated convolutions (kernel ``block_kernel``, dilation ``d``, ReLU, 1x1 conv, add)
    grow the receptive field; a 1x1 head predicts 3 x ``prod(stem_strides)`` values per coarse
    position that are unshuffled back to full resolution (sub-pixel convolution).

    Attributes
    ----------
    in_channels : int
        Input channels.
    stem_channels : tuple of int
        Output channels of the stem convolutions.
    stem_kernel : int
        Kernel of the stem convolutions (odd).
    stem_strides : tuple of int
        Strides of the stem convolutions.
    width : int
        Channels of the residual blocks (the last stem width must equal it).
    block_kernel : int
        Kernel of the dilated block convolutions (odd).
    dilations : tuple of int
        One residual block per dilation.
    head_hidden : int
        Hidden width of the 1x1 output head.
    nhi_shift : float
        Constant added to the log N_HI output.
    """

    in_channels: int = 1
    stem_channels: tuple[int, ...] = (16, 32)
    stem_kernel: int = 9
    stem_strides: tuple[int, ...] = (2, 2)
    width: int = 32
    block_kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)
    head_hidden: int = 32
    nhi_shift: float = 20.0

    def __post_init__(self) -> None:
        if len(self.stem_channels) != len(self.stem_strides) or not self.stem_channels:
            raise ValueError("stem_channels and stem_strides must have the same non-zero length")
        if self.stem_channels[-1] != self.width:
            raise ValueError("the last stem channel count must equal width")
        if self.stem_kernel % 2 == 0 or self.block_kernel % 2 == 0:
            raise ValueError("stem_kernel and block_kernel must be odd")

    @property
    def factor(self) -> int:
        """Total down-sampling factor of the stem (input length must be a multiple of it).

        Returns
        -------
        int
            The product of ``stem_strides``.
        """
        f = 1
        for s in self.stem_strides:
            f *= s
        return f

    @property
    def receptive_field(self) -> int:
        """Receptive field in input pixels (full width).

        Returns
        -------
        int
            Pixels that influence one output pixel.

        Examples
        --------
        >>> FCNConfig().receptive_field
        540
        """
        rf, jump = 1, 1
        for s in self.stem_strides:
            rf += (self.stem_kernel - 1) * jump
            jump *= s
        for d in self.dilations:
            rf += (self.block_kernel - 1) * d * jump
        return rf + jump - 1  # the sub-pixel head spreads each coarse cell over `jump` pixels


@dataclass(frozen=True, kw_only=True)
class RefinerConfig:
    """Second-stage localiser: a small CNN on a crop centred on one catalogue absorber.

    The first stage (window CNN or FCN with the vote peaks of dla.md §5) places strong absorbers
    10-40 A off in dense forest; the refiner looks at a ``crop``-pixel cut of the sightline centred
    on the catalogue position and predicts [logit that an absorber with log N_HI >= ``nhi_min``
    lies within ``reach`` pixels of the centre, offset of the nearest such absorber (pixels),
    its log N_HI]. Each block is a 'same' convolution (``kernel``), ReLU and max-pool 2; then a
    dense layer of ``hidden`` units and the 3 outputs. Input channels (fixed): flux, 1-sigma
    error capped at ``error_cap`` (and set to it where there is no data), and the rest wavelength
    as (rest - ``rest_center``) / ``rest_scale``.

    Attributes
    ----------
    in_channels : int
        Always 3 (flux, error, rest wavelength).
    crop : int
        Crop length in pixels (a multiple of 2 ** len(widths)); the absorber pixel is at crop // 2.
    widths : tuple of int
        Output channels of the convolution blocks.
    kernel : int
        Convolution kernel (odd).
    hidden : int
        Width of the dense layer.
    reach : float
        Largest |offset| (pixels) at which an absorber counts as the crop's target; also the
        range of the uniform training jitter.
    offset_unit : float
        The offset output is in units of ``offset_unit`` pixels (the loss scale).
    nhi_shift, nhi_scale : float
        log N_HI = output / nhi_scale + nhi_shift.
    error_cap : float
        Errors are capped at this value (no data: flux 0, error = error_cap).
    rest_center, rest_scale : float
        Rest-wavelength channel normalisation (A).
    nhi_min : float
        Training targets are absorbers with log N_HI >= nhi_min.
    jitter_sigma : float
        Training crops: half centred at truth + N(0, jitter_sigma) px, half at truth +
        U(-reach, reach).
    crops_per_absorber : int
        Training crops per target absorber (even).
    negatives_per_sightline : int
        Training crops per sightline centred on a random searched pixel (target or not).
    strong_nhi : float or None
        Absorbers with log N_HI >= strong_nhi get ``strong_crops`` more training crops (the
        strong DLAs whose wide black cores are hardest to centre are rare in f(N)).
    strong_crops : int
        Extra training crops per strong absorber (even; same jitter mix).
    apply_nhi_min : float or None
        Prediction only: in a chain of refiners (``dla predict --refiner A,B``) this model moves
        only the absorbers whose log N_HI, as the previous stage left it, is >= apply_nhi_min
        (a wide-context refiner on a coarser grid for the strong absorbers); None: all.
    """

    in_channels: int = 3
    crop: int = 512
    widths: tuple[int, ...] = (48, 48, 96, 96, 96, 96)
    kernel: int = 7
    hidden: int = 128
    reach: float = 40.0
    offset_unit: float = 10.0
    nhi_shift: float = 20.8
    nhi_scale: float = 2.0
    error_cap: float = 5.0
    rest_center: float = 1100.0
    rest_scale: float = 200.0
    nhi_min: float = 20.0
    jitter_sigma: float = 8.0
    crops_per_absorber: int = 4
    negatives_per_sightline: int = 2
    strong_nhi: float | None = None
    strong_crops: int = 0
    apply_nhi_min: float | None = None

    def __post_init__(self) -> None:
        if self.in_channels != 3:
            raise ValueError("the refiner input has 3 channels (flux, error, rest wavelength)")
        if not self.widths or self.crop % (2 ** len(self.widths)):
            m = 2 ** len(self.widths)
            raise ValueError(f"crop must be a multiple of 2 ** len(widths) ({m})")
        if self.kernel % 2 == 0:
            raise ValueError("kernel must be odd")
        if self.crops_per_absorber % 2 or self.strong_crops % 2:
            raise ValueError(
                "crops_per_absorber and strong_crops must be even (half Gaussian, half uniform)"
            )

    #: Fields that only shape the training crops or the use at prediction (a model may be
    #: fine-tuned with other values).
    TRAINING_FIELDS = (
        "nhi_min",
        "jitter_sigma",
        "crops_per_absorber",
        "negatives_per_sightline",
        "strong_nhi",
        "strong_crops",
        "apply_nhi_min",
    )

    @property
    def flat(self) -> int:
        """Features entering the dense layer.

        Returns
        -------
        int
            ``widths[-1] * crop / 2 ** len(widths)``.
        """
        return self.widths[-1] * (self.crop >> len(self.widths))


@dataclass(frozen=True, kw_only=True)
class VetterConfig:
    """Absorber vetter (:mod:`surveynet.dla.vet`): a logistic regression on per-absorber features.

    Attributes
    ----------
    features : tuple of str
        The input features, in order (:data:`VET_FEATURES`; fixed, stored so that a model of
        other features is refused).
    l2 : float
        L2 penalty per absorber on the standardised weights.
    threshold : float
        Stored with the model: ``surveynet dla predict`` drops absorbers below this probability
        (``predict.vet_threshold`` overrides it). Choose it on a development mock.
    finders, refiners : tuple of str
        The models whose catalogue absorbers the vetter learns from (those it will follow).
    skip_bal : bool
        Leave out BAL quasars of the training mocks, as ``dla predict --skip-bal``.
    workers : int
        Worker processes for the training catalogues (0: in process).
    """

    features: tuple[str, ...] = VET_FEATURES
    l2: float = 1e-3
    threshold: float = 0.0
    finders: tuple[str, ...] = ("dla_fcn", "dla_fcn_lowsnr")
    refiners: tuple[str, ...] = ("dla_refiner", "dla_refiner_wide")
    skip_bal: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        if tuple(self.features) != VET_FEATURES:
            raise ValueError(f"model.vetter.features is fixed: {list(VET_FEATURES)}")
        if self.l2 < 0 or not 0.0 <= self.threshold < 1.0:
            raise ValueError("model.vetter: l2 must be >= 0 and threshold in [0, 1)")


#: Architecture configs, by registered architecture name.
ArchConfig = WindowCNNConfig | FCNConfig | RefinerConfig | VetterConfig


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """Which architecture and the configs of the possible ones.

    Attributes
    ----------
    architecture : {"dla_window_cnn", "dla_fcn", "dla_refiner", "dla_vetter"}
        The architecture ``surveynet dla train`` builds.
    window_cnn, fcn, refiner, vetter : dataclass
        The configs of each architecture.
    """

    architecture: Literal["dla_window_cnn", "dla_fcn", "dla_refiner", "dla_vetter"] = "dla_fcn"
    window_cnn: WindowCNNConfig = field(default_factory=WindowCNNConfig)
    fcn: FCNConfig = field(default_factory=FCNConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    vetter: VetterConfig = field(default_factory=VetterConfig)

    def arch_config(self) -> ArchConfig:
        """The config of the selected architecture.

        Returns
        -------
        WindowCNNConfig, FCNConfig, RefinerConfig or VetterConfig
            The section named by ``architecture``.
        """
        return {
            "dla_window_cnn": self.window_cnn,
            "dla_fcn": self.fcn,
            "dla_refiner": self.refiner,
            "dla_vetter": self.vetter,
        }[self.architecture]


# ----------------------------------------------------------------------------- train


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings shared by the architectures (dla.md §4.3).

    Attributes
    ----------
    epochs, batch_size : int
        Loop length and mini-batch size (windows for the CNN, sightline crops for the FCN).
    lr : float
        Adam learning rate.
    l2 : float
        L2 weight (anchor: 0.005 on conv1, conv2, fc1 and the fc2 branches; not conv3).
    loss_balance : {'mean', 'anchor'}
        'mean': mean cross-entropy + mean offset and masked N_HI squared errors (weights below);
        'anchor': the effective TF1 weighting Σ CE + N·(½Σ offset² + Σ masked ΔN_HI²) + N·L2
        divided by N (dla.md §4.3; same gradients up to the 1/N learning-rate scale).
    w_offset, w_nhi : float
        Weights of the offset (per px², on offsets scaled by ``offset_scale``) and N_HI terms
        in the 'mean' balance.
    offset_scale : float
        Offsets are regressed as offset / offset_scale in the 'mean' balance (the network
        outputs pixels; only the loss is scaled).
    pos_weight : float
        Weight of positive pixels/windows in the cross-entropy ('mean' balance).
    max_windows : int
        Window CNN: at most this many positive (and as many negative) windows per sightline.
    val_fraction : float
        Fraction of sightlines kept for validation.
    patience : int
        Early-stopping patience in epochs (0 = off).
    seed : int
        Seed of weight init, splits and shuffling (``--seed``).
    lr_schedule : {"constant", "cosine"}
        Learning rate per epoch: constant, or cosine decay from ``lr`` to ``lr * lr_min_factor``
        over ``epochs`` (torch ``CosineAnnealingLR`` stepped once per epoch).
    lr_min_factor : float
        Final learning rate of the cosine schedule, as a fraction of ``lr``.
    calibrate_offsets : bool
        After training, store in ``preprocessing.offset_bias`` the median offset residual on the
        validation split (per FCN output phase), subtracted at prediction time.
    calibrate_nhi : bool
        After training, store in ``preprocessing.nhi_bias`` the median log N_HI residual on the
        labelled positive pixels of the validation split, subtracted at prediction time.
    noise_s2n : tuple of float
        FCN noise augmentation, off at (0, 0). With (lo, hi), the training sightlines are those
        with S/N >= lo (``input.s2n_range`` then only says where the model is applied), and in
        every epoch each one is given fresh Gaussian noise that lowers its S/N to a target drawn
        log-uniformly in [lo, hi]: with k = max(1, S/N / target), noise of sigma = e * sqrt(k^2
        - 1) is added, e the continuum-level error (running median, so the added noise does not
        follow the troughs; a sightline already below the target is left as it is). The
        validation split is degraded once, with a fixed seed. Inputs: flux and error channels
        only (0, -1).
    init : str or None
        Start from this saved model's weights (``--init``; directory or bundled name, same
        architecture; fine-tuning); None: fresh weights.
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    l2: float = 0.0
    loss_balance: Literal["mean", "anchor"] = "mean"
    w_offset: float = 1.0
    w_nhi: float = 1.0
    offset_scale: float = 10.0
    pos_weight: float = 1.0
    max_windows: int = 121
    val_fraction: float = 0.1
    patience: int = 0
    seed: int = 0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_min_factor: float = 0.02
    calibrate_offsets: bool = True
    calibrate_nhi: bool = False
    noise_s2n: tuple[float, float] = (0.0, 0.0)
    init: str | None = None


# ----------------------------------------------------------------------------- predict


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """``surveynet dla predict``: models, and from their outputs to absorbers (dla.md section 5).

    Attributes
    ----------
    models : tuple of str
        Finders (``--model``): model directories or bundled names, S/N-routed; ``A+B`` averages
        the per-pixel outputs of A and B. Empty: the bundled ``dla_fcn`` + ``dla_fcn_lowsnr``.
    refiner : str or None
        Second-stage localisers applied in turn (``--refiner``): comma-separated model
        directories or bundled names; None: the bundled ``dla_refiner,dla_refiner_wide``;
        "none": no refinement.
    vetter : str or None
        Absorber vetter (``--vetter``): model directory or bundled name; None: the bundled
        ``dla_vetter``; "none": keep the vote confidence and every absorber.
    skip_bal : bool
        Leave out quasars the redshift catalogue flags as BAL (``--skip-bal``; sets
        ``data.skip_bal`` of every model).
    bal : {"veto", "mask", "skip", "keep"}
        BAL quasars (``--bal``; :mod:`surveynet.dla.bal_mask`). ``"veto"`` (default) searches
        them unmasked and drops the absorbers whose Lyman-alpha falls inside a BAL trough
        transposed to the forest lines; ``"mask"`` masks those pixels in the finders' input
        instead (ivar 0, flux filled; as DESI's Lyman-alpha analyses mask them); ``"skip"``
        leaves out the quasars the redshift catalogue flags as BAL (what
        ``skip_bal``/``--skip-bal`` does, and that flag wins); ``"keep"`` searches them as they
        are. On the held-out BAL mock (experiments/dla/bal_eval.sh; S/N > 3) the veto kept the
        purity 0.3 points below skipping BAL quasars (the mask 0.8, keeping them unmasked 3.7),
        and loses only the DLAs inside the troughs.
    bal_lines : {"strong", "desi"}
        Lines the CIV troughs are transposed to: the strong ones (default; Lya, Lyb, NV, SiIV,
        CIV, OVI; :data:`surveynet.bal.MASK_LINES_STRONG`) or DESI's (picca's BAL mask,
        Ennesser et al. 2022, adding PV, SIV, CIII*, OI; :data:`surveynet.bal.MASK_LINES`),
        which removes about half of a BAL quasar's search range instead of a third.
    bal_select : {"bi", "all", "flagged"}
        ``bal="veto"``/``"mask"``: which quasars' troughs are used. ``"bi"`` (default): the BAL
        finder runs on every quasar (~1 s per 500 spectra) and the quasars it calls BAL
        (BI_CIV > 0) give their troughs; ``"all"``: every quasar with a trough (AI_CIV > 0 also
        catches narrow intervening CIV absorbers); ``"flagged"``: the finder runs on the quasars
        the redshift catalogue flags as BAL (IS_BAL_QN, IS_BAL, BI_CIV > 0; a catalogue without
        such a column is an error).
    bal_catalog : str or None
        Take the troughs from this BAL catalogue (``surveynet quasar bal`` or DESI's; TARGETID,
        VMIN_CIV_450, VMAX_CIV_450) instead of running the finder.
    bal_index : {"ai", "bi"}
        Troughs used: the absorption-index troughs (>= 450 km/s; picca's default) or the
        balnicity-index troughs (>= 2000 km/s, 3000-25000 km/s).
    bal_margin_kms : float
        Widen every trough by this much on both sides (km/s).
    bal_fill : {"interp", "noise"}
        ``bal="mask"``: flux given to masked pixels (the networks read flux only): a line
        between the means of the ``bal_fill_npix`` unmasked neighbours on either side, plus
        (``"noise"``) Gaussian noise of their robust scatter.
    bal_fill_npix : int
        Neighbours of each masked run used by the fill.
    level1 : float
        Classification threshold on the sigmoid confidence (a window votes when conf >= level1).
    peak_thresh : float
        Minimum smoothed vote to accept a peak (``PEAK_THRESH`` = 0.2).
    dip : float
        Two peaks are separated only if the smoothed vote dips below this between them (0.1).
    vote_norm : float or None
        Vote normaliser; None = 80 * samplerange / 60 (80 for +-60 px windows).
    samplerange : int
        Positive half-width of the model's training labels (60 for 400-px windows, 90 for 600);
        set from each finder at prediction time.
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
        straight line fitted to offset against pixel
        (:func:`surveynet.dla.postprocess.zero_crossing`) instead of the vote centroid; None:
        never. Inside the black core of a strong absorber the network predicts offsets shrunk
        towards 0 (about half the true offset), so the votes spread over tens of pixels and
        their peak wanders, while the pixel where the predicted offset changes sign stays on the
        centre. 21.0 was chosen on the ``test_real`` mock (experiments/dla/README.md).
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
        Rounds of the second-stage localiser (:class:`surveynet.dla.refine.DLARefiner`) applied
        to every vote peak before the merge; each round crops the sightline at the current
        position and moves it by the predicted offset.
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
    z_qso_min : float or None
        Search quasars with z_qso >= this; None: each model's own ``data.z_qso_min`` (2.33 for
        the bundled models, the DESI cut). ``--set predict.z_qso_min=2.0`` opens the search to
        lower-redshift sightlines (e.g. SDSS quasars at z 2.0-2.33, whose Lyman-alpha forest
        starts above 3,650 A).
    qso_model : str
        QuasarNET model (bundled name or directory) that ``surveynet dla predict`` runs to get
        the quasar redshifts when no redshift source (``--qso-catalog``, ``--zbest``,
        ``--truth``) is given.
    vet_threshold : float or None
        With a vetter (:mod:`surveynet.dla.vet`), absorbers whose probability of being real is
        below this are dropped; None: the vetter model's own threshold; 0 keeps every absorber.
    vet_features : bool
        Add the vetter's input features to the catalogue as columns ``VET_<NAME>`` (what
        ``surveynet dla train --set model.architecture=dla_vetter`` learns from).
    """

    models: tuple[str, ...] = ()
    refiner: str | None = None
    vetter: str | None = None
    skip_bal: bool = False
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
    dla_nhi_min: float = DLA_LOG_NHI_MIN
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
    z_qso_min: float | None = None
    qso_model: str = "qn_mock_6layer"
    vet_threshold: float | None = None
    vet_features: bool = False
    bal: Literal["veto", "mask", "skip", "keep"] = "veto"
    bal_lines: Literal["strong", "desi"] = "strong"
    bal_select: Literal["bi", "all", "flagged"] = "bi"
    bal_catalog: str | None = None
    bal_index: Literal["ai", "bi"] = "ai"
    bal_margin_kms: float = 0.0
    bal_fill: Literal["interp", "noise"] = "interp"
    bal_fill_npix: int = 10

    @property
    def norm(self) -> float:
        """Resolved vote normaliser.

        Returns
        -------
        float
            ``vote_norm``, or 80 * samplerange / 60 when it is None.

        Examples
        --------
        >>> PredictConfig().norm, PredictConfig(samplerange=90).norm
        (80.0, 120.0)
        """
        return (
            float(self.vote_norm) if self.vote_norm is not None else 80.0 * self.samplerange / 60.0
        )


# ----------------------------------------------------------------------------- evaluate


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
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
        of a user who keeps only confident absorbers (0 keeps all;
        ``--set evaluate.min_confidence=0.4``).
    summary_s2n : tuple of float
        The S/N bins of the README's headline figures, as flattened (lo, hi) pairs, lo < S/N <
        hi of the sightline: default (3, 1e9, 1, 3), i.e. "S/N > 3" and "1 < S/N < 3"
        (``metrics.json["summary"]``, :func:`surveynet.dla.evaluate.summary_bins`).
    fixed_purity : float
        Each summary bin also reports the completeness at this purity (0.9): the highest
        completeness over DLA_CONFIDENCE cuts whose purity in the bin is >= this.
    """

    rule: Literal["dlambda", "dz"] = "dlambda"
    max_dlambda: float = 10.0
    max_dz: float = 0.015
    allow_lyb: bool = False
    unique: bool = True
    truth_nhi_floor: float = 19.3
    truth_nhi_min: float = DLA_LOG_NHI_MIN
    dla_nhi_min: float = 20.2999
    s2n_bins: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 1e9)
    nhi_bins: tuple[float, ...] = (19.3, 20.0, 20.3, 20.6, 21.0, 21.5, 23.0)
    min_confidence: float = 0.0
    summary_s2n: tuple[float, ...] = (3.0, 1e9, 1.0, 3.0)
    fixed_purity: float = 0.9

    def __post_init__(self) -> None:
        if len(self.summary_s2n) % 2:
            raise ValueError(
                f"evaluate.summary_s2n must hold (lo, hi) pairs, got {self.summary_s2n}"
            )
        if not 0.0 < self.fixed_purity <= 1.0:
            raise ValueError(f"evaluate.fixed_purity must be in (0, 1], got {self.fixed_purity}")


# ----------------------------------------------------------------------------- root


@dataclass(frozen=True, kw_only=True)
class DLAConfig:
    """Everything ``surveynet dla train``, ``predict`` and ``evaluate`` read.

    Attributes
    ----------
    data : DataConfig
        Reading and preparing sightlines.
    input : InputConfig
        Network inputs and the training S/N range.
    dataset : DatasetConfig
        Windows and labels.
    insert : InsertConfig
        Synthetic absorbers injected into real sightlines.
    model : ModelSection
        Architecture and its config.
    train : TrainConfig
        Optimisation.
    predict : PredictConfig
        Models and the catalogue step.
    evaluate : EvaluateConfig
        Matching to the truth.

    Examples
    --------
    >>> from surveynet.config import apply_overrides
    >>> cfg = apply_overrides(DLAConfig(), ["predict.vet_threshold=0.4", "train.seed=3"])
    >>> cfg.predict.vet_threshold, cfg.train.seed, cfg.evaluate.max_dlambda
    (0.4, 3, 10.0)
    """

    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    insert: InsertConfig = field(default_factory=InsertConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


#: Section names of :class:`DLAConfig`.
SECTIONS = ("data", "input", "dataset", "insert", "model", "train", "predict", "evaluate")


def migrate_config(data: dict[str, Any]) -> dict[str, Any]:
    """A :class:`DLAConfig` dict from any config shape surveynet has written for the DLA pipeline.

    Shapes recognised:

    - a :class:`DLAConfig` dict (sections only): returned as it is (a copy);
    - the training config stored by models saved before the one root
      (``config.json["training"]["config"]`` of the bundled ``dla_*`` models: sections
      ``data``, ``dataset``, ``input``, ``model``, ``train``): a subset of the sections, kept;
    - a flat dict of peak-finder keys (the former ``CatalogConfig``): moved to ``predict``;
    - a flat dict of matching keys (the former ``MatchConfig``): moved to ``evaluate``.

    Parameters
    ----------
    data : dict
        The stored config.

    Returns
    -------
    dict
        Keys among :data:`SECTIONS` (read it with :func:`surveynet.config.from_dict`).

    Raises
    ------
    ValueError
        A flat key that is neither a ``predict`` nor an ``evaluate`` key.

    Examples
    --------
    >>> migrate_config({"vet_threshold": 0.4, "merge_core": None})
    {'predict': {'vet_threshold': 0.4, 'merge_core': None}}
    >>> migrate_config({"min_confidence": 0.3})
    {'evaluate': {'min_confidence': 0.3}}
    >>> sorted(migrate_config({"train": {"seed": 1}, "model": {}}))
    ['model', 'train']
    """
    flat = {k: v for k, v in data.items() if k not in SECTIONS}
    out = {k: v for k, v in data.items() if k in SECTIONS}
    if not flat:
        return out
    predict_keys = {f.name for f in fields(PredictConfig)}
    evaluate_keys = {f.name for f in fields(EvaluateConfig)}
    if set(flat) <= predict_keys:
        out["predict"] = {**out.get("predict", {}), **flat}
    elif set(flat) <= evaluate_keys:
        out["evaluate"] = {**out.get("evaluate", {}), **flat}
    else:
        unknown = sorted(set(flat) - predict_keys - evaluate_keys) or sorted(flat)
        raise ValueError(f"not a DLA config: unknown key(s) {', '.join(unknown)}")
    return out


def training_config(meta: dict[str, Any]) -> DLAConfig:
    """The resolved config a saved DLA model was trained with, in either stored shape.

    Parameters
    ----------
    meta : dict
        The model's ``config.json`` (``SavedModel.meta``).

    Returns
    -------
    DLAConfig
        ``config.json["training"]["config"]`` through :func:`migrate_config` (the defaults when
        the model records none, as the bundled ``dla_vetter``).

    Examples
    --------
    >>> old = {"training": {"config": {"train": {"seed": 11, "val_fraction": 0.2}}}}
    >>> cfg = training_config(old)
    >>> cfg.train.seed, cfg.train.val_fraction, cfg.predict.peak_thresh
    (11, 0.2, 0.2)
    """
    stored = meta.get("training", {}).get("config") or {}
    return from_dict(DLAConfig, migrate_config(stored))
