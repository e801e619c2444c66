"""QuasarNET forward pass in numpy alone (never imports torch).

Reads the same ``model.safetensors`` as :class:`surveynet.quasar.model.QuasarNetTorch`, with the
same ``state_dict`` key names and torch layouts (see :func:`state_dict_keys`). At construction the
inference BatchNorms are folded into the preceding conv/dense layers (in float64) and the 2 x
n_heads head layers are stacked into one matrix, so a forward pass is ``n_layers`` im2col matrix
products + 2 dense products; activations stay channels-last (N, L, C), which is also the
Keras/QuasarNET flatten order.

Examples
--------
>>> import numpy as np
>>> from surveynet.quasar.config import QuasarNetConfig
>>> cfg = QuasarNetConfig(n_filters=4, n_fc=8)
>>> net = NumpyQuasarNet(random_state_dict(cfg, seed=0), cfg)
>>> net(np.zeros((2, 443))).shape
(2, 7, 26)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import from_dict
from surveynet.errors import ConfigError, ModelFormatError
from surveynet.nn import numpy_ops as ops
from surveynet.quasar.config import (
    GridConfig,
    LinesConfig,
    QuasarNetConfig,
    grid_from_metadata,
    lines_from_metadata,
)

log = logging.getLogger(__name__)

#: Target size (bytes) of one im2col buffer; the batch is processed in chunks that respect it.
IM2COL_BYTES = 16 << 20


def state_dict_keys(config: QuasarNetConfig) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a QuasarNET model file (torch ``state_dict`` names and layout).

    ``convs.{i}.weight`` (C_out, C_in, K), ``convs.{i}.bias``; ``bns.{i}.{weight,bias,running_mean,
    running_var}`` (C,); ``fc_common.weight``
    (n_fc, L_last * n_filters) whose input is the **channels-last** flatten (index ``t * C + c``, as
    Keras), ``fc_common.bias``; ``bn_fc.*``; per head ``h``: ``box.{h}.weight`` (n_boxes, n_fc),
    ``box.{h}.bias``, ``offset.{h}.weight``, ``offset.{h}.bias``. BatchNorm ``num_batches_tracked``
    counters are not part of the file (they only matter for ``momentum=None``).
    """
    keys: dict[str, tuple[int, ...]] = {}
    c_in = 1
    f = config.n_filters

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{name}"] = (c,)

    for i in range(config.n_layers):
        keys[f"convs.{i}.weight"] = (f, c_in, config.kernel_size)
        keys[f"convs.{i}.bias"] = (f,)
        bn(f"bns.{i}", f)
        c_in = f
    keys["fc_common.weight"] = (config.n_fc, config.flat_length())
    keys["fc_common.bias"] = (config.n_fc,)
    bn("bn_fc", config.n_fc)
    for h in range(config.n_heads):
        for kind in ("box", "offset"):
            keys[f"{kind}.{h}.weight"] = (config.n_boxes, config.n_fc)
            keys[f"{kind}.{h}.bias"] = (config.n_boxes,)
    return keys


def check_state_dict(tensors: dict[str, NDArray[Any]], config: QuasarNetConfig) -> None:
    """Raise :class:`ModelFormatError` if names or shapes differ from :func:`state_dict_keys`."""
    expected = state_dict_keys(config)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelFormatError(
            "QuasarNET tensors do not match the config: "
            f"missing {missing[:6]}, unexpected {extra[:6]}"
        )
    for k, shape in expected.items():
        if tuple(np.shape(tensors[k])) != shape:
            raise ModelFormatError(
                f"tensor {k}: shape {np.shape(tensors[k])}, config expects {shape}"
            )


def random_state_dict(config: QuasarNetConfig, seed: int = 0) -> dict[str, NDArray[Any]]:
    """A random, well-scaled ``state_dict`` (float32) for tests and benchmarks.

    Running variances are positive and BatchNorm statistics non-trivial, so a parity test exercises
    every parameter.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, NDArray[Any]] = {}
    for k, shape in state_dict_keys(config).items():
        if k.endswith("running_var"):
            out[k] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        elif k.endswith("running_mean") or k.endswith(".bias"):
            out[k] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif k.startswith("bn"):  # gamma
            out[k] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            out[k] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return out


class NumpyQuasarNet:
    """QuasarNET inference in numpy (float32 by default, float64 for parity tests).

    Parameters
    ----------
    tensors : dict of str to ndarray
        ``state_dict``-named tensors (see :func:`state_dict_keys`).
    config : QuasarNetConfig
        Architecture.
    dtype : numpy dtype
        Compute precision (``np.float32`` or ``np.float64``).
    grid : GridConfig, optional
        Input grid (from the model metadata); default from ``config.n_input`` is not guessed.
    lines : LinesConfig, optional
        Head-to-line mapping.
    meta : dict, optional
        The model's ``config.json`` (kept for provenance).

    Attributes
    ----------
    config : QuasarNetConfig
    grid : GridConfig or None
    lines : LinesConfig
    meta : dict
    weights_hash : str
        sha256 prefix of the safetensors file, when loaded from disk.
    """

    def __init__(
        self,
        tensors: dict[str, NDArray[Any]],
        config: QuasarNetConfig,
        *,
        dtype: Any = np.float32,
        grid: GridConfig | None = None,
        lines: LinesConfig | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        check_state_dict(tensors, config)
        self.config = config
        self.dtype = np.dtype(dtype)
        self.grid = grid
        self.lines = lines or LinesConfig()
        self.meta = dict(meta or {})
        self.weights_hash = ""
        if len(self.lines.lines) != config.n_lines or len(self.lines.lines_bal) != config.n_bal:
            raise ModelFormatError(
                f"model has {config.n_lines} + {config.n_bal} heads, lines metadata names "
                f"{len(self.lines.lines)} + {len(self.lines.lines_bal)}"
            )
        if grid is not None and grid.n_bins != config.n_input:
            raise ModelFormatError(f"grid has {grid.n_bins} bins, model input is {config.n_input}")
        eps = config.bn_eps
        t = tensors
        self._convs: list[tuple[NDArray[Any], NDArray[Any]]] = []
        for i in range(config.n_layers):
            w, b = ops.fold_batch_norm(
                t[f"convs.{i}.weight"],
                t[f"convs.{i}.bias"],
                t[f"bns.{i}.weight"],
                t[f"bns.{i}.bias"],
                t[f"bns.{i}.running_mean"],
                t[f"bns.{i}.running_var"],
                eps,
            )
            self._convs.append((ops.conv_weight_matrix(w, self.dtype), b.astype(self.dtype)))
        w, b = ops.fold_batch_norm(
            t["fc_common.weight"],
            t["fc_common.bias"],
            t["bn_fc.weight"],
            t["bn_fc.bias"],
            t["bn_fc.running_mean"],
            t["bn_fc.running_var"],
            eps,
        )
        self._fc = (np.ascontiguousarray(w.T, dtype=self.dtype), b.astype(self.dtype))
        hw, hb = [], []
        for h in range(config.n_heads):
            for kind in ("box", "offset"):
                hw.append(np.asarray(t[f"{kind}.{h}.weight"], dtype=np.float64))
                hb.append(np.asarray(t[f"{kind}.{h}.bias"], dtype=np.float64))
        # columns ordered [box_0, offset_0, box_1, offset_1, ...] -> reshape to (N, H, 2 nb)
        self._heads = (
            np.ascontiguousarray(np.concatenate(hw, axis=0).T, dtype=self.dtype),
            np.concatenate(hb).astype(self.dtype),
        )
        self._chunk = self._default_chunk()

    def _default_chunk(self) -> int:
        cfg = self.config
        worst, c_in = 1, 1
        for n_out in cfg.conv_lengths():
            worst = max(worst, n_out * cfg.kernel_size * c_in)
            c_in = cfg.n_filters
        return max(1, IM2COL_BYTES // (worst * self.dtype.itemsize))

    @property
    def n_parameters(self) -> int:
        """Parameter count (Keras convention, BatchNorm statistics included)."""
        return self.config.n_parameters()

    def _check_input(self, x: NDArray[Any]) -> NDArray[Any]:
        a = np.asarray(x)
        if a.ndim == 3 and a.shape[1] == 1:
            a = a[:, 0, :]
        if a.ndim != 2 or a.shape[1] != self.config.n_input:
            raise ValueError(
                f"input must have shape (n_spec, {self.config.n_input}) or (n_spec, 1, "
                f"{self.config.n_input}); got {np.shape(x)}"
            )
        return a

    def _forward_chunk(self, x: NDArray[Any]) -> NDArray[Any]:
        cfg = self.config
        h = np.ascontiguousarray(x, dtype=self.dtype)[:, :, None]  # (N, L, 1)
        for wmat, b in self._convs:
            h = ops.conv1d_nlc(
                h, wmat, b, kernel_size=cfg.kernel_size, stride=cfg.stride, padding=cfg.padding
            )
            np.maximum(h, 0, out=h)
        h = h.reshape(h.shape[0], h.shape[1] * h.shape[2])  # channels-last flatten (t * C + c)
        w, b = self._fc
        h = h @ w
        h += b
        np.maximum(h, 0, out=h)
        w, b = self._heads
        o = h @ w
        o += b
        o = ops.sigmoid(o).reshape(h.shape[0], cfg.n_heads, 2 * cfg.n_boxes)
        if cfg.offset_rescale:
            off = o[:, :, cfg.n_boxes :]
            off *= cfg.offset_scale
            off += cfg.offset_shift
        return o

    def forward(self, x: NDArray[Any], *, batch_size: int | None = None) -> NDArray[Any]:
        """Network outputs.

        Parameters
        ----------
        x : ndarray of shape (n_spec, n_input) or (n_spec, 1, n_input)
            Normalised spectra (:func:`surveynet.quasar.preprocess.preprocess`).
        batch_size : int, optional
            Spectra per chunk (default: as many as keep one im2col buffer near 16 MB).

        Returns
        -------
        ndarray of shape (n_spec, n_heads, 2 * n_boxes), ``self.dtype``
            Per head, ``n_boxes`` box probabilities then ``n_boxes`` (rescaled) offsets.
        """
        a = self._check_input(x)
        n = a.shape[0]
        step = int(batch_size or self._chunk)
        if n <= step:
            return self._forward_chunk(a)
        out = np.empty((n, self.config.n_heads, 2 * self.config.n_boxes), dtype=self.dtype)
        for i in range(0, n, step):
            out[i : i + step] = self._forward_chunk(a[i : i + step])
        return out

    __call__ = forward

    @property
    def chunk_size(self) -> int:
        """Spectra per forward chunk when no ``batch_size`` is given (one ~16 MB im2col buffer)."""
        return self._chunk

    def predict_lines(
        self, x: NDArray[Any], *, edge: str = "extrapolate", batch_size: int | None = None
    ) -> Any:
        """Forward pass then :func:`surveynet.quasar.postprocess.process_preds` (needs ``grid``).

        Parameters
        ----------
        x : ndarray of shape (n_spec, n_input)
            Normalised spectra.
        edge : {"extrapolate", "clamp"}
            Redshift of edge boxes (:func:`~surveynet.quasar.postprocess.process_preds`).
        batch_size : int, optional
            Spectra per chunk (see :meth:`forward`).

        Returns
        -------
        surveynet.quasar.postprocess.QNResult
        """
        return self.lines_from_outputs(self.forward(x, batch_size=batch_size), edge=edge)

    def lines_from_outputs(self, preds: NDArray[Any], *, edge: str = "extrapolate") -> Any:
        """:func:`surveynet.quasar.postprocess.process_preds` of :meth:`forward` outputs.

        Parameters
        ----------
        preds : ndarray of shape (n_spec, n_heads, 2 * n_boxes)
            Network outputs.
        edge : {"extrapolate", "clamp"}
            Redshift of edge boxes.

        Returns
        -------
        surveynet.quasar.postprocess.QNResult

        Raises
        ------
        ModelFormatError
            The engine has no grid metadata.
        """
        from surveynet.quasar.postprocess import process_preds

        if self.grid is None:
            raise ModelFormatError("this engine has no grid metadata; load it with load_engine()")
        return process_preds(
            preds,
            self.grid.wave(),
            lines=self.lines.lines,
            lines_bal=self.lines.lines_bal,
            n_boxes=self.config.n_boxes,
            edge=edge,  # type: ignore[arg-type]
        )

    @classmethod
    def from_saved(cls, saved: Any, *, dtype: Any = np.float32) -> NumpyQuasarNet:
        """Engine from a :class:`surveynet.io.model.SavedModel` (grid and lines from metadata)."""
        if saved.architecture != "quasarnet":
            raise ModelFormatError(
                f"{saved.path}: architecture {saved.architecture!r} is not 'quasarnet'"
            )
        try:
            config = from_dict(QuasarNetConfig, saved.config)
        except ConfigError as exc:
            raise ModelFormatError(f"{saved.path}: invalid QuasarNET config ({exc})") from exc
        pre = saved.preprocessing
        engine = cls(
            saved.tensors,
            config,
            dtype=dtype,
            grid=grid_from_metadata(pre),
            lines=lines_from_metadata(pre),
            meta=saved.meta,
        )
        engine.weights_hash = saved.weights_hash
        return engine


def build_numpy_engine(
    tensors: dict[str, NDArray[Any]],
    config: Mapping[str, Any] | QuasarNetConfig,
    **options: Any,
) -> NumpyQuasarNet:
    """Registry builder of the ``quasarnet`` numpy engine: ``(tensors, config, **options)``.

    Parameters
    ----------
    tensors : dict of str to ndarray
        ``state_dict`` arrays (:func:`state_dict_keys`).
    config : mapping or QuasarNetConfig
        Architecture config (``config.json["config"]``).
    **options
        :class:`NumpyQuasarNet` options: ``dtype``, ``grid``, ``lines``, ``meta``.

    Returns
    -------
    NumpyQuasarNet
    """
    cfg = (
        config if isinstance(config, QuasarNetConfig) else from_dict(QuasarNetConfig, dict(config))
    )
    return NumpyQuasarNet(tensors, cfg, **options)


def load_engine(model: str | os.PathLike[str] | Any, *, dtype: Any = np.float32) -> NumpyQuasarNet:
    """Load a quasar model directory, bundled name or :class:`SavedModel` into the numpy engine.

    Parameters
    ----------
    model : str, path or SavedModel
        Model directory, bundled model name, or an already loaded model.
    dtype : numpy dtype
        Compute precision.

    Returns
    -------
    NumpyQuasarNet

    Raises
    ------
    ModelFormatError
        Missing files, wrong pipeline/architecture, or tensors that do not match the config.
    """
    from surveynet.io.model import SavedModel, load_model

    saved = model if isinstance(model, SavedModel) else load_model(model, pipeline="quasar")
    return NumpyQuasarNet.from_saved(saved, dtype=dtype)
