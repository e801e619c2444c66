"""Trial (dropped): split catalogue absorbers into close pairs by a two-absorber Voigt fit.

    python experiments/dla/pair_fit.py fit MOCKDIR CATALOG.fits FITS.npy
    python experiments/dla/pair_fit.py score CATALOG.fits TRUTH.fits FITS.npy GAIN[,GAIN...]

Issue 23 point 3 asks for a localiser that names both members of a close pair. Of the 43 missed
S/N > 3 DLAs of the development mock ``test_desi2`` (bundled catalogue, ``--skip-bal``), 10 are
pair members that the catalogue gives as one absorber between the two and 7 weak members next to
a stronger absorber that it found. This script tries a profile fit instead of a new network.

``fit``: around every catalogue absorber of log N_HI >= 20 (not LYB) of the sightlines with
S/N > 3, within 130 A (never redward of rest 1195 A), the normalised flux is fitted with

    F = (c0 + c1 x) T_others exp(-tau(lambda_1, N_1) [- tau(lambda_2, N_2)]),
    x = (lambda - lambda_a) / 100 A,

one absorber (three least-squares starts) and two absorbers (starts: the best grid node of a
second absorber, 2 A x 0.2 dex over +-100 A with the first fixed, and symmetric splits of the
first by +-15 and +-25 A). T_others holds the sightline's other catalogue absorbers (fixed). The
forest is the noise of the fit: sigma^2 = error^2 + (0.3 c T)^2 with T the one-absorber model,
and a soft-L1 loss (forest lines only absorb). ``score``: an absorber whose cost falls by more
than GAIN with two components (>= 12 A apart, both log N >= 20) is replaced by the two, each
kept only if no other catalogue absorber lies within 10 A; then ``heldout_figures.py`` scores the
catalogue at S/N > 3.

Result (experiments/dla/README.md, fourteenth round): on ``test_desi2`` no cut gains a DLA; the
splits only add false ones. The fitted pairs are not the true ones: in the forest the blend of two
damped profiles 27-53 A apart is fitted as well by one stronger absorber (e.g. truth 4,689.6 A
log N 20.91 + 4,722.4 A 21.51, fit 4,712.0 A 22.09 + a weak absorber 95 A away).
"""

import dataclasses
import glob
import sys
import time
from pathlib import Path

import numpy as np
from astropy.table import vstack
from scipy.optimize import least_squares

from surveynet.constants import LYA_REST
from surveynet.dla.catalog import Catalog, read_catalog, write_catalog
from surveynet.dla.data import read_sightlines
from surveynet.dla.insert import dla_transmission
from surveynet.dla.predict import load_finders
from surveynet.sim.voigt import voigt_tau

sys.path.insert(0, str(Path(__file__).parent))

FS = 0.3  # forest scatter


def soft(r):
    """Soft-L1 loss of residuals ``r``."""
    return 2.0 * (np.sqrt(1.0 + r * r) - 1.0)


def fit_one(ww, ff, ee, lam_a, n_a, zq, others=()):
    """One- and two-absorber fits around the absorber at ``lam_a`` (A), log N ``n_a``."""
    half = 130.0
    sel = (np.abs(ww - lam_a) <= half) & np.isfinite(ee) & (ee > 0) & (ee < 1e3) & np.isfinite(ff)
    sel &= ww <= 1195.0 * (1 + zq)
    if sel.sum() < 40:
        return None
    w, f, e = ww[sel], ff[sel], ee[sel]
    x = (w - lam_a) / 100.0
    top = np.sort(f)
    chat = max(float(np.mean(top[top.size // 2 :])), 1e-3)
    oth = [(lam / LYA_REST - 1, n) for lam, n in others if abs(lam - lam_a) < 250]
    t_oth = dla_transmission(w, oth) if oth else np.ones_like(w)

    def T(ps):
        return dla_transmission(w, [(lam / LYA_REST - 1, n) for lam, n in ps]) * t_oth

    s = np.sqrt(e**2 + (FS * chat * T([(lam_a, n_a)])) ** 2)

    def res(p, k):
        comps = [(p[2 * i], p[2 * i + 1]) for i in range(k)]
        return (f - (p[-2] + p[-1] * x) * T(comps)) / s

    def lin(t):
        a = np.stack([t, t * x], 1) / s[:, None]
        c, *_ = np.linalg.lstsq(a, f / s, rcond=None)
        return c

    lo1 = [lam_a - 30, 19.0, -np.inf, -np.inf]
    hi1 = [lam_a + 30, 23.0, np.inf, np.inf]
    best1 = None
    for d0 in (0.0, -8.0, 8.0):
        c = lin(T([(lam_a + d0, n_a)]))
        q = least_squares(
            res,
            [lam_a + d0, n_a, c[0], c[1]],
            args=(1,),
            bounds=(lo1, hi1),
            loss="soft_l1",
            x_scale=[1, 0.05, 0.1, 0.1],
            max_nfev=100,
        )
        cst = soft(res(q.x, 1)).sum()
        if best1 is None or cst < best1[0]:
            best1 = (cst, q.x)
    cost1, p1 = best1
    # grid for a second component with the first fixed (no LSF in the grid)
    t1 = T([(p1[0], p1[1])])
    ns = np.arange(19.9, 21.81, 0.2)
    gbest = []
    for l2 in np.arange(lam_a - 100, lam_a + 100.1, 2.0):
        if abs(l2 - p1[0]) < 12:
            continue
        phi = voigt_tau(w, l2 / LYA_REST - 1, 0.0)
        tt = t1[None, :] * np.exp(-(10.0 ** ns[:, None]) * phi[None, :])
        wgt = 1 / s**2
        a11 = (wgt * tt * tt).sum(1)
        a12 = (wgt * tt * tt * x).sum(1)
        a22 = (wgt * tt * tt * x * x).sum(1)
        b1 = (wgt * tt * f).sum(1)
        b2 = (wgt * tt * x * f).sum(1)
        det = a11 * a22 - a12**2
        c0 = (a22 * b1 - a12 * b2) / det
        c1 = (a11 * b2 - a12 * b1) / det
        cost = soft((f - (c0[:, None] + c1[:, None] * x) * tt) / s).sum(1)
        k = int(np.argmin(cost))
        gbest.append((cost[k], l2, ns[k], c0[k], c1[k]))
    gbest.sort()
    starts = [(p1[0], p1[1], g[1], g[2], g[3], g[4]) for g in gbest[:2]]
    for d in (15, 25):
        starts.append((p1[0] - d, p1[1] - 0.3, p1[0] + d, p1[1] - 0.3, p1[2], p1[3]))
    lo = [lam_a - 110, 19.0, lam_a - 110, 19.0, -np.inf, -np.inf]
    hi = [lam_a + 110, 23.0, lam_a + 110, 23.0, np.inf, np.inf]
    best2 = None
    for p0 in starts:
        p0 = np.clip(p0, np.array(lo) + 1e-6, np.array(hi) - 1e-6)
        q = least_squares(
            res,
            p0,
            args=(2,),
            bounds=(lo, hi),
            loss="soft_l1",
            x_scale=[1, 0.05, 1, 0.05, 0.1, 0.1],
            max_nfev=150,
        )
        cst = soft(res(q.x, 2)).sum()
        if best2 is None or cst < best2[0]:
            best2 = (cst, q.x)
    return dict(n=int(sel.sum()), cost1=cost1, p1=p1, cost2=best2[0], p2=best2[1])


def run_fits(mock, cat_path, out, nmax=10**9):
    """Fit every S/N > 3 catalogue absorber of log N >= 20; rows saved to ``out`` (npy)."""
    fd = next(f for f in load_finders(None) if f.data.camera == "all")
    data = dataclasses.replace(fd.data, skip_bal=True)
    cat = read_catalog(cat_path)
    q = cat.qsos
    s2n = {int(t): float(s) for t, s in zip(q["TARGETID"], q["S2N"], strict=True)}
    d = cat.dlas
    want = {}
    for i in range(len(d)):
        t = int(d["TARGETID"][i])
        if (
            s2n.get(t, 0) > 3
            and d["NHI"][i] >= 20.0
            and str(d["ABSORBER_TYPE"][i]).strip() != "LYB"
        ):
            want.setdefault(t, []).append(i)
    rows = []
    t0 = time.time()
    for p in sorted(glob.glob(mock + "/coadd-*.fits")):
        for sl in read_sightlines(p, mock + "/truth.fits", data):
            if sl.targetid not in want:
                continue
            ww = 10**sl.loglam
            allrows = np.flatnonzero(np.asarray(d["TARGETID"]) == sl.targetid)
            for i in want[sl.targetid]:
                lam_a = (1 + float(d["Z_DLA"][i])) * LYA_REST
                oth = [
                    ((1 + float(d["Z_DLA"][k])) * LYA_REST, float(d["NHI"][k]))
                    for k in allrows
                    if k != i and str(d["ABSORBER_TYPE"][k]).strip() != "LYB"
                ]
                r = fit_one(
                    ww,
                    np.asarray(sl.flux, float),
                    np.asarray(sl.error, float),
                    lam_a,
                    float(d["NHI"][i]),
                    sl.z_qso,
                    oth,
                )
                if r is None:
                    continue
                rows.append(
                    [
                        i,
                        sl.targetid,
                        lam_a,
                        float(d["NHI"][i]),
                        r["n"],
                        r["cost1"],
                        *r["p1"][:2],
                        r["cost2"],
                        *r["p2"][:4],
                    ]
                )
                if len(rows) % 100 == 0:
                    print(len(rows), time.time() - t0, flush=True)
        if len(rows) >= nmax:
            break
    np.save(out, np.array(rows))


def split(cat, a, gain_min, sep_min=12.0, nmin=20.0):
    """The catalogue with the absorbers whose two-absorber fit gains >= ``gain_min`` split."""
    d = cat.dlas.copy()
    drop, new = [], []
    for r in a:
        i, tid, _, _, _, c1, _, _, c2, la, na, lb, nb = r
        gain = c1 - c2
        if gain < gain_min or abs(la - lb) < sep_min or min(na, nb) < nmin:
            continue
        i = int(i)
        same = np.flatnonzero(np.asarray(d["TARGETID"]) == int(tid))
        others = [(1 + d["Z_DLA"][k]) * LYA_REST for k in same if k != i]
        rows = []
        for lam, n in ((la, na), (lb, nb)):
            if any(abs(lam - o) < 10 for o in others):
                continue
            rr = d[i : i + 1].copy()
            rr["Z_DLA"] = lam / LYA_REST - 1
            rr["NHI"] = n
            rr["ABSORBER_TYPE"] = "DLA" if n >= 20.3 else "SUBDLA"
            rows.append(rr)
        if rows:
            drop.append(i)
            new += rows
    keep = np.ones(len(d), bool)
    keep[drop] = False
    out = vstack([d[keep], *new]) if new else d
    return Catalog(dlas=out, qsos=cat.qsos), len(drop)


if __name__ == "__main__":
    from heldout_figures import figures

    cmd, *args = sys.argv[1:]
    if cmd == "fit":
        run_fits(*args[:3])
    else:
        cat_path, truth, npy, gains = args[:4]
        a = np.load(npy)
        cat = read_catalog(cat_path)
        for g in [float(x) for x in gains.split(",")]:
            c, nsplit = split(cat, a, g)
            p = npy + f".gain{g}.fits"
            write_catalog(p, c, overwrite=True)
            f = figures(p, truth)["s2n_gt_3"]
            print(
                f"gain >= {g}: {nsplit} split: C {f['completeness']:.4f} P {f['purity']:.4f} "
                f"tp {f['tp']} fp {f['fp']} fn {f['fn']} sigma(dz) {f['dz']['std']:.5f}"
            )
