"""ZOGY proper image subtraction (Zackay, Ofek & Gal-Yam 2016): noise, source position and S/N
on a synthetic pair with known Gaussian PSFs, and ``detect`` with ``detect.method=zogy``."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from surveynet.cli import main
from surveynet.sim.images import ImageSimConfig, read_truth, simulate_pair, write_pair
from surveynet.transient.subtract import read_frame, subtract, zogy_difference


def _gauss(shape, x0, y0, fwhm):
    """Unit-sum sampled circular Gaussian centred on (x0, y0) (0-based, x = column)."""
    y, x = np.indices(shape, dtype=float)
    g = np.exp(-0.5 * ((x - x0) ** 2 + (y - y0) ** 2) / (fwhm / 2.3548) ** 2)
    return g / g.sum()


def _stamp(fwhm, size=21):
    return _gauss((size, size), size // 2, size // 2, fwhm)


def test_zogy_unit_noise_position_and_snr():
    """Known PSFs (FWHM 3.2 px new, 2.2 px reference), a deeper reference on another flux scale
    (F_r / F_n = 2), static stars and one new point source of S/N ~ 25.

    Tolerances: background std of D within 5 % of 1 and neighbouring pixels uncorrelated
    (|rho| < 0.05) on ~9,400 source-free pixels; static stars leave matched-filter residuals
    below 5 sigma; the new source peaks within 0.5 px of its position; its matched-filter S/N is
    within 15 % of the expected ``F_D alpha ||P_D||_2`` and of the Fourier-space optimum of
    ZOGY's eq. 13-15, and below the noiseless-reference bound.
    """
    rng = np.random.default_rng(11)
    shape = (128, 128)
    fw_n, fw_r = 3.2, 2.2
    s_n, s_r = 5.0, 2.0
    f_n, f_r = 1.0, 2.0
    stars = [
        (30.4, 30.2, 8000.0),
        (95.7, 35.1, 5000.0),
        (32.2, 100.6, 12000.0),
        (100.1, 98.3, 3000),
    ]
    xs, ys, alpha = 64.3, 61.7, 1300.0  # the transient's true flux (counts in N: f_n * alpha)
    sky_n = sum(f * _gauss(shape, x, y, fw_n) for x, y, f in stars)
    sky_r = sum(f * _gauss(shape, x, y, fw_r) for x, y, f in stars)
    new = f_n * (sky_n + alpha * _gauss(shape, xs, ys, fw_n)) + rng.normal(0, s_n, shape)
    ref = f_r * sky_r + rng.normal(0, s_r, shape)
    res = zogy_difference(
        new, ref, _stamp(fw_n), _stamp(fw_r), sigma_new=s_n, sigma_ref=s_r, f_new=f_n, f_ref=f_r
    )
    d = res.difference
    y, x = np.indices(shape)
    far = np.ones(shape, bool)
    for sx, sy, _ in [*stars, (xs, ys, 0)]:
        far &= np.hypot(x - sx, y - sy) > 12
    far[:10] = far[-10:] = False
    far[:, :10] = far[:, -10:] = False
    assert far.sum() > 9000
    assert abs(d[far].std() - 1.0) < 0.05
    both = far[:, 1:] & far[:, :-1]
    rho = np.corrcoef(d[:, 1:][both], d[:, :-1][both])[0, 1]
    assert abs(rho) < 0.05
    # matched filter of D with its PSF (the ZOGY score up to F_D): S/N at a position
    pd = res.psf
    norm = np.sqrt((pd**2).sum())

    def snr_at(x0, y0):
        k = _gauss(shape, x0, y0, 1.0) * 0  # template: P_D shifted onto (x0, y0)
        h = pd.shape[0] // 2
        ix, iy = round(x0), round(y0)
        k[iy - h : iy + h + 1, ix - h : ix + h + 1] = pd
        return float((d * k).sum() / norm)

    for sx, sy, _ in stars:
        assert abs(snr_at(sx, sy)) < 5.0
    # position: peak of the matched-filtered D
    from scipy import ndimage

    score = ndimage.correlate(d, pd, mode="constant")
    iy, ix = np.unravel_index(np.argmax(score), shape)
    sub = score[iy - 1 : iy + 2, ix - 1 : ix + 2]
    cy = iy + (sub.sum(axis=1) * [-1, 0, 1]).sum() / sub.sum()
    cx = ix + (sub.sum(axis=0) * [-1, 0, 1]).sum() / sub.sum()
    assert np.hypot(cx - xs, cy - ys) < 0.5
    # S/N: expected from F_D and P_D, and from the Fourier optimum (eq. 13-15)
    expect = res.flux_zp * alpha * norm
    k = 256
    pn = np.abs(np.fft.fft2(_stamp(fw_n), (k, k))) ** 2
    pr = np.abs(np.fft.fft2(_stamp(fw_r), (k, k))) ** 2
    opt = alpha * np.sqrt(
        (f_n**2 * f_r**2 * pn * pr / (s_n**2 * f_r**2 * pr + s_r**2 * f_n**2 * pn)).sum() / k**2
    )
    measured = snr_at(xs, ys)
    assert expect == pytest.approx(opt, rel=0.05)
    assert measured == pytest.approx(expect, rel=0.15)
    bound = f_n * alpha * np.sqrt((_stamp(fw_n) ** 2).sum()) / s_n  # perfect reference
    assert 20 < measured < bound * 1.05


def test_zogy_bad_input():
    p = _stamp(2.5)
    a = np.zeros((32, 32))
    with pytest.raises(ValueError, match="same shape"):
        zogy_difference(a, np.zeros((32, 31)), p, p, sigma_new=1.0, sigma_ref=1.0)
    with pytest.raises(ValueError, match="odd-sided"):
        zogy_difference(a, a, np.ones((4, 4)), p, sigma_new=1.0, sigma_ref=1.0)
    with pytest.raises(ValueError, match="positive"):
        zogy_difference(a, a, p, p, sigma_new=0.0, sigma_ref=1.0)


SMALL = ImageSimConfig(
    ny=200,
    nx=200,
    n_stars=120,
    n_galaxies=6,
    n_transients=12,
    n_cosmics=4,
    n_hot=4,
    star_mags=(14.0, 22.0),
    seed=4,
)


def test_detect_zogy_end_to_end(tmp_path):
    """``detect --set detect.method=zogy`` on a tiny mock: ERR scale from random apertures
    (``NOISECOR``) within 0.8-1.6 (1.39 here, the Alard-Lupton difference of the same crowded
    200 x 200 px frame needs 1.63; ~1.1 on the 512 px frames of ``mock.json``), PSF of D in
    KERNEL, >= 75 % of the transients brighter than r 20 found within 2 px."""
    paths = write_pair(simulate_pair(SMALL, np.random.default_rng(4)), tmp_path / "sim", "pair000")
    det = tmp_path / "det"
    argv = ["transient", "detect", str(paths["sci"]), "--reference", str(paths["ref"])]
    assert main([*argv, "--out", str(det), "--set", "detect.method=zogy", "--quiet"]) == 0
    with fits.open(det / "pair000_diff.fits") as h:
        assert h[0].header["CONVOLVD"] == "zogy"
        assert 0.8 < h[0].header["NOISECOR"] < 1.6
        pd = h["KERNEL"].data[0]
        assert pd.sum() == pytest.approx(1.0, abs=1e-4)
        assert np.unravel_index(np.argmax(pd), pd.shape) == (pd.shape[0] // 2,) * 2
    cands = Table.read(det / "pair000_cands.fits", hdu="CANDIDATES")
    truth = read_truth(paths["truth"])
    tr = truth[(truth["kind"] == "transient") & (truth["mag"] < 20.0)]
    tr = tr[(tr["x_sci"] > 20) & (tr["x_sci"] < 180) & (tr["y_sci"] > 20) & (tr["y_sci"] < 180)]
    assert len(tr) >= 2
    found = [np.hypot(cands["X"] - t["x_sci"], cands["Y"] - t["y_sci"]).min() < 2.0 for t in tr]
    assert np.mean(found) >= 0.75
    # the same frames through the library, and a bad method name
    sci, ref = read_frame(paths["sci"]), read_frame(paths["ref"])
    with pytest.raises(ValueError, match="unknown subtraction method"):
        subtract(sci, ref, method="hotpants")
