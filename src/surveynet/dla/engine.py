"""Numpy inference engines of the DLA networks (no torch).

They read the tensors saved from the torch ``state_dict`` (same key names and layouts, loaded
with ``safetensors.numpy``) and reproduce :class:`surveynet.dla.model.WindowCNN` and
:class:`surveynet.dla.model.FCN` in eval mode (dropout off), and the second-stage localiser
:class:`surveynet.dla.model.Refiner`. Internally activations are kept
channel-last ``(N, L, C)``; the layers are the shared ones of :mod:`surveynet.nn.numpy_ops`
(im2col convolutions for the strided stems and the window CNN, one matrix product per tap for
the FCN's wide dilated blocks, 'SAME' pools). Parity with torch is tested to 1e-5 (float32) and
1e-6 (float64).

Every builder takes ``(tensors, config, **options)``: the ``state_dict`` arrays, the
architecture config dict of the model's ``config.json`` (or the config dataclass) and engine
options (``dtype``, and ``batch_size`` for the window CNN).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import from_dict
from surveynet.dla.config import FCNConfig, RefinerConfig, WindowCNNConfig
from surveynet.errors import ModelFormatError
from surveynet.nn import numpy_ops as ops

#: Crops per forward pass of the refiner engine (32 x 256 x 336 float32 im2col = 11 MB).
REFINER_CHUNK = 32

log = logging.getLogger(__name__)

Array = NDArray[Any]


class _Engine:
    """Shared tensor handling: checks the tensor names and casts them to the compute dtype.

    Parameters
    ----------
    tensors : mapping of str to ndarray
        ``state_dict`` arrays.
    dtype : numpy dtype
        Compute precision.

    Raises
    ------
    ModelFormatError
        Missing or unexpected tensors.
    """

    keys: tuple[str, ...] = ()

    def __init__(self, tensors: Mapping[str, Array], dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        missing = [k for k in self.expected_keys() if k not in tensors]
        extra = [k for k in tensors if k not in self.expected_keys()]
        if missing or extra:
            raise ModelFormatError(
                f"tensor keys do not match the architecture: missing {missing}, unexpected {extra}"
            )
        self.t = {k: np.asarray(tensors[k], dtype=self.dtype) for k in self.expected_keys()}

    def expected_keys(self) -> list[str]:  # pragma: no cover - overridden
        """Names of the torch ``state_dict`` tensors the engine needs (per architecture).

        Returns
        -------
        list of str
        """
        raise NotImplementedError


class WindowCNNEngine(_Engine):
    """Numpy twin of :class:`surveynet.dla.model.WindowCNN` (eval mode).

    Parameters
    ----------
    tensors : mapping
        ``state_dict`` names -> arrays.
    config : WindowCNNConfig
        Architecture.
    dtype : numpy dtype
        Compute precision (float32 for speed, float64 for parity checks).
    batch_size : int
        Windows per chunk.
    """

    _layers = (
        "conv1",
        "conv2",
        "conv3",
        "fc1",
        "fc2_class",
        "fc2_offset",
        "fc2_nhi",
        "out_class",
        "out_offset",
        "out_nhi",
    )

    def __init__(
        self,
        tensors: Mapping[str, Array],
        config: WindowCNNConfig,
        *,
        dtype: Any = np.float32,
        batch_size: int = 512,
    ) -> None:
        self.config = config
        self.batch_size = batch_size
        super().__init__(tensors, dtype)
        self._wmat = {
            name: ops.conv_weight_matrix(self.t[f"{name}.weight"], self.dtype)
            for name in ("conv1", "conv2", "conv3")
        }

    def expected_keys(self) -> list[str]:
        """Names of the torch ``state_dict`` tensors the engine needs.

        Returns
        -------
        list of str
        """
        return [f"{n}.{p}" for n in self._layers for p in ("weight", "bias")]

    def _forward(self, x: Array) -> Array:
        """Outputs of one chunk of windows.

        Parameters
        ----------
        x : ndarray of shape (n, C, window)
            Windows.

        Returns
        -------
        ndarray of shape (n, 3)
        """
        c, t = self.config, self.t
        h = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=self.dtype)
        for i, name in enumerate(("conv1", "conv2", "conv3")):
            h = ops.conv1d_nlc(
                h,
                self._wmat[name],
                t[f"{name}.bias"],
                kernel_size=c.conv_kernels[i],
                stride=c.conv_strides[i],
                padding="same",
            )
            ops.relu(h, out=h)
            h = ops.maxpool1d_nlc(h, c.pool_kernels[i], c.pool_strides[i], padding="same")
        f = h.reshape(h.shape[0], -1)  # channels-last flatten, as the torch model
        f = ops.relu(ops.dense(f, t["fc1.weight"], t["fc1.bias"]))
        outs = []
        for br in ("class", "offset", "nhi"):
            g = ops.relu(ops.dense(f, t[f"fc2_{br}.weight"], t[f"fc2_{br}.bias"]))
            outs.append(ops.dense(g, t[f"out_{br}.weight"], t[f"out_{br}.bias"]))
        y = np.concatenate(outs, axis=1)
        y[:, 2] += c.nhi_shift
        return y

    def __call__(self, x: Array) -> Array:
        """Outputs of windows, in chunks of ``batch_size``.

        Parameters
        ----------
        x : ndarray of shape (N, C, window)
            Windows.

        Returns
        -------
        ndarray of shape (N, 3)
            [logit, offset, log N_HI], in the engine's dtype.

        Raises
        ------
        ValueError
            Wrong input shape.
        """
        x = np.asarray(x)
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.window:
            raise ValueError(f"expected windows (N, {c.in_channels}, {c.window}), got {x.shape}")
        out = np.empty((x.shape[0], 3), dtype=self.dtype)
        for i in range(0, x.shape[0], self.batch_size):
            out[i : i + self.batch_size] = self._forward(x[i : i + self.batch_size])
        return out

    def macs_per_window(self) -> int:
        """Multiply-accumulates of one window (convolutions and dense layers).

        Returns
        -------
        int
        """
        c = self.config
        lengths = [c.window]
        macs = 0
        chans = (c.in_channels, *c.conv_filters)
        for i in range(3):
            lc = -(-lengths[-1] // c.conv_strides[i])
            macs += lc * chans[i] * chans[i + 1] * c.conv_kernels[i]
            lengths.append(-(-lc // c.pool_strides[i]))
        flat = lengths[-1] * c.conv_filters[2]
        macs += flat * c.fc1 + sum(c.fc1 * w + w for w in c.fc2)
        return int(macs)


class FCNEngine(_Engine):
    """Numpy twin of :class:`surveynet.dla.model.FCN`.

    Parameters
    ----------
    tensors : mapping
        ``state_dict`` names -> arrays.
    config : FCNConfig
        Architecture.
    dtype : numpy dtype
        Compute precision.
    """

    def __init__(
        self, tensors: Mapping[str, Array], config: FCNConfig, *, dtype: Any = np.float32
    ) -> None:
        self.config = config
        super().__init__(tensors, dtype)
        self._stem = [
            ops.conv_weight_matrix(self.t[f"stem.{i}.weight"], self.dtype)
            for i in range(len(config.stem_strides))
        ]

    def expected_keys(self) -> list[str]:
        """Names of the torch ``state_dict`` tensors the engine needs.

        Returns
        -------
        list of str
        """
        c = self.config
        keys = [f"stem.{i}.{p}" for i in range(len(c.stem_strides)) for p in ("weight", "bias")]
        for i in range(len(c.dilations)):
            keys += [f"dconv.{i}.weight", f"dconv.{i}.bias", f"pconv.{i}.weight", f"pconv.{i}.bias"]
        return [*keys, "head_hidden.weight", "head_hidden.bias", "head_out.weight", "head_out.bias"]

    def __call__(self, x: Array) -> Array:
        """Per-pixel outputs of whole sightlines.

        Parameters
        ----------
        x : ndarray of shape (N, C, L)
            Inputs, ``L % factor == 0``.

        Returns
        -------
        ndarray of shape (N, 3, L)
            [logit, offset, log N_HI] per pixel.

        Raises
        ------
        ValueError
            Wrong input shape.
        """
        c, t = self.config, self.t
        x = np.asarray(x)
        f = c.factor
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] % f:
            raise ValueError(
                f"expected input (N, {c.in_channels}, L) with L % {f} == 0, got {x.shape}"
            )
        h = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=self.dtype)
        p = c.stem_kernel // 2
        for i, s in enumerate(c.stem_strides):
            h = ops.conv1d_nlc(
                h,
                self._stem[i],
                t[f"stem.{i}.bias"],
                kernel_size=c.stem_kernel,
                stride=s,
                padding=(p, p),
            )
            ops.relu(h, out=h)
        # residual dilated blocks h = relu(h + pconv(relu(dconv(h)))), one product per tap; every
        # block stacks the samples with the same zero gap (the widest padding), which fixes the
        # BLAS rounding of the bundled models' outputs
        q = c.block_kernel // 2
        gap = max(c.dilations) * q if c.dilations else 0
        for i, d in enumerate(c.dilations):
            g = ops.conv1d_taps_nlc(
                h,
                t[f"dconv.{i}.weight"],
                t[f"dconv.{i}.bias"],
                padding=(q * d, q * d),
                dilation=d,
                gap=gap,
            )
            ops.relu(g, out=g)
            g = ops.conv1d_taps_nlc(g, t[f"pconv.{i}.weight"], t[f"pconv.{i}.bias"], gap=gap)
            h += g
            ops.relu(h, out=h)
        n, lc, _ = h.shape
        g = ops.relu(ops.dense(h, t["head_hidden.weight"][:, :, 0], t["head_hidden.bias"]))
        y = ops.dense(g, t["head_out.weight"][:, :, 0], t["head_out.bias"])  # (N, L/f, 3 f)
        y = y.reshape(n, lc, 3, f).transpose(0, 2, 1, 3).reshape(n, 3, lc * f)
        y[:, 2] += c.nhi_shift
        return y

    def macs_per_pixel(self) -> float:
        """Multiply-accumulates per input pixel.

        Returns
        -------
        float
        """
        c = self.config
        macs, res = 0.0, 1
        chans = (c.in_channels, *c.stem_channels)
        for i, s in enumerate(c.stem_strides):
            res *= s
            macs += chans[i] * chans[i + 1] * c.stem_kernel / res
        per_block = c.width * c.width * (c.block_kernel + 1)
        macs += len(c.dilations) * per_block / res
        macs += (c.width * c.head_hidden + c.head_hidden * 3 * c.factor) / res
        return macs


class RefinerEngine(_Engine):
    """Numpy twin of :class:`surveynet.dla.model.Refiner`.

    Parameters
    ----------
    tensors : mapping
        ``state_dict`` names -> arrays.
    config : RefinerConfig
        Architecture.
    dtype : numpy dtype
        Compute precision.
    """

    def __init__(
        self, tensors: Mapping[str, Array], config: RefinerConfig, *, dtype: Any = np.float32
    ) -> None:
        self.config = config
        super().__init__(tensors, dtype)
        self._wmat = [
            ops.conv_weight_matrix(self.t[f"convs.{i}.weight"], self.dtype)
            for i in range(len(config.widths))
        ]

    def expected_keys(self) -> list[str]:
        """Names of the torch ``state_dict`` tensors the engine needs.

        Returns
        -------
        list of str
        """
        n = len(self.config.widths)
        keys = [f"convs.{i}.{p}" for i in range(n) for p in ("weight", "bias")]
        return [*keys, "fc.weight", "fc.bias", "out.weight", "out.bias"]

    def __call__(self, x: Array) -> Array:
        """Outputs of crops.

        Parameters
        ----------
        x : ndarray of shape (N, 3, crop)
            Crops centred on catalogue absorbers.

        Returns
        -------
        ndarray of shape (N, 3)
            [logit, offset (pixels), log N_HI].

        Raises
        ------
        ValueError
            Wrong input shape.
        """
        c, t = self.config, self.t
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.crop:
            raise ValueError(f"expected crops (N, {c.in_channels}, {c.crop}), got {x.shape}")
        if len(x) > REFINER_CHUNK:  # im2col buffers that stay in cache: 1.3x faster
            return np.concatenate(
                [self(x[i : i + REFINER_CHUNK]) for i in range(0, len(x), REFINER_CHUNK)]
            )
        h = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=self.dtype)
        q = c.kernel // 2
        for i, wmat in enumerate(self._wmat):
            h = ops.conv1d_nlc(h, wmat, t[f"convs.{i}.bias"], kernel_size=c.kernel, padding=(q, q))
            ops.relu(h, out=h)
            h = ops.maxpool1d_nlc(h, 2, 2)
        f = h.transpose(0, 2, 1).reshape(h.shape[0], -1)  # torch flattens channel-major
        g = ops.relu(ops.dense(f, t["fc.weight"], t["fc.bias"]))
        y = ops.dense(g, t["out.weight"], t["out.bias"])
        y[:, 1] *= c.offset_unit
        y[:, 2] = y[:, 2] / c.nhi_scale + c.nhi_shift
        return y

    def macs_per_crop(self) -> int:
        """Multiply-accumulates of one crop.

        Returns
        -------
        int
        """
        c = self.config
        macs, length, cin = 0, c.crop, c.in_channels
        for w in c.widths:
            macs += length * cin * w * c.kernel
            length //= 2
            cin = w
        return int(macs + c.flat * c.hidden + c.hidden * 3)


def _architecture_config(config: Any, cls: type[Any]) -> Any:
    """Return the config dataclass ``cls`` of a config dict (an instance is returned unchanged).

    Parameters
    ----------
    config : mapping or dataclass
        Architecture config.
    cls : type
        Its dataclass.

    Returns
    -------
    dataclass instance

    Raises
    ------
    ConfigError
        Unknown keys or invalid values.
    """
    return config if isinstance(config, cls) else from_dict(cls, dict(config))


def build_window_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any] | WindowCNNConfig, **options: Any
) -> WindowCNNEngine:
    """Registry builder of the ``dla_window_cnn`` numpy engine.

    Parameters
    ----------
    tensors : mapping of str to ndarray
        ``state_dict`` arrays.
    config : mapping or WindowCNNConfig
        Architecture config (``config.json["config"]``).
    **options
        ``dtype`` (default float32), ``batch_size`` (windows per chunk, default 512).

    Returns
    -------
    WindowCNNEngine
    """
    return WindowCNNEngine(tensors, _architecture_config(config, WindowCNNConfig), **options)


def build_fcn_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any] | FCNConfig, **options: Any
) -> FCNEngine:
    """Registry builder of the ``dla_fcn`` numpy engine.

    Parameters
    ----------
    tensors : mapping of str to ndarray
        ``state_dict`` arrays.
    config : mapping or FCNConfig
        Architecture config (``config.json["config"]``).
    **options
        ``dtype`` (default float32).

    Returns
    -------
    FCNEngine
    """
    return FCNEngine(tensors, _architecture_config(config, FCNConfig), **options)


def build_refiner_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any] | RefinerConfig, **options: Any
) -> RefinerEngine:
    """Registry builder of the ``dla_refiner`` numpy engine.

    Parameters
    ----------
    tensors : mapping of str to ndarray
        ``state_dict`` arrays.
    config : mapping or RefinerConfig
        Architecture config (``config.json["config"]``).
    **options
        ``dtype`` (default float32).

    Returns
    -------
    RefinerEngine
    """
    return RefinerEngine(tensors, _architecture_config(config, RefinerConfig), **options)
