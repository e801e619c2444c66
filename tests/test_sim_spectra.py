"""Spectral mocks: golden checks of simulation.md section 10, truth consistency, files, CLI,
templates.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import shared_path
from surveynet.config import from_dict
from surveynet.constants import LYA_ROUNDED
from surveynet.errors import ConfigError, InputError
from surveynet.sim import igm, instrument
from surveynet.sim.spectra import (
    QSO_LINES,
    SpectraSimConfig,
    parse_mix,
    preset_config,
    qso_line_profile,
    simulate_spectra,
    simulate_to_files,
)
from surveynet.sim.voigt import rest_equivalent_width, voigt_tau

QUIET = dict(
    noise=False,
    forest=False,
    bal_fraction=0.0,
    dla_probability=0.0,
    lyman_limit=False,
    dead_fibre_fraction=0.0,
    masked_pixel_fraction=0.0,
    frac_bad=0.0,
)


# ------------------------------------------------------------------------------- golden checks
def test_grids():
    spec, _ = simulate_spectra(3, seed=0)
    expect = {"b": (3600.0, 5800.0, 2751), "r": (5760.0, 7620.0, 2326), "z": (7520.0, 9824.0, 2881)}
    for b, (lo, hi, n) in expect.items():
        w = spec.wave[b]
        assert w.size == n
        assert w[0] == pytest.approx(lo, abs=1e-9) and w[-1] == pytest.approx(hi, abs=1e-6)
        assert np.allclose(np.diff(w), 0.8, atol=1e-9)
        assert spec.flux[b].shape == (3, n) and spec.resolution is not None
        assert spec.resolution[b].shape == (3, 11, n)


def test_ab_magnitude():
    # AB 22 flat f_nu -> 1.408e-17 erg/s/cm2/A at 3500 A (+-0.1 %)
    assert float(instrument.ab_flam(22.0, 3500.0)) == pytest.approx(1.408e-17, rel=1e-3)


def test_synthetic_mag_of_flat_source():
    flam = instrument.ab_flam(20.0, instrument.master_wave()) / 1e-17
    m = instrument.synthetic_mags(flam[None, :])
    for b in "grz":  # a flat-f_nu source has the same AB magnitude in every band (1e-3 mag)
        assert m[b][0] == pytest.approx(20.0, abs=1e-3)


@pytest.mark.parametrize(("lognhi", "ew"), [(19.5, 4.11), (20.0, 7.26), (20.3, 10.2), (21.0, 22.4)])
def test_voigt_equivalent_width(lognhi, ew):
    # b = 30 km/s, integrated over +-30,000 km/s: within 1 % of simulation.md 3.4
    assert rest_equivalent_width(lognhi) == pytest.approx(ew, rel=0.01)


def test_voigt_peak_tau():
    tau = voigt_tau(np.array([LYA_ROUNDED * 3.5]), 2.5, 20.5)
    assert tau[0] == pytest.approx(2.526e-14 * 10**20.5, rel=5e-3)


def test_forest_mean_matches_fit():
    """10^4 noise-free sightlines: mean transmission in dz = 0.1 bins within 0.5 % of F(z)."""
    rng = np.random.default_rng(11)
    wave = instrument.master_wave()
    edges = np.arange(2.0, 3.51, 0.1)
    s_f = np.zeros(edges.size - 1)
    s_fbar = np.zeros(edges.size - 1)
    cnt = np.zeros(edges.size - 1)
    fbar_pix = igm.mean_transmission(wave / LYA_ROUNDED - 1.0)
    for _ in range(10):
        zq = rng.uniform(2.2, 3.8, 1000)
        tau = igm.forest_tau(wave, zq, rng, sigma_g=2.3, corr_px=1.0, lyb=True)  # the default
        m = tau.shape[1]
        rest = wave[None, :m] / (1.0 + zq[:, None])
        use = (rest > 1040.0) & (rest < 1200.0)  # Lyman-alpha-only forest
        zabs = np.broadcast_to(wave[:m] / LYA_ROUNDED - 1.0, use.shape)[use]
        f = np.exp(-tau)[use]
        k = np.digitize(zabs, edges) - 1
        ok = (k >= 0) & (k < edges.size - 1)
        s_f += np.bincount(k[ok], f[ok], minlength=edges.size - 1)[: edges.size - 1]
        s_fbar += np.bincount(
            k[ok], np.broadcast_to(fbar_pix[:m], use.shape)[use][ok], minlength=edges.size - 1
        )[: edges.size - 1]
        cnt += np.bincount(k[ok], minlength=edges.size - 1)[: edges.size - 1]
    good = cnt > 100000
    assert good.sum() >= 13
    ratio = s_f[good] / s_fbar[good]
    assert np.all(np.abs(ratio - 1.0) < 0.005), ratio


def test_forest_fluctuates_and_lyb_adds_absorption():
    wave = instrument.master_wave()
    zq = np.full(200, 3.4)
    t_ab = igm.forest_tau(wave, zq, np.random.default_rng(5), sigma_g=2.3, lyb=True)
    t_a = igm.forest_tau(wave, zq, np.random.default_rng(5), sigma_g=2.3, lyb=False)
    rest = wave[: t_a.shape[1]] / 4.4
    lyb = rest < 1000.0
    assert np.all(t_ab[:, lyb] >= t_a[:, lyb]) and np.mean(t_ab[:, lyb] - t_a[:, lyb]) > 0.01
    assert np.all(t_a[:, rest > LYA_ROUNDED] == 0.0)
    f = np.exp(-t_a[:, (rest > 1040) & (rest < 1200)])
    # shared igm/ skewers rebinned to 0.8 A: std 0.33 at mean 0.68 (z_abs ~ 2.7-3.3); here F is
    # higher
    assert 0.26 < f.std() < 0.36


def test_emission_line_placement():
    """Line-profile peaks at lambda_lab (1 + z) within 0.1 px (before LSF and noise)."""
    cfg = SpectraSimConfig(
        line_ew_scatter_dex=0.0, line_sigma_scatter_dex=0.0, civ_blueshift_max_kms=0.0
    )
    z = np.array([0.3, 0.9, 1.7, 2.6, 3.4])
    prof, _ = qso_line_profile(np.random.default_rng(0), z, cfg)
    wave = instrument.master_wave()
    checked = 0
    for name, lam, _, _ in QSO_LINES:
        if name in (
            "NV",
            "OI_SIII",
            "HEII",
            "NII",
            "SII_6718",
            "SII_6733",
            "OIII_4960",
            "OII",
            "NEIII",
            "FEII_UV",
            "FEII_UV78",
            "FEII_OPT1",
            "FEII_OPT2",
            "HDELTA",
            "HGAMMA",
            "HEI",
            "LYB_OVI",
        ):
            continue  # blended with a stronger neighbour
        for i, zi in enumerate(z):
            c = (lam * (1 + zi) - wave[0]) / 0.8
            if not 10 < c < wave.size - 10:
                continue
            j = int(np.argmax(prof[i, int(c) - 5 : int(c) + 6])) + int(c) - 5
            y0, y1, y2 = prof[i, j - 1 : j + 2].astype(np.float64)
            peak = j + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
            assert abs(peak - c) < 0.1, (name, zi, peak, c)
            checked += 1
    assert checked >= 12


def test_noise_calibration_and_sky_line():
    """Median ivar per arm within 5 % of the SV1 coadd (B 14.7, R 79, Z 125); [OI] 5578.9 ratio 0.12
    +- 0.03.
    """
    spec, _ = simulate_spectra(1500, seed=21)
    for b, target in (("b", 14.7), ("r", 79.0), ("z", 125.0)):
        assert np.median(spec.ivar[b]) == pytest.approx(target, rel=0.05)
    w = spec.wave["b"]
    i = int(np.argmin(np.abs(w - 5578.9)))
    near = (np.abs(w - 5578.9) > 5) & (np.abs(w - 5578.9) < 40)
    ratio = np.median(spec.ivar["b"][:, i]) / np.median(spec.ivar["b"][:, near])
    assert ratio == pytest.approx(0.12, abs=0.03)


def test_noise_is_consistent_with_ivar():
    cfg = SpectraSimConfig(dead_fibre_fraction=0.0, masked_pixel_fraction=0.0, frac_bad=0.0)
    noisy, _ = simulate_spectra(200, seed=4, config=cfg)
    clean, _ = simulate_spectra(200, seed=4, config=dataclasses.replace(cfg, noise=False))
    pull = ((noisy.flux["r"] - clean.flux["r"]) * np.sqrt(noisy.ivar["r"])).ravel()
    assert abs(pull.mean()) < 0.01 and pull.std() == pytest.approx(1.0, abs=0.01)


def test_depth_factor_scales_ivar():
    cfg = SpectraSimConfig(**QUIET)
    a, _ = simulate_spectra(
        100,
        seed=8,
        config=dataclasses.replace(
            cfg,
            exposure_factor=1.0,
            mag_slope=0.0,
            qso_mag_range=(23.0, 23.0),
            star_mag_range=(23.0, 23.0),
            galaxy_mag_range=(23.0, 23.0),
        ),
    )
    b, _ = simulate_spectra(
        100,
        seed=8,
        config=dataclasses.replace(
            cfg,
            exposure_factor=4.0,
            mag_slope=0.0,
            qso_mag_range=(23.0, 23.0),
            star_mag_range=(23.0, 23.0),
            galaxy_mag_range=(23.0, 23.0),
        ),
    )
    r = np.median(b.ivar["z"]) / np.median(a.ivar["z"])
    assert 3.6 < r < 4.4  # sky-limited: ivar ~ t (read noise makes it slightly more)


def test_determinism():
    a, ta = simulate_spectra(40, seed=5)
    b, tb = simulate_spectra(40, seed=5)
    c, _ = simulate_spectra(40, seed=6)
    for band in "brz":
        assert np.array_equal(a.flux[band], b.flux[band], equal_nan=True)
        assert np.array_equal(a.ivar[band], b.ivar[band])
        assert np.array_equal(a.mask[band], b.mask[band])
        assert not np.array_equal(a.flux[band], c.flux[band], equal_nan=True)
    assert np.array_equal(ta["TRUTH"]["Z"], tb["TRUTH"]["Z"])
    assert np.array_equal(a.targetid, b.targetid)
    assert not np.intersect1d(a.targetid, c.targetid).size


# -------------------------------------------------------------------------------- truth
def test_class_quotas_and_truth_columns():
    spec, truth = simulate_spectra(1000, seed=3)
    t = truth["TRUTH"]
    assert len(t) == 1000 and np.unique(t["TARGETID"]).size == 1000
    assert np.array_equal(np.asarray(t["TARGETID"]), spec.targetid)
    counts = {k: int(np.sum(t["OBJTYPE"] == k)) for k in ("QSO", "STAR", "GALAXY", "BAD")}
    assert counts == {"QSO": 577, "STAR": 365, "GALAXY": 37, "BAD": 21}
    q = t[t["OBJTYPE"] == "QSO"]
    assert q["Z"].min() >= 0.1 and q["Z"].max() <= 5.0
    assert 0.55 < np.mean(q["Z"] >= 2.1) < 0.68
    assert np.all((q["MAG"] >= 17) & (q["MAG"] <= 23))
    # IS_BAL <=> BI_CIV > 0, only for z >= 1.6, about 10 %
    assert np.array_equal(np.asarray(t["IS_BAL"]), np.asarray(t["BI_CIV"]) > 0)
    assert np.all(t["Z"][t["IS_BAL"]] >= 1.6)
    frac = np.mean(q["IS_BAL"][q["Z"] >= 1.6])
    assert 0.05 < frac < 0.16
    for col in ("SUBTYPE", "MAGFILTER", "N_DLA", "SNR_MEDIAN"):
        assert col in t.colnames
    assert set(np.unique(t["SUBTYPE"][t["OBJTYPE"] == "BAD"])) <= {
        "ZERO_IVAR",
        "DEAD_ARM",
        "MASKED",
        "LOW_SN",
        "NAN_FLUX",
    }


def test_bad_spectra_are_bad():
    cfg = SpectraSimConfig(frac_bad=1.0, frac_qso=0.0, frac_star=0.0, frac_galaxy=0.0)
    spec, truth = simulate_spectra(60, seed=9, config=cfg)
    t = truth["TRUTH"]
    ivar = np.concatenate([spec.ivar[b] for b in "brz"], axis=1)
    flux = np.concatenate([spec.flux[b] for b in "brz"], axis=1)
    for i, mode in enumerate(t["SUBTYPE"]):
        if mode == "ZERO_IVAR":
            assert np.all(ivar[i] == 0)
        elif mode == "MASKED":
            assert np.mean(ivar[i] == 0) > 0.5
        elif mode == "NAN_FLUX":
            assert np.any(np.isnan(flux[i])) and np.all(ivar[i][np.isnan(flux[i])] == 0)
        elif mode == "LOW_SN":
            assert t["SNR_MEDIAN"][i] < 0.5
        elif mode == "DEAD_ARM":
            assert any(np.all(spec.ivar[b][i] == 0) for b in "brz")


def test_dlas_in_forest_and_visible():
    cfg = preset_config("dla", dead_fibre_fraction=0.0, masked_pixel_fraction=0.0)
    _, truth = simulate_spectra(200, seed=12, config=cfg, return_model=True)
    t, d = truth["TRUTH"], truth["DLA_META"]
    assert np.all(t["Z"] >= 2.33)
    has = np.asarray(t["N_DLA"]) > 0
    assert 0.7 < has.mean() < 0.9  # 20 % DLA-free sightlines
    assert len(d) == int(np.sum(t["N_DLA"]))
    assert np.array_equal(np.asarray(d["DLAID"]) // 1000, np.asarray(d["TARGETID"]))
    assert np.all((d["NHI"] >= 19.3) & (d["NHI"] <= 22.5))
    zq = dict(zip(np.asarray(t["TARGETID"]).tolist(), np.asarray(t["Z"]).tolist(), strict=True))
    row = {tid: i for i, tid in enumerate(np.asarray(t["TARGETID"]).tolist())}
    model = np.asarray(truth["MODEL"]["FLUX"])
    wave = instrument.master_wave()
    for r in d:
        lam = LYA_ROUNDED * (1 + r["Z_DLA"])  # the simulator's Voigt/DLA Lyman-alpha
        z = zq[int(r["TARGETID"])]
        assert 912 * (1 + z) < lam < 0.99 * LYA_ROUNDED * (1 + z) and lam >= 3700
        j = int(np.argmin(np.abs(wave - lam)))
        seg = model[row[int(r["TARGETID"])]]
        ref = np.median(np.abs(seg[max(j - 400, 0) : j + 400])) + 1e-30
        assert seg[j] < 0.05 * ref  # saturated core (tau0 >= 2.5e-14 * 10^19.3 >> 1)


def test_written_resolution_reproduces_lsf():
    """flux (noise-free) == R @ model with R built from RESOLUTION like desispec (dia_matrix,
    offsets 5..-5).
    """
    from scipy.sparse import dia_matrix

    cfg = SpectraSimConfig(**QUIET)
    spec, truth = simulate_spectra(4, seed=6, config=cfg, return_model=True)
    model = np.asarray(truth["MODEL"]["FLUX"])
    for b in "brz":
        off, npx = instrument.ARMS[b]
        data = np.asarray(spec.resolution[b][0], dtype=np.float64)
        r = dia_matrix((data, np.arange(5, -6, -1)), shape=(npx, npx))
        assert np.allclose(np.asarray(r.sum(axis=1)).ravel(), 1.0, atol=1e-6)  # rows normalised
        for i in range(4):
            expect = r @ model[i, off : off + npx].astype(np.float64)
            assert np.allclose(spec.flux[b][i], expect, rtol=1e-5, atol=1e-6 * np.abs(expect).max())


def test_magnitudes_match_model():
    cfg = SpectraSimConfig(**QUIET)
    _, truth = simulate_spectra(50, seed=2, config=cfg, return_model=True)
    m = instrument.synthetic_mags(np.asarray(truth["MODEL"]["FLUX"]))["r"]
    assert np.allclose(m, truth["TRUTH"]["MAG"], atol=0.01)


# ----------------------------------------------------------------------------- config, mix
def test_mix_and_config():
    assert parse_mix("qso=0.6,star=0.3,galaxy=0.1") == {"qso": 0.6, "star": 0.3, "galaxy": 0.1}
    with pytest.raises(ConfigError):
        parse_mix("quasar=1")
    _, truth = simulate_spectra(100, seed=1, mix={"qso": 0.5, "star": 0.5, "bad": 0.0})
    assert set(np.unique(truth["TRUTH"]["OBJTYPE"])) == {"QSO", "STAR"}
    with pytest.raises(ConfigError):
        from_dict(SpectraSimConfig, {"not_a_key": 1})
    with pytest.raises(ConfigError):
        SpectraSimConfig(forest_fit="nope")


# ---------------------------------------------------------------------------------- files
def test_files_read_back(tmp_path):
    from surveynet.io.spectra import read_spectra
    from surveynet.io.truth import read_truth

    coadds, truth_path = simulate_to_files(tmp_path / "sim", 30, seed=13, n_files=2)
    assert [p.name for p in coadds] == ["coadd-000.fits", "coadd-001.fits"]
    ref, ref_truth = simulate_spectra(30, seed=13)
    back = [read_spectra(p) for p in coadds]
    assert sum(s.n_spec for s in back) == 30
    for b in "brz":
        flux = np.concatenate([np.asarray(s.flux[b]) for s in back])
        assert np.array_equal(flux, ref.flux[b], equal_nan=True)
        assert np.array_equal(np.concatenate([np.asarray(s.ivar[b]) for s in back]), ref.ivar[b])
        res = np.asarray(back[0].resolution[b])
        assert res.shape[1] == 11 and np.allclose(res[0].sum(axis=0)[20:-20], 1.0, atol=1e-5)
    # plain astropy
    with fits.open(coadds[1]) as h:
        assert h["B_FLUX"].data.shape == (15, 2751)
        assert h["Z_RESOLUTION"].data.shape == (15, 11, 2881)
        assert h[0].header["SEED"] == 13
        tid = np.asarray(h["FIBERMAP"].data["TARGETID"])
    truth = Table.read(truth_path, hdu="TRUTH")
    assert np.array_equal(tid, np.asarray(truth["TARGETID"][15:]))
    dla = Table.read(truth_path, hdu="DLA_META")
    assert len(dla) == len(ref_truth["DLA_META"])
    tr = read_truth(truth_path)
    assert len(tr.targets) == 30 and set(tr.targets["OBJTYPE"]) <= {"QSO", "STAR", "GALAXY", "BAD"}
    with fits.open(truth_path) as h:
        assert [x.name for x in h] == ["PRIMARY", "TRUTH", "DLA_META", "TRUTH_QSO"]
    with pytest.raises(FileExistsError):
        simulate_to_files(tmp_path / "sim", 30, seed=13, n_files=2)


def test_files_independent_of_split(tmp_path):
    """Streaming per file (batches seeded independently) gives the spectra of one in-memory run."""
    from surveynet.io.spectra import read_spectra

    cfg = SpectraSimConfig(batch_size=8)
    coadds, truth_path = simulate_to_files(tmp_path / "s", 30, seed=17, n_files=4, config=cfg)
    ref, ref_truth = simulate_spectra(30, seed=17, config=cfg)
    back = [read_spectra(p) for p in coadds]
    assert [s.n_spec for s in back] == [7, 8, 7, 8]
    for b in "brz":
        flux = np.concatenate([np.asarray(s.flux[b]) for s in back])
        assert np.array_equal(flux, ref.flux[b], equal_nan=True)
    t = Table.read(truth_path, hdu="TRUTH")
    assert np.array_equal(np.asarray(t["TARGETID"]), ref.targetid)
    assert np.array_equal(np.asarray(t["Z"]), np.asarray(ref_truth["TRUTH"]["Z"]))
    d = Table.read(truth_path, hdu="DLA_META")
    assert np.array_equal(np.asarray(d["DLAID"]), np.asarray(ref_truth["DLA_META"]["DLAID"]))


def test_cli_smoke(tmp_path):
    from surveynet.cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "simulate",
            "spectra",
            "--n",
            "12",
            "--seed",
            "4",
            "--out",
            str(out),
            "--quiet",
            "--mix",
            "qso=0.5,star=0.5",
            "--set",
            "forest_sigma_g=1.2",
            "--n-files",
            "2",
        ]
    )
    assert rc == 0
    assert (
        (out / "coadd-000.fits").exists()
        and (out / "coadd-001.fits").exists()
        and (out / "truth.fits").exists()
    )
    assert main(["simulate", "spectra", "--n", "12", "--out", str(out), "--quiet"]) == 1  # exists
    assert (
        main(
            [
                "simulate",
                "spectra",
                "--n",
                "8",
                "--out",
                str(out),
                "--quiet",
                "--overwrite",
                "--preset",
                "dla",
            ]
        )
        == 0
    )
    t = Table.read(out / "truth.fits", hdu="TRUTH")
    assert np.all(t["Z"] >= 2.33)
    assert (
        main(
            [
                "simulate",
                "spectra",
                "--n",
                "5",
                "--out",
                str(tmp_path / "x"),
                "--quiet",
                "--set",
                "no_such_key=1",
            ]
        )
        == 1
    )


def test_bench_registered():
    from surveynet import bench
    from surveynet.registry import load_pipelines

    load_pipelines()
    assert "spectra" in bench.available()


# ------------------------------------------------------------------------------- templates
def test_template_mode():
    root = shared_path("templates/desisim_basis_lite/qso_templates_v2.0-lite.fits").parents[1]
    shared_path("templates/pickles")
    spec, truth = simulate_spectra(
        30, seed=3, templates=root, mix={"qso": 0.6, "star": 0.3, "galaxy": 0.1}
    )
    t = truth["TRUTH"]
    q = t["SOURCETYPE"] == "QSO"
    assert np.all(t["TEMPLATEID"][q] >= 0) and np.all(t["FOREST_IN_TEMPLATE"][q])
    assert np.all(t["TEMPLATEID"][t["SOURCETYPE"] == "STAR"] >= 0)
    ok = np.concatenate([spec.ivar[b] for b in "brz"], axis=1) > 0
    flux = np.concatenate([spec.flux[b] for b in "brz"], axis=1)
    assert np.all(np.isfinite(flux[ok]))


def test_template_mode_missing_folder(tmp_path):
    with pytest.raises(InputError, match="template folder not found"):
        simulate_spectra(3, seed=0, templates=tmp_path / "nowhere")
    (tmp_path / "tpl").mkdir()
    with pytest.raises(InputError, match=r"qso_templates_v2\.0-lite\.fits"):
        simulate_spectra(3, seed=0, templates=tmp_path / "tpl")


def test_fn_nhi_distribution_follows_the_fn_spline():
    """``fn`` draws sub-DLAs and DLAs in the proportions of desisim's f(N) spline at z = 2.4.

    The spline's integrals of f(N) dN over 19.5-20.3 and 20.3-22.5 (the l(X) ratio 0.096 / 0.057)
    and the share of DLAs above log N 21.5 are compared with 200,000 draws; the piecewise power
    law is within 10 % of the spline in both (6 % and 3 % off: 1.59 against 1.69, 0.031 against
    0.031).
    """
    t = Table.read(shared_path("igm/fN_spline_z24.fits.gz"))
    lgn = np.asarray(t["LGN"], float).ravel()
    lf = np.asarray(t["FN"], float).ravel()

    def integral(a: float, b: float) -> float:
        x = np.linspace(a, b, 2001)
        y = 10.0 ** (np.interp(x, lgn, lf) + x) * np.log(10.0)  # f(N) N ln10 per dlogN
        return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)

    ratio_spline = integral(19.5, 20.3) / integral(20.3, 22.5)
    strong_spline = integral(21.5, 22.5) / integral(20.3, 22.5)
    x = igm.draw_nhi(np.random.default_rng(3), 200_000, "fn")
    assert x.min() >= 19.3 and x.max() <= 22.5
    n_dla = np.sum(x >= 20.3)
    ratio = np.sum((x >= 19.5) & (x < 20.3)) / n_dla
    strong = np.sum(x >= 21.5) / n_dla
    assert ratio == pytest.approx(ratio_spline, rel=0.10)
    assert strong == pytest.approx(strong_spline, rel=0.10)
    # above 20.3 it is the ``sdss`` (DLA-only f(N)) distribution
    y = igm.draw_nhi(np.random.default_rng(4), 100_000, "sdss")
    assert np.median(x[x >= 20.3]) == pytest.approx(np.median(y), abs=0.01)
    with pytest.raises(ValueError, match="unknown N_HI distribution"):
        igm.draw_nhi(np.random.default_rng(0), 3, "flat")


def test_zmag_table_draws_follow_the_desi_counts(tmp_path):
    """(z, r) drawn from DESI's EDR number counts reproduce the table's marginals in the ranges.

    With 40,000 draws over z 2.33-4.5 and 16.5 < r < 23 the share above z = 3.3 and above 3.8
    and the share fainter than r = 22 are each within 1.5 points of the table's own (cells cut
    by a range edge counted pro rata); every draw lies in the ranges.
    """
    from surveynet.sim.spectra import draw_zmag, load_zmag_table

    path = shared_path("igm/dn_dzdM_EDR.fits")
    table = load_zmag_table(path)
    zc, rc, dn = table
    z, r = draw_zmag(np.random.default_rng(5), 40_000, table, (2.33, 4.5), (16.5, 23.0))
    assert z.min() >= 2.33 and z.max() <= 4.5 and r.min() >= 16.5 and r.max() <= 23.0

    def share(sel_z, sel_r):  # the table's share over fully-inside cells (edges pro rata)
        wz = np.clip((np.minimum(zc + 0.05, 4.5) - np.maximum(zc - 0.05, 2.33)) / 0.1, 0, 1)
        wr = np.clip((np.minimum(rc + 0.05, 23.0) - np.maximum(rc - 0.05, 16.5)) / 0.1, 0, 1)
        w = dn * wz[:, None] * wr[None, :]
        return w[np.ix_(sel_z, sel_r)].sum() / w.sum()

    all_r = np.ones(rc.size, bool)
    all_z = np.ones(zc.size, bool)
    assert np.mean(z > 3.3) == pytest.approx(share(zc > 3.3, all_r), abs=0.015)
    assert np.mean(z > 3.8) == pytest.approx(share(zc > 3.8, all_r), abs=0.015)
    assert np.mean(r > 22.0) == pytest.approx(share(all_z, rc > 22.0), abs=0.015)
    assert 0.05 < np.mean(z > 3.3) < 0.2  # DESI: most Lya quasars are at z < 3
    # the simulator uses it when the config names the table
    cfg = preset_config("dla", qso_zmag_table=str(path), qso_mag_range=(16.5, 23.0))
    _, truth = simulate_spectra(40, seed=2, config=cfg)
    zq = np.asarray(truth["TRUTH"]["Z"])
    assert zq.min() >= 2.33 and zq.max() <= 4.5
    # a broken table is an error naming the file and the missing HDU
    bad = tmp_path / "counts.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(zc, name="Z_CENTERS")]).writeto(bad)
    with pytest.raises(ConfigError, match=r"counts\.fits: no HDU RMAG_CENTERS"):
        load_zmag_table(bad)
    with pytest.raises(ConfigError, match="no quasars in z"):
        draw_zmag(np.random.default_rng(0), 3, table, (6.0, 7.0), (16.5, 23.0))


def test_draw_nhi_over_an_explicit_range():
    """The one N_HI sampler also serves the DLA insertion: uniform or Gamma f(N) in a range."""
    rng = np.random.default_rng(5)
    u = igm.draw_nhi(rng, 5000, "uniform", nhi_range=(19.5, 20.3))
    assert u.min() >= 19.5 and u.max() <= 20.3 and abs(np.median(u) - 19.9) < 0.05
    g = igm.draw_nhi(rng, 5000, "gamma", nhi_range=(20.3, 22.5))
    assert g.min() >= 20.3 and g.max() <= 22.5 and np.median(g) < np.median(u + 1.5)
    # same stream as the named range of the simulator
    a = igm.draw_nhi(np.random.default_rng(1), 10, "desi")
    b = igm.draw_nhi(np.random.default_rng(1), 10, "uniform", nhi_range=(20.3, 22.5))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="nhi_range"):
        igm.draw_nhi(rng, 3, "gamma")
    with pytest.raises(ValueError, match="nhi_range"):
        igm.draw_nhi(rng, 3, "desi", nhi_range=(20.0, 21.0))


def test_dla_free_model_is_public_and_changes_no_draw():
    """``return_dla_free_model`` exposes the model without its DLAs (experiments' hook)."""
    cfg = preset_config("dla")
    spec0, truth0 = simulate_spectra(24, seed=4, config=cfg)
    spec, truth = simulate_spectra(
        24, seed=4, config=cfg, return_model=True, return_dla_free_model=True
    )
    for b in spec.bands:
        assert np.array_equal(spec.flux[b], spec0.flux[b])  # the option draws nothing
    model = np.asarray(truth["MODEL"]["FLUX"])
    free = np.asarray(truth["MODEL"]["FLUX_NO_DLA"])
    has = np.asarray(truth["TRUTH"]["N_DLA"]) > 0
    assert has.any() and (~has).any()
    assert np.array_equal(free[~has], model[~has])
    assert np.all(free[has] >= model[has] * (1 - 1e-6))  # absorbers only remove flux
    assert np.all(np.min(model[has] / np.maximum(free[has], 1e-30), axis=1) < 0.05)  # cores
    _, only = simulate_spectra(24, seed=4, config=cfg, return_dla_free_model=True)
    assert only["MODEL"].colnames == ["FLUX_NO_DLA"]
    assert np.array_equal(np.asarray(only["MODEL"]["FLUX_NO_DLA"]), free)
    assert "MODEL" not in truth0


def test_simulator_import_computes_nothing():
    """Importing the simulator front builds no grid (the master grid is cached on first use)."""
    import subprocess
    import sys

    code = (
        "import surveynet.sim.spectra\n"
        "from surveynet.sim.grid import master_grid\n"
        "assert master_grid.cache_info().currsize == 0\n"
        "surveynet.sim.spectra.simulate_spectra(2, seed=0)\n"
        "assert master_grid.cache_info().currsize == 1\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
