"""Torch modules of the real/bogus networks, built from :mod:`surveynet.transient.arch`.

Inputs are ``(N, C, H, W)`` float32 cutouts (torch layout); the module returns logits (one for a
``sigmoid`` head, two for ``softmax``) and :meth:`RealBogusNet.proba_real` turns them into
P(real). ``state_dict`` keys are ``net.<index>.<param>`` with the index of the layer list.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from surveynet.transient.arch import Layer, layers_for

__all__ = ["RealBogusNet", "build"]


class RealBogusNet(nn.Module):
    """A sequential real/bogus CNN.

    Parameters
    ----------
    layers : list of Layer
        The layer list (:func:`surveynet.transient.arch.layers_for`).
    head : {"sigmoid", "softmax"}
        How logits become P(real).

    Attributes
    ----------
    net : torch.nn.Sequential
        The layers.
    """

    def __init__(self, layers: list[Layer], head: str = "sigmoid") -> None:
        super().__init__()
        mods: list[nn.Module] = []
        flat = False
        for lay in layers:
            if lay.kind == "conv":
                mods.append(nn.Conv2d(lay.n_in, lay.n_out, lay.k, padding=lay.padding))
            elif lay.kind == "relu":
                mods.append(nn.ReLU())
            elif lay.kind == "elu":
                mods.append(nn.ELU())
            elif lay.kind == "bn":
                # Keras BatchNormalization defaults (epsilon 1e-3, momentum 0.99)
                bn = nn.BatchNorm1d if flat else nn.BatchNorm2d
                mods.append(bn(lay.n_out, eps=1e-3, momentum=0.01))
            elif lay.kind == "maxpool":
                mods.append(nn.MaxPool2d(lay.k))
            elif lay.kind == "avgpool":
                mods.append(nn.AvgPool2d(lay.k))
            elif lay.kind == "dropout":
                mods.append(nn.Dropout(lay.p))
            elif lay.kind == "flatten":
                mods.append(nn.Flatten())
                flat = True
            elif lay.kind == "dense":
                mods.append(nn.Linear(lay.n_in, lay.n_out))
            else:
                raise ValueError(f"unknown layer kind {lay.kind!r}")
        self.net = nn.Sequential(*mods)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, 1) or (N, 2).

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, H, W)
            Cutouts.

        Returns
        -------
        torch.Tensor
        """
        return self.net(x)

    def proba_real(self, x: torch.Tensor) -> torch.Tensor:
        """P(real) of shape (N,).

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, H, W)
            Cutouts.

        Returns
        -------
        torch.Tensor
        """
        z = self.forward(x)
        if self.head == "softmax":
            return torch.softmax(z, dim=1)[:, 1]
        return torch.sigmoid(z[:, 0])


def build(architecture: str, **config: Any) -> RealBogusNet:
    """Build a registered transient architecture.

    Parameters
    ----------
    architecture : str
        ``rb_cnn``, ``gmadet_cnn`` or ``braai_vgg6``.
    **config
        Builder arguments (:mod:`surveynet.transient.arch`).

    Returns
    -------
    RealBogusNet
    """
    head = str(config.get("head", "softmax" if architecture == "gmadet_cnn" else "sigmoid"))
    return RealBogusNet(layers_for(architecture, config), head=head)
