"""Thin ``surveynet quasar`` step functions: ``args -> QuasarConfig -> library call``.

Commands::

    surveynet quasar convert  WEIGHTS.h5 --out MODELDIR [--lines L,...] [--lines-bal L,...]
    surveynet quasar prepare  (DATA... --truth TRUTH.fits | --simulate N [--seed S --chunk C])
                              --out DATASET.npz
    surveynet quasar train    DATA... --out MODELDIR [--truth TRUTH.fits] [--cache DATASET.npz]
                              [--resume] [--workdir DIR] [--init MODEL] [--seed S]
                              [--device cpu|cuda|auto] [--threads N] [--max-batches N]
                              [--lr-schedule cosine --lr-decay-start E --lr-min LR]
    surveynet quasar predict  INPUT... --out CATALOG.fits [--model M] [--c-th 0.5 --n-th 1]
                              [--edge E] [--batch-size N] [--workers N --scheduler ADDR]
    surveynet quasar evaluate CATALOG.fits --truth TRUTH.fits --out DIR [--spectra FILE...]
                              [--n-th N] [--dv-max V] [--model M]
    surveynet quasar calibrate CATALOG.fits --truth TRUTH.fits --out MODELDIR [--model M]
                              [--method platt|temperature] [--n-th N] [--bins B] [--name NAME]
    surveynet quasar bal      SPECTRA... --qso-catalog QN.fits [--z-col Z_QN] --out BAL.fits
                              [--workers N --scheduler ADDR]

``prepare``, ``train``, ``predict`` and ``evaluate`` resolve one
:class:`surveynet.quasar.config.QuasarConfig` from ``--config FILE``, the shortcut flags (each
sets one key; the table is in :mod:`surveynet.quasar.config`) and ``--set section.key=value``
(applied last), and save it with their output: beside the dataset and the catalogue
(``NAME.config.json``), in the evaluation folder (``config.json``), in the model's
``config.json`` (``training.config``). ``DATA`` of ``train`` is either prepared ``.npz``
datasets or spectra files with ``--truth``; ``--cache`` keeps the prepared dataset so that a rerun
reads it instead. Outputs are never replaced without ``--overwrite``, checked before any work.

Nothing heavy is imported at module level: this module is imported by the package's
registrations.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surveynet.config import (
    add_config_args,
    add_config_flag,
    add_model_dir_args,
    add_predict_io_args,
    config_from_args,
)
from surveynet.runner import add_runner_args, default_workers

log = logging.getLogger(__name__)

#: Shortcut flags of each step: (option, config key, extra ``add_argument`` keywords).
FLAGS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "prepare": [
        ("--simulate", "data.simulate", {"metavar": "N", "help": "simulate N mock spectra"}),
        ("--seed", "data.seed", {"help": "simulation seed"}),
        ("--chunk", "data.chunk", {"help": "spectra per simulated chunk"}),
    ],
    "train": [
        ("--seed", "train.seed", {"help": "training seed"}),
        ("--device", "train.device", {"help": "torch device: cpu, cuda, cuda:N or auto"}),
        ("--threads", "train.threads", {"help": "torch CPU threads (0 = torch default)"}),
        ("--max-batches", "train.max_batches", {"help": "batches per epoch (smoke runs; 0 = all)"}),
        (
            "--lr-schedule",
            "train.lr_schedule",
            {"choices": ("constant", "cosine"), "help": "per-epoch learning-rate schedule"},
        ),
        (
            "--lr-decay-start",
            "train.lr_decay_start",
            {"help": "cosine: epochs at constant lr before the decay"},
        ),
        ("--lr-min", "train.lr_min", {"help": "cosine: lr reached at the end"}),
    ],
    "predict": [
        ("--model", "predict.model", {"help": "bundled model name or model directory"}),
        ("--c-th", "predict.c_th", {"help": "line-confidence threshold of IS_QSO_QN, IS_BAL_QN"}),
        ("--n-th", "predict.n_th", {"help": "lines above --c-th needed for IS_QSO_QN"}),
        (
            "--edge",
            "predict.edge",
            {
                "choices": ("extrapolate", "clamp"),
                "help": "redshift of edge boxes (QuasarNET extrapolates, QuasarNP clamps)",
            },
        ),
        ("--batch-size", "predict.batch_size", {"help": "spectra per forward pass"}),
    ],
    "bal": [],
    "calibrate": [
        (
            "--model",
            "predict.model",
            {
                "help": "model the catalogue was made with (bundled name "
                "or directory); its calibrated copy goes to --out"
            },
        ),
        (
            "--n-th",
            "predict.n_th",
            {"help": "score = N-th largest line confidence (IS_QSO_QN rule)"},
        ),
        (
            "--method",
            "calibrate.method",
            {
                "choices": ("platt", "temperature"),
                "help": "P_QSO = sigmoid(logit(s)/T + b): platt fits T and b, temperature T alone",
            },
        ),
        ("--bins", "calibrate.n_bins", {"help": "equal-width bins of the ECE/MCE figures"}),
    ],
    "evaluate": [
        ("--n-th", "predict.n_th", {"help": "lines above threshold needed for IS_QSO"}),
        ("--dv-max", "evaluate.dv_max", {"help": "correct-redshift limit |dv| in km/s"}),
        (
            "--model",
            "evaluate.model",
            {"help": "model of the catalogue, for the spectra plot (default: header MODEL)"},
        ),
        ("--bins", "calibrate.n_bins", {"help": "equal-width bins of the reliability diagram/ECE"}),
    ],
}


def _add_flags(parser: argparse.ArgumentParser, step: str) -> None:
    """Add ``--config``, ``--set`` and the shortcut flags of ``step`` to ``parser``."""
    from surveynet.quasar.config import QuasarConfig

    add_config_args(parser)
    for flag, key, kw in FLAGS[step]:
        kw = dict(kw)
        add_config_flag(parser, flag, key=key, config_cls=QuasarConfig, help=kw.pop("help"), **kw)


def _resolve(args: argparse.Namespace) -> Any:
    """Return the :class:`QuasarConfig` of a step's parsed arguments."""
    from surveynet.quasar.config import QuasarConfig

    return config_from_args(QuasarConfig, args)


def _command(
    step: str,
    args: argparse.Namespace,
    positional: Sequence[str],
    options: Sequence[tuple[str, Any]] = (),
    switches: Sequence[tuple[str, bool]] = (),
    *,
    flags: bool = True,
) -> str:
    """Return the command line of a step, for provenance (shortcut flags given, ``--set`` items).

    Parameters
    ----------
    step : str
        Step name.
    args : argparse.Namespace
        Parsed arguments.
    positional : sequence of str
        Positional arguments.
    options : sequence of (flag, value)
        Other options, recorded when the value is not None.
    switches : sequence of (flag, bool)
        Switches, recorded when True.
    flags : bool
        Record the shortcut flags given (False when ``options`` already holds their values).

    Returns
    -------
    str
        A shell-quoted command line.
    """
    parts = ["surveynet", "quasar", step, *map(str, positional)]
    for flag, value in options:
        if value is not None:
            parts += [flag, str(value)]
    if getattr(args, "config", None):
        parts += ["--config", str(args.config)]
    mapping = (getattr(args, "_config_flags", None) or {}) if flags else {}
    by_key = {key: flag for flag, key, _ in FLAGS[step]}
    for dest, key in mapping.items():
        value = getattr(args, dest, None)
        if value is not None:
            parts += [by_key[key], str(value)]
    for o in getattr(args, "overrides", None) or []:
        parts += ["--set", o]
    parts += [flag for flag, on in switches if on]
    return " ".join(shlex.quote(x) for x in parts)


def _check_out(out: str, overwrite: bool, what: str = "") -> Path:
    """Refuse an existing output unless ``overwrite`` (before any work)."""
    p = Path(out)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}{what} exists; pass --overwrite to replace it")
    return p


def _is_npz(paths: Sequence[str]) -> bool:
    """Whether the inputs are prepared ``.npz`` datasets (a mix of kinds raises)."""
    kinds = {Path(p).suffix.lower() == ".npz" for p in paths}
    if len(kinds) > 1:
        raise ValueError("DATA mixes prepared .npz datasets and spectra files; give one kind")
    return kinds == {True}


# ------------------------------------------------------------------------------------- convert
def convert_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar convert``."""
    parser.add_argument("weights", metavar="WEIGHTS.h5", help="Keras HDF5 QuasarNET file")
    parser.add_argument("--out", required=True, metavar="MODELDIR", help="model directory to write")
    parser.add_argument("--name", help="model name (default: directory name)")
    parser.add_argument(
        "--lines",
        help="comma-separated head lines "
        "(default LYA,CIV(1548),CIII(1909),MgII(2796),Hbeta,Halpha)",
    )
    parser.add_argument("--lines-bal", help="comma-separated BAL head lines (default CIV(1548))")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")


def convert_run(args: argparse.Namespace) -> int:
    """Run ``quasar convert``: original Keras QuasarNET ``.h5`` -> surveynet model directory."""
    from surveynet.io.model import load_model
    from surveynet.quasar.convert import convert_keras_quasarnet

    def split(s: str | None) -> tuple[str, ...] | None:
        return None if s is None else tuple(x.strip() for x in s.split(",") if x.strip())

    out = convert_keras_quasarnet(
        args.weights,
        args.out,
        lines=split(args.lines),
        lines_bal=split(args.lines_bal),
        name=args.name,
        overwrite=args.overwrite,
    )
    saved = load_model(out, pipeline="quasar")
    cfg = saved.config
    grid = saved.preprocessing["grid"]
    if not args.quiet:
        print(
            f"wrote {out}: {cfg['n_layers']} conv x {cfg['n_filters']} '{cfg['padding']}', "
            f"{cfg['n_lines'] + cfg['n_bal']} heads x {cfg['n_boxes']} boxes, offset rescale "
            f"{'on' if cfg['offset_rescale'] else 'off'}, grid {grid['kind']} {grid['n_bins']} bins"
        )
    return 0


# ------------------------------------------------------------------------------------- prepare
def prepare_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar prepare``."""
    parser.add_argument(
        "data",
        nargs="*",
        metavar="DATA",
        help="spectra files (DESI coadd/spectra, cframe, spPlate)",
    )
    parser.add_argument("--truth", metavar="TRUTH.fits", help="truth file of DATA (HDU TRUTH)")
    parser.add_argument(
        "--workers", type=int, default=0, help="processes for --simulate (0 = in process)"
    )
    parser.add_argument(
        "--out", required=True, metavar="DATASET.npz", help="prepared dataset to write"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_flags(parser, "prepare")


def prepare_run(args: argparse.Namespace) -> int:
    """Run ``quasar prepare``: spectra + truth (or a fresh mock) -> prepared dataset ``.npz``.

    The resolved config is written beside the dataset (``NAME.config.json``).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    int
        Exit status 0.
    """
    import numpy as np

    from surveynet.config import config_sidecar, save_config
    from surveynet.quasar.data import prepare_from_files, save_dataset, simulate_dataset

    cfg = _resolve(args)
    out = _check_out(args.out, args.overwrite)
    if cfg.data.simulate:
        if args.data:
            raise ValueError("give either DATA files or --simulate N, not both")
        data = simulate_dataset(
            cfg.data.simulate,
            cfg.data.seed,
            cfg.grid,
            chunk=cfg.data.chunk,
            workers=args.workers,
            quiet=args.quiet,
        )
    else:
        if not args.data or not args.truth:
            raise ValueError("prepare needs DATA files with --truth, or --simulate N")
        data = prepare_from_files(args.data, args.truth, cfg.grid)
    options: list[tuple[str, Any]] = [("--truth", args.truth)]
    if cfg.data.simulate:  # the effective simulation settings, whatever set them
        options += [
            ("--simulate", cfg.data.simulate),
            ("--seed", cfg.data.seed),
            ("--chunk", cfg.data.chunk),
        ]
    cmd = _command("prepare", args, args.data, options, flags=not cfg.data.simulate)
    cmd += " --out " + shlex.quote(str(out))
    save_dataset(out, data, overwrite=args.overwrite, provenance=cmd)
    save_config(cfg, config_sidecar(out))
    if not args.quiet:
        counts = np.bincount(data["CLASS"].astype(int), minlength=4)
        print(
            f"wrote {out}: {len(data['X'])} spectra (STAR {counts[0]}, GALAXY {counts[1]}, "
            f"QSO {counts[2]}, BAD {counts[3]})"
        )
    return 0


# --------------------------------------------------------------------------------------- train
def train_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar train``."""
    add_model_dir_args(parser, "prepared .npz datasets, or spectra files with --truth")
    parser.add_argument(
        "--truth", metavar="TRUTH.fits", help="truth file (when DATA are spectra files)"
    )
    parser.add_argument(
        "--cache",
        metavar="DATASET.npz",
        help="with spectra files: write the prepared dataset here (reused if it exists)",
    )
    parser.add_argument("--workdir", help="checkpoint/history folder (default MODELDIR.work)")
    parser.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this QuasarNET model's weights (directory or bundled name; fine-tuning)",
    )
    parser.add_argument("--name", help="model name (default: directory name)")
    _add_flags(parser, "train")


def train_run(args: argparse.Namespace) -> int:
    """Run ``quasar train``: prepared data (or spectra + truth) -> model directory."""
    import json

    from surveynet.quasar.data import load_dataset, prepare_from_files, save_dataset
    from surveynet.quasar.train import train

    cfg = _resolve(args)
    if not args.resume:
        _check_out(args.out, args.overwrite)
    if _is_npz(args.data):
        data = load_dataset(args.data)
    elif args.cache and Path(args.cache).is_file():
        data = load_dataset([args.cache])
    else:
        if not args.truth:
            raise ValueError("spectra files as DATA need --truth TRUTH.fits")
        data = prepare_from_files(args.data, args.truth, cfg.grid)
        if args.cache:
            save_dataset(args.cache, data)
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    command = _command(
        "train",
        args,
        [*args.data, "--out", args.out],
        [
            ("--truth", args.truth),
            ("--cache", args.cache),
            ("--workdir", args.workdir),
            ("--name", args.name),
            ("--init", args.init),
        ],
        [("--resume", args.resume)],
    )
    out = train(
        cfg,
        data,
        args.out,
        workdir=args.workdir,
        resume=args.resume,
        quiet=args.quiet,
        command=command,
        name=args.name,
        overwrite=args.overwrite,
        init=args.init,
    )
    if not args.quiet:
        hist = json.loads((out / "history.json").read_text())
        last = hist[-1] if hist else {}
        print(f"wrote {out} ({len(hist)} epochs; last {last})")
    return 0


# ------------------------------------------------------------------------------------- predict
def predict_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar predict``."""
    add_predict_io_args(
        parser,
        "spectra files: DESI coadd/spectra, DESI cframe, BOSS spPlate, SDSS spec-lite "
        "(spec-PLATE-MJD-FIBER.fits)",
    )
    add_runner_args(parser)
    _add_flags(parser, "predict")


def predict_run(args: argparse.Namespace) -> int:
    """Run ``quasar predict``: spectra files -> catalogue FITS (numpy engine)."""
    from surveynet.quasar.predict import predict_files

    cfg = _resolve(args)
    res = predict_files(
        args.inputs,
        args.out,
        config=cfg,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        n = len(args.inputs)
        print(f"wrote {res.path}: {n - len(res.failures)} of {n} files")
    for r in res.failures:
        print(f"failed: {r.input}: {r.error}")
    return res.exit_code


# ------------------------------------------------------------------------------------ evaluate
def evaluate_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar evaluate``."""
    parser.add_argument(
        "catalog", metavar="CATALOG.fits", help="catalogue from `surveynet quasar predict`"
    )
    parser.add_argument(
        "--truth", required=True, metavar="TRUTH.fits", help="mock truth file (HDU TRUTH)"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for metrics.json and plots"
    )
    parser.add_argument(
        "--spectra",
        nargs="*",
        default=None,
        metavar="FILE",
        help="input spectra files: a few are plotted with the detected lines",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing DIR/metrics.json"
    )
    _add_flags(parser, "evaluate")


def evaluate_run(args: argparse.Namespace) -> int:
    """Run ``quasar evaluate``: catalogue + truth -> metrics.json, metrics.md, plots."""
    from surveynet.quasar.evaluate import evaluate, format_metrics

    cfg = _resolve(args)
    m = evaluate(
        args.catalog,
        args.truth,
        args.out,
        config=cfg,
        spectra=args.spectra,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        for line in format_metrics(m):
            print(line)
        print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0


# ------------------------------------------------------------------------------------------ bal
def bal_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar bal``."""
    add_predict_io_args(
        parser,
        "spectra files: DESI coadd/spectra, BOSS spPlate, SDSS spec-lite "
        "(spec-PLATE-MJD-FIBER.fits)",
    )
    parser.add_argument(
        "--qso-catalog",
        required=True,
        metavar="QN.fits",
        help="redshift catalogue: `surveynet quasar predict` output (TARGETID, Z_QN, IS_QSO_QN), "
        "a mock truth file or a zbest/redrock file; non-quasar rows are left out",
    )
    parser.add_argument(
        "--z-col",
        default=None,
        metavar="COL",
        help="redshift column of --qso-catalog (default Z_QN if present, else Z)",
    )
    add_runner_args(parser)
    _add_flags(parser, "bal")


def bal_run(args: argparse.Namespace) -> int:
    """Run ``quasar bal``: spectra + redshifts -> BAL catalogue FITS (HDU BALCAT)."""
    from surveynet.quasar.bal import bal_files

    cfg = _resolve(args)
    res = bal_files(
        args.inputs,
        args.out,
        qso_catalog=args.qso_catalog,
        z_col=args.z_col,
        config=cfg,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        t = res.merged
        n_bi = int((t["BI_CIV"] > 0).sum()) if len(t) else 0
        n_ai = int((t["AI_CIV"] > 0).sum()) if len(t) else 0
        print(f"wrote {res.path}: {len(t)} quasars, {n_bi} with BI_CIV > 0, {n_ai} with AI_CIV > 0")
    for r in res.failures:
        print(f"failed: {r.input}: {r.error}")
    return res.exit_code


# ------------------------------------------------------------------------------------ calibrate
def calibrate_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``quasar calibrate``."""
    parser.add_argument(
        "catalog",
        metavar="CATALOG.fits",
        help="`surveynet quasar predict` catalogue of held-out spectra (made with --model)",
    )
    parser.add_argument(
        "--truth", required=True, metavar="TRUTH.fits", help="truth file of those spectra"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="MODELDIR",
        help="calibrated model directory to write (weights copied, calibration in config.json)",
    )
    parser.add_argument("--name", help="model name (default: that of --model)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")
    _add_flags(parser, "calibrate")


def calibrate_run(args: argparse.Namespace) -> int:
    """Run ``quasar calibrate``: held-out catalogue + truth -> calibrated model directory."""
    from surveynet.quasar.evaluate import calibrate_catalog

    cfg = _resolve(args)
    command = _command(
        "calibrate",
        args,
        [args.catalog],
        [("--truth", args.truth), ("--out", args.out), ("--name", args.name)],
        [("--overwrite", args.overwrite)],
    )
    out, cal = calibrate_catalog(
        args.catalog,
        args.truth,
        args.out,
        config=cfg,
        name=args.name,
        overwrite=args.overwrite,
        command=command,
    )
    if not args.quiet:
        f = cal.fit
        print(
            f"wrote {out}: {cal.method} T = {cal.temperature:.4g}, b = {cal.bias:.4g} on "
            f"{f['n']} spectra ({f['n_positive']} quasars); on this fit set ECE "
            f"{100 * f['ece_before']:.2f} % -> {100 * f['ece_after']:.2f} %, log loss "
            f"{f['log_loss_before']:.4f} -> {f['log_loss_after']:.4f}"
        )
    return 0
