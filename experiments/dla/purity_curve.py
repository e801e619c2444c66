"""Completeness at a fixed purity, on all sightlines and on those without a close pair.

    python experiments/dla/purity_curve.py TRUTH.fits CAT.fits [CAT.fits ...] [--purity 0.98]
        [--s2n LO HI] [--pair-window 150]

For each catalogue (the bundled finder's, or the blind ideal search's of ``ideal_search.py``) the
absorbers of the sightlines with LO < S/N < HI are cut at every value of DLA_CONFIDENCE; the
largest completeness (a match by any non-LYB absorber) over the cuts whose purity (of the
DLA-typed absorbers) is >= ``--purity`` is given
(DESI 10 A rule, :func:`surveynet.dla.evaluate.match_absorbers`, truth log N_HI >= 20.3 inside
each sightline's searched range, as ``heldout_figures.py``). ``pair-free`` repeats this on the
sightlines without two truth absorbers (any log N_HI >= 19.3) within ``--pair-window`` A of each
other, so that an observer that cannot name both members of a blended pair (the ideal search's
matching pursuit) is compared on the sightlines where that does not matter. Only the sightlines
searched by every catalogue given are used, so the figures are on the same absorbers.
``all_detections`` gives completeness, purity and sigma(dz) (std over the matched truth DLAs)
without a cut; ``by_wavelength`` the truth DLAs found and present at the best cut by observed
wavelength (3,600-3,750 A is the blue edge of the search).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import EvaluateConfig
from surveynet.dla.evaluate import match_absorbers, read_truth_absorbers

#: observed-wavelength bins (A) of ``by_wavelength``: the blue edge of the search, the rest of B
WAVE_EDGES = (3600.0, 3750.0, 4000.0, 4500.0, 1e5)


def best_at_purity(truth, dlas, purity: float) -> dict:
    """Largest completeness over DLA_CONFIDENCE cuts with purity >= ``purity``, and at that cut
    the truth DLAs found / present by observed wavelength (``by_wavelength``).
    """
    res = match_absorbers(truth, dlas, EvaluateConfig())
    t_dla = np.asarray(res.truth["NHI"], float) >= 20.3
    p = res.pred
    conf = np.asarray(p["DLA_CONFIDENCE"], float)
    not_lyb = np.char.strip(np.asarray(p["ABSORBER_TYPE"]).astype(str)) != "LYB"
    is_dla = (np.asarray(p["NHI"], float) >= 20.3) & not_lyb
    pm = np.asarray(p["MATCHED"], bool)
    ti = np.asarray(p["TRUTH_INDEX"], int)
    n_t = max(int(t_dla.sum()), 1)
    out = {
        "n_truth_dla": int(t_dla.sum()),
        "n_found": None,
        "completeness": None,
        "purity": None,
        "cut": None,
    }
    best_hit = np.zeros(0, int)
    for c in np.unique(np.round(conf[is_dla], 3)):
        keep = is_dla & (conf >= c)
        n = int(keep.sum())
        if n == 0:
            continue
        pur = float(np.sum(keep & pm)) / n
        # completeness as heldout_figures.py: a match by any non-LYB absorber above the cut
        hit = np.unique(ti[not_lyb & (conf >= c) & pm & (ti >= 0)])
        found = int(np.sum(t_dla[hit]))
        comp = found / n_t
        if pur >= purity and (out["completeness"] is None or comp > out["completeness"]):
            out.update(n_found=found, completeness=comp, purity=pur, cut=float(c), n_pred_dla=n)
            best_hit = hit
    if out["cut"] is not None:
        # completeness at that cut by the truth DLA's observed wavelength
        lam = (1.0 + np.asarray(res.truth["Z_DLA"], float)) * LYA_REST
        found = np.zeros(t_dla.size, bool)
        found[best_hit] = True
        out["by_wavelength"] = {
            f"{lo:.0f}-{hi:.0f}": [int(np.sum(found & b)), int(b.sum())]
            for lo, hi in zip(WAVE_EDGES[:-1], WAVE_EDGES[1:], strict=True)
            for b in [t_dla & (lam >= lo) & (lam < hi)]
        }
    # everything, no cut; sigma(dz) of the matched truth DLAs
    keep = is_dla
    hit = np.unique(ti[not_lyb & pm & (ti >= 0)])
    dz = np.asarray(res.truth["DZ"], float)[t_dla & np.asarray(res.truth["MATCHED"], bool)]
    dz = dz[np.isfinite(dz)]
    out["all_detections"] = {
        "completeness": float(np.sum(t_dla[hit])) / n_t,
        "purity": float(np.mean(pm[keep])) if keep.any() else None,
        "sigma_dz": float(np.std(dz)) if dz.size else None,
        "mean_dz": float(np.mean(dz)) if dz.size else None,
        "n_matched": int(dz.size),
    }
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; returns the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("truth")
    ap.add_argument("catalogs", nargs="+")
    ap.add_argument("--purity", type=float, default=0.98)
    ap.add_argument("--s2n", nargs=2, type=float, default=(3.0, 1e9))
    ap.add_argument("--pair-window", type=float, default=150.0)
    a = ap.parse_args(argv)
    truth, _ = read_truth_absorbers(a.truth)
    cats = [read_catalog(c) for c in a.catalogs]
    # sightlines every catalogue searched, in the S/N range (S/N of the first catalogue)
    q0 = cats[0].qsos
    s2n = {int(t): float(s) for t, s in zip(q0["TARGETID"], q0["S2N"], strict=True)}
    common = {t for t, s in s2n.items() if a.s2n[0] < s < a.s2n[1]}
    for c in cats[1:]:
        common &= {int(t) for t in c.qsos["TARGETID"]}
    rng = {
        int(t): (float(lo), float(hi))
        for t, lo, hi in zip(q0["TARGETID"], q0["WAVE_MIN"], q0["WAVE_MAX"], strict=True)
    }
    t_tid = np.asarray(truth["TARGETID"], np.int64)
    t_lam = (1.0 + np.asarray(truth["Z_DLA"], float)) * LYA_REST
    paired = set()
    for t in np.unique(t_tid):
        lam = np.sort(t_lam[t_tid == t])
        if lam.size > 1 and np.min(np.diff(lam)) <= a.pair_window:
            paired.add(int(t))
    inside = np.array(
        [
            int(t) in common and rng[int(t)][0] <= lm <= rng[int(t)][1]
            for t, lm in zip(t_tid, t_lam, strict=True)
        ]
    )
    out: dict = {"truth": a.truth, "purity": a.purity, "s2n": list(a.s2n), "catalogs": {}}
    for path, cat in zip(a.catalogs, cats, strict=True):
        d = cat.dlas
        d_tid = np.asarray(d["TARGETID"], np.int64)
        r = {}
        for name, sub in (
            ("all", common),
            ("pair_free", common - paired),
            ("paired", common & paired),
        ):
            tsel = inside & np.isin(t_tid, list(sub))
            psel = np.isin(d_tid, list(sub))
            r[name] = {"n_sightlines": len(sub), **best_at_purity(truth[tsel], d[psel], a.purity)}
        out["catalogs"][path] = r
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
