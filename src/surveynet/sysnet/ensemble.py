"""The batched-ensemble trainer: losses, the per-batch cosine schedule, one fold's N chains.

sysnetdev conventions (sysnet.md sections 2-3): per pixel, the network output y_hat is multiplied
by fracgood f and compared with the label; the per-pixel loss is multiplied by f again
(``loss_weighting="fracgood"``, sysnetdev since 2021-10-27; ``"legacy"`` drops that factor);
backward uses the batch **sum**; reported losses are sum / N pixels. AdamW (weight decay 0) with
CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) stepped after every batch at the fractional
epoch ``epoch + i / n_batches``. Every epoch runs (no early stopping); each chain keeps its own
lowest-validation-loss weights.

All ``nchains`` chains of a fold train as one :class:`~surveynet.sysnet.model.EnsembleNet`:
every chain draws its own shuffling order from its own seed, so chain c equals training that
chain alone (tested). Batches are sliced from in-memory tensors (no per-sample Dataset).
The core driver :mod:`surveynet.nn.train` trains one model per call; the grouped ensemble,
per-chain best-epoch selection and the per-batch schedule need this dedicated loop, used by
:mod:`surveynet.sysnet.train` (folds, outputs) and :mod:`surveynet.sysnet.tune` (finders).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from surveynet.sysnet.config import SysnetConfig
from surveynet.sysnet.model import EnsembleNet

log = logging.getLogger(__name__)


PNLL_EPS = 1e-8


def pixel_loss(
    yhat: torch.Tensor,
    label: torch.Tensor,
    fracgood: torch.Tensor,
    loss: str = "pnll",
    weighting: str = "fracgood",
) -> torch.Tensor:
    """Per-pixel loss of sysnetdev.

    pnll: f [f y_hat - y log(f y_hat + 1e-8)]; mse: f (f y_hat - y)^2 (the leading f only with
    ``weighting="fracgood"``).

    Parameters
    ----------
    yhat, label, fracgood : Tensor of the same shape

    Returns
    -------
    Tensor, same shape

    Examples
    --------
    >>> t = torch.tensor
    >>> pixel_loss(t([2.0]), t([1.0]), t([0.5]), "mse").item()
    0.0
    """
    pred = yhat * fracgood
    if loss == "pnll":
        out = pred - label * torch.log(pred + PNLL_EPS)
    elif loss == "mse":
        out = (pred - label) ** 2
    else:
        raise ValueError(f"unknown loss {loss!r} (pnll, mse)")
    return out * fracgood if weighting == "fracgood" else out


def cosine_lr(t: float, lr_max: float, eta_min: float, t0: int = 10, t_mult: int = 2) -> float:
    """Torch ``CosineAnnealingWarmRestarts`` learning rate at fractional epoch ``t``.

    Examples
    --------
    >>> round(cosine_lr(27 / 28, 0.01, 1e-5), 6)
    0.009773
    >>> round(cosine_lr(10 + 27 / 28, 0.01, 1e-5), 6)
    0.009943
    """
    if t_mult == 1:
        t_cur, t_i = t % t0, float(t0)
    else:
        n = int(math.log(t / t0 * (t_mult - 1) + 1, t_mult)) if t >= t0 else 0
        t_cur = t - t0 * (t_mult**n - 1) / (t_mult - 1)
        t_i = float(t0 * t_mult**n)
    return eta_min + (lr_max - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cycle_end(epoch: int, t0: int = 10, t_mult: int = 2) -> bool:
    """Whether 0-based ``epoch`` is the last of a cosine cycle (sysnetdev snapshot rule).

    Examples
    --------
    >>> [e for e in range(70) if cycle_end(e)]
    [9, 29, 69]
    """
    t = epoch + 1.0
    if t_mult == 1:
        return (epoch + 1) % t0 == 0
    k = t0
    total = t0
    while total < t:
        k *= t_mult
        total += k
    return total == t


def baseline_losses(
    y_train: NDArray[np.float64],
    sets: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    loss: str = "pnll",
    weighting: str = "fracgood",
) -> list[float]:
    """Loss of the constant model y_hat = unweighted training mean, for each ``(label, f)`` set."""
    m = float(np.mean(y_train))
    out = []
    for y, f in sets:
        yt, ft = torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(f, dtype=torch.float64)
        lv = pixel_loss(torch.full_like(yt, m), yt, ft, loss, weighting)
        out.append(float(lv.sum() / max(len(y), 1)))
    return out


def make_optimizer(
    params: Sequence[torch.nn.Parameter] | object, name: str, lr: float
) -> torch.optim.Optimizer:
    """AdamW/Adam (betas 0.9, 0.999, eps 1e-8, weight decay 0) or SGD (momentum 0.9)."""
    if name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=lr,
            betas=(0.9, 0.999),
            eps=1e-8,  # type: ignore[arg-type]
            weight_decay=0.0,
        )
    if name == "adam":
        return torch.optim.Adam(
            params,
            lr=lr,
            betas=(0.9, 0.999),
            eps=1e-8,  # type: ignore[arg-type]
            weight_decay=0.0,
        )
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)  # type: ignore[arg-type]
    raise ValueError(f"unknown optimiser {name!r} (adamw, adam, sgd)")


@dataclass
class EnsembleFit:
    """Result of :func:`train_ensemble`.

    Attributes
    ----------
    net : EnsembleNet
        Best-validation weights of every chain, in eval mode.
    train_loss, valid_loss : ndarray of shape (C, nepochs)
    lr : ndarray of shape (nepochs,)
        Learning rate at the end of each epoch.
    best_epoch : ndarray of int, shape (C,)
    best_valid : ndarray, shape (C,)
    snapshots : list of dict
        ``{"epoch": e, "state": state_dict}`` at cycle ends (``snapshot_ensemble``).
    """

    net: EnsembleNet
    train_loss: NDArray[np.float64]
    valid_loss: NDArray[np.float64]
    lr: NDArray[np.float64]
    best_epoch: NDArray[np.int64]
    best_valid: NDArray[np.float64]
    snapshots: list[dict[str, object]] = field(default_factory=list)


#: Rows per forward pass at evaluation (bounds memory: C x chunk x units activations).
EVAL_CHUNK = 65536


def _losses(
    net: EnsembleNet, x: torch.Tensor, y: torch.Tensor, f: torch.Tensor, cfg: SysnetConfig
) -> torch.Tensor:
    """Per-chain summed loss of a batch, shape (C,)."""
    lv = pixel_loss(net(x), y, f, cfg.train.loss, cfg.train.loss_weighting)
    return lv.sum(dim=-1)


def _eval_losses(
    net: EnsembleNet, x: torch.Tensor, y: torch.Tensor, f: torch.Tensor, cfg: SysnetConfig
) -> torch.Tensor:
    """Per-chain summed loss over a whole split in eval mode, in chunks, shape (C,)."""
    tot = torch.zeros(net.n_chains, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(x), EVAL_CHUNK):
            sl = slice(i, i + EVAL_CHUNK)
            tot += _losses(net, x[sl], y[sl], f[sl], cfg).double()
    return tot


def train_ensemble(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.float64],
    f_train: NDArray[np.float64],
    x_valid: NDArray[np.float64],
    y_valid: NDArray[np.float64],
    f_valid: NDArray[np.float64],
    seeds: Sequence[int],
    config: SysnetConfig,
    *,
    init: Sequence[dict[str, torch.Tensor]] | None = None,
    nepochs: int | None = None,
    use_scheduler: bool = True,
) -> EnsembleFit:
    """Train ``len(seeds)`` chains of one fold as one batched model.

    Parameters
    ----------
    x_train, y_train, f_train : ndarray
        Normalised features (n, k), labels and fracgood of the training split.
    x_valid, y_valid, f_valid : ndarray
        The validation split.
    seeds : sequence of int
        Chain seeds (initialisation and shuffling).
    config : SysnetConfig
        ``model`` and ``train`` sections are used.
    init : sequence of state_dict, optional
        Starting weights per chain (``restore_model``).
    nepochs : int, optional
        Override ``train.nepochs`` (tuning tools).
    use_scheduler : bool
        False keeps the learning rate constant (structure and L1 finders).

    Returns
    -------
    EnsembleFit
    """
    tc = config.train
    epochs = int(nepochs or tc.nepochs)
    c = len(seeds)
    net = EnsembleNet(config.model.model, x_train.shape[1], config.model.nn_structure, seeds)
    if init is not None:
        for i, sd in enumerate(init):
            net.load_chain_state_dict(i, sd)
    elif tc.init_bias:
        set_output_bias(net, float(np.mean(y_train) / np.mean(f_train)))
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.float32)
    ft = torch.as_tensor(f_train, dtype=torch.float32)
    xv = torch.as_tensor(x_valid, dtype=torch.float32)
    yv = torch.as_tensor(y_valid, dtype=torch.float32)
    fv = torch.as_tensor(f_valid, dtype=torch.float32)
    n = len(xt)
    bs = min(tc.batch_size, n)
    nb = -(-n // bs)
    if net.is_dnn and n - (nb - 1) * bs == 1 and nb > 1:
        nb -= 1  # a final batch of one pixel breaks BatchNorm (sysnetdev pain point): drop it
    opt = make_optimizer(net.parameters(), tc.optim, tc.learning_rate)
    sched = use_scheduler and tc.scheduler == "cosann"
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    l1 = tc.l1_alpha if tc.l1_alpha > 0 else 0.0
    hist_tr = np.zeros((c, epochs))
    hist_va = np.zeros((c, epochs))
    lrs = np.zeros(epochs)
    best = np.full(c, np.inf)
    best_ep = np.zeros(c, dtype=np.int64)
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    snaps: list[dict[str, object]] = []
    bar = tqdm(range(epochs), disable=tc.quiet, desc=f"{c} chain(s)", leave=False)
    for epoch in bar:
        net.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
        tot = torch.zeros(c, dtype=torch.float64)
        seen = 0
        for b in range(nb):
            idx = perms[:, b * bs : (b + 1) * bs]
            opt.zero_grad(set_to_none=True)
            per_chain = _losses(net, xt[idx], yt[idx], ft[idx], config)
            loss = per_chain.sum()
            if l1:
                loss = loss + l1 * net.l1_first_layer().sum()
            loss.backward()
            opt.step()
            tot += per_chain.detach().double()
            seen += idx.shape[1]
            if sched:
                lr = cosine_lr(epoch + b / nb, tc.learning_rate, tc.eta_min, tc.t0, tc.t_mult)
                for g in opt.param_groups:
                    g["lr"] = lr
        net.eval()
        va = (_eval_losses(net, xv, yv, fv, config) / max(len(xv), 1)).numpy()
        hist_tr[:, epoch] = (tot / seen).numpy()
        hist_va[:, epoch] = va
        lrs[epoch] = opt.param_groups[0]["lr"]
        better = va < best
        if np.any(better):
            mask = torch.as_tensor(better)
            for k, v in net.state_dict().items():
                if v.ndim >= 1 and v.shape[0] == c:
                    best_state[k][mask] = v.detach()[mask]
            best[better] = va[better]
            best_ep[better] = epoch
        if tc.snapshot_ensemble and cycle_end(epoch, tc.t0, tc.t_mult):
            snaps.append(
                {
                    "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
                }
            )
        log.debug(
            "epoch %d/%d train %s valid %s lr %.3g",
            epoch + 1,
            epochs,
            np.round(hist_tr[:, epoch], 5),
            np.round(va, 5),
            lrs[epoch],
        )
    net.load_state_dict(best_state)
    net.eval()
    return EnsembleFit(net, hist_tr, hist_va, lrs, best_ep, best, snaps)


def set_output_bias(net: EnsembleNet, mean: float) -> None:
    """Set every chain's output bias so that a zero hidden signal predicts ``mean``."""
    m = max(mean, 1e-6)
    if net.model in ("dnnp", "linp"):
        b = m + math.log(-math.expm1(-m))  # inverse softplus
    elif net.model == "dnnps":
        b = math.log(m)
    else:
        b = m
    with torch.no_grad():
        net.biases[-1].fill_(b)


def predict_ensemble(net: EnsembleNet, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Predictions of every chain, shape (C, n) (eval mode, float64 output)."""
    net.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        parts = [net(xt[i : i + EVAL_CHUNK]).double() for i in range(0, len(xt), EVAL_CHUNK)]
    return torch.cat(parts, dim=1).numpy() if parts else np.zeros((net.n_chains, 0))


# --------------------------------------------------------------------------------------------
# The train step: partitions x chains, outputs in sysnetdev's layout + the project's model format
# --------------------------------------------------------------------------------------------
