"""QuasarNET in PyTorch (Busca & Balland 2018, arXiv:1808.09955).

Architecture of ngbusca/QuasarNET:py/quasarnet/models.py and the dylanagreen fork.

``n_layers`` x [Conv1d(k, stride) -> BatchNorm -> ReLU -> Dropout] -> channels-last flatten ->
Linear(n_fc) -> BatchNorm -> ReLU -> per head Linear(n_boxes) box + Linear(n_boxes) offset, both
sigmoid, offsets optionally rescaled ``shift + scale * o``. 'same' padding is TensorFlow's
asymmetric padding applied explicitly (PyTorch refuses ``padding='same'`` with stride > 1);
BatchNorm epsilon comes from the config (Keras 1e-3). ``state_dict`` names and shapes are those of
:func:`surveynet.quasar.engine.state_dict_keys`, shared with the numpy engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from surveynet.config import from_dict, to_dict
from surveynet.errors import ConfigError, ModelFormatError
from surveynet.nn.numpy_ops import same_padding
from surveynet.quasar.config import QuasarNetConfig


class QuasarNetTorch(nn.Module):
    """QuasarNET network.

    Parameters
    ----------
    config : QuasarNetConfig
        Architecture (every constant lives there).

    Notes
    -----
    ``forward(x)`` takes (N, L) or (N, 1, L) and returns (N, n_heads, 2 * n_boxes): per head the
    box probabilities then the (rescaled) offsets. :meth:`forward_logits` returns the
    pre-sigmoid box logits and the final offsets, for a numerically stable training loss.
    """

    def __init__(self, config: QuasarNetConfig) -> None:
        super().__init__()
        self.config = config
        momentum = 1.0 - config.bn_momentum  # Keras 0.99 -> torch 0.01
        c_in = 1
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self._pads: list[tuple[int, int]] = []
        n = config.n_input
        for n_out in config.conv_lengths():
            self.convs.append(
                nn.Conv1d(c_in, config.n_filters, config.kernel_size, stride=config.stride)
            )
            self.bns.append(nn.BatchNorm1d(config.n_filters, eps=config.bn_eps, momentum=momentum))
            pad = (
                same_padding(n, config.kernel_size, config.stride)
                if config.padding == "same"
                else (0, 0)
            )
            self._pads.append(pad)
            n, c_in = n_out, config.n_filters
        self.dropout = nn.Dropout(config.dropout)
        self.fc_common = nn.Linear(config.flat_length(), config.n_fc)
        self.bn_fc = nn.BatchNorm1d(config.n_fc, eps=config.bn_eps, momentum=momentum)
        self.box = nn.ModuleList(
            nn.Linear(config.n_fc, config.n_boxes) for _ in range(config.n_heads)
        )
        self.offset = nn.ModuleList(
            nn.Linear(config.n_fc, config.n_boxes) for _ in range(config.n_heads)
        )

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.config.n_input:
            raise ValueError(
                f"input must have shape (N, {self.config.n_input}) or "
                f"(N, 1, {self.config.n_input}); "
                f"got {tuple(x.shape)}"
            )
        h = x
        for conv, bn, pad in zip(self.convs, self.bns, self._pads, strict=True):
            if pad != (0, 0):
                h = F.pad(h, pad)
            h = self.dropout(F.relu(bn(conv(h))))
        h = h.transpose(1, 2).flatten(1)  # channels-last flatten, as Keras
        return F.relu(self.bn_fc(self.fc_common(h)))

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box logits and final offsets, each (N, n_heads, n_boxes)."""
        h = self._trunk(x)
        logits = torch.stack([lin(h) for lin in self.box], dim=1)
        off = torch.sigmoid(torch.stack([lin(h) for lin in self.offset], dim=1))
        if self.config.offset_rescale:
            off = self.config.offset_shift + self.config.offset_scale * off
        return logits, off

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (N, n_heads, 2 * n_boxes): box probabilities then offsets per head."""
        logits, off = self.forward_logits(x)
        return torch.cat([torch.sigmoid(logits), off], dim=2)

    def state_dict_numpy(self) -> dict[str, NDArray[np.float32]]:
        """``state_dict`` as float32 numpy arrays, ready for ``save_model``.

        BatchNorm ``num_batches_tracked`` counters are left out (see
        :func:`surveynet.quasar.engine.state_dict_keys`).
        """
        return {
            k: v.detach().cpu().numpy().astype(np.float32)
            for k, v in self.state_dict().items()
            if not k.endswith("num_batches_tracked")
        }

    def load_state_dict_numpy(self, tensors: dict[str, NDArray[Any]]) -> None:
        """Load file tensors strictly.

        Every parameter and running statistic must be present with the right shape, nothing
        extra (``num_batches_tracked`` may be absent).

        Raises
        ------
        ModelFormatError
            Missing, unexpected or mis-shaped tensors.
        """
        from surveynet.quasar.engine import check_state_dict

        check_state_dict(tensors, self.config)
        state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}
        result = self.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            raise ModelFormatError(
                f"state dict mismatch: missing {missing}, unexpected {result.unexpected_keys}"
            )

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> QuasarNetTorch:
        """Build from a ``to_dict(QuasarNetConfig)`` dict."""
        return cls(from_dict(QuasarNetConfig, config))

    @classmethod
    def from_saved(cls, saved: Any) -> QuasarNetTorch:
        """Model from a :class:`surveynet.io.model.SavedModel` (strict loading), in eval mode."""
        if saved.architecture != "quasarnet":
            raise ModelFormatError(
                f"{saved.path}: architecture {saved.architecture!r} is not 'quasarnet'"
            )
        try:
            config = from_dict(QuasarNetConfig, saved.config)
        except ConfigError as exc:
            raise ModelFormatError(f"{saved.path}: invalid QuasarNET config ({exc})") from exc
        model = cls(config)
        try:
            model.load_state_dict_numpy(saved.tensors)
        except ModelFormatError as exc:
            raise ModelFormatError(f"{saved.path}: {exc}") from exc
        return model.eval()

    def fused_for_inference(self) -> nn.Module:
        """A copy for inference with every BatchNorm folded into its conv/dense layer.

        The result computes the same function as ``self.eval()`` (to float rounding) with fewer
        operations; it has no dropout and no trainable BatchNorm, so it is for prediction only.
        """
        return _FusedQuasarNet(self)

    def config_dict(self) -> dict[str, Any]:
        """The architecture config as stored in ``config.json``."""
        return to_dict(self.config)


def build_quasarnet(**config: Any) -> QuasarNetTorch:
    """Registry builder: ``get_architecture("quasarnet")(**to_dict(QuasarNetConfig(...)))``."""
    return QuasarNetTorch(from_dict(QuasarNetConfig, config))


class _FusedQuasarNet(nn.Module):
    """Inference-only QuasarNET with BatchNorms folded and the heads stacked.

    See :meth:`QuasarNetTorch.fused_for_inference`.
    """

    def __init__(self, model: QuasarNetTorch) -> None:
        super().__init__()
        from surveynet.nn.numpy_ops import fold_batch_norm

        cfg = model.config
        self.config = cfg
        self._pads = list(model._pads)
        dtype = model.fc_common.weight.dtype

        def fold(lin: nn.Module, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
            w, b = fold_batch_norm(
                lin.weight.detach().cpu().double().numpy(),
                lin.bias.detach().cpu().double().numpy(),
                bn.weight.detach().cpu().double().numpy(),
                bn.bias.detach().cpu().double().numpy(),
                bn.running_mean.detach().cpu().double().numpy(),
                bn.running_var.detach().cpu().double().numpy(),
                bn.eps,
            )
            return torch.from_numpy(w).to(dtype), torch.from_numpy(b).to(dtype)

        # 1-D convolutions run as (1 x K) 2-D convolutions on channels-last (NHWC) tensors: oneDNN
        # then needs no layout reorders, and the channels-last flatten of Keras is a free view.
        self.convs = nn.ModuleList()
        for conv, bn in zip(model.convs, model.bns, strict=True):
            c = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                (1, conv.kernel_size[0]),
                stride=(1, conv.stride[0]),
            )
            w, b = fold(conv, bn)
            c.weight.data, c.bias.data = w.unsqueeze(2), b
            self.convs.append(c.to(dtype).to(memory_format=torch.channels_last))
        # the same folded kernels as (K * C_in, C_out) matrices for the small-batch im2col path
        for i, c in enumerate(self.convs):
            mat = c.weight.detach()[:, :, 0, :].permute(2, 1, 0).reshape(-1, c.out_channels)
            self.register_buffer(f"mat_{i}", mat.contiguous())
        self.fc = nn.Linear(cfg.flat_length(), cfg.n_fc).to(dtype)
        self.fc.weight.data, self.fc.bias.data = fold(model.fc_common, model.bn_fc)
        ws, bs = [], []
        for h in range(cfg.n_heads):
            for lin in (model.box[h], model.offset[h]):
                ws.append(lin.weight.detach())
                bs.append(lin.bias.detach())
        self.heads = nn.Linear(cfg.n_fc, 2 * cfg.n_heads * cfg.n_boxes).to(dtype)
        self.heads.weight.data = torch.cat(ws, 0).clone()
        self.heads.bias.data = torch.cat(bs, 0).clone()
        scale = torch.ones(cfg.n_heads, 2 * cfg.n_boxes, dtype=dtype)
        shift = torch.zeros(cfg.n_heads, 2 * cfg.n_boxes, dtype=dtype)
        if cfg.offset_rescale:
            scale[:, cfg.n_boxes :] = cfg.offset_scale
            shift[:, cfg.n_boxes :] = cfg.offset_shift
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)
        self.eval()

    #: Batches up to this size use im2col + matrix products (less per-call overhead than the
    #: oneDNN convolution for a handful of spectra); larger ones use the convolutions.
    small_batch = 4

    def _trunk_im2col(self, x: torch.Tensor) -> torch.Tensor:
        """Conv stack as im2col + ``addmm`` in (N, L, C) layout; returns the flattened output."""
        k, s = self.config.kernel_size, self.config.stride
        h = x.unsqueeze(2)
        mats = [getattr(self, f"mat_{i}") for i in range(len(self.convs))]
        for conv, mat, pad in zip(self.convs, mats, self._pads, strict=True):
            if pad != (0, 0):
                h = F.pad(h, (0, 0, *pad))
            n, length, c = h.shape
            n_out = (length - k) // s + 1
            cols = h.as_strided((n, n_out, k, c), (length * c, s * c, c, 1)).reshape(
                n * n_out, k * c
            )
            h = torch.addmm(conv.bias, cols, mat).relu_().view(n, n_out, -1)
        return h.reshape(h.shape[0], h.shape[1] * h.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (N, n_heads, 2 * n_boxes), as :meth:`QuasarNetTorch.forward`."""
        if x.dim() == 3:
            x = x.squeeze(1)
        x = x.contiguous()
        if x.dim() != 2 or x.shape[1] != self.config.n_input:
            raise ValueError(
                f"input must have shape (N, {self.config.n_input}); got {tuple(x.shape)}"
            )
        if x.shape[0] <= self.small_batch:
            h = self._trunk_im2col(x)
        else:
            h = x.view(x.shape[0], 1, 1, x.shape[1])
            for conv, pad in zip(self.convs, self._pads, strict=True):
                if pad != (0, 0):
                    h = F.pad(h, pad)
                h = torch.relu_(conv(h.contiguous(memory_format=torch.channels_last)))
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], h.shape[1] * h.shape[3])  # t * C + c
        h = torch.relu_(self.fc(h))
        o = torch.sigmoid(self.heads(h)).view(
            h.shape[0], self.config.n_heads, 2 * self.config.n_boxes
        )
        return torch.addcmul(self.shift, o, self.scale)
