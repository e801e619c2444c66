"""Registrations of the dla application steps (train, predict, evaluate) and the demo stage.

Nothing heavy is imported at module level: every step imports its library code when it runs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from typing import Any

from surveynet.demo import register_demo
from surveynet.registry import add_step, register_group

log = logging.getLogger(__name__)

register_group("dla", "damped Lyman-alpha absorber finder (window CNN and fully-convolutional)")


# ----------------------------------------------------------------------------- train


def _train_args(p: argparse.ArgumentParser) -> None:
    from surveynet.cli import add_config_args

    p.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="mock/DESI coadd files (with --truth) or one prepared .npz window dataset",
    )
    p.add_argument(
        "--truth",
        action="append",
        metavar="TRUTH.fits",
        help="truth file (TRUTH z_qso + DLA_META absorbers) of the coadd files; repeat for "
        "coadds of several mocks",
    )
    p.add_argument("--out", required=True, metavar="MODELDIR", help="model directory to write")
    add_config_args(p)
    p.add_argument(
        "--resume", action="store_true", help="continue from MODELDIR.work/checkpoint.safetensors"
    )
    p.add_argument("--seed", type=int, help="seed (overrides train.seed)")
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this model's weights (directory or bundled name; same architecture)",
    )
    p.add_argument(
        "--max-sightlines", type=int, default=0, help="use at most this many sightlines (0 = all)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")


def _train_command(args: argparse.Namespace) -> str:
    """The reproducing command line, rebuilt from the parsed arguments."""
    parts = ["surveynet", "dla", "train", *map(str, args.data)]
    for t in args.truth or []:
        parts += ["--truth", str(t)]
    parts += ["--out", str(args.out)]
    if args.config:
        parts += ["--config", str(args.config)]
    for o in args.overrides:
        parts += ["--set", o]
    if args.seed is not None:
        parts += ["--seed", str(args.seed)]
    if args.max_sightlines:
        parts += ["--max-sightlines", str(args.max_sightlines)]
    if args.init:
        parts += ["--init", str(args.init)]
    return " ".join(shlex.quote(p) for p in parts)


def _train_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from surveynet.config import apply_overrides, resolve_config
    from surveynet.dla.model_config import DLATrainConfig
    from surveynet.dla.train import read_training_sightlines, train_model, train_window_dataset
    from surveynet.errors import InputError

    cfg = resolve_config(DLATrainConfig, args.config, list(args.overrides))
    if args.seed is not None:
        cfg = apply_overrides(cfg, [f"train.seed={args.seed}"])
    out = Path(args.out)
    if out.exists() and not args.overwrite and not args.resume:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    command = _train_command(args)
    if cfg.model.architecture == "dla_vetter":
        from surveynet.dla.vet import train_vetter

        path = train_vetter(
            cfg, args.data, args.truth or [], out, quiet=args.quiet, command=command
        )
    elif len(args.data) == 1 and str(args.data[0]).endswith(".npz"):
        path = train_window_dataset(
            cfg,
            args.data[0],
            out,
            resume=args.resume,
            quiet=args.quiet,
            command=command,
            init=args.init,
        )
    else:
        if args.truth is None:
            raise InputError("coadd inputs need --truth (z_qso and DLA_META absorbers)")
        sls = read_training_sightlines(
            args.data, args.truth, cfg.data, max_sightlines=args.max_sightlines
        )
        path = train_model(
            cfg, sls, out, resume=args.resume, quiet=args.quiet, command=command, init=args.init
        )
    print(f"model written to {path}")
    return 0


# ----------------------------------------------------------------------------- predict


def _predict_args(p: argparse.ArgumentParser) -> None:
    from surveynet.cli import add_config_args, add_runner_args

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DESI spectra/coadd files")
    p.add_argument("--out", required=True, metavar="CATALOG.fits", help="catalogue to write")
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="M",
        help="model directory or bundled name; repeat for S/N-routed models; A+B averages the "
        "per-pixel outputs of models A and B (an ensemble, routed by A's S/N range) "
        "(default: bundled dla_fcn + dla_fcn_lowsnr)",
    )
    p.add_argument(
        "--refiner",
        default=None,
        metavar="M",
        help="second-stage localisers moving every vote peak, applied in turn (comma-separated "
        "model directories or bundled names; default: bundled dla_refiner,dla_refiner_wide; "
        "'none' turns it off; rounds: --set refine_iterations=N; averaging the last round over "
        "crops shifted by -K..K pixels: --set refine_shifts=K)",
    )
    p.add_argument(
        "--vetter",
        default=None,
        metavar="M",
        help="absorber vetter: DLA_CONFIDENCE becomes its probability that the absorber is real "
        "and absorbers below its threshold are dropped (model directory or bundled name; "
        "default: bundled dla_vetter; 'none' keeps the vote confidence and every absorber; "
        "threshold: --set vet_threshold=P)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--qso-catalog", metavar="QN.fits", help="quasar catalogue (TARGETID, Z_QN, IS_QSO_QN)"
    )
    src.add_argument("--zbest", metavar="FILE", help="zbest/redrock file (TARGETID, Z, SPECTYPE)")
    src.add_argument(
        "--truth", metavar="FILE", help="mock truth file (TRUTH: TARGETID, Z, OBJTYPE)"
    )
    p.add_argument(
        "--skip-bal",
        action="store_true",
        help="leave out quasars the redshift catalogue flags as BAL (IS_BAL_QN, or IS_BAL of a "
        "mock truth), as the DESI DLA catalogues do: BAL troughs mimic DLAs",
    )
    add_config_args(p)
    add_runner_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing catalogue")


def _predict_run(args: argparse.Namespace) -> int:
    from surveynet.cli import default_workers
    from surveynet.config import resolve_config
    from surveynet.dla.config import CatalogConfig
    from surveynet.dla.predict import predict_files

    ccfg = resolve_config(CatalogConfig, args.config, list(args.overrides))
    zsrc = args.qso_catalog or args.zbest or args.truth
    path, n_bad, cat = predict_files(
        args.inputs,
        args.out,
        qso_catalog=zsrc,
        models=args.model,
        catalog=ccfg,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
        overwrite=args.overwrite,
        skip_bal=args.skip_bal,
        refiner=args.refiner,
        vetter=args.vetter,
    )
    n_dla = int((cat.dlas["ABSORBER_TYPE"] == "DLA").sum()) if len(cat.dlas) else 0
    print(
        f"{path}: {len(cat.dlas)} absorbers ({n_dla} DLA) in {len(cat.qsos)} sightlines"
        + (f"; {n_bad} input file(s) failed" if n_bad else "")
    )
    return 1 if n_bad else 0


# ----------------------------------------------------------------------------- evaluate


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    from surveynet.cli import add_config_args

    p.add_argument("catalog", metavar="CATALOG.fits", help="catalogue from `surveynet dla predict`")
    p.add_argument("--truth", required=True, metavar="TRUTH.fits", help="truth file (DLA_META)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for metrics.json and plots")
    add_config_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing metrics.json")


def _evaluate_run(args: argparse.Namespace) -> int:
    from surveynet.config import resolve_config
    from surveynet.dla.config import MatchConfig
    from surveynet.dla.evaluate import evaluate

    cfg = resolve_config(MatchConfig, args.config, list(args.overrides))
    m = evaluate(args.catalog, args.truth, args.out, cfg, overwrite=args.overwrite)

    def fmt(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    print(
        f"{args.out}/metrics.json: completeness {fmt(m['completeness'])}, "
        f"purity {fmt(m['purity'])} "
        f"(TP {m['tp']}, FN {m['fn']}, FP {m['fp']})"
    )
    return 0


add_step(
    "dla",
    "train",
    "train the window CNN, the fully-convolutional finder, a refiner or the absorber vetter",
    _train_args,
    _train_run,
)
add_step(
    "dla",
    "predict",
    "find DLAs in spectra files (numpy engine, Dask runner) -> catalogue",
    _predict_args,
    _predict_run,
)
add_step(
    "dla",
    "evaluate",
    "score a DLA catalogue against the truth -> metrics.json + plots",
    _evaluate_args,
    _evaluate_run,
)


# ----------------------------------------------------------------------------- demo


def _demo(ctx: Any) -> Any:
    """``surveynet demo`` stage (see :mod:`surveynet.dla.demo`)."""
    from surveynet.dla.demo import run_demo

    return run_demo(ctx)


register_demo("dla", order=20)(_demo)
