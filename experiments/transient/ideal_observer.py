"""Figures of the bundled transient models by S/N, against a matched-filter ideal observer.

Usage::

    python experiments/transient/ideal_observer.py CUTDIR DETDIR SIMDIR INFER_DIFF.fits \
        INFER_TRIPLET.fits --out REPORT.json

``CUTDIR`` holds the labelled ``cutouts.fits`` of a freshly simulated held-out mock, ``DETDIR``
its detect folder (difference and noise maps), ``SIMDIR`` the simulated frames (their headers
carry the true PSF: ``FWHM``, ``PSFBETA``, ``PSFGX``, ``PSFGY``, ``PSFELL``, ``PSFANG``).

Ideal observer: it knows the true PSF of the difference image (the broader epoch's Moffat PSF
at the candidate's position, i.e. the PSF the matched kernel produces) and fits its amplitude at
the candidate position by weighted least squares on the difference with its noise map
(matched filter: S/N_mf = sum(D P / s^2) / sqrt(sum(P^2 / s^2))). Its score is the Gaussian
log-likelihood ratio of that PSF fit against the best of "nothing" and "one hot pixel or cosmic
hit in the central 3 x 3 pixels": S/N_mf^2 - max(z_j)^2 (signed). What the networks lose below
S/N 5 relative to this score is what they lose beyond the noise (it knows nothing of other
artefacts, so it is not an upper bound for bad columns or subtraction residuals).

Figures, per S/N bin of the candidate on the difference (``SNR``): ROC AUC and the FPR at
TPR 99 % of each model and of the ideal observer, for all non-edge candidates (``all_*``) and
for those without any quality flag (``flags0_*``: not near masked or saturated pixels, not
blended, aperture not truncated); written as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from surveynet.sim.images import moffat_stamp, psf_from_header
from surveynet.transient.evaluate import fpr_at_tpr, roc_auc, roc_curve

BINS = [
    (0.0, 5.0),
    (5.0, 1e9),
    (0.0, 3.0),
    (3.0, 4.0),
    (4.0, 5.0),
    (5.0, 7.0),
    (7.0, 10.0),
    (10.0, 1e9),
]


def ideal_scores(cands: Table, detdir: Path, simdir: Path, half: int = 7) -> np.ndarray:
    """Matched-filter S/N of every candidate with the true PSF."""
    out = np.zeros(len(cands))
    by_file: dict[str, list[int]] = {}
    for i, f in enumerate(cands["FILE"]):
        by_file.setdefault(str(f), []).append(i)
    for fname, rows in by_file.items():
        stem = fname.replace("_sci.fits", "")
        with fits.open(detdir / f"{stem}_diff.fits") as h:
            d = np.asarray(h["DIFF"].data, float)
            e = np.asarray(h["ERR"].data, float)
            conv = h[0].header["CONVOLVD"]
        broad = "ref" if conv == "science" else "sci"
        psf = psf_from_header(fits.getheader(simdir / f"{stem}_{broad}.fits"))
        ny, nx = d.shape
        for i in rows:
            x, y = float(cands["X"][i]), float(cands["Y"][i])
            ix, iy = round(x), round(y)
            if not (half <= ix < nx - half and half <= iy < ny - half):
                continue
            f, ell = psf.at(x, y)
            p = moffat_stamp(2 * half + 1, f, psf.beta, x - ix, y - iy, ell, psf.angle)
            dd = d[iy - half : iy + half + 1, ix - half : ix + half + 1]
            ee = e[iy - half : iy + half + 1, ix - half : ix + half + 1]
            w = np.where(ee > 0, 1.0 / np.where(ee > 0, ee, 1.0) ** 2, 0.0)
            den = np.sum(p * p * w)
            if den <= 0:
                continue
            snr_mf = np.sum(dd * p * w) / np.sqrt(den)
            # likelihood ratio (Gaussian noise): PSF of free amplitude against the best of
            # "nothing" and "a single hot pixel / cosmic hit" in the central 3 x 3 pixels:
            # chi2_0 - chi2_psf = snr_mf^2, chi2_0 - chi2_delta = max z_j^2
            zc = (dd * np.sqrt(w))[half - 1 : half + 2, half - 1 : half + 2]
            out[i] = np.sign(snr_mf) * snr_mf**2 - max(0.0, float(np.max(zc)) ** 2)
    return out


def figures(y: np.ndarray, s: np.ndarray) -> dict[str, float | None]:
    """AUC and FPR at TPR 99 %."""
    if not y.any() or y.all():
        return {"auc": None, "fpr_at_tpr99": None}
    fpr, tpr, _ = roc_curve(y, s)
    return {"auc": round(roc_auc(fpr, tpr), 5), "fpr_at_tpr99": round(fpr_at_tpr(y, s), 5)}


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cutdir", type=Path)
    ap.add_argument("detdir", type=Path)
    ap.add_argument("simdir", type=Path)
    ap.add_argument("infer", nargs="+", type=Path, help="INFER.fits of each model")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    cands = Table.read(a.cutdir / "cutouts.fits", hdu="CANDIDATES")
    keep = ~np.asarray(cands["EDGE"], bool)
    y = np.asarray(cands["LABEL"]) == 1
    snr = np.asarray(cands["SNR"], float)
    scores = {"ideal_observer": ideal_scores(cands, a.detdir, a.simdir)}
    for f in a.infer:
        t = Table.read(f, hdu="SCORES")
        m = dict(zip(np.asarray(t["CANDID"]), np.asarray(t["LABEL1"]), strict=True))
        scores[f.stem] = np.array([m.get(c, np.nan) for c in cands["CANDID"]])
    clean = np.asarray(cands["FLAGS"]) == 0
    rep: dict[str, object] = {"n": int(keep.sum()), "n_real": int(y[keep].sum())}
    for subset, base in (("all", keep), ("flags0", keep & clean)):
        for lo, hi in BINS:
            sel = base & (snr >= lo) & (snr < hi)
            key = f"{subset}_snr_{lo:g}_{'inf' if hi > 1e8 else f'{hi:g}'}"
            entry: dict[str, object] = {
                "n_real": int(y[sel].sum()),
                "n_bogus": int((~y[sel]).sum()),
            }
            for name, s in scores.items():
                entry[name] = figures(y[sel], s[sel])
            rep[key] = entry
    a.out.write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
