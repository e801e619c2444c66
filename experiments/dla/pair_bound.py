"""Could any observer name both members of a close pair? A Cramer-Rao bound (fourteenth round).

    python experiments/dla/pair_bound.py MOCKSET CATALOG.fits OUT.json [--window 150]

``ideal_search.py`` is a bound for isolated absorbers only: its matching pursuit takes a blended
pair as one absorber between the two. Here the observer of ``ideal_observer.py`` (continuum and
forest known, only the pixel noise left) fits the two absorbers of a pair jointly. For every
truth DLA (log N_HI >= 20.3) of a sightline with CATALOG's S/N > 3 that has another truth
absorber (any log N_HI) within ``--window`` A, the Fisher matrix of six parameters is formed on
the B, R, Z pixels within 200 A of the pair's midpoint: the two observed wavelengths, the two log
N_HI and a linear continuum (amplitude, slope). The noise-free model is

    m = pre * T_1 * T_2 * T_rest * (1 + a0 + a1 (lambda - lambda_mid) / 200 A),

with ``pre`` the quasar's model before its absorbers (continuum times forest, from the simulator),
T_i = exp(-tau_i) of each member (b = 30 km/s, Lyman-alpha, as the mock) and T_rest the other
absorbers of the sightline; dm/dlambda_i by a central difference of 0.02 A, dm/dlog N_i = m ln
T_i ln 10. The pre-LSF model is used, as in ``ideal_observer.py``. sigma_i = sqrt((F^-1)_ii) is
the bound on member i's position with the other member's position and column fitted at the same
time. An efficient estimator is matched by the DESI 10 A rule with probability 2 Phi(10 A /
sigma_i) - 1; the member is also required to be detectable on its own, matched-filter S/N (its
own signal, the other member known) >= ``--snr-min`` (5). The mean of these probabilities is the
pair-member completeness such an observer reaches; the catalogue's completeness on the same DLAs
is given beside it, and the two with the forest added to the noise as white noise (the variance of
``pre`` about its ~50 A running median, as ``ideal_observer.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.signal import medfilt
from scipy.stats import norm

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import EvaluateConfig
from surveynet.dla.evaluate import match_absorbers
from surveynet.sim.instrument import master_wave
from surveynet.sim.voigt import voigt_tau

sys.path.insert(0, str(Path(__file__).parent))
from heldout_figures import qso_maps
from ideal_observer import regenerate


def _trans(lam: np.ndarray, lam_c: float, nhi: float) -> np.ndarray:
    return np.exp(-voigt_tau(lam, lam_c / LYA_REST - 1.0, nhi))


def member_bound(
    lam: np.ndarray,
    pre: np.ndarray,
    rest: np.ndarray,
    pair: tuple[tuple[float, float], tuple[float, float]],
    pix: list[tuple[np.ndarray, np.ndarray]],
    var_f: float = 0.0,
) -> tuple[float, float]:
    """Position bound (A) and own matched-filter S/N of the first member of ``pair``.

    Parameters
    ----------
    lam, pre, rest : ndarray
        Model grid (A), the absorber-free model and the transmission of the sightline's other
        absorbers on it.
    pair : ((lambda_1, log N_1), (lambda_2, log N_2))
        The member and its neighbour.
    pix : list of (wave, ivar)
        The observed pixels of each arm near the pair.
    var_f : float
        Extra white-noise variance (the forest), 0 for pixel noise only.
    """
    (l1, n1), (l2, n2) = pair
    t1, t2 = _trans(lam, l1, n1), _trans(lam, l2, n2)
    mid = 0.5 * (l1 + l2)
    m = pre * rest * t1 * t2
    h = 0.02
    g = np.stack(
        [
            pre * rest * t2 * (_trans(lam, l1 + h, n1) - _trans(lam, l1 - h, n1)) / (2 * h),
            m * np.log(np.clip(t1, 1e-300, 1.0)) * np.log(10.0),
            pre * rest * t1 * (_trans(lam, l2 + h, n2) - _trans(lam, l2 - h, n2)) / (2 * h),
            m * np.log(np.clip(t2, 1e-300, 1.0)) * np.log(10.0),
            m,
            m * (lam - mid) / 200.0,
        ]
    )
    own = pre * rest * t2 * (1.0 - t1)  # the member's own signal, the neighbour known
    fish = np.zeros((6, 6))
    s2 = 0.0
    for w, iv in pix:
        wgt = 1.0 / (1.0 / iv + var_f)
        gi = np.stack([np.interp(w, lam, x) for x in g])
        fish += (gi * wgt) @ gi.T
        s2 += float(np.sum(np.interp(w, lam, own) ** 2 * wgt))
    try:
        sig = float(np.sqrt(np.linalg.inv(fish)[0, 0]))
    except np.linalg.LinAlgError:
        sig = float("inf")
    return sig, float(np.sqrt(s2))


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; returns the summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mockset")
    ap.add_argument("catalog")
    ap.add_argument("out")
    ap.add_argument("--window", type=float, default=150.0)
    ap.add_argument("--snr-min", type=float, default=5.0)
    a = ap.parse_args(argv)
    spec, truth, _final, kept, row_of = regenerate(a.mockset)
    master = master_wave()
    dla = truth["DLA_META"]
    cat = read_catalog(a.catalog)
    s2n_of, rng_of = qso_maps(cat.qsos)
    tids = np.asarray(dla["TARGETID"], np.int64)
    lam_t = (1.0 + np.asarray(dla["Z_DLA"], float)) * LYA_REST
    nhi = np.asarray(dla["NHI"], float)
    res = match_absorbers(dla, cat.dlas, EvaluateConfig())
    matched = np.asarray(res.truth["MATCHED"], bool)
    rows = []
    for j in range(len(dla)):
        tid = int(tids[j])
        if nhi[j] < 20.3 or s2n_of.get(tid, 0.0) <= 3.0 or tid not in kept:
            continue
        if not rng_of[tid][0] <= lam_t[j] <= rng_of[tid][1]:
            continue
        others = [k for k in np.flatnonzero(tids == tid) if k != j]
        near = [k for k in others if abs(lam_t[k] - lam_t[j]) <= a.window]
        if not near:
            continue
        k = min(near, key=lambda i: abs(lam_t[i] - lam_t[j]))
        mid = 0.5 * (lam_t[j] + lam_t[k])
        sel = np.abs(master - mid) < 200.0 + 0.5 * abs(lam_t[j] - lam_t[k])
        lam = master[sel]
        pre = np.asarray(kept[tid][0], float)[sel]
        rest = np.ones_like(lam)
        for o in others:
            if o != k:
                rest *= _trans(lam, lam_t[o], nhi[o])
        var_f = float(np.mean((pre - medfilt(pre, 61)) ** 2))
        r = row_of[tid]
        pix = []
        for band in ("b", "r", "z"):
            w = spec.wave[band]
            iv = np.asarray(spec.ivar[band][r], float)
            s = (w >= lam[0]) & (w <= lam[-1]) & (iv > 0)
            if s.any():
                pix.append((w[s], iv[s]))
        if not pix:
            continue
        pair = ((lam_t[j], nhi[j]), (lam_t[k], nhi[k]))
        sig, snr = member_bound(lam, pre, rest, pair, pix)
        sig_f, snr_f = member_bound(lam, pre, rest, pair, pix, var_f)
        rows.append(
            (abs(lam_t[j] - lam_t[k]), nhi[j], nhi[k], sig, snr, sig_f, snr_f, bool(matched[j]))
        )
    x = np.array(rows, dtype=float)
    sep, sig, snr, sig_f, snr_f, cat_m = x[:, 0], x[:, 3], x[:, 4], x[:, 5], x[:, 6], x[:, 7]

    def p_match(s: np.ndarray, n: np.ndarray) -> np.ndarray:
        return np.where(n >= a.snr_min, 2.0 * norm.cdf(10.0 / s) - 1.0, 0.0)

    out: dict = {"mock": a.mockset, "catalog": a.catalog, "window": a.window, "bins": []}
    for lo, hi in ((0, 40), (40, 80), (80, 150), (0, 1e9)):
        b = (sep >= lo) & (sep < hi)
        out["bins"].append(
            {
                "separation": [lo, hi],
                "n_dla": int(b.sum()),
                "catalog_completeness": float(cat_m[b].mean()) if b.any() else None,
                "bound_completeness": float(p_match(sig[b], snr[b]).mean()) if b.any() else None,
                "bound_completeness_forest": (
                    float(p_match(sig_f[b], snr_f[b]).mean()) if b.any() else None
                ),
                "median_sigma_lambda": float(np.median(sig[b])) if b.any() else None,
                "median_sigma_lambda_forest": float(np.median(sig_f[b])) if b.any() else None,
            }
        )
    with open(a.out, "w") as fh:
        fh.write(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
