"""
QuasarNET: from linear regression to a quasar classifier
========================================================

A runnable tutorial that walks the usual path of a machine-learning course, with surveynet doing
the astronomy:

1. **Linear regression, analytically**: the normal equations ``(AᵀA) w = Aᵀy``.
2. **The same by gradient descent**: the loss ``|Aw - y|²/n`` and its gradient, step by step,
   ending at the analytic answer.
3. **A small neural network** (PyTorch): a two-layer perceptron learns a non-linear function that
   no straight line can fit; same loss, gradients by autograd, the Adam optimiser.
4. **QuasarNET on mock spectra** with the ``surveynet`` command line: simulate DESI-like spectra,
   ``surveynet quasar prepare`` / ``train`` / ``predict`` / ``evaluate``, then the purity and
   completeness curves against the confidence threshold (``purity_completeness.png``).

Run it from a checkout with::

    python docs/tutorial/quasarnet_tutorial.py --out tutorial_out          # a few minutes
    python docs/tutorial/quasarnet_tutorial.py --out tutorial_out --fast   # CI settings, < 1 min

Every step writes its figure into ``--out`` and prints what it found. Each command of step 4 is
the one a user would type in a shell; here it is run in-process through ``surveynet.cli.main``.
The documentation site runs it with ``--fast`` (400 training spectra, 2 epochs, 16 filters), so
its figures show the mechanics, not the accuracy of the bundled model (:doc:`../models`).
"""

# %%
# Steps 1 and 2: a straight line, solved and then learnt
# ------------------------------------------------------
# The design matrix ``A = [x, 1]`` turns the fit of ``y = a x + b`` into a linear system;
# gradient descent on the mean squared error reaches the same ``(a, b)``.

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def linear_regression(out: Path, rng: np.random.Generator, fast: bool) -> dict[str, float]:
    """Steps 1 and 2: fit y = a x + b analytically and by gradient descent."""
    from surveynet.plots import new_axes, save_figure

    n = 200
    a_true, b_true = 2.5, -1.0
    x = rng.uniform(-2, 2, n)
    y = a_true * x + b_true + rng.normal(0, 0.5, n)

    # 1. analytic: design matrix A = [x, 1]; solve (A^T A) w = A^T y
    design = np.column_stack([x, np.ones(n)])
    w_exact = np.linalg.solve(design.T @ design, design.T @ y)

    # 2. gradient descent on L(w) = |A w - y|^2 / n, gradient 2 A^T (A w - y) / n
    w = np.zeros(2)
    lr, steps = 0.1, 200 if fast else 1000
    losses = []
    for _ in range(steps):
        resid = design @ w - y
        losses.append(float(resid @ resid / n))
        w -= lr * 2 * design.T @ resid / n
    fig, ax = new_axes(figsize=(9, 3.5))
    ax.remove()
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(x, y, ".", ms=3, label="data")
    xs = np.linspace(-2, 2, 10)
    ax1.plot(
        xs, w_exact[0] * xs + w_exact[1], label=f"analytic a={w_exact[0]:.3f} b={w_exact[1]:.3f}"
    )
    ax1.plot(xs, w[0] * xs + w[1], "--", label=f"gradient descent a={w[0]:.3f} b={w[1]:.3f}")
    ax1.legend(fontsize=7)
    ax2.semilogy(losses)
    ax2.set_xlabel("step")
    ax2.set_ylabel("mean squared error")
    save_figure(fig, out / "1_linear_regression.png")
    print(f"[1] analytic fit a={w_exact[0]:.4f}, b={w_exact[1]:.4f} (truth {a_true}, {b_true})")
    print(
        f"[2] gradient descent after {steps} steps: a={w[0]:.4f}, b={w[1]:.4f}; "
        f"max |w - w_exact| = {np.abs(w - w_exact).max():.2e}"
    )
    return {
        "a_exact": float(w_exact[0]),
        "b_exact": float(w_exact[1]),
        "a_gd": float(w[0]),
        "b_gd": float(w[1]),
    }


# %%
# Step 3: a small network
# -----------------------
# ``sin(3x)`` is beyond any straight line; a perceptron with one hidden layer of 32 ``tanh``
# units fits it, trained with the same loss by PyTorch's autograd and Adam.


def small_network(out: Path, seed: int, fast: bool) -> dict[str, float]:
    """Step 3: a two-layer perceptron learns y = sin(3x) + noise."""
    import torch

    from surveynet.plots import new_axes, save_figure

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(512, 1, generator=gen) * 4 - 2
    y = torch.sin(3 * x) + 0.1 * torch.randn(x.shape, generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    epochs = 300 if fast else 1500
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.mean((net(x) - y) ** 2)
        loss.backward()
        opt.step()
    mse = float(loss.detach())
    # the best straight line for comparison
    design = torch.cat([x, torch.ones_like(x)], 1)
    w = torch.linalg.lstsq(design, y).solution
    line_mse = float(torch.mean((design @ w - y) ** 2))
    fig, ax = new_axes()
    xs = torch.linspace(-2, 2, 200)[:, None]
    with torch.no_grad():
        ax.plot(x[:, 0], y[:, 0], ".", ms=2, color="0.6", label="data")
        ax.plot(xs[:, 0], net(xs)[:, 0], label=f"MLP (MSE {mse:.3f})")
        ax.plot(
            xs[:, 0],
            (torch.cat([xs, torch.ones_like(xs)], 1) @ w)[:, 0],
            "--",
            label=f"best line (MSE {line_mse:.3f})",
        )
    ax.legend(fontsize=8)
    save_figure(fig, out / "3_small_network.png")
    print(f"[3] two-layer network MSE {mse:.4f} vs best straight line {line_mse:.4f}")
    return {"mlp_mse": mse, "line_mse": line_mse}


# %%
# Step 4: QuasarNET with the command line
# ---------------------------------------
# Mock DESI coadds for training and testing (``surveynet.sim.spectra.simulate_to_files``, the
# library twin of ``surveynet simulate spectra``), then ``prepare`` (rebin onto the 443-pixel
# log-wavelength grid, normalise, attach the labels), ``train``, ``predict`` with the numpy
# engine and ``evaluate`` against the truth.


def quasarnet(out: Path, seed: int, fast: bool) -> dict[str, float]:
    """Step 4: simulate, prepare, train, predict and evaluate QuasarNET with the CLI."""
    from surveynet.cli import main
    from surveynet.sim.spectra import simulate_to_files

    n_train, n_test = (400, 200) if fast else (6000, 2000)
    epochs = 2 if fast else 15
    small = ["--set", "model.n_filters=16", "--set", "model.n_fc=32"] if fast else []
    t0 = time.perf_counter()
    train_files, train_truth = simulate_to_files(
        out / "mock_train", n=n_train, seed=seed, n_files=1, overwrite=True
    )
    test_files, test_truth = simulate_to_files(
        out / "mock_test", n=n_test, seed=seed + 1, n_files=2, overwrite=True
    )
    print(
        f"[4] simulated {n_train} training and {n_test} test spectra "
        f"in {time.perf_counter() - t0:.0f} s"
    )

    def run(*argv: str) -> None:
        print("    $ surveynet " + " ".join(argv))
        rc = main([*argv])
        if rc != 0:
            raise SystemExit(f"command failed with exit status {rc}")

    run(
        "quasar",
        "prepare",
        *map(str, train_files),
        "--truth",
        str(train_truth),
        "--out",
        str(out / "train.npz"),
        "--overwrite",
        "--quiet",
    )
    run(
        "quasar",
        "train",
        str(out / "train.npz"),
        "--out",
        str(out / "model"),
        "--seed",
        str(seed),
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "model.n_layers=6",
        "--set",
        "model.padding=same",
        *small,
        "--overwrite",
        "--quiet",
    )
    run(
        "quasar",
        "predict",
        *map(str, test_files),
        "--model",
        str(out / "model"),
        "--out",
        str(out / "catalog.fits"),
        "--workers",
        "0",
        "--overwrite",
        "--quiet",
    )
    run(
        "quasar",
        "evaluate",
        str(out / "catalog.fits"),
        "--truth",
        str(test_truth),
        "--out",
        str(out / "evaluate"),
        "--spectra",
        str(test_files[0]),
        "--model",
        str(out / "model"),
        "--overwrite",
    )
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    print(f"[4] purity/completeness curve: {out / 'evaluate' / 'purity_completeness.png'}")
    return {
        k: metrics[k]
        for k in (
            "crossover_c_th",
            "purity_at_crossover",
            "completeness_at_crossover",
            "sigma_dv_kms",
            "catastrophic_rate",
        )
    }


# %%
# The script
# ----------
# ``main`` parses ``--out``, ``--fast`` and ``--seed``, runs the four steps and writes
# ``summary.json``. The figures below are those it wrote, in order.


def main(argv: list[str] | None = None) -> int:
    """Run the tutorial; returns 0."""
    parser = argparse.ArgumentParser(description="From linear regression to QuasarNET.")
    parser.add_argument("--out", default="tutorial_out", help="output folder")
    parser.add_argument("--fast", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random step")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    summary = {}
    summary.update(linear_regression(out, rng, args.fast))
    summary.update(small_network(out, args.seed, args.fast))
    summary.update(quasarnet(out, args.seed, args.fast))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    status = main()
    if status:
        sys.exit(status)
