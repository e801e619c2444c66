"""Training of the DLA networks: their tasks for the core driver (torch; never at inference).

The driver is :func:`surveynet.nn.train.run_training` (seeding, building through the registry,
``--init``, Adam and the per-epoch schedule, :func:`surveynet.nn.loop.fit` with the resume
checkpoint in ``<out>.work/``, saving ``model.safetensors``, ``config.json`` and
``history.json``). Each torch architecture supplies a task (:data:`TASKS`) that labels every
pixel of the sightlines (dla.md §3) and builds its samples:

- ``dla_fcn`` (:class:`FCNTrainTask`): one sample per sightline = the padded search region
  plus context, losses on the labelled (non-border) pixels of the rest range; optional noise
  augmentation reseeded every epoch; ``--init`` growth by input channels or dilations;
- ``dla_window_cnn`` (:class:`WindowCNNTrainTask`): per sightline up to ``train.max_windows``
  positive windows and as many negatives (borders dropped; the anchor's 50/50
  ``select_samples_50p_pos_neg``), windows cut on the fly from the padded sightlines; or the
  windows of a prepared dataset (:class:`WindowDatasetTrainTask`);
- ``dla_refiner`` (:class:`RefinerTrainTask`): crops jittered around every truth absorber plus
  random searched pixels (:func:`surveynet.dla.refine.refiner_arrays`), loss
  :func:`refiner_loss`.

After saving, a finder is calibrated on its validation split (the task's ``after_save``:
offset and N_HI biases stored in the preprocessing metadata).

The absorber vetter (``dla_vetter``) learns from catalogues, not sightlines:
:func:`train_vetter` runs the finders and refiners it follows over training mocks
(:func:`vetter_training_table`) and fits a logistic regression
(:func:`surveynet.dla.vet.fit_logistic`) to the absorbers' features.

:func:`train` is what ``surveynet dla train`` runs: it dispatches on ``model.architecture``
through :data:`TRAINERS`. Every driver refuses an existing model directory unless ``overwrite``
(or ``resume``) before any work.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy.ndimage import median_filter

from surveynet.config import config_hash, to_dict
from surveynet.dla.config import (
    DLAConfig,
    EvaluateConfig,
    FCNConfig,
    PredictConfig,
    RefinerConfig,
    TrainConfig,
    VetterConfig,
    WindowCNNConfig,
)
from surveynet.dla.data import load_dataset, pixel_labels, read_training_sightlines, select_s2n
from surveynet.dla.evaluate import match_absorbers, read_truth_absorbers, searched
from surveynet.dla.model import OUTPUT_NAMES
from surveynet.dla.predict import (
    DLAFinder,
    load_finders,
    merge_catalogs,
    nhi_bias,
    offset_bias,
    predict_file,
)
from surveynet.dla.preprocess import ERROR_CHANNEL, InputSpec, padded_input
from surveynet.dla.refine import refiner_arrays
from surveynet.dla.sightline import Sightline, search_pixels
from surveynet.dla.vet import COLUMN_PREFIX, FEATURES, fit_logistic, logistic_probability
from surveynet.errors import ConfigError, InputError
from surveynet.io.model import SavedModel, arrays_sha256, resolve_model_path, save_model
from surveynet.nn.train import (
    Optimisation,
    StepFn,
    TrainData,
    TrainTask,
    check_output_dir,
    init_weights,
    run_training,
    split_indices,
)
from surveynet.runner import report_failures, run_batch

log = logging.getLogger(__name__)


def input_spec(config: DLAConfig) -> InputSpec:
    """The :class:`InputSpec` (stored with the model) of a training config.

    Parameters
    ----------
    config : DLAConfig
        The training config.

    Returns
    -------
    InputSpec
    """
    arch = config.model.arch_config()
    window = arch.window if isinstance(arch, WindowCNNConfig) else config.dataset.kernel
    return InputSpec(
        channels=config.input.channels,
        pad_npix=config.input.pad_npix,
        rest_range=config.data.rest_range,
        samplerange=config.dataset.half_width(window),
        border_factor=config.dataset.border_factor,
        label_wave_min=config.dataset.label_wave_min,
        clip=config.input.clip,
    )


def fcn_context(cfg: FCNConfig) -> int:
    """Context pixels each side of the search region (half the receptive field, factor-rounded).

    Parameters
    ----------
    cfg : FCNConfig
        The architecture.

    Returns
    -------
    int
        Pixels, a multiple of ``cfg.factor``.
    """
    f = cfg.factor
    half = cfg.receptive_field // 2 + 1
    return -(-half // f) * f


@dataclass
class FCNArrays:
    """Stacked FCN training samples."""

    x: NDArray[np.float32]  # (n, C, L)
    cls: NDArray[np.float32]  # (n, L) 1/0, ignored where mask = 0
    offset: NDArray[np.float32]  # (n, L)
    nhi: NDArray[np.float32]  # (n, L)
    mask: NDArray[np.float32]  # (n, L) 1 = labelled pixel in the search range
    s2n: NDArray[np.float32]  # (n,) the sightlines' S/N
    error: NDArray[np.float32] | None = None  # (n, L) :func:`continuum_error`, 0 = none


def fcn_arrays(
    sightlines: Sequence[Sightline],
    spec: InputSpec,
    cfg: FCNConfig,
    length: int | None = None,
    with_error: bool = False,
) -> FCNArrays:
    """One fixed-length sample per sightline: search region + context, labels and mask.

    With ``with_error``, also the continuum-level error that noise augmentation needs.

    Parameters
    ----------
    sightlines : sequence of Sightline
        Labelled sightlines.
    spec : InputSpec
        Input channels and label settings.
    cfg : FCNConfig
        The architecture (context and down-sampling factor).
    length : int, optional
        Sample length (default: the longest search region plus context, factor-rounded).
    with_error : bool
        Also return the continuum-level error.

    Returns
    -------
    FCNArrays
    """
    ctx = fcn_context(cfg)
    regions = []
    for sl in sightlines:
        pix = search_pixels(sl, spec.rest_range)
        if pix.size == 0:
            continue
        regions.append((sl, int(pix[0]), int(pix[-1]) + 1))
    if not regions:
        raise InputError("no sightline has pixels in the search range")
    f = cfg.factor
    need = max(b - a for _, a, b in regions) + 2 * ctx
    length = length or -(-need // f) * f
    n, c = len(regions), len(spec.channels)
    x = np.zeros((n, c, length), np.float32)
    cls = np.zeros((n, length), np.float32)
    off = np.zeros((n, length), np.float32)
    nhi = np.zeros((n, length), np.float32)
    mask = np.zeros((n, length), np.float32)
    err = np.zeros((n, length), np.float32) if with_error else None
    s2n = np.array([sl.s2n for sl, _, _ in regions], np.float32)
    for i, (sl, a, b) in enumerate(regions):
        full = padded_input(sl, spec, ctx + length, sl.n_pix + 2 * (ctx + length))
        s0 = ctx + length + a - ctx  # padded index of the sample's first pixel
        x[i] = full[:, s0 : s0 + length]
        if err is not None:
            j0, j1 = max(a - ctx, 0), min(a - ctx + length, sl.n_pix)  # sightline px in the sample
            err[i, j0 - (a - ctx) : j1 - (a - ctx)] = continuum_error(sl.error)[j0:j1]
        lab = pixel_labels(sl, spec)
        m = min(b - a, length - ctx)
        seg = slice(ctx, ctx + m)
        cls[i, seg] = lab.classification[a : a + m] == 1
        off[i, seg] = lab.offset[a : a + m]
        nhi[i, seg] = lab.nhi[a : a + m]
        mask[i, seg] = lab.classification[a : a + m] >= 0
    return FCNArrays(x, cls, off, nhi, mask, s2n, err)


NOISE_SMOOTH_PX = 101  # ~85 A at 62,996 m/s, wider than the troughs of log N < 21.5 DLAs


def continuum_error(error: NDArray[np.float64]) -> NDArray[np.float64]:
    """The error at the continuum level: a running median over ``NOISE_SMOOTH_PX`` pixels.

    The median does not drop in absorption troughs; 0 where the sightline has no data.

    Parameters
    ----------
    error : ndarray of shape (n,)
        1-sigma error (``inf`` = no data).

    Returns
    -------
    ndarray of shape (n,)
    """
    e = np.asarray(error, dtype=np.float64)
    ok = np.isfinite(e) & (e > 0)
    if not ok.any():
        return np.zeros_like(e)
    filled = np.where(ok, e, np.median(e[ok]))
    return np.where(ok, median_filter(filled, NOISE_SMOOTH_PX, mode="nearest"), 0.0)


def degrade(
    x: torch.Tensor,
    error: torch.Tensor,
    s2n: torch.Tensor,
    s2n_target: tuple[float, float],
    spec: InputSpec,
    gen: torch.Generator,
) -> torch.Tensor:
    """Noise augmentation (``train.noise_s2n``): lower each sample's S/N to a random target.

    The target is log-uniform in ``s2n_target``; with k = max(1, S/N / target), Gaussian noise
    of sigma = error * sqrt(k^2 - 1) is added to the flux channel (clipped as the inputs are)
    and in quadrature to the error channel, if any. ``error`` is the continuum-level error, so
    the added noise does not follow absorption troughs, like the sky noise that dominates
    faint spectra (the photon noise of a bright spectrum is lower in its troughs).

    Parameters
    ----------
    x : tensor (n, C, L)
        Input channels (flux 0 and error -1 only).
    error : tensor (n, L)
        Continuum-level 1-sigma flux error (:func:`continuum_error`; 0 in the padding).
    s2n : tensor (n,)
        The samples' S/N.
    s2n_target : (lo, hi)
        Range of the target S/N.
    spec : InputSpec
        Channel list and clip value.
    gen : torch.Generator
        Source of the targets and the noise.

    Returns
    -------
    torch.Tensor of shape (n, C, L)
        The degraded inputs.
    """
    lo, hi = np.log(s2n_target[0]), np.log(s2n_target[1])
    target = torch.exp(lo + (hi - lo) * torch.rand(len(x), generator=gen))
    k = torch.clamp(s2n / target, min=1.0)
    extra = error * torch.sqrt(k * k - 1.0)[:, None]
    noise = torch.randn(error.shape, generator=gen) * extra
    out = x.clone()
    for c, ch in enumerate(spec.channels):
        if ch == 0:
            out[:, c] = torch.clamp(x[:, c] + noise, -spec.clip, spec.clip)
        else:  # the error channel (checked by _check)
            out[:, c] = torch.clamp(torch.hypot(x[:, c], extra), 0.0, spec.clip)
    return out


@dataclass
class WindowIndex:
    """Window CNN samples: padded sightlines plus (sightline, pixel, labels) per window."""

    flux: NDArray[np.float32]  # (n_sl, C, L) padded by window // 2 on the left
    sl_index: NDArray[np.int64]
    pixel: NDArray[np.int64]
    cls: NDArray[np.float32]
    offset: NDArray[np.float32]
    nhi: NDArray[np.float32]


def window_index(
    sightlines: Sequence[Sightline],
    spec: InputSpec,
    window: int,
    max_windows: int,
    rng: np.random.Generator,
) -> WindowIndex:
    """Balanced window samples (min(#pos, #neg, max_windows) of each class per sightline).

    Parameters
    ----------
    sightlines : sequence of Sightline
        Labelled sightlines.
    spec : InputSpec
        Input channels and label settings.
    window : int
        Window length.
    max_windows : int
        At most this many windows of each class per sightline.
    rng : numpy.random.Generator
        Sampling randomness.

    Returns
    -------
    WindowIndex
    """
    half = window // 2
    length = max(sl.n_pix for sl in sightlines) + window
    flux = np.zeros((len(sightlines), len(spec.channels), length), np.float32)
    rows: list[tuple[NDArray[Any], ...]] = []
    for i, sl in enumerate(sightlines):
        flux[i] = padded_input(sl, spec, half, length)
        lab = pixel_labels(sl, spec)
        pix = search_pixels(sl, spec.rest_range)
        pos = pix[lab.classification[pix] == 1]
        neg = pix[lab.classification[pix] == 0]
        k = min(pos.size, neg.size, max_windows)
        if k == 0:
            continue  # a DLA-free sightline contributes nothing (dla.md §3)
        sel = np.concatenate([rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)])
        rows.append(
            (
                np.full(2 * k, i),
                sel,
                (lab.classification[sel] == 1).astype(np.float32),
                lab.offset[sel],
                lab.nhi[sel],
            )
        )
    if not rows:
        raise InputError("no training windows: no sightline carries a labelled absorber")
    cols = [np.concatenate([r[j] for r in rows]) for j in range(5)]
    return WindowIndex(
        flux,
        cols[0].astype(np.int64),
        cols[1].astype(np.int64),
        cols[2].astype(np.float32),
        cols[3].astype(np.float32),
        cols[4].astype(np.float32),
    )


def gather_windows(
    flux: torch.Tensor, sl_index: torch.Tensor, pixel: torch.Tensor, window: int
) -> torch.Tensor:
    """Windows ``(B, C, window)`` centred on sightline ``pixel`` of the padded ``flux``.

    Parameters
    ----------
    flux : torch.Tensor of shape (n_sl, C, L)
        Padded sightlines (:attr:`WindowIndex.flux`).
    sl_index, pixel : torch.Tensor of shape (B,)
        Sightline and centre pixel of each window.
    window : int
        Window length.

    Returns
    -------
    torch.Tensor of shape (B, C, window)
    """
    ar = torch.arange(window)
    idx = pixel[:, None] + ar[None, :]  # padded index = pixel + half - half
    return flux[sl_index[:, None], :, idx].permute(0, 2, 1).contiguous()


def dla_loss(
    pred: torch.Tensor,
    cls: torch.Tensor,
    offset: torch.Tensor,
    nhi: torch.Tensor,
    mask: torch.Tensor,
    tc: TrainConfig,
    l2_terms: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """Combined loss on flattened outputs ``pred (M, 3)``, labels ``(M,)`` and a 0/1 ``mask``.

    'mean': masked-mean BCE (``pos_weight``) + ``w_offset`` mean((Δoffset/offset_scale)²) +
    ``w_nhi`` mean(ΔN_HI²), both over positives; + ``l2`` Σ½w².
    'anchor': (Σ CE + N(½Σ Δoffset² + Σ masked ΔN_HI²) + N·l2·Σ½w²) / N with offsets over all
    labelled samples (dla.md §4.3).

    Parameters
    ----------
    pred : torch.Tensor of shape (M, 3)
        Logit, offset, log N_HI.
    cls, offset, nhi, mask : torch.Tensor of shape (M,)
        Labels and the 0/1 mask of labelled samples.
    tc : TrainConfig
        Balance and weights.
    l2_terms : sequence of torch.Tensor
        Weights under the L2 penalty.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    logit, o, h = pred[:, 0], pred[:, 1], pred[:, 2]
    m = mask > 0
    pos = m & (cls > 0.5)
    l2 = sum((0.5 * (w**2).sum() for w in l2_terms), torch.zeros(()))
    if tc.loss_balance == "anchor":
        ce = F.binary_cross_entropy_with_logits(logit[m], cls[m], reduction="sum")
        n = m.sum().clamp(min=1)
        lo = 0.5 * ((o[m] - offset[m]) ** 2).sum()
        lh = ((h[pos] - nhi[pos]) ** 2).sum()
        return ce / n + lo + lh + tc.l2 * l2
    pw = torch.tensor(tc.pos_weight)
    ce = F.binary_cross_entropy_with_logits(logit[m], cls[m], pos_weight=pw)
    npos = pos.sum().clamp(min=1)
    lo = (((o[pos] - offset[pos]) / tc.offset_scale) ** 2).sum() / npos
    lh = ((h[pos] - nhi[pos]) ** 2).sum() / npos
    return ce + tc.w_offset * lo + tc.w_nhi * lh + tc.l2 * l2


def refiner_loss(
    pred: torch.Tensor,
    cls: torch.Tensor,
    offset: torch.Tensor,
    nhi: torch.Tensor,
    cfg: RefinerConfig,
    tc: TrainConfig,
) -> torch.Tensor:
    """Refiner loss: BCE of the target flag plus smooth-L1 terms of the offset and N_HI.

    ``w_offset`` smooth-L1 (beta 0.1) of the offset in units of ``offset_unit`` px +
    ``w_nhi`` smooth-L1 of (log N_HI x ``nhi_scale``), both over crops with a target.

    Parameters
    ----------
    pred : torch.Tensor of shape (M, 3)
        Logit, offset, log N_HI of each crop.
    cls, offset, nhi : torch.Tensor of shape (M,)
        Labels.
    cfg : RefinerConfig
        ``offset_unit`` and ``nhi_scale``.
    tc : TrainConfig
        ``w_offset`` and ``w_nhi``.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    ce = F.binary_cross_entropy_with_logits(pred[:, 0], cls)
    pos = cls > 0.5
    if not bool(pos.any()):
        return ce
    lo = F.smooth_l1_loss(pred[pos, 1] / cfg.offset_unit, offset[pos] / cfg.offset_unit, beta=0.1)
    lh = F.smooth_l1_loss(pred[pos, 2] * cfg.nhi_scale, nhi[pos] * cfg.nhi_scale, beta=0.1)
    return ce + tc.w_offset * lo + tc.w_nhi * lh


# ----------------------------------------------------------------------------- training tasks


def _with_init(
    config: DLAConfig, init: str | os.PathLike[str] | None
) -> tuple[DLAConfig, str | None]:
    """The config with ``train.init`` set from ``init`` (when given), and the init to load."""
    if init is None:
        return config, config.train.init
    train = dataclasses.replace(config.train, init=str(init))
    return dataclasses.replace(config, train=train), str(init)


class DLATrainTask(TrainTask):
    """The DLA networks' hooks for :func:`surveynet.nn.train.run_training` (shared part).

    The subclass of each architecture (:data:`TASKS`) supplies :meth:`setup`; this class maps
    ``train.*`` onto :class:`~surveynet.nn.train.Optimisation` (Adam without AMSGrad or weight
    decay, the cosine schedule from ``lr`` to ``lr * lr_min_factor``), stores the input
    specification as ``preprocessing`` and lets the architecture config's ``TRAINING_FIELDS``
    differ on ``--init``.

    Parameters
    ----------
    config : DLAConfig
        The resolved config (``model.architecture`` names the network).
    sightlines : sequence of Sightline
        Labelled sightlines (empty for a task that only checks ``--init``, :func:`init_from`).
    max_batches : int
        Smoke-test knob: batches per epoch (0 = all).

    Raises
    ------
    ConfigError
        Channels that do not match the architecture, or noise augmentation where it does not
        apply.
    """

    pipeline = "dla"
    #: Whether :meth:`after_save` calibrates the offsets / N_HI on the validation split.
    calibrates = True

    def __init__(
        self, config: DLAConfig, sightlines: Sequence[Sightline] = (), *, max_batches: int = 0
    ) -> None:
        super().__init__(config, config.model.architecture)
        # a torch architecture (make_task refuses the vetter)
        self.arch = cast(WindowCNNConfig | FCNConfig | RefinerConfig, config.model.arch_config())
        self.free_init_fields = tuple(getattr(self.arch, "TRAINING_FIELDS", ()))
        self.spec = input_spec(config)
        self.sightlines = list(sightlines)
        self.max_batches = max_batches
        self.val_sightlines: list[Sightline] = []
        self.check()

    def check(self) -> None:
        """Refuse settings the architecture cannot train with (before any work).

        Raises
        ------
        ConfigError
            Noise augmentation for another network than the FCN or with other channels than
            flux and error; ``in_channels`` that differs from ``input.channels``.
        """
        config = self.config
        lo, hi = config.train.noise_s2n
        if (lo, hi) != (0.0, 0.0):
            if self.architecture != "dla_fcn":
                raise ConfigError("train.noise_s2n (noise augmentation) is for the dla_fcn only")
            if not 0 < lo <= hi:
                raise ConfigError(
                    f"train.noise_s2n must be (lo, hi) with 0 < lo <= hi; got {(lo, hi)}"
                )
            if set(config.input.channels) - {0, ERROR_CHANNEL}:
                raise ConfigError(
                    f"train.noise_s2n needs input.channels of flux (0) and error (-1) only; got "
                    f"{config.input.channels} (median-filtered channels would need recomputing)"
                )
        if self.arch.in_channels != len(config.input.channels):
            sect = "window_cnn" if self.architecture == "dla_window_cnn" else "fcn"
            raise ConfigError(
                f"model in_channels={self.arch.in_channels} but input.channels has "
                f"{len(config.input.channels)} entries {config.input.channels}; set both "
                f"(e.g. --set model.{sect}.in_channels=4)"
            )

    def training_sightlines(self) -> list[Sightline]:
        """The sightlines in the training S/N pool (``noise_s2n[0]`` and up when augmenting).

        Returns
        -------
        list of Sightline

        Raises
        ------
        InputError
            Fewer than two sightlines in the pool.
        """
        tc = self.config.train
        augment = tuple(tc.noise_s2n) != (0.0, 0.0)
        pool = (tc.noise_s2n[0], np.inf) if augment else self.config.input.s2n_range
        sls = select_s2n(self.sightlines, pool)
        if len(sls) < 2:
            raise InputError(f"only {len(sls)} sightlines in S/N range {pool}; need >= 2")
        return sls

    def optimisation(self) -> Optimisation:
        """Adam settings and the per-epoch schedule from ``train.*`` (CPU).

        Returns
        -------
        Optimisation
        """
        tc = self.config.train
        # Adam without amsgrad or weight decay: the window CNN's L2 term is part of its loss
        return Optimisation.from_section(
            tc, lr_min=tc.lr * tc.lr_min_factor, max_batches=self.max_batches
        )

    def arch_config(self) -> dict[str, Any]:
        """The selected architecture's config as the registry builder's keyword arguments.

        Returns
        -------
        dict
        """
        return to_dict(self.arch)

    def metadata(self) -> dict[str, Any]:
        """Input specification, data config and S/N range; the output names.

        Returns
        -------
        dict
            ``preprocessing`` and ``label_names``.
        """
        config = self.config
        pre: dict[str, Any] = {
            "input": self.spec.to_dict(),
            "data": to_dict(config.data),
            "s2n_range": list(config.input.s2n_range),
        }
        return {"preprocessing": pre, "label_names": list(OUTPUT_NAMES)}

    def split(
        self, rng: np.random.Generator
    ) -> tuple[list[Sightline], list[Sightline], dict[str, Any]]:
        """The seeded train/validation split of the training sightlines.

        Parameters
        ----------
        rng : numpy.random.Generator
            The driver's ``default_rng(seed)`` (the split is its first draw).

        Returns
        -------
        train, val : list of Sightline
            The two splits (``val`` is kept for :meth:`after_save`).
        info : dict
            ``n_sightlines`` for the provenance.
        """
        sls = self.training_sightlines()
        tr, va = split_indices(len(sls), self.config.train.val_fraction, rng)
        self.val_sightlines = [sls[i] for i in va]
        return [sls[i] for i in tr], self.val_sightlines, {"n_sightlines": len(sls)}

    def after_save(self, path: Path, model: torch.nn.Module) -> dict[str, Any] | None:
        """Calibrate a finder on the validation split (``train.calibrate_offsets`` / ``_nhi``).

        The saved model is run by its numpy engine (:class:`~surveynet.dla.predict.DLAFinder`);
        the median offset residual per output phase (:func:`~surveynet.dla.predict.offset_bias`)
        and the median log N_HI residual (:func:`~surveynet.dla.predict.nhi_bias`) are added to
        the preprocessing metadata, which prediction subtracts.

        Parameters
        ----------
        path : Path
            The saved model directory.
        model : torch.nn.Module
            The trained model (unused: the calibration runs the saved one).

        Returns
        -------
        dict or None
            The updated ``preprocessing``, or None when there is nothing to calibrate.
        """
        tc = self.config.train
        val = self.val_sightlines
        if not self.calibrates or not (tc.calibrate_offsets or tc.calibrate_nhi) or not val:
            return None
        pre = dict(self.metadata()["preprocessing"])
        finder = DLAFinder.from_saved(path)
        if tc.calibrate_offsets:
            pre["offset_bias"] = offset_bias(finder, val)
            log.info("offset bias on %d validation sightlines: %s px", len(val), pre["offset_bias"])
        if tc.calibrate_nhi:
            pre["nhi_bias"] = nhi_bias(finder, val)
            log.info("N_HI bias on the validation sightlines: %+.4f dex", pre["nhi_bias"])
        return pre


class FCNTrainTask(DLATrainTask):
    """``dla_fcn``: one sample per sightline (search region plus context), per-pixel losses.

    With ``train.noise_s2n`` every epoch degrades the training samples afresh
    (:func:`degrade`, reseeded per epoch in :meth:`on_epoch_start`); the validation split is
    degraded once, with the seed ``train.seed + 1``. ``--init`` may grow the saved model by
    input channels (the core rule on ``stem.0.weight``) or by appended dilations
    (:meth:`grow`).
    """

    input_weight_key = "stem.0.weight"

    def __init__(
        self, config: DLAConfig, sightlines: Sequence[Sightline] = (), *, max_batches: int = 0
    ) -> None:
        super().__init__(config, sightlines, max_batches=max_batches)
        self.noise_gen = torch.Generator()

    @property
    def augment(self) -> bool:
        """Whether noise augmentation (``train.noise_s2n``) is on."""
        return tuple(self.config.train.noise_s2n) != (0.0, 0.0)

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """Stacked FCN samples of the split, the masked per-pixel loss and the augmentation.

        Parameters
        ----------
        model : torch.nn.Module
            The built FCN.
        rng : numpy.random.Generator
            The split's source.

        Returns
        -------
        TrainData
        """
        tc, spec, arch = self.config.train, self.spec, self.arch
        assert isinstance(arch, FCNConfig)
        augment = self.augment
        train, val, info = self.split(rng)
        a_tr = fcn_arrays(train, spec, arch, with_error=augment)
        length = a_tr.x.shape[2]
        a_va = fcn_arrays(val, spec, arch, length, with_error=augment) if val else None
        log.info(
            "FCN: %d train / %d val sightlines of %d px; %d positive pixels",
            len(a_tr.x),
            0 if a_va is None else len(a_va.x),
            length,
            int((a_tr.cls * a_tr.mask).sum()),
        )
        gen = self.noise_gen
        if augment and a_va is not None:  # the validation split is degraded once, reproducibly
            gen.manual_seed(tc.seed + 1)
            assert a_va.error is not None  # with_error=augment
            a_va.x = degrade(
                torch.from_numpy(a_va.x),
                torch.from_numpy(a_va.error),
                torch.from_numpy(a_va.s2n),
                tc.noise_s2n,
                spec,
                gen,
            ).numpy()

        def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, c, o, h, m = batch[:5]
            if augment and mdl.training:
                x = degrade(x, batch[5], batch[6], tc.noise_s2n, spec, gen)
            p = mdl(x).permute(0, 2, 1).reshape(-1, 3)
            return dla_loss(p, c.reshape(-1), o.reshape(-1), h.reshape(-1), m.reshape(-1), tc)

        train_data = [a_tr.x, a_tr.cls, a_tr.offset, a_tr.nhi, a_tr.mask]
        data_hash = arrays_sha256(train_data)
        if augment:
            train_data += [a_tr.error, a_tr.s2n]  # type: ignore[list-item]
        return TrainData(
            train=train_data,
            val=None if a_va is None else [a_va.x, a_va.cls, a_va.offset, a_va.nhi, a_va.mask],
            training_step=step,
            data_hash=data_hash,
            info={**info, "n_train_samples": len(a_tr.x)},
        )

    def on_epoch_start(self, epoch: int) -> None:
        """Reseed the noise augmentation from ``(train.seed, epoch)`` (resume-safe).

        Parameters
        ----------
        epoch : int
            0-based epoch.
        """
        if self.augment:
            self.noise_gen.manual_seed(self.config.train.seed * 1_000_003 + epoch + 2)

    def metadata(self) -> dict[str, Any]:
        """The shared metadata plus ``context`` (pixels each side of the search region).

        Returns
        -------
        dict
        """
        meta = super().metadata()
        assert isinstance(self.arch, FCNConfig)
        meta["preprocessing"]["context"] = fcn_context(self.arch)
        return meta

    def grow(
        self, model: torch.nn.Module, saved: SavedModel, diff: list[str]
    ) -> dict[str, Any] | None:
        """``--init`` growth by appended dilations: the new blocks start as the identity.

        When only ``dilations`` differs and the saved list is a prefix of the new one, the
        saved blocks are loaded and the appended residual blocks' 1x1 output convolutions are
        zeroed (``relu(h + 0) = h`` for ``h >= 0``), so the deeper network starts with exactly
        the saved outputs; the new dilated convolutions keep their seeded initialisation.

        Parameters
        ----------
        model : torch.nn.Module
            The built (deeper) FCN, loaded in place.
        saved : SavedModel
            The ``--init`` model.
        diff : list of str
            The architecture fields that differ.

        Returns
        -------
        dict or None
            ``{"grown_from_dilations": [...]}``, or None when the rule does not apply.
        """
        if diff != ["dilations"]:
            return None
        old, new = list(saved.config["dilations"]), list(self.arch_config()["dilations"])
        if not (len(new) > len(old) and new[: len(old)] == old):
            return None
        tensors = dict(saved.tensors)
        for k, v in model.state_dict().items():
            if k.startswith("pconv.") and int(k.split(".")[1]) >= len(old):
                tensors[k] = np.zeros_like(v.detach().cpu().numpy())
            elif k not in tensors:
                tensors[k] = v.detach().cpu().numpy()  # new dilated convolutions: seeded init
        self.load_weights(model, tensors)
        log.info(
            "initialised from %s, %d identity blocks appended", saved.name, len(new) - len(old)
        )
        return {"grown_from_dilations": old}


class WindowCNNTrainTask(DLATrainTask):
    """``dla_window_cnn`` on sightlines: balanced windows cut on the fly from padded sightlines.

    The anchor's L2 term (``train.l2`` on :meth:`~surveynet.dla.model.WindowCNN.l2_parameters`)
    is part of the loss (:func:`dla_loss`), not an optimiser weight decay.
    """

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """Window samples of the split (:func:`window_index`) and the window loss.

        Parameters
        ----------
        model : torch.nn.Module
            The built window CNN.
        rng : numpy.random.Generator
            Source of the split, then of the window sampling.

        Returns
        -------
        TrainData
        """
        tc, spec, arch = self.config.train, self.spec, self.arch
        assert isinstance(arch, WindowCNNConfig)
        w = arch.window
        train, val, info = self.split(rng)
        l2_terms = model.l2_parameters() if tc.l2 > 0 else []  # type: ignore[operator]
        wi = window_index(train, spec, w, tc.max_windows, rng)
        wv = window_index(val, spec, w, tc.max_windows, rng) if val else None
        log.info("window CNN: %d train windows from %d sightlines", len(wi.cls), len(train))

        def make_step(flux: torch.Tensor) -> StepFn:
            def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
                s, p, c, o, h = batch
                pred = mdl(gather_windows(flux, s, p, w))
                return dla_loss(pred, c, o, h, torch.ones_like(c), tc, l2_terms)

            return step

        return TrainData(
            train=[wi.sl_index, wi.pixel, wi.cls, wi.offset, wi.nhi],
            val=None if wv is None else [wv.sl_index, wv.pixel, wv.cls, wv.offset, wv.nhi],
            training_step=make_step(torch.from_numpy(wi.flux)),
            validation_step=None if wv is None else make_step(torch.from_numpy(wv.flux)),
            data_hash=arrays_sha256([wi.flux, wi.pixel]),
            info={**info, "n_train_samples": len(wi.cls)},
        )


class WindowDatasetTrainTask(WindowCNNTrainTask):
    """``dla_window_cnn`` on a prepared window dataset (:func:`surveynet.dla.data.save_dataset`).

    Border windows (label -1) are dropped; the split is :func:`split_indices` over the kept
    windows; no calibration follows (no sightlines).

    Parameters
    ----------
    config : DLAConfig
        ``model.architecture`` must be ``dla_window_cnn``.
    path : path
        The ``.npz`` or FITS window dataset.
    max_batches : int
        Smoke-test knob: batches per epoch (0 = all).

    Raises
    ------
    ConfigError
        Another architecture.
    InputError
        Windows of another shape than the model's.
    """

    calibrates = False

    def __init__(
        self, config: DLAConfig, path: str | os.PathLike[str], *, max_batches: int = 0
    ) -> None:
        if config.model.architecture != "dla_window_cnn":
            raise ConfigError(
                "a window dataset (.npz) trains only model.architecture=dla_window_cnn"
            )
        super().__init__(config, (), max_batches=max_batches)
        arch = self.arch
        assert isinstance(arch, WindowCNNConfig)
        ds = load_dataset(path)
        if ds.n_channels != arch.in_channels or ds.kernel != arch.window:
            raise InputError(
                f"dataset windows are ({ds.n_channels}, {ds.kernel}); the model expects "
                f"({arch.in_channels}, {arch.window})",
                path=path,
            )
        self.path = path
        self.dataset = ds

    def check(self) -> None:
        """No channel checks: the dataset's window shape is checked instead."""

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """The dataset's labelled windows, split, and the window loss.

        Parameters
        ----------
        model : torch.nn.Module
            The built window CNN.
        rng : numpy.random.Generator
            The split's source.

        Returns
        -------
        TrainData
        """
        ds, tc = self.dataset, self.config.train
        keep = np.flatnonzero(ds.labels_classifier >= 0)
        tr, va = split_indices(keep.size, tc.val_fraction, rng)
        cols = [
            ds.flux.astype(np.float32),
            (ds.labels_classifier == 1).astype(np.float32),
            ds.labels_offset.astype(np.float32),
            ds.col_density.astype(np.float32),
        ]
        l2_terms = model.l2_parameters() if tc.l2 > 0 else []  # type: ignore[operator]

        def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, c, o, h = batch
            return dla_loss(mdl(x), c, o, h, torch.ones_like(c), tc, l2_terms)

        return TrainData(
            train=[c[keep[tr]] for c in cols],
            val=[c[keep[va]] for c in cols] if va.size else None,
            training_step=step,
            data_hash=arrays_sha256([ds.flux]),
            info={"dataset": str(self.path), "n_train_samples": int(tr.size)},
        )


class RefinerTrainTask(DLATrainTask):
    """``dla_refiner``: jittered crops around the truth absorbers plus random searched pixels.

    Crops come from :func:`surveynet.dla.refine.refiner_arrays`, the loss is
    :func:`refiner_loss`; the finder calibrations do not apply.
    """

    calibrates = False

    def check(self) -> None:
        """The refiner's inputs are fixed (flux, error, rest wavelength): nothing to check."""

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """Refiner crops of the split and the refiner loss.

        Parameters
        ----------
        model : torch.nn.Module
            The built refiner.
        rng : numpy.random.Generator
            Source of the split, then of the crops.

        Returns
        -------
        TrainData
        """
        tc, arch, rest = self.config.train, self.arch, self.spec.rest_range
        assert isinstance(arch, RefinerConfig)
        train, val, info = self.split(rng)
        r_tr = refiner_arrays(train, arch, rng, rest)
        r_va = refiner_arrays(val, arch, rng, rest) if val else None
        log.info(
            "refiner: %d train crops (%d with a target) from %d sightlines",
            len(r_tr.x),
            int(r_tr.cls.sum()),
            len(train),
        )

        def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, c, o, h = batch
            return refiner_loss(mdl(x), c, o, h, arch, tc)

        train_data = [r_tr.x, r_tr.cls, r_tr.offset, r_tr.nhi]
        return TrainData(
            train=train_data,
            val=None if r_va is None else [r_va.x, r_va.cls, r_va.offset, r_va.nhi],
            training_step=step,
            data_hash=arrays_sha256(train_data),
            info={**info, "n_train_samples": len(r_tr.x)},
        )


#: The training task of each torch architecture (the vetter is fitted by :func:`train_vetter`).
TASKS: dict[str, type[DLATrainTask]] = {
    "dla_fcn": FCNTrainTask,
    "dla_window_cnn": WindowCNNTrainTask,
    "dla_refiner": RefinerTrainTask,
}


def make_task(
    config: DLAConfig, sightlines: Sequence[Sightline] = (), *, max_batches: int = 0
) -> DLATrainTask:
    """The training task of ``config.model.architecture`` (:data:`TASKS`).

    Parameters
    ----------
    config : DLAConfig
        The resolved config.
    sightlines : sequence of Sightline
        Labelled sightlines (none: a task for :func:`init_from` only).
    max_batches : int
        Smoke-test knob: batches per epoch (0 = all).

    Returns
    -------
    DLATrainTask

    Raises
    ------
    ConfigError
        The vetter (fitted by :func:`train_vetter`), or settings the architecture cannot
        train with.
    """
    cls = TASKS.get(config.model.architecture)
    if cls is None:
        raise ConfigError(
            f"model.architecture={config.model.architecture} learns from catalogues, not "
            "sightlines: use surveynet.dla.train.train_vetter (what `surveynet dla train` runs "
            "for it)"
        )
    return cls(config, sightlines, max_batches=max_batches)


def init_from(
    model: torch.nn.Module, config: DLAConfig, init: str | os.PathLike[str]
) -> dict[str, Any]:
    """Load a saved DLA model's weights into ``model`` (fine-tuning; ``--init``).

    The core rule (:func:`surveynet.nn.train.init_weights`) with the task of ``config``: the
    saved architecture and its config must equal ``config.model`` except the fields the
    architecture config lists in ``TRAINING_FIELDS``; an FCN may grow by input channels
    (the added channels start at zero) or by appended dilations (:meth:`FCNTrainTask.grow`).

    Parameters
    ----------
    model : torch.nn.Module
        The freshly built model.
    config : DLAConfig
        Its config.
    init : str or os.PathLike
        The saved model (directory or bundled name).

    Returns
    -------
    dict
        Provenance recorded as ``training.init`` (model name, weights hash, growth).

    Raises
    ------
    ConfigError
        Another architecture, or config fields that differ otherwise (named).
    """
    return init_weights(make_task(config), model, init)


def train_model(
    config: DLAConfig,
    sightlines: Sequence[Sightline],
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    quiet: bool = False,
    command: str = "",
    overwrite: bool = False,
    max_batches: int = 0,
    init: str | os.PathLike[str] | None = None,
) -> Path:
    """Train the configured network on labelled sightlines and save it to ``out``.

    A thin wrapper over :func:`surveynet.nn.train.run_training` with the architecture's task
    (:func:`make_task`).

    Parameters
    ----------
    config : DLAConfig
        Data, input, model and optimisation settings (``model.architecture`` one of
        ``dla_fcn``, ``dla_window_cnn``, ``dla_refiner``).
    sightlines : sequence of Sightline
        Preprocessed sightlines with their absorbers (``.dlas``).
    out : path
        Model directory to write (``model.safetensors``, ``config.json``, ``history.json``).
    resume : bool
        Continue from ``<out>.work/checkpoint.safetensors``.
    quiet : bool
        No progress bar.
    command : str
        The command line recorded in ``config.json`` (``training.command``).
    overwrite : bool
        Replace an existing model directory (checked before any work; ``resume`` also allows
        it).
    max_batches : int
        Smoke-test knob: batches per epoch (0 = all).
    init : path or bundled model name, optional
        Start from these weights (fine-tuning, :func:`init_from`; sets ``train.init``; default
        ``config.train.init``); a resumed checkpoint wins.

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
    ConfigError
        Settings the architecture cannot train with.
    InputError
        Fewer than two sightlines in the training S/N range.
    """
    check_output_dir(out, overwrite=overwrite, resume=resume)
    config, init = _with_init(config, init)
    task = make_task(config, sightlines, max_batches=max_batches)
    return run_training(
        task, out, resume=resume, init=init, overwrite=overwrite, quiet=quiet, command=command
    )


def train_window_dataset(
    config: DLAConfig,
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    quiet: bool = False,
    command: str = "",
    overwrite: bool = False,
    init: str | os.PathLike[str] | None = None,
) -> Path:
    """Train the window CNN on a window dataset (:func:`surveynet.dla.data.save_dataset`).

    A thin wrapper over :func:`surveynet.nn.train.run_training` with
    :class:`WindowDatasetTrainTask`.

    Parameters
    ----------
    config : DLAConfig
        ``model.architecture`` must be ``dla_window_cnn``.
    path : path
        The ``.npz`` or FITS window dataset.
    out : path
        Model directory to write.
    resume : bool
        Continue from ``<out>.work/checkpoint.safetensors``.
    quiet : bool
        No progress bar.
    command : str
        The command line recorded in ``config.json``.
    overwrite : bool
        Replace an existing model directory (checked before any work; ``resume`` also allows
        it).
    init : path or bundled model name, optional
        Start from a saved model's weights (:func:`init_from`; default ``config.train.init``).

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    ConfigError
        Another architecture.
    InputError
        Windows of another shape than the model's.
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
    """
    check_output_dir(out, overwrite=overwrite, resume=resume)
    config, init = _with_init(config, init)
    task = WindowDatasetTrainTask(config, path)
    return run_training(
        task, out, resume=resume, init=init, overwrite=overwrite, quiet=quiet, command=command
    )


# ----------------------------------------------------------------------------- vetter


def _pair_truths(
    files: Sequence[str | os.PathLike[str]], truths: Sequence[str | os.PathLike[str]]
) -> dict[str, list[str]]:
    """Map each truth file to its coadd files: the only truth, or the one in the file's folder."""
    if not truths:
        raise InputError("the vetter needs --truth (the mocks' TRUTH and DLA_META)")
    groups: dict[str, list[str]] = {str(t): [] for t in truths}
    by_dir = {str(Path(t).resolve().parent): str(t) for t in truths}
    for f in files:
        if len(truths) == 1:
            groups[str(truths[0])].append(str(f))
            continue
        t = by_dir.get(str(Path(f).resolve().parent))
        if t is None:
            raise InputError("no --truth file in the folder of this coadd", path=str(f))
        groups[t].append(str(f))
    return {t: fs for t, fs in groups.items() if fs}


def vetter_training_table(
    files: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    config: VetterConfig,
    *,
    quiet: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Features and labels of the catalogue absorbers of mock files (LYB-typed ones left out).

    The catalogue is made as ``surveynet dla predict`` makes it, with the finders and refiners
    of ``config`` and no vetter; an absorber's label is whether
    :func:`surveynet.dla.evaluate.match_absorbers` (10 A) pairs it with a truth absorber inside
    the searched range.

    Parameters
    ----------
    files : sequence of path
        Mock coadd files.
    truths : sequence of path
        Their truth files (one, or one per folder of coadds).
    config : VetterConfig
        Finders, refiners, ``skip_bal`` and ``workers``.
    quiet : bool
        No progress bar.

    Returns
    -------
    features : ndarray of shape (n, n_features)
        :data:`surveynet.dla.vet.FEATURES` of each absorber.
    real : ndarray of shape (n,), bool
        Whether it matches a truth absorber.

    Raises
    ------
    InputError
        A coadd file failed (the error names the file and the reason), or no truth file.
    """
    finders = [str(f.source) for f in load_finders(list(config.finders))]
    refiners = [str(resolve_model_path(r)) for r in config.refiners]
    xs, ys = [], []
    for truth, fs in _pair_truths(files, truths).items():
        results = run_batch(
            predict_file,
            fs,
            workers=config.workers,
            quiet=quiet,
            desc="vetter features",
            models=finders,
            qso_catalog=truth,
            config=to_dict(PredictConfig(vet_features=True, bal="keep")),
            skip_bal=config.skip_bal,
            refiner=refiners,
        )
        if report_failures(results):
            bad = next(r for r in results if not r.ok)
            raise InputError(f"vetter features failed: {bad.error}", path=bad.input)
        cat = merge_catalogs([r.value for r in results])
        tab, _ = read_truth_absorbers(truth)
        res = match_absorbers(tab[searched(tab, cat.qsos)[0]], cat.dlas, EvaluateConfig())
        keep = np.char.strip(np.asarray(res.pred["ABSORBER_TYPE"]).astype(str)) != "LYB"
        xs.append(
            np.column_stack(
                [np.asarray(res.pred[COLUMN_PREFIX + n.upper()], float) for n in FEATURES]
            )[keep]
        )
        ys.append(np.asarray(res.pred["MATCHED"], bool)[keep])
    return np.concatenate(xs), np.concatenate(ys)


def train_vetter(
    config: DLAConfig,
    files: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    quiet: bool = False,
    command: str = "",
    overwrite: bool = False,
) -> Path:
    """Fit and save a ``dla_vetter`` (``surveynet dla train --set model.architecture=dla_vetter``).

    The fit is deterministic.

    Parameters
    ----------
    config : DLAConfig
        Its ``model.vetter`` names the finders and refiners whose catalogue absorbers are
        learned from, the L2 penalty and the threshold stored with the model.
    files : sequence of path
        Mock coadd files.
    truths : sequence of path
        Their truth files.
    out : path
        Model directory to write.
    resume : bool
        Not available: the fit is one deterministic step (True raises).
    quiet : bool
        No progress bar.
    command : str
        The command line recorded in ``config.json``.
    overwrite : bool
        Replace an existing model directory (checked before any work).

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    ConfigError
        ``resume`` is set.
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    InputError
        A coadd file failed, or the absorbers are all real or all false.
    """
    if resume:
        raise ConfigError("the vetter fit is one step: --resume does not apply to dla_vetter")
    out = check_output_dir(out, overwrite=overwrite)
    vc = config.model.vetter
    x, y = vetter_training_table(files, truths, vc, quiet=quiet)
    log.info("vetter: %d absorbers, %.1f %% real", len(y), 100.0 * y.mean())
    tensors = fit_logistic(x, y, l2=vc.l2)
    p = np.clip(logistic_probability(tensors, x), 1e-12, 1 - 1e-12)
    logloss = float(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)))
    training = {
        "command": command,
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "n_absorbers": len(y),
        "n_real": int(y.sum()),
        "log_loss": logloss,
        "n_files": len(files),
    }
    path = save_model(
        out,
        tensors,
        pipeline="dla",
        architecture="dla_vetter",
        config=to_dict(vc),
        label_names=["real"],
        training=training,
        overwrite=overwrite,
    )
    log.info("saved %s (training log loss %.4f)", path, logloss)
    return path


# ----------------------------------------------------------------------------- dispatch


def _is_window_dataset(inputs: Sequence[str | os.PathLike[str]]) -> bool:
    return len(inputs) == 1 and str(inputs[0]).endswith(".npz")


def _train_on_sightlines(
    config: DLAConfig,
    inputs: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    out: Path,
    **options: Any,
) -> Path:
    """Finders and refiners: coadd files with their truth -> labelled sightlines -> training."""
    if _is_window_dataset(inputs):
        raise ConfigError("a window dataset (.npz) trains only model.architecture=dla_window_cnn")
    if not truths:
        raise InputError("coadd inputs need --truth (z_qso and DLA_META absorbers)")
    sls = read_training_sightlines(inputs, truths, config.data)
    return train_model(config, sls, out, **options)


def _train_window_cnn(
    config: DLAConfig,
    inputs: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    out: Path,
    **options: Any,
) -> Path:
    """The window CNN: one prepared ``.npz`` window dataset, or coadd files with their truth."""
    if _is_window_dataset(inputs):
        return train_window_dataset(config, inputs[0], out, **options)
    return _train_on_sightlines(config, inputs, truths, out, **options)


#: Training driver of each architecture: ``driver(config, inputs, truths, out, **options)``.
TRAINERS: dict[str, Callable[..., Path]] = {
    "dla_fcn": _train_on_sightlines,
    "dla_refiner": _train_on_sightlines,
    "dla_window_cnn": _train_window_cnn,
    "dla_vetter": train_vetter,
}


def train(
    config: DLAConfig,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    truths: Sequence[str | os.PathLike[str]] = (),
    resume: bool = False,
    quiet: bool = False,
    command: str = "",
    overwrite: bool = False,
) -> Path:
    """Train the architecture ``config.model.architecture`` names (``surveynet dla train``).

    Dispatches through :data:`TRAINERS`.

    Parameters
    ----------
    config : DLAConfig
        The resolved config (``train.init``: fine-tuning start; ``data.max_sightlines``: the
        training-set size).
    inputs : sequence of path
        Mock or DESI coadd files, or one prepared ``.npz`` window dataset (window CNN).
    out : path
        Model directory to write.
    truths : sequence of path
        Truth files (z_qso and DLA_META absorbers) of the coadd files.
    resume : bool
        Continue from ``<out>.work`` (not for the vetter, whose fit is one step).
    quiet : bool
        No progress bar.
    command : str
        The command line recorded in ``config.json``.
    overwrite : bool
        Replace an existing model directory (checked before any work).

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
    ConfigError
        An architecture without a driver, or inputs it cannot train on.
    """
    driver = TRAINERS.get(config.model.architecture)
    if driver is None:
        raise ConfigError(
            f"no training driver for model.architecture={config.model.architecture!r}; "
            f"known: {', '.join(sorted(TRAINERS))}"
        )
    out = check_output_dir(out, overwrite=overwrite, resume=resume)
    return driver(
        config,
        list(inputs),
        list(truths),
        out,
        resume=resume,
        quiet=quiet,
        command=command,
        overwrite=overwrite,
    )
