"""Point-8 figures of a DLA catalogue on a held-out mock, per S/N range.

    python experiments/dla/heldout_figures.py CATALOG.fits TRUTH.fits OUT.json [--rule dz]
        [--common-range OTHER.fits] [--min-confidence C]

For S/N > 3 and truth log N_HI >= 20.3: completeness, purity, sigma(dz), sigma(dlogN) (std and
1.4826 MAD); ``completeness_as_dla`` counts only the truth DLAs whose match was catalogued with log
N_HI >= 20.3 (completeness counts any non-LYB match, as DESI's ``label_catalog``). ``--common-range
OTHER.fits`` keeps only the sightlines both catalogues searched and, in each, the wavelengths both
searched (truth and predicted absorbers alike), so that two finders with different search ranges (a
blue-camera and an all-camera model) are compared on the same absorbers. ``--min-confidence C``
drops the catalogue absorbers with DLA_CONFIDENCE < C first (a purity cut;
``EvaluateConfig.min_confidence``). For 1 < S/N < 3: completeness and purity, plus the best
completeness reachable at purity >= 90 % by a cut on DLA_CONFIDENCE (counting DLA-typed predictions
only). Matching is the core's DESI rule (:func:`surveynet.dla.evaluate.match_absorbers`, |dlambda|
<= 10 A, unique, LYB excluded; with ``--rule dz`` Parks' |dz| < 0.015, about 18 A at z = 3); truth
absorbers count only inside the searched range of each sightline (QSOCAT WAVE_MIN..WAVE_MAX).
``by_z_qso`` splits completeness and purity by quasar redshift.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import EvaluateConfig
from surveynet.dla.evaluate import confident, match_absorbers, read_truth_absorbers, summarize


def qso_maps(qsos) -> tuple[dict[int, float], dict[int, tuple[float, float]]]:
    """Per TARGETID of a catalogue's QSO table: its S/N and its searched (WAVE_MIN, WAVE_MAX)."""
    s2n_of = {int(t): float(s) for t, s in zip(qsos["TARGETID"], qsos["S2N"], strict=True)}
    rng_of = {
        int(t): (float(a), float(b))
        for t, a, b in zip(qsos["TARGETID"], qsos["WAVE_MIN"], qsos["WAVE_MAX"], strict=True)
    }
    return s2n_of, rng_of


def _sig(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"std": None, "mad_sigma": None, "mean": None, "n": 0}
    return {
        "std": float(x.std()),
        "mad_sigma": float(1.4826 * np.median(np.abs(x - np.median(x)))),
        "mean": float(x.mean()),
        "n": int(x.size),
    }


def _restrict(cat, other_path: str):
    """Catalogue limited to the sightlines and wavelength ranges also searched in ``other``."""
    from surveynet.dla.catalog import Catalog

    other = {
        int(t): (float(a), float(b))
        for t, a, b in zip(
            *(read_catalog(other_path).qsos[c] for c in ("TARGETID", "WAVE_MIN", "WAVE_MAX")),
            strict=True,
        )
    }
    q = cat.qsos[[int(t) in other for t in cat.qsos["TARGETID"]]]
    q["WAVE_MIN"] = [
        max(float(a), other[int(t)][0]) for t, a in zip(q["TARGETID"], q["WAVE_MIN"], strict=True)
    ]
    q["WAVE_MAX"] = [
        min(float(b), other[int(t)][1]) for t, b in zip(q["TARGETID"], q["WAVE_MAX"], strict=True)
    ]
    rng = {
        int(t): (a, b) for t, a, b in zip(q["TARGETID"], q["WAVE_MIN"], q["WAVE_MAX"], strict=True)
    }
    d = cat.dlas
    lam = (1.0 + np.asarray(d["Z_DLA"], float)) * LYA_REST
    keep = [
        int(t) in rng and rng[int(t)][0] <= lm <= rng[int(t)][1]
        for t, lm in zip(d["TARGETID"], lam, strict=True)
    ]
    return Catalog(dlas=d[np.asarray(keep, bool)], qsos=q)


def figures(
    catalog_path: str,
    truth_path: str,
    rule: str = "dlambda",
    common_range: str | None = None,
    min_confidence: float = 0.0,
) -> dict:
    cat = read_catalog(catalog_path)
    cat.dlas = confident(cat.dlas, EvaluateConfig(min_confidence=min_confidence), catalog_path)
    if common_range is not None:
        cat = _restrict(cat, common_range)
    truth, _ = read_truth_absorbers(truth_path)
    q = cat.qsos
    s2n_of, rng_of = qso_maps(q)
    t_tid = np.asarray(truth["TARGETID"], np.int64)
    lam = (1.0 + np.asarray(truth["Z_DLA"], float)) * LYA_REST
    inside = np.array(
        [
            t in rng_of and rng_of[t][0] <= lm <= rng_of[t][1]
            for t, lm in zip(t_tid, lam, strict=True)
        ]
    )
    t_s2n = np.array([s2n_of.get(int(t), np.nan) for t in t_tid])
    p_s2n = np.array(
        [s2n_of.get(int(t), np.nan) for t in np.asarray(cat.dlas["TARGETID"], np.int64)]
    )
    out: dict = {
        "catalog": catalog_path,
        "truth": truth_path,
        "n_sightlines": len(q),
        "match_rule": rule,
        "common_range": common_range,
        "min_confidence": min_confidence,
    }
    cfg = EvaluateConfig(rule=rule)
    z_of = {int(t): float(z) for t, z in zip(q["TARGETID"], q["Z_QSO"], strict=True)}
    for name, lo, hi in (
        ("s2n_gt_3", 3.0, np.inf),
        ("s2n_1_3", 1.0, 3.0),
        ("all", -np.inf, np.inf),
    ):
        tsel = inside & (t_s2n > lo) & (t_s2n < hi)
        psel = (p_s2n > lo) & (p_s2n < hi)
        res = match_absorbers(truth[tsel], cat.dlas[psel], cfg)
        m = summarize(res)
        tr = res.truth
        dla_m = (np.asarray(tr["NHI"], float) >= 20.3) & np.asarray(tr["MATCHED"], bool)
        d = {
            k: m[k]
            for k in (
                "n_truth_dla",
                "n_pred_dla",
                "tp",
                "fn",
                "fp",
                "completeness",
                "purity",
                "completeness_as_dla",
            )
        }
        d["n_sightlines"] = int(
            np.sum((np.asarray(q["S2N"], float) > lo) & (np.asarray(q["S2N"], float) < hi))
        )
        d["dz"] = _sig(np.asarray(tr["DZ"], float)[dla_m])
        d["dlogN"] = _sig(np.asarray(tr["DNHI"], float)[dla_m])
        # purity/completeness trade-off on DLA_CONFIDENCE
        conf = np.asarray(res.pred["DLA_CONFIDENCE"], float)
        is_dla_p = (np.asarray(res.pred["NHI"], float) >= 20.3) & (
            np.asarray(res.pred["ABSORBER_TYPE"]) != "LYB"
        )
        pm = np.asarray(res.pred["MATCHED"], bool)
        ti = np.asarray(res.pred["TRUTH_INDEX"], int)
        t_is_dla = np.asarray(tr["NHI"], float) >= 20.3
        best = None
        curve = []
        for c in np.unique(np.round(conf, 3)):
            keep = is_dla_p & (conf >= c)
            n = int(keep.sum())
            if n == 0:
                continue
            pur = float(np.sum(keep & pm)) / n
            hit = np.unique(ti[keep & pm & (ti >= 0)])
            comp = float(np.sum(t_is_dla[hit])) / max(int(t_is_dla.sum()), 1)
            curve.append((float(c), comp, pur))
            if pur >= 0.9 and (best is None or comp > best[1]):
                best = (float(c), comp, pur)
        d["best_completeness_at_purity_ge_0.9"] = (
            None
            if best is None
            else {"min_confidence": best[0], "completeness": best[1], "purity": best[2]}
        )
        # completeness and purity by quasar redshift (DESI has 10 % of its z > 2.33 quasars
        # above z = 3.3, the seed's uniform z 53 %)
        tz = np.array([z_of[int(t)] for t in np.asarray(tr["TARGETID"], np.int64)])
        pz = np.array([z_of[int(t)] for t in np.asarray(res.pred["TARGETID"], np.int64)])
        d["by_z_qso"] = []
        for zlo, zhi in ((2.0, 2.8), (2.8, 3.3), (3.3, 3.8), (3.8, 5.0)):
            tb = t_is_dla & (tz >= zlo) & (tz < zhi)
            pb = is_dla_p & (pz >= zlo) & (pz < zhi)
            d["by_z_qso"].append(
                {
                    "z_qso": [zlo, zhi],
                    "n_truth_dla": int(tb.sum()),
                    "completeness": float(np.asarray(tr["MATCHED"], bool)[tb].mean())
                    if tb.any()
                    else None,
                    "purity": float(pm[pb].mean()) if pb.any() else None,
                }
            )
        out[name] = d
    return out


if __name__ == "__main__":
    args = list(sys.argv[1:])
    rule = "dlambda"
    if "--rule" in args:
        k = args.index("--rule")
        rule = args[k + 1]
        del args[k : k + 2]
    common = None
    if "--common-range" in args:
        k = args.index("--common-range")
        common = args[k + 1]
        del args[k : k + 2]
    min_conf = 0.0
    if "--min-confidence" in args:
        k = args.index("--min-confidence")
        min_conf = float(args[k + 1])
        del args[k : k + 2]
    res = figures(args[0], args[1], rule, common, min_conf)
    text = json.dumps(res, indent=1)
    if len(args) > 2:
        with open(args[2], "w") as fh:
            fh.write(text + "\n")
    print(text)
