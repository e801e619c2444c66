"""``surveynet bench sysnet``: production-shape training time, batched chains vs sysnetdev's loop.

Production configuration (sysnet.md, issue 19 point 9): 187,000 pixels x 18 features, 5 folds x
20 chains x 70 epochs, batch 4096, dnnp/pnll, AdamW + per-batch cosine schedule.

- ``batched``: every fold's 20 chains as one :class:`~surveynet.sysnet.model.EnsembleNet`
  (batches sliced from tensors). Full mode runs the whole production job; ``--quick`` times two
  epochs of one fold and extrapolates.
- ``dataloader``: sysnetdev's way, one chain at a time with a per-sample ``TensorDataset`` +
  ``DataLoader`` (shuffle, batch 4096) and the same model, loss and schedule, timed on one epoch
  in the same run and extrapolated to 5 x 20 x 70 epochs.
- scaling: seconds per epoch (20 chains) and peak resident memory for pixel counts of nside
  256, 512 and 1024 footprints (0.19, 0.75, 3.0 million pixels; 1024 skipped with ``--quick``).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np


def _table(n: int, k: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """Synthetic table: features (n, k), Poisson labels and fracgood."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    f = rng.uniform(0.3, 1.0, n)
    lam = f * np.exp(0.1 * x[:, 0] - 0.05 * x[:, 1] ** 2)
    return x, rng.poisson(lam).astype(float), f


def _dataloader_epoch(x: Any, y: Any, f: Any, batch: int, lr: float, cpu: bool = False) -> float:
    """One epoch of one chain with a per-sample DataLoader (sysnetdev's loop).

    Returns wall seconds (process-CPU seconds with ``cpu``).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from surveynet.sysnet.ensemble import cosine_lr, pixel_loss
    from surveynet.sysnet.model import build_single

    ds = TensorDataset(
        torch.as_tensor(x, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.float32),
        torch.as_tensor(f, dtype=torch.float32),
    )
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(0),
    )
    model = build_single("dnnp", x.shape[1], (4, 20))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    nb = len(loader)
    t0 = time.process_time() if cpu else time.perf_counter()
    model.train()
    for i, (xb, yb, fb) in enumerate(loader):
        opt.zero_grad()
        loss = pixel_loss(model(xb)[:, 0], yb, fb).sum()
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = cosine_lr(i / nb, lr, 1e-5)
    return (time.process_time() if cpu else time.perf_counter()) - t0


def _batched(n: int, k: int, nchains: int, nepochs: int, nfolds: int) -> tuple[float, float]:
    """Wall and process-CPU seconds to train ``nfolds`` x ``nchains`` x ``nepochs`` epochs."""
    from surveynet.sysnet.config import config_from_mapping
    from surveynet.sysnet.ensemble import train_ensemble
    from surveynet.sysnet.preprocess import chain_seeds, kfold_partitions

    x, y, f = _table(n, k)
    cfg = config_from_mapping(
        {"nepochs": nepochs, "batch_size": 4096, "learning_rate": 0.01, "nchains": nchains}
    )
    parts = kfold_partitions(n)[:nfolds]
    seeds = chain_seeds(nchains)
    t0, c0 = time.perf_counter(), time.process_time()
    for p in parts:
        train_ensemble(
            x[p.train], y[p.train], f[p.train], x[p.valid], y[p.valid], f[p.valid], seeds, cfg
        )
    return time.perf_counter() - t0, time.process_time() - c0


def run_bench(quick: bool) -> dict[str, Any]:
    """Run the benchmark; return the figures (seconds, ratios, MB)."""
    import torch

    n, k, nchains, nepochs, nfolds = 187_000, 18, 20, 70, 5
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "pixels": n, "features": k}
    x, y, f = _table(n, k)
    ntr = int(0.6 * n)
    t0, c0 = time.perf_counter(), time.process_time()
    _dataloader_epoch(x[:ntr], y[:ntr], f[:ntr], 4096, 0.01)
    t_dl, c_dl = time.perf_counter() - t0, time.process_time() - c0
    runs = nfolds * nchains * nepochs
    out["dataloader_s_per_chain_epoch"] = t_dl
    out["dataloader_cpu_s_per_chain_epoch"] = c_dl
    out["dataloader_production_s_extrapolated"] = t_dl * runs
    out["dataloader_production_cpu_s_extrapolated"] = c_dl * runs
    if quick:
        t, c = _batched(n, k, nchains, 2, 1)
        out["batched_s_per_fold_epoch_20_chains"] = t / 2
        out["batched_production_s_extrapolated"] = t / 2 * nfolds * nepochs
        out["batched_production_cpu_s_extrapolated"] = c / 2 * nfolds * nepochs
        prod, prod_c = t / 2 * nfolds * nepochs, c / 2 * nfolds * nepochs
    else:
        prod, prod_c = _batched(n, k, nchains, nepochs, nfolds)
        out["batched_production_s_measured"] = prod
        out["batched_production_cpu_s_measured"] = prod_c
        out["batched_s_per_fold_epoch_20_chains"] = prod / (nfolds * nepochs)
    out["speedup_vs_dataloader_wall"] = out["dataloader_production_s_extrapolated"] / prod
    out["speedup_vs_dataloader_cpu"] = out["dataloader_production_cpu_s_extrapolated"] / prod_c
    sizes = {"nside256": 187_000, "nside512": 750_000}
    if not quick:
        sizes["nside1024"] = 3_000_000
    for name, npx in sizes.items():
        t, c = _batched(npx, k, nchains, 1, 1)
        out[f"scaling_{name}_pixels"] = npx
        out[f"scaling_{name}_s_per_epoch_20_chains"] = t
        out[f"scaling_{name}_cpu_s_per_epoch_20_chains"] = c
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out
