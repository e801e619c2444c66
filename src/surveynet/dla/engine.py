"""Numpy inference engines of the DLA networks (no torch).

They read the tensors saved from the torch ``state_dict`` (same key names and layouts, loaded
with ``safetensors.numpy``) and reproduce :class:`surveynet.dla.model.WindowCNN` and
:class:`surveynet.dla.model.FCN` in eval mode (dropout off), and the second-stage localiser
:class:`surveynet.dla.model.Refiner`. Internally activations are kept
channel-last ``(N, L, C)`` so every convolution is one matrix product over an im2col buffer
(in the spirit of desihub/QuasarNP:quasarnp/layers.py). Parity with torch is tested to 1e-5.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import from_dict
from surveynet.dla.model_config import FCNConfig, RefinerConfig, WindowCNNConfig
from surveynet.errors import ModelFormatError

log = logging.getLogger(__name__)

Array = NDArray[Any]


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (left, right); see :func:`surveynet.dla.model.same_padding`.

    Examples
    --------
    >>> same_padding(134, 7, 4)
    (2, 3)
    """
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def conv1d_cl(
    x: Array,
    weight: Array,
    bias: Array | None,
    *,
    stride: int = 1,
    dilation: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> Array:
    """1-D convolution (cross-correlation, as torch) on channel-last input.

    Parameters
    ----------
    x : ndarray of shape (n, length, c_in)
        Input.
    weight : ndarray of shape (c_out, c_in, kernel)
        torch ``Conv1d.weight`` layout.
    bias : ndarray of shape (c_out,) or None
        Bias.
    stride, dilation : int
        As torch.
    pad : tuple of int
        Zero padding (left, right).

    Returns
    -------
    ndarray of shape (n, length_out, c_out)
    """
    c_out, c_in, k = weight.shape
    if pad != (0, 0):
        x = np.pad(x, ((0, 0), pad, (0, 0)))
    n, length, _ = x.shape
    span = (k - 1) * dilation + 1
    l_out = (length - span) // stride + 1
    if l_out <= 0:
        raise ValueError(f"input of length {length} is shorter than the kernel span {span}")
    w2 = weight.transpose(2, 1, 0).reshape(k * c_in, c_out)
    if k == 1 and stride == 1:
        cols = x.reshape(n * l_out, c_in)
    else:
        buf = np.empty((n, l_out, k, c_in), dtype=x.dtype)
        stop = stride * (l_out - 1) + 1
        for j in range(k):
            o = j * dilation
            buf[:, :, j, :] = x[:, o : o + stop : stride, :]
        cols = buf.reshape(n * l_out, k * c_in)
    y = cols @ w2
    if bias is not None:
        y += bias
    return y.reshape(n, l_out, c_out)


def maxpool1d_cl(x: Array, kernel: int, stride: int, pad: tuple[int, int] = (0, 0)) -> Array:
    """Max-pool on channel-last input; padded pixels are ignored (-inf), as TF 'SAME'."""
    if pad != (0, 0):
        x = np.pad(x, ((0, 0), pad, (0, 0)), constant_values=-np.inf)
    length = x.shape[1]
    l_out = (length - kernel) // stride + 1
    stop = stride * (l_out - 1) + 1
    out = x[:, 0:stop:stride, :].copy()
    for j in range(1, kernel):
        np.maximum(out, x[:, j : j + stop : stride, :], out=out)
    return out


def _relu(x: Array) -> Array:
    return np.maximum(x, 0, out=x)


class _Engine:
    """Shared tensor handling."""

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

    def expected_keys(self) -> list[str]:
        """torch ``state_dict`` keys."""
        return [f"{n}.{p}" for n in self._layers for p in ("weight", "bias")]

    def _forward(self, x: Array) -> Array:
        c, t = self.config, self.t
        h = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=self.dtype)
        for i, name in enumerate(("conv1", "conv2", "conv3")):
            k, s = c.conv_kernels[i], c.conv_strides[i]
            h = _relu(
                conv1d_cl(
                    h,
                    t[f"{name}.weight"],
                    t[f"{name}.bias"],
                    stride=s,
                    pad=same_padding(h.shape[1], k, s),
                )
            )
            kp, sp = c.pool_kernels[i], c.pool_strides[i]
            h = maxpool1d_cl(h, kp, sp, same_padding(h.shape[1], kp, sp))
        f = h.reshape(h.shape[0], -1)
        f = _relu(f @ t["fc1.weight"].T + t["fc1.bias"])
        outs = []
        for br in ("class", "offset", "nhi"):
            g = _relu(f @ t[f"fc2_{br}.weight"].T + t[f"fc2_{br}.bias"])
            outs.append(g @ t[f"out_{br}.weight"].T + t[f"out_{br}.bias"])
        y = np.concatenate(outs, axis=1)
        y[:, 2] += c.nhi_shift
        return y

    def __call__(self, x: Array) -> Array:
        """Outputs ``(N, 3)`` = [logit, offset, log N_HI] of windows ``(N, C, window)``."""
        x = np.asarray(x)
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.window:
            raise ValueError(f"expected windows (N, {c.in_channels}, {c.window}), got {x.shape}")
        out = np.empty((x.shape[0], 3), dtype=self.dtype)
        for i in range(0, x.shape[0], self.batch_size):
            out[i : i + self.batch_size] = self._forward(x[i : i + self.batch_size])
        return out

    def macs_per_window(self) -> int:
        """Multiply-accumulates of one window (convolutions and dense layers)."""
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

    def expected_keys(self) -> list[str]:
        """torch ``state_dict`` keys."""
        c = self.config
        keys = [f"stem.{i}.{p}" for i in range(len(c.stem_strides)) for p in ("weight", "bias")]
        for i in range(len(c.dilations)):
            keys += [f"dconv.{i}.weight", f"dconv.{i}.bias", f"pconv.{i}.weight", f"pconv.{i}.bias"]
        return [*keys, "head_hidden.weight", "head_hidden.bias", "head_out.weight", "head_out.bias"]

    def __call__(self, x: Array) -> Array:
        """Per-pixel outputs ``(N, 3, L)`` of input ``(N, C, L)``, ``L % factor == 0``."""
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
            h = _relu(
                conv1d_cl(h, t[f"stem.{i}.weight"], t[f"stem.{i}.bias"], stride=s, pad=(p, p))
            )
        # Dilated blocks on one flat (rows, C) sequence: [gap][sample 0][gap][sample 1]...[gap]; the
        # zero gaps act as the convolutions' zero padding, so each tap is one matrix product on a
        # contiguous row slice (no im2col copy).
        n, lc, w = h.shape
        q = c.block_kernel // 2
        gap = max(c.dilations) * q if c.dilations else 0
        rows = gap + n * (lc + gap)
        flat = np.zeros((rows, w), dtype=self.dtype)
        body = flat[gap:].reshape(n, lc + gap, w)
        body[:, :lc] = h
        for i, d in enumerate(c.dilations):
            wt = t[f"dconv.{i}.weight"]
            m = q * d
            g = np.zeros_like(flat)
            inner = g[m : rows - m]
            for j in range(c.block_kernel):
                inner += flat[j * d : j * d + rows - 2 * m] @ wt[:, :, j].T
            g += t[f"dconv.{i}.bias"]
            _relu(g)
            g = g @ t[f"pconv.{i}.weight"][:, :, 0].T
            g += t[f"pconv.{i}.bias"]
            flat += g
            _relu(flat)
            flat[:gap] = 0
            flat[gap:].reshape(n, lc + gap, w)[:, lc:] = 0
        h = flat[gap:].reshape(n, lc + gap, w)[:, :lc]
        g = _relu(h @ t["head_hidden.weight"][:, :, 0].T + t["head_hidden.bias"])
        y = g @ t["head_out.weight"][:, :, 0].T + t["head_out.bias"]  # (N, L/f, 3 f)
        y = y.reshape(n, lc, 3, f).transpose(0, 2, 1, 3).reshape(n, 3, lc * f)
        y[:, 2] += c.nhi_shift
        return y

    def macs_per_pixel(self) -> float:
        """Multiply-accumulates per input pixel."""
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

    def expected_keys(self) -> list[str]:
        """torch ``state_dict`` keys."""
        n = len(self.config.widths)
        keys = [f"convs.{i}.{p}" for i in range(n) for p in ("weight", "bias")]
        return [*keys, "fc.weight", "fc.bias", "out.weight", "out.bias"]

    def __call__(self, x: Array) -> Array:
        """Outputs ``(N, 3)`` = [logit, offset (px), log N_HI] of crops ``(N, 3, crop)``."""
        c, t = self.config, self.t
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.crop:
            raise ValueError(f"expected crops (N, {c.in_channels}, {c.crop}), got {x.shape}")
        h = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=self.dtype)
        q = c.kernel // 2
        for i in range(len(c.widths)):
            h = _relu(conv1d_cl(h, t[f"convs.{i}.weight"], t[f"convs.{i}.bias"], pad=(q, q)))
            h = maxpool1d_cl(h, 2, 2)
        f = h.transpose(0, 2, 1).reshape(h.shape[0], -1)  # torch flattens channel-major
        g = _relu(f @ t["fc.weight"].T + t["fc.bias"])
        y = g @ t["out.weight"].T + t["out.bias"]
        y[:, 1] *= c.offset_unit
        y[:, 2] = y[:, 2] / c.nhi_scale + c.nhi_shift
        return y

    def macs_per_crop(self) -> int:
        """Multiply-accumulates of one crop."""
        c = self.config
        macs, length, cin = 0, c.crop, c.in_channels
        for w in c.widths:
            macs += length * cin * w * c.kernel
            length //= 2
            cin = w
        return int(macs + c.flat * c.hidden + c.hidden * 3)


def build_window_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any], *, dtype: Any = np.float32
) -> WindowCNNEngine:
    """Registry builder of the ``dla_window_cnn`` numpy engine."""
    return WindowCNNEngine(tensors, from_dict(WindowCNNConfig, dict(config)), dtype=dtype)


def build_fcn_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any], *, dtype: Any = np.float32
) -> FCNEngine:
    """Registry builder of the ``dla_fcn`` numpy engine."""
    return FCNEngine(tensors, from_dict(FCNConfig, dict(config)), dtype=dtype)


def build_refiner_engine(
    tensors: Mapping[str, Array], config: Mapping[str, Any], *, dtype: Any = np.float32
) -> RefinerEngine:
    """Registry builder of the ``dla_refiner`` numpy engine."""
    return RefinerEngine(tensors, from_dict(RefinerConfig, dict(config)), dtype=dtype)
