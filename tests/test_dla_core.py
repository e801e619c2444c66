"""Tests of the DLA core: sightlines, rebinning, insertion, datasets, catalogue and evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table
from scipy.signal import medfilt

from conftest import shared_path
from surveynet.config import from_dict, to_dict
from surveynet.constants import LYA_REST, LYB_REST
from surveynet.dla.catalog import catalog_from_predictions, read_catalog, write_catalog
from surveynet.dla.config import (
    BEST_V_MS,
    GRID_C_MS,
    DataConfig,
    DatasetConfig,
    DLAConfig,
    EvaluateConfig,
    InsertConfig,
    PredictConfig,
)
from surveynet.dla.data import (
    label_sightline,
    load_dataset,
    make_datasets,
    make_smoothdatasets,
    merge_cameras,
    read_dla_truth,
    read_qso_redshifts,
    read_sightlines,
    rebin,
    save_dataset,
    sightlines_from_spectra,
)
from surveynet.dla.evaluate import evaluate, match_absorbers, summarize, window_metrics
from surveynet.dla.insert import absorber_pixels, insert_dlas, insert_dlas_many, sample_nhi
from surveynet.dla.postprocess import SightlinePrediction, find_peaks, vote_centroid, vote_curves
from surveynet.dla.sightline import Dla, Sightline, search_pixels
from surveynet.errors import InputError
from surveynet.io.spectra import Spectra
from surveynet.sim.voigt import rest_equivalent_width

DLOGLAM = 1e-4


def flat_sightline(
    z_qso: float = 3.0,
    n: int = 4000,
    start: float = 3600.0,
    err: float = 0.1,
    dlas: list[Dla] | None = None,
    targetid: int = 7,
) -> Sightline:
    """Flat unit continuum on a constant log-lambda grid."""
    ll = np.log10(start) + DLOGLAM * np.arange(n)
    return Sightline(targetid, z_qso, ll, np.ones(n), np.full(n, err), 10.0, list(dlas or []))


def dla_at_pixel(sl: Sightline, ix: int, nhi: float = 21.0) -> Dla:
    return Dla(z_dla=10 ** sl.loglam[ix] / LYA_REST - 1.0, nhi=nhi)


# ----------------------------------------------------------------------------- config


def test_config_round_trip_and_defaults():
    cfg = DLAConfig()
    assert from_dict(DLAConfig, to_dict(cfg)) == cfg
    assert cfg.data.velocity_ms == BEST_V_MS["b"] == 62996.0
    assert DataConfig(camera="all").velocity_ms == 44735.0
    assert cfg.dataset.half_width() == 60 and cfg.dataset.half_width(600) == 90
    assert cfg.predict.norm == 80.0 and PredictConfig(samplerange=90).norm == 120.0
    with pytest.raises(ValueError):
        DatasetConfig(medfilt_sizes=(3, 4))


# ----------------------------------------------------------------------------- rebinning


def test_rebin_noise_free_flux_conserved_and_grid():
    w = 3600.0 + 0.8 * np.arange(3000)
    f = 1.0 + 1e-4 * (w - 4000.0)
    wn, fn, _ = rebin(w, f, np.full_like(w, 0.5), 62996.0)
    dll = np.diff(np.log(wn))
    assert np.allclose(dll, np.log1p(62996.0 / GRID_C_MS), rtol=1e-10)
    # a linear flux stays linear (overlap-weighted mean of a linear function), to 1e-6 relative
    assert np.allclose(fn, 1.0 + 1e-4 * (wn - 4000.0), rtol=0, atol=2e-4)
    # integral of the flux conserved to 0.1 % inside the covered range
    sel = (w >= wn[0]) & (w <= wn[-1])
    int_old = np.sum(f[sel]) * 0.8
    int_new = np.sum(fn * wn * np.log1p(62996.0 / GRID_C_MS))
    assert abs(int_new / int_old - 1.0) < 2e-3


def test_rebin_error_propagation_monte_carlo():
    rng = np.random.default_rng(1)
    w = 3600.0 + 0.8 * np.arange(1200)
    sigma = 0.2 + 0.3 * rng.uniform(size=w.size)
    sigma[100] = np.inf  # a bad pixel gets zero weight
    _, _, en = rebin(w, np.ones_like(w), sigma, 62996.0)
    sims = []
    for _ in range(2000):
        f = 1.0 + rng.standard_normal(w.size) * np.where(np.isfinite(sigma), sigma, 0.0)
        sims.append(rebin(w, f, sigma, 62996.0)[1])
    std = np.std(np.array(sims), axis=0)
    # Monte-Carlo std of the rebinned flux = propagated error (2000 draws: ~1.6 % noise per pixel)
    ratio = std / en
    assert abs(np.median(ratio) - 1.0) < 0.01
    assert np.all(np.abs(ratio - 1.0) < 0.08)
    # the anchor's "rebin sigma like a flux" would overestimate it: sigma_new < mean sigma
    assert np.median(en) < 0.8 * np.median(sigma[np.isfinite(sigma)])


def test_rebin_gap_gets_infinite_error_and_interpolated_flux():
    w = 3600.0 + 0.8 * np.arange(400)
    err = np.ones_like(w)
    err[200:230] = np.inf
    wn, fn, en = rebin(w, np.ones_like(w) * 2.0, err, 62996.0)
    gap = (wn > w[202]) & (wn < w[227])
    assert gap.any() and np.all(np.isinf(en[gap])) and np.allclose(fn, 2.0)


def test_merge_cameras_takes_smaller_error_in_overlap():
    wb = 3600.0 + 0.8 * np.arange(100)
    wr = wb[80] + 0.8 * np.arange(100)
    fm = Table({"TARGETID": [5]})
    sp = Spectra(
        bands=("b", "r"),
        wave={"b": wb, "r": wr},
        flux={"b": np.full((1, 100), 1.0), "r": np.full((1, 100), 2.0)},
        ivar={"b": np.full((1, 100), 1.0), "r": np.full((1, 100), 4.0)},
        fibermap=fm,
    )
    w, f, e = merge_cameras(sp, 0)
    assert w.size == 180 and np.all(np.diff(w) > 0)
    assert np.all(f[:80] == 1.0) and np.all(f[80:] == 2.0) and np.all(e[80:] == 0.5)


# ----------------------------------------------------------------------------- sightlines


def synthetic_spectra(z: float = 3.0, s2n: float = 5.0, seed: int = 0) -> Spectra:
    rng = np.random.default_rng(seed)
    wb = 3569.3 + 0.8 * np.arange(2975)
    wr = 5625.3 + 0.8 * np.arange(2645)
    flux, ivar = {}, {}
    for b, w in (("b", wb), ("r", wr)):
        cont = np.full((2, w.size), 3.0)
        cont[1] *= 2.0
        sig = cont / s2n
        flux[b] = cont + rng.standard_normal(cont.shape) * sig
        ivar[b] = 1.0 / sig**2
    return Spectra(
        bands=("b", "r"),
        wave={"b": wb, "r": wr},
        flux=flux,
        ivar=ivar,
        fibermap=Table({"TARGETID": [11, 12], "TARGET_RA": [1.0, 2.0], "TARGET_DEC": [3.0, 4.0]}),
    )


def test_sightlines_from_spectra_normalisation_s2n_filters():
    sp = synthetic_spectra(s2n=5.0)
    sls = sightlines_from_spectra(sp, {11: 3.0, 12: 2.0}, DataConfig())
    assert [s.targetid for s in sls] == [11]  # z_qso >= 2.33
    sl = sls[0]
    assert abs(sl.s2n - 5.0) < 0.3 and sl.ra == 1.0
    rest = sl.rest_wave
    norm = (rest >= 1420) & (rest <= 1480)
    assert abs(np.median(sl.flux[norm]) - 1.0) < 0.05  # normalised by the 1420-1480 A median
    assert sl.wave[-1] <= 5948.5 + 1  # blue camera only
    assert np.allclose(np.diff(sl.loglam), np.log10(1 + 62996.0 / GRID_C_MS), rtol=1e-8)
    assert sightlines_from_spectra(sp, {11: 3.0}, DataConfig(s2n_min=6.0)) == []
    allc = sightlines_from_spectra(
        sp, Table({"TARGETID": [11], "Z": [3.0]}), DataConfig(camera="all")
    )
    assert allc[0].wave[-1] > 7000 and np.allclose(
        np.diff(allc[0].loglam), np.log10(1 + 44735.0 / GRID_C_MS)
    )


def test_desi_mock_golden(caplog):
    spectra = shared_path("dla/desi_mock/spectra-16-1375.fits")
    truth = shared_path("dla/desi_mock/truth-16-1375.fits")
    zbest = shared_path("dla/desi_mock/zbest-16-1375.fits")
    zt = read_qso_redshifts(truth)
    zz = read_qso_redshifts(zbest)
    assert len(zt) == 5 and len(zz) == 5
    assert np.allclose(np.sort(zt["Z_QSO"]), np.sort(zz["Z_QSO"]), atol=0.01)
    # default filters: only TARGETID 210012578 (z 2.595) passes; no usable DLA (dla.md section 7)
    for cat in (truth, zbest):
        sls = read_sightlines(spectra, cat, truth_path=truth)
        assert [s.targetid for s in sls] == [210012578]
        sl = sls[0]
        assert abs(sl.z_qso - 2.5948) < 1e-3 and sl.dlas == []
        assert 3569.0 < sl.wave[0] < 3571.0 and sl.wave[-1] < 5948.6
        assert np.all(np.isfinite(sl.flux)) and sl.s2n >= 1.0
        assert 0.9 < np.median(sl.flux[(sl.rest_wave > 1420) & (sl.rest_wave < 1480)]) < 1.1
    # every spectrum read when the filters are off; DLA_META attached with looser truth cuts
    loose = DataConfig(z_qso_min=0.0, s2n_min=0.0, truth_nhi_min=17.0, truth_wave_min=0.0)
    sls = read_sightlines(spectra, truth, loose)
    assert len(sls) == 5
    by = {s.targetid: s for s in sls}
    assert [round(d.nhi, 2) for d in by[210012578].dlas] == [17.24, 17.52]
    assert by[210012578].dlas[0].dlaid == "210012578000"
    assert len(by[210012458].dlas) == 1
    assert read_dla_truth(truth) == {}


def test_read_qso_redshifts_quasarnet_catalog_and_bad_file(tmp_path):
    p = tmp_path / "qn.fits"
    Table({"TARGETID": [1, 2, 3], "Z_QN": [2.5, 3.0, 0.5], "IS_QSO_QN": [True, False, True]}).write(
        p
    )
    t = read_qso_redshifts(p)
    assert t["TARGETID"].tolist() == [1, 3] and t["Z_QSO"].tolist() == [2.5, 0.5]
    bad = tmp_path / "x.fits"
    Table({"A": [1]}).write(bad)
    with pytest.raises(InputError, match=r"x\.fits"):
        read_qso_redshifts(bad)


def test_skip_bal_drops_flagged_quasars_or_fails_without_flag(tmp_path):
    from astropy.io import fits

    qn = tmp_path / "qn.fits"
    Table(
        {
            "TARGETID": [1, 2, 3],
            "Z_QN": [2.5, 3.0, 2.8],
            "IS_QSO_QN": [True, True, True],
            "IS_BAL_QN": [False, True, False],
        }
    ).write(qn)
    assert read_qso_redshifts(qn)["TARGETID"].tolist() == [1, 2, 3]
    assert read_qso_redshifts(qn, DataConfig(skip_bal=True))["TARGETID"].tolist() == [1, 3]
    # mock truth: IS_BAL derived from BI_CIV > 0 by the truth reader
    truth = tmp_path / "truth.fits"
    hdu = fits.table_to_hdu(
        Table(
            {
                "TARGETID": [5, 6, 7],
                "Z": [2.6, 2.7, 2.9],
                "OBJTYPE": ["QSO", "QSO", "QSO"],
                "BI_CIV": [0.0, 1200.0, 0.0],
            }
        )
    )
    hdu.header["EXTNAME"] = "TRUTH"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(truth)
    assert read_qso_redshifts(truth, DataConfig(skip_bal=True))["TARGETID"].tolist() == [5, 7]
    # a catalogue that cannot say which quasars are BALs is an error naming the file
    nobal = tmp_path / "nobal.fits"
    Table({"TARGETID": [1], "Z_QN": [2.5], "IS_QSO_QN": [True]}).write(nobal)
    with pytest.raises(InputError, match=r"nobal\.fits.*IS_BAL_QN|IS_BAL_QN.*nobal\.fits"):
        read_qso_redshifts(nobal, DataConfig(skip_bal=True))


# ----------------------------------------------------------------------------- insertion


def test_insert_dlas_equivalent_width_and_truth():
    sl = flat_sightline(z_qso=3.0, err=0.01)
    rng = np.random.default_rng(3)
    cfg = InsertConfig(noise="none", fwhm_pix=3.0)
    for nhi, ew_expected in ((20.3, 10.2), (21.0, 22.4)):
        z = 10 ** sl.loglam[1000] / LYA_REST - 1.0
        out = insert_dlas(sl, rng, cfg, z_dla=[z], nhi=[nhi])
        wave = sl.wave
        dw = np.gradient(wave)
        win = np.abs(wave / (LYA_REST * (1 + z)) - 1.0) * 299792.458 <= 30000.0  # +-30,000 km/s
        ew_rest = np.sum(((1.0 - out.flux) * dw)[win]) / (1.0 + z)
        # EW of the injected profile equals the Voigt EW (simulation.md: 10.2 / 22.4 A), 1 %
        assert abs(ew_rest - rest_equivalent_width(nhi)) / rest_equivalent_width(nhi) < 0.01
        assert abs(ew_rest - ew_expected) / ew_expected < 0.03
        assert out.dlas == [Dla(z_dla=z, nhi=nhi, dlaid="7000")]
        assert sl.dlas == [] and np.all(sl.flux == 1.0)  # input untouched
    # Lyman-beta adds absorption at 1025.72 (1 + z)
    z = 10 ** sl.loglam[2500] / LYA_REST - 1.0
    two = insert_dlas(
        sl, rng, InsertConfig(noise="none", n_lines=2, fwhm_pix=0.0), z_dla=[z], nhi=[21.0]
    )
    iy = sl.pixel_of(LYB_REST * (1 + z))
    assert two.flux[iy] < 0.05


def test_insert_dlas_redshift_rules_nhi_ranges_overlap():
    sl = flat_sightline(z_qso=3.0)
    cfg = InsertConfig(nhi_mode="high", overlap=True)
    rng = np.random.default_rng(5)
    allowed = absorber_pixels(sl, cfg)
    lam = sl.wave[allowed]
    assert lam.min() >= 3700 and lam.max() < 0.99 * LYA_REST * 4 and lam.min() > 912 * 4
    for _ in range(30):
        out = insert_dlas(sl, rng, cfg)
        assert len(out.dlas) == 2
        pix = [sl.pixel_of(d.central_wavelength) for d in out.dlas]
        assert all(p in set(allowed.tolist()) for p in pix)
        assert 30 <= abs(pix[1] - pix[0]) <= 120
        assert all(21.2 <= d.nhi <= 22.5 for d in out.dlas)
    x = sample_nhi(4000, rng, mode="dla", distribution="fn")
    u = sample_nhi(4000, rng, mode="dla")
    assert (
        x.min() >= 20.3 and x.max() <= 22.5 and np.median(x) < np.median(u) - 0.3
    )  # f(N) falls steeply
    with pytest.raises(ValueError, match="no pixel"):
        insert_dlas(flat_sightline(z_qso=2.0, start=3600.0), rng, InsertConfig())
    many = insert_dlas_many([sl, sl], 1, InsertConfig(), frac_without=0.0)
    assert [len(m.dlas) for m in many] == [1, 1]


def test_insert_noise_keeps_variance():
    sl = flat_sightline(z_qso=3.0, err=0.1)
    z = 10 ** sl.loglam[1500] / LYA_REST - 1.0
    rng = np.random.default_rng(9)
    res = []
    for _ in range(200):
        out = insert_dlas(sl, rng, InsertConfig(noise="keep_variance"), z_dla=[z], nhi=[21.5])
        res.append(out.flux[1480:1520])
    # noise-free host: the injected noise has std sigma*sqrt(1-F^2) ~ sigma in the trough (5 %)
    assert abs(np.std(np.array(res)) / 0.1 - 1.0) < 0.05
    assert np.all(out.error == sl.error)


# ----------------------------------------------------------------------------- labels and datasets


def test_window_labels_class_offset_nhi_border():
    sl = flat_sightline()
    sl.dlas = [dla_at_pixel(sl, 1500, 21.0)]
    lab = label_sightline(sl)
    c = lab.classification
    assert np.all(c[1440:1561] == 1) and c[1439] == -1 and c[1561] == -1
    assert (
        np.all(c[1380:1440] == -1) and np.all(c[1561:1621] == -1) and c[1379] == 0 and c[1621] == 0
    )
    assert lab.offset[1440] == 60 and lab.offset[1560] == -60 and lab.offset[1500] == 0
    assert (
        np.all(lab.nhi[1440:1561] == np.float32(21.0))
        and lab.nhi[1439] == 0
        and lab.offset[1439] == 0
    )
    iy = round((np.log10(10 ** sl.loglam[1500] * LYB_REST / LYA_REST) - sl.loglam[0]) / DLOGLAM)
    assert np.all(c[iy - 60 : iy + 61] == -1) and c[iy - 61] == 0 and c[iy + 61] == 0
    # two absorbers: the nearest wins the offset; an absorber near the end is clipped, not wrapped
    sl = flat_sightline(n=1600)
    sl.z_qso = 10 ** sl.loglam[1590] / 1300.0 - 1.0
    sl.dlas = [
        dla_at_pixel(sl, 1500, 21.0),
        dla_at_pixel(sl, 1550, 20.5),
        dla_at_pixel(sl, 1590, 20.5),
    ]
    lab = label_sightline(sl)
    assert lab.offset[1520] == -20 and lab.nhi[1520] == np.float32(21.0)
    assert lab.offset[1530] == 20 and lab.nhi[1530] == np.float32(20.5)
    assert (
        np.all(lab.classification[1530:] == 1)
        and lab.offset[-1] == -9
        and lab.classification[0] == 0
    )
    # absorber outside the rest range or bluer than 3570 A is not labelled
    sl2 = flat_sightline(start=3500.0)
    sl2.dlas = [dla_at_pixel(sl2, 100)]
    assert np.all(label_sightline(sl2).classification == 0)


def test_make_datasets_balanced_and_full():
    sl = flat_sightline()
    sl.flux = 1.0 + 0.001 * np.arange(sl.n_pix)
    sl.dlas = [dla_at_pixel(sl, 1500)]
    free = flat_sightline(targetid=8)
    ds = make_datasets([sl, free], DatasetConfig(seed=1))
    assert ds.flux.shape == (242, 1, 400) and ds.flux.dtype == np.float32
    assert np.sum(ds.labels_classifier == 1) == 121 and np.sum(ds.labels_classifier == 0) == 121
    assert set(ds.targetid.tolist()) == {7}  # a DLA-free sightline contributes nothing
    # window content: window centred on pixel j covers [j-200, j+200)
    k = int(np.argmax(ds.pixel >= 1000))
    j = int(ds.pixel[k])
    assert np.allclose(ds.flux[k, 0], sl.flux[j - 200 : j + 200])
    assert np.all(ds.labels_offset[ds.labels_classifier == 0] == 0)
    full = make_datasets([sl], balanced=False)
    px = search_pixels(sl)
    assert len(full) == px.size and np.array_equal(full.pixel, px)
    assert set(np.unique(full.labels_classifier).tolist()) == {-1, 0, 1}
    # padding: off-spectrum parts take the mean of the first 50 pixels
    short = flat_sightline(z_qso=3.0, n=1500, start=3700.0)
    short.flux = np.linspace(1, 2, 1500)
    w = make_datasets([short], balanced=False)
    first = w.flux[0, 0]
    j0 = int(w.pixel[0])
    if j0 < 200:
        assert np.allclose(first[: 200 - j0], short.flux[:50].mean())


def test_make_smoothdatasets_channel_order(tmp_path):
    rng = np.random.default_rng(2)
    sl = flat_sightline()
    sl.flux = 1.0 + 0.3 * rng.standard_normal(sl.n_pix)
    sl.dlas = [dla_at_pixel(sl, 1500)]
    ds = make_smoothdatasets([sl], balanced=True)
    assert ds.flux.shape == (2 * 181, 4, 600)
    k = int(np.argmax(ds.pixel > 1000))
    j = int(ds.pixel[k])
    seg = sl.flux[j - 300 - 20 : j + 300 + 20]
    for ch, size in enumerate((1, 3, 7, 15)):
        ref = seg if size == 1 else medfilt(seg, size)
        assert np.allclose(ds.flux[k, ch], ref[20:-20], atol=1e-6), ch
    for suffix in (".npz", ".fits"):
        path = save_dataset(tmp_path / f"ds{suffix}", ds)
        back = load_dataset(path)
        assert np.array_equal(back.flux, ds.flux) and np.array_equal(
            back.labels_offset, ds.labels_offset
        )
        assert np.array_equal(back.targetid, ds.targetid) and np.array_equal(back.pixel, ds.pixel)
        with pytest.raises(FileExistsError):
            save_dataset(path, ds)


# ----------------------------------------------------------------------------- peaks and catalogue


def synthetic_votes(
    n: int, centres: list[int], nhis: list[float], s: int = 60
) -> SightlinePrediction:
    px = np.arange(n)
    conf = np.full(n, 0.05)
    off = np.zeros(n)
    nhi = np.full(n, 19.0)
    for c, v in zip(centres, nhis, strict=True):
        sel = np.abs(px - c) <= s
        conf[sel] = 0.95
        off[sel] = c - px[sel]
        nhi[sel] = v
    return SightlinePrediction(px, conf, off, nhi)


def test_peak_finder_on_synthetic_votes():
    x = np.arange(400.0)
    g = lambda c, a, w=4.0: a * np.exp(-0.5 * ((x - c) / w) ** 2)  # noqa: E731
    assert find_peaks(g(100, 1.0) + g(300, 0.5)).tolist() == [100, 300]
    assert find_peaks(g(100, 0.19)).tolist() == []  # below PEAK_THRESH 0.2
    assert find_peaks(g(100, 0.21)).tolist() == [100]
    # no dip below 0.1 between two bumps: one absorber
    assert len(find_peaks(g(100, 1.0, 8) + g(125, 0.8, 8))) == 1
    # a dip below 0.1: two absorbers
    assert len(find_peaks(g(100, 1.0, 4) + g(135, 0.8, 4))) == 2
    # flat ridge: the middle; a peak within 10 px of an end is ignored
    s = np.zeros(400)
    s[200:211] = 0.5
    s[5] = 0.9
    assert find_peaks(s).tolist() == [205]
    # vote curve of a perfect window prediction peaks at the absorber
    # negative windows vote for their own pixel (desi-dlas analyze_pred): a 1/80 baseline
    quiet = vote_curves(
        SightlinePrediction(np.arange(50), np.zeros(50), np.full(50, 7.0), np.zeros(50))
    )
    assert np.allclose(quiet.offset_hist, 1 / 80) and np.allclose(quiet.conv_sum, 5 / 80)
    sdss = vote_curves(
        SightlinePrediction(np.arange(50), np.zeros(50), np.full(50, 7.0), np.zeros(50)),
        PredictConfig(zero_negative_offsets=False),
    )
    assert (
        sdss.offset_hist[:7].sum() == 0 and sdss.offset_hist[-1] == 8 / 80
    )  # raw offsets, clipped
    v = vote_curves(synthetic_votes(600, [300], [21.0]))
    assert find_peaks(v.smooth).tolist() == [300] and abs(v.conv_sum[300] - 121 / 80) < 1e-12


def test_catalog_from_predictions_window_and_pixel_forms(tmp_path):
    sl = flat_sightline(z_qso=3.5, n=3200, start=3800.0)
    px = search_pixels(sl)
    a, b = int(px[0]) + 300, int(px[0]) + 900
    # absorber at b and its Lyman-beta ghost a (lambda ratio 1025.72/1215.67) with a lower N_HI
    b_wave = sl.wave[b]
    a = sl.pixel_of(b_wave * LYB_REST / LYA_REST)
    pred_full = synthetic_votes(sl.n_pix, [a, b], [20.0, 21.2])
    cat = catalog_from_predictions([sl], [pred_full.restrict(px)])
    d = cat.dlas
    assert len(d) == 2
    assert d["ABSORBER_TYPE"].tolist() == ["LYB", "DLA"]
    assert abs(d["Z_DLA"][1] - (b_wave / LYA_REST - 1)) < 1e-9
    assert abs(d["NHI"][1] - 21.2) < 1e-9 and d["DLA_CONFIDENCE"][1] == 1.0
    assert d["DLAID"].tolist() == ["7000", "7001"]
    # per-pixel (fully convolutional) outputs over the whole spectrum give the same catalogue
    pix = SightlinePrediction.from_pixels(pred_full.confidence, pred_full.offset, pred_full.nhi)
    cat2 = catalog_from_predictions([sl], [pix])
    assert np.allclose(cat2.dlas["Z_DLA"], d["Z_DLA"]) and cat2.dlas["ABSORBER_TYPE"].tolist() == [
        "LYB",
        "DLA",
    ]
    assert cat.qsos["N_DLA"].tolist() == [1]
    path = write_catalog(tmp_path / "dla.fits", cat, config=DLAConfig(), model_name="m", seed=3)
    from astropy.io import fits

    with fits.open(path) as h:
        assert [x.name for x in h] == ["PRIMARY", "DLACAT", "QSOCAT"]
        assert (
            h[0].header["PIPELINE"] == "dla"
            and h[0].header["PEAKTHR"] == 0.2
            and "CFGHASH" in h[0].header
        )
        cols = h["DLACAT"].columns.names
        for c in (
            "TARGETID",
            "Z_QSO",
            "Z_DLA",
            "NHI",
            "DLA_CONFIDENCE",
            "ABSORBER_TYPE",
            "S2N",
            "DLAID",
        ):
            assert c in cols
        assert "Z" not in cols  # picca #1081: never both Z and Z_DLA
    back = read_catalog(path)
    assert back.dlas["ABSORBER_TYPE"].tolist() == ["LYB", "DLA"] and len(back.qsos) == 1
    with pytest.raises(FileExistsError):
        write_catalog(path, cat)
    # no votes: empty catalogue, sightline still listed as searched
    quiet = SightlinePrediction(px, np.zeros(px.size), np.zeros(px.size), np.zeros(px.size))
    empty = catalog_from_predictions([sl], [quiet])
    assert len(empty.dlas) == 0 and len(empty.qsos) == 1


def test_nhi_window_split_between_close_peaks():
    sl = flat_sightline(z_qso=3.5, n=3200, start=3800.0)
    px = search_pixels(sl)
    c1, c2 = int(px[0]) + 400, int(px[0]) + 460  # 60 px apart < 2R = 80: split at half-way
    pred = synthetic_votes(sl.n_pix, [c1, c2], [20.5, 21.5])
    pred.nhi[c1 + 1 : c2] = 30.0  # windows between the peaks are never averaged
    cat = catalog_from_predictions([sl], [pred])
    assert len(cat.dlas) == 2
    assert np.allclose(cat.dlas["NHI"], [20.5, 21.5], atol=0.05)


# ----------------------------------------------------------------------------- matching


def test_matcher_edge_cases():
    t = Table(
        {
            "TARGETID": [1, 1, 2, 3, 5],
            "Z_DLA": [2.5, 2.504, 3.0, 2.8, 2.5],
            "NHI": [20.5, 21.0, 20.4, 20.0, 21.0],
        }
    )
    dz10 = 10.0 / LYA_REST
    p = Table(
        {
            "TARGETID": [1, 2, 2, 4, 5],
            "Z_DLA": [2.503, 3.0 + dz10 * (1 - 1e-9), 3.0, 2.8, 2.5 + dz10 * (1 + 1e-6)],
            "NHI": [20.6, 20.5, 20.1, 21.0, 21.0],
            "ABSORBER_TYPE": ["DLA", "DLA", "LYB", "DLA", "DLA"],
        }
    )
    r = match_absorbers(t, p)  # DESI: unique, |dlambda| <= 10 A, LYB excluded
    # the single prediction of sightline 1 goes to the nearer truth absorber; 10 A + 1e-5 A is out
    assert r.truth["MATCHED"].tolist() == [False, True, True, False, False]
    assert r.truth["PRED_INDEX"].tolist()[2] == 1  # the LYB at dz = 0 is not eligible
    assert r.pred["MATCHED"].tolist() == [True, True, False, False, False]
    s = summarize(r)
    # truth log N 20.0 is not a DLA; TARGETID 4 and 5 predictions are false positives
    assert (s["tp"], s["fn"], s["fp"]) == (2, 2, 2)
    r2 = match_absorbers(t, p, EvaluateConfig(allow_lyb=True, unique=False))
    assert r2.truth["MATCHED"].tolist() == [True, True, True, False, False]
    assert r2.truth["PRED_TYPE"][2] == "LYB" and not r2.truth["AS_DLA"][2]
    b = Table({"TARGETID": [1, 1], "Z_DLA": [2.5, 3.0], "NHI": [21.0, 21.0]})
    q = Table({"TARGETID": [1, 1], "Z_DLA": [2.75, 3.125], "NHI": [21.0, 21.0]})
    r3 = match_absorbers(b, q, EvaluateConfig(rule="dz", max_dz=0.25, unique=False))
    assert r3.truth["MATCHED"].tolist() == [False, True]  # |dz| = 0.25 exactly is not < 0.25
    assert np.allclose(r3.truth["DZ"][1], 0.125)
    empty = match_absorbers(t, p[:0])
    assert not np.any(empty.truth["MATCHED"]) and summarize(empty)["purity"] is None
    # a confidence cut drops predictions before matching: the confident one 1 A farther wins
    pc = Table(
        {
            "TARGETID": [1, 1],
            "Z_DLA": [2.5 + 1 / LYA_REST, 2.5 + 2 / LYA_REST],
            "NHI": [20.5, 20.5],
            "DLA_CONFIDENCE": [0.3, 0.9],
        }
    )
    r4 = match_absorbers(t[:1], pc, EvaluateConfig(min_confidence=0.4))
    assert len(r4.pred) == 1 and r4.truth["PRED_INDEX"][0] == 0
    assert np.isclose(r4.truth["DZ"][0], 2 / LYA_REST)
    assert match_absorbers(t[:1], pc).truth["PRED_INDEX"][0] == 0  # no cut: the nearer one
    assert np.isclose(match_absorbers(t[:1], pc).truth["DZ"][0], 1 / LYA_REST)
    with pytest.raises(InputError, match="DLA_CONFIDENCE"):
        match_absorbers(t, p, EvaluateConfig(min_confidence=0.4))
    w = window_metrics(np.array([1, 1, 0, 0, -1]), np.array([0.9, 0.2, 0.1, 0.7, 0.9]))
    assert w["confusion"] == [[1, 1], [1, 1]] and w["n_windows"] == 4


def test_parks_golden(tmp_path):
    """Parks+2018 held-out set: 97.4 % as DLA and 99.0 % as any HI absorber (dla.md section 7)."""
    from surveynet.dla.parks import read_parks_predictions, read_parks_truth

    truth = read_parks_truth(shared_path("dla/test_dlas_96629_10000.json.gz"))
    pred, qsos = read_parks_predictions(shared_path("dla/test_dlas_96629_predictions.json.gz"))
    assert len(truth) == 11403 and len(qsos) == 10000
    assert np.unique(pred["ABSORBER_TYPE"], return_counts=True)[1].tolist() == [11182, 1710, 536]
    # variant "as DLA": nearest non-LYB prediction, |dz| < 0.015, matched N_HI > 20.2999
    r = match_absorbers(truth, pred, EvaluateConfig(rule="dz", unique=False, allow_lyb=False))
    n_dla = int(np.sum(r.truth["AS_DLA"]))
    assert n_dla == 11104
    assert abs(100 * n_dla / 11403 - 97.4) < 0.05  # tolerance: +-0.05 percentage point
    # variant "any HI absorber": LYB-typed predictions may match
    r = match_absorbers(truth, pred, EvaluateConfig(rule="dz", unique=False, allow_lyb=True))
    n_any = int(np.sum(r.truth["MATCHED"]))
    assert n_any == 11294
    assert abs(100 * n_any / 11403 - 99.0) < 0.05
    dz = np.asarray(r.truth["DZ"])[np.asarray(r.truth["MATCHED"])]
    assert abs(np.std(dz) - 0.0022) < 0.0001  # sigma(dz) of Parks+18


def test_evaluate_parks_files_writes_metrics_and_plots(tmp_path):
    m = evaluate(
        shared_path("dla/test_dlas_96629_predictions.json.gz"),
        shared_path("dla/test_dlas_96629_10000.json.gz"),
        tmp_path,
        EvaluateConfig(rule="dz", unique=False),
    )
    assert (
        m["n_matched_as_dla"] == 11104 and m["fp"] == 158
    )  # dla.md: 157-158 unmatched predicted DLAs
    assert abs(m["dnhi"]["mean"] - 0.031) < 0.002 and abs(m["dnhi"]["std"] - 0.149) < 0.002
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (
        saved["tp"] == m["tp"]
        and (tmp_path / "dz_hist.png").exists()
        and (tmp_path / "rates_vs_nhi.png").exists()
    )
    with pytest.raises(FileExistsError):
        evaluate(
            shared_path("dla/test_dlas_96629_predictions.json.gz"),
            shared_path("dla/test_dlas_96629_10000.json.gz"),
            tmp_path,
        )


def test_evaluate_end_to_end_on_catalog(tmp_path):
    """Catalogue written from synthetic predictions, truth in DLA_META: perfect recovery."""
    sl = flat_sightline(z_qso=3.5, n=3200, start=3800.0)
    px = search_pixels(sl)
    c = int(px[0]) + 500
    sl.dlas = [dla_at_pixel(sl, c, 21.0)]
    cat = catalog_from_predictions([sl], [synthetic_votes(sl.n_pix, [c], [21.0])])
    cpath = write_catalog(tmp_path / "cat.fits", cat)
    from astropy.io import fits

    truth = tmp_path / "truth.fits"
    hdus = [
        fits.PrimaryHDU(),
        fits.table_to_hdu(Table({"TARGETID": [7, 9], "Z": [3.5, 3.0], "OBJTYPE": ["QSO", "QSO"]})),
        fits.table_to_hdu(
            Table(
                {
                    "TARGETID": [7, 7, 9, 7],
                    "Z_DLA": [sl.dlas[0].z_dla, 1.0, 2.5, sl.dlas[0].z_dla + 0.001],
                    "NHI": [21.0, 20.5, 20.5, 17.5],
                }
            )
        ),
    ]
    hdus[1].header["EXTNAME"] = "TRUTH"
    hdus[2].header["EXTNAME"] = "DLA_META"
    fits.HDUList(hdus).writeto(truth)
    wpath = tmp_path / "win.npz"
    np.savez(wpath, labels_classifier=np.array([1, 0]), confidence=np.array([0.9, 0.1]))
    m = evaluate(cpath, truth, tmp_path / "ev", windows_path=wpath)
    # z = 1.0 is outside the searched range, TARGETID 9 was not searched, log N 17.5 is below 19.3
    assert m["n_truth"] == 1 and m["n_truth_total"] == 4
    assert (
        (m["tp"], m["fn"], m["fp"]) == (1, 0, 0) and m["completeness"] == 1.0 and m["purity"] == 1.0
    )
    assert m["windows"]["accuracy"] == 1.0 and (tmp_path / "ev" / "window_confusion.png").exists()
    # a confidence cut above the catalogue's confidence leaves the truth DLA missed
    conf = float(cat.dlas["DLA_CONFIDENCE"][0])
    cut = evaluate(cpath, truth, tmp_path / "ev2", EvaluateConfig(min_confidence=conf + 1e-6))
    assert (cut["tp"], cut["fn"], cut["fp"]) == (0, 1, 0) and cut["config"]["min_confidence"] > 0
    kept = evaluate(cpath, truth, tmp_path / "ev3", EvaluateConfig(min_confidence=conf))
    assert (kept["tp"], kept["fn"]) == (1, 0)


def test_parks_mix_and_low_s2n_sets():
    """v7.1 on the mix and low-S/N sets (dla.md 6.2), |dz| < 0.015, nearest non-LYB prediction."""
    from surveynet.dla.parks import read_parks_predictions, read_parks_truth

    cfg = EvaluateConfig(rule="dz", unique=False, allow_lyb=False)
    truth = read_parks_truth(shared_path("dla/mix_test_23559_10000.json"))
    pred, _ = read_parks_predictions(shared_path("dla/mixed_predictions.json.gz"))
    r = match_absorbers(truth, pred, cfg).truth
    nhi = np.asarray(r["NHI"])
    matched = np.asarray(r["MATCHED"])
    typ = np.asarray(r["PRED_TYPE"])
    hi = nhi >= 20.3
    lo = (nhi >= 19.5) & (nhi < 20.3)
    assert (hi.sum(), lo.sum()) == (4187, 7173)
    # tolerance: +-0.1 percentage point (dla.md section 7)
    assert abs(100 * matched[hi].mean() - 99.4) < 0.1
    assert abs(100 * np.mean(typ[hi] == "DLA") - 98.0) < 0.1
    assert abs(100 * matched[lo].mean() - 94.0) < 0.1
    assert abs(100 * np.mean(typ[lo] == "SUBDLA") - 68.3) < 0.1
    truth = read_parks_truth(shared_path("dla/lows2n_train_83557_10000.json"))
    pred, _ = read_parks_predictions(shared_path("dla/lows2n_predictions.json.gz"))
    r = match_absorbers(truth, pred, cfg).truth
    assert len(r) == 11386
    assert abs(100 * np.mean(r["MATCHED"]) - 53.7) < 0.1
    assert abs(100 * np.mean(r["AS_DLA"]) - 50.5) < 0.1


# ----------------------------------------------------------------------------- z_DLA convention


def _perfect_prediction(sl: Sightline, rest_range=(900.0, 1346.0)) -> SightlinePrediction:
    """Per-pixel outputs a perfect finder would give: the labels themselves."""
    lab = label_sightline(sl, rest_range=rest_range)
    px = search_pixels(sl, rest_range)
    conf = (lab.classification[px] == 1).astype(float)
    return SightlinePrediction(px, conf, lab.offset[px], lab.nhi[px])


@pytest.mark.parametrize("frac", [0.0, 0.3, 0.5, 0.8])
def test_noise_free_dla_perfect_outputs_unbiased_z(frac):
    # Regression for the +1.3 px Z_DLA bias: a noise-free DESI-like blue-camera spectrum (0.8 A
    # native pixels) with one Voigt DLA goes through camera cut + constant-velocity rebinning,
    # labels, perfect per-pixel outputs and the catalogue: Z_DLA must land within 0.5 px
    # (rebinned pixels) of the truth, and the rebinned trough must be centred on the label pixel.
    from surveynet.sim.voigt import voigt_tau

    wb = 3600.0 + 0.8 * np.arange(2751)
    z_qso = 2.9  # rest 1420-1480 A (normalisation) inside the blue camera
    dlnl = np.log1p(BEST_V_MS["b"] / GRID_C_MS)
    lam = wb[0] * np.exp(dlnl * (1500 + frac))  # between rebinned pixel centres
    z_dla = lam / LYA_REST - 1.0
    flux = 2.0 * np.exp(-voigt_tau(wb, z_dla, 21.0, n_lines=1))
    flux[wb / (1 + z_qso) > 1420] = 2.0
    sp = Spectra(
        bands=("b",),
        wave={"b": wb},
        flux={"b": flux[None, :]},
        ivar={"b": np.full((1, wb.size), 1e4)},
        fibermap=Table({"TARGETID": [5]}),
    )
    sl = sightlines_from_spectra(sp, {5: z_qso}, DataConfig(), dlas={5: [Dla(z_dla, 21.0)]})[0]
    x_true = np.interp(np.log10(lam), sl.loglam, np.arange(sl.n_pix))
    # data convention: the black core of the rebinned flux is centred on the truth (0.5 px)
    core = np.flatnonzero(sl.flux < 0.01)
    assert abs(0.5 * (core[0] + core[-1]) - x_true) <= 0.5
    cat = catalog_from_predictions([sl], [_perfect_prediction(sl)], PredictConfig())
    assert len(cat.dlas) == 1
    lam_pred = (1 + cat.dlas["Z_DLA"][0]) * LYA_REST
    x_pred = np.interp(np.log10(lam_pred), sl.loglam, np.arange(sl.n_pix))
    assert abs(x_pred - x_true) <= 0.5  # half a rebinned pixel (the labels round to a pixel)
    assert cat.dlas["NHI"][0] == pytest.approx(21.0)


def test_vote_centroid_subpixel_and_flat_ridge():
    # Offsets pointing at a fractional centre: the anchor's integer peak on the flat ridge of the
    # median-filtered curve is off by up to 0.5-1 px; the vote centroid recovers the centre.
    sl = flat_sightline()
    px = np.arange(1200, 2400)
    centre = 1800.5
    conf = np.where(np.abs(px - centre) <= 60, 0.95, 0.05)
    pred = SightlinePrediction(px, conf, centre - px, np.full(px.size, 21.0))
    assert vote_centroid(pred, 1801) == pytest.approx(centre)

    def x_of(cfg):
        cat = catalog_from_predictions([sl], [pred], cfg, rest_range=None)
        z = cat.dlas["Z_DLA"][0]
        return (np.log10((1 + z) * LYA_REST) - sl.loglam[0]) / DLOGLAM

    assert abs(x_of(PredictConfig(zc_nhi_min=None)) - centre) < 0.01
    # integer pixel of the anchor
    assert abs(x_of(PredictConfig(centroid_radius=0, zc_nhi_min=None)) - centre) > 0.49
    # N_HI 21.0 >= zc_nhi_min: the zero crossing of the offsets, exact for unshrunk offsets too
    assert abs(x_of(PredictConfig(centroid_radius=0)) - centre) < 0.01


def test_zero_crossing_used_only_for_strong_absorbers():
    # offsets shrunk by a quarter around a centre at 1800: the votes spread, and their
    # smoothed peak lands off the centre when the positive pixels are lopsided
    sl = flat_sightline()
    px = np.arange(1200, 2400)
    centre = 1800.0
    conf = np.where((px > centre - 40) & (px < centre + 80), 0.95, 0.05)

    def x_of(nhi, cfg):
        pred = SightlinePrediction(px, conf, 0.75 * (centre - px), np.full(px.size, nhi))
        cat = catalog_from_predictions([sl], [pred], cfg, rest_range=None)
        z = cat.dlas["Z_DLA"][0]
        return (np.log10((1 + z) * LYA_REST) - sl.loglam[0]) / DLOGLAM

    cfg = PredictConfig(zc_nhi_min=21.5, zc_radius=30)
    assert abs(x_of(21.8, cfg) - centre) < 0.01
    # below the threshold: the vote centroid (here 2 px off), as with the localiser switched off
    weak = x_of(21.2, cfg)
    assert weak == pytest.approx(x_of(21.2, PredictConfig(zc_nhi_min=None)), abs=1e-9)
    assert abs(weak - centre) > 1


def test_split_votes_inside_a_black_core_merge_into_one_absorber():
    # one strong absorber near pixel 1800 whose votes split into two peaks 25 px apart (about
    # 31 A at 5450 A, inside the ~60 A core half-width of log N 21.6); a separate weak absorber
    # 150 px away stays
    from surveynet.sim.voigt import core_half_width

    sl = flat_sightline()
    px = np.arange(1200, 2400)
    conf = np.full(px.size, 0.05)
    off = np.zeros(px.size)
    nhi = np.full(px.size, 20.0)
    for c, half, n in ((1788, 10, 21.6), (1813, 10, 21.4), (1960, 40, 20.5)):
        m = np.abs(px - c) <= half
        conf[m], off[m] = 0.95, c - px[m]
        nhi[np.abs(px - c) <= 45] = n
    pred = SightlinePrediction(px, conf, off, nhi)
    lam = lambda z: (1 + np.asarray(z)) * LYA_REST  # noqa: E731
    w = sl.wave
    assert w[1813] - w[1788] < core_half_width(21.4, w[1800] / LYA_REST - 1)  # inside one core
    assert w[1960] - w[1813] > core_half_width(21.6, w[1800] / LYA_REST - 1)

    plain = catalog_from_predictions([sl], [pred], PredictConfig(merge_core=None), rest_range=None)
    merged = catalog_from_predictions([sl], [pred], PredictConfig(), rest_range=None)
    assert len(plain.dlas) == 3
    assert len(merged.dlas) == 2
    # the stronger one is kept with its own position and N_HI; the weak neighbour is untouched
    strong = plain.dlas[np.argmax(plain.dlas["NHI"])]
    assert merged.dlas["Z_DLA"][0] == pytest.approx(strong["Z_DLA"])
    assert merged.dlas["NHI"][0] == pytest.approx(strong["NHI"])
    pair_conf = plain.dlas["DLA_CONFIDENCE"][:2]
    assert merged.dlas["DLA_CONFIDENCE"][0] == pytest.approx(pair_conf.max())
    assert lam(merged.dlas["Z_DLA"][1]) == pytest.approx(lam(plain.dlas["Z_DLA"][2]))
    assert merged.qsos["N_DLA"][0] == 2
