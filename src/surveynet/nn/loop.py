"""A small, seeded, resumable torch training loop with Lightning-style hook names.

The pipeline supplies ``training_step(model, batch) -> loss`` and optionally
``validation_step(model, batch) -> loss``; data are tuples of numpy arrays, batched with a seeded
``torch.Generator``. Each epoch appends a row to the history; the best model (lowest validation
loss, else training loss) and a resume checkpoint (safetensors: model, optimizer state as flat
tensors, epoch, RNG state in JSON) are written to ``workdir``. Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]


@dataclass
class LoopConfig:
    """Loop settings.

    Attributes
    ----------
    epochs : int
        Number of epochs.
    batch_size : int
        Mini-batch size.
    seed : int
        Seed of the shuffling generator (model init is seeded by the caller).
    patience : int
        Early-stopping patience in epochs (0 = off).
    quiet : bool
        Hide the progress bar.
    max_batches : int
        Stop each epoch after this many batches (0 = all); a smoke-test knob.
    """

    epochs: int = 10
    batch_size: int = 256
    seed: int = 0
    patience: int = 0
    quiet: bool = False
    max_batches: int = 0


@dataclass
class History:
    """Per-epoch loss history."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> str:
        """JSON text of the rows."""
        return json.dumps(self.rows, indent=1)


class _Batches:
    """One epoch's mini-batches, copied out of the arrays one at a time.

    A list of all of them would hold a second copy of the data set in memory.
    """

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        batch_size: int,
        gen: torch.Generator | None,
        max_batches: int = 0,
    ) -> None:
        n = len(arrays[0])
        self.arrays = arrays
        self.batch_size = batch_size
        self.order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        self.n_batches = -(-n // batch_size)
        if max_batches:
            self.n_batches = min(self.n_batches, max_batches)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[Batch]:
        for b in range(self.n_batches):
            idx = self.order[b * self.batch_size : (b + 1) * self.batch_size].numpy()
            yield tuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in self.arrays)


def _optimizer_tensors(
    opt: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        scalars["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v) and v.ndim > 0:
                tensors[f"opt.{pid}.{k}"] = v.detach().clone().contiguous()
            else:
                scalars["state"][str(pid)][k] = float(v) if torch.is_tensor(v) else v
    return tensors, scalars


def _restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for pid, st in scalars["state"].items():
        state[int(pid)] = {k: torch.tensor(v) if k == "step" else v for k, v in st.items()}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    epoch: int,
    gen: torch.Generator,
    history: History,
    best: float,
) -> None:
    """Write a resume checkpoint (safetensors + JSON sidecar) atomically."""
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    otens, oscal = _optimizer_tensors(opt)
    tensors.update(otens)
    tensors["rng"] = gen.get_state()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    meta = {"epoch": epoch, "optimizer": oscal, "history": history.rows, "best": best}
    mtmp = path.with_suffix(".json.tmp")
    mtmp.write_text(json.dumps(meta))
    os.replace(tmp, path)
    os.replace(mtmp, path.with_suffix(".json"))


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_data: Sequence[np.ndarray],
    training_step: Callable[[torch.nn.Module, Batch], torch.Tensor],
    config: LoopConfig,
    *,
    val_data: Sequence[np.ndarray] | None = None,
    validation_step: Callable[[torch.nn.Module, Batch], torch.Tensor] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    scheduler: Any = None,
    epoch_start: Callable[[int], None] | None = None,
) -> History:
    """Train ``model`` in place; return the loss history.

    Parameters
    ----------
    model, optimizer
        Torch module and its optimizer.
    train_data : sequence of ndarray
        Arrays with the same first dimension; batched together.
    training_step : callable
        ``training_step(model, batch) -> loss`` (scalar tensor).
    config : LoopConfig
        Epochs, batch size, seed, patience.
    val_data, validation_step
        Optional validation arrays and loss; the best-validation weights are restored at the end.
    workdir : path, optional
        Where ``checkpoint.safetensors`` (resume) and ``history.json`` go.
    resume : bool
        Continue from ``workdir/checkpoint.safetensors`` if it exists.
    scheduler : optional
        A torch LR scheduler stepped once per epoch.
    epoch_start : callable, optional
        Called with the 0-based epoch number before each epoch (e.g. to reseed a data
        augmentation, so that a resumed run draws what an uninterrupted one would).
    """
    gen = torch.Generator().manual_seed(config.seed)
    history = History()
    start, best = 0, math.inf
    best_state: dict[str, torch.Tensor] | None = None
    wd = Path(workdir) if workdir is not None else None
    ckpt = wd / "checkpoint.safetensors" if wd is not None else None
    if wd is not None:
        wd.mkdir(parents=True, exist_ok=True)
    if resume and ckpt is not None and ckpt.is_file():
        tensors = load_file(str(ckpt))
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _restore_optimizer(
            optimizer, {k: v for k, v in tensors.items() if k.startswith("opt.")}, meta["optimizer"]
        )
        gen.set_state(tensors["rng"])
        start, best = int(meta["epoch"]), float(meta["best"])
        best_file = ckpt.with_name("best.safetensors")
        if best_file.is_file():  # so that a resumed run still ends on the best epoch's weights
            best_state = load_file(str(best_file))
        history.rows = list(meta["history"])
        log.info("resumed from %s at epoch %d", ckpt, start)
        if scheduler is not None:
            for _ in range(start):
                scheduler.step()
    stale = 0
    for epoch in range(start, config.epochs):
        model.train()
        if epoch_start is not None:
            epoch_start(epoch)
        batches = _Batches(train_data, config.batch_size, gen, config.max_batches)
        tot, n = 0.0, 0
        bar = tqdm(
            batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=config.quiet, leave=False
        )
        for batch in bar:
            optimizer.zero_grad(set_to_none=True)
            loss = training_step(model, batch)
            loss.backward()
            optimizer.step()
            tot += float(loss.detach()) * len(batch[0])
            n += len(batch[0])
            bar.set_postfix(loss=f"{tot / max(n, 1):.4g}")
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch + 1, "train_loss": tot / max(n, 1)}
        monitor = row["train_loss"]
        if val_data is not None and validation_step is not None:
            model.eval()
            vt, vn = 0.0, 0
            with torch.no_grad():
                for batch in _Batches(val_data, config.batch_size, None):
                    vt += float(validation_step(model, batch)) * len(batch[0])
                    vn += len(batch[0])
            row["val_loss"] = vt / max(vn, 1)
            monitor = row["val_loss"]
        history.rows.append(row)
        log.info("epoch %d: %s", epoch + 1, row)
        if monitor < best:
            best, stale = monitor, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if wd is not None:
                tmp = wd / "best.safetensors.tmp"
                save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp))
                os.replace(tmp, wd / "best.safetensors")
        else:
            stale += 1
        if ckpt is not None:
            save_checkpoint(ckpt, model, optimizer, epoch + 1, gen, history, best)
            (wd / "history.json").write_text(history.to_json())  # type: ignore[operator]
        if config.patience and stale >= config.patience:
            log.info("early stop at epoch %d", epoch + 1)
            break
    if best_state is not None and val_data is not None:
        model.load_state_dict(best_state)
    return history
