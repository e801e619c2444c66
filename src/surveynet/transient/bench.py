"""``surveynet bench transient``: scoring throughput and the per-frame subtraction cost.

Figures (all timed with :func:`surveynet.bench.time_call` in this process):

- ``<model>_cutouts_per_s``: numpy-engine float32 throughput of each bundled transient model
  (batches of 2048 cutouts; fused fast path), its ``_mflop`` per cutout, and
  ``<model>_unfused_cutouts_per_s``: the layer-by-layer path (``fuse=False``) timed right after
  it, for an old-vs-new comparison under the same load;
- ``gmadet_cnn_cutouts_per_s``, ``braai_vgg6_cutouts_per_s``: the anchors' networks (random
  weights; same engine), and ``*_fraction_of_bound``: measured rate / (GEMM rate / FLOPs);
- ``*_torch_cutouts_per_s``: the same networks in torch (CPU, inference mode), for scale;
- ``gemm_gflops``: this machine's float32 matrix-multiply rate (the bound's numerator);
- ``frame_<n>_seconds``: registration + PSF-matched subtraction + detection of a simulated
  n x n pair (n = 2048; 1024 with ``--quick``), and ``frame_<n>_peak_mb``: the peak of the
  memory traced by ``tracemalloc`` during that call (numpy buffers included), plus
  ``max_rss_mb`` of the process.
"""

from __future__ import annotations

import logging
import resource
import time
import tracemalloc
from typing import Any

import numpy as np

from surveynet.bench import gemm_gflops, time_call

__all__ = ["bench_transient"]

log = logging.getLogger(__name__)


def _engine_rate(engine: Any, shape: tuple[int, ...], quick: bool) -> float:
    """Cutouts per second of ``engine`` on random inputs of ``shape``."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t = time_call(lambda: engine(x), min_time=0.2 if quick else 1.0, repeat=2 if quick else 3)
    return shape[0] / t


def _torch_rate(
    arch: str, config: dict[str, Any], tensors: dict[str, Any], shape: tuple[int, ...], quick: bool
) -> float:
    """Cutouts per second of the torch model (CPU, inference mode) on random inputs."""
    import torch

    from surveynet.registry import get_architecture

    model = get_architecture(arch)(**config).eval()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))

    def run() -> Any:
        with torch.inference_mode():
            return model.proba_real(x)

    t = time_call(run, min_time=0.2 if quick else 1.0, repeat=2 if quick else 3)
    return shape[0] / t


def bench_transient(quick: bool = False) -> dict[str, Any]:
    """Run the transient benchmark.

    Parameters
    ----------
    quick : bool
        Smaller batches and a 1024 x 1024 frame.

    Returns
    -------
    dict
        Figure name -> value.
    """
    import torch

    from surveynet.io.model import list_bundled_models, load_model
    from surveynet.registry import get_architecture, get_numpy_engine
    from surveynet.sim.images import ImageSimConfig, simulate_pair
    from surveynet.transient.arch import flops_per_sample, layers_for
    from surveynet.transient.config import DetectConfig
    from surveynet.transient.detect import detect_candidates
    from surveynet.transient.subtract import Frame, subtract

    out: dict[str, Any] = {}
    gf = gemm_gflops()
    out["gemm_gflops"] = round(gf, 1)
    n = 512 if quick else 2048
    # every numpy timing first: torch's OpenMP workers keep spinning after an inference call
    # and would slow the BLAS threads of the numpy engine that follows
    jobs: list[tuple[str, str, dict[str, Any], dict[str, Any], int, int, int, bool]] = []
    for m in list_bundled_models():
        if m["pipeline"] != "transient":
            continue
        saved = load_model(m["name"])
        c, s = int(saved.config["in_channels"]), int(saved.config["size"])
        jobs.append((m["name"], saved.architecture, saved.config, saved.tensors, c, s, n, False))
    for arch, c, s in (("gmadet_cnn", 1, 32), ("braai_vgg6", 3, 63)):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = get_architecture(arch)()
        tensors = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        jobs.append((arch, arch, {}, tensors, c, s, 256 if quick else 1024, True))
    for name, arch, config, tensors, c, s, nb, anchor in jobs:
        eng = get_numpy_engine(arch)(tensors, config)
        fl = flops_per_sample(layers_for(arch, config), c, s)
        rate = _engine_rate(eng, (nb, c, s, s), quick)
        out[f"{name}_cutouts_per_s"] = round(rate)
        out[f"{name}_mflop"] = round(fl / 1e6, 2)
        if not anchor:
            slow = get_numpy_engine(arch)(tensors, config, fuse=False)
            out[f"{name}_unfused_cutouts_per_s"] = round(_engine_rate(slow, (nb, c, s, s), quick))
        if anchor:
            out[f"{name}_fraction_of_bound"] = round(rate / (gf * 1e9 / fl), 3)
    for name, arch, config, tensors, c, s, nb, anchor in jobs:
        fl = flops_per_sample(layers_for(arch, config), c, s)
        trate = _torch_rate(arch, config, tensors, (nb, c, s, s), quick)
        out[f"{name}_torch_cutouts_per_s"] = round(trate)
        if anchor:
            out[f"{name}_torch_fraction_of_bound"] = round(trate / (gf * 1e9 / fl), 3)
    side = 1024 if quick else 2048
    cfg = ImageSimConfig(
        nx=side,
        ny=side,
        n_stars=int(250 * (side / 512) ** 2),
        n_galaxies=int(40 * (side / 512) ** 2),
        n_transients=int(30 * (side / 512) ** 2),
    )
    pair = simulate_pair(cfg, np.random.default_rng(0))

    def frame(p: Any, wcs: Any, hdr: Any) -> Frame:
        return Frame(
            p.astype(np.float64),
            hdr,
            wcs,
            None,
            float(hdr["GAIN"]),
            float(hdr["SATURATE"]),
            float(hdr["MAGZP"]),
        )

    sci = frame(pair.science, pair.wcs_sci, pair.header_sci)
    ref = frame(pair.reference, pair.wcs_ref, pair.header_ref)
    dc = DetectConfig()

    def run() -> int:
        sub = subtract(
            sci,
            ref,
            kernel_size=dc.kernel_size,
            kernel_order=dc.kernel_order,
            n_stars=dc.n_kernel_stars,
        )
        return len(detect_candidates(sub, sci, dc))

    run()  # warm-up (imports, FFT plans)
    tracemalloc.start()
    t0 = time.perf_counter()
    ncand = run()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = min(dt, time_call(run, min_time=0.0, repeat=2, warmup=False))
    out[f"frame_{side}_seconds"] = round(t, 3)
    out[f"frame_{side}_peak_mb"] = round(peak / 2**20, 1)
    out[f"frame_{side}_candidates"] = ncand
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out
