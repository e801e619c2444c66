"""How detectable are the mock's DLAs at all? A noise-only ideal observer (ninth session).

    python experiments/dla/ideal_observer.py MOCKSET CATALOG.fits OUT.json

Regenerates the mock set ``MOCKSET`` of ``make_mocks.py`` in memory (bit-identical to its files:
the simulator is seeded per batch), with each quasar's noise-free model without and with its DLAs
(``simulate_spectra(..., return_dla_free_model=True)``). For every truth absorber of log N_HI >=
20.3 the DLA's signal is d = model_without - model_with (in the final flux units) and its
matched-filter S/N is sqrt(sum d^2 ivar) over the B, R and Z pixels within 200 A of it. This
observer knows the continuum, the forest, the position and N_HI exactly and faces only the pixel
noise, so
S/N_mf bounds what any finder can do: an absorber at S/N_mf < 3 cannot be told from noise at
the false-alarm rate of a blind search over a sightline's ~50 independent positions. A second
S/N adds the forest as white noise (the variance of the DLA-free model about its ~50 A running
median in the window), still with the continuum known. The output
gives, per sightline-S/N range of CATALOG's QSOCAT, the share of DLAs above 3, 5 and 8 of each
S/N and CATALOG's completeness (DESI 10 A rule) in bins of each.

Position bound (thirteenth session): the Cramer-Rao bound on the absorber's observed wavelength
for the same observer, from the Fisher matrix of four parameters fitted jointly within 200 A:
the position, log N_HI, and a local linear continuum (amplitude and slope). Derivatives of the
noise-free model m = pre * T: dm/dlambda_c = -pre dT/dlambda, dm/dlog N = pre T ln T ln 10, dm/da0
= m, dm/da1 = m (lambda - lambda_c) / 200 A; the pre-LSF model is used (the LSF, ~1-2 A, barely
softens damping wings tens of A wide, so the bound is if anything slightly optimistic). With
sigma_i the bound of DLA i, an efficient estimator matched by the DESI 10 A rule has the truncated-
normal variance sigma_i^2 [1 - 2 a phi(a) / (2 Phi(a) - 1)], a = 10 A / sigma_i, and is matched
with probability 2 Phi(a) - 1; ``position_bound`` gives the resulting pooled sigma(dz) (weighted by
the matching probability) beside the catalogue's sigma(dz) on the same DLAs, by observed
wavelength, noise only and with the forest as white noise. The per-DLA values are also written
to ``OUT.perdla.npz`` (fourteenth round).
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.signal import medfilt
from scipy.stats import norm, truncnorm

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import read_catalog
from surveynet.dla.config import EvaluateConfig
from surveynet.dla.evaluate import match_absorbers
from surveynet.sim.instrument import master_wave
from surveynet.sim.spectra import simulate_spectra

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from heldout_figures import qso_maps
from make_mocks import SETS


def _ideal_sigma_dz(sig_lam: np.ndarray, tol: float = 10.0) -> float | None:
    """Pooled sigma(dz) of an efficient estimator with per-DLA errors ``sig_lam`` (A) once the
    matcher keeps only |dlambda| <= tol: truncated-normal variances weighted by the matching
    probability.

    Examples
    --------
    >>> round(_ideal_sigma_dz(np.array([1.0])) * LYA_REST, 4)  # well inside 10 A: sigma itself
    1.0
    >>> round(_ideal_sigma_dz(np.array([1e4])) * LYA_REST, 3)  # uniform over +-10 A: 10/sqrt(3)
    5.774
    """
    s = sig_lam[np.isfinite(sig_lam)]
    if s.size == 0:
        return None
    a = tol / s
    p = 2.0 * norm.cdf(a) - 1.0
    var = s**2 * truncnorm.var(-a, a)
    return float(np.sqrt(np.sum(p * var) / np.sum(p)) / LYA_REST)


def _share_far(sig_lam: np.ndarray, lo: float = 5.0, tol: float = 10.0) -> float | None:
    """Expected share of the matches lying lo < |dlambda| <= tol A off for per-DLA errors
    ``sig_lam``.

    Examples
    --------
    >>> round(_share_far(np.array([5.0])), 3)  # (P(|x| < 2 sigma) - P(|x| < sigma)) / P(< 2 sigma)
    0.285
    """
    s = sig_lam[np.isfinite(sig_lam)]
    if s.size == 0:
        return None
    inside = 2.0 * norm.cdf(tol / s) - 1.0
    return float(np.sum(inside - (2.0 * norm.cdf(lo / s) - 1.0)) / np.sum(inside))


def _position_bound(sel, lam_t, dz, matched, sig_lam, sig_lam_forest) -> list[dict]:
    """The catalogue's sigma(dz) beside the Cramer-Rao one, by observed wavelength."""
    rows = []
    for a, b in ((3600, 4000), (4000, 4500), (4500, 1e9), (0, 1e9)):
        bb = sel & (lam_t >= a) & (lam_t < b)
        mm = bb & matched & np.isfinite(dz)
        rows.append(
            {
                "wave": [a, b],
                "n_dla": int(bb.sum()),
                "n_matched": int(mm.sum()),
                "catalog_sigma_dz": float(np.std(dz[mm])) if mm.any() else None,
                "bound_sigma_dz": _ideal_sigma_dz(sig_lam[bb]),
                "bound_sigma_dz_forest": _ideal_sigma_dz(sig_lam_forest[bb]),
                "share_5_10A_catalog": (
                    float(np.mean(np.abs(dz[mm]) * LYA_REST > 5.0)) if mm.any() else None
                ),
                "share_5_10A_bound": _share_far(sig_lam[bb]),
                "share_5_10A_bound_forest": _share_far(sig_lam_forest[bb]),
                "median_bound_sigma_lambda": float(np.median(sig_lam[bb])) if bb.any() else None,
                "median_bound_sigma_lambda_forest": (
                    float(np.median(sig_lam_forest[bb])) if bb.any() else None
                ),
            }
        )
    return rows


def regenerate(set_name: str):
    """The mock set ``set_name`` of ``make_mocks.py`` regenerated in memory (bit-identical to
    its files): ``(spec, truth, final, kept, row_of)`` with ``final`` the noise-free models on
    the master grid in flux units (before the LSF), ``kept`` TARGETID -> (model without, model
    with the DLAs, both in the flux units of ``final``) for sightlines with absorbers, and
    ``row_of`` TARGETID -> row. Uses the simulator's public ``return_dla_free_model`` option.
    """
    kw = SETS[set_name]
    spec, truth = simulate_spectra(
        kw["n"], kw["seed"], config=kw["config"], return_model=True, return_dla_free_model=True
    )
    final = np.asarray(truth["MODEL"]["FLUX"])
    no_dla = np.asarray(truth["MODEL"]["FLUX_NO_DLA"])
    tids = np.asarray(spec.fibermap["TARGETID"])
    row_of = {int(t): k for k, t in enumerate(tids)}
    with_dla = np.asarray(truth["TRUTH"]["N_DLA"]) > 0
    kept = {int(tids[k]): (no_dla[k], final[k]) for k in np.flatnonzero(with_dla)}
    return spec, truth, final, kept, row_of


def flux_scale(final_row: np.ndarray, post: np.ndarray) -> float:
    """Factor from the units of ``kept`` to the final flux units of a row (1 now that ``kept``
    is in the final units; kept for ``ideal_search.py``).
    """
    ok = post > 1e-3 * np.max(post)
    return float(np.median(final_row[ok] / post[ok]))


def main(set_name: str, catalog: str, out: str) -> dict:
    spec, truth, final, kept, row_of = regenerate(set_name)
    master = master_wave()
    dla = truth["DLA_META"]
    cat = read_catalog(catalog)
    s2n_of, rng_of = qso_maps(cat.qsos)
    snr_mf = np.full(len(dla), np.nan)
    snr_forest = np.full(len(dla), np.nan)
    sig_lam = np.full(len(dla), np.nan)
    sig_lam_forest = np.full(len(dla), np.nan)
    for j, (tid, z_dla) in enumerate(zip(dla["TARGETID"], dla["Z_DLA"], strict=True)):
        tid = int(tid)
        lam = (1.0 + float(z_dla)) * LYA_REST
        if tid not in kept or tid not in rng_of or not rng_of[tid][0] <= lam <= rng_of[tid][1]:
            continue
        pre, post = kept[tid]
        k = row_of[tid]
        scale = flux_scale(final[k], post)
        d = scale * (pre - post)
        near = np.abs(master - lam) < 200.0
        # other absorbers of the sightline within the window add to d: keep only this one's
        # neighbourhood (pairs closer than 200 A share their signal)
        # the forest as extra white noise: the variance of the DLA-free model about its 61-px
        # (~50 A) running median in the window, in the final flux units
        pre_s = scale * pre[near]
        var_f = float(np.mean((pre_s - medfilt(pre_s, 61)) ** 2))
        s2 = s2f = 0.0
        # Fisher matrix of (lambda_c, log N, a0, a1): derivatives on the master grid
        pre_n = scale * pre[near].astype(np.float64)
        post_n = scale * post[near].astype(np.float64)
        lam_n = master[near]
        t = np.where(pre_n > 0, post_n / np.where(pre_n > 0, pre_n, 1.0), 1.0)
        t = np.clip(t, 1e-300, 1.0)
        grads = np.stack(
            [
                -pre_n * np.gradient(t, lam_n),
                pre_n * t * np.log(t) * np.log(10.0),
                post_n,
                post_n * (lam_n - lam) / 200.0,
            ]
        )
        fish = np.zeros((4, 4))
        fish_f = np.zeros((4, 4))
        for band in ("b", "r", "z"):
            w = spec.wave[band]
            iv = np.asarray(spec.ivar[band][k], float)
            sel = (np.abs(w - lam) < 200.0) & (iv > 0)
            if sel.any():
                dd = np.interp(w[sel], master[near], d[near])
                s2 += float(np.sum(dd**2 * iv[sel]))
                s2f += float(np.sum(dd**2 / (1.0 / iv[sel] + var_f)))
                g = np.stack([np.interp(w[sel], lam_n, gi) for gi in grads])
                fish += (g * iv[sel]) @ g.T
                fish_f += (g / (1.0 / iv[sel] + var_f)) @ g.T
        for f_, out_ in ((fish, sig_lam), (fish_f, sig_lam_forest)):
            try:
                out_[j] = float(np.sqrt(np.linalg.inv(f_)[0, 0]))
            except np.linalg.LinAlgError:
                out_[j] = np.inf
        snr_mf[j] = np.sqrt(s2)
        snr_forest[j] = np.sqrt(s2f)
    nhi = np.asarray(dla["NHI"], float)
    tids = np.asarray(dla["TARGETID"], np.int64)
    s2n = np.array([s2n_of.get(int(t), np.nan) for t in tids])
    res = match_absorbers(dla, cat.dlas, EvaluateConfig())
    lam_t = (1.0 + np.asarray(dla["Z_DLA"], float)) * LYA_REST
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
        r["position_bound"] = _position_bound(
            sel, lam_t, np.asarray(res.truth["DZ"], float), matched, sig_lam, sig_lam_forest
        )
        result[name] = r
    # per-DLA values beside the summary (OUT.perdla.npz): TARGETID, observed wavelength, N_HI,
    # sightline S/N, both matched-filter S/N, the position bound and the catalogue's match
    np.savez(
        out + ".perdla.npz",
        tid=tids,
        lam=lam_t,
        nhi=nhi,
        s2n=s2n,
        snr_mf=snr_mf,
        snr_forest=snr_forest,
        sig_lam=sig_lam,
        matched=matched,
    )
    with open(out, "w") as fh:
        fh.write(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), indent=1))
