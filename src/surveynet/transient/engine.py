"""Numpy inference engine of the real/bogus networks (no torch).

The engine walks the layer list of :mod:`surveynet.transient.arch` with the torch
``state_dict`` tensors (``net.<index>.weight`` ...). Inputs are torch-layout ``(N, C, H, W)``
cutouts; internally activations are channels-last and each 3x3 convolution is three matrix
products (one per kernel row, with the three column shifts concatenated on the channel axis;
BLAS); the flatten step goes back to (C, H, W) order so the dense weights are torch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError
from surveynet.transient.arch import Layer, layers_for

__all__ = ["RealBogusEngine", "build_engine", "conv2d_nhwc", "pool2d_nhwc"]


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
        ``dtype``, ``batch_size``.

    Returns
    -------
    RealBogusEngine
    """
    head = str(config.get("head", "softmax" if architecture == "gmadet_cnn" else "sigmoid"))
    return RealBogusEngine(layers_for(architecture, config), tensors, head=head, **options)
