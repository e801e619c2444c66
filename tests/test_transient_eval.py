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
