"""Issue 22: can a spectral (FFT) convolution beat the im2col GEMM forward of QuasarNET?

The 6-layer QuasarNET forward costs 43.8 MFLOP per spectrum as direct convolution (kernel 10,
stride 2, 100 filters), and the numpy engine runs it at about 71 % of this machine's float32
GEMM rate. A convolution theorem version needs fewer operations: each stride-2 layer is a
stride-1 correlation of its polyphase input (N, L/2, 2 C) with a 5-tap kernel, which in the
frequency domain is one complex (2 C x C_out) product per frequency (about 2.2x fewer
floating-point operations on layer 2). This script measures, side by side on 2,000 random
spectra and the original weights converted by ``surveynet quasar convert``:

* the engine's im2col forward (``NumpyQuasarNet.forward``);
* the FFT forward with ``numpy.fft`` (no import cost) and with ``scipy.fft`` (2 workers);
* the import time of ``scipy.fft`` in a fresh interpreter, which the CLI would pay.

usage: python experiments/speed/fft_conv.py MODEL_DIR [--chunks 37,100,200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from surveynet.nn import numpy_ops as ops
from surveynet.quasar.engine import load_engine


def geometry(length: int, k: int, s: int, padding: str) -> tuple[int, int, int, int]:
    """Left padding, output length, polyphase taps and FFT length of one layer."""
    left, right = ops.resolve_padding(length, k, s, padding)
    lp = length + left + right
    n_out = (lp - k) // s + 1
    taps = -(-k // s)
    n_fft = max(-(-lp // s), n_out + taps - 1)  # no circular wrap for any valid output
    return left, n_out, taps, n_fft


def spectrum(w: np.ndarray, s: int, n_fft: int, taps: int) -> np.ndarray:
    """Conjugate rfft of the polyphase kernel: (n_fft // 2 + 1, s * C_in, C_out), complex64."""
    c_out, c_in, k = w.shape
    wp = np.zeros((c_out, c_in, taps * s))
    wp[:, :, :k] = w
    wp = wp.reshape(c_out, c_in, taps, s).transpose(2, 3, 1, 0).reshape(taps, s * c_in, c_out)
    full = np.zeros((n_fft, s * c_in, c_out))
    full[:taps] = wp
    return np.ascontiguousarray(np.conj(np.fft.rfft(full, axis=0)).astype(np.complex64))


class FFTForward:
    """QuasarNET forward with layers 2.. as polyphase FFT correlations (layer 1 stays im2col)."""

    def __init__(self, engine, backend: str) -> None:
        self.e = engine
        cfg = engine.config
        if backend == "scipy":
            import scipy.fft as sfft

            self.rfft = lambda a, axis: sfft.rfft(a, axis=axis, workers=2)
            self.irfft = lambda a, n, axis: sfft.irfft(a, n=n, axis=axis, workers=2)
        else:
            self.rfft = lambda a, axis: np.fft.rfft(a, axis=axis)
            self.irfft = lambda a, n, axis: np.fft.irfft(a, n=n, axis=axis)
        self.layers = []
        length, c_in = cfg.n_input, 1
        for i, (wmat, b) in enumerate(engine._convs):
            k, s = cfg.kernel_size, cfg.stride
            w = wmat.reshape(k, c_in, -1).transpose(2, 1, 0).astype(np.float64)
            left, n_out, taps, n_fft = geometry(length, k, s, cfg.padding)
            spec = spectrum(w, s, n_fft, taps) if i else None
            self.layers.append((wmat, b, left, n_out, n_fft, spec, length, c_in))
            length, c_in = n_out, w.shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        e, cfg = self.e, self.e.config
        h = x[:, :, None]
        for wmat, b, left, n_out, n_fft, spec, length, c_in in self.layers:
            if spec is None:
                h = ops.conv1d_nlc(
                    h, wmat, b, kernel_size=cfg.kernel_size, stride=cfg.stride, padding=cfg.padding
                )
            else:
                n, s = h.shape[0], cfg.stride
                xp = np.zeros((n, n_fft * s, c_in), np.float32)
                xp[:, left : left + length] = h
                pf = self.rfft(xp.reshape(n, n_fft, s * c_in), 1)
                yf = np.empty((n, pf.shape[1], spec.shape[2]), np.complex64)
                np.matmul(pf.transpose(1, 0, 2), spec, out=yf.transpose(1, 0, 2))
                h = self.irfft(yf, n_fft, 1)[:, :n_out] + b
            np.maximum(h, 0, out=h)
        h = h.reshape(h.shape[0], -1)
        w, b = e._fc
        h = np.maximum(h @ w + b, 0)
        w, b = e._heads
        o = ops.sigmoid(h @ w + b).reshape(h.shape[0], cfg.n_heads, 2 * cfg.n_boxes)
        o[:, :, cfg.n_boxes :] = o[:, :, cfg.n_boxes :] * cfg.offset_scale + cfg.offset_shift
        return o


def best(f, repeat: int = 3) -> float:
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--chunks", default="37,100,200")
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    eng = load_engine(args.model)
    x = np.random.default_rng(0).standard_normal((args.n, eng.config.n_input)).astype(np.float32)
    ref = eng.forward(x)
    print(f"im2col engine (chunk {eng.chunk_size}): {best(lambda: eng.forward(x)):.3f} s "
          f"for {args.n} spectra")
    for backend in ("numpy", "scipy"):
        f = FFTForward(eng, backend)

        def run(bs: int, f=f) -> np.ndarray:
            return np.concatenate([f(x[i : i + bs]) for i in range(0, args.n, bs)])

        err = float(np.abs(run(100) - ref).max())
        for bs in (int(c) for c in args.chunks.split(",")):
            print(f"fft forward ({backend}.fft, chunk {bs}): {best(lambda bs=bs: run(bs)):.3f} s;"
                  f" max |difference| to the engine {err:.1e}")
    cmd = [sys.executable, "-X", "importtime", "-c", "import numpy, scipy.fft"]
    ts = []
    for _ in range(3):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
        ts.append(int(out.strip().splitlines()[-1].split("|")[1]) / 1e6)
    print(f"import scipy.fft in a fresh interpreter: {min(ts):.3f} s (best of 3)")


if __name__ == "__main__":
    main()
