"""Tuning tools whose results are saved (``tuning.json``) and reused (``tune.use``).

sysnetdev's finders log, plot and ``sys.exit``; here each returns its choice, writes it into
``<out>/tuning.json`` (and a plot) and the training run continues with it. All tools run on the
first partition (as sysnetdev's LR finder did).

- LR finder (davidtvs/pytorch-lr-finder as vendored by sysnetdev): exponential ramp from 1e-7
  to 1 over ``num_iter`` batches, loss smoothed with an EMA (0.05), stop when it exceeds 5x the
  best; suggested rate = where the smoothed loss falls fastest (steepest negative slope).
- structure finder: (3, 20), (4, 20), (5, 20), (6, 20), constant learning rate, lowest
  best-validation loss.
- L1 finder: l1_alpha in logspace(-8, 1, 10) (plus off), lowest best-validation loss.
- RFE: closed-form linear regression (with bias) on training data scored by unweighted
  validation MSE; backward elimination; ranking saved; ``axes`` kept by sysnetdev's rule.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ConfigError
from surveynet.sysnet.config import SysnetConfig
from surveynet.sysnet.data import SysnetData

log = logging.getLogger(__name__)

TUNING_FILE = "tuning.json"
STRUCTURES = ((3, 20), (4, 20), (5, 20), (6, 20))


def load_tuning(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``tuning.json`` (a file, or a folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / TUNING_FILE
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read tuning results ({exc})") from exc
    if "chosen" not in data:
        raise ConfigError(f"{p}: no 'chosen' entry")
    return dict(data)


def apply_tuning(config: SysnetConfig, tuning: dict[str, Any]) -> SysnetConfig:
    """Replace learning_rate, nn_structure, l1_alpha and axes by the tuned choices."""
    ch = tuning.get("chosen", {})
    model, train, data = config.model, config.train, config.data
    if "learning_rate" in ch:
        train = dataclasses.replace(train, learning_rate=float(ch["learning_rate"]))
    if "l1_alpha" in ch:
        train = dataclasses.replace(train, l1_alpha=float(ch["l1_alpha"]))
    if "nn_structure" in ch:
        model = dataclasses.replace(model, nn_structure=tuple(ch["nn_structure"]))
    if "axes" in ch:
        data = dataclasses.replace(data, axes=tuple(int(a) for a in ch["axes"]))
    tune = dataclasses.replace(
        config.tune, find_lr=False, find_structure=False, find_l1=False, do_rfe=False
    )
    return dataclasses.replace(config, model=model, train=train, data=data, tune=tune)


def _first_partition(data: SysnetData, config: SysnetConfig) -> tuple[Any, ...]:
    """Normalised (x, y, f) of the training and validation splits of partition 0."""
    from surveynet.sysnet.preprocess import Normalizer, run_partitions

    tc = config.train
    part = run_partitions(data, tc)[0]
    norm = Normalizer.fit(data.features[part.train], tc.normalization)
    xs = norm.transform(data.features)
    y, f = data.label, data.fracgood
    return (
        xs[part.train],
        y[part.train],
        f[part.train],
        xs[part.valid],
        y[part.valid],
        f[part.valid],
    )


def lr_finder(
    data: SysnetData,
    config: SysnetConfig,
    *,
    num_iter: int = 300,
    start_lr: float = 1e-7,
    end_lr: float = 1.0,
) -> dict[str, Any]:
    """Learning-rate range test; returns ``{"lr": [...], "loss": [...], "suggested": lr}``."""
    import torch

    from surveynet.sysnet.ensemble import make_optimizer, pixel_loss
    from surveynet.sysnet.model import EnsembleNet

    xtr, ytr, ftr, *_ = _first_partition(data, config)
    tc = config.train
    net = EnsembleNet(config.model.model, xtr.shape[1], config.model.nn_structure, [42])
    opt = make_optimizer(net.parameters(), tc.optim, start_lr)
    gen = torch.Generator().manual_seed(42)
    x = torch.as_tensor(xtr, dtype=torch.float32)
    y = torch.as_tensor(ytr, dtype=torch.float32)
    f = torch.as_tensor(ftr, dtype=torch.float32)
    bs = min(tc.batch_size, len(x))
    order = torch.randperm(len(x), generator=gen)
    lrs, losses = [], []
    best, avg = np.inf, 0.0
    net.train()
    pos = 0
    for k in range(num_iter):
        lr = start_lr * (end_lr / start_lr) ** (k / num_iter)
        for g in opt.param_groups:
            g["lr"] = lr
        if pos + bs > len(x):
            order, pos = torch.randperm(len(x), generator=gen), 0
        idx = order[pos : pos + bs]
        pos += bs
        opt.zero_grad()
        loss = pixel_loss(net(x[idx])[0], y[idx], f[idx], tc.loss, tc.loss_weighting).mean()
        loss.backward()
        opt.step()
        v = float(loss.detach())
        avg = v if k == 0 else 0.05 * v + 0.95 * avg
        if not np.isfinite(avg):
            break
        lrs.append(lr)
        losses.append(avg)
        best = min(best, avg)
        if avg > 5 * best:
            break
    lo = np.asarray(losses[10:-5] if len(losses) > 20 else losses)
    lr_arr = np.asarray(lrs[10:-5] if len(lrs) > 20 else lrs)
    grad = np.gradient(lo, np.log10(lr_arr)) if len(lo) > 2 else np.zeros(1)
    suggested = float(lr_arr[int(np.argmin(grad))]) if len(lr_arr) else tc.learning_rate
    return {"lr": lrs, "loss": losses, "suggested": suggested}


def structure_finder(
    data: SysnetData,
    config: SysnetConfig,
    *,
    nepochs: int = 50,
    structures: tuple[tuple[int, int], ...] = STRUCTURES,
) -> dict[str, Any]:
    """Best validation loss of each structure (one chain, constant lr); returns the lowest."""
    from surveynet.sysnet.ensemble import train_ensemble

    args = _first_partition(data, config)
    out = {}
    for s in structures:
        cfg = dataclasses.replace(config, model=dataclasses.replace(config.model, nn_structure=s))
        res = train_ensemble(*args, [85], cfg, nepochs=nepochs, use_scheduler=False)
        out[f"{s[0]},{s[1]}"] = float(res.best_valid[0])
    best = min(out, key=lambda k: out[k])
    return {"valid_loss": out, "suggested": [int(v) for v in best.split(",")]}


def l1_finder(data: SysnetData, config: SysnetConfig, *, nepochs: int = 50) -> dict[str, Any]:
    """Best validation loss for l1_alpha in logspace(-8, 1, 10) and off (-1)."""
    from surveynet.sysnet.ensemble import train_ensemble

    args = _first_partition(data, config)
    out = {}
    for a in [-1.0, *np.logspace(-8, 1, 10).tolist()]:
        cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, l1_alpha=a))
        res = train_ensemble(*args, [85], cfg, nepochs=nepochs, use_scheduler=False)
        out[repr(a)] = float(res.best_valid[0])
    best = min(out, key=lambda k: out[k])
    return {"valid_loss": out, "suggested": float(best)}


def _linreg_val_mse(
    xtr: NDArray[np.float64],
    ytr: NDArray[np.float64],
    xva: NDArray[np.float64],
    yva: NDArray[np.float64],
) -> float:
    """Validation MSE of a closed-form linear regression with bias."""
    a = np.hstack([np.ones((len(xtr), 1)), xtr])
    coef, *_ = np.linalg.lstsq(a, ytr, rcond=None)
    pred = coef[0] + xva @ coef[1:]
    return float(np.mean((pred - yva) ** 2))


def rfe(data: SysnetData, config: SysnetConfig) -> dict[str, Any]:
    """Recursive feature elimination with a closed-form linear model (sysnetdev ``--do_rfe``).

    Returns ``{"ranking": [...], "val_loss": [...], "axes": [...]}``: ``ranking`` lists feature
    indices from the first eliminated to the last kept; ``axes`` = features kept by sysnetdev's
    rule ``importance[argmin(val_loss) + 1:]``.
    """
    xtr, ytr, _, xva, yva, _ = _first_partition(data, config)
    remaining = list(range(xtr.shape[1]))
    eliminated, losses = [], []
    while len(remaining) > 1:
        trial = {}
        for j in remaining:
            keep = [r for r in remaining if r != j]
            trial[j] = _linreg_val_mse(xtr[:, keep], ytr, xva[:, keep], yva)
        drop = min(trial, key=lambda j: trial[j])
        eliminated.append(drop)
        losses.append(trial[drop])
        remaining.remove(drop)
    ranking = eliminated + remaining
    full = _linreg_val_mse(xtr, ytr, xva, yva)
    all_losses = [full, *losses]
    cut = int(np.argmin(all_losses))
    axes = sorted(ranking[cut:])
    return {
        "ranking": ranking,
        "names": [data.feature_names[i] for i in ranking],
        "val_loss": all_losses,
        "axes": axes,
    }


def run_tuning(
    data: SysnetData, config: SysnetConfig, out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Run the tools switched on in ``config.tune``; write ``tuning.json`` (+ plots); return it."""
    from surveynet.io.fits import atomic_path

    res: dict[str, Any] = {"chosen": {}}
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    t = config.tune
    if t.do_rfe:
        r = rfe(data, config)
        res["rfe"] = r
        base = config.data.axes
        res["chosen"]["axes"] = r["axes"] if base is None else [base[i] for i in r["axes"]]
        data = data.select(tuple(r["axes"]))
    if t.find_lr:
        r = lr_finder(data, config, num_iter=t.lr_iters)
        res["lr_finder"] = r
        res["chosen"]["learning_rate"] = r["suggested"]
        from surveynet.sysnet.plots import plot_lr_finder

        plot_lr_finder(r["lr"], r["loss"], r["suggested"]).savefig(outdir / "lr_finder.png")
    if t.find_structure:
        r = structure_finder(data, config, nepochs=t.finder_epochs)
        res["structure"] = r
        res["chosen"]["nn_structure"] = r["suggested"]
    if t.find_l1:
        r = l1_finder(data, config, nepochs=t.finder_epochs)
        res["l1"] = r
        res["chosen"]["l1_alpha"] = r["suggested"]
    with atomic_path(outdir / TUNING_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(res, indent=1) + "\n")
    log.info("tuning: %s", res["chosen"])
    return res
