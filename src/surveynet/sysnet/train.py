"""Training: k-fold partitions x N chains, tuning, baselines and the outputs of a run.

The ensemble trainer itself (losses, schedule, batched chains) is
:mod:`surveynet.sysnet.ensemble`; this module runs it over the folds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from surveynet.sysnet.config import SysnetConfig
from surveynet.sysnet.ensemble import (
    baseline_losses,
    pixel_loss,
    predict_ensemble,
    train_ensemble,
)
from surveynet.sysnet.model import EnsembleNet

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "nn-weights.fits"
METRICS_FILE = "metrics.npz"
CONFIG_FILE = "config.json"


def _tensor_dict(sd: dict[str, torch.Tensor]) -> dict[str, NDArray[np.float64]]:
    """state_dict tensors as numpy arrays."""
    return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def train_sysnet(
    config: SysnetConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    command: str = "",
) -> Path:
    """Run ``sysnet train``: every partition, every chain, baselines; write the outputs.

    Outputs in ``out``: ``nn-weights.fits`` (hpix, weight[ncols]; test pixels of every
    partition), ``linear-weights.fits`` and ``forest-weights.fits`` (same layout, baselines),
    ``metrics.npz`` (plain arrays, no pickle), ``models/fold<p>/chain<c>/`` (model.safetensors +
    config.json with the normaliser), ``config.json`` (the resolved config) and, when tuning
    tools ran, ``tuning.json``.

    Parameters
    ----------
    config : SysnetConfig
        Resolved configuration.
    out : path, optional
        Output folder (default ``output.output_path``).
    overwrite : bool
        Replace earlier outputs (checked before any work).
    command : str
        Command line recorded in the model directories.

    Returns
    -------
    Path
        The output folder.
    """
    import dataclasses
    import json
    import tarfile

    from surveynet.config import config_hash, to_dict
    from surveynet.errors import ConfigError
    from surveynet.io.fits import atomic_path
    from surveynet.runner import run_batch
    from surveynet.sysnet import baselines as bl
    from surveynet.sysnet.catalog import write_predictions
    from surveynet.sysnet.data import read_input
    from surveynet.sysnet.preprocess import chain_seeds, run_partitions
    from surveynet.sysnet.tune import apply_tuning, load_tuning, run_tuning

    outdir = Path(out or config.output.output_path)
    if not str(out or config.output.output_path):
        raise ConfigError("no output folder given (--out or output_path)")
    if (outdir / PREDICTIONS_FILE).exists() and not overwrite:
        raise FileExistsError(f"{outdir / PREDICTIONS_FILE} exists; pass --overwrite to replace")
    dc = config.data
    data = read_input(dc.input_path, dc.label_path, ordering=dc.ordering, nside=dc.nside, axes=None)
    if config.tune.use:
        config = apply_tuning(config, load_tuning(config.tune.use))
    tuning = None
    if any(
        (config.tune.find_lr, config.tune.find_structure, config.tune.find_l1, config.tune.do_rfe)
    ):
        tuning = run_tuning(data.select(config.data.axes), config, outdir)
        config = apply_tuning(config, tuning)
    data = data.select(config.data.axes)
    tc = config.train
    parts = run_partitions(data, tc)
    seeds = chain_seeds(tc.nchains, tc.seed)
    if tc.restore_model:
        _restore(config, data.features.shape[1])  # fail early on a mismatched checkpoint
    chash = config_hash(config)
    outdir.mkdir(parents=True, exist_ok=True)
    results = run_batch(
        fit_partition,
        [str(p) for p in range(len(parts))],
        workers=tc.workers,
        scheduler=tc.dask_scheduler,
        quiet=True,
        desc="partitions",
        unit="partition",
        config=to_dict(config),
        outdir=str(outdir),
        command=command,
    )
    failed = [f"partition {r.input}: {r.error}" for r in results if not r.ok]
    if failed:
        raise RuntimeError("; ".join(failed))
    res = [r.value for r in results]
    rows = [r["rows"] for r in res]
    preds = [r["pred"] for r in res]
    hist_tr = [r["train_loss"] for r in res]
    hist_va = [r["valid_loss"] for r in res]
    lrs = [r["lr"] for r in res]
    best_ep = [r["best_epoch"] for r in res]
    test_loss = [r["test_loss"] for r in res]
    base = [r["base"] for r in res]
    hp_rows = np.concatenate(rows)
    write_predictions(
        outdir / PREDICTIONS_FILE,
        data.hpix[hp_rows],
        np.concatenate(preds),
        nside=data.nside,
        nest=data.nest,
        method="nn",
        config_hash=chash,
        seed=tc.seed,
        overwrite=True,
    )
    metrics = {
        "base_losses": np.asarray(base),  # (npart, 3): train, valid, test
        "base_names": np.asarray(["train", "valid", "test"]),
        "train_loss": np.asarray(hist_tr),  # (npart, nchains, nepochs)
        "valid_loss": np.asarray(hist_va),
        "test_loss": np.asarray(test_loss),  # (npart, nchains)
        "lr": np.asarray(lrs),
        "best_epoch": np.asarray(best_ep),
        "seeds": np.asarray(seeds, dtype=np.int64),
        "partition_sizes": np.asarray([[len(q.train), len(q.valid), len(q.test)] for q in parts]),
    }
    for name in tc.baselines:
        if name == "linear":
            r, yh = bl.linear_kfold(data, parts, tc.normalization)
        else:
            r, yh = bl.forest_kfold(
                data,
                nfolds=tc.nfolds,
                n_estimators=tc.forest_trees,
                min_samples_leaf=tc.forest_min_leaf,
                seed=tc.seed,
            )
        write_predictions(
            outdir / f"{name}-weights.fits",
            data.hpix[r],
            yh,
            nside=data.nside,
            nest=data.nest,
            method=name,
            config_hash=chash,
            seed=tc.seed,
            overwrite=True,
        )
        yt, ft = torch.as_tensor(data.label[r]), torch.as_tensor(data.fracgood[r])
        metrics[f"{name}_test_loss"] = np.asarray(
            float(
                pixel_loss(torch.as_tensor(yh), yt, ft, tc.loss, tc.loss_weighting).sum() / len(r)
            )
        )
    with atomic_path(outdir / METRICS_FILE, overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **metrics)
    resolved = dataclasses.replace(
        config, output=dataclasses.replace(config.output, output_path=str(outdir))
    )
    with atomic_path(outdir / CONFIG_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(to_dict(resolved), indent=1) + "\n")
    if config.output.do_tar:
        with atomic_path(outdir / "models.tar.gz", overwrite=True) as tmp:
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(outdir / "models", arcname="models")
    if tuning is not None:
        log.info("tuning results applied: %s", tuning.get("chosen"))
    return outdir


def fit_partition(
    item: str, *, config: dict[str, object], outdir: str, command: str = ""
) -> dict[str, object]:
    """Train every chain of partition ``int(item)`` and save its model directories.

    A module-level function of plain arguments, so that :func:`surveynet.runner.run_batch` can
    run the partitions on Dask workers (``train.workers``, ``train.scheduler``).

    Parameters
    ----------
    item : str
        Partition index.
    config : dict
        The resolved config (tuning already applied).
    outdir : str
        Output folder (``models/fold<p>/chain<c>`` are written there).
    command : str
        Recorded in the model directories.

    Returns
    -------
    dict
        ``rows`` (test rows), ``pred`` (n_test, ncols), ``train_loss``, ``valid_loss``, ``lr``,
        ``best_epoch``, ``test_loss``, ``base``.
    """
    from surveynet.config import from_dict, to_dict
    from surveynet.io.model import arrays_sha256, save_model
    from surveynet.sysnet.data import read_input
    from surveynet.sysnet.preprocess import Normalizer, chain_seeds, run_partitions

    cfg = from_dict(SysnetConfig, config)
    tc, dc = cfg.train, cfg.data
    data = read_input(
        dc.input_path, dc.label_path, ordering=dc.ordering, nside=dc.nside, axes=dc.axes
    )
    parts = run_partitions(data, tc)
    p = int(item)
    part = parts[p]
    seeds = chain_seeds(tc.nchains, tc.seed)
    init = _restore(cfg, data.features.shape[1]) if tc.restore_model else None
    dhash = arrays_sha256([data.hpix, data.label, data.fracgood, data.features])
    norm = Normalizer.fit(data.features[part.train], tc.normalization)
    xs = norm.transform(data.features)
    y, f = data.label, data.fracgood
    sets = [(y[ix], f[ix]) for ix in (part.train, part.valid, part.test)]
    base = baseline_losses(y[part.train], sets, tc.loss, tc.loss_weighting)
    res = train_ensemble(
        xs[part.train],
        y[part.train],
        f[part.train],
        xs[part.valid],
        y[part.valid],
        f[part.valid],
        seeds,
        cfg,
        init=init,
    )
    pt = predict_ensemble(res.net, xs[part.test])
    yt = torch.as_tensor(y[part.test])
    ft = torch.as_tensor(f[part.test])
    tl = [
        float(
            pixel_loss(torch.as_tensor(pt[c]), yt, ft, tc.loss, tc.loss_weighting).sum()
            / max(len(part.test), 1)
        )
        for c in range(len(seeds))
    ]
    cols = [pt]
    for snap in res.snapshots:
        net = EnsembleNet(cfg.model.model, xs.shape[1], cfg.model.nn_structure, seeds)
        net.load_state_dict(snap["state"])  # type: ignore[arg-type]
        cols.append(predict_ensemble(net, xs[part.test]))
    log.info("partition %d: baseline test %.5f, NN test %s", p, base[2], np.round(tl, 5))
    pre = {
        **norm.to_json(),
        "feature_names": data.feature_names,
        "nside": data.nside,
        "ordering": "NESTED" if data.nest else "RING",
        "axes": None if dc.axes is None else list(dc.axes),
    }
    for c, seed in enumerate(seeds):
        save_model(
            Path(outdir) / "models" / f"fold{p}" / f"chain{c}",
            _tensor_dict(res.net.chain_state_dict(c)),
            pipeline="sysnet",
            architecture=f"sysnet_{cfg.model.model}",
            config={
                "model": cfg.model.model,
                "input_dim": int(xs.shape[1]),
                "nn_structure": list(cfg.model.nn_structure),
            },
            preprocessing=pre,
            label_names=["yhat"],
            training={
                "command": command,
                "seed": seed,
                "partition": p,
                "chain": c,
                "best_epoch": int(res.best_epoch[c]),
                "best_val_loss": float(res.best_valid[c]),
                "data_hash": dhash,
                "config": to_dict(cfg),
            },
            overwrite=True,
        )
    return {
        "rows": part.test,
        "pred": np.concatenate(cols, axis=0).T,
        "train_loss": res.train_loss,
        "valid_loss": res.valid_loss,
        "lr": res.lr,
        "best_epoch": res.best_epoch,
        "test_loss": tl,
        "base": base,
    }


def _restore(config: SysnetConfig, input_dim: int) -> list[dict[str, torch.Tensor]]:
    """Starting weights for every chain from ``train.restore_model``."""
    from surveynet.errors import ConfigError
    from surveynet.sysnet.convert import load_any_checkpoint, structure_from_state_dict

    sd = load_any_checkpoint(config.train.restore_model or "", config.model.model)
    family, k, struct = structure_from_state_dict(sd)
    want = "lin" if config.model.model in ("lin", "linp") else "dnn"
    if (
        k != input_dim
        or family != want
        or (family == "dnn" and tuple(struct) != tuple(config.model.nn_structure))
    ):
        raise ConfigError(
            f"train.restore_model {config.train.restore_model}: a {family} network with "
            f"{k} inputs and structure {struct}, but the run uses {config.model.model} with "
            f"{input_dim} features and structure {tuple(config.model.nn_structure)}"
        )
    return [{k: torch.as_tensor(v) for k, v in sd.items()}] * config.train.nchains
