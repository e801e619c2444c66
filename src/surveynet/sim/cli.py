"""Registrations of the simulate steps and the spectra benchmark.

``surveynet simulate spectra --n N --seed S --out DIR [--templates DIR] [--mix
qso=0.6,star=0.3,galaxy=0.1]
[--n-files K] [--preset generic|qso|dla] [--config F] [--set key=value] [--overwrite]``.
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from surveynet.bench import register_bench, time_call
from surveynet.config import (
    add_config_args,
    apply_overrides,
    from_dict,
    load_config_file,
    to_dict,
)
from surveynet.registry import add_step, register_group

register_group("simulate", "seeded mock data: DESI-like spectra (more generators to come)")


def _add_spectra_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``surveynet simulate spectra`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The step's subparser.
    """
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, default=0, help="random seed (also fixes TARGETIDs)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (coadd-*.fits, truth.fits)"
    )
    parser.add_argument(
        "--templates",
        metavar="DIR",
        help="template folder (e.g. ../shared/data/templates) for the template mode",
    )
    parser.add_argument(
        "--mix", metavar="SPEC", help="class fractions, e.g. qso=0.6,star=0.3,galaxy=0.1[,bad=0.02]"
    )
    parser.add_argument(
        "--n-files",
        type=int,
        default=None,
        dest="n_files",
        help="number of coadd files (default: one per 500 spectra, like DESI healpix coadds)",
    )
    parser.add_argument(
        "--preset",
        default="generic",
        choices=("generic", "qso", "dla", "dla_only"),
        help="named configuration (dla: z_qso >= 2.33 DLA set of simulation.md 5.2)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_config_args(parser)


def _run_spectra(args: argparse.Namespace) -> int:
    """Run ``surveynet simulate spectra``: preset, config file, ``--set`` overrides, then files.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (:func:`_add_spectra_args`).

    Returns
    -------
    int
        Exit code 0.

    Raises
    ------
    ValueError
        ``--n`` < 1.
    """
    from surveynet.sim.spectra import SpectraSimConfig, parse_mix, preset_config, simulate_to_files

    cfg = preset_config(args.preset)
    if args.config:
        cfg = from_dict(SpectraSimConfig, {**to_dict(cfg), **load_config_file(args.config)})
    cfg = apply_overrides(cfg, args.overrides or [])
    mix = parse_mix(args.mix) if args.mix else None
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    coadds, truth = simulate_to_files(
        args.out,
        args.n,
        args.seed,
        n_files=args.n_files if args.n_files else max(1, -(-args.n // 500)),
        overwrite=args.overwrite,
        quiet=args.quiet,
        config=cfg,
        mix=mix,
        templates=args.templates,
    )
    if not args.quiet:
        print(
            f"wrote {args.n} spectra in {len(coadds)} coadd file(s) under {args.out}; "
            f"truth: {truth}"
        )
    return 0


add_step(
    "simulate",
    "spectra",
    "DESI-like mock spectra (coadd files + truth.fits)",
    _add_spectra_args,
    _run_spectra,
)


@register_bench("spectra")
def bench_spectra(quick: bool) -> dict[str, Any]:
    """Spectra per second on one core: simulation (parametric), writing coadds, reading them back.

    The generator is single-threaded numpy/scipy (its one matrix product, the synthetic photometry,
    is tiny); ``*_per_s`` are wall-clock rates of one process, ``simulate_spectra_per_cpu_s`` the
    same run divided by its process CPU time (robust when the machine is shared). For a strict
    one-core figure run it as ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 surveynet bench spectra``
    (the synthetic photometry is a small BLAS product). Every duration is measured with
    :func:`surveynet.bench.time_call` (simulation: a warm-up run of 64 spectra, then single-call
    trials). ``read_spectra_per_s`` reads every HDU (resolution matrices included); pipelines add
    their own figures to this bench with :func:`surveynet.bench.register_bench_part` (quasar:
    read of the prediction HDUs + rebin + normalise on one core,
    ``read_rebin_normalise_spectra_per_s``).

    Parameters
    ----------
    quick : bool
        Fewer and smaller runs (smoke test).

    Returns
    -------
    dict
        ``n_simulated``, ``simulate_spectra_per_s``, ``simulate_spectra_per_cpu_s``,
        ``write_spectra_per_s``, ``read_spectra_per_s``, ``coadd_mb_per_1000_spectra``,
        ``blas_threads_env``.
    """
    import os
    import tempfile
    from pathlib import Path

    import numpy as np

    from surveynet.io.desi import write_coadd
    from surveynet.io.spectra import read_spectra
    from surveynet.sim.spectra import simulate_spectra

    n = 500 if quick else 4000
    reps = 1 if quick else 3
    simulate_spectra(64, seed=1)  # warm caches (tables, sky, LSF); then every trial is one call
    best = time_call(lambda: simulate_spectra(n, seed=100), min_time=0.0, repeat=reps, warmup=False)
    best_cpu = time_call(
        lambda: simulate_spectra(n, seed=100),
        min_time=0.0,
        repeat=reps,
        warmup=False,
        clock=time.process_time,
    )
    n_io = 200 if quick else 1000
    spec, _ = simulate_spectra(n_io, seed=7)
    if spec.resolution is not None:
        spec.resolution = {b: np.ascontiguousarray(r) for b, r in spec.resolution.items()}
    back = []

    def read() -> None:
        """Read the file back and touch the data (lazy readers)."""
        sp = read_spectra(path)
        _ = [np.asarray(sp.flux[b]).sum() for b in sp.bands]
        back.append(sp)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coadd-000.fits"
        t_write = time_call(lambda: write_coadd(path, spec), min_time=0.0, repeat=1, warmup=False)
        t_read = time_call(read, min_time=0.0, repeat=1, warmup=False)
        if back[0].n_spec != n_io:
            raise RuntimeError(f"read back {back[0].n_spec} spectra, wrote {n_io}")
        size_mb = path.stat().st_size / 1e6
    return {
        "n_simulated": n,
        "simulate_spectra_per_s": n / best,
        "simulate_spectra_per_cpu_s": n / best_cpu,
        "write_spectra_per_s": n_io / t_write,
        "read_spectra_per_s": n_io / t_read,
        "coadd_mb_per_1000_spectra": size_mb * 1000 / n_io,
        "blas_threads_env": os.environ.get(
            "OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "unset")
        ),
    }
