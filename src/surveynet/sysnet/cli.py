"""Thin CLI steps ``args -> config -> library call`` (``sysnet ...``, ``simulate sysmaps``).

``surveynet sysnet train [--config F.yaml] [--set k=v] [--input T.fits] [--label-map M.fits]
[--out DIR] [--kfold/--no-kfold] [--find-lr/--no-find-lr] ... [--overwrite]``;
``surveynet sysnet weights DIR --out WEIGHTS.fits``; ``surveynet sysnet predict TABLE.fits
--model DIR --out PRED.fits``; ``surveynet sysnet evaluate DIR --out
REPORTDIR``; ``surveynet sysnet convert best.pth.tar --out MODELDIR``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

#: Boolean config keys with a ``--flag/--no-flag`` pair on ``sysnet train``.
BOOL_FLAGS = {
    "kfold": "do_kfold",
    "find-lr": "find_lr",
    "find-structure": "find_structure",
    "find-l1": "find_l1",
    "rfe": "do_rfe",
    "snapshot-ensemble": "snapshot_ensemble",
    "tar": "do_tar",
}


def train_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``sysnet train``."""
    from surveynet.config import add_config_args

    add_config_args(parser)
    parser.add_argument("--input", metavar="TABLE.fits", help="input table (input_path)")
    parser.add_argument(
        "--label-map",
        metavar="MAP.fits",
        help="HEALPix label map: two-file form with --input as features table",
    )
    parser.add_argument(
        "--ordering",
        choices=("auto", "ring", "nested"),
        help="pixel ordering of the table (default: ORDERING keyword, else RING)",
    )
    parser.add_argument("--nside", type=int, help="nside (default: NSIDE keyword or inferred)")
    parser.add_argument("--out", metavar="DIR", help="output folder (output_path)")
    parser.add_argument("--use", metavar="TUNING.json", help="apply saved tuning results")
    for flag, key in BOOL_FLAGS.items():
        parser.add_argument(
            f"--{flag}",
            dest=key,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"switch {key} on or off",
        )
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Dask worker processes for the partitions (0 = in process)",
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask scheduler")


def train_run(args: argparse.Namespace) -> int:
    """Run ``sysnet train``."""
    from surveynet.sysnet.config import resolve_sysnet_config
    from surveynet.sysnet.train import train_sysnet

    extra: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if args.input:
        data["input_path"] = args.input
    if args.label_map:
        data["label_path"] = args.label_map
    if args.ordering:
        data["ordering"] = args.ordering
    if args.nside:
        data["nside"] = args.nside
    if data:
        extra["data"] = data
    if args.out:
        extra["output_path"] = args.out
    if args.use:
        extra["tune"] = {"use": args.use}
    for key in BOOL_FLAGS.values():
        v = getattr(args, key)
        if v is not None:
            extra[key] = bool(v)
    extra["train"] = {"quiet": bool(args.quiet)}
    if args.workers is not None:
        extra["train"]["workers"] = args.workers
    if args.scheduler:
        extra["train"]["dask_scheduler"] = args.scheduler
    cfg = resolve_sysnet_config(args.config, args.overrides, extra)
    out = train_sysnet(
        cfg,
        overwrite=args.overwrite,
        command=" ".join(shlex.quote(a) for a in ["surveynet", *sys.argv[1:]]),
    )
    if not args.quiet:
        print(f"sysnet train: wrote {out}/nn-weights.fits, metrics.npz, models/, config.json")
    return 0


def weights_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``sysnet weights``."""
    from surveynet.config import add_config_args

    parser.add_argument(
        "run", metavar="DIR", help="sysnet train output folder (or a nn-weights.fits file)"
    )
    parser.add_argument("--out", required=True, metavar="WEIGHTS.fits", help="output table")
    parser.add_argument("--map", metavar="MAP.fits", help="also write a HEALPix weight map")
    parser.add_argument("--overwrite", action="store_true")
    add_config_args(parser)


def weights_run(args: argparse.Namespace) -> int:
    """Run ``sysnet weights``."""
    import numpy as np

    from surveynet.sysnet.catalog import read_predictions, write_weights
    from surveynet.sysnet.config import resolve_sysnet_config
    from surveynet.sysnet.postprocess import predictions_to_weights

    run = Path(args.run)
    pfile = run / "nn-weights.fits" if run.is_dir() else run
    cfg_path = args.config
    if cfg_path is None and run.is_dir() and (run / "config.json").is_file():
        cfg_path = str(run / "config.json")
    cfg = resolve_sysnet_config(cfg_path, args.overrides)
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
    hpix, pred, hdr = read_predictions(pfile)
    wc = cfg.weights
    w = predictions_to_weights(
        pred, combine=wc.combine, clip_min=wc.clip_min, clip_max=wc.clip_max, mode=wc.mode
    )
    nside = int(hdr.get("NSIDE", 0)) or None
    nest = str(hdr.get("ORDERING", "RING")).upper().startswith("NEST")
    if nside is None:
        from surveynet.sysnet.data import check_nside

        nside = check_nside(hpix, None, str(pfile))
    write_weights(
        args.out,
        hpix,
        w.selection,
        w.weight,
        nside=nside,
        nest=nest,
        extra={
            "COMBINE": wc.combine,
            "CLIPMIN": wc.clip_min,
            "CLIPMAX": wc.clip_max,
            "WMODE": wc.mode,
            "NOUTSIDE": w.n_outside,
        },
        overwrite=args.overwrite,
    )
    if args.map:
        import healpy as hp

        from surveynet.io.fits import atomic_path

        m = np.full(hp.nside2npix(nside), hp.UNSEEN)
        m[hpix] = w.weight
        with atomic_path(args.map, overwrite=args.overwrite) as tmp:
            hp.write_map(
                str(tmp),
                m,
                nest=nest,
                dtype=np.float64,
                fits_IDL=False,
                extra_header=[("PIPELINE", "sysnet")],
                overwrite=True,
            )
    if not args.quiet:
        print(
            f"sysnet weights: {len(hpix)} pixels, {w.n_outside} outside "
            f"[{wc.clip_min}, {wc.clip_max}] ({wc.mode}) -> {args.out}"
        )
    return 0


def predict_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``sysnet predict``."""
    parser.add_argument("table", metavar="TABLE.fits", help="features table (hpix, features)")
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="sysnet train run folder or model directory"
    )
    parser.add_argument("--out", required=True, metavar="PRED.fits", help="predictions table")
    parser.add_argument("--ordering", choices=("auto", "ring", "nested"), default="auto")
    parser.add_argument("--nside", type=int, help="nside (default: NSIDE keyword or inferred)")
    parser.add_argument("--overwrite", action="store_true")


def predict_run(args: argparse.Namespace) -> int:
    """Run ``sysnet predict``."""
    from surveynet.sysnet.predict import predict_table

    out = predict_table(
        args.table,
        args.model,
        args.out,
        ordering=args.ordering,
        nside=args.nside,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        print(f"sysnet predict: wrote {out}")
    return 0


def evaluate_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``sysnet evaluate``."""
    parser.add_argument("run", metavar="DIR", help="sysnet train output folder")
    parser.add_argument("--out", required=True, metavar="REPORTDIR", help="report folder")
    parser.add_argument("--overwrite", action="store_true")


def evaluate_run(args: argparse.Namespace) -> int:
    """Run ``sysnet evaluate``."""
    from surveynet.sysnet.evaluate import evaluate_run as ev

    m = ev(args.run, args.out, overwrite=args.overwrite)
    if not args.quiet:
        print(f"sysnet evaluate: {args.out}/report.html")
        for k, v in m["chi2"].items():
            print(f"  chi2 {k:<7} {v:10.1f}  ({v / m['chi2_dof']:.2f} per bin)")
    return 0


def convert_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``sysnet convert``."""
    parser.add_argument("checkpoint", metavar="best.pth.tar", help="sysnetdev checkpoint")
    parser.add_argument("--out", required=True, metavar="MODELDIR")
    parser.add_argument("--model", default="dnnp", choices=("dnn", "dnnp", "dnnps", "lin", "linp"))
    parser.add_argument("--overwrite", action="store_true")


def convert_run(args: argparse.Namespace) -> int:
    """Run ``sysnet convert``."""
    from surveynet.sysnet.convert import convert_sysnetdev

    out = convert_sysnetdev(args.checkpoint, args.out, model=args.model, overwrite=args.overwrite)
    if not args.quiet:
        print(f"sysnet convert: wrote {out}")
    return 0


def sysmaps_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``simulate sysmaps``."""
    parser.add_argument("--nside", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--map-seed",
        type=int,
        default=None,
        help="seed of the imaging maps (default --seed): mocks sharing a sky",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="TABLE.fits|DIR",
        help="table file, or a folder (then DIR/sysmaps.fits)",
    )
    parser.add_argument("--null", action="store_true", help="no selection (null mock)")
    parser.add_argument("--nbar", type=float, default=100.0, help="mean count of a full pixel")
    parser.add_argument("--strength", type=float, default=1.0, help="selection strength")
    parser.add_argument(
        "--synthetic-galaxy",
        action="store_true",
        help="ignore ../shared/data/healpix (synthetic Galactic model)",
    )
    parser.add_argument("--overwrite", action="store_true")


def sysmaps_run(args: argparse.Namespace) -> int:
    """Run ``simulate sysmaps``."""
    from surveynet.sim.sysmaps import simulate_sysmaps, write_mock

    out = Path(args.out)
    if out.suffix.lower() not in (".fits", ".fit", ".gz"):
        out = out / "sysmaps.fits"
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    mock = simulate_sysmaps(
        args.nside,
        args.seed,
        null=args.null,
        map_seed=args.map_seed,
        nbar=args.nbar,
        strength=args.strength,
        use_real_maps=not args.synthetic_galaxy,
    )
    write_mock(out, mock, seed=args.seed, null=args.null, overwrite=args.overwrite)
    if not args.quiet:
        print(
            f"simulate sysmaps: {len(mock.hpix)} pixels at nside {args.nside} "
            f"({'null' if args.null else 'with selection'}; "
            f"{'SFD/HI4PI' if mock.real_maps else 'synthetic'} Galaxy) -> {out}"
        )
    return 0
