"""The one training driver of every pipeline: a :class:`TrainTask` supplies the hooks.

:func:`run_training` does what every pipeline's training has in common, in this order:

1. refuse an existing model directory unless ``overwrite`` or ``resume`` (before any work);
2. ask the task for its samples and the seeded train/validation split (:func:`split_indices`);
3. build the model through the registry (:func:`surveynet.registry.get_architecture`), seeded
   from ``seed`` inside ``torch.random.fork_rng`` so the caller's RNG state is untouched;
4. ``--init``: load a saved model's weights (:func:`init_weights`: same architecture config,
   or a grown input layer, or a task-specific growth rule);
5. optimiser (Adam) and per-epoch learning-rate schedule (:func:`lr_factor`);
6. :func:`surveynet.nn.loop.fit` with the work folder ``<out>.work`` (resume checkpoint); the
   global torch generator (dropout) is reseeded at every epoch from ``(seed, epoch)``, so that a
   resumed run equals an uninterrupted one;
7. save ``model.safetensors`` and ``config.json`` (with the provenance: command, seed, full
   config, data hash, init); then the task's ``after_save`` hook (e.g. calibration on the
   validation split), which may rewrite the preprocessing metadata; last ``history.json``.

The hook names follow Lightning (``training_step``, ``validation_step``, ``on_epoch_start``)
without the dependency. Torch is imported by this module: never import it at inference.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from surveynet.errors import ConfigError
from surveynet.io.fits import atomic_path
from surveynet.io.model import SavedModel, load_model, save_model
from surveynet.nn.loop import Batch, History, LoopConfig, fit

log = logging.getLogger(__name__)

StepFn = Callable[[torch.nn.Module, Batch], torch.Tensor]

#: Suffix of the training work folder (resume checkpoint, running history) beside ``out``.
WORK_SUFFIX = ".work"


def split_indices(
    n: int, val_fraction: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Seeded random train/validation split of ``n`` samples.

    The first ``round(val_fraction * n)`` entries of ``rng.permutation(n)`` validate (none when
    ``n <= 1``); both index arrays are sorted.

    Parameters
    ----------
    n : int
        Number of samples.
    val_fraction : float
        Fraction in [0, 1) kept for validation.
    rng : numpy.random.Generator
        Source of the permutation (the caller may keep drawing from it afterwards).

    Returns
    -------
    train, val : ndarray of int64
        Sorted indices.

    Examples
    --------
    >>> tr, va = split_indices(10, 0.2, np.random.default_rng(0))
    >>> len(tr), len(va), sorted([*tr, *va]) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = rng.permutation(n)
    n_val = round(val_fraction * n) if n > 1 else 0
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)


def lr_factor(
    kind: str, epochs: int, decay_start: int = 0, min_factor: float = 0.0
) -> Callable[[int], float]:
    """Per-epoch learning-rate multiplier ``f(epoch)`` (epoch counted from 0) for ``LambdaLR``.

    ``"constant"``: 1. ``"cosine"``: 1 for ``epoch < decay_start``, then
    ``m + (1 - m) (1 + cos(pi (epoch - decay_start) / (epochs - decay_start))) / 2`` with
    ``m = min_factor``.

    Parameters
    ----------
    kind : {"constant", "cosine"}
        Schedule.
    epochs : int
        Total number of epochs.
    decay_start : int
        Epochs at the full rate before the cosine decay starts.
    min_factor : float
        The multiplier the cosine decay approaches.

    Returns
    -------
    callable
        ``f(epoch) -> float``.

    Examples
    --------
    >>> f = lr_factor("cosine", 4, 2, 0.0)
    >>> [round(f(e), 3) for e in range(4)]
    [1.0, 1.0, 1.0, 0.5]
    """
    if kind not in ("constant", "cosine"):
        raise ConfigError(f"lr schedule must be 'constant' or 'cosine', got {kind!r}")
    if kind == "cosine" and not 0 <= decay_start < epochs:
        raise ConfigError(f"lr decay start {decay_start} must be in [0, epochs={epochs})")

    def f(epoch: int) -> float:
        if kind == "constant" or epoch < decay_start:
            return 1.0
        t = (epoch - decay_start) / (epochs - decay_start)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


@dataclass(frozen=True, kw_only=True)
class Optimisation:
    """The optimisation settings the driver reads from a pipeline's ``train`` section.

    Attributes
    ----------
    epochs, batch_size, seed, patience : int
        Loop settings (``patience`` 0 = no early stopping).
    lr : float
        Adam learning rate.
    amsgrad : bool
        Adam's AMSGrad variant.
    weight_decay : float
        Adam's (L2) weight decay.
    lr_schedule : {"constant", "cosine"}
        Per-epoch schedule (:func:`lr_factor`).
    lr_decay_start : int
        Epochs before the cosine decay.
    lr_min : float
        Learning rate the cosine decay approaches.
    max_batches : int
        Batches per epoch (0 = all; a smoke-test knob).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    epochs: int
    batch_size: int
    seed: int
    patience: int = 0
    lr: float = 1e-3
    amsgrad: bool = False
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_decay_start: int = 0
    lr_min: float = 0.0
    max_batches: int = 0
    device: str = "cpu"

    @classmethod
    def from_section(cls, section: Any, **overrides: Any) -> Optimisation:
        """The settings of a pipeline's ``train`` section: every field it has, then ``overrides``.

        Parameters
        ----------
        section : dataclass
            The config's ``train`` section (fields named as here are taken).
        **overrides
            Values that replace or complete the section's.

        Returns
        -------
        Optimisation

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> tc = SimpleNamespace(epochs=3, batch_size=8, seed=1, lr=0.01, colour="red")
        >>> o = Optimisation.from_section(tc, lr_schedule="cosine")
        >>> o.epochs, o.lr, o.lr_schedule, o.amsgrad
        (3, 0.01, 'cosine', False)
        """
        names = [f.name for f in fields(cls)]
        values = {n: getattr(section, n) for n in names if hasattr(section, n)}
        values.update(overrides)
        return cls(**values)


@dataclass
class TrainData:
    """What a task hands to the loop.

    Attributes
    ----------
    train : list of ndarray
        Training arrays, batched together along their first axis.
    val : list of ndarray or None
        Validation arrays.
    training_step : callable
        ``training_step(model, batch) -> loss``.
    validation_step : callable or None
        Validation loss (default: ``training_step``).
    data_hash : str
        Hash of the training samples (recorded in ``config.json``).
    info : dict
        Extra provenance (sample counts, classes, ...).
    """

    train: list[NDArray[Any]]
    val: list[NDArray[Any]] | None
    training_step: StepFn
    validation_step: StepFn | None = None
    data_hash: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class TrainTask:
    """Hooks of one pipeline's training (subclass and override; a Lightning-style task).

    Attributes
    ----------
    pipeline : str
        Pipeline name written in ``config.json``.
    architecture : str
        Registry name of the architecture.
    config : Any
        The pipeline's full config root (saved as ``training.config``).
    """

    pipeline = ""

    def __init__(self, config: Any, architecture: str) -> None:
        self.config = config
        self.architecture = architecture

    # ---------------------------------------------------------------- what the task must supply
    def optimisation(self) -> Optimisation:
        """The optimisation settings (from the config's ``train`` section)."""
        raise NotImplementedError

    def arch_config(self) -> dict[str, Any]:
        """Keyword arguments of the registered architecture builder."""
        raise NotImplementedError

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """Build the training arrays and the steps.

        Parameters
        ----------
        model : torch.nn.Module
            The freshly built model (steps close over nothing else of it).
        rng : numpy.random.Generator
            ``default_rng(seed)``; the task draws its split from it first
            (:func:`split_indices`), then whatever sampling it needs.
        """
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """``preprocessing`` and ``label_names`` to store in ``config.json``."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- optional hooks
    def on_epoch_start(self, epoch: int) -> None:
        """Called before every epoch (0-based), e.g. to reseed a data augmentation."""

    def state_dict_numpy(self, model: torch.nn.Module) -> dict[str, NDArray[Any]]:
        """Weights to save (default: the whole ``state_dict`` as numpy)."""
        return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}

    def load_weights(self, model: torch.nn.Module, tensors: dict[str, NDArray[Any]]) -> None:
        """Load saved weights strictly (``--init``)."""
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})

    #: Architecture-config fields that only shape the training samples (may differ on --init).
    free_init_fields: tuple[str, ...] = ()
    #: ``state_dict`` key of the first convolution's weight (in_channels growth on --init).
    input_weight_key: str | None = None

    def grow(
        self, model: torch.nn.Module, saved: SavedModel, diff: list[str]
    ) -> dict[str, Any] | None:
        """Task-specific ``--init`` growth rule; return provenance, or None when not applicable."""
        return None

    def after_save(self, path: Path, model: torch.nn.Module) -> dict[str, Any] | None:
        """Run after the first save; return updated ``preprocessing`` to re-save, or None."""
        return None


def init_weights(
    task: TrainTask, model: torch.nn.Module, init: str | os.PathLike[str]
) -> dict[str, Any]:
    """Load a saved model's weights into ``model`` (fine-tuning; ``--init``).

    The saved architecture and config must equal the task's (except ``task.free_init_fields``).
    Two growths are allowed: only ``in_channels`` larger (the saved first convolution,
    ``task.input_weight_key``, fills the first input channels and the added channels start at
    zero, so the model starts with the saved outputs), or the task's own rule
    (:meth:`TrainTask.grow`).

    Parameters
    ----------
    task : TrainTask
        The pipeline's task.
    model : torch.nn.Module
        The built model, loaded in place.
    init : path or bundled name
        The saved model.

    Returns
    -------
    dict
        Provenance recorded as ``training.init`` (model name, weights hash, growth).

    Raises
    ------
    ConfigError
        A different architecture, or config fields that differ otherwise (named).
    """
    saved = load_model(init, pipeline=task.pipeline)
    if saved.architecture != task.architecture:
        raise ConfigError(
            f"--init {init}: architecture {saved.architecture!r}, "
            f"the config asks for {task.architecture!r}"
        )
    arch = task.arch_config()
    diff = sorted(
        k
        for k in set(saved.config) | set(arch)
        if saved.config.get(k) != arch.get(k) and k not in task.free_init_fields
    )
    meta: dict[str, Any] = {"model": saved.name, "weights_sha256": saved.weights_hash}
    if diff:
        grown = task.grow(model, saved, diff)
        if grown is not None:
            return {**meta, **grown}
    if diff == ["in_channels"] and task.input_weight_key is not None:
        old_c, new_c = int(saved.config["in_channels"]), int(arch["in_channels"])
        if new_c > old_c:
            key = task.input_weight_key
            w = torch.zeros_like(model.state_dict()[key]).numpy()
            w[:, :old_c] = saved.tensors[key]
            task.load_weights(model, {**saved.tensors, key: w})
            log.info("initialised from %s, %d input channels added", saved.name, new_c - old_c)
            return {**meta, "grown_from_in_channels": old_c}
    if diff:
        raise ConfigError(
            f"--init {init}: its architecture differs from the config in: {', '.join(diff)}"
        )
    task.load_weights(model, saved.tensors)
    log.info("initialised from %s (%s)", saved.name, saved.weights_hash)
    return meta


def check_output_dir(
    out: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False
) -> Path:
    """Refuse an existing model directory unless ``overwrite`` or ``resume`` (before any work).

    Parameters
    ----------
    out : path
        Model directory to write.
    overwrite, resume : bool
        Either allows an existing ``out``.

    Returns
    -------
    Path
        ``out`` as a Path.

    Raises
    ------
    FileExistsError
        ``out`` exists and neither flag is set.
    """
    p = Path(out)
    if p.exists() and not overwrite and not resume:
        raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    return p


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_training(
    task: TrainTask,
    out: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    init: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    name: str | None = None,
    extra_training: dict[str, Any] | None = None,
) -> Path:
    """Train a pipeline's model and write its model directory.

    Parameters
    ----------
    task : TrainTask
        The pipeline's hooks and config.
    out : path
        Model directory to write.
    workdir : path, optional
        Resume checkpoint and running history (default ``<out>.work``).
    resume : bool
        Continue from the checkpoint in the work folder.
    init : path or bundled name, optional
        Start from these weights (:func:`init_weights`); a resumed checkpoint wins.
    overwrite : bool
        Replace an existing model directory (checked before any work).
    quiet : bool
        No progress bar.
    command : str
        The command line recorded in ``config.json``.
    name : str, optional
        Model name (default: the directory name).
    extra_training : dict, optional
        More provenance for ``config.json["training"]``.

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
    """
    from surveynet.config import config_hash, to_dict
    from surveynet.registry import get_architecture

    outp = check_output_dir(out, overwrite=overwrite, resume=resume)
    wd = Path(workdir) if workdir is not None else outp.with_name(outp.name + WORK_SUFFIX)
    opt_cfg = task.optimisation()
    seed = opt_cfg.seed
    dev = _device(opt_cfg.device)
    builder = get_architecture(task.architecture)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # scoped: the caller's RNG state is restored
        model = builder(**task.arch_config())
    rng = np.random.default_rng(seed)
    data = task.setup(model, rng)
    init_meta = init_weights(task, model, init) if init is not None else None
    model = model.to(dev)

    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=opt_cfg.lr,
        amsgrad=opt_cfg.amsgrad,
        weight_decay=opt_cfg.weight_decay,
    )
    sched = None
    if opt_cfg.lr_schedule != "constant":
        factor = lr_factor(
            opt_cfg.lr_schedule,
            opt_cfg.epochs,
            opt_cfg.lr_decay_start,
            opt_cfg.lr_min / opt_cfg.lr if opt_cfg.lr else 0.0,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def epoch_start(epoch: int) -> None:
        # dropout draws from torch's global generator: reseed it from (seed, epoch), inside the
        # fork_rng below, so a resumed run draws what an uninterrupted one would
        torch.manual_seed(_epoch_seed(seed, epoch))
        task.on_epoch_start(epoch)

    def on_device(step: StepFn) -> StepFn:
        if dev == "cpu":
            return step

        def moved(m: torch.nn.Module, batch: Batch) -> torch.Tensor:
            return step(m, tuple(b.to(dev, non_blocking=True) for b in batch))

        return moved

    loop = LoopConfig(
        epochs=opt_cfg.epochs,
        batch_size=opt_cfg.batch_size,
        seed=seed,
        patience=opt_cfg.patience,
        quiet=quiet,
        max_batches=opt_cfg.max_batches,
    )
    val_step = data.validation_step or data.training_step
    devices = [torch.cuda.current_device()] if dev.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        # on resume, fit() fast-forwards the scheduler before any optimizer step; torch warns
        # about that order, which is intended here
        warnings.filterwarnings(
            "ignore",
            message=r"Detected call of `lr_scheduler.step\(\)` before",
            category=UserWarning,
        )
        history: History = fit(
            model,
            optimizer,
            data.train,
            on_device(data.training_step),
            loop,
            val_data=data.val,
            validation_step=on_device(val_step) if data.val is not None else None,
            workdir=wd,
            resume=resume,
            scheduler=sched,
            epoch_start=epoch_start,
        )
    model = model.to("cpu").eval()
    tensors = task.state_dict_numpy(model)
    meta = task.metadata()
    training: dict[str, Any] = {
        "command": command,
        "seed": seed,
        "config": to_dict(task.config),
        "config_hash": config_hash(task.config),
        "data_hash": data.data_hash,
        **data.info,
        "device": dev,
        "torch_version": torch.__version__,
        "final": history.rows[-1] if history.rows else {},
        **(extra_training or {}),
    }
    if init_meta is not None:
        training["init"] = init_meta

    def save(preprocessing: dict[str, Any], replace: bool) -> Path:
        return save_model(
            outp,
            tensors,
            pipeline=task.pipeline,
            architecture=task.architecture,
            config=task.arch_config(),
            preprocessing=preprocessing,
            label_names=list(meta["label_names"]),
            training=training,
            name=name,
            overwrite=replace,
        )

    path = save(meta["preprocessing"], True)
    updated = task.after_save(path, model)
    if updated is not None:
        path = save(updated, True)
    # after the last save: save_model replaces the whole directory
    with atomic_path(path / "history.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(history.rows, indent=1) + "\n")
    log.info("model written to %s", path)
    return path


def training_command(parts: Sequence[str]) -> str:
    """A shell-quoted command line (recorded as ``training.command``).

    Examples
    --------
    >>> training_command(["surveynet", "dla", "train", "a b.fits"])
    "surveynet dla train 'a b.fits'"
    """
    import shlex

    return " ".join(shlex.quote(str(p)) for p in parts)
