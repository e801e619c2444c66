"""Frozen configs of the DLA networks (window CNN, fully-convolutional finder) and their training.

Every architecture constant is a field here (no magic numbers in the builders); the full config is
stored in the saved model's ``config.json`` and rebuilt with :func:`surveynet.config.from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from surveynet.dla.config import DataConfig, DatasetConfig
from surveynet.dla.vet import FEATURES as VET_FEATURES


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
        """DESI column-0 hyper-parameters (dla.md §4.2; ~2.3 M parameters with 4 channels)."""
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
        """Total down-sampling factor of the stem (input length must be a multiple of it)."""
        f = 1
        for s in self.stem_strides:
            f *= s
        return f

    @property
    def receptive_field(self) -> int:
        """Receptive field in input pixels (full width)."""
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
        """Features entering the dense layer."""
        return self.widths[-1] * (self.crop >> len(self.widths))


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings shared by both architectures (dla.md §4.3).

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
        Seed of weight init, splits and shuffling.
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


@dataclass(frozen=True, kw_only=True)
class VetterConfig:
    """Absorber vetter (:mod:`surveynet.dla.vet`): a logistic regression on per-absorber features.

    Attributes
    ----------
    features : tuple of str
        The input features, in order (:data:`surveynet.dla.vet.FEATURES`; fixed, stored so that
        a model of other features is refused).
    l2 : float
        L2 penalty per absorber on the standardised weights.
    threshold : float
        Stored with the model: ``surveynet dla predict`` drops absorbers below this probability
        (``CatalogConfig.vet_threshold`` overrides it). Choose it on a development mock.
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


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """Which architecture and the configs of the possible ones."""

    architecture: Literal["dla_window_cnn", "dla_fcn", "dla_refiner", "dla_vetter"] = "dla_fcn"
    window_cnn: WindowCNNConfig = field(default_factory=WindowCNNConfig)
    fcn: FCNConfig = field(default_factory=FCNConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    vetter: VetterConfig = field(default_factory=VetterConfig)

    def arch_config(self) -> WindowCNNConfig | FCNConfig | RefinerConfig | VetterConfig:
        """The config of the selected architecture."""
        if self.architecture == "dla_window_cnn":
            return self.window_cnn
        if self.architecture == "dla_vetter":
            return self.vetter
        return self.refiner if self.architecture == "dla_refiner" else self.fcn


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


@dataclass(frozen=True, kw_only=True)
class DLATrainConfig:
    """Everything ``surveynet dla train`` needs (``--set model.architecture=dla_window_cnn``...)."""

    data: DataConfig = field(default_factory=DataConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
