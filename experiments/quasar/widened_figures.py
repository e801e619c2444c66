"""Figures of the widened-template evaluation (issue 23): QuasarNET on new contaminant populations.

Usage (see widened_eval.sh)::

    python experiments/quasar/widened_figures.py --run LABEL CATALOG.fits TRUTH.fits \
        [--run LABEL2 CATALOG2.fits TRUTH2.fits ...] [--json OUT.json]

For each run, with the definitions of :mod:`surveynet.quasar.evaluate` (``is_qso`` rule with
``predict.n_th`` lines, crossover threshold where purity = completeness, |dv| <= 6000 km/s;
unconfirmed truth rows count as BAD):

- the overall figures of :func:`~surveynet.quasar.evaluate.compute_metrics` (crossover,
  purity = completeness there, sigma(dv), catastrophic rate, purity/completeness at c_th = 0.5);
- stars called quasars by star subtype (TRUTH SUBTYPE of confirmed OBJTYPE STAR rows), count and
  %, at the default threshold 0.5 and at the run's crossover threshold, with the share of the
  flagged ones whose Z_QN is in 4.6-5.1 (the z where a 7,100 A band head mimics Lyman-alpha);
- BAL recognition: confirmed quasars at z >= 1.6 with C_BAL > 0.5, split by truth (BAL with
  BI_CIV > 0, BAL with BI_CIV = 0 and AI_CIV > 0, non-BAL);
- completeness at the crossover in true-redshift bins (z < 0.25, 0.25-0.8, 0.8-2.1, >= 2.1).

Binomial 1-sigma errors sqrt(p (1 - p) / n) are given with the percentages. Library code only
(surveynet.quasar.evaluate); nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from surveynet.quasar.evaluate import (
    compute_metrics,
    flagged,
    match,
    read_catalog,
    read_truth_table,
)

C_TH_DEFAULT = 0.5
Z_BINS = ((0.0, 0.25), (0.25, 0.8), (0.8, 2.1), (2.1, 10.0))
STAR_ORDER = ("O", "B", "A", "F", "G", "K", "M", "WD", "CV")
FAKE_LYA_Z = (4.6, 5.1)
BAL_Z_MIN = 1.6


def _pct(k: int, n: int) -> dict[str, Any]:
    """Count, total, percentage and its binomial error."""
    if n == 0:
        return {"k": k, "n": n, "pct": float("nan"), "err": float("nan")}
    p = k / n
    return {"k": k, "n": n, "pct": 100.0 * p, "err": 100.0 * math.sqrt(p * (1 - p) / n)}


def run_figures(catalog: str, truth: str) -> dict[str, Any]:
    """All figures of one catalogue against its truth file.

    Parameters
    ----------
    catalog, truth : str
        ``surveynet quasar predict`` catalogue and the mock's ``truth.fits``.

    Returns
    -------
    dict
        JSON-serialisable figures (see the module docstring).
    """
    cat, _ = read_catalog(catalog)
    tt = read_truth_table(truth)
    m = match(cat, tt, catalog_path=catalog)
    met = compute_metrics(m, c_th=C_TH_DEFAULT)
    c_x = float(met["crossover_c_th"])
    order = np.argsort(np.asarray(tt["TARGETID"]))
    rows = order[np.searchsorted(np.asarray(tt["TARGETID"])[order], m.targetid)]
    sub = np.char.strip(np.asarray(tt["SUBTYPE"]).astype(str)[rows])
    bi = np.asarray(tt["BI_CIV"], dtype=np.float64)[rows]
    ai = np.asarray(tt["AI_CIV"], dtype=np.float64)[rows]
    is_bal = np.asarray(tt["IS_BAL"], dtype=bool)[rows]
    good_z = np.abs(np.nan_to_num(m.dv, nan=np.inf)) <= met["dv_max_kms"]
    out: dict[str, Any] = {
        "catalog": catalog,
        "truth": truth,
        "counts": met["counts"],
        "crossover_c_th": c_x,
        "purity_at_crossover": met["purity_at_crossover"],
        "completeness_at_crossover": met["completeness_at_crossover"],
        f"purity_at_{C_TH_DEFAULT:g}": met[f"purity_at_{C_TH_DEFAULT:g}"],
        f"completeness_at_{C_TH_DEFAULT:g}": met[f"completeness_at_{C_TH_DEFAULT:g}"],
        "sigma_dv_kms": met["sigma_dv_kms"],
        "sigma_dv_mad_kms": met["sigma_dv_mad_kms"],
        "catastrophic_rate": met["catastrophic_rate"],
        "n_qso_flagged_at_crossover": met["n_qso_flagged_at_crossover"],
    }
    star = m.objtype == "STAR"
    stars: dict[str, Any] = {}
    present = [s for s in STAR_ORDER if np.any(star & (sub == s))]
    present += sorted(set(sub[star]) - set(present))
    for label, c in (("default", C_TH_DEFAULT), ("crossover", c_x)):
        f = flagged(m.c_lines, c)
        per: dict[str, Any] = {}
        for s in [*present, "ALL"]:
            sel = star & (sub == s) if s != "ALL" else star
            k = int((sel & f).sum())
            d = _pct(k, int(sel.sum()))
            zq = m.z_qn[sel & f]
            d["fake_lya"] = int(((zq >= FAKE_LYA_Z[0]) & (zq <= FAKE_LYA_Z[1])).sum())
            d["median_z_qn"] = float(np.median(zq)) if zq.size else float("nan")
            per[s] = d
        stars[label] = {"c_th": c, "by_subtype": per}
    out["stars_called_qso"] = stars
    q = m.is_qso_true & (m.z_true >= BAL_Z_MIN)
    cb = np.nan_to_num(m.c_bal, nan=-1.0) if m.c_bal is not None else np.full(q.size, -1.0)
    groups = {
        "BAL_BI>0": q & is_bal & (bi > 0),
        "BAL_AI_only": q & is_bal & (bi <= 0) & (ai > 0),
        "BAL_all": q & is_bal,
        "non_BAL": q & ~is_bal,
    }
    out["bal_c_bal_gt_0.5"] = {
        g: _pct(int((sel & (cb > 0.5)).sum()), int(sel.sum())) for g, sel in groups.items()
    }
    # the goal's operating point: the C_BAL threshold that flags 1 % of the non-BAL quasars
    nb = cb[groups["non_BAL"]]
    t1 = float(np.quantile(nb, 0.99)) if nb.size else float("nan")
    d1 = _pct(int((groups["BAL_BI>0"] & (cb > t1)).sum()), int(groups["BAL_BI>0"].sum()))
    d1["c_bal_threshold"] = t1
    d1["non_bal_flagged"] = float((nb > t1).mean()) if nb.size else float("nan")
    out["bal_bi_at_1pct_non_bal"] = d1
    f_x = flagged(m.c_lines, c_x)
    comp: dict[str, Any] = {}
    for lo, hi in Z_BINS:
        sel = m.is_qso_true & (m.z_true >= lo) & (m.z_true < hi)
        d = _pct(int((sel & f_x & good_z).sum()), int(sel.sum()))
        d["flagged_wrong_z"] = int((sel & f_x & ~good_z).sum())
        comp[f"{lo:g}-{hi:g}"] = d
    out["completeness_at_crossover_by_z"] = comp
    return out


def _fmt(d: dict[str, Any]) -> str:
    """``k/n (pct +- err %)``."""
    if d["n"] == 0:
        return "-"
    return f"{d['k']}/{d['n']} ({d['pct']:.1f} ± {d['err']:.1f} %)"


def markdown(runs: dict[str, dict[str, Any]]) -> str:
    """Side-by-side markdown tables of several runs.

    Parameters
    ----------
    runs : dict of str to dict
        :func:`run_figures` outputs by label.

    Returns
    -------
    str
    """
    labels = list(runs)
    head = "| | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels) + "\n"
    lines = ["### Overall (definitions of `surveynet quasar evaluate`)", "", head.rstrip("\n")]
    for key, fmt in (
        ("counts", None),
        ("crossover_c_th", "{:.3f}"),
        ("purity_at_crossover", "{:.4f}"),
        ("completeness_at_crossover", "{:.4f}"),
        (f"purity_at_{C_TH_DEFAULT:g}", "{:.4f}"),
        (f"completeness_at_{C_TH_DEFAULT:g}", "{:.4f}"),
        ("sigma_dv_kms", "{:.0f}"),
        ("sigma_dv_mad_kms", "{:.0f}"),
        ("catastrophic_rate", "{:.4f}"),
    ):
        vals = [json.dumps(r[key]) if fmt is None else fmt.format(r[key]) for r in runs.values()]
        lines.append(f"| {key} | " + " | ".join(vals) + " |")
    for label in ("default", "crossover"):
        subs: list[str] = []
        for r in runs.values():
            for s in r["stars_called_qso"][label]["by_subtype"]:
                if s not in subs:
                    subs.append(s)
        cths = ", ".join(
            f"{lab}: {r['stars_called_qso'][label]['c_th']:.3f}" for lab, r in runs.items()
        )
        lines += [
            "",
            f"### Stars called quasars at the {label} threshold ({cths})",
            "",
            "flagged/stars (% ± binomial error); [n with Z_QN in 4.6-5.1]",
            "",
            head.rstrip("\n"),
        ]
        for s in subs:
            cells = []
            for r in runs.values():
                d = r["stars_called_qso"][label]["by_subtype"].get(s)
                cells.append("-" if d is None else f"{_fmt(d)} [{d['fake_lya']}]")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"### C_BAL > 0.5 among confirmed quasars at z >= {BAL_Z_MIN}",
        "",
        head.rstrip("\n"),
    ]
    for g in ("BAL_BI>0", "BAL_AI_only", "BAL_all", "non_BAL"):
        lines.append(
            f"| {g} | " + " | ".join(_fmt(r["bal_c_bal_gt_0.5"][g]) for r in runs.values()) + " |"
        )
    lines.append(
        "| BAL_BI>0 at the C_BAL threshold flagging 1 % of non-BALs (threshold) | "
        + " | ".join(
            f"{_fmt(d)} ({d['c_bal_threshold']:.3f})"
            for d in (r["bal_bi_at_1pct_non_bal"] for r in runs.values())
        )
        + " |"
    )
    lines += [
        "",
        "### Quasar completeness at the crossover by true z (correct z, |dv| <= 6000 km/s); "
        "[flagged with a wrong z]",
        "",
        head.rstrip("\n"),
    ]
    for zb in runs[labels[0]]["completeness_at_crossover_by_z"]:
        cells = []
        for r in runs.values():
            d = r["completeness_at_crossover_by_z"][zb]
            cells.append(f"{_fmt(d)} [{d['flagged_wrong_z']}]")
        lines.append(f"| z {zb} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the markdown tables (and write JSON) for the given runs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--run",
        nargs=3,
        action="append",
        required=True,
        metavar=("LABEL", "CATALOG", "TRUTH"),
        help="a labelled catalogue and its truth file (repeatable)",
    )
    ap.add_argument("--json", help="write all figures to this JSON file")
    args = ap.parse_args(argv)
    runs = {label: run_figures(cat, truth) for label, cat, truth in args.run}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(runs, fh, indent=1, default=float)
    print(markdown(runs), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
