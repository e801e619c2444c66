"""Neural-network layers in numpy alone (never imports torch).

Layouts follow PyTorch: 1-D activations are (N, C, L) and weights keep ``state_dict`` shapes
(conv ``(C_out, C_in, K)``, dense ``(out, in)``), so the same safetensors file feeds torch and numpy
(functional layers as in desihub/QuasarNP:quasarnp/layers.py, parity-tested as in
henrysky/astroNN:tests/test_numpy_tools.py). Convolutions are cross-correlations (as in torch and
TensorFlow) with stride, padding (``"valid"``, TensorFlow ``"same"`` or an explicit ``(left,
right)``) and dilation; :func:`same_padding` is the one 'SAME' rule of the package.

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

__all__ = [
    "Padding",
    "batch_norm",
    "conv1d",
    "conv1d_nlc",
    "conv1d_taps_nlc",
    "conv_output_length",
    "conv_weight_matrix",
    "dense",
    "fold_batch_norm",
    "maxpool1d",
    "maxpool1d_nlc",
    "relu",
    "resolve_padding",
    "same_padding",
    "sigmoid",
]


def same_padding(length: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' zero padding (left, right) of a 1-D convolution or pooling.

    The output has ``ceil(length / stride)`` samples; the total padding ``max((ceil(length /
    stride) - 1) stride + span - length, 0)``, with ``span = (kernel - 1) dilation + 1`` the
    receptive field, is split with the extra sample on the right (QuasarNP pads ``(k-1)//2`` on
    the left, which agrees for even kernels only).

    Parameters
    ----------
    length : int
        Input length.
    kernel : int
        Kernel (or pool) size.
    stride : int
        Stride.
    dilation : int
        Dilation of the kernel taps.

    Returns
    -------
    tuple of int
        ``(left, right)``.

    Examples
    --------
    >>> same_padding(443, 10, 2), same_padding(222, 10, 2)
    ((4, 5), (4, 4))
    >>> same_padding(7, 3, 1), same_padding(134, 7, 4), same_padding(100, 3, 1, dilation=4)
    ((1, 1), (2, 3), (4, 4))
    """
    if length < 0 or kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(
            f"same_padding needs length >= 0, kernel, stride, dilation >= 1; got "
            f"{(length, kernel, stride, dilation)}"
        )
    span = (kernel - 1) * dilation + 1
    n_out = -(-length // stride)
    total = max((n_out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def resolve_padding(
    n: int, kernel_size: int, stride: int, padding: Padding, dilation: int = 1
) -> tuple[int, int]:
    """(left, right) zero padding of a 1-D convolution.

    Parameters
    ----------
    n : int
        Input length.
    kernel_size, stride, dilation : int
        Convolution geometry.
    padding : "valid", "same" or tuple of int
        No padding, TensorFlow 'SAME' (:func:`same_padding`) or an explicit ``(left, right)``.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        Unknown ``padding``.

    Examples
    --------
    >>> resolve_padding(10, 3, 1, "valid"), resolve_padding(10, 3, 1, (2, 0))
    ((0, 0), (2, 0))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            return same_padding(n, kernel_size, stride, dilation)
    elif isinstance(padding, tuple) and len(padding) == 2:
        return int(padding[0]), int(padding[1])
    raise ValueError(f"padding must be 'valid', 'same' or (left, right), got {padding!r}")


def conv_output_length(
    n: int, kernel_size: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> int:
    """Output length of a 1-D convolution.

    Parameters
    ----------
    n : int
        Input length.
    kernel_size, stride, dilation : int
        Convolution geometry.
    padding : "valid", "same" or tuple of int
        As :func:`resolve_padding`.

    Returns
    -------
    int
        0 when the padded input is shorter than the kernel span.

    Examples
    --------
    >>> conv_output_length(443, 10, 2, "valid"), conv_output_length(443, 10, 2, "same")
    (217, 222)
    >>> conv_output_length(100, 3, 1, (8, 8), dilation=8)
    100
    """
    left, right = resolve_padding(n, kernel_size, stride, padding, dilation)
    m = n + left + right
    span = (kernel_size - 1) * dilation + 1
    return 0 if m < span else (m - span) // stride + 1


def medfilt(x: NDArray[Any], kernel_size: int = 3) -> NDArray[Any]:
    """1-D median filter with zero padding at both ends (as ``scipy.signal.medfilt``).

    Written in numpy so that the spectral pipelines do not import ``scipy.signal`` (half a
    second of start-up); the output equals scipy's element for element.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Input.
    kernel_size : int
        Odd window length.

    Returns
    -------
    ndarray of shape (n,), float64 (or the floating dtype of ``x``)

    Raises
    ------
    ValueError
        An even or non-positive ``kernel_size``, or ``x`` not one-dimensional.

    Examples
    --------
    >>> medfilt(np.array([1.0, 5.0, 2.0, 8.0, 3.0]), 3).tolist()
    [1.0, 2.0, 5.0, 3.0, 3.0]
    """
    k = int(kernel_size)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"medfilt expects a 1-D array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if k == 1 or a.size == 0:
        return a.copy()
    h = k // 2
    padded = np.concatenate([np.zeros(h, a.dtype), a, np.zeros(h, a.dtype)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    out: NDArray[Any] = np.partition(windows, h, axis=1)[:, h]
    return out


def relu(x: NDArray[Any], *, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Rectified linear unit.

    Parameters
    ----------
    x : ndarray
        Input.
    out : ndarray, optional
        Where to write the result (``out=x`` works in place).

    Returns
    -------
    ndarray
        ``max(x, 0)``.

    Examples
    --------
    >>> relu(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return np.maximum(x, 0, out=out)


def sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    """Logistic function, overflow-free (``0.5 (1 + tanh(x / 2))``).

    Parameters
    ----------
    x : ndarray
        Input.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> sigmoid(np.array([0.0, 1000.0])).tolist()
    [0.5, 1.0]
    """
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

    Parameters
    ----------
    x : ndarray
        Input, e.g. (N, C, L).
    mean, var : ndarray of shape (C,)
        Running statistics.
    gamma, beta : ndarray of shape (C,), optional
        Scale and shift (1 and 0 when omitted).
    eps : float
        Must come from the model (Keras 1e-3, PyTorch default 1e-5).
    axis : int
        Channel axis.

    Returns
    -------
    ndarray
        Same shape and dtype as ``x``.
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
    x : ndarray of shape (..., in)
        Input.
    weight : ndarray of shape (out, in)
        torch ``Linear.weight``.
    bias : ndarray of shape (out,), optional
        Bias.

    Returns
    -------
    ndarray of shape (..., out), dtype of ``x``

    Examples
    --------
    >>> dense(np.ones((1, 2)), np.array([[1.0, 2.0]]), np.array([0.5])).tolist()
    [[3.5]]
    """
    y = x @ np.asarray(weight, dtype=x.dtype).T
    if bias is not None:
        y += np.asarray(bias, dtype=x.dtype)
    return y


def _pad_nlc(x: NDArray[Any], left: int, right: int, fill: float = 0.0) -> NDArray[Any]:
    """Contiguous copy of channels-last ``x`` padded along L with ``fill``.

    Parameters
    ----------
    x : ndarray of shape (N, L, C)
        Input.
    left, right : int
        Padding.
    fill : float
        Padding value.

    Returns
    -------
    ndarray of shape (N, L + left + right, C)
        ``x`` itself (made contiguous) without padding.
    """
    n, length, c = x.shape
    if not (left or right):
        return np.ascontiguousarray(x)
    xp = np.full((n, length + left + right, c), fill, dtype=x.dtype)
    xp[:, left : left + length] = x
    return xp


def _windows_nlc(
    xp: NDArray[Any], n_out: int, kernel_size: int, stride: int, dilation: int = 1
) -> NDArray[Any]:
    """Read-only view of the sliding (dilated, strided) windows of a padded (N, L, C) array.

    Parameters
    ----------
    xp : ndarray of shape (N, L, C)
        Padded input.
    n_out, kernel_size, stride, dilation : int
        Window geometry.

    Returns
    -------
    ndarray of shape (N, n_out, kernel_size, C)
        A view (no copy).
    """
    sn, sl, sc = xp.strides
    return as_strided(
        xp,
        shape=(xp.shape[0], n_out, kernel_size, xp.shape[2]),
        strides=(sn, stride * sl, dilation * sl, sc),
        writeable=False,
    )


def conv_weight_matrix(weight: NDArray[Any], dtype: Any = np.float32) -> NDArray[Any]:
    """Torch conv weight (C_out, C_in, K) -> contiguous (K * C_in, C_out) matrix.

    The matrix is what :func:`conv1d_nlc` multiplies its im2col windows with.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in, K)
        torch ``Conv1d.weight``.
    dtype : numpy dtype
        Dtype of the result.

    Returns
    -------
    ndarray of shape (K * C_in, C_out)
        Row ``k * C_in + c`` holds tap ``k`` of input channel ``c``.
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
    dilation: int = 1,
) -> NDArray[Any]:
    """Channels-last 1-D convolution by im2col and one matrix product.

    Best for few input channels and strided layers; :func:`conv1d_taps_nlc` avoids the im2col
    buffer for wide layers.

    Parameters
    ----------
    x : ndarray of shape (N, L, C_in)
        Input.
    wmat : ndarray of shape (K * C_in, C_out)
        From :func:`conv_weight_matrix`.
    bias : ndarray of shape (C_out,) or None
        Bias.
    kernel_size, stride, dilation : int
        Convolution geometry (as torch).
    padding : "valid", "same" (TensorFlow) or (left, right)
        Zero padding (:func:`resolve_padding`).

    Returns
    -------
    ndarray of shape (N, L_out, C_out), dtype of ``x``

    Raises
    ------
    ValueError
        The padded input is shorter than the kernel span.
    """
    n, length, c_in = x.shape
    left, right = resolve_padding(length, kernel_size, stride, padding, dilation)
    xp = _pad_nlc(x, left, right)
    span = (kernel_size - 1) * dilation + 1
    n_out = (xp.shape[1] - span) // stride + 1
    if xp.shape[1] < span:
        raise ValueError(f"input of length {length} too short for kernel span {span} ({padding!r})")
    windows = _windows_nlc(xp, n_out, kernel_size, stride, dilation)
    cols = windows.reshape(n * n_out, kernel_size * c_in)
    y = cols @ wmat
    if bias is not None:
        y += bias
    return y.reshape(n, n_out, wmat.shape[1])


def conv1d_taps_nlc(
    x: NDArray[Any],
    weight: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    padding: Padding = "valid",
    dilation: int = 1,
    gap: int | None = None,
) -> NDArray[Any]:
    """Stride-1 channels-last 1-D convolution as one matrix product per kernel tap.

    No im2col buffer: the samples are laid end to end in one (rows, C_in) matrix, ``gap`` zero
    rows before each and after the last (they act as the zero padding), and tap ``j`` is the
    product of a row slice of it with ``weight[:, :, j].T``, accumulated over the taps in order
    (``y = x_0 W_0 + x_1 W_1 + ...``, then the bias). Rows that straddle two samples are computed
    and dropped. Suited to wide, dilated layers.

    Parameters
    ----------
    x : ndarray of shape (N, L, C_in)
        Input.
    weight : ndarray of shape (C_out, C_in, K)
        torch ``Conv1d.weight``.
    bias : ndarray of shape (C_out,), optional
        Bias.
    padding : "valid", "same" (TensorFlow) or (left, right)
        Zero padding (:func:`resolve_padding`).
    dilation : int
        As torch.
    gap : int, optional
        Zero rows between samples in the stacked matrix, >= the padding (default: the larger
        padding side). The result does not depend on it mathematically, but BLAS rounding
        depends on the matrix layout: an engine fixes it to reproduce its outputs bit for bit.

    Returns
    -------
    ndarray of shape (N, L_out, C_out)
        In the result dtype of ``x`` and ``weight``.

    Raises
    ------
    ValueError
        Shapes that do not match, a ``gap`` smaller than the padding, or a padded input shorter
        than the kernel span.

    Examples
    --------
    >>> x = np.arange(6.0).reshape(1, 6, 1)
    >>> w = np.ones((1, 1, 2))
    >>> conv1d_taps_nlc(x, w, dilation=2)[0, :, 0].tolist()
    [2.0, 4.0, 6.0, 8.0]
    >>> conv1d_taps_nlc(np.concatenate([x, x]), w, padding="same")[1, :, 0].tolist()
    [1.0, 3.0, 5.0, 7.0, 9.0, 5.0]
    """
    w = np.asarray(weight)
    if x.ndim != 3 or w.ndim != 3 or x.shape[2] != w.shape[1]:
        raise ValueError(
            f"conv1d_taps_nlc: x (N, L, C_in) {x.shape} does not match weight (C_out, C_in, K) "
            f"{w.shape}"
        )
    c_out, c_in, k = w.shape
    n, length, _ = x.shape
    left, right = resolve_padding(length, k, 1, padding, dilation)
    g = max(left, right) if gap is None else int(gap)
    if g < max(left, right):
        raise ValueError(f"gap {g} is smaller than the padding {(left, right)}")
    span = (k - 1) * dilation + 1
    n_out = length + left + right - span + 1
    if n_out < 1:
        raise ValueError(f"input of length {length} too short for kernel span {span} ({padding!r})")
    dtype = np.result_type(x.dtype, w.dtype)
    period = length + g
    rows = g + n * period
    flat = np.zeros((rows, c_in), dtype=dtype)
    flat[g:].reshape(n, period, c_in)[:, :length] = x
    m = rows - span + 1  # rows with a full receptive field
    first = g - left  # row of sample 0, position 0, in the product
    out = np.empty((max(m, first + n * period), c_out), dtype=dtype)
    y = out[:m]
    np.matmul(flat[:m], w[:, :, 0].T, out=y)
    for j in range(1, k):
        o = j * dilation
        y += flat[o : o + m] @ w[:, :, j].T
    if bias is not None:
        y += bias
    return out[first : first + n * period].reshape(n, period, c_out)[:, :n_out]


def conv1d(
    x: NDArray[Any],
    weight: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    stride: int = 1,
    padding: Padding = "valid",
    dilation: int = 1,
) -> NDArray[Any]:
    """1-D convolution (cross-correlation) in torch layout, as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : ndarray of shape (N, C_in, L)
        Input.
    weight : ndarray of shape (C_out, C_in, K)
        torch ``Conv1d.weight`` layout (a Keras kernel (K, C_in, C_out) transposed, not flipped).
    bias : ndarray of shape (C_out,), optional
        Bias.
    stride, dilation : int
        As torch.
    padding : "valid", "same" (TensorFlow asymmetric) or (left, right)
        Zero padding; torch's symmetric ``padding=p`` is ``(p, p)``.

    Returns
    -------
    ndarray of shape (N, C_out, L_out)
        In the result dtype of ``x`` and ``weight`` (at least float32).

    Raises
    ------
    ValueError
        Shapes that do not match, or an input shorter than the kernel span.

    Examples
    --------
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> conv1d(x, np.ones((1, 1, 2)), stride=2).tolist()
    [[[1.0, 5.0]]]
    >>> conv1d(x, np.ones((1, 1, 2)), stride=2, padding="same").tolist()
    [[[1.0, 5.0, 4.0]]]
    >>> conv1d(x, np.ones((1, 1, 2)), dilation=3).tolist()
    [[[3.0, 5.0]]]
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
        dilation=dilation,
    )
    return np.ascontiguousarray(np.transpose(y, (0, 2, 1)))


def _pool_fill(dtype: np.dtype[Any]) -> Any:
    """Padding value of a max pool: -inf, or the integer minimum.

    Parameters
    ----------
    dtype : numpy dtype
        Input dtype.

    Returns
    -------
    float or int
    """
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def maxpool1d_nlc(
    x: NDArray[Any], pool_size: int, stride: int | None = None, *, padding: Padding = "valid"
) -> NDArray[Any]:
    """Max pooling over the length axis of channels-last (N, L, C) input.

    Padded samples never win (TensorFlow 'SAME' pads with -inf).

    Parameters
    ----------
    x : ndarray of shape (N, L, C)
        Input.
    pool_size : int
        Window.
    stride : int, optional
        Step (default ``pool_size``).
    padding : "valid", "same" or (left, right)
        As :func:`resolve_padding`.

    Returns
    -------
    ndarray of shape (N, L_out, C)

    Examples
    --------
    >>> maxpool1d_nlc(np.array([1.0, 3.0, 2.0, 5.0, 4.0]).reshape(1, 5, 1), 2, padding="same")[
    ...     0, :, 0
    ... ].tolist()
    [3.0, 5.0, 4.0]
    """
    s = pool_size if stride is None else stride
    x = np.asarray(x)
    left, right = resolve_padding(x.shape[1], pool_size, s, padding)
    if left or right:
        x = _pad_nlc(x, left, right, _pool_fill(x.dtype))
    n_out = (x.shape[1] - pool_size) // s + 1
    stop = s * (n_out - 1) + 1
    out = x[:, 0:stop:s, :].copy()
    for j in range(1, pool_size):
        np.maximum(out, x[:, j : j + stop : s, :], out=out)
    return out


def maxpool1d(
    x: NDArray[Any], pool_size: int, stride: int | None = None, *, padding: Padding = "valid"
) -> NDArray[Any]:
    """Max pooling over the last axis of (N, C, L); ``"same"`` pads with -inf (TensorFlow).

    Parameters
    ----------
    x : ndarray of shape (..., L)
        Input (torch layout).
    pool_size : int
        Window.
    stride : int, optional
        Step (default ``pool_size``).
    padding : "valid", "same" or (left, right)
        As :func:`resolve_padding`.

    Returns
    -------
    ndarray of shape (..., L_out)

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
        x = np.pad(
            x, [(0, 0)] * (x.ndim - 1) + [(left, right)], constant_values=_pool_fill(x.dtype)
        )
    n_out = (x.shape[-1] - pool_size) // s + 1
    win = np.lib.stride_tricks.sliding_window_view(x, pool_size, axis=-1)[..., ::s, :][
        ..., :n_out, :
    ]
    return win.max(axis=-1)
