"""How detectable are the mock's DLAs at all? A noise-only ideal observer (ninth session).

    python experiments/dla/ideal_observer.py MOCKSET CATALOG.fits OUT.json

Regenerates the mock set ``MOCKSET`` of ``make_mocks.py`` in memory (bit-identical to its files:
the simulator is seeded per batch), keeping each quasar's noise-free model just before and just
after the DLAs are multiplied in. For every truth absorber of log N_HI >= 20.3 the DLA's signal
is d = model_without - model_with (in the final flux units) and its matched-filter S/N is
sqrt(sum d^2 ivar) over the B, R and Z pixels within 200 A of it. This observer knows the
continuum, the forest, the position and N_HI exactly and faces only the pixel noise, so
S/N_mf bounds what any finder can do: an absorber at S/N_mf < 3 cannot be told from noise at
the false-alarm rate of a blind search over a sightline's ~50 independent positions. A second
S/N adds the forest as white noise (the variance of the DLA-free model about its ~50 A running
median in the window), still with the continuum known. The output
gives, per sightline-S/N range of CATALOG's QSOCAT, the share of DLAs above 3, 5 and 8 of each
S/N and CATALOG's completeness (DESI 10 A rule) in bins of each.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.signal import medfilt

import surveynet.sim.spectra as sp
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import LYA_REST, MatchConfig
from surveynet.dla.evaluate import match_absorbers

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from make_mocks import SETS


def main(set_name: str, catalog: str, out: str) -> dict:
    kw = SETS[set_name]
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    original = sp._insert_dlas

    def spy(rng, model, z, tid, cfg):
        before = model.copy()
        rows, counts = original(rng, model, z, tid, cfg)
        for i in np.flatnonzero(counts):
            kept[int(tid[i])] = (before[i], model[i].copy())
        return rows, counts

    sp._insert_dlas = spy
    try:
        spec, truth = sp.simulate_spectra(
            kw["n"], kw["seed"], config=kw["config"], return_model=True
        )
    finally:
        sp._insert_dlas = original
    final = np.asarray(truth["MODEL"]["FLUX"])
    row_of = {int(t): k for k, t in enumerate(np.asarray(spec.fibermap["TARGETID"]))}
    master = sp.instrument.master_wave()
    dla = truth["DLA_META"]
    cat = read_catalog(catalog)
    s2n_of = {int(t): float(s) for t, s in zip(cat.qsos["TARGETID"], cat.qsos["S2N"], strict=True)}
    rng_of = {
        int(t): (float(a), float(b))
        for t, a, b in zip(
            cat.qsos["TARGETID"], cat.qsos["WAVE_MIN"], cat.qsos["WAVE_MAX"], strict=True
        )
    }
    snr_mf = np.full(len(dla), np.nan)
    snr_forest = np.full(len(dla), np.nan)
    for j, (tid, z_dla) in enumerate(zip(dla["TARGETID"], dla["Z_DLA"], strict=True)):
        tid = int(tid)
        lam = (1.0 + float(z_dla)) * LYA_REST
        if tid not in kept or tid not in rng_of or not rng_of[tid][0] <= lam <= rng_of[tid][1]:
            continue
        pre, post = kept[tid]
        k = row_of[tid]
        ok = post > 1e-3 * np.max(post)
        scale = float(np.median(final[k][ok] / post[ok]))
        d = scale * (pre - post)
        near = np.abs(master - lam) < 200.0
        # other absorbers of the sightline within the window add to d: keep only this one's
        # neighbourhood (pairs closer than 200 A share their signal)
        # the forest as extra white noise: the variance of the DLA-free model about its 61-px
        # (~50 A) running median in the window, in the final flux units
        pre_s = scale * pre[near]
        var_f = float(np.mean((pre_s - medfilt(pre_s, 61)) ** 2))
        s2 = s2f = 0.0
        for band in ("b", "r", "z"):
            w = spec.wave[band]
            iv = np.asarray(spec.ivar[band][k], float)
            sel = (np.abs(w - lam) < 200.0) & (iv > 0)
            if sel.any():
                dd = np.interp(w[sel], master[near], d[near])
                s2 += float(np.sum(dd**2 * iv[sel]))
                s2f += float(np.sum(dd**2 / (1.0 / iv[sel] + var_f)))
        snr_mf[j] = np.sqrt(s2)
        snr_forest[j] = np.sqrt(s2f)
    nhi = np.asarray(dla["NHI"], float)
    tids = np.asarray(dla["TARGETID"], np.int64)
    s2n = np.array([s2n_of.get(int(t), np.nan) for t in tids])
    res = match_absorbers(dla, cat.dlas, MatchConfig())
    matched = np.asarray(res.truth["MATCHED"], bool)
    result: dict = {"mock": set_name, "catalog": catalog}
    for name, lo, hi in (("s2n_gt_3", 3.0, np.inf), ("s2n_1_3", 1.0, 3.0)):
        sel = (nhi >= 20.3) & np.isfinite(snr_mf) & (s2n > lo) & (s2n < hi)
        x = snr_mf[sel]
        r = {
            "n_dla": int(sel.sum()),
            "share_snr_mf_ge": {str(t): float(np.mean(x >= t)) for t in (3, 3.5, 4, 5, 8)},
            "share_snr_mf_forest_ge": {
                str(t): float(np.mean(snr_forest[sel] >= t)) for t in (3, 3.5, 4, 5, 8)
            },
            "median_snr_mf": float(np.median(x)),
        }
        for key, v in (
            ("completeness_by_snr_mf", snr_mf),
            ("completeness_by_snr_mf_forest", snr_forest),
        ):
            r[key] = []
            for a, b in ((0, 3), (3, 5), (5, 8), (8, 15), (15, 1e9)):
                bb = sel & (v >= a) & (v < b)
                c = float(matched[bb].mean()) if bb.any() else None
                r[key].append({"snr": [a, b], "n": int(bb.sum()), "completeness": c})
        result[name] = r
    with open(out, "w") as fh:
        fh.write(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), indent=1))
