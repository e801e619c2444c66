"""Issue 19 point 8: NN, linear and forest on clustered and null mocks (one shared sky).

For ``--n-mocks`` clustered mocks (known non-linear selection) and as many null mocks (same maps
and footprint, F = 1), all at ``--nside``:

1. train SYSNet (dnnp, 5 folds x ``--nchains`` x ``--nepochs``), the closed-form linear model and
   the regressis-style forest with ``surveynet.sysnet.train.train_sysnet``;
2. mean density against every map (``--nbins`` equal-count bins) before and after correction,
   also with the true selection (the oracle); chi2 per method with two error models:
   (a) Poisson-like errors from the pixel scatter; (b) "clustering" errors, the variance of the
   uncorrected curves over the null mocks (lognormal clustering + Poisson, as the DR7 paper's
   mocks), diagonal;
3. pseudo-C_ell of the corrected delta (shot noise subtracted) in 6 bins at 2 <= ell < 100
   against the realised field's ``CL_DELTA_FOOT``; mean over mocks of (C_method - C_true) in units
   of the scatter over mocks.

Writes ``summary.json`` and PNGs into ``--out``. Example (what the closing note reports)::

    nice -n 10 python experiments/sysnet/figures.py --nside 64 --n-mocks 10 --nepochs 40 \
        --nchains 3 --out figures-sysnet
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

from surveynet.sim.sysmaps import simulate_sysmaps, write_mock
from surveynet.sysnet.catalog import read_predictions
from surveynet.sysnet.config import config_from_mapping
from surveynet.sysnet.data import read_table
from surveynet.sysnet.evaluate import delta_cl, mean_density
from surveynet.sysnet.postprocess import combine_chains
from surveynet.sysnet.train import train_sysnet

METHODS = ("none", "oracle", "nn", "linear", "forest")
LBINS = np.array([2, 8, 16, 30, 50, 75, 100])


def run_mock(path: Path, work: Path, args: argparse.Namespace) -> dict[str, dict[str, list]]:
    """Train on one mock; return per-method curves and binned C_ell."""
    cfg = config_from_mapping(
        {
            "input_path": str(path),
            "do_kfold": True,
            "nepochs": args.nepochs,
            "nchains": args.nchains,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "train": {
                "forest_trees": args.trees,
                "split": args.split,
                "baselines": [b for b in args.baselines.split(",") if b],
                "l1_alpha": args.l1,
            },
            "model": {"nn_structure": [int(v) for v in args.nn_structure.split(",")]},
            "data": {
                "axes": None if args.axes == "all" else [int(a) for a in args.axes.split(",")]
            },
        }
    )
    run = train_sysnet(cfg, work, overwrite=True)
    d = read_table(path)
    sels = {"none": np.ones(d.n)}
    ft = d.truth["F_TRUE"]
    sels["oracle"] = ft / ft.mean()
    idx = {int(h): i for i, h in enumerate(d.hpix)}
    for m in ("nn", "linear", "forest"):
        fname = "nn-weights.fits" if m == "nn" else f"{m}-weights.fits"
        if not (run / fname).exists():
            continue
        hp_, w, _ = read_predictions(run / fname)
        y = np.empty(d.n)
        y[[idx[int(h)] for h in hp_]] = combine_chains(w)
        sels[m] = y / y.mean()
    ring = d.ring_hpix()
    ell = np.arange(3 * d.nside)
    out = {}
    for m, s in sels.items():
        md = mean_density(d.label, d.fracgood, s, d.features, args.nbins)
        cl = delta_cl(d.label, d.fracgood, s, ring, d.nside)
        out[m] = {
            "y": md["y"].ravel().tolist(),
            "err": md["err"].ravel().tolist(),
            "cl": [float(cl[(ell >= a) & (ell < b)].mean()) for a, b in itertools.pairwise(LBINS)],
        }
    tr = d.cl_truth["CL_DELTA_FOOT"]
    out["truth"] = {
        "cl": [float(tr[(ell >= a) & (ell < b)].mean()) for a, b in itertools.pairwise(LBINS)]
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the study."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nside", type=int, default=64)
    p.add_argument("--n-mocks", type=int, default=10)
    p.add_argument("--nepochs", type=int, default=40)
    p.add_argument("--nchains", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--nbins", type=int, default=10)
    p.add_argument("--map-seed", type=int, default=2026)
    p.add_argument(
        "--split",
        default="random",
        choices=("random", "geometric"),
        help="NN and linear k-fold over random pixels or spatial blocks",
    )
    p.add_argument("--axes", default="all", help="NN/baseline feature columns, e.g. 0,1,2,4,7")
    p.add_argument("--nn-structure", default="4,20", help="nb_layers,nb_units of the dnnp")
    p.add_argument("--l1", type=float, default=-1.0, help="train.l1_alpha (< 0: off)")
    p.add_argument("--baselines", default="linear,forest", help="comma list; '' for NN only")
    p.add_argument("--out", default="figures-sysnet")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, list] = {"clustered": [], "null": []}
    t0 = time.perf_counter()
    for kind in ("null", "clustered"):
        for i in range(args.n_mocks):
            seed = 1000 + i
            mock = simulate_sysmaps(args.nside, seed, null=kind == "null", map_seed=args.map_seed)
            path = out / "mocks" / f"{kind}-{i:02d}.fits"
            write_mock(path, mock, seed=seed, null=kind == "null", overwrite=True)
            r = run_mock(path, out / "work" / f"{kind}-{i:02d}", args)
            res[kind].append(r)
            chi = {
                m: round(float(np.sum(((np.array(r[m]["y"]) - 1) / np.array(r[m]["err"])) ** 2)))
                for m in METHODS
                if m in r
            }
            print(
                f"{kind} mock {i}: {time.perf_counter() - t0:.0f} s; Poisson chi2 {chi}", flush=True
            )
    summary = summarise(res, args)
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "raw.json").write_text(json.dumps(res) + "\n")
    plot(res, summary, out)
    print(json.dumps({k: v for k, v in summary.items() if k != "args"}, indent=1))
    return 0


def summarise(res: dict[str, list], args: argparse.Namespace) -> dict:
    """chi2 tables and C_ell offsets."""
    null_none = np.array([r["none"]["y"] for r in res["null"]])
    var_clu = null_none.var(axis=0, ddof=1)
    nb = null_none.shape[1]
    s: dict = {"args": vars(args), "n_bins_total": nb}
    for kind in ("clustered", "null"):
        rows = res[kind]
        tab = {}
        methods = [m for m in METHODS if m in rows[0]]
        for m in methods:
            ys = np.array([r[m]["y"] for r in rows])
            es = np.array([r[m]["err"] for r in rows])
            chi_p = (((ys - 1) / es) ** 2).sum(axis=1)
            chi_c = (((ys - 1) ** 2) / var_clu).sum(axis=1)
            tab[m] = {
                "chi2_poisson_mean": float(chi_p.mean()),
                "chi2_clustering_mean": float(chi_c.mean()),
                "chi2_clustering_per_bin": float(chi_c.mean() / nb),
            }
        for m in methods[2:]:
            tab[m]["chi2_poisson_over_oracle"] = (
                tab[m]["chi2_poisson_mean"] / tab["oracle"]["chi2_poisson_mean"]
            )
            tab[m]["chi2_clustering_over_oracle"] = (
                tab[m]["chi2_clustering_mean"] / tab["oracle"]["chi2_clustering_mean"]
            )
        truth = np.array([r["truth"]["cl"] for r in rows])
        for m in methods:
            cl = np.array([r[m]["cl"] for r in rows])
            diff = cl - truth
            sig = np.array([r["oracle"]["cl"] for r in rows]) - truth
            scatter = sig.std(axis=0, ddof=1)
            tab[m]["cl_mean_offset_sigma"] = (diff.mean(axis=0) / scatter).round(2).tolist()
        s[kind] = tab
    s["lbins"] = LBINS.tolist()
    return s


def plot(res: dict[str, list], summary: dict, out: Path) -> None:
    """chi2 bar chart and C_ell offsets."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    for j, kind in enumerate(("clustered", "null")):
        ax = fig.add_subplot(1, 2, j + 1)
        ms = list(summary[kind])
        vals = [summary[kind][m]["chi2_clustering_per_bin"] for m in ms]
        ax.bar(ms, vals)
        ax.axhline(1.1, color="r", ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{kind} mocks: mean-density chi2/bin (null-mock errors)")
    fig.tight_layout()
    fig.savefig(out / "chi2.png", dpi=90)
    fig = Figure(figsize=(10, 4))
    lc = 0.5 * (LBINS[:-1] + LBINS[1:])
    for j, kind in enumerate(("clustered", "null")):
        ax = fig.add_subplot(1, 2, j + 1)
        truth = np.array([r["truth"]["cl"] for r in res[kind]]).mean(0)
        for m in [m for m in METHODS if m in res[kind][0]]:
            ax.plot(
                lc, np.array([r[m]["cl"] for r in res[kind]]).mean(0) / truth, label=m, marker="o"
            )
        ax.axhline(1, color="k")
        ax.set_xlabel("ell")
        ax.set_ylabel("<C_ell> / <C_ell true>")
        ax.set_title(kind)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "cl_ratio.png", dpi=90)


if __name__ == "__main__":
    raise SystemExit(main())
