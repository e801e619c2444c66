"""Thin step functions of ``surveynet dla train | predict | evaluate``: args -> config -> library.

Each step resolves the one :class:`~surveynet.dla.config.DLAConfig` from ``--config FILE``, the
shortcut flags (each sets one config key, :func:`surveynet.config.add_config_flag`) and
``--set section.key=value`` (applied last), then calls one library function. The steps are
registered in :mod:`surveynet.dla` (``__init__``); this module imports only the config at module
level, the library code when a step runs.

Exit codes: 0 success; 1 bad input or configuration (nothing written); 3 (``predict``) some
input files failed: the catalogue holds the others and a FAILED HDU naming each bad file.
Outputs are never replaced without ``--overwrite``; the check comes before any work.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from typing import Any

from surveynet.config import (
    add_config_args,
    add_config_flag,
    add_model_dir_args,
    add_predict_io_args,
    config_from_args,
)
from surveynet.dla.config import DLAConfig, EvaluateConfig, PredictConfig
from surveynet.errors import ConfigError
from surveynet.runner import add_runner_args, default_workers

__all__ = [
    "evaluate_args",
    "evaluate_run",
    "predict_args",
    "predict_run",
    "resolve",
    "train_args",
    "train_command",
    "train_run",
]

#: Keys that were top-level ``--set`` keys before the one config root, and their sections.
_MOVED = {f.name: "predict" for f in fields(PredictConfig)} | {
    f.name: "evaluate" for f in fields(EvaluateConfig)
}


def resolve(args: argparse.Namespace) -> DLAConfig:
    """The resolved :class:`DLAConfig` of a step: defaults, ``--config``, flags, ``--set``.

    A ``--set`` key without a section that is a ``predict`` or ``evaluate`` key (the flat keys
    of earlier versions, e.g. ``vet_threshold``) is refused with the key to use instead.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a step.

    Returns
    -------
    DLAConfig

    Raises
    ------
    ConfigError
        Unknown keys or bad values.
    """
    for item in getattr(args, "overrides", None) or []:
        key = item.partition("=")[0].strip()
        if "." not in key and key in _MOVED:
            raise ConfigError(
                f"--set {item}: the key is now {_MOVED[key]}.{key} "
                f"(--set {_MOVED[key]}.{item.strip()})"
            )
    return config_from_args(DLAConfig, args)


# ----------------------------------------------------------------------------- train


def train_args(p: argparse.ArgumentParser) -> None:
    """Options of ``surveynet dla train``."""
    p.add_argument(
        "--truth",
        action="append",
        metavar="TRUTH.fits",
        help="truth file (TRUTH z_qso + DLA_META absorbers) of the coadd files; repeat for "
        "coadds of several mocks",
    )
    add_model_dir_args(
        p, "mock/DESI coadd files (with --truth) or one prepared .npz window dataset"
    )
    add_config_args(p)
    add_config_flag(p, "--seed", key="train.seed", config_cls=DLAConfig, dest="seed", help="seed")
    add_config_flag(
        p,
        "--init",
        key="train.init",
        config_cls=DLAConfig,
        dest="init",
        metavar="MODEL",
        help="start from this model's weights (directory or bundled name; same architecture)",
    )
    add_config_flag(
        p,
        "--max-sightlines",
        key="data.max_sightlines",
        config_cls=DLAConfig,
        dest="max_sightlines",
        help="use at most this many sightlines (0 = all)",
    )


def train_command(args: argparse.Namespace) -> str:
    """The reproducing command line, rebuilt from the parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``surveynet dla train`` arguments.

    Returns
    -------
    str
        A shell-quoted command (recorded as ``training.command`` in the model's config.json).
    """
    parts = ["surveynet", "dla", "train", *map(str, args.data)]
    for t in args.truth or []:
        parts += ["--truth", str(t)]
    parts += ["--out", str(args.out)]
    if args.config:
        parts += ["--config", str(args.config)]
    for o in args.overrides:
        parts += ["--set", o]
    for flag, value in (
        ("--seed", args.seed),
        ("--max-sightlines", args.max_sightlines),
        ("--init", args.init),
    ):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def train_run(args: argparse.Namespace) -> int:
    """Run ``surveynet dla train`` (:func:`surveynet.dla.train.train`)."""
    from surveynet.dla.train import train

    cfg = resolve(args)
    path = train(
        cfg,
        args.data,
        args.out,
        truths=args.truth or [],
        resume=args.resume,
        quiet=args.quiet,
        command=train_command(args),
        overwrite=args.overwrite,
    )
    print(f"model written to {path}")
    return 0


# ----------------------------------------------------------------------------- predict


def predict_args(p: argparse.ArgumentParser) -> None:
    """Options of ``surveynet dla predict``."""
    add_predict_io_args(
        p,
        "DESI spectra/coadd files, BOSS spPlates or SDSS spec-lite files "
        "(spec-PLATE-MJD-FIBER.fits; SDSS quasars below z 2.33 need --set predict.z_qso_min=2.0)",
    )
    add_config_flag(
        p,
        "--model",
        key="predict.models",
        config_cls=DLAConfig,
        dest="model",
        action="append",
        metavar="M",
        help="model directory or bundled name; repeat for S/N-routed models; A+B averages the "
        "per-pixel outputs of models A and B (an ensemble, routed by A's S/N range); none "
        "given: bundled dla_fcn + dla_fcn_lowsnr",
    )
    add_config_flag(
        p,
        "--refiner",
        key="predict.refiner",
        config_cls=DLAConfig,
        dest="refiner",
        metavar="M",
        help="second-stage localisers moving every vote peak, applied in turn (comma-separated "
        "model directories or bundled names; unset: bundled dla_refiner,dla_refiner_wide; "
        "'none' turns it off; rounds: --set predict.refine_iterations=N; averaging the last "
        "round over crops shifted by -K..K pixels: --set predict.refine_shifts=K)",
    )
    add_config_flag(
        p,
        "--vetter",
        key="predict.vetter",
        config_cls=DLAConfig,
        dest="vetter",
        metavar="M",
        help="absorber vetter: DLA_CONFIDENCE becomes its probability that the absorber is real "
        "and absorbers below its threshold are dropped (model directory or bundled name; "
        "unset: bundled dla_vetter; 'none' keeps the vote confidence and every absorber; "
        "threshold: --set predict.vet_threshold=P)",
    )
    src = p.add_mutually_exclusive_group(required=False)
    src.add_argument(
        "--qso-catalog",
        metavar="QN.fits",
        help="quasar catalogue (TARGETID, Z_QN, IS_QSO_QN). With no redshift source "
        "(--qso-catalog, --zbest, --truth) the bundled QuasarNET (predict.qso_model, default "
        "qn_mock_6layer) runs on the inputs first, through the registered `surveynet quasar "
        "predict` step; the catalogue header says so (ZSOURCE = 'QuasarNET' and a 'redshifts' "
        "model card with its weights hash)",
    )
    src.add_argument("--zbest", metavar="FILE", help="zbest/redrock file (TARGETID, Z, SPECTYPE)")
    src.add_argument(
        "--truth", metavar="FILE", help="mock truth file (TRUTH: TARGETID, Z, OBJTYPE)"
    )
    add_config_flag(
        p,
        "--skip-bal",
        key="predict.skip_bal",
        config_cls=DLAConfig,
        dest="skip_bal",
        help="leave out quasars the redshift catalogue flags as BAL (IS_BAL_QN, or IS_BAL of a "
        "mock truth), as the DESI DLA catalogues do: BAL troughs mimic DLAs (= --bal skip)",
    )
    add_config_flag(
        p,
        "--bal",
        key="predict.bal",
        config_cls=DLAConfig,
        dest="bal",
        choices=("mask", "veto", "skip", "keep"),
        help="BAL quasars: veto (default) drops the absorbers whose Lya falls inside a BAL trough "
        "(CIV trough velocities from the core BAL finder, run on every quasar, transposed to "
        "Lya, Lyb, NV, SiIV, CIV, OVI; DESI's longer line list: --set predict.bal_lines=desi; "
        "troughs from a `surveynet quasar bal` catalogue: --set predict.bal_catalog=BAL.fits); "
        "mask masks those pixels in the finder's input instead; skip leaves BAL quasars out "
        "(--skip-bal); keep searches them as they are",
    )
    add_config_args(p)
    add_runner_args(p)


def predict_run(args: argparse.Namespace) -> int:
    """Run ``surveynet dla predict`` (:func:`surveynet.dla.predict.predict_files`)."""
    from surveynet.dla.predict import predict_files

    cfg = resolve(args)
    zsrc = args.qso_catalog or args.zbest or args.truth  # None: QuasarNET runs first
    res = predict_files(
        args.inputs,
        args.out,
        qso_catalog=zsrc,
        config=cfg,
        workers=default_workers(args, len(args.inputs)),
        scheduler=args.scheduler,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    cat, n_bad = res.merged, len(res.failures)
    n_dla = int((cat.dlas["ABSORBER_TYPE"] == "DLA").sum()) if len(cat.dlas) else 0
    print(
        f"{res.path}: {len(cat.dlas)} absorbers ({n_dla} DLA) in {len(cat.qsos)} sightlines"
        + (f"; {n_bad} input file(s) failed (listed in its FAILED HDU)" if n_bad else "")
    )
    return res.exit_code


# ----------------------------------------------------------------------------- evaluate


def evaluate_args(p: argparse.ArgumentParser) -> None:
    """Options of ``surveynet dla evaluate``."""
    p.add_argument("catalog", metavar="CATALOG.fits", help="catalogue from `surveynet dla predict`")
    p.add_argument("--truth", required=True, metavar="TRUTH.fits", help="truth file (DLA_META)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for metrics.json, config.json, plots (made only once the inputs are read); "
        "metrics.json['summary'] holds the README's S/N bins (evaluate.summary_s2n, default "
        "S/N > 3 and 1-3) with the completeness at evaluate.fixed_purity (default 0.9)",
    )
    add_config_args(p)
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing metrics.json / config.json"
    )


def evaluate_run(args: argparse.Namespace) -> int:
    """Run ``surveynet dla evaluate`` (:func:`surveynet.dla.evaluate.evaluate`)."""
    from surveynet.dla.evaluate import evaluate

    cfg = resolve(args)
    m = evaluate(args.catalog, args.truth, args.out, cfg, overwrite=args.overwrite)

    def fmt(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    print(
        f"{args.out}/metrics.json: completeness {fmt(m['completeness'])}, "
        f"purity {fmt(m['purity'])} "
        f"(TP {m['tp']}, FN {m['fn']}, FP {m['fp']})"
    )
    for b in m.get("summary", []):
        hi = "" if b["s2n_hi"] >= 1e8 else f" < {b['s2n_hi']:g}"
        print(
            f"  {b['s2n_lo']:g} <= S/N{hi}: completeness {fmt(b['completeness'])}, purity "
            f"{fmt(b['purity'])} ({b['n_truth_dla']} DLAs); completeness at purity "
            f">= {100 * b['fixed_purity']:.0f}%: {fmt(b['completeness_at_purity'])}"
        )
    return 0
