"""Pool the point-8 figures of several mocks (``heldout_figures.py`` outputs).

    python experiments/dla/pool_figures.py FIG.json [FIG.json ...]

Completeness and purity from the summed counts; sigma(dz) and sigma(log N_HI) as the standard
deviation of all matched pairs, recombined from each file's mean, std and count (exact).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def pooled_std(parts: list[dict]) -> float:
    n = np.array([p["n"] for p in parts], float)
    m = np.array([p["mean"] for p in parts], float)
    s = np.array([p["std"] for p in parts], float)
    mean = np.sum(n * m) / n.sum()
    return float(np.sqrt(np.sum(n * (s**2 + m**2)) / n.sum() - mean**2))


def main(paths: list[str]) -> None:
    figs = [json.load(open(p)) for p in paths]
    for key in ("s2n_gt_3", "s2n_1_3"):
        xs = [f[key] for f in figs]
        n_t = sum(x["n_truth_dla"] for x in xs)
        c = sum(x["completeness"] * x["n_truth_dla"] for x in xs) / n_t
        c_dla = sum(x["completeness_as_dla"] * x["n_truth_dla"] for x in xs) / n_t
        n_p = sum(x["n_pred_dla"] for x in xs)
        p = sum(x["purity"] * x["n_pred_dla"] for x in xs) / n_p
        print(
            f"{key}: {n_t} truth DLAs, completeness {c:.4f} (as DLA {c_dla:.4f}), purity {p:.4f}"
            f" ({n_p} catalogued DLAs), sigma(dz) {pooled_std([x['dz'] for x in xs]):.5f}, "
            f"sigma(dlogN) {pooled_std([x['dlogN'] for x in xs]):.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
