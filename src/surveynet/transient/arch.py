"""Architectures of the real/bogus networks as plain layer lists (no torch, no numpy).

One list of :class:`Layer` describes a network; :mod:`surveynet.transient.model` builds the torch
``nn.Sequential`` from it (``state_dict`` keys ``net.<index>.weight``) and
:mod:`surveynet.transient.engine` runs the same list with numpy, so the two cannot drift apart.
Every network ends with a linear layer giving logits; ``head`` says how they become P(real):
``"sigmoid"`` (one logit) or ``"softmax"`` (two logits, column 1 = real).

Architectures (every constant is a builder argument recorded in ``config.json``):

- ``rb_cnn``: the small fast CNN of the bundled models (difference-only or triplets);
- ``gmadet_cnn``: dcorre/gmadet ``cnn/train.py`` (realbogus.md §1.6; 1,506,018 parameters at
  32x32x1);
- ``braai_vgg6``: dmitryduev/braai ``braai.py vgg6`` (realbogus.md §2.2; 312,081 parameters at
  63x63x3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ARCHITECTURES",
    "Layer",
    "braai_vgg6_layers",
    "gmadet_cnn_layers",
    "layers_for",
    "rb_cnn_layers",
]


@dataclass(frozen=True)
class Layer:
    """One layer of a sequential network.

    Attributes
    ----------
    kind : str
        ``conv``, ``relu``, ``elu``, ``bn``, ``maxpool``, ``avgpool``, ``dropout``, ``flatten``
        or ``dense``.
    n_in, n_out : int
        Channels or features in and out (``conv``, ``dense``, ``bn``).
    k : int
        Kernel size (``conv``) or pool size (pools).
    padding : str
        ``valid`` or ``same`` (``conv``).
    p : float
        Dropout rate.
    """

    kind: str
    n_in: int = 0
    n_out: int = 0
    k: int = 0
    padding: str = "valid"
    p: float = 0.0


def _conv_out(size: int, k: int, padding: str) -> int:
    """Spatial size after a stride-1 convolution."""
    return size if padding == "same" else size - k + 1


def rb_cnn_layers(
    *,
    in_channels: int = 1,
    size: int = 32,
    filters: Sequence[int] = (8, 16, 32),
    kernel: int = 3,
    dense: int = 32,
    dropout: float = 0.1,
    head: str = "sigmoid",
) -> list[Layer]:
    """The small fast real/bogus CNN: ``[conv same, ReLU, maxpool 2] x len(filters)``, dense, logit.

    Parameters
    ----------
    in_channels : int
        1 (difference only, as gmadet) or 3 (science, reference, difference, as braai).
    size : int
        Cutout side in pixels.
    filters : sequence of int
        Filters of each convolution block.
    kernel : int
        Convolution kernel size.
    dense : int
        Width of the hidden dense layer.
    dropout : float
        Dropout before the output layer (training only).
    head : {"sigmoid", "softmax"}
        Output head (1 or 2 logits).

    Returns
    -------
    list of Layer
    """
    layers: list[Layer] = []
    c, s = in_channels, size
    for f in filters:
        layers += [Layer("conv", c, f, kernel, "same"), Layer("relu"), Layer("maxpool", k=2)]
        c, s = f, s // 2
    layers += [
        Layer("flatten"),
        Layer("dense", c * s * s, dense),
        Layer("relu"),
        Layer("dropout", p=dropout),
        Layer("dense", dense, 1 if head == "sigmoid" else 2),
    ]
    return layers


def gmadet_cnn_layers(
    *,
    in_channels: int = 1,
    size: int = 32,
    filters: Sequence[int] = (64, 128, 256, 256),
    dense: Sequence[int] = (512, 32),
    dropout: float = 0.3,
    head: str = "softmax",
) -> list[Layer]:
    """The gmadet CNN (dcorre/gmadet ``cnn/train.py``, realbogus.md §1.6), padding ``same``.

    ``[Conv 3x3, ELU, BatchNorm, pool 2 (avg first, then max), Dropout]`` per filter count,
    flatten, ``[Dense, ELU, BatchNorm, Dropout]`` per dense width, Dense(2) softmax.

    Parameters
    ----------
    in_channels, size : int
        Cutout channels and side.
    filters, dense : sequence of int
        Convolution filters and hidden dense widths.
    dropout : float
        Dropout rate.
    head : {"softmax", "sigmoid"}
        Output head.

    Returns
    -------
    list of Layer
    """
    layers: list[Layer] = []
    c, s = in_channels, size
    for i, f in enumerate(filters):
        layers += [
            Layer("conv", c, f, 3, "same"),
            Layer("elu"),
            Layer("bn", f, f),
            Layer("avgpool" if i == 0 else "maxpool", k=2),
            Layer("dropout", p=dropout),
        ]
        c, s = f, s // 2
    layers.append(Layer("flatten"))
    n = c * s * s
    for d in dense:
        layers += [
            Layer("dense", n, d),
            Layer("elu"),
            Layer("bn", d, d),
            Layer("dropout", p=dropout),
        ]
        n = d
    layers.append(Layer("dense", n, 2 if head == "softmax" else 1))
    return layers


def braai_vgg6_layers(
    *,
    in_channels: int = 3,
    size: int = 63,
    filters: Sequence[int] = (16, 32),
    pools: Sequence[int] = (2, 4),
    dense: int = 256,
    dropout: Sequence[float] = (0.25, 0.25, 0.5),
    head: str = "sigmoid",
) -> list[Layer]:
    """The braai VGG6 (dmitryduev/braai ``braai.py vgg6``, realbogus.md §2.2), padding ``valid``.

    ``[Conv, ReLU, Conv, ReLU, MaxPool, Dropout]`` per filter count, flatten, Dense, ReLU,
    Dropout, Dense(1) sigmoid.

    Parameters
    ----------
    in_channels, size : int
        Triplet channels and side (63).
    filters : sequence of int
        Filters of the two convolution blocks.
    pools : sequence of int
        Max-pool size after each block.
    dense : int
        Hidden dense width.
    dropout : sequence of float
        Dropout after each block and after the dense layer.
    head : {"sigmoid", "softmax"}
        Output head.

    Returns
    -------
    list of Layer
    """
    layers: list[Layer] = []
    c, s = in_channels, size
    for f, pool, p in zip(filters, pools, dropout, strict=False):
        layers += [
            Layer("conv", c, f, 3, "valid"),
            Layer("relu"),
            Layer("conv", f, f, 3, "valid"),
            Layer("relu"),
            Layer("maxpool", k=pool),
            Layer("dropout", p=p),
        ]
        c, s = f, (s - 4) // pool
    layers += [
        Layer("flatten"),
        Layer("dense", c * s * s, dense),
        Layer("relu"),
        Layer("dropout", p=dropout[-1]),
        Layer("dense", dense, 1 if head == "sigmoid" else 2),
    ]
    return layers


ARCHITECTURES = {
    "rb_cnn": rb_cnn_layers,
    "gmadet_cnn": gmadet_cnn_layers,
    "braai_vgg6": braai_vgg6_layers,
}


def layers_for(architecture: str, config: dict[str, object]) -> list[Layer]:
    """The layer list of a registered transient architecture.

    Parameters
    ----------
    architecture : str
        ``rb_cnn``, ``gmadet_cnn`` or ``braai_vgg6``.
    config : dict
        Builder keyword arguments (the ``config`` block of ``config.json``).

    Returns
    -------
    list of Layer

    Raises
    ------
    KeyError
        Unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise KeyError(
            f"unknown transient architecture {architecture!r}; known: {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture](**config)  # type: ignore[operator]


def flops_per_sample(layers: list[Layer], in_channels: int, size: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass.

    Parameters
    ----------
    layers : list of Layer
        The network.
    in_channels, size : int
        Input channels and side.

    Returns
    -------
    int
        FLOPs per sample (convolutions and dense layers only).

    Examples
    --------
    >>> flops_per_sample(braai_vgg6_layers(), 3, 63) // 1_000_000
    38
    """
    s, total = size, 0
    for lay in layers:
        if lay.kind == "conv":
            s = _conv_out(s, lay.k, lay.padding)
            total += 2 * s * s * lay.n_out * lay.n_in * lay.k * lay.k
        elif lay.kind in ("maxpool", "avgpool"):
            s //= lay.k
        elif lay.kind == "dense":
            total += 2 * lay.n_in * lay.n_out
    return total
