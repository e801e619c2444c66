"""The one configuration root of the transient pipeline: :class:`TransientConfig`.

Every ``surveynet transient`` step resolves the same :class:`TransientConfig` from
``--config FILE``, shortcut flags and ``--set section.key=value`` (applied last). Sections:

=============  ======================================================================
section        used by
=============  ======================================================================
``sim``        ``simulate`` (:class:`surveynet.sim.images.ImageSimConfig`)
``inject``     ``inject`` (:class:`InjectConfig`)
``detect``     ``detect`` (:class:`DetectConfig`): registration, subtraction, sep
``cutouts``    ``cutouts`` (:class:`CutoutConfig`)
``data``       ``convert`` (:class:`DataConfig`): datacube class balance
``model``      ``train`` (:class:`ModelSection`): architecture, channels, normalisation
``train``      ``train`` (:class:`TrainConfig`)
``predict``    ``predict`` (:class:`PredictConfig`)
``evaluate``   ``checksim``, ``checkinfer`` (:class:`EvaluateConfig`)
=============  ======================================================================

Pixel convention (every file of the pipeline): **0-based numpy pixel coordinates**, ``x`` the
column and ``y`` the row, the centre of pixel ``data[j, i]`` at ``(x, y) = (i, j)``; sky
coordinates from ``WCS.pixel_to_world_values(x, y)`` (origin 0). gmadet's positions file mixes
0-based pixels with ``wcs_pix2world(x, y, 1)`` (a one-pixel offset, realbogus.md §1.1); here
positions, candidates and cutout centres all share the one convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from surveynet.sim.image_config import ImageSimConfig

__all__ = [
    "CutoutConfig",
    "DataConfig",
    "DetectConfig",
    "EvaluateConfig",
    "InjectConfig",
    "ModelSection",
    "PredictConfig",
    "TrainConfig",
    "TransientConfig",
]


@dataclass(frozen=True, kw_only=True)
class InjectConfig:
    """Injection of point sources with each image's own PSF (gmadet-sim, realbogus.md §1.1).

    Attributes
    ----------
    n : int
        Sources per image (gmadet ``--ntrans`` 100).
    mag_min, mag_max : float
        Magnitudes uniform in [mag_min, mag_max) (gmadet 14 23).
    zp : float
        Zero point of the magnitudes (counts in ADU = 10^(-0.4 (m - zp))); 0 = the image's
        ``MAGZP`` header card (physical magnitudes); gmadet's arbitrary 30 if set so.
    psf_size : int
        Side of the estimated PSF stamp (odd; gmadet PSF_SIZE 25).
    n_psf_stars : int
        Maximum number of stars used to estimate the PSF.
    margin : int
        No source closer than this to the frame edge (px).
    sub_pixel : bool
        Sub-pixel placement (gmadet places at integer pixels).
    poisson : bool
        Add Poisson noise of the injected counts (in electrons, using ``GAIN``).
    seed : int
        Random seed.
    """

    n: int = 100
    mag_min: float = 14.0
    mag_max: float = 23.0
    zp: float = 0.0
    psf_size: int = 25
    n_psf_stars: int = 40
    margin: int = 20
    sub_pixel: bool = True
    poisson: bool = True
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class DetectConfig:
    """Registration, PSF-matched subtraction and detection (gmadet-run, realbogus.md §1.2).

    Attributes
    ----------
    register : {"wcs", "none"}
        Resample the reference onto the science pixel grid through the two WCS (bilinear
        ``scipy.ndimage.map_coordinates``), or assume pixel-aligned frames (no WCS needed).
    method : {"al", "zogy"}
        Subtraction: Alard-Lupton kernel matching, or the proper image subtraction of Zackay,
        Ofek & Gal-Yam (2016; ZTF's method), :func:`surveynet.transient.subtract.subtract`.
    kernel_size : int
        Side of the PSF-matching kernel (odd; with ``zogy`` the PSF stamps are 10 px larger).
    kernel_order : int
        Polynomial degree of the kernel's spatial variation (Alard-Lupton style; 0 = constant).
    n_kernel_stars : int
        Maximum stars used to fit the kernel.
    threshold : float
        sep detection threshold in units of the difference-image noise (gmadet 4).
    minarea : int
        sep minimum area (px).
    edge : int
        Candidates closer than this to the frame edge get the ``EDGE`` flag (gmadet 32 px; 0 =
        half the cutout size).
    saturation : float
        Pixels at or above this (ADU) are masked (0 = the ``SATURATE`` header card, else none).
    max_candidates : int
        Keep at most this many candidates per image, highest S/N first (0 = all).
    """

    register: str = "wcs"
    method: str = "al"
    kernel_size: int = 15
    kernel_order: int = 1
    n_kernel_stars: int = 60
    threshold: float = 4.0
    minarea: int = 4
    edge: int = 0
    saturation: float = 0.0
    max_candidates: int = 2000


@dataclass(frozen=True, kw_only=True)
class CutoutConfig:
    """Candidate cutouts (gmadet-cutouts, realbogus.md §1.3).

    Attributes
    ----------
    size : int
        Cutout side (px; gmadet 32). Even sizes centre the candidate pixel at ``size // 2``.
    radius : float
        Crossmatch radius to the injected list (px; gmadet 2 arcsec).
    pad_value : float
        Fill of the pixels outside the frame (edge cutouts keep their size and get ``EDGE``).
    """

    size: int = 32
    radius: float = 2.0
    pad_value: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Datacube construction (gmadet-cnn_convert, realbogus.md §1.5).

    Attributes
    ----------
    frac_true : float
        Fraction of true cutouts in the balanced cube (0 = keep every cutout, no balancing).
    skip_edge : bool
        Leave out ``EDGE`` cutouts.
    seed : int
        Seed of the random class subsampling (gmadet uses glob order).
    """

    frac_true: float = 0.0
    skip_edge: bool = True
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """Architecture and inputs of a trained model.

    Attributes
    ----------
    architecture : {"rb_cnn", "gmadet_cnn", "braai_vgg6"}
        Registered architecture.
    channels : {"diff", "triplet"}
        Difference only (gmadet) or science/reference/difference (braai).
    norm : {"zscore", "l2", "rows", "none"}
        Per-channel normalisation (:mod:`surveynet.transient.preprocess`).
    filters : tuple of int
        Convolution filters (``rb_cnn`` and ``gmadet_cnn``).
    dense : int
        Hidden dense width (``rb_cnn``).
    dropout : float
        Dropout rate.
    """

    architecture: str = "rb_cnn"
    channels: str = "diff"
    norm: str = "zscore"
    filters: tuple[int, ...] = (8, 16, 32)
    dense: int = 32
    dropout: float = 0.1


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training (gmadet: Adam 1e-3, batch 1024, 10 epochs, 15 % validation, no augmentation).

    Attributes
    ----------
    epochs, batch_size : int
        Loop settings.
    lr : float
        Adam learning rate.
    val_fraction : float
        Seeded random validation split.
    patience : int
        Early stopping (0 = none).
    lr_schedule : {"constant", "cosine"}
        Per-epoch learning-rate schedule (:func:`surveynet.nn.train.lr_factor`).
    lr_min : float
        Learning rate the cosine decay approaches.
    flips : bool
        Random horizontal/vertical flips and 90-degree rotations each epoch (braai uses flips).
    max_batches : int
        Batches per epoch (0 = all; smoke tests).
    seed : int
        Random seed.
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.15
    patience: int = 0
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    flips: bool = True
    max_batches: int = 0
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """Scoring (gmadet-cnn_infer).

    Attributes
    ----------
    model : str
        Model directory or bundled name (default: the bundled difference-only model).
    threshold : float
        P(real) at or above which a candidate is ``REAL`` in the output table.
    batch_size : int
        Cutouts per numpy-engine chunk.
    """

    model: str = "rb_diff_mock"
    threshold: float = 0.5
    batch_size: int = 64


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """checksim / checkinfer (realbogus.md §1.4, §1.8).

    Attributes
    ----------
    radius : float
        Crossmatch radius (px).
    thresholds : tuple of float
        P(real) thresholds of the TPR/FPR table.
    mag_bins : tuple of float
        Magnitude bin edges.
    snr_bins : tuple of float
        S/N bin edges (S/N of the candidate on the difference image).
    n_gallery : int
        Cutouts in the gallery of most confident errors.
    """

    radius: float = 2.0
    thresholds: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    mag_bins: tuple[float, ...] = (14.0, 16.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0)
    snr_bins: tuple[float, ...] = (0.0, 3.0, 5.0, 7.0, 10.0, 20.0, 50.0, 1e9)
    n_gallery: int = 16


@dataclass(frozen=True, kw_only=True)
class TransientConfig:
    """The config root of ``surveynet transient`` (see the module docstring).

    Attributes
    ----------
    sim, inject, detect, cutouts, data, model, train, predict, evaluate
        The sections.
    """

    sim: ImageSimConfig = field(default_factory=ImageSimConfig)
    inject: InjectConfig = field(default_factory=InjectConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    cutouts: CutoutConfig = field(default_factory=CutoutConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
