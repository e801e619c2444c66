"""Neural-network layers in numpy alone (never imports torch).

Layouts follow PyTorch: 1-D activations are (N, C, L) and weights keep ``state_dict`` shapes
(conv ``(C_out, C_in, K)``, dense ``(out, in)``), so the same safetensors file feeds torch and numpy
(functional layers as in desihub/QuasarNP:quasarnp/layers.py, parity-tested as in
henrysky/astroNN:tests/test_numpy_tools.py). Convolutions are cross-correlations (as in torch and
TensorFlow) computed by im2col + one matrix product. ``"same"`` padding follows TensorFlow: total
``max((ceil(n/s) - 1) s + k - n, 0)``, left ``floor(total/2)``, the rest on the right (QuasarNP pads
``(k-1)//2`` on the left, which agrees for even kernels only).

Speed-oriented variants work channels-last, (N, L, C): :func:`conv1d_nlc` takes a prepared
``(K*C_in, C_out)`` weight matrix (see :func:`conv_weight_matrix`) and :func:`fold_batch_norm`
folds an inference BatchNorm into the preceding layer.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

Padding = Literal["valid", "same"] | tuple[int, int]


def tf_same_padding(n: int, kernel_size: int, stride: int = 1) -> tuple[int, int]:
    """TensorFlow 'same' padding (left, right) of an input of length ``n``.

    Examples
    --------
    >>> tf_same_padding(443, 10, 2), tf_same_padding(222, 10, 2)
    ((4, 5), (4, 4))
    >>> tf_same_padding(7, 3, 1)
    (1, 1)
    """
    n_out = -(-n // stride)
    total = max((n_out - 1) * stride + kernel_size - n, 0)
    return total // 2, total - total // 2


def resolve_padding(n: int, kernel_size: int, stride: int, padding: Padding) -> tuple[int, int]:
    """(left, right) zero padding for ``"valid"``, ``"same"`` (TensorFlow) or an explicit pair."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return tf_same_padding(n, kernel_size, stride)
    if isinstance(padding, tuple) and len(padding) == 2:
        return int(padding[0]), int(padding[1])
    raise ValueError(f"padding must be 'valid', 'same' or (left, right), got {padding!r}")


def conv_output_length(
    n: int, kernel_size: int, stride: int = 1, padding: Padding = "valid"
) -> int:
    """Output length of a 1-D convolution.

    Examples
    --------
    >>> conv_output_length(443, 10, 2, "valid"), conv_output_length(443, 10, 2, "same")
    (217, 222)
    """
    left, right = resolve_padding(n, kernel_size, stride, padding)
    m = n + left + right
    return 0 if m < kernel_size else (m - kernel_size) // stride + 1


def relu(x: NDArray[Any]) -> NDArray[Any]:
    """max(x, 0)."""
    return np.maximum(x, 0)


def sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    """Logistic function, overflow-free (``0.5 (1 + tanh(x / 2))``)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def batch_norm(
    x: NDArray[Any],
    mean: NDArray[Any],
    var: NDArray[Any],
    gamma: NDArray[Any] | None = None,
    beta: NDArray[Any] | None = None,
    *,
    eps: float = 1e-5,
    axis: int = 1,
) -> NDArray[Any]:
    """Inference BatchNorm ``gamma (x - mean) / sqrt(var + eps) + beta`` along channel ``axis``.

    ``eps`` must come from the model (Keras 1e-3, PyTorch default 1e-5).
    """
    shape = [1] * x.ndim
    shape[axis] = -1
    scale = 1.0 / np.sqrt(np.asarray(var) + eps)
    if gamma is not None:
        scale = scale * np.asarray(gamma)
    y = (x - np.reshape(mean, shape)) * np.reshape(scale, shape).astype(x.dtype, copy=False)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y.astype(x.dtype, copy=False)


def fold_batch_norm(
    weight: NDArray[Any],
    bias: NDArray[Any] | None,
    gamma: NDArray[Any],
    beta: NDArray[Any],
    mean: NDArray[Any],
    var: NDArray[Any],
    eps: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fold an inference BatchNorm into the preceding conv or dense layer (in float64).

    Parameters
    ----------
    weight : ndarray of shape (C_out, ...)
        Layer weight, output channels first (torch layout).
    bias : ndarray of shape (C_out,) or None
        Layer bias.
    gamma, beta, mean, var : ndarray of shape (C_out,)
        BatchNorm parameters and running statistics.
    eps : float
        BatchNorm epsilon.

    Returns
    -------
    weight, bias : ndarray, float64
        ``W' = W s``, ``b' = (b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``.
    """
    w = np.asarray(weight, dtype=np.float64)
    s = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    w2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    b2 = (b - np.asarray(mean, dtype=np.float64)) * s + np.asarray(beta, dtype=np.float64)
    return w2, b2


def dense(x: NDArray[Any], weight: NDArray[Any], bias: NDArray[Any] | None = None) -> NDArray[Any]:
    """Fully connected layer ``x W^T + b`` with torch's (out, in) weight.

    Parameters
    ----------
    x : ndarray of shape (N, in)
    weight : ndarray of shape (out, in)
    bias : ndarray of shape (out,), optional
    """
    y = x @ np.asarray(weight, dtype=x.dtype).T
    if bias is not None:
        y += np.asarray(bias, dtype=x.dtype)
    return y


def _windows_nlc(xp: NDArray[Any], n_out: int, kernel_size: int, stride: int) -> NDArray[Any]:
    """Read-only view (N, L_out, K, C) of the sliding windows of a padded (N, L, C) array."""
    sn, sl, sc = xp.strides
    return as_strided(
        xp,
        shape=(xp.shape[0], n_out, kernel_size, xp.shape[2]),
        strides=(sn, stride * sl, sl, sc),
        writeable=False,
    )


def conv_weight_matrix(weight: NDArray[Any], dtype: Any = np.float32) -> NDArray[Any]:
    """Torch conv weight (C_out, C_in, K) -> contiguous (K * C_in, C_out) matrix.

    The matrix is what :func:`conv1d_nlc` multiplies its im2col windows with.
    """
    w = np.asarray(weight)
    c_out, c_in, k = w.shape
    return np.ascontiguousarray(np.transpose(w, (2, 1, 0)).reshape(k * c_in, c_out), dtype=dtype)


def conv1d_nlc(
    x: NDArray[Any],
    wmat: NDArray[Any],
    bias: NDArray[Any] | None,
    *,
    kernel_size: int,
    stride: int = 1,
    padding: Padding = "valid",
) -> NDArray[Any]:
    """Channels-last 1-D convolution by im2col and one matrix product.

    Parameters
    ----------
    x : ndarray of shape (N, L, C_in)
    wmat : ndarray of shape (K * C_in, C_out)
        From :func:`conv_weight_matrix`.
    bias : ndarray of shape (C_out,) or None
    kernel_size, stride : int
    padding : "valid", "same" (TensorFlow) or (left, right)

    Returns
    -------
    ndarray of shape (N, L_out, C_out), dtype of ``x``
    """
    n, length, c_in = x.shape
    left, right = resolve_padding(length, kernel_size, stride, padding)
    if left or right:
        xp = np.zeros((n, length + left + right, c_in), dtype=x.dtype)
        xp[:, left : left + length] = x
    else:
        xp = np.ascontiguousarray(x)
    n_out = (xp.shape[1] - kernel_size) // stride + 1
    if n_out < 1:
        raise ValueError(
            f"input of length {length} too short for kernel {kernel_size} ({padding!r})"
        )
    cols = _windows_nlc(xp, n_out, kernel_size, stride).reshape(n * n_out, kernel_size * c_in)
    y = cols @ wmat
    if bias is not None:
        y += bias
    return y.reshape(n, n_out, wmat.shape[1])


def conv1d(
    x: NDArray[Any],
    weight: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    stride: int = 1,
    padding: Padding = "valid",
) -> NDArray[Any]:
    """1-D convolution (cross-correlation) in torch layout.

    Parameters
    ----------
    x : ndarray of shape (N, C_in, L)
    weight : ndarray of shape (C_out, C_in, K)
        torch ``Conv1d.weight`` layout (a Keras kernel (K, C_in, C_out) transposed, not flipped).
    bias : ndarray of shape (C_out,), optional
    stride : int
    padding : "valid", "same" (TensorFlow asymmetric) or (left, right)

    Returns
    -------
    ndarray of shape (N, C_out, L_out)

    Examples
    --------
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> conv1d(x, np.ones((1, 1, 2)), stride=2).tolist()
    [[[1.0, 5.0]]]
    >>> conv1d(x, np.ones((1, 1, 2)), stride=2, padding="same").tolist()
    [[[1.0, 5.0, 4.0]]]
    """
    x = np.asarray(x)
    w = np.asarray(weight)
    if x.ndim != 3 or w.ndim != 3 or x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv1d: x (N, C_in, L) {x.shape} does not match weight (C_out, C_in, K) {w.shape}"
        )
    dtype = np.result_type(x.dtype, w.dtype, np.float32)
    xn = np.ascontiguousarray(np.transpose(x, (0, 2, 1)), dtype=dtype)
    y = conv1d_nlc(
        xn,
        conv_weight_matrix(w, dtype),
        None if bias is None else np.asarray(bias, dtype=dtype),
        kernel_size=w.shape[2],
        stride=stride,
        padding=padding,
    )
    return np.ascontiguousarray(np.transpose(y, (0, 2, 1)))


def maxpool1d(
    x: NDArray[Any], pool_size: int, stride: int | None = None, *, padding: Padding = "valid"
) -> NDArray[Any]:
    """Max pooling over the last axis of (N, C, L); ``"same"`` pads with -inf (TensorFlow).

    Examples
    --------
    >>> maxpool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2).tolist()
    [[[3.0, 5.0]]]
    >>> maxpool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, padding="same").tolist()
    [[[3.0, 5.0, 4.0]]]
    """
    s = pool_size if stride is None else stride
    x = np.asarray(x)
    left, right = resolve_padding(x.shape[-1], pool_size, s, padding)
    if left or right:
        fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left, right)], constant_values=fill)
    n_out = (x.shape[-1] - pool_size) // s + 1
    win = np.lib.stride_tricks.sliding_window_view(x, pool_size, axis=-1)[..., ::s, :][
        ..., :n_out, :
    ]
    return win.max(axis=-1)
