"""``surveynet bench dla``: speed and FLOPs of the window CNN and the fully-convolutional finder.

Both numpy engines run on the **same** sightlines (DESI blue-camera grid at 62,996 m/s, z_qso
2.4-3.4, one injected DLA each), through the same :class:`surveynet.dla.predict.DLAFinder` code
path as ``surveynet dla predict`` (input building, engine, per-pixel outputs; the voting and
catalogue step is common to both and excluded). FLOPs are counted analytically (2 x MAC of the
convolutions and dense layers actually evaluated, padding included). The anchor-size window CNN
(SDSS v7.1 shape, 652,101 parameters) is timed with random weights, since speed does not depend
on the values; the bundled models are used when present. The end-to-end figures
(:func:`e2e_figures`) time ``surveynet dla predict`` as whole processes, from DLA-mock coadd
files to the catalogue, in process and on a local Dask cluster of 1 and 2 workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surveynet.bench import gemm_gflops, time_call
from surveynet.constants import C_MS
from surveynet.dla.sightline import Sightline

log = logging.getLogger(__name__)


def toy_sightlines(
    n: int,
    seed: int,
    *,
    s2n: float = 10.0,
    z_range: tuple[float, float] = (2.4, 3.4),
    velocity_ms: float = 62996.0,
) -> list[Sightline]:
    """Normalised sightlines (unit continuum, 10 % Gaussian forest, noise 1/s2n), one DLA each.

    A fixture for tests and benchmarks, not a realistic mock (use :mod:`surveynet.sim.spectra`).
    """
    from surveynet.dla.insert import insert_dlas_many

    rng = np.random.default_rng(seed)
    dl = np.log10(1.0 + velocity_ms / C_MS)
    ll = np.log10(3570.0) + dl * np.arange(int(np.log10(5948.0 / 3570.0) / dl))
    out = []
    for i in range(n):
        z = float(rng.uniform(*z_range))
        e = np.full(ll.size, 1.0 / s2n)
        f = 1.0 + 0.1 * rng.standard_normal(ll.size) + e * rng.standard_normal(ll.size)
        out.append(Sightline(targetid=i, z_qso=z, loglam=ll.copy(), flux=f, error=e, s2n=s2n))
    return insert_dlas_many(out, rng)


def random_model(
    architecture: str, config: Any, preprocessing: dict[str, Any], out: Path, seed: int = 0
) -> Path:
    """Save a model with random weights (torch-free: shapes from the numpy engine's key list)."""
    from surveynet.config import to_dict
    from surveynet.io.model import save_model

    rng = np.random.default_rng(seed)
    shapes = _shapes(architecture, config)
    tensors = {
        k: (rng.standard_normal(s) / np.sqrt(max(np.prod(s[1:]), 1))).astype(np.float32)
        for k, s in shapes.items()
    }
    return save_model(
        out,
        tensors,
        pipeline="dla",
        architecture=architecture,
        config=to_dict(config),
        preprocessing=preprocessing,
        overwrite=True,
    )


def _shapes(architecture: str, c: Any) -> dict[str, tuple[int, ...]]:
    from surveynet.dla.config import FCNConfig

    s: dict[str, tuple[int, ...]] = {}
    if isinstance(c, FCNConfig):
        chans = (c.in_channels, *c.stem_channels)
        for i in range(len(c.stem_strides)):
            s[f"stem.{i}.weight"] = (chans[i + 1], chans[i], c.stem_kernel)
            s[f"stem.{i}.bias"] = (chans[i + 1],)
        for i in range(len(c.dilations)):
            s[f"dconv.{i}.weight"] = (c.width, c.width, c.block_kernel)
            s[f"dconv.{i}.bias"] = (c.width,)
            s[f"pconv.{i}.weight"] = (c.width, c.width, 1)
            s[f"pconv.{i}.bias"] = (c.width,)
        s["head_hidden.weight"] = (c.head_hidden, c.width, 1)
        s["head_hidden.bias"] = (c.head_hidden,)
        s["head_out.weight"] = (3 * c.factor, c.head_hidden, 1)
        s["head_out.bias"] = (3 * c.factor,)
        return s
    chans = (c.in_channels, *c.conv_filters)
    length = c.window
    for i in range(3):
        s[f"conv{i + 1}.weight"] = (chans[i + 1], chans[i], c.conv_kernels[i])
        s[f"conv{i + 1}.bias"] = (chans[i + 1],)
        conv_len = -(-length // c.conv_strides[i])
        length = -(-conv_len // c.pool_strides[i])
    flat = length * c.conv_filters[2]
    s["fc1.weight"], s["fc1.bias"] = (c.fc1, flat), (c.fc1,)
    for name, w in zip(("class", "offset", "nhi"), c.fc2, strict=True):
        s[f"fc2_{name}.weight"], s[f"fc2_{name}.bias"] = (w, c.fc1), (w,)
        s[f"out_{name}.weight"], s[f"out_{name}.bias"] = (1, w), (1,)
    return s


def finder_flops(finder: Any, sightlines: Sequence[Sightline]) -> float:
    """FLOPs (2 x MAC) that ``finder.predict(sightlines)`` evaluates."""
    from surveynet.dla.sightline import search_pixels

    n_pix = [search_pixels(sl, finder.spec.rest_range).size for sl in sightlines]
    if finder.architecture == "dla_window_cnn":
        return 2.0 * finder.engine.macs_per_window() * float(sum(n_pix))
    f, ctx, bs = finder.engine.config.factor, finder.context, finder.batch_size
    sizes = sorted(n for n in n_pix if n > 0)
    total = 0.0
    for b in range(0, len(sizes), bs):
        chunk = sizes[b : b + bs]
        length = -(-(max(chunk) + 2 * ctx) // f) * f
        total += len(chunk) * length
    return 2.0 * finder.engine.macs_per_pixel() * total


def _rate(run: Any, sls: Sequence[Sightline], min_time: float) -> float:
    """Sightlines per second of ``run(sls)``.

    :func:`surveynet.bench.time_call`: a warm-up call, then the best of two trials of repeated
    calls lasting ``min_time`` each.

    Parameters
    ----------
    run : callable
        Called with the list of sightlines.
    sls : sequence of Sightline
        The sightlines.
    min_time : float
        Trial duration (s).

    Returns
    -------
    float
    """
    return len(sls) / time_call(lambda: run(sls), min_time=min_time, repeat=2)


def _time(finder: Any, sls: Sequence[Sightline], min_time: float) -> float:
    """Sightlines per second of ``finder.predict`` (:func:`_rate`).

    Parameters
    ----------
    finder : DLAFinder
        The finder.
    sls : sequence of Sightline
        The sightlines.
    min_time : float
        Trial duration (s).

    Returns
    -------
    float
    """
    return _rate(finder.predict, sls, min_time)


_RATE_SCRIPT = (
    "import sys\n"
    "from surveynet.dla.bench import _time, toy_sightlines\n"
    "from surveynet.dla.predict import DLAFinder\n"
    "f = DLAFinder.from_saved(sys.argv[1])\n"
    "print(_time(f, toy_sightlines(int(sys.argv[2]), 7), float(sys.argv[3])))\n"
)


def rate_in_processes(
    model: str | os.PathLike[str], n_proc: int, n_sightlines: int, min_time: float
) -> float:
    """Sightlines/s of ``n_proc`` concurrent single-threaded processes (BLAS threads = 1), summed.

    Small matrix products gain nothing from BLAS threads and lose a lot when the cores are
    shared, so the finder is parallelised over processes (as the Dask workers of ``predict``).
    """
    import subprocess
    import sys

    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-c", _RATE_SCRIPT, str(model), str(n_sightlines), str(min_time)]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n_proc)
    ]
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"benchmark subprocess failed ({p.returncode})")
        total += float(out.strip().splitlines()[-1])
    return total


def _time_catalog(
    fcn: Any,
    refiners: Sequence[Any],
    grids: Any,
    sls: Sequence[Sightline],
    min_time: float,
    vetter: Any = None,
) -> float:
    """Sightlines/s of the whole catalogue step.

    Finder, votes, peaks, optional refiners and vetter.
    """
    from surveynet.dla.predict import predict_sightlines

    return _rate(
        lambda x: predict_sightlines(
            x, [fcn], refiner=refiners, refine_sightlines=grids, vetter=vetter
        ),
        sls,
        min_time,
    )


def bench_refiner(
    fcn: Any,
    refiners: Sequence[Any],
    sls: Sequence[Sightline],
    min_time: float,
    seed: int = 7,
    vetter: Any = None,
) -> dict[str, Any]:
    """The FCN catalogue with and without the second-stage localisers and the vetter.

    The localisers are applied in turn, the absorber vetter after them, on the same sightlines.
    A refiner on another pixel grid crops toy sightlines of the same seed built on its grid (the
    same number of pixels per Angstrom as in use; the spectra differ).
    """
    from surveynet.dla.predict import predict_sightlines

    grids = []
    for ref in refiners:
        v = ref.data.pixel_velocity_ms
        grids.append(
            None
            if v is None or v == fcn.data.pixel_velocity_ms
            else {s.targetid: s for s in toy_sightlines(len(sls), seed=seed, velocity_ms=v)}
        )
        ref.n_crops = 0
    predict_sightlines(sls, [fcn], refiner=refiners, refine_sightlines=grids)
    res: dict[str, Any] = {
        "refiner_models": [r.name for r in refiners],
        "refiner_iterations": [r.iterations for r in refiners],
        "refiner_crops_per_sightline": [round(r.n_crops / len(sls), 3) for r in refiners],
        "refiner_gflop_per_sightline": round(
            sum(2.0 * r.engine.macs_per_crop() * r.n_crops for r in refiners) / len(sls) / 1e9, 5
        ),
        "fcn_catalog_sightlines_per_s": round(_time_catalog(fcn, [], [], sls, min_time), 1),
        "fcn_refined_catalog_sightlines_per_s": round(
            _time_catalog(fcn, refiners, grids, sls, min_time), 1
        ),
    }
    if vetter is not None:
        res["vetter_model"] = vetter.name
        res["fcn_refined_vetted_catalog_sightlines_per_s"] = round(
            _time_catalog(fcn, refiners, grids, sls, min_time, vetter), 1
        )
    return res


def bench_dla(quick: bool = False, *, models: tuple[str, str] | None = None) -> dict[str, Any]:
    """Throughput (sightlines/s) and FLOPs per sightline of both finders on the same sightlines.

    Also of the FCN catalogue with the bundled second-stage localisers and absorber vetter.
    """
    import tempfile

    from surveynet.dla.config import FCNConfig, WindowCNNConfig
    from surveynet.dla.predict import DLAFinder
    from surveynet.dla.preprocess import InputSpec
    from surveynet.io.model import bundled_models_dir

    n_fcn = 32 if quick else 256
    n_win = 2 if quick else 8
    sls = toy_sightlines(n_fcn, seed=7)
    res: dict[str, Any] = {
        "n_sightlines_fcn": n_fcn,
        "n_sightlines_window": n_win,
        "cpu_count": os.cpu_count() or 0,
        "machine_gemm_gflops": round(gemm_gflops(512), 2),
    }
    pre = {"input": InputSpec().to_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        anchor = DLAFinder.from_saved(
            random_model("dla_window_cnn", WindowCNNConfig(), pre, Path(tmp) / "win")
        )
        win_name, fcn_name = models or ("dla_window_cnn", "dla_fcn")
        bundled = bundled_models_dir()
        fcn_dir = bundled / fcn_name if (bundled / fcn_name).is_dir() else None
        if fcn_dir is None:
            fc = FCNConfig()
            from surveynet.dla.train import fcn_context

            fcn_dir = random_model(
                "dla_fcn", fc, {**pre, "context": fcn_context(fc)}, Path(tmp) / "fcn"
            )
        fcn = DLAFinder.from_saved(fcn_dir)
        finders = {"window_cnn_anchor": anchor, "fcn": fcn}
        if (bundled / win_name).is_dir():
            finders["window_cnn_bundled"] = DLAFinder.from_saved(bundled / win_name)
        for key, fd in finders.items():
            sub = sls if key == "fcn" else sls[:n_win]
            rate = _time(fd, sub, 0.5 if quick else 2.0)
            flops = finder_flops(fd, sub) / len(sub)
            res[f"{key}_model"] = fd.name
            res[f"{key}_sightlines_per_s"] = round(rate, 3)
            res[f"{key}_gflop_per_sightline"] = round(flops / 1e9, 5)
            res[f"{key}_gflop_per_s"] = round(rate * flops / 1e9, 2)
        for n_proc in (1, 2):
            rate = rate_in_processes(fcn.saved.path, n_proc, n_fcn, 0.5 if quick else 2.0)
            res[f"fcn_sightlines_per_s_{n_proc}proc_1thread"] = round(rate, 1)
        res["flop_ratio_anchor_over_fcn"] = round(
            res["window_cnn_anchor_gflop_per_sightline"] / res["fcn_gflop_per_sightline"], 1
        )
        res["speed_ratio_fcn_over_anchor"] = round(
            res["fcn_sightlines_per_s"] / res["window_cnn_anchor_sightlines_per_s"], 1
        )
        if "window_cnn_bundled_gflop_per_sightline" in res:
            res["flop_ratio_bundled_window_over_fcn"] = round(
                res["window_cnn_bundled_gflop_per_sightline"] / res["fcn_gflop_per_sightline"], 1
            )
        from surveynet.dla.refine import DEFAULT_REFINERS, DLARefiner
        from surveynet.dla.vet import DEFAULT_VETTER, DLAVetter

        refs = [
            DLARefiner.from_saved(bundled / m) for m in DEFAULT_REFINERS if (bundled / m).is_dir()
        ]
        vet = (
            DLAVetter.from_saved(bundled / DEFAULT_VETTER)
            if (bundled / DEFAULT_VETTER).is_dir()
            else None
        )
        if refs:
            res.update(bench_refiner(fcn, refs, sls, 0.5 if quick else 2.0, vetter=vet))
            res["flop_ratio_anchor_over_fcn_refined"] = round(
                res["window_cnn_anchor_gflop_per_sightline"]
                / (res["fcn_gflop_per_sightline"] + res["refiner_gflop_per_sightline"]),
                1,
            )
    res.update(e2e_figures(quick))
    return res


def e2e_figures(quick: bool = False, *, seed: int = 3) -> dict[str, Any]:
    """End-to-end ``surveynet dla predict``: spectra files to DLA catalogue, whole processes.

    A DLA mock (``surveynet simulate spectra --preset dla``: z_qso >= 2.33 quasars, resolution
    matrices included as in real files) is written to a scratch folder; ``surveynet dla predict``
    (bundled finders, refiners and vetter; redshifts from the mock truth, so that the figure is
    the DLA finder's own) then runs as a fresh process -- start-up, imports, model loading,
    reading, every stage, catalogue writing -- in process and on local Dask clusters of 1 and 2
    workers. Wall times are the best of ``repeat`` runs (:func:`surveynet.bench.time_process`);
    peak memory is the largest process's resident set.

    Parameters
    ----------
    quick : bool
        60 sightlines in 2 files, one run each; otherwise 400 in 2 files and 2 runs each.
    seed : int
        Seed of the mock.

    Returns
    -------
    dict
        ``e2e_*`` figures: sightlines/s, seconds and peak MB per mode, the 2-worker speed-up.
    """
    import sys
    import tempfile

    from surveynet.bench import time_process
    from surveynet.sim.spectra import preset_config, simulate_to_files

    n, n_files, repeat = (60, 2, 1) if quick else (400, 2, 2)
    fig: dict[str, Any] = {"e2e_n_sightlines": n, "e2e_n_files": n_files}
    with tempfile.TemporaryDirectory(prefix="surveynet-dla-e2e-") as tmp:
        work = Path(tmp)
        files, truth = simulate_to_files(
            work / "mock", n, seed, n_files=n_files, quiet=True, config=preset_config("dla")
        )
        base = [sys.executable, "-m", "surveynet", "dla", "predict", *map(str, files)]
        base += ["--truth", str(truth), "--out", str(work / "cat.fits"), "--quiet", "--overwrite"]
        for name, workers in (("inprocess", "0"), ("dask1", "1"), ("dask2", "2")):
            wall, peak = time_process([*base, "--workers", workers], repeat=repeat)
            fig[f"e2e_{name}_sightlines_per_s"] = n / wall
            fig[f"e2e_{name}_seconds"] = wall
            fig[f"e2e_{name}_peak_mb"] = peak
            log.info("dla e2e %s: %.2f s, %.0f MB", name, wall, peak)
    fig["e2e_dask_speedup_2_vs_1_workers"] = (
        fig["e2e_dask2_sightlines_per_s"] / fig["e2e_dask1_sightlines_per_s"]
    )
    return fig
