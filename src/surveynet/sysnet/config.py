"""The sysnet config root :class:`SysnetConfig` and the mapping of sysnetdev's flat YAML keys.

Sections: ``data`` (input table, ordering, axes), ``model`` (architecture and structure),
``train`` (optimiser, schedule, folds, chains, loss), ``tune`` (LR/structure/L1 finders, RFE),
``weights`` (post-processing of predictions into weights), ``evaluate`` (diagnostics) and
``output``. A sysnetdev ``config.yaml`` uses flat keys (``input_path``, ``nepochs``, ...);
:func:`config_from_mapping` accepts both that flat form and the sectioned form, and rejects any
unknown key by name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from surveynet.config import apply_overrides, from_dict, load_config_file, to_dict
from surveynet.errors import ConfigError

MODEL_NAMES = ("dnn", "dnnp", "dnnps", "lin", "linp")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Inputs.

    Attributes
    ----------
    input_path : str
        The table FITS (``hpix``/``hpind``, ``label``, ``fracgood``, ``features``), or, with
        ``label_path``, the features table of the two-file form.
    label_path : str or None
        HEALPix label map (two-file form: label read at ``hpix``, fracgood 1 unless the
        features table has a ``fracgood`` column).
    ordering : {"auto", "ring", "nested"}
        Pixel ordering; ``auto`` reads the ``ORDERING`` header keyword (default RING).
    nside : int or None
        HEALPix nside; None reads ``NSIDE`` from the header, else the smallest nside that holds
        the pixel numbers.
    axes : tuple of int or None
        Feature columns used (None: all). sysnetdev normalises all columns, then selects.
    """

    input_path: str = ""
    label_path: str | None = None
    ordering: Literal["auto", "ring", "nested"] = "auto"
    nside: int | None = None
    axes: tuple[int, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Network.

    Attributes
    ----------
    model : {"dnn", "dnnp", "dnnps", "lin", "linp"}
        Architecture (sysnetdev names; registered as ``sysnet_<name>``).
    nn_structure : tuple of (int, int)
        ``(nb_layers, nb_units)``: nb_layers counts the output layer (4 -> 3 hidden layers).
    """

    model: Literal["dnn", "dnnp", "dnnps", "lin", "linp"] = "dnnp"
    nn_structure: tuple[int, int] = (4, 20)

    def __post_init__(self) -> None:
        """Validate values (ValueError naming the key)."""
        if self.nn_structure[0] < 2 or self.nn_structure[1] < 1:
            raise ValueError(f"model.nn_structure must be (>=2, >=1), got {self.nn_structure}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training.

    Attributes
    ----------
    batch_size, nepochs, nchains : int
        Mini-batch size, epochs, ensemble members per fold.
    learning_rate, eta_min : float
        Peak learning rate and cosine floor.
    optim : {"adamw", "adam", "sgd"}
        Optimiser (weight decay 0, as sysnetdev).
    scheduler : {"cosann", "none"}
        CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) stepped every batch, or constant.
    t0, t_mult : int
        Restart period and multiplier.
    loss : {"pnll", "mse"}
        Per-pixel loss.
    loss_weighting : {"fracgood", "legacy"}
        ``fracgood`` (sysnetdev since 2021-10-27): per-pixel loss times fracgood again;
        ``legacy``: no extra factor.
    l1_alpha : float
        L1 penalty on the first-layer weights (<= 0: off).
    normalization : {"z-score", "minmax"}
        Feature scaling from the training split.
    do_kfold : bool
        5-fold partitions (every pixel predicted once); else one 60/20/20 split.
    nfolds, seed : int
        Folds and split seed (sysnetdev: 5, 85).
    split : {"random", "geometric"}
        k-fold over random pixels (sysnetdev) or over blocks of ``1000 (nside/256)^2``
        contiguous NESTED pixels (regressis), which keeps test regions away from training
        pixels and limits the fit of clustering.
    snapshot_ensemble : bool
        Also keep the weights at the end of each cosine cycle as extra columns.
    restore_model : str or None
        A model directory or sysnetdev ``best.pth.tar`` to start the chains from.
    baselines : tuple of str
        Baselines fitted on the same folds: ``linear`` (closed form), ``forest`` (regressis).
    forest_trees, forest_min_leaf : int
        RandomForest size (regressis: 200, 20).
    workers : int
        Dask worker processes running the partitions (0: in process).
    dask_scheduler : str or None
        Address of an existing Dask scheduler (overrides ``workers``).
    init_bias : bool
        Start the output bias at the training mean density (mean y / mean f through the inverse
        head), so the first prediction is the constant baseline. sysnetdev starts from torch's
        default (output near softplus(0) = 0.69), which costs many epochs on raw counts; set
        false to reproduce it.
    quiet : bool
        No progress bar.
    """

    batch_size: int = 512
    nepochs: int = 70
    nchains: int = 1
    learning_rate: float = 1e-3
    eta_min: float = 1e-5
    optim: Literal["adamw", "adam", "sgd"] = "adamw"
    scheduler: Literal["cosann", "none"] = "cosann"
    t0: int = 10
    t_mult: int = 2
    loss: Literal["pnll", "mse"] = "pnll"
    loss_weighting: Literal["fracgood", "legacy"] = "fracgood"
    l1_alpha: float = -1.0
    normalization: Literal["z-score", "minmax"] = "z-score"
    do_kfold: bool = False
    nfolds: int = 5
    seed: int = 85
    split: Literal["random", "geometric"] = "random"
    snapshot_ensemble: bool = False
    restore_model: str | None = None
    baselines: tuple[str, ...] = ("linear", "forest")
    forest_trees: int = 100
    forest_min_leaf: int = 20
    init_bias: bool = True
    workers: int = 0
    dask_scheduler: str | None = None
    quiet: bool = True

    def __post_init__(self) -> None:
        """Validate values (ValueError naming the key)."""
        for key in ("batch_size", "nepochs", "nchains", "nfolds", "t0", "t_mult"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise ValueError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        for b in self.baselines:
            if b not in ("linear", "forest"):
                raise ValueError(f"train.baselines: unknown baseline {b!r} (linear, forest)")


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    """Tuning tools (each result is saved as JSON in the output folder).

    Attributes
    ----------
    find_lr, find_structure, find_l1, do_rfe : bool
        Run the LR finder, structure finder, L1 finder, recursive feature elimination.
    use : str or None
        A ``tuning.json`` from an earlier run whose choices (learning_rate, nn_structure,
        l1_alpha, axes) replace the config values.
    lr_iters : int
        Steps of the LR range test (sysnetdev: 300).
    finder_epochs : int
        Epochs per candidate of the structure and L1 finders (sysnetdev: 50).
    """

    find_lr: bool = False
    find_structure: bool = False
    find_l1: bool = False
    do_rfe: bool = False
    use: str | None = None
    lr_iters: int = 300
    finder_epochs: int = 50


@dataclass(frozen=True, kw_only=True)
class WeightsConfig:
    """Predictions to weights.

    Attributes
    ----------
    combine : {"mean", "median"}
        How chains are combined.
    clip_min, clip_max : float
        Allowed range of the normalised selection.
    mode : {"clip", "mask"}
        Clip to the range, or set weight 0 (selection NaN) outside it.
    """

    combine: Literal["mean", "median"] = "mean"
    clip_min: float = 0.5
    clip_max: float = 2.0
    mode: Literal["clip", "mask"] = "clip"


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Diagnostics.

    Attributes
    ----------
    nbins : int
        Equal-count bins of each systematic for the mean-density curves.
    lmax : int or None
        Largest multipole (None: 3 nside - 1).
    """

    nbins: int = 10
    lmax: int | None = None


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """Outputs.

    Attributes
    ----------
    output_path : str
        Output folder.
    do_tar : bool
        Also pack the model directories into ``models.tar.gz`` (with :mod:`tarfile`).
    """

    output_path: str = ""
    do_tar: bool = False


@dataclass(frozen=True, kw_only=True)
class SysnetConfig:
    """The sysnet pipeline config root.

    Sections: data, model, train, tune, weights, evaluate, output.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


#: sysnetdev flat key -> (section, key) of :class:`SysnetConfig`.
ANCHOR_KEYS: dict[str, tuple[str, str]] = {
    "input_path": ("data", "input_path"),
    "output_path": ("output", "output_path"),
    "restore_model": ("train", "restore_model"),
    "batch_size": ("train", "batch_size"),
    "nepochs": ("train", "nepochs"),
    "nchains": ("train", "nchains"),
    "find_lr": ("tune", "find_lr"),
    "find_structure": ("tune", "find_structure"),
    "find_l1": ("tune", "find_l1"),
    "do_kfold": ("train", "do_kfold"),
    "do_tar": ("output", "do_tar"),
    "snapshot_ensemble": ("train", "snapshot_ensemble"),
    "normalization": ("train", "normalization"),
    "model": ("model", "model"),
    "optim": ("train", "optim"),
    "scheduler": ("train", "scheduler"),
    "axes": ("data", "axes"),
    "do_rfe": ("tune", "do_rfe"),
    "eta_min": ("train", "eta_min"),
    "learning_rate": ("train", "learning_rate"),
    "nn_structure": ("model", "nn_structure"),
    "l1_alpha": ("train", "l1_alpha"),
    "loss": ("train", "loss"),
}

_SECTIONS = tuple(f.name for f in dataclasses.fields(SysnetConfig))


def config_from_mapping(data: dict[str, Any]) -> SysnetConfig:
    """Build a :class:`SysnetConfig` from a sectioned or a flat (sysnetdev) mapping.

    Parameters
    ----------
    data : dict
        Either ``{"train": {...}, ...}`` or sysnetdev's flat keys (:data:`ANCHOR_KEYS`), or a mix.
        ``axes: all`` means every feature.

    Returns
    -------
    SysnetConfig

    Raises
    ------
    ConfigError
        Naming an unknown key or a value of the wrong type.

    Examples
    --------
    >>> config_from_mapping({"nepochs": 3, "model": "lin"}).train.nepochs
    3
    """
    nested: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            nested.setdefault(key, {}).update(value)
        elif key in ANCHOR_KEYS:
            sec, name = ANCHOR_KEYS[key]
            if key == "axes" and isinstance(value, str) and value.lower() == "all":
                value = None
            if key == "model" and isinstance(value, dict):  # pragma: no cover - sectioned form
                nested.setdefault("model", {}).update(value)
                continue
            nested.setdefault(sec, {})[name] = value
        else:
            raise ConfigError(
                f"unknown config key {key!r}; valid flat keys: {', '.join(sorted(ANCHOR_KEYS))}"
                f"; sections: {', '.join(_SECTIONS)}"
            )
    if isinstance(nested.get("data", {}).get("axes"), str):
        if nested["data"]["axes"].lower() == "all":
            nested["data"]["axes"] = None
    return from_dict(SysnetConfig, nested)


def resolve_sysnet_config(
    path: str | os.PathLike[str] | None,
    overrides: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> SysnetConfig:
    """Defaults, then the file (JSON/YAML, flat or sectioned), then ``extra``, then ``--set``.

    Parameters
    ----------
    path : path or None
        Config file.
    overrides : list of str
        ``section.key=value`` strings; flat sysnetdev keys (``nepochs=5``) are accepted too.
    extra : dict, optional
        Flat or sectioned values from command-line flags, applied before ``overrides``.

    Returns
    -------
    SysnetConfig
    """
    base = to_dict(SysnetConfig())
    if path:
        _merge(base, to_dict(config_from_mapping(load_config_file(path))), _explicit(path))
    if extra:
        _merge(base, to_dict(config_from_mapping(extra)), _explicit_dict(extra))
    cfg = from_dict(SysnetConfig, base)
    fixed = []
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if sep and "." not in key and key.strip() in ANCHOR_KEYS:
            sec, name = ANCHOR_KEYS[key.strip()]
            if key.strip() == "axes" and value.strip().lower() == "all":
                value = "null"
            item = f"{sec}.{name}={value}"
        fixed.append(item)
    return apply_overrides(cfg, fixed)


def _explicit_dict(data: dict[str, Any]) -> set[tuple[str, str]]:
    """(section, key) pairs given explicitly in a flat or sectioned mapping."""
    keys: set[tuple[str, str]] = set()
    for k, v in data.items():
        if k in _SECTIONS and isinstance(v, dict):
            keys.update((k, n) for n in v)
        elif k in ANCHOR_KEYS:
            keys.add(ANCHOR_KEYS[k])
    return keys


def _explicit(path: str | os.PathLike[str]) -> set[tuple[str, str]]:
    """(section, key) pairs given explicitly in a config file."""
    return _explicit_dict(load_config_file(path))


def _merge(base: dict[str, Any], new: dict[str, Any], keys: set[tuple[str, str]]) -> None:
    """Copy the explicitly given ``keys`` of ``new`` into ``base`` in place."""
    for sec, name in keys:
        base[sec][name] = new[sec][name]
