"""QuasarNET networks: numpy ops vs torch, torch vs numpy engine, model files, Keras conversion.

Tolerances are stated in each assert. Golden forward passes use the desihub/QuasarNP fixtures in
../shared/data/quasarnp (MIT).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import shared_path
from surveynet.config import to_dict
from surveynet.errors import InputError, ModelFormatError
from surveynet.io.model import load_model, save_model
from surveynet.nn import numpy_ops as ops
from surveynet.quasar.config import GridConfig, LinesConfig, QuasarNetConfig, preprocessing_metadata
from surveynet.quasar.engine import (
    NumpyQuasarNet,
    check_state_dict,
    load_engine,
    random_state_dict,
    state_dict_keys,
)
from surveynet.quasar.model import QuasarNetTorch, build_quasarnet

torch.set_num_threads(1)

CONFIGS = {
    "4_valid": QuasarNetConfig(),
    "6_same": QuasarNetConfig(n_layers=6, padding="same"),
}


def _torch_model(cfg: QuasarNetConfig, seed: int = 0, dtype=torch.float32) -> QuasarNetTorch:
    m = QuasarNetTorch(cfg)
    m.load_state_dict_numpy(random_state_dict(cfg, seed=seed))
    return m.to(dtype).eval()


# ----------------------------------------------------------------------------- numpy ops


@pytest.mark.parametrize(
    ("n", "k", "s"), [(443, 10, 2), (222, 10, 2), (50, 3, 1), (51, 4, 3), (9, 5, 2)]
)
def test_conv1d_matches_torch(n, k, s):
    rng = np.random.default_rng(n + k)
    x = rng.standard_normal((3, 4, n))
    w = rng.standard_normal((5, 4, k))
    b = rng.standard_normal(5)
    ref = F.conv1d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=s).numpy()
    np.testing.assert_allclose(ops.conv1d(x, w, b, stride=s), ref, rtol=0, atol=1e-10)  # float64
    left, right = ops.same_padding(n, k, s)
    xp = F.pad(torch.from_numpy(x), (left, right))
    ref = F.conv1d(xp, torch.from_numpy(w), torch.from_numpy(b), stride=s).numpy()
    out = ops.conv1d(x, w, b, stride=s, padding="same")
    assert out.shape[-1] == -(-n // s)  # TF 'same': ceil(n / s)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)


def test_same_padding_is_asymmetric():
    # TF: total = (ceil(n/s) - 1) s + k - n; left floor(total/2), right the rest (spec §1.3)
    assert ops.same_padding(443, 10, 2) == (4, 5)
    assert ops.same_padding(222, 10, 2) == (4, 4)
    assert ops.same_padding(10, 3, 1) == (1, 1)
    assert ops.same_padding(10, 4, 1) == (1, 2)  # QuasarNP's (k-1)//2 left would be 1, right 2
    assert ops.same_padding(11, 5, 2) == (2, 2)


def test_batchnorm_dense_maxpool_match_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 11))
    mean, var, g, b = (
        rng.standard_normal(3),
        rng.uniform(0.5, 2, 3),
        rng.standard_normal(3),
        rng.standard_normal(3),
    )
    ref = F.batch_norm(
        *(torch.from_numpy(a) for a in (x, mean, var, g, b)), training=False, eps=1e-3
    ).numpy()
    np.testing.assert_allclose(ops.batch_norm(x, mean, var, g, b, eps=1e-3), ref, atol=1e-12)
    w = rng.standard_normal((6, 11))
    bias = rng.standard_normal(6)
    ref = F.linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias)).numpy()
    np.testing.assert_allclose(ops.dense(x, w, bias), ref, atol=1e-12)
    ref = F.max_pool1d(torch.from_numpy(x), 2).numpy()
    np.testing.assert_array_equal(ops.maxpool1d(x, 2), ref)
    np.testing.assert_allclose(ops.sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])
    # folding BN into a conv gives the same function
    cw, cb = rng.standard_normal((3, 2, 4)), rng.standard_normal(3)
    xi = rng.standard_normal((2, 2, 20))
    fw, fb = ops.fold_batch_norm(cw, cb, g, b, mean, var, 1e-3)
    np.testing.assert_allclose(
        ops.conv1d(xi, fw, fb),
        ops.batch_norm(ops.conv1d(xi, cw, cb), mean, var, g, b, eps=1e-3),
        atol=1e-12,
    )


# ----------------------------------------------------------------------------- torch vs numpy


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_torch_numpy_parity_random(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, cfg.n_input))
    m32 = _torch_model(cfg)
    with torch.no_grad():
        ref32 = m32(torch.from_numpy(x).float()).numpy()
        ref64 = _torch_model(cfg, dtype=torch.float64)(torch.from_numpy(x)).numpy()
        fused = m32.fused_for_inference()(torch.from_numpy(x).float()).numpy()  # conv path
        fused_small = m32.fused_for_inference()(torch.from_numpy(x[:2]).float()).numpy()  # im2col
    tensors = random_state_dict(cfg, seed=0)
    out32 = NumpyQuasarNet(tensors, cfg, dtype=np.float32)(x)
    out64 = NumpyQuasarNet(tensors, cfg, dtype=np.float64)(x)
    assert out32.shape == (5, 7, 26) and out32.dtype == np.float32
    assert np.abs(out32 - ref32).max() <= 1e-5  # float32 parity <= 1e-5
    assert np.abs(out64 - ref64).max() <= 1e-10  # float64 parity <= 1e-10
    assert np.abs(fused - ref64).max() <= 1e-5  # BN-folded torch path <= 1e-5
    assert np.abs(fused_small - ref64[:2]).max() <= 1e-5  # its small-batch im2col branch
    # offsets are rescaled into [-0.1, 1.1]; boxes in [0, 1]
    assert out64[:, :, 13:].min() >= -0.1 and out64[:, :, 13:].max() <= 1.1
    # chunked evaluation gives the same answer
    np.testing.assert_allclose(
        NumpyQuasarNet(tensors, cfg, dtype=np.float64).forward(x, batch_size=2),
        out64,
        rtol=0,
        atol=1e-13,
    )


def test_engine_input_and_state_checks():
    cfg = QuasarNetConfig(n_filters=4, n_fc=8)
    t = random_state_dict(cfg)
    eng = NumpyQuasarNet(t, cfg)
    assert eng(np.zeros((2, 1, 443))).shape == (2, 7, 26)
    with pytest.raises(ValueError, match="443"):
        eng(np.zeros((2, 400)))
    bad = dict(t)
    bad["fc_common.weight"] = bad["fc_common.weight"][:, :-1]
    with pytest.raises(ModelFormatError, match=r"fc_common\.weight"):
        check_state_dict(bad, cfg)
    bad = dict(t)
    del bad["bn_fc.running_var"]
    with pytest.raises(ModelFormatError, match="missing"):
        NumpyQuasarNet(bad, cfg)
    model = build_quasarnet(**to_dict(cfg))
    assert set(model.state_dict_numpy()) == set(state_dict_keys(cfg))


def test_no_offset_rescale_and_dropout_only_in_training():
    cfg = QuasarNetConfig(n_filters=4, n_fc=8, offset_rescale=False, dropout=0.5)
    m = _torch_model(cfg, dtype=torch.float64)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 443)))
    with torch.no_grad():
        a, b = m(x), m(x)
    assert torch.equal(a, b)  # eval mode: dropout is identity
    out = NumpyQuasarNet(random_state_dict(cfg), cfg, dtype=np.float64)(x.numpy())
    np.testing.assert_allclose(out, a.numpy(), atol=1e-10)
    assert out[:, :, 13:].min() >= 0.0


def test_save_load_round_trip(tmp_path):
    cfg = QuasarNetConfig(n_layers=6, padding="same", n_filters=8, n_fc=16)
    model = _torch_model(cfg, seed=3)
    grid, lines = GridConfig.log(), LinesConfig()
    out = save_model(
        tmp_path / "qn",
        model.state_dict_numpy(),
        pipeline="quasar",
        architecture="quasarnet",
        config=to_dict(cfg),
        preprocessing=preprocessing_metadata(grid, lines),
        label_names=[*lines.lines, "CIV(1548)_BAL"],
    )
    saved = load_model(out, pipeline="quasar")
    eng = load_engine(out, dtype=np.float64)
    assert eng.grid == grid and eng.lines == lines and eng.weights_hash == saved.weights_hash
    back = QuasarNetTorch.from_saved(saved).double()
    x = np.random.default_rng(0).standard_normal((4, 443))
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(back(torch.from_numpy(x)).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(eng(x), ref, atol=1e-10)  # float64 engine vs torch <= 1e-10
    res = eng.predict_lines(x)
    assert res.c_line.shape == (4, 6) and res.z_line_bal.shape == (4, 1)
    # registry builders
    from surveynet.registry import get_architecture, get_numpy_engine

    assert isinstance(get_architecture("quasarnet")(**saved.config), QuasarNetTorch)
    eng64 = get_numpy_engine("quasarnet")(saved.tensors, saved.config, dtype=np.float64)
    assert isinstance(eng64, NumpyQuasarNet)  # one builder signature: (tensors, config, **options)
    np.testing.assert_allclose(eng64(x), ref, atol=1e-10)
    # a model of another architecture is refused
    meta = json.loads((out / "config.json").read_text())
    meta["architecture"] = "other"
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="quasarnet"):
        load_engine(out)


def test_engine_never_imports_torch(tmp_path):
    cfg = QuasarNetConfig(n_filters=4, n_fc=8)
    out = save_model(
        tmp_path / "m",
        random_state_dict(cfg),
        pipeline="quasar",
        architecture="quasarnet",
        config=to_dict(cfg),
        preprocessing=preprocessing_metadata(GridConfig.log(), LinesConfig()),
    )
    code = (
        "import sys, numpy as np\n"
        "from surveynet.quasar.engine import load_engine\n"
        "from surveynet.quasar.preprocess import preprocess_arrays\n"
        "from surveynet.quasar.postprocess import process_preds\n"
        "import surveynet.io.keras, surveynet.quasar.convert, surveynet.quasar.cli\n"
        f"e = load_engine({str(out)!r})\n"
        "r = e.predict_lines(np.zeros((2, 443)))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


# ------------------------------------------------------------------ Keras conversion goldens


def test_convert_6_layer_golden(tmp_path):
    from surveynet.quasar.convert import convert_keras_quasarnet

    h5 = shared_path("quasarnp/test_weights_6_layer.h5")
    x = np.load(shared_path("quasarnp/coadd_x.npy"), allow_pickle=False)
    expected = np.load(
        shared_path("quasarnp/qnet_output_6_layer.npy"), allow_pickle=False
    ).transpose(1, 0, 2)
    out = convert_keras_quasarnet(h5, tmp_path / "qn6")
    saved = load_model(out, pipeline="quasar")
    cfg = saved.config
    assert (cfg["n_layers"], cfg["padding"], cfg["n_filters"], cfg["n_fc"]) == (6, "same", 100, 100)
    # the rescale Lambdas are named lambda_0..lambda_6: detected through the graph (spec §8.1)
    assert cfg["offset_rescale"] is True
    assert (cfg["offset_shift"], cfg["offset_scale"]) == (-0.1, 1.2)
    assert cfg["bn_eps"] == 1e-3
    assert QuasarNetConfig(**cfg).n_parameters() == 592_882
    assert saved.meta["source"]["sha256"].startswith("9784aa7a7caf81ec")
    for dtype in (np.float32, np.float64):
        got = load_engine(out, dtype=dtype)(x)
        assert np.abs(got[:, :, :13] - expected[:, :, :13]).max() <= 1e-5  # box confidences <= 1e-5
        assert np.abs(got[:, :, 13:] - expected[:, :, 13:]).max() <= 1e-5  # offsets <= 1e-5
    with torch.no_grad():
        got = QuasarNetTorch.from_saved(saved)(torch.from_numpy(x).float()).numpy()
    assert np.abs(got - expected).max() <= 1e-5  # torch path, boxes and offsets <= 1e-5
    # z from the converted model agrees with z from the TF outputs
    eng = load_engine(out, dtype=np.float64)
    from surveynet.quasar.postprocess import process_preds

    ref = process_preds(expected, GridConfig.log().wave())
    res = eng.predict_lines(x)
    assert np.abs(res.z_line - ref.z_line).max() <= 1e-5


def test_convert_small_model(tmp_path):
    from surveynet.quasar.convert import read_keras_quasarnet

    h5 = shared_path("quasarnp/test_weights.h5")
    k = read_keras_quasarnet(h5)
    cfg = QuasarNetConfig(**k.config)
    assert (cfg.n_layers, cfg.padding, cfg.n_filters, cfg.n_fc) == (4, "valid", 25, 25)
    assert cfg.n_parameters() == 36_857
    assert cfg.offset_rescale and cfg.dropout == pytest.approx(0.2)
    # 0-indexed BatchNorm names are paired through the graph
    assert (
        k.layer_map["bns.0"] == "batch_normalization"
        and k.layer_map["bn_fc"] == "batch_normalization_4"
    )
    assert k.grid == to_dict(GridConfig.log())
    x = np.load(shared_path("quasarnp/coadd_x.npy"), allow_pickle=False)
    eng = NumpyQuasarNet(k.tensors, cfg, grid=GridConfig.log())
    res = eng.predict_lines(x)
    assert int((res.c_line.max(axis=1) > 0.5).sum()) == 6  # spec §7: 6 of 24 with c > 0.5
    assert np.isfinite(res.zbest).all()


def test_convert_cli(tmp_path, capsys):
    from surveynet.cli import main

    h5 = shared_path("quasarnp/test_weights.h5")
    out = tmp_path / "small"
    assert main(["quasar", "convert", str(h5), "--out", str(out)]) == 0
    assert "4 conv x 25 'valid'" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    meta = json.loads((out / "config.json").read_text())
    assert meta["pipeline"] == "quasar" and meta["architecture"] == "quasarnet"
    assert meta["preprocessing"]["lines"][0] == "LYA"
    assert meta["source"]["file"] == "test_weights.h5"
    # refuses to overwrite; --overwrite replaces
    assert main(["quasar", "convert", str(h5), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["quasar", "convert", str(h5), "--out", str(out), "--overwrite", "--quiet"]) == 0
    # bad input: one-line reason, exit 1
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"\x00" * 64)
    assert main(["quasar", "convert", str(bad), "--out", str(tmp_path / "y")]) == 1
    assert "x.h5" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    # wrong number of head names
    assert main(["quasar", "convert", str(h5), "--out", str(tmp_path / "z"), "--lines", "LYA"]) == 1


def test_keras_graph_errors(tmp_path):
    import h5py

    from surveynet.quasar.convert import read_keras_quasarnet

    p = tmp_path / "nocfg.h5"
    with h5py.File(p, "w") as f:
        f.create_group("model_weights")
    with pytest.raises(InputError, match="model_config"):
        read_keras_quasarnet(p)
    p2 = tmp_path / "noconv.h5"
    with h5py.File(p2, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"layers": []}})
    with pytest.raises(InputError, match="Conv1D"):
        read_keras_quasarnet(p2)


@pytest.mark.slow
def test_bench_quick():
    from surveynet.quasar.bench import run_bench

    fig = run_bench(quick=True)
    assert fig["max_abs_diff_vs_baseline"] < 1e-4
    assert fig["torch_b1_spectra_per_s"] > 0 and fig["numpy_b64_spectra_per_s"] > 0
    assert fig["mflop_per_spectrum"] == pytest.approx(43.8, rel=0.01)
    # end to end (whole processes, file to catalogue) beside the forward-only figures
    for mode in ("1file_inprocess", "2files_inprocess", "2files_dask1", "2files_dask2"):
        assert fig[f"e2e_{mode}_spectra_per_s"] > 0 and fig[f"e2e_{mode}_peak_mb"] > 0
    assert fig["read_rebin_normalise_spectra_per_s"] > 0


def test_empty_inputs():
    cfg = QuasarNetConfig(n_filters=4, n_fc=8, n_layers=6, padding="same")
    eng = NumpyQuasarNet(random_state_dict(cfg), cfg, grid=GridConfig.log())
    res = eng.predict_lines(np.zeros((0, 443)))
    assert res.c_line.shape == (0, 6) and res.zbest.shape == (0,) and res.is_qso().shape == (0,)
    with torch.no_grad():
        assert QuasarNetTorch(cfg).eval()(torch.zeros(0, 443)).shape == (0, 7, 26)
    with pytest.raises(ModelFormatError, match="grid"):
        NumpyQuasarNet(random_state_dict(cfg), cfg).predict_lines(np.zeros((1, 443)))


def _edit_keras_copy(src, dst, edit_config=None, rename=None, attrs=None, datasets=None):
    """Copy a Keras .h5 and edit its model_config / layer names / root attributes."""
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        mc = json.loads(f.attrs["model_config"])
        if edit_config is not None:
            edit_config(mc)
        if rename:
            text = json.dumps(mc)
            for old, new in rename.items():
                text = text.replace(f'"{old}"', f'"{new}"')
                grp = f["model_weights"]
                grp.move(old, new)
                grp[new].move(old, new)
                names = [
                    n.decode() if isinstance(n, bytes) else n
                    for n in grp[new].attrs["weight_names"]
                ]
                grp[new].attrs["weight_names"] = [n.replace(old + "/", new + "/") for n in names]
                lnames = [
                    n.decode() if isinstance(n, bytes) else n for n in grp.attrs["layer_names"]
                ]
                grp.attrs["layer_names"] = [new if n == old else n for n in lnames]
            mc = json.loads(text)
        f.attrs["model_config"] = json.dumps(mc)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        for k, v in (datasets or {}).items():
            f.create_dataset(k, data=v)
    return dst


def test_keras_lambda_constants_and_bn_pairing(tmp_path):
    from surveynet.io.keras import lambda_constants
    from surveynet.quasar.convert import read_keras_quasarnet

    for name in ("test_weights.h5", "test_weights_6_layer.h5"):
        import h5py

        with h5py.File(shared_path(f"quasarnp/{name}"), "r") as f:
            mc = json.loads(f.attrs["model_config"])
        lambdas = [lay for lay in mc["config"]["layers"] if lay["class_name"] == "Lambda"]
        assert len(lambdas) == 7
        # constants read from the marshalled body (never executed)
        assert {lambda_constants(lay) for lay in lambdas} == {(-0.1, 1.2)}
    src = shared_path("quasarnp/test_weights.h5")
    ref = read_keras_quasarnet(src)
    assert len(ref.layer_map) == 24  # 4 conv + 5 BN + fc_common + 14 head Dense layers
    # arbitrary BatchNorm names are paired through inbound_nodes, not by their names
    renamed = _edit_keras_copy(
        src,
        tmp_path / "renamed.h5",
        rename={"batch_normalization_2": "zz_norm", "batch_normalization": "bn_first"},
    )
    k = read_keras_quasarnet(renamed)
    assert k.layer_map["bns.2"] == "zz_norm" and k.layer_map["bns.0"] == "bn_first"
    for key, val in ref.tensors.items():
        np.testing.assert_array_equal(k.tensors[key], val)


def test_keras_without_rescale_lambda(tmp_path):
    from surveynet.quasar.convert import read_keras_quasarnet

    def drop_lambdas(mc):
        layers = mc["config"]["layers"]
        lam = {
            lay["name"]: lay["inbound_nodes"][0][0][0]
            for lay in layers
            if lay["class_name"] == "Lambda"
        }
        mc["config"]["layers"] = [lay for lay in layers if lay["class_name"] != "Lambda"]
        for lay in mc["config"]["layers"]:
            if lay["class_name"] == "Concatenate":
                for node in lay["inbound_nodes"]:
                    for item in node:
                        item[0] = lam.get(item[0], item[0])

    p = _edit_keras_copy(
        shared_path("quasarnp/test_weights.h5"), tmp_path / "arxiv.h5", edit_config=drop_lambdas
    )
    k = read_keras_quasarnet(p)
    assert k.config["offset_rescale"] is False
    ref = read_keras_quasarnet(shared_path("quasarnp/test_weights.h5"))
    x = np.load(shared_path("quasarnp/coadd_x.npy"), allow_pickle=False)[:4]
    a = NumpyQuasarNet(k.tensors, QuasarNetConfig(**k.config), dtype=np.float64)(x)
    b = NumpyQuasarNet(ref.tensors, QuasarNetConfig(**ref.config), dtype=np.float64)(x)
    np.testing.assert_allclose(b[:, :, 13:], -0.1 + 1.2 * a[:, :, 13:], atol=1e-12)
    np.testing.assert_array_equal(a[:, :, :13], b[:, :, :13])


def test_keras_model_grid(tmp_path):
    from surveynet.quasar.convert import read_keras_quasarnet

    src = shared_path("quasarnp/test_weights.h5")
    ok = _edit_keras_copy(
        src,
        tmp_path / "g.h5",
        attrs={"grid_spacing": "logarithmic"},
        datasets={"model_grid": GridConfig.log().wave()},
    )
    assert read_keras_quasarnet(ok).grid == to_dict(GridConfig.log())
    bad = _edit_keras_copy(
        src,
        tmp_path / "lin.h5",
        attrs={"grid_spacing": "linear"},
        datasets={"model_grid": GridConfig.linear().wave()},
    )
    with pytest.raises(InputError, match="458"):
        read_keras_quasarnet(bad)  # a 443-input network cannot use the 458-bin grid


def test_keras_missing_weight_names_layer(tmp_path):
    import h5py

    from surveynet.quasar.convert import read_keras_quasarnet

    p = _edit_keras_copy(shared_path("quasarnp/test_weights.h5"), tmp_path / "broken.h5")
    with h5py.File(p, "r+") as f:
        del f["model_weights/conv_2/conv_2/kernel:0"]
    with pytest.raises(InputError, match=r"broken\.h5.*conv_2"):
        read_keras_quasarnet(p)
    with h5py.File(p, "r+") as f:
        f["model_weights/conv_2"].attrs["weight_names"] = ["conv_2/bias:0"]
    with pytest.raises(InputError, match="no 'kernel' weight"):
        read_keras_quasarnet(p)
