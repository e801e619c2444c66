"""Torch DLA networks: the window CNN, the fully-convolutional finder and the refiner.

The sliding-window CNN (dla.md §4), the fully-convolutional finder (§11) and the second-stage
localiser (:class:`Refiner`).

Both return three numbers per window / pixel in the order of :data:`OUTPUT_NAMES`: the DLA
classification logit, the pixel offset from the window centre (or pixel) to the DLA centre
(positive = DLA redward) and log10 N_HI. Only training and parity tests import this module;
inference uses :mod:`surveynet.dla.engine` (numpy).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from surveynet.config import from_dict
from surveynet.dla.config import FCNConfig, RefinerConfig, WindowCNNConfig
from surveynet.nn.numpy_ops import same_padding

OUTPUT_NAMES = ("logit", "offset", "log_nhi")


def window_lengths(cfg: WindowCNNConfig) -> list[int]:
    """Sequence lengths after each conv and pool: [L, conv1, pool1, conv2, pool2, conv3, pool3]."""
    lengths = [cfg.window]
    for s_c, s_p in zip(cfg.conv_strides, cfg.pool_strides, strict=True):
        lengths.append(-(-lengths[-1] // s_c))
        lengths.append(-(-lengths[-1] // s_p))
    return lengths


class WindowCNN(nn.Module):
    """Parks et al. 2018 window CNN (``Model_v5``): 3 x [conv, ReLU, max-pool], FC1, three heads.

    Input ``(N, in_channels, window)``; output ``(N, 3)`` = [logit, offset, log N_HI].
    The anchor's 'SAME' padding is reproduced exactly (zeros for the convolutions, ignored
    pixels (-inf) for the pools).
    """

    def __init__(self, config: WindowCNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        chans = (c.in_channels, *c.conv_filters)
        self.conv1 = nn.Conv1d(chans[0], chans[1], c.conv_kernels[0], stride=c.conv_strides[0])
        self.conv2 = nn.Conv1d(chans[1], chans[2], c.conv_kernels[1], stride=c.conv_strides[1])
        self.conv3 = nn.Conv1d(chans[2], chans[3], c.conv_kernels[2], stride=c.conv_strides[2])
        flat = window_lengths(c)[-1] * c.conv_filters[2]
        self.fc1 = nn.Linear(flat, c.fc1)
        self.fc2_class = nn.Linear(c.fc1, c.fc2[0])
        self.fc2_offset = nn.Linear(c.fc1, c.fc2[1])
        self.fc2_nhi = nn.Linear(c.fc1, c.fc2[2])
        self.out_class = nn.Linear(c.fc2[0], 1)
        self.out_offset = nn.Linear(c.fc2[1], 1)
        self.out_nhi = nn.Linear(c.fc2[2], 1)
        self.drop = nn.Dropout(1.0 - c.dropout_keep)
        if c.init == "anchor":
            for p in self.parameters():
                if p.ndim > 1:
                    nn.init.trunc_normal_(p, std=0.1, a=-0.2, b=0.2)
                else:
                    nn.init.zeros_(p)

    def l2_parameters(self) -> list[torch.Tensor]:
        """Weights under the anchor's L2 penalty (conv1, conv2, fc1, the fc2 branches)."""
        return [
            self.conv1.weight,
            self.conv2.weight,
            self.fc1.weight,
            self.fc2_class.weight,
            self.fc2_offset.weight,
            self.fc2_nhi.weight,
        ]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened trunk output ``(N, flat)`` (TF channel-last flatten order: length-major)."""
        c = self.config
        h = x
        for conv, k_p, s_p in zip(
            (self.conv1, self.conv2, self.conv3), c.pool_kernels, c.pool_strides, strict=True
        ):
            h = F.pad(h, same_padding(h.shape[-1], conv.kernel_size[0], conv.stride[0]))
            h = F.relu(conv(h))
            h = F.pad(h, same_padding(h.shape[-1], k_p, s_p), value=-math.inf)
            h = F.max_pool1d(h, k_p, s_p)
        return h.transpose(1, 2).reshape(h.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Window outputs ``(N, 3)`` for windows ``(N, in_channels, window)``."""
        if x.ndim != 3 or x.shape[1] != self.config.in_channels or x.shape[2] != self.config.window:
            raise ValueError(
                f"expected input (N, {self.config.in_channels}, {self.config.window}), "
                f"got {tuple(x.shape)}"
            )
        h = self.drop(F.relu(self.fc1(self.features(x))))
        a = self.out_class(self.drop(F.relu(self.fc2_class(h))))
        o = self.out_offset(self.drop(F.relu(self.fc2_offset(h))))
        n = self.out_nhi(self.drop(F.relu(self.fc2_nhi(h)))) + self.config.nhi_shift
        return torch.cat([a, o, n], dim=1)


class FCN(nn.Module):
    """Fully-convolutional finder: per-pixel [logit, offset, log N_HI] over a whole sightline.

    Input ``(N, in_channels, L)`` with ``L`` a multiple of ``config.factor``; output ``(N, 3, L)``.
    """

    def __init__(self, config: FCNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        chans = (c.in_channels, *c.stem_channels)
        self.stem = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], c.stem_kernel, stride=s, padding=c.stem_kernel // 2)
            for i, s in enumerate(c.stem_strides)
        )
        self.dconv = nn.ModuleList(
            nn.Conv1d(
                c.width, c.width, c.block_kernel, dilation=d, padding=d * (c.block_kernel // 2)
            )
            for d in c.dilations
        )
        self.pconv = nn.ModuleList(nn.Conv1d(c.width, c.width, 1) for _ in c.dilations)
        self.head_hidden = nn.Conv1d(c.width, c.head_hidden, 1)
        self.head_out = nn.Conv1d(c.head_hidden, 3 * c.factor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel outputs ``(N, 3, L)``."""
        f = self.config.factor
        if x.ndim != 3 or x.shape[1] != self.config.in_channels or x.shape[2] % f:
            raise ValueError(
                f"expected input (N, {self.config.in_channels}, L) with L % {f} == 0, "
                f"got {tuple(x.shape)}"
            )
        h = x
        for conv in self.stem:
            h = F.relu(conv(h))
        for dconv, pconv in zip(self.dconv, self.pconv, strict=True):
            h = F.relu(h + pconv(F.relu(dconv(h))))
        y = self.head_out(F.relu(self.head_hidden(h)))  # (N, 3 f, L / f)
        n, _, lc = y.shape
        y = y.reshape(n, 3, f, lc).permute(0, 1, 3, 2).reshape(n, 3, lc * f)
        shift = torch.zeros(3, 1, dtype=y.dtype)
        shift[2, 0] = self.config.nhi_shift
        return y + shift


class Refiner(nn.Module):
    """Second-stage localiser on a crop centred on a catalogue absorber (:class:`RefinerConfig`).

    Input ``(N, 3, crop)``; output ``(N, 3)`` = [logit, offset (pixels, positive = absorber
    redward of the crop centre), log N_HI].
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        chans = (c.in_channels, *c.widths)
        self.convs = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], c.kernel, padding=c.kernel // 2)
            for i in range(len(c.widths))
        )
        self.fc = nn.Linear(c.flat, c.hidden)
        self.out = nn.Linear(c.hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, 3)`` in physical units (pixels, log N_HI)."""
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.crop:
            raise ValueError(f"expected crops (N, {c.in_channels}, {c.crop}), got {tuple(x.shape)}")
        h = x
        for conv in self.convs:
            h = F.max_pool1d(F.relu(conv(h)), 2)
        y = self.out(F.relu(self.fc(h.flatten(1))))
        scale = torch.tensor([1.0, c.offset_unit, 1.0 / c.nhi_scale], dtype=y.dtype)
        shift = torch.tensor([0.0, 0.0, c.nhi_shift], dtype=y.dtype)
        return y * scale + shift


def build_window_cnn(**config: Any) -> WindowCNN:
    """Registry builder of ``dla_window_cnn`` (keyword config as stored in ``config.json``)."""
    return WindowCNN(from_dict(WindowCNNConfig, config))


def build_fcn(**config: Any) -> FCN:
    """Registry builder of ``dla_fcn`` (keyword config as stored in ``config.json``)."""
    return FCN(from_dict(FCNConfig, config))


def build_refiner(**config: Any) -> Refiner:
    """Registry builder of ``dla_refiner`` (keyword config as stored in ``config.json``)."""
    return Refiner(from_dict(RefinerConfig, config))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
