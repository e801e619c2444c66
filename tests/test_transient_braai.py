"""braai import: Keras .h5 -> safetensors, VGG6 numpy engine vs torch, goldens on real ZTF data.

Goldens (skipped only when ../shared/data is absent): braai_d6_m9 on the 39 BTSbot triplets
matches the ZTF ``drb`` column with mean |diff| <= 2e-3 (Keras itself: 1.4e-3), and the two alert
packets score real (0.984) and bogus (~0) through braai's preprocessing.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from surveynet.io.model import load_model
from surveynet.registry import get_architecture, get_numpy_engine
from surveynet.transient.arch import (
    braai_vgg6_layers,
    flops_per_sample,
    gmadet_cnn_layers,
    rb_cnn_layers,
)
from surveynet.transient.preprocess import l2_normalise, make_triplet, read_alert, rows_normalise

H5 = "transients/braai_model/braai_d6_m9.h5"


@pytest.fixture(scope="module")
def braai_dir(tmp_path_factory):
    from conftest import shared_path
    from surveynet.transient.convert import convert_braai

    h5 = shared_path(H5)
    return convert_braai(h5, tmp_path_factory.mktemp("braai") / "braai_d6_m9")


@pytest.fixture(scope="module")
def braai_engine(braai_dir):
    m = load_model(braai_dir, pipeline="transient")
    return get_numpy_engine(m.architecture)(m.tensors, m.config), m


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    vgg = get_architecture("braai_vgg6")()
    assert _n_params(vgg) == 312_081
    gm = get_architecture("gmadet_cnn")()
    n_bn = sum(m.num_features for m in gm.modules() if "BatchNorm" in type(m).__name__)
    assert _n_params(gm) == 1_503_522  # Keras trainable parameters
    # Keras' 1,506,018 adds the non-trainable moving mean/variance (2 per BN feature)
    assert _n_params(gm) + 2 * n_bn == 1_506_018


def test_flops():
    assert flops_per_sample(braai_vgg6_layers(), 3, 63) // 10**6 == 38
    assert flops_per_sample(gmadet_cnn_layers(), 1, 32) // 10**6 in range(90, 100)
    assert flops_per_sample(rb_cnn_layers(in_channels=3), 3, 32) < 15e6


@pytest.mark.parametrize(
    "arch,cfg,shape",
    [
        ("braai_vgg6", {}, (5, 3, 63, 63)),
        ("gmadet_cnn", {"filters": [8, 8, 16, 16], "dense": [16, 8]}, (5, 1, 32, 32)),
        ("rb_cnn", {"in_channels": 3}, (5, 3, 32, 32)),
    ],
)
def test_numpy_engine_matches_torch(arch, cfg, shape):
    import torch

    torch.manual_seed(0)
    model = get_architecture(arch)(**cfg).eval()
    for m in model.modules():  # non-trivial batch-norm statistics
        if "BatchNorm" in type(m).__name__:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = model.proba_real(torch.from_numpy(x)).numpy()
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    eng = get_numpy_engine(arch)(tensors, cfg, dtype=np.float64)
    assert np.allclose(eng(x), ref, atol=1e-6)  # float32 torch vs float64 numpy


@pytest.mark.parametrize(
    "cfg,shape",
    [
        ({"in_channels": 3}, (70, 3, 32, 32)),
        (
            {"in_channels": 1, "size": 31, "kernel": 5, "filters": [4, 8], "head": "softmax"},
            (9, 1, 31, 31),
        ),
    ],
)
def test_rb_cnn_fused_path_matches_layer_by_layer(cfg, shape):
    import torch

    torch.manual_seed(2)
    model = get_architecture("rb_cnn")(**cfg).eval()
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    fused = get_numpy_engine("rb_cnn")(tensors, cfg, dtype=np.float64, batch_size=32)
    plain = get_numpy_engine("rb_cnn")(tensors, cfg, dtype=np.float64, fuse=False)
    assert fused._plan is not None and plain._plan is None
    assert np.allclose(fused.logits(x), plain.logits(x), rtol=0, atol=1e-12)
    assert np.allclose(fused(x), plain(x), rtol=0, atol=1e-12)
    f32 = get_numpy_engine("rb_cnn")(tensors, cfg)
    assert f32(x).dtype == np.float64 and np.allclose(f32(x), plain(x), atol=1e-5)


def test_preprocessing():
    a = np.array([[3.0, np.nan], [0.0, 4.0]], dtype=np.float32)
    assert np.allclose(l2_normalise(a), [[0.6, 0], [0, 0.8]])
    big = np.full((4, 4), np.finfo(np.float32).max, dtype=np.float32)
    assert not l2_normalise(big).any()  # overflowing norm -> all-zero channel
    assert not l2_normalise(np.zeros((3, 3))).any()
    r = rows_normalise(np.array([[3.0, 4.0], [1.0, 0.0]]))
    assert np.allclose(r, [[0.6, 0.8], [1, 0]])  # row-wise, a distinct transform
    t = make_triplet(np.ones((60, 63)), np.ones((63, 63)), np.ones((63, 63)))
    assert t.shape == (3, 63, 63)
    assert np.allclose(t[0, 60:], 1e-9)  # padded at the bottom with 1e-9, as braai


def test_converted_model_format(braai_dir):
    meta = json.loads((braai_dir / "config.json").read_text())
    assert meta["architecture"] == "braai_vgg6"
    assert meta["source"]["sha256"].startswith("24f97a6a37cf90da")
    assert meta["preprocessing"]["norm"] == "l2"
    m = load_model(braai_dir)
    assert "net.0.weight" in m.tensors and m.tensors["net.0.weight"].shape == (16, 3, 3, 3)
    assert m.tensors["net.13.weight"].shape == (256, 1152)


def test_golden_btsbot_triplets(braai_engine, shared_file):
    eng, _ = braai_engine
    trip = np.load(
        shared_file("transients/btsbot_ztf_triplets/usage_triplets.npy"), allow_pickle=False
    )
    with open(shared_file("transients/btsbot_ztf_triplets/usage_candidates.csv")) as f:
        drb = np.array([float(r["drb"]) for r in csv.DictReader(f)])
    assert trip.shape == (39, 63, 63, 3)
    # stored channels-last [science, template, difference], as read from FITS: no flip
    score = eng(trip.transpose(0, 3, 1, 2))
    diff = np.abs(score - drb)
    assert diff.mean() <= 2e-3, diff.mean()  # Keras: 1.4e-3
    assert diff.max() <= 2e-2  # Keras: 1.6e-2
    assert (score > 0.5).mean() >= 0.95


def test_golden_alerts(braai_engine, shared_file):
    eng, _ = braai_engine
    real = read_alert(shared_file("transients/braai_ztf_alerts/714287740515015072.json"))
    bogus = read_alert(shared_file("transients/braai_ztf_alerts/893215910715010007.json"))
    s = [
        float(eng(make_triplet(a["science"], a["reference"], a["difference"])[None])[0])
        for a in (real, bogus)
    ]
    assert s[0] == pytest.approx(0.984, abs=2e-3)
    assert s[1] < 1e-3


def test_bad_alert(tmp_path):
    from surveynet.errors import InputError

    p = tmp_path / "a.json"
    p.write_text(json.dumps({"cutoutScience": {"stampData": {"$binary": "AAAA"}}}))
    with pytest.raises(InputError, match="cutout"):
        read_alert(p)


def test_convert_refuses_non_vgg6(tmp_path):
    import h5py

    from surveynet.errors import ModelFormatError
    from surveynet.transient.convert import convert_braai

    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": []}})
        f.create_group("model_weights")
    with pytest.raises(ModelFormatError, match="not Sequential"):
        convert_braai(p, tmp_path / "m")
