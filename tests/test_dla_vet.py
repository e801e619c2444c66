"""The absorber vetter (surveynet.dla.vet): features, the logistic fit, training and prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from surveynet.dla.vet import FEATURES, fit_logistic, row_features, voigt_lr


def test_fit_logistic_recovers_known_weights_and_is_deterministic():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -2.0]
    true_w, true_b = np.array([1.5, -0.5, 0.0]), 0.3
    y = rng.random(len(x)) < 1.0 / (1.0 + np.exp(-(x @ true_w + true_b)))
    t = fit_logistic(x, y, l2=0.0)
    # weights back in the raw feature units: w_raw = w / scale, b_raw = b - sum(w_raw * mean)
    w_raw = t["weight"] / t["scale"]
    b_raw = t["bias"][0] - np.sum(w_raw * t["mean"])
    np.testing.assert_allclose(w_raw, true_w, atol=0.06)
    assert abs(b_raw - true_b) < 0.06
    again = fit_logistic(x, y, l2=0.0)
    for k in t:
        assert np.array_equal(t[k], again[k])
    # the penalty shrinks the weight vector
    assert np.linalg.norm(fit_logistic(x, y, l2=0.1)["weight"]) < 0.6 * np.linalg.norm(t["weight"])
    from surveynet.errors import InputError

    with pytest.raises(InputError, match="all equal"):
        fit_logistic(x[:10], np.ones(10, bool))


def _sightline(with_dla: bool, seed: int = 0):
    from surveynet.dla.sightline import Sightline
    from surveynet.sim.voigt import voigt_tau

    rng = np.random.default_rng(seed)
    z_qso = 3.0
    loglam = np.arange(np.log10(3600.0), np.log10(1300.0 * (1 + z_qso)), 1e-4)
    wave = 10**loglam
    model = np.ones_like(wave)
    if with_dla:
        model *= np.exp(-voigt_tau(wave, 2.7, 21.0))
    err = np.full_like(wave, 0.1)
    return Sightline(
        targetid=1,
        z_qso=z_qso,
        loglam=loglam,
        flux=model + err * rng.normal(size=wave.size),
        error=err,
        s2n=10.0,
    )


def test_row_features_tell_a_dla_from_an_empty_stretch():
    from surveynet.constants import LYA_REST
    from surveynet.dla.postprocess import SightlinePrediction

    wave_dla = 3.7 * LYA_REST
    feats = []
    for with_dla in (True, False):
        sl = _sightline(with_dla)
        pix = int(np.argmin(np.abs(sl.wave - wave_dla)))
        px = np.arange(sl.n_pix)
        conf = np.where(np.abs(px - pix) <= 10, 0.9, 0.1)
        pred = SightlinePrediction.from_pixels(conf, np.zeros(px.size), np.full(px.size, 21.0))
        row = dict(
            pix=pix, VOTES=1.4, DLA_CONFIDENCE=1.0, NHI=21.0, NHI_STD=0.1, WAVE=sl.wave[pix] + 2.0
        )
        row.update(WAVE_FIRST=sl.wave[pix], REFINE_P=0.8)
        f = row_features(sl, pred, [row])
        assert f.shape == (1, len(FEATURES)) and np.all(np.isfinite(f))
        feats.append(dict(zip(FEATURES, f[0], strict=True)))
    dla, empty = feats
    assert dla["log_votes"] == pytest.approx(np.log(1.45))
    assert dla["pix_conf_max"] == pytest.approx(0.9) and 0.1 < dla["pix_conf_mean"] < 0.9
    assert dla["refine_shift"] == pytest.approx(2.0)
    assert dla["refine_logit"] == pytest.approx(np.log(4.0))
    assert dla["log_err"] == pytest.approx(np.log(0.1)) and dla["log_err_rel"] == pytest.approx(0)
    assert abs(dla["core_flux"]) < 0.1 and empty["core_flux"] == pytest.approx(1.0, abs=0.1)
    assert dla["rest_wave"] == pytest.approx((wave_dla + 2.0) / 4.0, rel=1e-3)
    # the Voigt-template likelihood ratio: a huge gain on the DLA, none on pure continuum
    assert dla["voigt_lr"] > np.log1p(100.0) and empty["voigt_lr"] < 0
    sl = _sightline(True)
    assert voigt_lr(sl, wave_dla, 21.0) > voigt_lr(sl, wave_dla + 60.0, 21.0)


def _write_vetter(path, weight, bias, threshold=0.0, features=FEATURES):
    from surveynet.config import to_dict
    from surveynet.dla.config import VetterConfig
    from surveynet.io.model import save_model

    cfg = to_dict(VetterConfig(threshold=threshold))
    cfg["features"] = list(features)
    k = len(FEATURES)
    tensors = {
        "mean": np.zeros(k),
        "scale": np.ones(k),
        "weight": np.asarray(weight, float),
        "bias": np.array([bias], float),
    }
    return save_model(path, tensors, pipeline="dla", architecture="dla_vetter", config=cfg)


def test_vetter_sets_the_confidence_and_drops_absorbers_below_its_threshold(tmp_path):
    from surveynet.dla.config import PredictConfig
    from surveynet.dla.postprocess import SightlinePrediction
    from surveynet.dla.predict import catalog_with_stages
    from surveynet.dla.vet import DLAVetter, resolve_vetter
    from surveynet.errors import ModelFormatError

    sl = _sightline(True)
    px = np.arange(sl.n_pix)
    pix = int(np.argmin(np.abs(sl.wave - 3.7 * 1215.67)))
    # two vote peaks: the DLA, and a weaker one on empty continuum 300 px bluewards
    # every positive pixel's offset points at its block's centre, as a trained finder's do
    centre = np.where(px > pix - 150, pix, pix - 300)
    conf = np.where(np.abs(px - centre) <= np.where(centre == pix, 40, 12), 0.95, 0.0)
    offset = np.where(conf > 0, centre - px, 0)
    pred = SightlinePrediction.from_pixels(conf, offset, np.full(px.size, 20.8))
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("voigt_lr")] = 1.0  # p = sigmoid(voigt_lr - 3)
    path = _write_vetter(tmp_path / "v", w, -3.0, threshold=0.5)
    vet = DLAVetter.from_saved(path)
    cfg = PredictConfig(vet_features=True, merge_core=None)
    plain = catalog_with_stages([sl], [pred], cfg, rest_range=None).dlas
    assert len(plain) == 2 and np.all(plain["DLA_CONFIDENCE"] <= 1)
    x = np.column_stack([np.asarray(plain["VET_" + n.upper()]) for n in FEATURES])
    p = vet.probability(x)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(x[:, FEATURES.index("voigt_lr")] - 3))))
    assert (p >= 0.5).sum() == 1  # the DLA passes, the empty stretch does not
    kept = catalog_with_stages([sl], [pred], cfg, rest_range=None, vetter=vet).dlas
    assert len(kept) == 1
    np.testing.assert_allclose(kept["DLA_CONFIDENCE"], p[p >= 0.5], rtol=1e-12)
    assert kept["Z_DLA"][0] == plain["Z_DLA"][p >= 0.5][0]
    every = catalog_with_stages(
        [sl], [pred], cfg, rest_range=None, vetter=DLAVetter.from_saved(path, threshold=0.0)
    ).dlas
    np.testing.assert_allclose(np.sort(every["DLA_CONFIDENCE"]), np.sort(p), rtol=1e-12)
    assert resolve_vetter("none") is None and resolve_vetter(vet) is vet
    with pytest.raises(ModelFormatError, match="features"):
        DLAVetter.from_saved(
            _write_vetter(tmp_path / "old", w, 0.0, features=(*FEATURES[:-1], "x"))
        )
    with pytest.raises(ModelFormatError, match="dla_vetter"):
        DLAVetter.from_saved("dla_refiner")


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from surveynet.sim.spectra import preset_config, simulate_to_files

    out = tmp_path_factory.mktemp("vetmock")
    return simulate_to_files(
        out / "m", 24, 5, n_files=2, overwrite=True, config=preset_config("dla")
    )


@pytest.mark.filterwarnings(
    "ignore:.*could not be saved in native FITS format:astropy.units.UnitsWarning"
)
def test_train_vetter_and_predict_with_it(tmp_path, mock, caplog):
    """`dla train --set model.architecture=dla_vetter` fits the bundled finders' absorbers of a
    mock (deterministically); `dla predict --vetter` gives each absorber that probability."""
    pytest.importorskip("torch")
    from surveynet.cli import main
    from surveynet.dla.train import vetter_training_table
    from surveynet.dla.vet import DLAVetter
    from surveynet.io.model import load_model

    files, truth = mock
    args = [*map(str, files), "--truth", str(truth), "--set", "model.architecture=dla_vetter"]
    args += ["--set", "model.vetter.threshold=0.3", "--quiet"]
    for name in ("a", "b"):
        assert main(["dla", "train", *args, "--out", str(tmp_path / name)]) == 0
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    for k in ("mean", "scale", "weight", "bias"):
        assert np.array_equal(a.tensors[k], b.tensors[k])
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    assert meta["architecture"] == "dla_vetter" and meta["config"]["threshold"] == 0.3
    from surveynet.config import from_dict
    from surveynet.dla.config import VetterConfig

    x, y = vetter_training_table(files, [truth], from_dict(VetterConfig, a.config), quiet=True)
    assert meta["training"]["n_absorbers"] == len(y) and 0 < y.sum() < len(y)
    # the fit separates the training absorbers better than chance
    p = DLAVetter.from_saved(tmp_path / "a").probability(x)
    assert p[y].mean() > p[~y].mean()

    cats = {}
    # merged rows keep the larger of two confidences
    no_merge = ["--set", "predict.merge_core=null"]
    every = ["--set", "predict.vet_threshold=0", "--set", "predict.vet_features=true"]
    for name, extra in (
        ("all", [*every, *no_merge]),
        ("cut", no_merge),
        ("none", ["--vetter", "none", *no_merge]),
    ):
        out = tmp_path / f"{name}.fits"
        cmd = ["dla", "predict", *map(str, files), "--truth", str(truth), "--out", str(out)]
        cmd += ["--vetter", str(tmp_path / "a"), *extra, "--quiet", "--workers", "0"]
        assert main(cmd) == 0
        with fits.open(out) as h:
            cats[name] = h["DLACAT"].data
    allc = cats["all"]
    x_all = np.column_stack([allc["VET_" + n.upper()] for n in FEATURES])
    np.testing.assert_allclose(
        allc["DLA_CONFIDENCE"], DLAVetter.from_saved(tmp_path / "a").probability(x_all), rtol=1e-9
    )
    assert np.all(cats["cut"]["DLA_CONFIDENCE"] >= 0.3)
    assert len(cats["cut"]) == int(np.sum(allc["DLA_CONFIDENCE"] >= 0.3))
    assert len(cats["none"]) == len(allc) and "VET_VOIGT_LR" not in cats["cut"].names

    # a vetter applied to another finder / refiner chain than it learnt from is flagged
    import logging

    from surveynet.dla.predict import predict_files

    for refiner, flagged in ((None, False), ("none", True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="surveynet.dla.predict"):
            predict_files(
                files,
                tmp_path / f"r{flagged}.fits",
                qso_catalog=truth,
                refiner=refiner,
                vetter=tmp_path / "a",
                quiet=True,
            )
        assert ("miscalibrated" in caplog.text) == flagged


def test_vetter_training_names_a_bad_file_among_good_ones(tmp_path, mock, capsys):
    """A coadd that cannot be read ends vetter training with a one-line reason naming the file
    (it used to end in an AttributeError on the runner's result), and nothing is written."""
    pytest.importorskip("torch")
    from surveynet.cli import main

    files, truth = mock
    bad = tmp_path / "broken.fits"
    bad.write_text("not fits")
    out = tmp_path / "vet"
    args = ["dla", "train", *map(str, files), str(bad), "--truth", str(truth), "--out", str(out)]
    args += ["--set", "model.architecture=dla_vetter", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "vetter features failed" in err[0]
    assert not out.exists()
