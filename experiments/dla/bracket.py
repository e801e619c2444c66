"""The bundled catalogue between two blind searchers, pooled over the DESI-population mocks.

    python experiments/dla/bracket.py RUNS OUT.json [--mocks final7_desi ...]

Issue 23's goals for points 3 and 4 were set against an observer given each quasar's continuum
and forest (``ideal_search.py``, default). This script puts the bundled catalogue beside it and
beside the same search given only the smooth continuum, with the forest as white noise
(``ideal_search.py --given continuum``), on the same sightlines and with the same scoring
(``purity_curve.py``: completeness at a fixed purity, a match by any non-LYB absorber, the best
passing DLA_CONFIDENCE cut per mock). Counts are summed over the mocks: at S/N > 3 at 98 %
purity, at 1 < S/N < 3 at 90 % purity. At S/N > 3 the pair-free sightlines are pooled with the
close pairs' Cramer-Rao completeness of ``pair_bound.py`` (the searches' matching pursuit merges
pairs), giving each observer's completeness on all sightlines. sigma(dz) is pooled exactly from
each mock's mean, std and count.

Sixteenth round: where ``ideal/M_G_{hi,lo}.fits`` exist for every mock, with G one of
``family``, ``family_bayes``, ``family_prior``, ``family_known`` (``ideal_search.py --given G``:
a searcher who knows how the mock makes a quasar, with the parameters the red side leaves free
fitted, marginalised over the population's prior, or known), they are scored too. No pair bound is
computed for them; their completeness on all sightlines uses the continuum-given pair bound, an
upper value for an observer who knows less.

Expected layout under RUNS (the commands that write each file are in the README of this folder):

- ``mocks/M/truth.fits`` (``make_mocks.py``), ``base/cat_M.fits`` (the bundled catalogue);
- ``ideal/M_{forest,continuum}_{hi,lo}.fits`` (``ideal_search.py M RUNS/base/cat_M.fits OUT
  --s2n 3 1e9`` / ``--s2n 1 3``, ``--given forest`` / ``continuum``);
- ``ideal/M_pair_bound.json`` (``pair_bound.py M RUNS/base/cat_M.fits OUT``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pool_figures import pooled_std
from purity_curve import main as purity_curve

MOCKS = ("final7_desi", "final8_desi", "final9_desi", "final10_desi")
OBSERVERS = (
    "catalogue",
    "family",
    "family_bayes",
    "family_prior",
    "family_known",
    "continuum",
    "forest",
)
BINS = {"s2n_gt_3": ("hi", 0.98, (3.0, 1e9)), "s2n_1_3": ("lo", 0.90, (1.0, 3.0))}


def mock_figures(runs: Path, mock: str, tag: str, purity: float, s2n: tuple) -> dict:
    """purity_curve figures of the three observers on one mock, keyed by observer."""
    paths = {
        obs: runs / "ideal" / f"{mock}_{obs}_{tag}.fits" for obs in OBSERVERS if obs != "catalogue"
    }
    paths = {"catalogue": runs / "base" / f"cat_{mock}.fits"} | {
        obs: p for obs, p in paths.items() if p.exists() or obs in ("continuum", "forest")
    }
    argv = [str(runs / "mocks" / mock / "truth.fits"), *map(str, paths.values())]
    argv += ["--purity", str(purity), "--s2n", str(s2n[0]), str(s2n[1])]
    got = purity_curve(argv)["catalogs"]
    return {obs: got[str(p)] for obs, p in paths.items()}


def pool(per_mock: list[dict], obs: str, subset: str) -> dict:
    """Summed counts of one observer and subset over the mocks."""
    rows = [m[obs][subset] for m in per_mock]
    n = sum(r["n_truth_dla"] for r in rows)
    ok = all(r["n_found"] is not None for r in rows)
    found = sum(r["n_found"] for r in rows) if ok else None
    dz = [r["all_detections"] for r in rows]
    parts = [{"n": d["n_matched"], "mean": d["mean_dz"], "std": d["sigma_dz"]} for d in dz]
    out: dict = {
        "n_truth_dla": n,
        "found": found,
        "completeness": found / n if found is not None else None,
        "sigma_dz_all_detections": pooled_std(parts),
    }
    if ok and "by_wavelength" in rows[0]:
        out["by_wavelength"] = {
            k: [
                sum(r["by_wavelength"][k][0] for r in rows),
                sum(r["by_wavelength"][k][1] for r in rows),
            ]
            for k in rows[0]["by_wavelength"]
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; returns the pooled figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--mocks", nargs="+", default=list(MOCKS))
    a = ap.parse_args(argv)
    result: dict = {"mocks": a.mocks}
    for key, (tag, purity, s2n) in BINS.items():
        per_mock = [mock_figures(a.runs, m, tag, purity, s2n) for m in a.mocks]
        present = [obs for obs in OBSERVERS if all(obs in pm for pm in per_mock)]
        r = {
            obs: {s: pool(per_mock, obs, s) for s in ("all", "pair_free", "paired")}
            for obs in present
        }
        r["purity"] = purity
        r["per_mock"] = {
            m: {obs: pm[obs]["all"]["completeness"] for obs in present}
            for m, pm in zip(a.mocks, per_mock, strict=True)
        }
        if key == "s2n_gt_3":
            # pair-free searches + the pair bound on the close pairs (all separations)
            pb = [json.load(open(a.runs / "ideal" / f"{m}_pair_bound.json")) for m in a.mocks]
            tot = [
                next(b for b in p["bins"] if b["separation"][0] == 0 and b["separation"][1] > 1e3)
                for p in pb
            ]
            n_pair = sum(b["n_dla"] for b in tot)
            pair = {
                "n_dla": n_pair,
                "catalogue": sum(b["catalog_completeness"] * b["n_dla"] for b in tot) / n_pair,
                "forest": sum(b["bound_completeness"] * b["n_dla"] for b in tot) / n_pair,
                "continuum": sum(b["bound_completeness_forest"] * b["n_dla"] for b in tot) / n_pair,
            }
            r["pair_bound"] = pair
            n_all = r["catalogue"]["all"]["n_truth_dla"]
            for obs in present[1:]:
                # the family observers know less than the continuum one: its pair bound is an
                # upper value for them
                pf = r[obs]["pair_free"]
                n_paired = n_all - pf["n_truth_dla"]
                bound = pair[obs if obs == "forest" else "continuum"]
                r[obs]["all_with_pair_bound"] = (pf["found"] + bound * n_paired) / n_all
        result[key] = r
    a.out.write_text(json.dumps(result, indent=1))
    for key in BINS:
        r = result[key]
        print(f"{key} at purity {r['purity']}:")
        for obs in (o for o in OBSERVERS if o in r):
            x = r[obs]
            cells = [
                f"{s} {x[s]['completeness']:.4f} ({x[s]['found']}/{x[s]['n_truth_dla']})"
                if x[s]["completeness"] is not None
                else f"{s} n/a"
                for s in ("all", "pair_free", "paired")
            ]
            extra = (
                f"  all+pair bound {x['all_with_pair_bound']:.4f}"
                if "all_with_pair_bound" in x
                else ""
            )
            wl = x["pair_free"].get("by_wavelength")
            print(f"  {obs:9s} " + "; ".join(cells) + extra + f"  pair-free by wave {wl}")
            sdz = x["pair_free"]["sigma_dz_all_detections"]
            print(f"            sigma(dz), pair-free, all detections: {sdz:.5f}")
    return result


if __name__ == "__main__":
    main()
