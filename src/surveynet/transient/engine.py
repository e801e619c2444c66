"""Numpy inference engine of the real/bogus networks (no torch).

The engine walks the layer list of :mod:`surveynet.transient.arch` with the torch
``state_dict`` tensors (``net.<index>.weight`` ...). Inputs are torch-layout ``(N, C, H, W)``
cutouts; internally activations are channels-last and each 3x3 convolution is three matrix
products (one per kernel row, with the three column shifts concatenated on the channel axis;
BLAS); the flatten step goes back to (C, H, W) order so the dense weights are torch's.

Fast path (``fuse=True``, the default for ``rb_cnn``): each ``conv (same) -> ReLU -> maxpool 2``
block is one im2col copy (an ``as_strided`` view whose rows are ordered (dy, dx, n, i, j), so the
2 x 2 pool is the maximum of four contiguous row blocks of the GEMM output) and one float32 GEMM
with K = k * k * C; bias and ReLU are applied after the pool (exact: max commutes with a
per-channel shift and with ReLU) to the 4x smaller array, written straight into the zero-padded
input buffer of the next block; the first dense layer's columns are permuted once to the
channels-last flatten order. See :func:`conv_relu_maxpool_nhwc`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError
from surveynet.transient.arch import Layer, layers_for

__all__ = [
    "RealBogusEngine",
    "build_engine",
    "conv2d_nhwc",
    "conv_relu_maxpool_nhwc",
    "pool2d_nhwc",
]


def conv2d_nhwc(
    x: NDArray[Any], weight: NDArray[Any], bias: NDArray[Any] | None, padding: str = "valid"
) -> NDArray[Any]:
    """Stride-1 2-D convolution (cross-correlation, as torch) of channels-last input.

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C)
        Input.
    weight : ndarray of shape (O, C, k, k)
        Torch-layout kernel.
    bias : ndarray of shape (O,) or None
        Bias.
    padding : {"valid", "same"}
        Zero padding (``same`` pads (k - 1) // 2 on each side; odd k).

    Returns
    -------
    ndarray of shape (N, H', W', O)

    Examples
    --------
    >>> x = np.ones((1, 4, 4, 1)); w = np.ones((1, 1, 3, 3))
    >>> conv2d_nhwc(x, w, None)[0, :, :, 0]
    array([[9., 9.],
           [9., 9.]])
    """
    o, c, kh, kw = weight.shape
    if padding == "same":
        ph, pw = (kh - 1) // 2, (kw - 1) // 2
        x = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    _, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    # the kw column shifts side by side on the channel axis, then one matrix product per
    # kernel row: kh GEMMs with K = kw * C, and a buffer kw times the input (not kh * kw)
    if kh * kw * c <= 64:
        # few input channels (first layer): the full im2col buffer is small, one GEMM
        xc = np.concatenate(
            [x[:, a : a + ho, b : b + wo, :] for a in range(kh) for b in range(kw)], axis=3
        )
        wm = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, o).astype(x.dtype, copy=False)
        y = xc @ wm
    else:
        xc = np.concatenate([x[:, :, b : b + wo, :] for b in range(kw)], axis=3)
        wt = weight.transpose(2, 3, 1, 0).reshape(kh, kw * c, o).astype(x.dtype, copy=False)
        y = xc[:, 0:ho] @ wt[0]
        for a in range(1, kh):
            y += xc[:, a : a + ho] @ wt[a]
    if bias is not None:
        y += bias.astype(x.dtype, copy=False)
    return y


def pool2d_nhwc(x: NDArray[Any], k: int, kind: str = "max") -> NDArray[Any]:
    """Non-overlapping k x k pooling (floor mode, as torch and Keras ``valid``).

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C)
        Input.
    k : int
        Pool size and stride.
    kind : {"max", "avg"}
        Pooling.

    Returns
    -------
    ndarray of shape (N, H // k, W // k, C)
    """
    n, h, w, c = x.shape
    ho, wo = h // k, w // k
    if kind == "max" and k == 2:  # four strided views: much faster than a reduction
        a = x[:, 0 : 2 * ho : 2, 0 : 2 * wo : 2]
        b = x[:, 0 : 2 * ho : 2, 1 : 2 * wo : 2]
        cc = x[:, 1 : 2 * ho : 2, 0 : 2 * wo : 2]
        d = x[:, 1 : 2 * ho : 2, 1 : 2 * wo : 2]
        return np.maximum(np.maximum(a, b), np.maximum(cc, d))
    v = x[:, : ho * k, : wo * k].reshape(n, ho, k, wo, k, c)
    return v.max(axis=(2, 4)) if kind == "max" else v.mean(axis=(2, 4))


def conv_relu_maxpool_nhwc(
    xp: NDArray[Any],
    wm: NDArray[Any],
    bias: NDArray[Any] | None,
    k: int,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """``maxpool2(relu(conv(x) + bias))`` of an already padded channels-last input.

    One im2col copy (rows ordered (dy, dx, n, i, j): the 2 x 2 pool window offsets first) and
    one GEMM; the pool is then the maximum of the four contiguous row blocks of the product,
    and bias + ReLU are applied to the pooled array only (the same numbers: a per-channel
    shift and ReLU commute with the maximum). Floor mode, as torch ``MaxPool2d(2)``.

    Parameters
    ----------
    xp : ndarray of shape (N, H + k - 1, W + k - 1, C)
        Input, zero-padded for a ``same`` convolution (or unpadded for ``valid``).
    wm : ndarray of shape (k * k * C, O)
        Kernel as a matrix, rows in (row, column, channel) order:
        ``weight.transpose(2, 3, 1, 0).reshape(-1, O)`` of a torch ``(O, C, k, k)`` kernel.
    bias : ndarray of shape (O,) or None
        Bias.
    k : int
        Kernel size.
    out : ndarray of shape (N, H // 2, W // 2, O), optional
        Where to write the result (e.g. the interior of the next layer's padded buffer).

    Returns
    -------
    ndarray of shape (N, H // 2, W // 2, O)

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1); w = np.ones((1, 1))
    >>> conv_relu_maxpool_nhwc(x, w, np.array([-6.0]), 1)[0, :, :, 0]
    array([[0., 1.],
           [7., 9.]])
    """
    n, hp, wp, c = xp.shape
    ho, wo = (hp - k + 1) // 2, (wp - k + 1) // 2
    sn, sh, sw, sc = xp.strides
    view = as_strided(
        xp, (2, 2, n, ho, wo, k, k, c), (sh, sw, sn, 2 * sh, 2 * sw, sh, sw, sc), writeable=False
    )
    y = view.reshape(4 * n * ho * wo, k * k * c) @ wm
    m = n * ho * wo
    r = y[:m]
    np.maximum(r, y[m : 2 * m], out=r)
    np.maximum(r, y[2 * m : 3 * m], out=r)
    np.maximum(r, y[3 * m :], out=r)
    if bias is not None:
        r += bias
    r4 = r.reshape(n, ho, wo, wm.shape[1])
    if out is None:
        np.maximum(r4, 0, out=r4)
        return r4
    np.maximum(r4, 0, out=out)
    return out


class RealBogusEngine:
    """Numpy forward pass of a transient architecture.

    Parameters
    ----------
    layers : list of Layer
        The network.
    tensors : dict
        ``state_dict``-named arrays.
    head : {"sigmoid", "softmax"}
        Output head.
    dtype : numpy dtype
        Compute precision (float32 default; float64 for parity checks).
    batch_size : int
        Cutouts per forward chunk (64 keeps each layer's buffers in cache).
    fuse : bool
        Use the fused fast path (:func:`conv_relu_maxpool_nhwc`) where the layer list allows it
        (every convolution ``same`` with odd kernel, followed by ReLU and a 2 x 2 max-pool, then
        flatten and dense layers); same numbers as the layer-by-layer path up to float
        summation order.

    Raises
    ------
    ModelFormatError
        A tensor is missing or mis-shaped.
    """

    def __init__(
        self,
        layers: list[Layer],
        tensors: dict[str, NDArray[Any]],
        head: str = "sigmoid",
        dtype: Any = np.float32,
        batch_size: int = 64,
        fuse: bool = False,
    ) -> None:
        self.layers = layers
        self.head = head
        self.dtype = np.dtype(dtype)
        self.batch_size = int(batch_size)
        self.params: list[dict[str, NDArray[Any]]] = []
        used = set()
        for i, lay in enumerate(layers):
            p: dict[str, NDArray[Any]] = {}
            names: tuple[str, ...]
            if lay.kind in ("conv", "dense"):
                names = ("weight", "bias")
            elif lay.kind == "bn":
                names = ("weight", "bias", "running_mean", "running_var")
            else:
                names = ()
            for nm in names:
                key = f"net.{i}.{nm}"
                if key not in tensors:
                    raise ModelFormatError(f"missing tensor {key!r} for layer {i} ({lay.kind})")
                p[nm] = np.asarray(tensors[key], dtype=self.dtype)
                used.add(key)
            if lay.kind == "conv" and p["weight"].shape != (lay.n_out, lay.n_in, lay.k, lay.k):
                raise ModelFormatError(f"net.{i}.weight has shape {p['weight'].shape}")
            if lay.kind == "dense" and p["weight"].shape != (lay.n_out, lay.n_in):
                raise ModelFormatError(f"net.{i}.weight has shape {p['weight'].shape}")
            if lay.kind == "bn":
                # fold into scale and shift (Keras/torch epsilon 1e-3)
                scale = p["weight"] / np.sqrt(p["running_var"] + 1e-3)
                p = {"scale": scale, "shift": p["bias"] - p["running_mean"] * scale}
            self.params.append(p)
        extra = {k for k in tensors if not k.endswith("num_batches_tracked")} - used
        if extra:
            raise ModelFormatError(f"unexpected tensors {sorted(extra)[:5]}")
        self._plan = self._fused_plan() if fuse else None

    def _fused_plan(self) -> list[tuple[str, Any, Any, int]] | None:
        """Steps of the fused path, or None when the layer list does not fit it."""
        kinds = [lay.kind for lay in self.layers]
        plan: list[tuple[str, Any, Any, int]] = []
        i, c_last = 0, 0
        while i < len(kinds) and kinds[i] == "conv":
            lay, p = self.layers[i], self.params[i]
            if kinds[i + 1 : i + 3] != ["relu", "maxpool"] or self.layers[i + 2].k != 2:
                return None
            if lay.padding != "same" or lay.k % 2 == 0:
                return None
            wm = np.ascontiguousarray(p["weight"].transpose(2, 3, 1, 0).reshape(-1, lay.n_out))
            plan.append(("block", wm, p["bias"], lay.k))
            c_last = lay.n_out
            i += 3
        if not plan or i >= len(kinds) or kinds[i] != "flatten":
            return None
        first = True
        for lay, p in zip(self.layers[i + 1 :], self.params[i + 1 :], strict=True):
            if lay.kind == "dense":
                w = p["weight"]
                if first:  # torch flattens (C, H, W); the fused path has (H, W, C)
                    hw = w.shape[1] // c_last
                    side = round(float(np.sqrt(hw)))
                    if side * side * c_last != w.shape[1]:
                        return None
                    w = w.reshape(-1, c_last, side, side).transpose(0, 2, 3, 1)
                    w = w.reshape(w.shape[0], -1)
                    first = False
                plan.append(("dense", np.ascontiguousarray(w.T), p["bias"], 0))
            elif lay.kind == "relu":
                plan.append(("relu", None, None, 0))
            elif lay.kind != "dropout":
                return None
        return plan

    def _fused_logits(self, x: NDArray[Any]) -> NDArray[Any]:
        """Logits through the fused plan (see :func:`conv_relu_maxpool_nhwc`)."""
        assert self._plan is not None
        n, _, hh, ww = x.shape
        blocks = [s for s in self._plan if s[0] == "block"]
        pad = (blocks[0][3] - 1) // 2
        buf = np.zeros((n, hh + 2 * pad, ww + 2 * pad, x.shape[1]), dtype=self.dtype)
        buf[:, pad : pad + hh, pad : pad + ww] = x.transpose(0, 2, 3, 1)
        h: NDArray[Any] = buf
        for j, (_, wm, b, k) in enumerate(blocks):
            hh, ww = hh // 2, ww // 2
            if j + 1 < len(blocks):
                q = (blocks[j + 1][3] - 1) // 2
                nxt = np.zeros((n, hh + 2 * q, ww + 2 * q, wm.shape[1]), dtype=self.dtype)
                conv_relu_maxpool_nhwc(h, wm, b, k, out=nxt[:, q : q + hh, q : q + ww])
                h = nxt
            else:
                h = conv_relu_maxpool_nhwc(h, wm, b, k)
        h = h.reshape(n, -1)
        for kind, w, b, _ in self._plan[len(blocks) :]:
            if kind == "dense":
                h = h @ w
                h += b
            else:
                np.maximum(h, 0, out=h)
        return h

    def logits(self, x: NDArray[Any]) -> NDArray[Any]:
        """Logits of a batch.

        Parameters
        ----------
        x : ndarray of shape (N, C, H, W)
            Cutouts (torch layout).

        Returns
        -------
        ndarray of shape (N, n_out)
        """
        if self._plan is not None:
            return self._fused_logits(np.asarray(x, dtype=self.dtype))
        h = np.ascontiguousarray(np.asarray(x, dtype=self.dtype).transpose(0, 2, 3, 1))
        for lay, p in zip(self.layers, self.params, strict=True):
            k = lay.kind
            if k == "conv":
                h = conv2d_nhwc(h, p["weight"], p["bias"], lay.padding)
            elif k == "relu":
                np.maximum(h, 0, out=h)
            elif k == "elu":
                h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
            elif k == "bn":
                h = h * p["scale"] + p["shift"]
            elif k == "maxpool":
                h = pool2d_nhwc(h, lay.k, "max")
            elif k == "avgpool":
                h = pool2d_nhwc(h, lay.k, "avg")
            elif k == "flatten":
                h = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)
            elif k == "dense":
                h = h @ p["weight"].T + p["bias"]
        return h

    def predict_proba(self, x: NDArray[Any]) -> NDArray[np.float64]:
        """P(real) of each cutout.

        Parameters
        ----------
        x : ndarray of shape (N, C, H, W)
            Cutouts (torch layout).

        Returns
        -------
        ndarray of shape (N,)
        """
        x = np.asarray(x)
        out = np.empty(len(x), dtype=np.float64)
        for s in range(0, len(x), self.batch_size):
            z = self.logits(x[s : s + self.batch_size]).astype(np.float64)
            if self.head == "softmax":
                z = z - z.max(axis=1, keepdims=True)
                e = np.exp(z)
                out[s : s + len(z)] = e[:, 1] / e.sum(axis=1)
            else:
                out[s : s + len(z)] = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
        return out

    __call__ = predict_proba


def build_engine(
    architecture: str, tensors: dict[str, NDArray[Any]], config: dict[str, Any], **options: Any
) -> RealBogusEngine:
    """Build the numpy engine of a saved transient model.

    Parameters
    ----------
    architecture : str
        ``rb_cnn``, ``gmadet_cnn`` or ``braai_vgg6``.
    tensors : dict
        ``state_dict``-named arrays.
    config : dict
        Architecture config.
    **options
        ``dtype``, ``batch_size``, ``fuse`` (default: True for ``rb_cnn``, whose layer list the
        fused fast path covers; the anchors' engines keep the layer-by-layer path).

    Returns
    -------
    RealBogusEngine
    """
    head = str(config.get("head", "softmax" if architecture == "gmadet_cnn" else "sigmoid"))
    options.setdefault("fuse", architecture == "rb_cnn")
    return RealBogusEngine(layers_for(architecture, config), tensors, head=head, **options)
