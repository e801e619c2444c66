"""Metrics of checkinfer, the registrations, and the demo stage of the transient pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from surveynet.transient.evaluate import fpr_at_tpr, roc_auc, roc_curve, threshold_table


def test_roc_metrics():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.7, 0.6, 0.8, 0.9])
    fpr, tpr, _ = roc_curve(y, s)
    assert roc_auc(fpr, tpr) == pytest.approx(8 / 9)
    assert fpr_at_tpr(y, s, 0.99) == pytest.approx(1 / 3)
    assert roc_auc(*roc_curve(y, y.astype(float))[:2]) == 1.0
    t = threshold_table(
        y, s, (0.5,), values=np.array([1, 1, 9, 1, 9, 9.0]), bins=(0, 5, 10), name="SNR"
    )
    assert list(t["TPR"]) == [1.0, 1.0] and list(t["FPR"]) == [0.0, 1.0]


def test_registrations():
    from surveynet.registry import list_architectures, list_numpy_engines, list_steps

    for a in ("rb_cnn", "gmadet_cnn", "braai_vgg6"):
        assert a in list_architectures() and a in list_numpy_engines()
    steps = {s.name for s in list_steps() if s.group == "transient"}
    assert steps == {
        "simulate",
        "inject",
        "detect",
        "checksim",
        "cutouts",
        "convert",
        "train",
        "predict",
        "checkinfer",
        "convert-keras",
    }
    from surveynet import bench

    assert "transient" in bench.available()


def test_demo_stage(tmp_path):
    from surveynet.demo import DemoContext
    from surveynet.transient.demo import run_demo

    sec = run_demo(DemoContext(out=tmp_path, spectra=[], truth=Path("none"), seed=2))
    assert sec.images and all(p.is_file() for p in sec.images)
    assert any("candidates" in line for line in sec.lines)


@pytest.mark.parametrize("name,channels", [("rb_diff_mock", 1), ("rb_triplet_mock", 3)])
def test_bundled_models(name, channels):
    from surveynet.io.model import list_bundled_models, load_model
    from surveynet.transient.arch import flops_per_sample, layers_for
    from surveynet.transient.predict import load_scorer, prepare_inputs

    if name not in {m["name"] for m in list_bundled_models()}:
        pytest.skip(f"bundled model {name} not installed")
    saved = load_model(name, pipeline="transient")
    assert saved.meta["training"]["command"].startswith("surveynet transient train")
    assert saved.meta["training"]["data_hash"]
    assert saved.config["in_channels"] == channels
    fl = flops_per_sample(layers_for(saved.architecture, saved.config), channels, 32)
    assert fl <= 15e6  # the budget for >= 10,000 cutouts/s on 2 cores
    eng, saved = load_scorer(name)
    x = prepare_inputs(np.random.default_rng(0).normal(size=(4, 3, 32, 32)), saved.preprocessing)
    p = eng(x)
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))


def test_triplet_model_on_real_ztf(shared_file):
    """The mock-trained triplet model on real ZTF data (regression guard, not the 95 % goal).

    Measured: 35/39 real detections scored real (0.90; the issue asks >= 0.95; 30/39 before the
    host-rich, deep-reference training mocks), the real alert 0.95 and the bogus alert 0.23.
    """
    from surveynet.io.model import list_bundled_models
    from surveynet.transient.predict import load_scorer, prepare_inputs
    from surveynet.transient.preprocess import read_alert

    if "rb_triplet_mock" not in {m["name"] for m in list_bundled_models()}:
        pytest.skip("bundled model rb_triplet_mock not installed")
    eng, saved = load_scorer("rb_triplet_mock")
    trip = np.load(
        shared_file("transients/btsbot_ztf_triplets/usage_triplets.npy"), allow_pickle=False
    )
    p = eng(prepare_inputs(trip.transpose(0, 3, 1, 2), saved.preprocessing))
    assert (p >= 0.5).mean() >= 0.85
    scores = []
    for cid in ("714287740515015072", "893215910715010007"):
        a = read_alert(shared_file(f"transients/braai_ztf_alerts/{cid}.json"))
        cube = np.stack([a["science"], a["reference"], a["difference"]])[None]
        scores.append(float(eng(prepare_inputs(cube, saved.preprocessing))[0]))
    assert scores[0] > 0.5 > scores[1]
