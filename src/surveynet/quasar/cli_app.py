"""Registrations of the quasar application steps (prepare, train, predict, evaluate) and demo.

Nothing heavy is imported here: torch, astropy and the engine are imported inside the functions.

Commands::

    surveynet quasar prepare  (DATA... --truth TRUTH.fits | --simulate N --seed S) --out DATASET.npz
    surveynet quasar train    DATA... --out MODELDIR [--truth TRUTH.fits] [--config F] [--set k=v]
                              [--resume] [--seed S] [--device cpu|cuda|auto]
                              [--lr-schedule cosine --lr-decay-start E --lr-min LR]
    surveynet quasar predict  INPUT... --out CATALOG.fits [--model M] [--c-th 0.5 --n-th 1]
                              [--workers N --scheduler ADDR]
    surveynet quasar evaluate CATALOG.fits --truth TRUTH.fits --out DIR [--spectra FILE...]

``DATA`` of ``train`` is either prepared ``.npz`` datasets (``prepare``) or spectra files
(DESI coadd/spectra, cframe, BOSS spPlate) with ``--truth``; ``--cache`` keeps the prepared
dataset so that a rerun reads it instead.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path
from typing import Any

from surveynet.cli import add_config_args, add_runner_args, default_workers
from surveynet.demo import DemoContext, DemoSection, register_demo
from surveynet.registry import add_step, register_group

log = logging.getLogger(__name__)

register_group(
    "quasar", "QuasarNET quasar classifier and redshifts: convert, train, predict, evaluate"
)

DEFAULT_MODEL = "qn_mock_6layer"


def _resolve(args: argparse.Namespace) -> Any:
    from surveynet.config import apply_overrides, resolve_config
    from surveynet.quasar.config import QuasarConfig

    cfg = resolve_config(QuasarConfig, args.config, args.overrides)
    if getattr(args, "seed", None) is not None:
        cfg = apply_overrides(cfg, [f"train.seed={int(args.seed)}"])
    return cfg


def _is_npz(paths: list[str]) -> bool:
    kinds = {Path(p).suffix.lower() == ".npz" for p in paths}
    if len(kinds) > 1:
        raise ValueError("DATA mixes prepared .npz datasets and spectra files; give one kind")
    return kinds == {True}


# ------------------------------------------------------------------------------------- prepare
def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        nargs="*",
        metavar="DATA",
        help="spectra files (DESI coadd/spectra, cframe, spPlate)",
    )
    p.add_argument("--truth", metavar="TRUTH.fits", help="truth file of DATA (HDU TRUTH)")
    p.add_argument(
        "--simulate", type=int, metavar="N", help="simulate N mock spectra in memory instead"
    )
    p.add_argument("--seed", type=int, default=0, help="simulation seed (with --simulate)")
    p.add_argument("--chunk", type=int, default=2000, help="spectra per simulated chunk")
    p.add_argument(
        "--workers", type=int, default=0, help="processes for --simulate (0 = in process)"
    )
    p.add_argument("--out", required=True, metavar="DATASET.npz", help="prepared dataset to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_config_args(p)


def _prepare_run(args: argparse.Namespace) -> int:
    import numpy as np

    from surveynet.config import resolve_config
    from surveynet.quasar.config import QuasarConfig
    from surveynet.quasar.train import prepare_from_files, save_dataset, simulate_dataset

    cfg = resolve_config(QuasarConfig, args.config, args.overrides)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if args.simulate:
        if args.data:
            raise ValueError("give either DATA files or --simulate N, not both")
        data = simulate_dataset(
            args.simulate,
            args.seed,
            cfg.grid,
            chunk=args.chunk,
            workers=args.workers,
            quiet=args.quiet,
        )
    else:
        if not args.data or not args.truth:
            raise ValueError("prepare needs DATA files with --truth, or --simulate N")
        data = prepare_from_files(args.data, args.truth, cfg.grid)
    cmd = ["surveynet", "quasar", "prepare", *args.data]
    for flag, val in (
        ("--truth", args.truth),
        ("--simulate", args.simulate),
        ("--config", args.config),
    ):
        if val is not None:
            cmd += [flag, str(val)]
    if args.simulate:
        cmd += ["--seed", str(args.seed), "--chunk", str(args.chunk)]
    for o in args.overrides:
        cmd += ["--set", o]
    cmd += ["--out", str(out)]
    save_dataset(
        out, data, overwrite=args.overwrite, provenance=" ".join(shlex.quote(x) for x in cmd)
    )
    if not args.quiet:
        counts = np.bincount(data["CLASS"].astype(int), minlength=4)
        print(
            f"wrote {out}: {len(data['X'])} spectra (STAR {counts[0]}, GALAXY {counts[1]}, "
            f"QSO {counts[2]}, BAD {counts[3]})"
        )
    return 0


# --------------------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="prepared .npz datasets, or spectra files with --truth",
    )
    p.add_argument("--out", required=True, metavar="MODELDIR", help="model directory to write")
    p.add_argument("--truth", metavar="TRUTH.fits", help="truth file (when DATA are spectra files)")
    p.add_argument(
        "--cache",
        metavar="DATASET.npz",
        help="with spectra files: write the prepared dataset here (reused if it exists)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --workdir"
    )
    p.add_argument("--seed", type=int, help="training seed (overrides train.seed)")
    p.add_argument("--workdir", help="checkpoint/history folder (default MODELDIR.train)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or auto (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument(
        "--max-batches", type=int, default=0, help="batches per epoch (smoke runs; 0 = all)"
    )
    p.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="per-epoch learning-rate schedule (default constant)",
    )
    p.add_argument(
        "--lr-decay-start",
        type=int,
        default=0,
        help="cosine: epochs at constant lr before the decay (default 0)",
    )
    p.add_argument(
        "--lr-min", type=float, default=0.0, help="cosine: lr reached at the end (default 0)"
    )
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this QuasarNET model's weights (directory or bundled name; fine-tuning)",
    )
    p.add_argument("--name", help="model name (default: directory name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")
    add_config_args(p)


def _train_command(args: argparse.Namespace) -> str:
    parts = ["surveynet", "quasar", "train", *args.data, "--out", args.out]
    for flag, val in (
        ("--truth", args.truth),
        ("--cache", args.cache),
        ("--workdir", args.workdir),
        ("--config", args.config),
        ("--seed", args.seed),
        ("--device", args.device),
        ("--name", args.name),
        ("--init", args.init),
    ):
        if val is not None:
            parts += [flag, str(val)]
    for o in args.overrides:
        parts += ["--set", o]
    if args.max_batches:
        parts += ["--max-batches", str(args.max_batches)]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.lr_schedule != "constant":
        parts += ["--lr-schedule", args.lr_schedule, "--lr-decay-start", str(args.lr_decay_start)]
        parts += ["--lr-min", str(args.lr_min)]
    if args.resume:
        parts += ["--resume"]
    return " ".join(shlex.quote(x) for x in parts)


def _train_run(args: argparse.Namespace) -> int:
    from surveynet.quasar.train import load_dataset, prepare_from_files, save_dataset, train

    cfg = _resolve(args)
    if _is_npz(args.data):
        data = load_dataset(args.data)
    else:
        if args.cache and Path(args.cache).is_file():
            data = load_dataset([args.cache])
        else:
            if not args.truth:
                raise ValueError("spectra files as DATA need --truth TRUTH.fits")
            data = prepare_from_files(args.data, args.truth, cfg.grid)
            if args.cache:
                save_dataset(args.cache, data)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = train(
        cfg,
        data,
        args.out,
        workdir=args.workdir,
        resume=args.resume,
        quiet=args.quiet,
        max_batches=args.max_batches,
        device=args.device,
        command=_train_command(args),
        name=args.name,
        overwrite=args.overwrite,
        lr_schedule=args.lr_schedule,
        lr_decay_start=args.lr_decay_start,
        lr_min=args.lr_min,
        init=args.init,
    )
    if not args.quiet:
        import json

        hist = json.loads((out / "history.json").read_text())
        last = hist[-1] if hist else {}
        print(f"wrote {out} ({len(hist)} epochs; last {last})")
    return 0


# ------------------------------------------------------------------------------------- predict
def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="spectra files: DESI coadd/spectra, DESI cframe, BOSS spPlate",
    )
    p.add_argument("--out", required=True, metavar="CATALOG.fits", help="catalogue to write")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"bundled model name or directory (default {DEFAULT_MODEL})",
    )
    p.add_argument("--c-th", type=float, default=0.5, help="line-confidence threshold of IS_QSO_QN")
    p.add_argument("--n-th", type=int, default=1, help="lines above --c-th needed for IS_QSO_QN")
    p.add_argument(
        "--edge",
        choices=("extrapolate", "clamp"),
        default="extrapolate",
        help="redshift of edge boxes (QuasarNET extrapolates, QuasarNP clamps)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="spectra per forward pass")
    p.add_argument("--overwrite", action="store_true", help="replace an existing catalogue")
    add_runner_args(p)


def _predict_run(args: argparse.Namespace) -> int:
    from surveynet.quasar.predict import predict_files

    out, results = predict_files(
        args.inputs,
        args.out,
        model=args.model,
        c_th=args.c_th,
        n_th=args.n_th,
        edge=args.edge,
        batch_size=args.batch_size,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    bad = [r for r in results if not r.ok]
    if out is None:
        raise ValueError(
            f"all {len(results)} inputs failed (first: {bad[0].input}: {bad[0].error})"
        )
    if not args.quiet:
        print(f"wrote {out}: {len(results) - len(bad)} of {len(results)} files")
    for r in bad:
        print(f"failed: {r.input}: {r.error}")
    return 3 if bad else 0


# ------------------------------------------------------------------------------------ evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "catalog", metavar="CATALOG.fits", help="catalogue from `surveynet quasar predict`"
    )
    p.add_argument(
        "--truth", required=True, metavar="TRUTH.fits", help="mock truth file (HDU TRUTH)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for metrics.json and plots")
    p.add_argument("--n-th", type=int, default=1, help="lines above threshold needed for IS_QSO")
    p.add_argument(
        "--dv-max", type=float, default=6000.0, help="correct-redshift limit |dv| in km/s"
    )
    p.add_argument(
        "--spectra",
        nargs="*",
        default=None,
        metavar="FILE",
        help="input spectra files: a few are plotted with the detected lines",
    )
    p.add_argument(
        "--model", help="model of the catalogue, for the spectra plot (default: header MODEL)"
    )


def _evaluate_run(args: argparse.Namespace) -> int:
    from surveynet.quasar.evaluate import evaluate, format_metrics

    m = evaluate(
        args.catalog,
        args.truth,
        args.out,
        n_th=args.n_th,
        dv_max=args.dv_max,
        spectra=args.spectra,
        model=args.model,
    )
    if not args.quiet:
        for line in format_metrics(m):
            print(line)
        print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0


add_step(
    "quasar",
    "prepare",
    "spectra + truth (or a fresh mock) -> prepared training dataset .npz",
    _prepare_args,
    _prepare_run,
)
add_step(
    "quasar",
    "train",
    "train QuasarNET (torch) on prepared data -> model directory",
    _train_args,
    _train_run,
)
add_step(
    "quasar",
    "predict",
    "spectra files -> QuasarNET catalogue FITS (numpy engine)",
    _predict_args,
    _predict_run,
)
add_step(
    "quasar",
    "evaluate",
    "catalogue + truth -> purity/completeness, dv, confusion, plots",
    _evaluate_args,
    _evaluate_run,
)


@register_demo("quasar", order=10)
def quasar_demo(ctx: DemoContext) -> DemoSection:
    """Predict the demo mock with the bundled model and evaluate it against the truth."""
    from surveynet.quasar.evaluate import evaluate, format_metrics
    from surveynet.quasar.predict import predict_files

    out = ctx.out / "quasar"
    out.mkdir(parents=True, exist_ok=True)
    cat, results = predict_files(
        ctx.spectra, out / "qn_catalog.fits", model=DEFAULT_MODEL, quiet=ctx.quiet, overwrite=True
    )
    lines = [f"QuasarNET ({DEFAULT_MODEL}, numpy engine) on {len(ctx.spectra)} coadd files."]
    lines += [f"failed: {r.input}: {r.error}" for r in results if not r.ok]
    if cat is None:
        return DemoSection("QuasarNET", lines)
    m = evaluate(
        cat, ctx.truth, out / "evaluate", spectra=ctx.spectra[:1], n_examples=4, model=DEFAULT_MODEL
    )
    lines += format_metrics(m)
    images = [out / "evaluate" / name for name in m["plots"]]
    return DemoSection(
        "QuasarNET", lines, images=images, files=[cat, out / "evaluate" / "metrics.json"]
    )
