"""Trial (dropped): Voigt refit of strong absorbers, position and N_HI from the profile itself.

    python experiments/dla/voigt_refit.py MOCKDIR CATALOG.fits [N_MAX] [KWARGS]

compares, for the catalogue's DLAs at S/N > 3 that lie within 60 A of a truth absorber (first
two files of MOCKDIR), the network's position and the refit's: the fraction within 10 A and the
N_HI scatter (experiments/dla/README.md, fourth round). KWARGS are :func:`refit_absorber`
keywords, e.g. "margin=5,search=30".

The network's vote peak of a strong DLA wanders inside the black core (the offsets predicted
there are shrunk towards 0), which puts many absorbers 10-40 A off. Here the absorber found by
the network is refitted with the model

    F(lambda) = (c0 + c1 x) exp(-tau_Lya(lambda; z, N_HI)),    x = (lambda - lambda_0) / 100 A,

the transmission smoothed by the instrument (Gaussian of FWHM ``fwhm_pix`` pixels, as the mocks
and the DESI injection code), on a window around the network's position (below). The
Lyman-alpha forest is the noise of this fit: each pixel's variance is sigma^2 +
(``forest_sigma`` c T)^2 (no forest scatter where the model is black, so the core edges carry the
position) and residuals enter through the robust soft-L1 loss (forest lines only
absorb, one strong line next to the core must not drag it).

1. grid: z over +-``search`` A around the network's position in steps of one pixel, log N_HI
   over +-``nhi_search`` dex in steps of 0.05; c0, c1 by weighted linear least squares at every
   node; the node of smallest robust cost wins;
2. refinement: :func:`scipy.optimize.least_squares` (z, log N_HI, c0, c1) from the best node,
   bounded to the grid's range.

The fitting window covers the core (out to optical depth 1) of the largest N_HI searched plus a
margin, never redward of rest 1195 A of the quasar (the Lyman-alpha emission line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import least_squares

from surveynet.constants import LYA_REST
from surveynet.dla.insert import dla_transmission
from surveynet.sim.voigt import voigt_tau

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


from surveynet.sim.voigt import core_half_width  # noqa: E402


@dataclass
class RefitResult:
    """Outcome of :func:`refit_absorber`.

    Attributes
    ----------
    z : float
        Fitted absorber redshift.
    nhi : float
        Fitted log N_HI.
    cost_gain : float
        Robust cost of the network's (z, N_HI) minus that of the fit, per fitted pixel (>= 0).
    n_pix : int
        Pixels in the fit.
    ok : bool
        The fit ran (enough pixels with data).
    """

    z: float
    nhi: float
    cost_gain: float
    n_pix: int
    ok: bool


def _soft_l1(r: NDArray[np.float64]) -> NDArray[np.float64]:
    return 2.0 * (np.sqrt(1.0 + r * r) - 1.0)


def refit_absorber(
    wave: NDArray[np.float64],
    flux: NDArray[np.float64],
    error: NDArray[np.float64],
    z0: float,
    nhi0: float,
    *,
    search: float = 40.0,
    nhi_search: float = 0.6,
    margin: float = 30.0,
    z_qso: float | None = None,
    red_rest_max: float = 1195.0,
    forest_sigma: float = 0.3,
    b_kms: float = 30.0,
    fwhm_pix: float = 3.0,
    min_pixels: int = 20,
    grid_step: float = 1.0,
) -> RefitResult:
    """Refit one absorber of a normalised sightline with a Voigt profile and a linear continuum.

    Parameters
    ----------
    wave, flux, error : ndarray
        Observed wavelength (A, constant velocity step), normalised flux and its 1-sigma error
        (``inf`` where there is no data).
    z0, nhi0 : float
        The network's redshift and log N_HI.
    search : float
        The fitted Lyman-alpha centre stays within this many observed A of the network's.
    nhi_search : float
        The fitted log N_HI stays within this many dex of the network's.
    margin : float
        Fitting window: +-(``search`` + core half-width + ``margin``) A around the network's
        centre, the core half-width (:func:`core_half_width`, tau = 1) of the largest N_HI
        searched.
    z_qso : float, optional
        Quasar redshift: pixels redward of ``red_rest_max`` (1 + z_qso), on the Lyman-alpha
        emission line whose shape a linear continuum cannot follow, are left out.
    red_rest_max : float
        See ``z_qso``.
    forest_sigma : float
        Scatter of the forest transmission relative to the continuum (variance term).
    b_kms, fwhm_pix : float
        Doppler parameter and instrumental FWHM (pixels) of the model.
    grid_step : float
        Grid nodes per pixel in z.
    min_pixels : int
        Fewer pixels with data in the window: no fit (``ok`` False, the input returned).

    Examples
    --------
    >>> import numpy as np
    >>> from surveynet.dla.insert import dla_transmission
    >>> wave = 3600.0 * 10 ** (np.arange(1500) * 2.1e-4 / np.log(10) / 1.0)
    >>> truth = dla_transmission(wave, [(2.5, 21.0)])
    >>> err = np.full(wave.size, 0.05)
    >>> flux = truth + err * np.random.default_rng(1).normal(size=wave.size)
    >>> r = refit_absorber(wave, flux, err, 2.5 + 20.0 / 1215.67, 20.7)
    >>> bool(abs(r.z - 2.5) * 1215.67 < 1.0 and abs(r.nhi - 21.0) < 0.05)
    True
    """
    w = np.asarray(wave, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    lam0 = LYA_REST * (1.0 + z0)
    reach = search + core_half_width(nhi0 + nhi_search, z0, b_kms=b_kms) + margin
    sel = (np.abs(w - lam0) <= reach) & np.isfinite(e) & (e > 0) & np.isfinite(f)
    if z_qso is not None:
        sel &= w <= red_rest_max * (1.0 + z_qso)
    lo_i, hi_i = np.searchsorted(w, [lam0 - reach, lam0 + reach])
    idx = np.arange(lo_i, hi_i)
    good = sel[lo_i:hi_i]
    if int(good.sum()) < min_pixels:
        return RefitResult(z0, nhi0, 0.0, int(good.sum()), False)
    ww = w[idx]
    ff = np.where(good, f[idx], 0.0)
    ee = np.where(good, e[idx], 1.0)
    x = (ww - lam0) / 100.0
    top = np.sort(ff[good])
    c_hat = float(np.mean(top[top.size // 2 :])) if top.size else 1.0
    c_hat = max(c_hat, 1e-3)
    sig_pix = fwhm_pix * _FWHM_TO_SIGMA

    def transmission(z: float, lognhi: float) -> NDArray[np.float64]:
        return dla_transmission(ww, [(z, lognhi)], b_kms=b_kms, fwhm_pix=fwhm_pix)

    def sigma(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.sqrt(ee**2 + (forest_sigma * c_hat * t) ** 2)

    def linear(t: NDArray[np.float64]) -> tuple[float, float, float]:
        s = sigma(t)
        a = np.stack([t, t * x], axis=1)[good] / s[good, None]
        c, *_ = np.linalg.lstsq(a, ff[good] / s[good], rcond=None)
        r = (ff - (c[0] + c[1] * x) * t) / s
        return float(c[0]), float(c[1]), float(np.sum(_soft_l1(r[good])))

    dz_pix = float(np.median(np.diff(ww))) / LYA_REST / grid_step
    dz_max = search / LYA_REST
    zs = z0 + np.arange(-dz_max, dz_max + 0.5 * dz_pix, dz_pix)
    ns = nhi0 + np.arange(-nhi_search, nhi_search + 1e-9, 0.05)
    gx, gf, ge = x[good], ff[good], ee[good]
    best = (np.inf, z0, nhi0, 1.0, 0.0)
    for z in zs:
        # tau is linear in N: one Voigt evaluation per z, every N_HI of the grid from it
        phi = voigt_tau(ww, z, 0.0, b_kms=b_kms)
        t = np.exp(-(10.0 ** ns[:, None]) * phi[None, :])
        if sig_pix > 0:
            t = gaussian_filter1d(t, sig_pix, axis=1, mode="nearest")
        t = t[:, good]
        wgt = 1.0 / (ge**2 + (forest_sigma * c_hat * t) ** 2)
        # weighted linear least squares for (c0, c1) of every row: 2x2 normal equations
        a11 = np.sum(wgt * t * t, axis=1)
        a12 = np.sum(wgt * t * t * gx, axis=1)
        a22 = np.sum(wgt * t * t * gx * gx, axis=1)
        b1 = np.sum(wgt * t * gf, axis=1)
        b2 = np.sum(wgt * t * gx * gf, axis=1)
        det = a11 * a22 - a12 * a12
        det = np.where(np.abs(det) > 1e-300, det, np.inf)
        c0 = (a22 * b1 - a12 * b2) / det
        c1 = (a11 * b2 - a12 * b1) / det
        r = (gf - (c0[:, None] + c1[:, None] * gx) * t) * np.sqrt(wgt)
        cost = np.sum(_soft_l1(r), axis=1)
        k = int(np.argmin(cost))
        if cost[k] < best[0]:
            best = (float(cost[k]), float(z), float(ns[k]), float(c0[k]), float(c1[k]))
    cost0 = linear(transmission(z0, nhi0))[2]
    _, zb, nb, c0b, c1b = best
    s_fixed = sigma(transmission(zb, nb))[good]

    def resid(p: NDArray[np.float64]) -> NDArray[np.float64]:
        t = transmission(p[0], p[1])
        return ((ff - (p[2] + p[3] * x) * t)[good]) / s_fixed

    lo = [z0 - dz_max, nhi0 - nhi_search, -np.inf, -np.inf]
    hi = [z0 + dz_max, nhi0 + nhi_search, np.inf, np.inf]
    p0 = np.clip([zb, nb, c0b, c1b], np.array(lo) + 1e-12, np.array(hi) - 1e-12)
    try:
        sol = least_squares(
            resid, p0, bounds=(lo, hi), loss="soft_l1", x_scale=[dz_pix, 0.05, 0.1, 0.1]
        )
        zf, nf = float(sol.x[0]), float(sol.x[1])
        cost_f = float(np.sum(_soft_l1(resid(sol.x))))
        if cost_f > best[0]:
            zf, nf, cost_f = zb, nb, best[0]
    except (ValueError, np.linalg.LinAlgError):
        zf, nf, cost_f = zb, nb, best[0]
    n_fit = int(good.sum())
    return RefitResult(zf, nf, max(0.0, (cost0 - cost_f) / n_fit), n_fit, True)


def main(argv: list[str]) -> None:
    import dataclasses
    import glob

    from surveynet.dla.catalog import read_catalog
    from surveynet.dla.data import read_sightlines
    from surveynet.dla.predict import load_finders

    mockdir, cat_in = argv[:2]
    nmax = int(argv[2]) if len(argv) > 2 else 400
    pairs = [kv.split("=") for kv in (argv[3].split(",") if len(argv) > 3 else [])]
    kw = {k.strip(): float(v) for k, v in pairs}
    fd = next(f for f in load_finders(None) if f.data.camera == "all")
    data = dataclasses.replace(fd.data, skip_bal=True)
    cat = read_catalog(cat_in).dlas
    sls = {}
    for p in sorted(glob.glob(mockdir + "/coadd-00[01].fits")):
        for sl in read_sightlines(p, mockdir + "/truth.fits", data):
            sls[sl.targetid] = sl
    rows = []
    for i in range(len(cat)):
        tid = int(cat["TARGETID"][i])
        if tid not in sls or cat["NHI"][i] < 20.3 or sls[tid].s2n < 3 or not sls[tid].dlas:
            continue
        sl = sls[tid]
        lam = (1 + cat["Z_DLA"][i]) * LYA_REST
        tr = min(sl.dlas, key=lambda d: abs(d.central_wavelength - lam))
        if abs(tr.central_wavelength - lam) > 60:
            continue
        r = refit_absorber(
            sl.wave, sl.flux, sl.error, cat["Z_DLA"][i], cat["NHI"][i], z_qso=sl.z_qso, **kw
        )
        rows.append(
            (
                lam - tr.central_wavelength,
                (1 + r.z) * LYA_REST - tr.central_wavelength,
                cat["NHI"][i] - tr.nhi,
                r.nhi - tr.nhi,
            )
        )
        if len(rows) >= nmax:
            break
    a = np.array(rows)
    print(f"{len(a)} DLAs (S/N > 3) within 60 A of a truth absorber")
    for j, name in ((0, "network"), (1, "Voigt refit")):
        print(
            f"{name:12s} within 10 A: {np.mean(np.abs(a[:, j]) < 10):.3f}  "
            f"std dlogN: {a[:, j + 2].std():.3f}"
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
