"""Issue 19 point 8: the information bound on the mocks (an ideal regressor, as dla/ideal_search).

Is the over-correction of NN, linear and forest (mean-density chi2 well below the oracle's, C_ell
suppressed at ell < 16, also on null mocks) a method problem or an information limit?

The *ideal* regressor knows the mock's exact functional form of the selection
(:func:`surveynet.sim.sysmaps.simulate_sysmaps`)::

    F = A [clip(1 + b1 z(EBV) + b2 z(seeing_r) + b3 z(lnHI), 0.1) (1 - d + d s((depth_r - m) / w))
           + c nstar / median(nstar)]

with 8 free parameters (A, b1..b3, d, m, w, c; s the logistic function), fitted by Poisson
likelihood of ``label ~ Poisson(fracgood F)`` with the *same* k-fold protocol as ``sysnet train``
(``make_partitions``: fit on train + valid, predict the test fold, every pixel once), started
from the truth and from F = const (best likelihood kept). Its only error is the chance
correlation between the clustering field (+ shot noise) and the smooth maps: whatever it removes
beyond the oracle is out of reach of any regressor of the maps. ``ideal_insample`` is the same
fit on all pixels (no k-fold), to show the k-fold does not change the picture.

Same mocks, mean-density bins and C_ell bands as ``figures.py`` (``--compare RAW`` merges that
script's ``raw.json`` rows of the same mocks, to put NN / linear / forest into one table). The
C_ell offsets are given in two units: ``sigma_oracle`` (figures.py: the scatter over mocks of the
oracle's C_ell minus the realised field's, shot noise and masking only) and ``sigma_cv`` (the
scatter over mocks of the realised field's C_ell band power: the cosmic-variance error bar a
measurement carries).

Example (what the closing note reports; ~1 min at nside 32, ~5 min at 64 on one core)::

    nice -n 10 python experiments/sysnet/ideal_fit.py --nside 32 --n-mocks 10 \
        --compare /tmp/sn/fig32/raw.json --compare /tmp/sn/fig32axes/raw.json:_axes5 \
        --out experiments/sysnet/results/ideal-nside32.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from surveynet.sim.sysmaps import FEATURE_NAMES, simulate_sysmaps
from surveynet.sysnet.evaluate import delta_cl, mean_density
from surveynet.sysnet.preprocess import make_partitions

LBINS = np.array([2, 8, 16, 30, 50, 75, 100])
COLS = {n: FEATURE_NAMES.index(n) for n in ("EBV", "lnHI", "nstar", "depth_r", "seeing_r")}


def selection_model(theta: np.ndarray, x: np.ndarray, ref: dict[str, float]) -> np.ndarray:
    """The mock's selection form with parameters ``theta`` (8,); ``ref`` holds z-score stats."""
    loga, b1, b2, b3, dlogit, m, logw, logc = theta

    def z(name: str) -> np.ndarray:
        return (x[:, COLS[name]] - ref[name + "_mu"]) / ref[name + "_sd"]

    lin = np.clip(1.0 + b1 * z("EBV") + b2 * z("seeing_r") + b3 * z("lnHI"), 0.1, None)
    d = expit(dlogit)
    drop = expit((x[:, COLS["depth_r"]] - m) / np.exp(logw))
    contam = np.exp(logc) * x[:, COLS["nstar"]] / ref["nstar_med"]
    return np.exp(loga) * (lin * (1.0 - d + d * drop) + contam)


def fit_ideal(x: np.ndarray, y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, dict]:
    """Poisson maximum likelihood of the selection form on (x, y, f); two starts."""
    ref = {}
    for k in ("EBV", "seeing_r", "lnHI"):
        ref[k + "_mu"], ref[k + "_sd"] = float(x[:, COLS[k]].mean()), float(x[:, COLS[k]].std())
    ref["nstar_med"] = float(np.median(x[:, COLS["nstar"]]))
    nbar = float(y.sum() / f.sum())
    dr = x[:, COLS["depth_r"]]
    m15 = float(np.percentile(dr, 15))

    def nll(th: np.ndarray) -> float:
        lam = np.maximum(f * selection_model(th, x, ref), 1e-12)
        return float(np.sum(lam - y * np.log(lam)))

    # truth-shaped start (A absorbs nbar and the <F> = 1 normalisation) and a flat start
    starts = [
        np.array(
            [
                np.log(nbar / 1.1),
                -0.06,
                0.04,
                -0.03,
                np.log(0.4 / 0.6),
                m15,
                np.log(0.08),
                np.log(0.15),
            ]
        ),
        np.array([np.log(nbar), 0.0, 0.0, 0.0, -4.0, m15, np.log(0.1), np.log(1e-3)]),
    ]
    best = None
    for s0 in starts:
        r = minimize(nll, s0, method="L-BFGS-B", options={"maxiter": 2000})
        if best is None or r.fun < best.fun:
            best = r
    assert best is not None
    return best.x, ref


def kfold_ideal(data: dict, seed: int = 85, split: str = "random") -> np.ndarray:
    """Out-of-fold predictions of the ideal fit with sysnet train's partitions."""
    import healpy as hp

    n = len(data["y"])
    nest = hp.ring2nest(data["nside"], data["hpix"])
    parts = make_partitions(
        n, do_kfold=True, nfolds=5, seed=seed, split=split, nest_hpix=nest, nside=data["nside"]
    )
    pred = np.full(n, np.nan)
    seen = np.zeros(n, int)
    for p in parts:
        fit = np.concatenate([p.train, p.valid])
        assert not np.intersect1d(fit, p.test).size, "test rows leak into the fit"
        th, ref = fit_ideal(data["x"][fit], data["y"][fit], data["f"][fit])
        pred[p.test] = selection_model(th, data["x"][p.test], ref)
        seen[p.test] += 1
    assert np.all(seen == 1), "k-fold must predict every pixel exactly once"
    return pred


def run_mock(nside: int, seed: int, null: bool, map_seed: int, nbins: int, split: str) -> dict:
    """Curves and C_ell bands for none / oracle / ideal / ideal_insample on one mock."""
    mk = simulate_sysmaps(nside, seed, null=null, map_seed=map_seed)
    data = {"x": mk.features, "y": mk.label, "f": mk.fracgood, "hpix": mk.hpix, "nside": nside}
    th, ref = fit_ideal(mk.features, mk.label, mk.fracgood)
    sels = {
        "none": np.ones(len(mk.label)),
        "oracle": mk.f_true / mk.f_true.mean(),
        "ideal": kfold_ideal(data, split=split),
        "ideal_insample": selection_model(th, mk.features, ref),
    }
    ell = np.arange(3 * nside)
    ring = mk.hpix  # mocks are RING
    out: dict = {}
    for m, s in sels.items():
        s = s / s.mean()
        md = mean_density(mk.label, mk.fracgood, s, mk.features, nbins)
        cl = delta_cl(mk.label, mk.fracgood, s, ring, nside)
        out[m] = {
            "y": md["y"].ravel().tolist(),
            "err": md["err"].ravel().tolist(),
            "cl": [float(cl[(ell >= a) & (ell < b)].mean()) for a, b in itertools.pairwise(LBINS)],
            "rms_dF": float(np.std(s - sels["oracle"] / sels["oracle"].mean())),
        }
    tr = mk.cl_delta_foot
    out["truth"] = {
        "cl": [float(tr[(ell >= a) & (ell < b)].mean()) for a, b in itertools.pairwise(LBINS)]
    }
    return out


def summarise(res: dict[str, list], methods: list[str]) -> dict:
    """Clustering-error chi2 per bin (null-mock variance, as figures.py) and C_ell offsets.

    The variance and the C_ell units come from every mock; a method present on only the first
    mocks (``--compare`` of a shorter run) is scored on those, with the oracle on the same mocks
    (``chi2_over_oracle``).
    """
    var_clu = np.array([r["none"]["y"] for r in res["null"]]).var(axis=0, ddof=1)
    nb = var_clu.size
    s: dict = {"n_bins_total": nb}
    for kind in ("clustered", "null"):
        rows = res[kind]
        truth_all = np.array([r["truth"]["cl"] for r in rows])
        oracle_all = np.array([r["oracle"]["cl"] for r in rows])
        sig_or = (oracle_all - truth_all).std(axis=0, ddof=1)
        sig_cv = truth_all.std(axis=0, ddof=1)

        def chi(m: str, sub: list) -> np.ndarray:
            """Per-mock chi2 of method m on the mocks ``sub``."""
            ys = np.array([r[m]["y"] for r in sub])
            return (((ys - 1) ** 2) / var_clu).sum(axis=1)

        tab = {}
        for m in methods:
            sub = [r for r in rows if m in r]
            if not sub:
                continue
            truth = np.array([r["truth"]["cl"] for r in sub])
            chi_c = chi(m, sub)
            diff = (np.array([r[m]["cl"] for r in sub]) - truth).mean(axis=0)
            tab[m] = {
                "n_mocks": len(sub),
                "chi2_clustering_per_bin": round(float(chi_c.mean() / nb), 3),
                "chi2_per_bin_std_over_mocks": round(float(chi_c.std(ddof=1) / nb), 3),
                "chi2_over_oracle": round(float(chi_c.mean() / chi("oracle", sub).mean()), 3),
                "chi2_over_ideal": round(float(chi_c.mean() / chi("ideal", sub).mean()), 3),
                "cl_offset_sigma_oracle": (diff / sig_or).round(2).tolist(),
                "cl_offset_sigma_cv": (diff / sig_cv).round(2).tolist(),
                "cl_ratio_to_truth": (np.array([r[m]["cl"] for r in sub]).mean(0) / truth.mean(0))
                .round(3)
                .tolist(),
            }
            if "rms_dF" in sub[0][m]:
                tab[m]["rms_F_minus_oracle"] = round(
                    float(np.mean([r[m]["rms_dF"] for r in sub])), 4
                )
        s[kind] = tab
    s["lbins"] = LBINS.tolist()
    return s


def main(argv: list[str] | None = None) -> int:
    """Run the study."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nside", type=int, default=32)
    p.add_argument("--n-mocks", type=int, default=10)
    p.add_argument("--nbins", type=int, default=10)
    p.add_argument("--map-seed", type=int, default=2026)
    p.add_argument("--split", default="random", choices=("random", "geometric"))
    p.add_argument(
        "--compare",
        action="append",
        metavar="RAW[:TAG]",
        help="figures.py raw.json of the same mocks (NN, linear, forest; names + TAG); repeatable",
    )
    p.add_argument("--out", default="ideal.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res: dict[str, list] = {"clustered": [], "null": []}
    for kind in ("null", "clustered"):
        for i in range(args.n_mocks):
            r = run_mock(
                args.nside, 1000 + i, kind == "null", args.map_seed, args.nbins, args.split
            )
            res[kind].append(r)
    methods = ["none", "oracle", "ideal", "ideal_insample"]
    for spec in args.compare or []:
        path, _, tag = spec.partition(":")
        raw = json.loads(Path(path).read_text())
        for kind in res:
            for r, q in zip(res[kind], raw[kind], strict=False):
                # same mock? the realised field's C_ell must agree
                if not np.allclose(r["truth"]["cl"], q["truth"]["cl"], rtol=1e-6):
                    raise SystemExit(f"--compare: mocks differ from {path}")
                for m in ("nn", "linear", "forest"):
                    if m in q:
                        r[f"{m}{tag}"] = q[m]
        methods += [f"{m}{tag}" for m in ("nn", "linear", "forest") if f"{m}{tag}" not in methods]
    s = summarise(res, methods)
    s["args"] = vars(args)
    s["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(s, indent=1) + "\n")
    for kind in ("clustered", "null"):
        for m, v in s[kind].items():
            print(
                f"{kind:9s} {m:15s} chi2/bin {v['chi2_clustering_per_bin']:6.3f} "
                f"(/oracle {v['chi2_over_oracle']:5.2f}, /ideal {v['chi2_over_ideal']:5.2f}, "
                f"{v['n_mocks']:2d} mocks)  C_ell off [sig_or] "
                f"{v['cl_offset_sigma_oracle'][:3]} [sig_cv] {v['cl_offset_sigma_cv'][:3]}"
            )
    print(f"{s['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
