"""Calibrated QuasarNET probabilities (issue 23): fit, ECE, the calibrate step, P_QSO_QN column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from surveynet.cli import main
from surveynet.errors import InputError
from surveynet.quasar.calibrate import (
    Calibration,
    calibration_of,
    expected_calibration_error,
    fit_calibration,
    quasar_score,
    reliability,
    sigmoid,
)
from surveynet.quasar.config import QuasarConfig


def _synthetic(t_true: float, b_true: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores sigmoid(z) whose true probability is sigmoid(z / T + b)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, n)
    y = rng.random(n) < sigmoid(z / t_true + b_true)
    return sigmoid(z), y


def test_temperature_scaling_recovers_known_temperature() -> None:
    s, y = _synthetic(2.5, 0.0, 40000, 1)
    cal = fit_calibration(s, y, method="temperature")
    assert cal.temperature == pytest.approx(2.5, rel=0.05) and cal.bias == 0.0
    assert cal.fit["log_loss_after"] < cal.fit["log_loss_before"]
    # Platt recovers T and b
    s, y = _synthetic(0.6, -1.5, 40000, 2)
    cal = fit_calibration(s, y, method="platt")
    assert cal.temperature == pytest.approx(0.6, rel=0.05)
    assert cal.bias == pytest.approx(-1.5, abs=0.1)
    # calibrated probabilities are calibrated
    assert expected_calibration_error(cal.apply_score(s), y) < 0.01
    assert expected_calibration_error(s, y) > 0.05


def test_ece_of_calibrated_data_is_zero_and_hand_computed_otherwise() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(200000)
    y = rng.random(200000) < p
    r = reliability(p, y, n_bins=10)
    assert r["ece"] < 0.005 and sum(r["count"]) == 200000
    # hand computation, 10 equal bins: bin 0 holds p = 0.05, 0.05 (labels 0, 1): gap 0.45;
    # bin 9 holds 0.95, 0.95, 1.0 (labels 1, 1, 0): mean 0.9667, fraction 2/3, gap 0.3;
    # bin 4 holds 0.4 (label 0): gap 0.4. ECE = (2 x 0.45 + 3 x 0.3 + 1 x 0.4) / 6
    p = np.array([0.05, 0.05, 0.95, 0.95, 1.0, 0.4, np.nan])
    y = np.array([0, 1, 1, 1, 0, 0, 1])
    r = reliability(p, y, n_bins=10)
    assert r["count"] == [2, 0, 0, 0, 1, 0, 0, 0, 0, 3] and r["n"] == 6
    assert r["ece"] == pytest.approx((2 * 0.45 + 3 * 0.3 + 0.4) / 6)
    assert r["mce"] == pytest.approx(0.45)
    assert np.isnan(r["mce_populated"])  # no bin of >= 10 spectra
    assert r["mean_p"][1] is None
    with pytest.raises(ValueError, match="n_bins"):
        reliability(p, y, n_bins=0)


def test_score_and_calibration_block() -> None:
    c = np.array([[0.1, 0.7, 0.3], [0.9, 0.8, 0.95], [np.nan] * 3])
    np.testing.assert_array_equal(quasar_score(c, 1)[:2], [0.7, 0.95])
    np.testing.assert_array_equal(quasar_score(c, 2)[:2], [0.3, 0.9])
    cal = Calibration(method="platt", temperature=2.0, bias=0.5, rank=2)
    p = cal.apply(c)
    assert np.isnan(p[2]) and p[1] == pytest.approx(sigmoid(np.log(9.0) / 2 + 0.5))
    assert calibration_of({"calibration": cal.to_dict()}) == cal
    assert calibration_of({}) is None
    with pytest.raises(ValueError, match="temperature"):
        Calibration(temperature=-1.0)


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny mocks (fit and held-out) predicted with the bundled model."""
    from surveynet.sim.spectra import SpectraSimConfig, simulate_to_files

    d = tmp_path_factory.mktemp("qcal")
    out: dict[str, Path] = {}
    for tag, seed in (("fit", 31), ("test", 32)):
        files, truth = simulate_to_files(
            d / tag, 60, seed, n_files=1, config=SpectraSimConfig(resolution=False)
        )
        cat = d / f"{tag}.fits"
        argv = ["quasar", "predict", str(files[0]), "--out", str(cat), "--workers", "0"]
        assert main([*argv, "--quiet"]) == 0
        out[f"{tag}_files"], out[f"{tag}_truth"], out[f"{tag}_cat"] = files[0], truth, cat
    return out


def test_calibrate_step_end_to_end(mocks: dict[str, Path], tmp_path: Path) -> None:
    from surveynet.io.model import resolve_model_path

    model = tmp_path / "qn_cal"
    argv = ["quasar", "calibrate", str(mocks["fit_cat"]), "--truth", str(mocks["fit_truth"])]
    argv += ["--out", str(model), "--quiet"]
    assert main(argv) == 0
    assert main(argv) == 1  # refuses to overwrite
    src = resolve_model_path("qn_mock_6layer")
    # weights byte-identical, calibration block with provenance
    assert (model / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    meta = json.loads((model / "config.json").read_text())
    block = meta["calibration"]
    assert block["method"] == "platt" and block["temperature"] > 0 and block["rank"] == 1
    fit = block["fit"]
    assert 0 < fit["n"] <= 60 and sum(fit["counts"].values()) == 60
    assert len(fit["catalog_sha256"]) == 16 and "ece_before" in fit and "ece_after" in fit
    assert "surveynet quasar calibrate" in fit["command"]
    base = json.loads((src / "config.json").read_text())
    assert {k: v for k, v in meta.items() if k != "calibration"} == base
    # predict with the calibrated copy: same columns plus P_QSO_QN
    cat = tmp_path / "cal.fits"
    argv = ["quasar", "predict", str(mocks["test_files"]), "--out", str(cat), "--workers", "0"]
    assert main([*argv, "--model", str(model), "--quiet"]) == 0
    with fits.open(mocks["test_cat"]) as a, fits.open(cat) as b:
        ta, tb = a["QN_CATALOG"].data, b["QN_CATALOG"].data
        assert "P_QSO_QN" not in ta.columns.names and "PQSOT" not in a[0].header
        assert [c for c in tb.columns.names if c != "P_QSO_QN"] == ta.columns.names
        for c in ta.columns.names:
            np.testing.assert_array_equal(ta[c], tb[c])
        assert b[0].header["PQSOT"] == pytest.approx(block["temperature"])
        cal = Calibration.from_dict(block)
        np.testing.assert_allclose(tb["P_QSO_QN"], cal.apply(ta["C_LINES"]), rtol=1e-6, atol=1e-7)
    # evaluate reports ECE/MCE of the raw score and of P_QSO_QN, and the reliability diagram
    ev = tmp_path / "ev"
    argv = ["quasar", "evaluate", str(cat), "--truth", str(mocks["test_truth"]), "--out", str(ev)]
    assert main([*argv, "--bins", "10", "--quiet"]) == 0
    m = json.loads((ev / "metrics.json").read_text())
    calm = m["calibration"]
    assert calm["n_bins"] == 10 and len(calm["raw"]["count"]) == 10
    assert 0 <= calm["p_qso"]["ece"] <= calm["p_qso"]["mce"] <= 1
    assert "reliability.png" in m["plots"] and (ev / "reliability.png").stat().st_size > 0
    # an uncalibrated catalogue has the raw figures only
    ev2 = tmp_path / "ev2"
    argv = ["quasar", "evaluate", str(mocks["test_cat"]), "--truth", str(mocks["test_truth"])]
    assert main([*argv, "--out", str(ev2), "--quiet"]) == 0
    m2 = json.loads((ev2 / "metrics.json").read_text())
    assert "p_qso" not in m2["calibration"]
    assert m2["calibration"]["raw"]["ece"] == pytest.approx(calm["raw"]["ece"], abs=0.2)


def test_calibrate_bad_inputs(mocks: dict[str, Path], tmp_path: Path) -> None:
    from surveynet.quasar.evaluate import calibrate_catalog

    # truth of other spectra: the error names the truth file
    with pytest.raises(InputError, match=r"not in this truth file") as err:
        calibrate_catalog(mocks["fit_cat"], mocks["test_truth"], tmp_path / "m")
    assert str(mocks["test_truth"]) in str(err.value)
    assert not (tmp_path / "m").exists()
    argv = ["quasar", "calibrate", str(mocks["fit_cat"]), "--truth", str(mocks["test_truth"])]
    assert main([*argv, "--out", str(tmp_path / "m"), "--quiet"]) == 1
    # a catalogue made with other weights than --model
    with pytest.raises(InputError, match="weights"):
        calibrate_catalog(
            mocks["fit_cat"],
            mocks["fit_truth"],
            tmp_path / "m",
            config=_config_with_model(tmp_path / "qn_other"),
        )


def _config_with_model(d: Path) -> QuasarConfig:
    """A QuasarConfig whose predict.model is a copy of the bundled model with other weights."""
    import dataclasses
    import shutil

    from surveynet.io.model import resolve_model_path

    shutil.copytree(resolve_model_path("qn_mock_6layer"), d)
    with open(d / "model.safetensors", "ab") as f:  # other bytes, other hash
        f.write(b" ")
    cfg = QuasarConfig()
    return dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, model=str(d)))
