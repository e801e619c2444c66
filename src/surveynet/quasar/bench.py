"""``surveynet bench quasar``: QuasarNET inference and preprocessing speed, side by side.

Measured in one run, on the same inputs and weights (the 6-layer ``test_weights_6_layer.h5`` from
the shared data when present, otherwise random weights of the same 6-layer 'same' architecture),
each inference path in its own fresh process (torch's OpenMP threads and OpenBLAS's threads spin
after use and would otherwise slow each other down on a 2-core machine):

- the torch model (:class:`surveynet.quasar.model.QuasarNetTorch`, eval mode, ``inference_mode``,
  BatchNorm folded into the convolutions: ``fused_for_inference()``);
- the numpy engine (:class:`surveynet.quasar.engine.NumpyQuasarNet`, float32);
- a **QuasarNP-style baseline** written here for the comparison only: a re-implementation of the
  straightforward algorithm of desihub/QuasarNP:quasarnp/layers.py (documented there: a Python
  loop over output positions, each a ``(batch, k * C_in) @ (k * C_in, C_out)`` product written into
  a float64 result, then separate BatchNorm, ReLU, dense and sigmoid layers, one head at a time).
  QuasarNP itself is not installed or copied;
- preprocessing (rebin + normalise) of DESI-like B/R/Z arrays, and read + rebin + normalise
  from a simulated DESI coadd (:func:`read_preprocess_figures`);
- **end to end** (:func:`e2e_figures`): ``surveynet quasar predict`` as a whole process, from
  simulated coadd files (resolution matrices included, as real files) to the catalogue, in
  process and on a local Dask cluster of 1 and 2 workers: spectra per second, peak memory and
  the 2-worker speed-up. These are the figures a user sees; the forward-only ones above are
  what the network alone costs.

The figures are spectra per second at batch sizes 1, 256 and 4096 (each the better of all cores
and one thread, with the thread count reported), the FLOPs per spectrum, the achieved GFLOP/s,
the speed-ups over the baseline, and the machine's float32 matrix-multiply GFLOP/s for scale
(all cores and one thread). The 1-minute load average before and after is reported too: on a
shared machine every figure scales with the load.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.bench import gemm_gflops, time_call, time_process
from surveynet.quasar.config import GridConfig, QuasarNetConfig

log = logging.getLogger(__name__)

BATCHES = (1, 256, 4096)
QUICK_BATCHES = (1, 64)


def _shared_weights() -> Path | None:
    """The shared 6-layer weights, if the shared data folder is present."""
    root = Path(
        os.environ.get(
            "SURVEYNET_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"
        )
    )
    p = root / "quasarnp" / "test_weights_6_layer.h5"
    return p if p.is_file() else None


class QuasarNPStyleBaseline:
    """Straightforward numpy QuasarNET forward in the style of QuasarNP (the speed baseline).

    Keras layouts: activations (N, L, C); conv kernel (K, C_in, C_out); dense (in, out).
    Deliberately *not* optimised: it is the reference the speed-ups are measured against.
    """

    def __init__(self, tensors: dict[str, NDArray[Any]], config: QuasarNetConfig) -> None:
        self.config = config
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        self.convs = []
        for i in range(config.n_layers):
            kern = np.ascontiguousarray(
                np.transpose(t[f"convs.{i}.weight"], (2, 1, 0))
            )  # (K, C_in, C_out)
            bn = tuple(t[f"bns.{i}.{n}"] for n in ("running_mean", "running_var", "bias", "weight"))
            self.convs.append((kern, t[f"convs.{i}.bias"], bn))
        self.fc = (np.ascontiguousarray(t["fc_common.weight"].T), t["fc_common.bias"])
        self.bn_fc = tuple(
            t[f"bn_fc.{n}"] for n in ("running_mean", "running_var", "bias", "weight")
        )
        self.heads = [
            (
                np.ascontiguousarray(t[f"box.{h}.weight"].T),
                t[f"box.{h}.bias"],
                np.ascontiguousarray(t[f"offset.{h}.weight"].T),
                t[f"offset.{h}.bias"],
            )
            for h in range(config.n_heads)
        ]

    @staticmethod
    def _conv(
        x: NDArray[Any], w: NDArray[Any], b: NDArray[Any], stride: int, padding: str
    ) -> NDArray[Any]:
        k, _, n_f = w.shape
        n_in = x.shape[1]
        if padding == "same":
            total = max((-(-n_in // stride) - 1) * stride + k - n_in, 0)
            x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
            n_out = -(-n_in // stride)
        else:
            x = np.copy(x)
            n_out = (n_in - k) // stride + 1
        w2 = w.reshape(-1, n_f)
        out = np.zeros((x.shape[0], n_out, n_f))  # float64, as QuasarNP
        for j in range(n_out):
            i = j * stride
            out[:, j] = np.reshape(x[:, i : i + k, :], (x.shape[0], -1)) @ w2
        return out + b

    @staticmethod
    def _bn(x: NDArray[Any], p: tuple[NDArray[Any], ...], eps: float) -> NDArray[Any]:
        mean, var, beta, gamma = p
        return ((x - mean) / np.sqrt(var + eps)) * gamma + beta

    def __call__(self, x: NDArray[Any]) -> list[NDArray[Any]]:
        """Outputs as QuasarNP returns them: a list of n_heads arrays (N, 2 n_boxes)."""
        cfg = self.config
        h = np.copy(x)[:, :, None]
        for kern, bias, bn in self.convs:
            h = np.maximum(
                0, self._bn(self._conv(h, kern, bias, cfg.stride, cfg.padding), bn, cfg.bn_eps)
            )
        h = h.reshape(h.shape[0], -1)
        h = np.maximum(0, self._bn(h @ self.fc[0] + self.fc[1], self.bn_fc, cfg.bn_eps))
        outs = []
        for wb, bb, wo, bo in self.heads:
            box = 1 / (1 + np.exp(-(h @ wb + bb)))
            off = 1 / (1 + np.exp(-(h @ wo + bo)))
            if cfg.offset_rescale:
                off = cfg.offset_shift + cfg.offset_scale * off
            outs.append(np.concatenate([box, off], axis=1))
        return outs


def _time(fn: Callable[[], Any], *, budget: float) -> float:
    """Best wall-clock seconds per call of ``fn`` within about ``budget`` seconds.

    :func:`surveynet.bench.time_call` with three trials of ``budget / 3`` after a warm-up call
    (a first call longer than ``budget`` is timed once only).

    Parameters
    ----------
    fn : callable
        Function of no argument.
    budget : float
        Seconds to spend (besides the warm-up).

    Returns
    -------
    float
    """
    return time_call(fn, min_time=budget / 3.0, repeat=3)


def _desi_like(
    n: int, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Random DESI-shaped B/R/Z arrays (0.8 A pixels, float32)."""
    edges = {"b": (3600.0, 5800.0), "r": (5760.0, 7620.0), "z": (7520.0, 9824.0)}
    waves, fluxes, ivars = {}, {}, {}
    for b, (lo, hi) in edges.items():
        w = np.round(np.arange(lo, hi + 0.4, 0.8), 1)
        waves[b] = w
        fluxes[b] = rng.normal(1.0, 1.0, (n, w.size)).astype(np.float32)
        ivars[b] = rng.uniform(0.5, 2.0, (n, w.size)).astype(np.float32)
    return waves, fluxes, ivars


def _load_weights(seed: int) -> tuple[dict[str, NDArray[Any]], QuasarNetConfig, str]:
    """The 6-layer shared weights (or random ones of that architecture), config and a label."""
    from surveynet.quasar.engine import random_state_dict

    weights = _shared_weights()
    if weights is not None:
        from surveynet.config import from_dict
        from surveynet.quasar.convert import read_keras_quasarnet

        k = read_keras_quasarnet(weights)
        return k.tensors, from_dict(QuasarNetConfig, k.config), weights.name
    config = QuasarNetConfig(n_layers=6, padding="same")
    return random_state_dict(config, seed=seed), config, "random weights, 6-layer 'same' config"


def _inputs(config: QuasarNetConfig, n: int, seed: int) -> NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, config.n_input)).astype(np.float32)


def measure_path(
    path: str, batches: tuple[int, ...], *, budget: float, seed: int = 0
) -> dict[str, Any]:
    """Seconds per call of one inference path at each batch size (run in a fresh process).

    Parameters
    ----------
    path : {"torch", "numpy", "baseline"}
        Which implementation.
    batches : tuple of int
        Batch sizes.
    budget : float
        Timing budget per batch size, seconds.
    seed : int
        Seed of the inputs.

    Returns
    -------
    dict
        ``{"seconds": {batch: s}, "max_abs_diff": float, "threads": int}``; ``max_abs_diff`` is
        the largest difference from the baseline's outputs on 8 spectra.
    """
    tensors, config, _ = _load_weights(seed)
    x_all = _inputs(config, max(batches), seed)
    ref = np.stack(QuasarNPStyleBaseline(tensors, config)(x_all[:8]), axis=1)
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    if path == "torch":
        import torch

        from surveynet.quasar.model import QuasarNetTorch

        tmodel = QuasarNetTorch(config)
        tmodel.load_state_dict_numpy(tensors)
        fast = tmodel.eval().fused_for_inference()
        threads = torch.get_num_threads()

        def run(x: NDArray[Any]) -> NDArray[Any]:
            with torch.inference_mode():
                return fast(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]

    elif path == "numpy":
        from surveynet.quasar.engine import NumpyQuasarNet

        engine = NumpyQuasarNet(tensors, config, dtype=np.float32)

        def run(x: NDArray[Any]) -> NDArray[Any]:
            return engine(x)

    elif path == "baseline":
        base = QuasarNPStyleBaseline(tensors, config)

        def run(x: NDArray[Any]) -> NDArray[Any]:
            return np.stack(base(x), axis=1)

    else:
        raise ValueError(f"unknown path {path!r}")
    diff = float(np.abs(run(x_all[:8]) - ref).max())
    seconds = {bs: _time(lambda x=x_all[:bs]: run(x), budget=budget) for bs in batches}
    out = {"seconds": seconds, "max_abs_diff": diff, "threads": threads}
    if path == "numpy":
        out["gemm_gflops"] = gemm_gflops(n=1024)
    return out


def _measure_in_subprocess(
    path: str, batches: tuple[int, ...], *, budget: float, seed: int, threads: int | None = None
) -> dict[str, Any]:
    """Run :func:`measure_path` in a fresh interpreter.

    So the thread pools of torch (OpenMP) and numpy (OpenBLAS) never compete inside one process;
    ``threads`` caps both (env vars).
    """
    import json
    import subprocess
    import sys

    env = dict(os.environ)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)

    code = (
        "import json, sys\n"
        "from surveynet.quasar.bench import measure_path\n"
        f"r = measure_path({path!r}, {tuple(batches)!r}, budget={budget!r}, seed={seed!r})\n"
        "r['seconds'] = {str(k): v for k, v in r['seconds'].items()}\n"
        "sys.stdout.write('RESULT ' + json.dumps(r) + '\\n')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env=env,
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"bench worker for {path} failed: {res.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    out["seconds"] = {int(k): float(v) for k, v in out["seconds"].items()}
    return out


def run_bench(*, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Run the QuasarNET benchmark; returns the figures as a flat dict.

    Each inference path is timed in its own fresh Python process (best wall-clock time of
    repeated calls, after a warm-up call); preprocessing and the GEMM reference are timed here.

    Parameters
    ----------
    quick : bool
        Smaller batches and shorter timing (smoke test).
    seed : int
        Seed of the random inputs (and of the weights when the shared file is absent).
    """
    from surveynet.quasar.preprocess import preprocess_arrays

    rng = np.random.default_rng(seed)
    _, config, wname = _load_weights(seed)
    batches = QUICK_BATCHES if quick else BATCHES
    budget = 0.3 if quick else 1.5
    flops = config.flops()
    fig: dict[str, Any] = {
        "weights": wname,
        "architecture": (
            f"{config.n_layers} conv x {config.n_filters} '{config.padding}', "
            f"{config.n_heads} heads"
        ),
        "baseline": (
            "QuasarNP-style numpy forward re-implemented in surveynet.quasar.bench "
            "(not QuasarNP itself)"
        ),
        "torch_path": "QuasarNetTorch.fused_for_inference() (BatchNorm folded)",
        "timing": "best wall-clock of repeated calls; each path in its own process",
        "cpu_count": os.cpu_count() or 0,
        "load_average_start": round(os.getloadavg()[0], 2),
        "mflop_per_spectrum": flops / 1e6,
    }
    # Every path is timed with all cores and with one thread (--quick: one thread only); each
    # figure below is the better of the two (on a shared, oversubscribed machine, thread
    # synchronisation can cost more than it gains), and the thread count used is reported.
    rates: dict[str, dict[int, float]] = {}
    used: dict[str, dict[int, int]] = {}
    diffs = []
    for path in ("torch", "numpy", "baseline"):
        rates[path], used[path] = {}, {}
        for threads in (1,) if quick else (None, 1):
            r = _measure_in_subprocess(path, batches, budget=budget, seed=seed, threads=threads)
            if path != "baseline":
                diffs.append(r["max_abs_diff"])
            if "gemm_gflops" in r:
                key = "gemm_float32_gflops" + ("_1thread" if threads == 1 else "")
                fig[key] = r["gemm_gflops"]
            for bs, t in r["seconds"].items():
                if bs / t > rates[path].get(bs, 0.0):
                    rates[path][bs] = bs / t
                    used[path][bs] = int(r["threads"])
            log.info("%s timed with %s threads", path, r["threads"])
    fig["max_abs_diff_vs_baseline"] = max(diffs)
    for path, rr in rates.items():
        for bs, rate in rr.items():
            fig[f"{path}_b{bs}_spectra_per_s"] = rate
            fig[f"{path}_b{bs}_ms_per_spectrum"] = 1e3 / rate
            fig[f"{path}_b{bs}_threads"] = used[path][bs]
    for path, rr in rates.items():
        best_bs = max(rr, key=lambda b: rr[b])
        fig[f"{path}_best_batch"] = best_bs
        fig[f"{path}_best_gflops"] = rr[best_bs] * flops / 1e9
    base_best = max(rates["baseline"].values())
    fig["speedup_torch_vs_baseline_batch1"] = rates["torch"][1] / rates["baseline"][1]
    fig["speedup_torch_vs_baseline_best"] = max(rates["torch"].values()) / base_best
    fig["speedup_numpy_vs_baseline_batch1"] = rates["numpy"][1] / rates["baseline"][1]
    fig["speedup_numpy_vs_baseline_best"] = max(rates["numpy"].values()) / base_best

    n_pre = 256 if quick else 2048
    waves, fluxes, ivars = _desi_like(n_pre, rng)
    grid = GridConfig.log()
    t_pre = _time(lambda: preprocess_arrays(waves, fluxes, ivars, grid), budget=budget)
    fig["preprocess_spectra_per_s"] = n_pre / t_pre
    fig.update(read_preprocess_figures(quick=quick))
    fig.update(e2e_figures(quick=quick))
    fig["load_average_end"] = round(os.getloadavg()[0], 2)
    return fig


# ------------------------------------------------------------------------------- end to end
def e2e_model(workdir: Path) -> tuple[str, str]:
    """A model directory for the end-to-end figures and its label.

    The original 6-layer QuasarNET weights of the shared data converted by ``surveynet quasar
    convert`` (once per ``workdir``) when present, otherwise the bundled default model.

    Parameters
    ----------
    workdir : Path
        Where the converted model goes (``workdir/qn6``).

    Returns
    -------
    model : str
        Model directory or bundled name for ``--model``.
    label : str
        What the figures were made with.
    """
    import subprocess
    import sys

    from surveynet.quasar.config import DEFAULT_MODEL

    weights = _shared_weights()
    if weights is None:
        return DEFAULT_MODEL, f"bundled {DEFAULT_MODEL}"
    out = workdir / "qn6"
    if not (out / "model.safetensors").is_file():
        cmd = [sys.executable, "-m", "surveynet", "quasar", "convert", str(weights)]
        subprocess.run([*cmd, "--out", str(out), "--overwrite"], check=True, capture_output=True)
    return str(out), f"{weights.name} (converted)"


def e2e_figures(
    *, quick: bool = False, seed: int = 5, workdir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """End-to-end ``surveynet quasar predict``: spectra files to catalogue, whole processes.

    Simulated DESI coadds (with resolution matrices, as real files) are written to a scratch
    folder; ``surveynet quasar predict`` then runs as a fresh process (start-up, imports, model
    loading, reading, preprocessing, forward pass, catalogue writing all counted) in process
    (``--workers 0``) and on a local Dask cluster of 1 and 2 workers. Wall times are the best of
    ``repeat`` runs (:func:`surveynet.bench.time_process`); peak memory is the largest process's
    resident set (for Dask: the biggest worker or the client).

    Parameters
    ----------
    quick : bool
        200 spectra, one run each (smoke test); otherwise 2,000 spectra and 3 runs each. The
        spectra are written once as one file and once as 4 files (2 in quick mode).
    seed : int
        Seed of the mock.
    workdir : path, optional
        Folder for the mock and the model, kept and reused by later calls (default: a
        temporary folder, removed afterwards).

    Returns
    -------
    dict
        ``e2e_*`` figures: spectra/s, seconds and peak MB per mode, the Dask speed-up of 2
        workers over 1, the model, the file size and the row-block size.
    """
    import contextlib
    import sys
    import tempfile

    from surveynet.quasar.predict import BLOCK_ROWS
    from surveynet.sim.spectra import simulate_to_files

    n, n_files, repeat = (200, 2, 1) if quick else (2000, 4, 3)
    fig: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sn-e2e-")))
        else:
            work = Path(workdir) / f"quasar_e2e_{n}_{seed}"
            work.mkdir(parents=True, exist_ok=True)
        model, label = e2e_model(work)
        sets = {}
        for name, k in (("one", 1), ("many", n_files)):
            files = sorted((work / name).glob("coadd-*.fits"))
            if len(files) != k:
                files, _ = simulate_to_files(
                    work / name, n, seed, n_files=k, quiet=True, overwrite=True
                )
            sets[name] = [str(f) for f in files]
        fig["e2e_model"] = label
        fig["e2e_n_spectra"] = n
        fig["e2e_file_mb"] = round(Path(sets["one"][0]).stat().st_size / 1e6, 1)
        base = [sys.executable, "-m", "surveynet", "quasar", "predict", "--model", model]
        base += ["--quiet", "--overwrite", "--out", str(work / "cat.fits")]
        runs = {
            "1file_inprocess": [*base, "--workers", "0", *sets["one"]],
            f"{n_files}files_inprocess": [*base, "--workers", "0", *sets["many"]],
            f"{n_files}files_dask1": [*base, "--workers", "1", *sets["many"]],
            f"{n_files}files_dask2": [*base, "--workers", "2", *sets["many"]],
        }
        for name, cmd in runs.items():
            wall, peak = time_process(cmd, repeat=repeat)
            fig[f"e2e_{name}_spectra_per_s"] = n / wall
            fig[f"e2e_{name}_seconds"] = wall
            fig[f"e2e_{name}_peak_mb"] = peak
            log.info("e2e %s: %.2f s, %.0f MB", name, wall, peak)
        fig["e2e_dask_speedup_2_vs_1_workers"] = (
            fig[f"e2e_{n_files}files_dask2_spectra_per_s"]
            / fig[f"e2e_{n_files}files_dask1_spectra_per_s"]
        )
        fig["e2e_block_rows"] = BLOCK_ROWS
    return fig


def read_preprocess_figures(*, quick: bool = False, seed: int = 7) -> dict[str, Any]:
    """Read + rebin + normalise speed on one core, from a DESI coadd file to network inputs.

    Reads with the prediction reader (FLUX, IVAR, MASK, WAVELENGTH, FIBERMAP; checksums
    verified; no resolution matrices) and runs :func:`surveynet.quasar.preprocess.preprocess`
    onto the 443-bin log grid. Neither step uses BLAS threads: the figure is a one-core rate.

    Parameters
    ----------
    quick : bool
        200 spectra instead of 2,000.
    seed : int
        Seed of the mock.

    Returns
    -------
    dict
        ``read_spectra_per_s`` (prediction reader), ``preprocess_spectra_per_s`` and
        ``read_preprocess_spectra_per_s`` (the two together, each timed with
        :func:`surveynet.bench.time_call`).
    """
    import tempfile

    from surveynet.io.spectra import read_spectra
    from surveynet.quasar.preprocess import preprocess
    from surveynet.sim.spectra import simulate_to_files

    n = 200 if quick else 2000
    grid = GridConfig.log()
    with tempfile.TemporaryDirectory(prefix="surveynet-rp-") as tmp:
        (path,), _ = simulate_to_files(Path(tmp), n, seed, n_files=1, quiet=True)
        budget = 0.3 if quick else 1.5
        t_read = time_call(lambda: read_spectra(path, resolution=False), min_time=budget / 3)
        spec = read_spectra(path, resolution=False)
        t_pre = time_call(lambda: preprocess(spec, grid), min_time=budget / 3)
        t_both = time_call(
            lambda: preprocess(read_spectra(path, resolution=False), grid), min_time=budget / 3
        )
    return {
        "read_predict_hdus_spectra_per_s": n / t_read,
        "rebin_normalise_spectra_per_s": n / t_pre,
        "read_rebin_normalise_spectra_per_s": n / t_both,
    }
