"""Seeded, resumable training of the DLA networks (torch; never imported at inference).

``train_model(config, sightlines, out)`` labels every pixel (dla.md §3), then

- ``dla_fcn``: one sample per sightline = the padded search region plus context, losses on the
  labelled (non-border) pixels of the rest range;
- ``dla_window_cnn``: per sightline up to ``train.max_windows`` positive windows and as many
  negatives (borders dropped; the anchor's 50/50 ``select_samples_50p_pos_neg``), windows cut on
  the fly from the padded sightlines;
- ``dla_refiner``: crops jittered around every truth absorber plus random searched pixels
  (:func:`surveynet.dla.refine.refiner_arrays`), loss :func:`refiner_loss`.

The loop is :func:`surveynet.nn.loop.fit` (progress bar, safetensors checkpoint in
``<out>.work/``, ``--resume``); the best-validation weights are saved with
:func:`surveynet.io.model.save_model`.

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
from typing import Any

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
from surveynet.dla.model import FCN, OUTPUT_NAMES, Refiner, WindowCNN
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
from surveynet.io.model import arrays_sha256, load_model, resolve_model_path, save_model
from surveynet.nn.loop import LoopConfig, fit
from surveynet.nn.train import split_indices
from surveynet.runner import report_failures, run_batch

log = logging.getLogger(__name__)


def _optimizer(model: torch.nn.Module, tc: Any) -> tuple[torch.optim.Optimizer, Any]:
    """Adam at ``tc.lr`` and, for ``tc.lr_schedule == "cosine"``, a per-epoch cosine decay."""
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    sched = None
    if tc.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(tc.epochs, 1), eta_min=tc.lr * tc.lr_min_factor
        )
    return opt, sched


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
    """One fixed-length sample per sightline: search region + context, labels and mask (and,
    ``with_error``, the continuum-level error that noise augmentation needs).

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
    """The error at the continuum level: a running median over ``NOISE_SMOOTH_PX`` pixels, so
    that it does not drop in absorption troughs (0 where the sightline has no data).

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
    """Refiner loss: BCE of the target flag + ``w_offset`` smooth-L1 (beta 0.1) of the offset in
    units of ``offset_unit`` px + ``w_nhi`` smooth-L1 of (log N_HI x ``nhi_scale``), both over
    crops with a target.

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


def _build(config: DLAConfig) -> torch.nn.Module:
    arch = config.model.arch_config()
    with torch.random.fork_rng():
        torch.manual_seed(config.train.seed)  # scoped: the caller's RNG state is restored
        if isinstance(arch, WindowCNNConfig):
            return WindowCNN(arch)
        if isinstance(arch, RefinerConfig):
            return Refiner(arch)
        return FCN(arch)


def init_from(
    model: torch.nn.Module, config: DLAConfig, init: str | os.PathLike[str]
) -> dict[str, Any]:
    """Load the weights of a saved DLA model into ``model`` (fine-tuning; ``--init``).

    The saved architecture and its config must equal ``config.model`` (except the fields an
    architecture config lists in ``TRAINING_FIELDS``, which only shape the training samples),
    with two exceptions for a fully-convolutional finder. When only ``fcn.in_channels`` grows,
    the saved first convolution fills the first input channels and the added channels' weights
    start at zero, so the finder starts with the saved model's outputs (e.g. adding the error
    channel, ``input.channels=[0,-1]``). When only ``fcn.dilations``
    differs and the saved list is a prefix of the new one, the saved blocks are loaded and the
    appended residual blocks start as the identity (their 1x1 output convolution is zeroed:
    ``relu(h + 0) = h`` for ``h >= 0``), so the deeper network starts with exactly the saved
    model's outputs. Any other mismatch raises :class:`~surveynet.errors.ConfigError` naming the
    fields that differ. Returns the provenance recorded as ``training.init`` (model name, weights
    hash, and the saved dilations when grown).

    Parameters
    ----------
    model : torch.nn.Module
        The freshly built model.
    config : DLAConfig
        Its config.
    init : str or os.PathLike
        The saved model (directory or bundled name).
    """
    saved = load_model(init, pipeline="dla")
    arch = to_dict(config.model.arch_config())
    if saved.architecture != config.model.architecture:
        raise ConfigError(
            f"--init {init}: architecture {saved.architecture!r}, "
            f"model.architecture is {config.model.architecture!r}"
        )
    # fields that only shape the training samples (TRAINING_FIELDS) may differ
    free = getattr(config.model.arch_config(), "TRAINING_FIELDS", ())
    diff = sorted(
        k
        for k in set(saved.config) | set(arch)
        if saved.config.get(k) != arch.get(k) and k not in free
    )
    meta: dict[str, Any] = {"model": saved.name, "weights_sha256": saved.weights_hash}
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in saved.tensors.items()}
    if diff == ["dilations"] and isinstance(model, FCN):
        old, new = list(saved.config["dilations"]), list(arch["dilations"])
        if len(new) > len(old) and new[: len(old)] == old:
            state = model.state_dict()
            for k, v in state.items():
                if k.startswith("pconv.") and int(k.split(".")[1]) >= len(old):
                    tensors[k] = torch.zeros_like(v)
                elif k not in tensors:
                    tensors[k] = v  # new dilated convolutions keep their seeded initialisation
            model.load_state_dict(tensors)
            log.info(
                "initialised from %s, %d identity blocks appended", saved.name, len(new) - len(old)
            )
            meta["grown_from_dilations"] = old
            return meta
    if diff == ["in_channels"] and isinstance(model, FCN):
        old_c, new_c = int(saved.config["in_channels"]), int(arch["in_channels"])
        if new_c > old_c:
            w = torch.zeros_like(model.state_dict()["stem.0.weight"])
            w[:, :old_c] = tensors["stem.0.weight"]
            tensors["stem.0.weight"] = w
            model.load_state_dict(tensors)
            log.info("initialised from %s, %d input channels added", saved.name, new_c - old_c)
            meta["grown_from_in_channels"] = old_c
            return meta
    if diff:
        raise ConfigError(
            f"--init {init}: its architecture differs from model.* in: {', '.join(diff)}"
        )
    model.load_state_dict(tensors)
    log.info("initialised from %s (%s)", saved.name, saved.weights_hash)
    return meta


def _check_out(out: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing model directory unless ``overwrite`` (before any work)."""
    p = Path(out)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    return p


def _with_init(
    config: DLAConfig, init: str | os.PathLike[str] | None
) -> tuple[DLAConfig, str | None]:
    """The config with ``train.init`` set from ``init`` (when given), and the init to load."""
    if init is None:
        return config, config.train.init
    train = dataclasses.replace(config.train, init=str(init))
    return dataclasses.replace(config, train=train), str(init)


def _check(config: DLAConfig) -> None:
    arch = config.model.arch_config()
    if isinstance(arch, VetterConfig):
        raise ConfigError(
            "model.architecture=dla_vetter learns from catalogues, not sightlines: use "
            "surveynet.dla.vet.train_vetter (what `surveynet dla train` runs for it)"
        )
    if isinstance(arch, RefinerConfig):
        return  # fixed inputs (flux, error, rest wavelength)
    sect = "window_cnn" if isinstance(arch, WindowCNNConfig) else "fcn"
    lo, hi = config.train.noise_s2n
    if (lo, hi) != (0.0, 0.0):
        if not isinstance(arch, FCNConfig):
            raise ConfigError("train.noise_s2n (noise augmentation) is for the dla_fcn only")
        if not 0 < lo <= hi:
            raise ConfigError(f"train.noise_s2n must be (lo, hi) with 0 < lo <= hi; got {(lo, hi)}")
        if set(config.input.channels) - {0, ERROR_CHANNEL}:
            raise ConfigError(
                f"train.noise_s2n needs input.channels of flux (0) and error (-1) only; got "
                f"{config.input.channels} (median-filtered channels would need recomputing)"
            )
    if arch.in_channels != len(config.input.channels):
        raise ConfigError(
            f"model in_channels={arch.in_channels} but input.channels has "
            f"{len(config.input.channels)} entries {config.input.channels}; set both "
            f"(e.g. --set model.{sect}.in_channels=4)"
        )


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

    Parameters
    ----------
    config : DLAConfig
        Data, input, model and optimisation settings (``model.architecture`` one of
        ``dla_fcn``, ``dla_window_cnn``, ``dla_refiner``).
    sightlines : sequence of Sightline
        Preprocessed sightlines with their absorbers (``.dlas``).
    out : path
        Model directory to write (``model.safetensors`` + ``config.json``).
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
    """
    out = _check_out(out, overwrite or resume)
    config, init = _with_init(config, init)
    _check(config)
    tc = config.train
    spec = input_spec(config)
    augment = tuple(tc.noise_s2n) != (0.0, 0.0)
    pool = (tc.noise_s2n[0], np.inf) if augment else config.input.s2n_range
    sls = select_s2n(sightlines, pool)
    if len(sls) < 2:
        raise InputError(f"only {len(sls)} sightlines in S/N range {pool}; need >= 2")
    rng = np.random.default_rng(tc.seed)
    tr, va = split_indices(len(sls), tc.val_fraction, rng)
    model = _build(config)
    init_meta = init_from(model, config, init) if init is not None else None
    arch = config.model.arch_config()
    workdir = out.with_name(out.name + ".work")
    loop = LoopConfig(
        epochs=tc.epochs,
        batch_size=tc.batch_size,
        seed=tc.seed,
        patience=tc.patience,
        quiet=quiet,
        max_batches=max_batches,
    )
    epoch_start: Callable[[int], None] | None = None  # the FCN's noise augmentation reseeds
    l2_terms = model.l2_parameters() if isinstance(model, WindowCNN) and tc.l2 > 0 else []

    if isinstance(arch, FCNConfig):
        a_tr = fcn_arrays([sls[i] for i in tr], spec, arch, with_error=augment)
        length = a_tr.x.shape[2]
        a_va = (
            fcn_arrays([sls[i] for i in va], spec, arch, length, with_error=augment)
            if va.size
            else None
        )
        n_pos = int((a_tr.cls * a_tr.mask).sum())
        log.info(
            "FCN: %d train / %d val sightlines of %d px; %d positive pixels",
            len(a_tr.x),
            0 if a_va is None else len(a_va.x),
            length,
            n_pos,
        )

        noise_gen = torch.Generator()
        if augment and a_va is not None:  # the validation split is degraded once, reproducibly
            noise_gen.manual_seed(tc.seed + 1)
            a_va.x = degrade(
                *(torch.from_numpy(v) for v in (a_va.x, a_va.error, a_va.s2n)),
                tc.noise_s2n,
                spec,
                noise_gen,
            ).numpy()

        def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, c, o, h, m = batch[:5]
            if augment and mdl.training:
                x = degrade(x, batch[5], batch[6], tc.noise_s2n, spec, noise_gen)
            p = mdl(x).permute(0, 2, 1).reshape(-1, 3)
            return dla_loss(p, c.reshape(-1), o.reshape(-1), h.reshape(-1), m.reshape(-1), tc)

        def reseed(epoch: int) -> None:
            noise_gen.manual_seed(tc.seed * 1_000_003 + epoch + 2)

        if augment:
            epoch_start = reseed
        train_data = [a_tr.x, a_tr.cls, a_tr.offset, a_tr.nhi, a_tr.mask]
        data_hash = arrays_sha256(train_data)
        if augment:
            train_data += [a_tr.error, a_tr.s2n]
        val_data = None if a_va is None else [a_va.x, a_va.cls, a_va.offset, a_va.nhi, a_va.mask]
        n_samples = len(a_tr.x)
    elif isinstance(arch, RefinerConfig):
        r_tr = refiner_arrays([sls[i] for i in tr], arch, rng, spec.rest_range)
        r_va = refiner_arrays([sls[i] for i in va], arch, rng, spec.rest_range) if va.size else None
        log.info(
            "refiner: %d train crops (%d with a target) from %d sightlines",
            len(r_tr.x),
            int(r_tr.cls.sum()),
            len(tr),
        )

        def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, c, o, h = batch
            return refiner_loss(mdl(x), c, o, h, arch, tc)  # type: ignore[arg-type]

        train_data = [r_tr.x, r_tr.cls, r_tr.offset, r_tr.nhi]
        val_data = None if r_va is None else [r_va.x, r_va.cls, r_va.offset, r_va.nhi]
        data_hash = arrays_sha256(train_data)
        n_samples = len(r_tr.x)
    else:
        w = arch.window
        wi = window_index([sls[i] for i in tr], spec, w, tc.max_windows, rng)
        flux_tr = torch.from_numpy(wi.flux)
        wv = window_index([sls[i] for i in va], spec, w, tc.max_windows, rng) if va.size else None
        flux_va = torch.from_numpy(wv.flux) if wv is not None else None
        log.info("window CNN: %d train windows from %d sightlines", len(wi.cls), len(tr))

        def make_step(flux: torch.Tensor) -> Any:
            def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
                s, p, c, o, h = batch
                pred = mdl(gather_windows(flux, s, p, w))
                return dla_loss(pred, c, o, h, torch.ones_like(c), tc, l2_terms)

            return step

        step = make_step(flux_tr)
        train_data = [wi.sl_index, wi.pixel, wi.cls, wi.offset, wi.nhi]
        val_data = None if wv is None else [wv.sl_index, wv.pixel, wv.cls, wv.offset, wv.nhi]
        data_hash = arrays_sha256([wi.flux, wi.pixel])
        n_samples = len(wi.cls)

    val_step = None
    if val_data is not None:
        val_step = make_step(flux_va) if isinstance(arch, WindowCNNConfig) else step  # type: ignore[arg-type]
    opt, sched = _optimizer(model, tc)
    history = fit(
        model,
        opt,
        train_data,
        step,
        loop,
        val_data=val_data,
        validation_step=val_step,
        workdir=workdir,
        resume=resume,
        scheduler=sched,
        epoch_start=epoch_start,
    )
    tensors = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    preprocessing = {
        "input": spec.to_dict(),
        "data": to_dict(config.data),
        "s2n_range": list(config.input.s2n_range),
    }
    if isinstance(arch, FCNConfig):
        preprocessing["context"] = fcn_context(arch)
    training = {
        "command": command,
        "seed": tc.seed,
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "n_sightlines": len(sls),
        "n_train_samples": n_samples,
        "data_hash": data_hash,
        "history": history.rows,
    }
    if init_meta is not None:
        training["init"] = init_meta

    def save(overwrite: bool) -> Path:
        return save_model(
            out,
            tensors,
            pipeline="dla",
            architecture=config.model.architecture,
            config=to_dict(arch),
            preprocessing=preprocessing,
            label_names=list(OUTPUT_NAMES),
            training=training,
            overwrite=overwrite,
        )

    path = save(overwrite or resume)
    is_finder = not isinstance(arch, RefinerConfig)
    if is_finder and (tc.calibrate_offsets or tc.calibrate_nhi) and va.size:
        # the calibration runs the saved model (numpy engine), then the metadata is rewritten
        val = [sls[i] for i in va]
        finder = DLAFinder(path)
        if tc.calibrate_offsets:
            bias = offset_bias(finder, val)
            log.info("offset bias on %d validation sightlines: %s px", va.size, bias)
            preprocessing["offset_bias"] = bias
        if tc.calibrate_nhi:
            preprocessing["nhi_bias"] = nhi_bias(finder, val)
            log.info("N_HI bias on the validation sightlines: %+.4f dex", preprocessing["nhi_bias"])
        path = save(True)
    log.info("saved %s", path)
    return path


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

    Border windows (label -1) are dropped; the last ``train.val_fraction`` of a seeded permutation
    is the validation set.

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
    out = _check_out(out, overwrite or resume)
    config, init = _with_init(config, init)
    arch = config.model.arch_config()
    if not isinstance(arch, WindowCNNConfig):
        raise ConfigError("a window dataset (.npz) trains only model.architecture=dla_window_cnn")
    ds = load_dataset(path)
    if ds.n_channels != arch.in_channels or ds.kernel != arch.window:
        raise InputError(
            f"dataset windows are ({ds.n_channels}, {ds.kernel}); the model expects "
            f"({arch.in_channels}, {arch.window})",
            path=path,
        )
    keep = np.flatnonzero(ds.labels_classifier >= 0)
    tc = config.train
    rng = np.random.default_rng(tc.seed)
    tr, va = split_indices(keep.size, tc.val_fraction, rng)
    cols = [
        ds.flux.astype(np.float32),
        (ds.labels_classifier == 1).astype(np.float32),
        ds.labels_offset.astype(np.float32),
        ds.col_density.astype(np.float32),
    ]
    train_data = [c[keep[tr]] for c in cols]
    val_data = [c[keep[va]] for c in cols] if va.size else None
    model = _build(config)
    init_meta = init_from(model, config, init) if init is not None else None
    l2_terms = model.l2_parameters() if tc.l2 > 0 else []  # type: ignore[operator]

    def step(mdl: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, c, o, h = batch
        return dla_loss(mdl(x), c, o, h, torch.ones_like(c), tc, l2_terms)

    loop = LoopConfig(
        epochs=tc.epochs, batch_size=tc.batch_size, seed=tc.seed, patience=tc.patience, quiet=quiet
    )
    opt, sched = _optimizer(model, tc)
    history = fit(
        model,
        opt,
        train_data,
        step,
        loop,
        val_data=val_data,
        validation_step=step if val_data is not None else None,
        workdir=out.with_name(out.name + ".work"),
        resume=resume,
        scheduler=sched,
    )
    spec = input_spec(config)
    tensors = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return save_model(
        out,
        tensors,
        pipeline="dla",
        architecture="dla_window_cnn",
        config=to_dict(arch),
        preprocessing={
            "input": spec.to_dict(),
            "data": to_dict(config.data),
            "s2n_range": list(config.input.s2n_range),
        },
        label_names=list(OUTPUT_NAMES),
        training={
            "command": command,
            "seed": tc.seed,
            "config": to_dict(config),
            "config_hash": config_hash(config),
            "dataset": str(path),
            "data_hash": arrays_sha256([ds.flux]),
            "history": history.rows,
            **({"init": init_meta} if init_meta is not None else {}),
        },
        overwrite=overwrite or resume,
    )


# ----------------------------------------------------------------------------- vetter


def _pair_truths(
    files: Sequence[str | os.PathLike[str]], truths: Sequence[str | os.PathLike[str]]
) -> dict[str, list[str]]:
    """truth file -> its coadd files: the only truth, or the truth in the file's folder."""
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
            config=to_dict(PredictConfig(vet_features=True)),
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
    out = _check_out(out, overwrite)
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
    out = _check_out(out, overwrite or resume)
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
