"""Thin step functions of ``surveynet transient ...``: args -> config -> library call.

Each step resolves the one :class:`~surveynet.transient.config.TransientConfig` from
``--config FILE``, the shortcut flags (each sets one config key) and ``--set section.key=value``
(applied last), calls one library function, saves the resolved config beside its output and
prints a one-line summary. Exit codes: 0 success; 1 bad input or configuration (nothing
written); 3 (``detect``, ``predict``) some inputs failed (listed on stderr / in the FAILED HDU).
Outputs are never replaced without ``--overwrite``.

============  =========================================================================
step          library call
============  =========================================================================
simulate      :func:`surveynet.sim.images.simulate_pair` + :func:`write_pair` (on real frames
              with ``--science-frame``/``--reference-frame``)
inject        :func:`surveynet.transient.inject.inject_files`
detect        :func:`surveynet.transient.detect.detect_files`
checksim      :func:`surveynet.transient.evaluate.checksim`
cutouts       :func:`surveynet.transient.cutouts.make_cutouts`
convert       :func:`surveynet.transient.data.convert_cutouts`
train         :func:`surveynet.transient.train.train`
predict       :func:`surveynet.transient.predict.predict_files`
checkinfer    :func:`surveynet.transient.evaluate.checkinfer`
convert-keras :func:`surveynet.transient.convert.convert_braai`
============  =========================================================================
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from surveynet.config import (
    add_config_args,
    add_config_flag,
    config_from_args,
    config_hash,
    save_config,
)
from surveynet.transient.config import TransientConfig

__all__ = [
    "checkinfer_args",
    "checkinfer_run",
    "checksim_args",
    "checksim_run",
    "convert_args",
    "convert_keras_args",
    "convert_keras_run",
    "convert_run",
    "cutouts_args",
    "cutouts_run",
    "detect_args",
    "detect_run",
    "inject_args",
    "inject_run",
    "predict_args",
    "predict_run",
    "simulate_args",
    "simulate_run",
    "train_args",
    "train_run",
]

C = TransientConfig


def _resolve(args: argparse.Namespace) -> TransientConfig:
    """The resolved config of a step (defaults, --config, flags, --set)."""
    return config_from_args(C, args)


def _common(p: argparse.ArgumentParser, out_help: str) -> None:
    """``--out``, ``--overwrite``, ``--config``, ``--set``."""
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_config_args(p)


def _command(args: argparse.Namespace) -> str:
    """The reproducing ``train`` command, rebuilt from the parsed arguments.

    Shortcut flags are written as the ``--set`` items they stand for.
    """
    from surveynet.config import flag_overrides

    parts = ["surveynet", "transient", "train", str(args.cube), "--out", str(args.out)]
    if args.config:
        parts += ["--config", str(args.config)]
    for item in [*flag_overrides(args), *args.overrides]:
        parts += ["--set", item]
    return " ".join(shlex.quote(p) for p in parts)


# ----------------------------------------------------------------------------- simulate
def simulate_args(p: argparse.ArgumentParser) -> None:
    """Options of ``simulate``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    _common(p, "output folder (pairNNN_sci/ref/truth.fits)")
    add_config_flag(p, "--n-images", key="sim.n_images", config_cls=C, help="pairs")
    add_config_flag(p, "--seed", key="sim.seed", config_cls=C, help="random seed")
    add_config_flag(p, "--nx", key="sim.nx", config_cls=C, help="frame width (px)")
    add_config_flag(p, "--ny", key="sim.ny", config_cls=C, help="frame height (px)")
    p.add_argument(
        "--science-frame",
        metavar="FITS",
        help="real science frame to inject the simulated sky onto (with --reference-frame; "
        "its shape replaces --nx/--ny; frames without WCS must be pixel-aligned)",
    )
    p.add_argument(
        "--reference-frame", metavar="FITS", help="real reference frame (with --science-frame)"
    )


def simulate_run(args: argparse.Namespace) -> int:
    """Run ``simulate``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    import numpy as np

    from surveynet.io.fits import provenance_header
    from surveynet.sim.images import load_base_frames, simulate_pair, write_pair

    cfg = _resolve(args)
    sci_f, ref_f = getattr(args, "science_frame", None), getattr(args, "reference_frame", None)
    if (sci_f is None) != (ref_f is None):
        raise ValueError("--science-frame and --reference-frame go together")
    base = load_base_frames(sci_f, ref_f) if sci_f is not None and ref_f is not None else None
    out = Path(args.out)
    names = [f"pair{i:03d}" for i in range(cfg.sim.n_images)]
    if not args.overwrite:
        for n in names:
            for suf in ("_sci", "_ref", "_truth"):
                if (out / f"{n}{suf}.fits").exists():
                    raise FileExistsError(f"{out / (n + suf)}.fits exists; pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance_header(pipeline="transient", seed=cfg.sim.seed, config_hash=config_hash(cfg))
    for i, n in enumerate(names):
        pair = simulate_pair(cfg.sim, np.random.default_rng([cfg.sim.seed, i]), base)
        write_pair(pair, out, n, provenance=prov, overwrite=args.overwrite)
    save_config(cfg, out / "simulate.config.json")
    print(f"{len(names)} pairs written to {out}")
    return 0


# ----------------------------------------------------------------------------- inject
def inject_args(p: argparse.ArgumentParser) -> None:
    """Options of ``inject``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("images", nargs="+", metavar="IMAGE", help="FITS images")
    _common(p, "output folder (injected images + simulated_objects.ecsv)")
    add_config_flag(p, "--n", key="inject.n", config_cls=C, help="sources per image")
    p.add_argument(
        "--mag-range",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="magnitude range (sets inject.mag_min, inject.mag_max)",
    )
    add_config_flag(p, "--zp", key="inject.zp", config_cls=C, help="zero point (0 = MAGZP)")
    add_config_flag(p, "--seed", key="inject.seed", config_cls=C, help="random seed")


def inject_run(args: argparse.Namespace) -> int:
    """Run ``inject``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.transient.inject import inject_files

    if args.mag_range:
        args.overrides = [
            f"inject.mag_min={args.mag_range[0]}",
            f"inject.mag_max={args.mag_range[1]}",
            *args.overrides,
        ]
    cfg = _resolve(args)
    path = inject_files(args.images, args.out, cfg.inject, overwrite=args.overwrite)
    save_config(cfg, Path(args.out) / "inject.config.json")
    print(f"{cfg.inject.n} sources injected into {len(args.images)} images; positions {path}")
    return 0


# ----------------------------------------------------------------------------- detect
def detect_args(p: argparse.ArgumentParser) -> None:
    """Options of ``detect``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("science", nargs="+", metavar="SCIENCE", help="science frames")
    p.add_argument(
        "--reference",
        nargs="+",
        required=True,
        metavar="REF",
        help="one reference for all, or one per science frame",
    )
    _common(p, "output folder (<stem>_diff.fits, <stem>_cands.fits)")
    add_config_flag(
        p, "--threshold", key="detect.threshold", config_cls=C, help="detection threshold (sigma)"
    )
    from surveynet.runner import add_runner_args

    add_runner_args(p)
    add_config_flag(
        p,
        "--register",
        key="detect.register",
        config_cls=C,
        choices=["wcs", "none"],
        help="registration",
    )


def detect_run(args: argparse.Namespace) -> int:
    """Run ``detect``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0, 3 when some frames failed, 1 when all failed.
    """
    from surveynet.errors import InputError
    from surveynet.runner import default_workers
    from surveynet.transient.detect import detect_files

    cfg = _resolve(args)
    written, failed = detect_files(
        args.science,
        args.reference,
        args.out,
        cfg.detect,
        cutout_size=cfg.cutouts.size,
        overwrite=args.overwrite,
        config_hash=config_hash(cfg),
        workers=default_workers(args, len(args.science)),
        scheduler=args.scheduler,
        quiet=args.quiet,
    )
    if not written:
        raise InputError(f"all {len(failed)} science frames failed (first: {failed[0][1]})")
    save_config(cfg, Path(args.out) / "detect.config.json")
    for s, why in failed:
        print(f"FAILED {s}: {why}", file=sys.stderr)
    print(f"{len(written)} frames subtracted, candidates in {args.out}")
    return 3 if failed else 0


# ----------------------------------------------------------------------------- cutouts
def cutouts_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cutouts``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("detect_dir", metavar="DIR", help="detect output folder")
    _common(p, "output folder (cutouts.fits)")
    p.add_argument(
        "--training",
        action="store_true",
        help="label the candidates through the truth / positions files",
    )
    add_config_flag(p, "--size", key="cutouts.size", config_cls=C, help="cutout side (px)")
    add_config_flag(p, "--radius", key="cutouts.radius", config_cls=C, help="match radius (px)")


def cutouts_run(args: argparse.Namespace) -> int:
    """Run ``cutouts``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.transient.cutouts import make_cutouts

    cfg = _resolve(args)
    path = make_cutouts(
        args.detect_dir, args.out, cfg.cutouts, training=args.training, overwrite=args.overwrite
    )
    save_config(cfg, Path(args.out) / "cutouts.config.json")
    print(f"cutouts written to {path}")
    return 0


# ----------------------------------------------------------------------------- checksim
def checksim_args(p: argparse.ArgumentParser) -> None:
    """Options of ``checksim``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument(
        "dir",
        metavar="DIR",
        help="labelled cutouts (cutouts.fits or its folder), or a detect folder",
    )
    _common(p, "report folder")
    add_config_flag(p, "--radius", key="evaluate.radius", config_cls=C, help="match radius (px)")


def checksim_run(args: argparse.Namespace) -> int:
    """Run ``checksim``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from dataclasses import replace

    from surveynet.transient.cutouts import CUTOUT_FILE, make_cutouts
    from surveynet.transient.evaluate import checksim

    cfg = _resolve(args)
    src = Path(args.dir)
    out = Path(args.out)
    if src.is_dir() and not (src / CUTOUT_FILE).exists() and any(src.glob("*_cands.fits")):
        cut = replace(cfg.cutouts, radius=cfg.evaluate.radius)
        src = make_cutouts(src, out, cut, training=True, overwrite=args.overwrite)
    res = checksim(src, out, cfg.evaluate)
    save_config(cfg, out / "checksim.config.json")
    print(f"{res['n_detected']}/{res['n_real_sources']} real sources detected; report in {out}")
    return 0


# ----------------------------------------------------------------------------- convert
def convert_args(p: argparse.ArgumentParser) -> None:
    """Options of ``convert``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument(
        "cutouts",
        nargs="+",
        metavar="CUTOUTDIR",
        help="cutouts.fits or its folder; several are merged in the order given",
    )
    _common(p, "datacube CUBE.npz")
    p.add_argument(
        "--channels",
        choices=["triplet", "diff"],
        default="triplet",
        help="keep the 3 channels or only the difference (gmadet's cube)",
    )
    add_config_flag(
        p,
        "--frac-true",
        key="data.frac_true",
        config_cls=C,
        help="fraction of true cutouts (0 = keep all)",
    )


def convert_run(args: argparse.Namespace) -> int:
    """Run ``convert``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.config import config_sidecar
    from surveynet.transient.data import convert_cutouts

    cfg = _resolve(args)
    path = convert_cutouts(
        args.cutouts, args.out, cfg.data, channels=args.channels, overwrite=args.overwrite
    )
    save_config(cfg, config_sidecar(path))
    print(f"datacube written to {path}")
    return 0


# ----------------------------------------------------------------------------- train
def train_args(p: argparse.ArgumentParser) -> None:
    """Options of ``train``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("cube", metavar="CUBE.npz", help="datacube")
    _common(p, "model directory")
    p.add_argument("--resume", action="store_true", help="continue from MODELDIR.work")
    add_config_flag(
        p,
        "--architecture",
        key="model.architecture",
        config_cls=C,
        choices=["rb_cnn", "gmadet_cnn", "braai_vgg6"],
        help="architecture",
    )
    add_config_flag(
        p,
        "--channels",
        key="model.channels",
        config_cls=C,
        choices=["diff", "triplet"],
        help="network input",
    )
    add_config_flag(
        p,
        "--norm",
        key="model.norm",
        config_cls=C,
        choices=["zscore", "l2", "rows", "none"],
        help="per-channel normalisation",
    )
    add_config_flag(p, "--epochs", key="train.epochs", config_cls=C, help="epochs")
    add_config_flag(p, "--seed", key="train.seed", config_cls=C, help="random seed")


def train_run(args: argparse.Namespace) -> int:
    """Run ``train``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.transient.train import train

    cfg = _resolve(args)
    path = train(
        cfg,
        args.cube,
        args.out,
        overwrite=args.overwrite,
        resume=args.resume,
        quiet=args.quiet,
        command=_command(args),
    )
    print(f"model written to {path}")
    return 0


# ----------------------------------------------------------------------------- predict
def predict_args(p: argparse.ArgumentParser) -> None:
    """Options of ``predict``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    from surveynet.runner import add_runner_args

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="cutouts.fits/folders or CUBE.npz")
    _common(p, "INFER.fits (infer_results.dat is written beside it)")
    add_config_flag(
        p, "--model", key="predict.model", config_cls=C, help="model directory or bundled name"
    )
    add_config_flag(
        p, "--threshold", key="predict.threshold", config_cls=C, help="REAL threshold on P(real)"
    )
    add_runner_args(p)


def predict_run(args: argparse.Namespace) -> int:
    """Run ``predict``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0, or 3 when some inputs failed.
    """
    from surveynet.config import config_sidecar
    from surveynet.runner import default_workers
    from surveynet.transient.predict import predict_files

    cfg = _resolve(args)
    res = predict_files(
        args.inputs,
        args.out,
        model=cfg.predict.model,
        threshold=cfg.predict.threshold,
        batch_size=cfg.predict.batch_size,
        overwrite=args.overwrite,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
    )
    save_config(cfg, config_sidecar(res.path))
    n = len(res.merged)
    nreal = int(res.merged["REAL"].sum()) if n else 0
    print(f"{n} candidates scored, {nreal} real at P >= {cfg.predict.threshold}: {res.path}")
    return int(res.exit_code)


# ----------------------------------------------------------------------------- checkinfer
def checkinfer_args(p: argparse.ArgumentParser) -> None:
    """Options of ``checkinfer``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("infer", metavar="INFER.fits", help="scores of labelled cutouts")
    _common(p, "report folder")
    p.add_argument(
        "--crossmatch",
        metavar="DIR",
        help="accepted for the spec's command line; labels come from INFER.fits",
    )


def checkinfer_run(args: argparse.Namespace) -> int:
    """Run ``checkinfer``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.transient.evaluate import checkinfer

    cfg = _resolve(args)
    res = checkinfer(args.infer, args.out, cfg.evaluate)
    save_config(cfg, Path(args.out) / "checkinfer.config.json")
    print(json.dumps({k: res[k] for k in ("n", "auc", "fpr_at_tpr99")}, default=float))
    return 0


# ----------------------------------------------------------------------------- convert-keras
def convert_keras_args(p: argparse.ArgumentParser) -> None:
    """Options of ``convert-keras``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The step's parser.
    """
    p.add_argument("weights", metavar="WEIGHTS.h5", help="braai Keras HDF5 model")
    p.add_argument("--out", required=True, help="model directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    p.add_argument("--name", help="model name (default: the file stem)")


def convert_keras_run(args: argparse.Namespace) -> int:
    """Run ``convert-keras``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from surveynet.transient.convert import convert_braai

    path = convert_braai(args.weights, args.out, overwrite=args.overwrite, name=args.name)
    print(f"model written to {path}")
    return 0
