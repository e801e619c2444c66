"""Configuration of the quasar pipeline (QuasarNET): grid, lines, architecture, training, output.

Every architecture constant of QuasarNET is a field of :class:`QuasarNetConfig` (spec quasarnet.md
§1.2-1.3; ngbusca/QuasarNET:py/quasarnet/models.py, dylanagreen/QuasarNET:py/quasarnet/models.py).
``to_dict(QuasarNetConfig(...))`` is the ``config`` stored in a model's ``config.json`` and is
passed as keyword arguments to the registered ``"quasarnet"`` builder. The wavelength grid and the
head-to-line mapping are preprocessing metadata stored next to it (see
:func:`preprocessing_metadata`).

The top-level :class:`QuasarConfig` (sections ``data``, ``grid``, ``lines``, ``model``,
``train``, ``predict``, ``evaluate``) is the one config root of the pipeline: every quasar command
(``prepare``, ``train``, ``predict``, ``evaluate``) resolves it from ``--config FILE``, its
shortcut flags and ``--set section.key=value``, and saves it with its output. Shortcut flags:

================== ======================= ===================================================
flag               key                     command
================== ======================= ===================================================
--simulate N       data.simulate           prepare
--seed S           data.seed               prepare (simulation seed)
--chunk N          data.chunk              prepare
--seed S           train.seed              train
--device D         train.device            train
--threads N        train.threads           train
--max-batches N    train.max_batches       train
--lr-schedule K    train.lr_schedule       train
--lr-decay-start E train.lr_decay_start    train
--lr-min LR        train.lr_min            train
--model M          predict.model           predict
--c-th C           predict.c_th            predict
--n-th N           predict.n_th            predict, evaluate
--edge E           predict.edge            predict
--batch-size N     predict.batch_size      predict
--dv-max V         evaluate.dv_max         evaluate
--model M          evaluate.model          evaluate
--model M          predict.model           calibrate (the model of the catalogue)
--n-th N           predict.n_th            calibrate (score = n_th-th largest confidence)
--method M         calibrate.method        calibrate
--bins N           calibrate.n_bins        calibrate, evaluate (reliability bins)
================== ======================= ===================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from surveynet.bal import BalConfig
from surveynet.quasar.lines import DEFAULT_LINES, DEFAULT_LINES_BAL, rest_wavelengths

#: log10 grid of every published model: l_min = log10(3600), dl = 1e-3 dex, 443 bins
#: (int((log10(1e4) - log10(3600)) / 1e-3) = int(443.697); spec §1.1).
LOG_GRID_START = 3600.0
LOG_GRID_STEP = 1e-3
LOG_GRID_BINS = 443
#: Bundled model used by ``quasar predict`` and the demo unless ``predict.model`` says otherwise.
DEFAULT_MODEL = "qn_mock_6layer"
#: Linear grid (QuasarNP >= 0.1.6, DESI "linear" weights): 13.6 A = 17 DESI pixels, 458 bins.
LINEAR_GRID_START = 3600.0
LINEAR_GRID_STEP = 13.6
LINEAR_GRID_BINS = 458


@dataclass(frozen=True, kw_only=True)
class GridConfig:
    """Input wavelength grid of the network.

    ``wave()[i]`` is the **lower edge** of bin ``i``: a pixel at wavelength ``lam`` falls in bin
    ``floor((log10(lam) - log10(start)) / step)`` (log) or ``floor((lam - start) / step)`` (linear).

    Attributes
    ----------
    kind : {"log", "linear"}
        Constant spacing in log10(lambda) or in lambda.
    start : float
        Lower edge of bin 0, Angstrom.
    step : float
        Bin width: dex for ``"log"``, Angstrom for ``"linear"``.
    n_bins : int
        Number of bins (= network input length).
    """

    kind: Literal["log", "linear"] = "log"
    start: float = LOG_GRID_START
    step: float = LOG_GRID_STEP
    n_bins: int = LOG_GRID_BINS

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        if self.kind not in ("log", "linear"):
            raise ValueError(f"grid.kind must be 'log' or 'linear', got {self.kind!r}")
        if not (self.start > 0 and self.step > 0 and self.n_bins > 0):
            raise ValueError(
                "grid needs start > 0, step > 0, n_bins > 0; "
                f"got {self.start}, {self.step}, {self.n_bins}"
            )

    @classmethod
    def log(cls) -> GridConfig:
        """Return the 443-bin log10 grid of the published models (3600-9961 A)."""
        return cls(kind="log", start=LOG_GRID_START, step=LOG_GRID_STEP, n_bins=LOG_GRID_BINS)

    @classmethod
    def linear(cls) -> GridConfig:
        """Return the 458-bin linear grid (13.6 A, 3600.0-9815.2 A)."""
        return cls(
            kind="linear", start=LINEAR_GRID_START, step=LINEAR_GRID_STEP, n_bins=LINEAR_GRID_BINS
        )

    @classmethod
    def from_wave(cls, wave: NDArray[Any], *, rtol: float = 1e-6) -> GridConfig:
        """Recognise a grid of lower bin edges with constant linear or constant log10 spacing.

        Parameters
        ----------
        wave : ndarray of shape (n_bins,)
            Lower bin edges, Angstrom, increasing.
        rtol : float
            Relative tolerance on the constancy of the spacing.

        Returns
        -------
        GridConfig

        Raises
        ------
        ValueError
            Fewer than 2 values, non-increasing, or neither linear nor log spacing.

        Examples
        --------
        >>> g = GridConfig.from_wave(GridConfig.log().wave())
        >>> g.kind, g.n_bins
        ('log', 443)
        """
        w = np.asarray(wave, dtype=np.float64)
        if w.ndim != 1 or w.size < 2 or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("a wavelength grid must be 1-D, finite, positive, with >= 2 values")
        d = np.diff(w)
        if np.any(d <= 0):
            raise ValueError("wavelength grid is not strictly increasing")
        if np.allclose(d, d.mean(), rtol=rtol, atol=0):
            step = (w[-1] - w[0]) / (w.size - 1)
            return cls(
                kind="linear", start=float(w[0]), step=float(round(step, 10)), n_bins=int(w.size)
            )
        dl = np.diff(np.log10(w))
        if np.allclose(dl, dl.mean(), rtol=rtol, atol=0):
            step = (np.log10(w[-1]) - np.log10(w[0])) / (w.size - 1)
            return cls(
                kind="log", start=float(w[0]), step=float(round(step, 12)), n_bins=int(w.size)
            )
        raise ValueError("wavelength grid has neither constant linear nor constant log10 spacing")

    def wave(self) -> NDArray[np.float64]:
        """Lower bin edges, Angstrom, shape (n_bins,).

        Examples
        --------
        >>> w = GridConfig.log().wave()
        >>> float(w[0]), round(float(w[-1]), 2)
        (3600.0, 9960.99)
        >>> w = GridConfig.linear().wave()
        >>> len(w), round(float(w[-1]), 1)
        (458, 9815.2)
        """
        i = np.arange(self.n_bins, dtype=np.float64)
        if self.kind == "log":
            return np.asarray(10.0 ** (math.log10(self.start) + self.step * i))
        return np.round(self.start + self.step * i, 10)

    def bin_index(self, wave: NDArray[Any]) -> NDArray[np.int64]:
        """Return the bin of each wavelength (< 0 or >= n_bins for pixels off the grid).

        Log grid: ``floor((log10(lam) - log10(start)) / step)``; linear grid:
        ``floor((lam - start) / step)``; the ratio is rounded to 10 decimals first, so that a
        pixel sitting exactly on a bin edge (the grid's own wavelengths) stays in that bin despite
        float error (QuasarNP ``utils.regrid`` rounds the linear case; for the log case it changes
        no DESI or BOSS pixel, and makes the grid map onto itself).

        Parameters
        ----------
        wave : ndarray
            Wavelengths, Angstrom.

        Returns
        -------
        ndarray of int64
            Bin indices, same shape as ``wave``.
        """
        lam = np.asarray(wave, dtype=np.float64)
        if self.kind == "log":
            pos = np.round((np.log10(lam) - math.log10(self.start)) / self.step, 10)
        else:
            pos = np.round((lam - self.start) / self.step, 10)
        return np.floor(pos).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class LinesConfig:
    """Head-to-line mapping (names from :data:`surveynet.quasar.lines.ABSORBER_IGM`).

    Attributes
    ----------
    lines : tuple of str
        Emission-line heads, in head order (heads 0 .. n_lines-1).
    lines_bal : tuple of str
        BAL heads, after the emission-line heads.
    """

    lines: tuple[str, ...] = DEFAULT_LINES
    lines_bal: tuple[str, ...] = DEFAULT_LINES_BAL

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        rest_wavelengths(self.lines)  # raises KeyError on unknown names
        rest_wavelengths(self.lines_bal)
        if not self.lines:
            raise ValueError("lines.lines must name at least one line")


@dataclass(frozen=True, kw_only=True)
class QuasarNetConfig:
    """Every architecture constant of QuasarNET (spec quasarnet.md §1.2-1.3).

    Defaults give the Busca & Balland (2018) network with the Farr (2020) rescaled offsets and the
    fork's Dropout(0.2): 4 x [Conv1D(100, k=10, s=2, 'valid') -> BatchNorm -> ReLU -> Dropout],
    Flatten (channels-last) -> Dense(100) -> BatchNorm -> ReLU, then ``n_lines + n_bal`` heads of
    Dense(n_boxes, sigmoid) box + Dense(n_boxes, sigmoid) offset. 521,882 parameters.

    Attributes
    ----------
    n_input : int
        Input length (= grid bins; 443 log, 458 linear).
    n_layers : int
        Number of conv blocks (4 'valid' in the original; 6 'same' in the 2022-2024 DESI models).
    n_filters : int
        Filters per conv layer.
    kernel_size, stride : int
        Conv kernel width and stride.
    padding : {"valid", "same"}
        TensorFlow padding; 'same' pads asymmetrically (left floor(p/2), right the rest).
    n_fc : int
        Units of ``fc_common``.
    n_boxes : int
        Boxes per head (13).
    n_lines, n_bal : int
        Number of emission-line heads and BAL heads.
    dropout : float
        Dropout rate after each conv block (training only; 0.2 in the fork, 0 in the original).
    offset_rescale : bool
        Apply ``offset_shift + offset_scale * sigmoid`` to the offsets (Keras Lambda, since 2020).
    offset_shift, offset_scale : float
        The rescale constants (-0.1, 1.2).
    bn_eps : float
        BatchNorm epsilon (Keras 1e-3; taken from the Keras config on conversion).
    bn_momentum : float
        Keras-convention BatchNorm momentum (0.99: running = 0.99 running + 0.01 batch);
        the torch module uses ``1 - bn_momentum``.
    """

    n_input: int = LOG_GRID_BINS
    n_layers: int = 4
    n_filters: int = 100
    kernel_size: int = 10
    stride: int = 2
    padding: Literal["valid", "same"] = "valid"
    n_fc: int = 100
    n_boxes: int = 13
    n_lines: int = len(DEFAULT_LINES)
    n_bal: int = len(DEFAULT_LINES_BAL)
    dropout: float = 0.2
    offset_rescale: bool = True
    offset_shift: float = -0.1
    offset_scale: float = 1.2
    bn_eps: float = 1e-3
    bn_momentum: float = 0.99

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {self.padding!r}")
        for name in (
            "n_input",
            "n_layers",
            "n_filters",
            "kernel_size",
            "stride",
            "n_fc",
            "n_boxes",
            "n_lines",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_bal < 0:
            raise ValueError(f"n_bal must be >= 0, got {self.n_bal}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.bn_eps <= 0:
            raise ValueError(f"bn_eps must be > 0, got {self.bn_eps}")
        if self.flat_length() < 1:
            raise ValueError(
                f"{self.n_layers} '{self.padding}' conv layers "
                f"(k={self.kernel_size}, s={self.stride}) "
                f"leave no output for an input of {self.n_input}"
            )

    @property
    def n_heads(self) -> int:
        """Total number of heads (lines + BAL)."""
        return self.n_lines + self.n_bal

    def conv_lengths(self) -> list[int]:
        """Output length of each conv layer (0 when the input became too short).

        Examples
        --------
        >>> QuasarNetConfig().conv_lengths()
        [217, 104, 48, 20]
        >>> QuasarNetConfig(n_layers=6, padding="same").conv_lengths()
        [222, 111, 56, 28, 14, 7]
        """
        out, n = [], self.n_input
        for _ in range(self.n_layers):
            if self.padding == "same":
                n = -(-n // self.stride)
            else:
                n = (n - self.kernel_size) // self.stride + 1 if n >= self.kernel_size else 0
            out.append(max(n, 0))
        return out

    def flat_length(self) -> int:
        """Length of the flattened conv output (input of ``fc_common``)."""
        return self.conv_lengths()[-1] * self.n_filters

    def n_parameters(self) -> int:
        """Parameter count as Keras reports it (BatchNorm moving statistics included).

        Examples
        --------
        >>> QuasarNetConfig().n_parameters()
        521882
        >>> QuasarNetConfig(n_layers=6, padding="same").n_parameters()
        592882
        >>> QuasarNetConfig(n_filters=25, n_fc=25).n_parameters()
        36857
        """
        n, c_in = 0, 1
        for _ in range(self.n_layers):
            n += self.kernel_size * c_in * self.n_filters + self.n_filters + 4 * self.n_filters
            c_in = self.n_filters
        n += self.flat_length() * self.n_fc + self.n_fc + 4 * self.n_fc
        n += self.n_heads * 2 * (self.n_fc * self.n_boxes + self.n_boxes)
        return n

    def flops(self) -> int:
        """Multiply-adds x 2 of one forward pass (convs and dense layers; BN/activations ignored).

        Examples
        --------
        >>> round(QuasarNetConfig(n_layers=6, padding="same").flops() / 1e6, 1)
        43.8
        """
        f, c_in = 0, 1
        for n_out in self.conv_lengths():
            f += 2 * n_out * self.kernel_size * c_in * self.n_filters
            c_in = self.n_filters
        f += 2 * self.flat_length() * self.n_fc
        f += 2 * self.n_heads * 2 * self.n_fc * self.n_boxes
        return f


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training hyper-parameters (spec quasarnet.md §2.3-2.4; used by the quasar training step).

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Spectra per step (256 in ngbusca ``qn_train``).
    lr : float
        Adam learning rate (1e-3).
    amsgrad : bool
        AMSGrad variant (Farr 2020).
    weight_decay : float
        L2 penalty (``reg_conv`` = 0 in the original).
    val_fraction : float
        Fraction of the spectra held out for validation.
    loss : {"per_spectrum", "per_batch"}
        Loss normalisation: per spectrum (since 2020-05) or per batch (2018 models).
    patience : int
        Early-stopping patience in epochs (0 = off).
    seed : int
        Seed of the split, initialisation and shuffling.
    offset_weight : float
        Factor on the offset (redshift) term of the loss; 1 is the original loss. The offset
        term of a well-trained model is ~1e-3 of the box term, so a larger weight sharpens the
        redshifts (surveynet's bundled model: see experiments/quasar/train_bundled.sh).
    lr_schedule : {"constant", "cosine"}
        Per-epoch learning-rate schedule (:func:`surveynet.nn.train.lr_factor`).
    lr_decay_start : int
        ``"cosine"``: epochs at constant ``lr`` before the decay starts (so a run resumed from a
        constant-lr checkpoint at that epoch decays from there on).
    lr_min : float
        ``"cosine"``: learning rate reached at the last epoch.
    device : str
        Torch device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    threads : int
        Torch CPU threads (0 = torch's default).
    max_batches : int
        Batches per epoch (smoke runs; 0 = all).
    """

    epochs: int = 5
    batch_size: int = 256
    lr: float = 1e-3
    amsgrad: bool = True
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    loss: Literal["per_spectrum", "per_batch"] = "per_spectrum"
    patience: int = 0
    seed: int = 0
    offset_weight: float = 1.0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_decay_start: int = 0
    lr_min: float = 0.0
    device: str = "cpu"
    threads: int = 0
    max_batches: int = 0

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        from surveynet.errors import ConfigError

        if not self.offset_weight >= 0:
            raise ConfigError(f"train.offset_weight must be >= 0, got {self.offset_weight}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(
                f"train.lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )
        if self.lr_schedule == "cosine" and not 0 <= self.lr_decay_start < self.epochs:
            raise ConfigError(
                f"train.lr_decay_start ({self.lr_decay_start}) must be in [0, "
                f"train.epochs={self.epochs}) with the cosine schedule"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_decay_start", "threads", "max_batches", "patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr_min >= 0 or not self.lr >= 0:
            raise ConfigError(
                f"train.lr and train.lr_min must be >= 0, got {self.lr}, {self.lr_min}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ConfigError(
                f"train.device must be cpu, cuda, cuda:N or auto, got {self.device!r}"
            )


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Training-set preparation (``surveynet quasar prepare``).

    Attributes
    ----------
    simulate : int
        Number of mock spectra to simulate in memory instead of reading files (0 = read files).
    seed : int
        Seed of the simulation (chunk ``k`` uses ``SeedSequence(seed).spawn(n_chunks)[k]``).
    chunk : int
        Spectra per simulated chunk (the result depends on it, not on the worker count).
    """

    simulate: int = 0
    seed: int = 0
    chunk: int = 2000

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        from surveynet.errors import ConfigError

        if self.simulate < 0 or self.chunk < 1:
            raise ConfigError(
                f"data.simulate must be >= 0 and data.chunk >= 1, got {self.simulate}, {self.chunk}"
            )


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """Model, post-processing thresholds and options of ``quasar predict`` (spec quasarnet.md §4).

    Attributes
    ----------
    model : str
        Bundled model name or model directory.
    c_th : float
        Line-confidence threshold of ``IS_QSO_QN`` and ``IS_BAL_QN`` (QuasarNP README 0.5;
        ``qn_export`` 0.4); also the fixed threshold at which ``quasar evaluate`` reports purity
        and completeness.
    n_th : int
        Number of lines above ``c_th`` needed for ``IS_QSO_QN`` (and in ``quasar evaluate``).
    edge : {"extrapolate", "clamp"}
        Redshift of edge boxes: linear extrapolation (QuasarNET) or clamping (QuasarNP).
    batch_size : int
        Spectra per forward pass.
    """

    model: str = DEFAULT_MODEL
    c_th: float = 0.5
    n_th: int = 1
    edge: Literal["extrapolate", "clamp"] = "extrapolate"
    batch_size: int = 256

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        from surveynet.errors import ConfigError

        if not 0.0 <= self.c_th <= 1.0:
            raise ConfigError(f"predict.c_th must be in [0, 1], got {self.c_th}")
        if self.n_th < 1 or self.batch_size < 1:
            raise ConfigError(
                f"predict.n_th and predict.batch_size must be >= 1, got {self.n_th}, "
                f"{self.batch_size}"
            )
        if self.edge not in ("extrapolate", "clamp"):
            raise ConfigError(f"predict.edge must be extrapolate or clamp, got {self.edge!r}")


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Options of ``quasar evaluate`` (definitions in :mod:`surveynet.quasar.evaluate`).

    The ``is_qso`` rule (``n_th``) and the fixed threshold (``c_th``) come from
    :class:`PredictConfig`.

    Attributes
    ----------
    dv_max : float
        Correct-redshift limit ``|dv|`` in km/s (6000, Farr et al. 2020).
    n_examples : int
        Example spectra plotted with their detected lines (when spectra files are given).
    model : str or None
        Model used to plot the example spectra (None: the catalogue header's ``MODEL``).
    """

    dv_max: float = 6000.0
    n_examples: int = 6
    model: str | None = None

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        from surveynet.errors import ConfigError

        if not self.dv_max > 0 or self.n_examples < 0:
            raise ConfigError(
                f"evaluate.dv_max must be > 0 and evaluate.n_examples >= 0, got {self.dv_max}, "
                f"{self.n_examples}"
            )


@dataclass(frozen=True, kw_only=True)
class CalibrateConfig:
    """Options of ``quasar calibrate`` and of the calibration figures of ``quasar evaluate``.

    Definitions in :mod:`surveynet.quasar.calibrate`; the score is the ``predict.n_th``-th
    largest line confidence.

    Attributes
    ----------
    method : {"platt", "temperature"}
        Map ``P_QSO = sigmoid(logit(s) / T + b)``: ``T`` and ``b`` (Platt), or ``T`` alone.
    n_bins : int
        Equal-width bins of the reliability diagram and of ECE/MCE.
    """

    method: Literal["platt", "temperature"] = "platt"
    n_bins: int = 15

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ConfigError`` naming the key)."""
        from surveynet.errors import ConfigError

        if self.method not in ("platt", "temperature"):
            raise ConfigError(
                f"calibrate.method must be 'platt' or 'temperature', got {self.method!r}"
            )
        if not 1 <= self.n_bins <= 1000:
            raise ConfigError(f"calibrate.n_bins must be in [1, 1000], got {self.n_bins}")


@dataclass(frozen=True, kw_only=True)
class QuasarConfig:
    """The one config root of the quasar pipeline (``--config``/``--set`` resolve this).

    ``model.n_input`` must equal ``grid.n_bins``; ``model.n_lines``/``model.n_bal`` must match the
    lengths of ``lines.lines``/``lines.lines_bal``. For ``predict`` and ``evaluate`` the
    ``grid``, ``lines`` and ``model`` sections are those of the model used (its metadata), and the
    saved config says so.

    Attributes
    ----------
    data : DataConfig
        Training-set preparation.
    grid : GridConfig
        Network input grid.
    lines : LinesConfig
        Head-to-line mapping.
    model : QuasarNetConfig
        Architecture.
    train : TrainConfig
        Training.
    predict : PredictConfig
        Model and catalogue rules.
    evaluate : EvaluateConfig
        Metrics against a truth file.
    calibrate : CalibrateConfig
        Calibration map of ``quasar calibrate`` and the reliability bins of ``quasar evaluate``.
    bal : surveynet.bal.BalConfig
        The BAL finder of ``quasar bal`` (continuum fit and trough rules; ``--set bal.smooth=5``).

    Examples
    --------
    >>> from surveynet.config import apply_overrides
    >>> cfg = apply_overrides(QuasarConfig(), ["predict.c_th=0.4", "train.lr_schedule=cosine"])
    >>> cfg.predict.c_th, cfg.train.lr_schedule, cfg.predict.model
    (0.4, 'cosine', 'qn_mock_6layer')
    """

    data: DataConfig = field(default_factory=DataConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    lines: LinesConfig = field(default_factory=LinesConfig)
    model: QuasarNetConfig = field(default_factory=QuasarNetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    calibrate: CalibrateConfig = field(default_factory=CalibrateConfig)
    bal: BalConfig = field(default_factory=BalConfig)

    def __post_init__(self) -> None:
        """Validate the fields (raises ``ValueError``/``ConfigError`` naming the key)."""
        if self.model.n_input != self.grid.n_bins:
            raise ValueError(
                f"model.n_input ({self.model.n_input}) != grid.n_bins ({self.grid.n_bins})"
            )
        if self.model.n_lines != len(self.lines.lines) or self.model.n_bal != len(
            self.lines.lines_bal
        ):
            raise ValueError(
                f"model has {self.model.n_lines} line + {self.model.n_bal} BAL heads "
                "but lines lists "
                f"{len(self.lines.lines)} + {len(self.lines.lines_bal)}"
            )


def preprocessing_metadata(grid: GridConfig, lines: LinesConfig) -> dict[str, Any]:
    """Return the ``preprocessing`` block of a quasar model's ``config.json``.

    Keys: ``grid`` (kind, start, step, n_bins), ``normalisation``, ``lines``, ``line_wavelengths``,
    ``lines_bal``, ``lines_bal_wavelengths``, ``head_order`` (one name per head, BAL heads
    suffixed).

    Parameters
    ----------
    grid : GridConfig
        Network input grid.
    lines : LinesConfig
        Head-to-line mapping.

    Returns
    -------
    dict
        JSON-serialisable block.
    """
    from surveynet.config import to_dict

    return {
        "grid": to_dict(grid),
        "normalisation": "ivar_weighted_mean_rms",
        "lines": list(lines.lines),
        "line_wavelengths": rest_wavelengths(lines.lines),
        "lines_bal": list(lines.lines_bal),
        "lines_bal_wavelengths": rest_wavelengths(lines.lines_bal),
        "head_order": list(lines.lines) + [f"{n}_BAL" for n in lines.lines_bal],
    }


def grid_from_metadata(preprocessing: dict[str, Any]) -> GridConfig:
    """Return the :class:`GridConfig` stored in a model's ``preprocessing`` block.

    Parameters
    ----------
    preprocessing : dict
        The block (:func:`preprocessing_metadata`).

    Returns
    -------
    GridConfig
        The grid.

    Raises
    ------
    surveynet.errors.ModelFormatError
        The block has no valid ``grid`` (never guessed from a file name or a reader default).
    """
    from surveynet.config import from_dict
    from surveynet.errors import ConfigError, ModelFormatError

    g = preprocessing.get("grid")
    if not isinstance(g, dict):
        raise ModelFormatError("model preprocessing metadata has no 'grid' block")
    try:
        return from_dict(GridConfig, g)
    except ConfigError as exc:
        raise ModelFormatError(f"invalid grid in model metadata: {exc}") from exc


def lines_from_metadata(preprocessing: dict[str, Any]) -> LinesConfig:
    """Return the :class:`LinesConfig` of a model's ``preprocessing`` block (defaults if absent).

    Parameters
    ----------
    preprocessing : dict
        The block (:func:`preprocessing_metadata`).

    Returns
    -------
    LinesConfig
        The head-to-line mapping.
    """
    return LinesConfig(
        lines=tuple(preprocessing.get("lines", DEFAULT_LINES)),
        lines_bal=tuple(preprocessing.get("lines_bal", DEFAULT_LINES_BAL)),
    )
