"""Core layers: config, model format, FITS writing, batch runner, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import surveynet
from surveynet.cli import main
from surveynet.config import apply_overrides, config_hash, from_dict, resolve_config, to_dict
from surveynet.errors import ConfigError, InputError, ModelFormatError
from surveynet.io.fits import atomic_path, provenance_header, write_catalog
from surveynet.io.model import load_model, save_model
from surveynet.runner import run_batch


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Model:
    n_filters: int = 8
    kernel: tuple[int, ...] = (3, 3)
    act: str = "relu"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Cfg:
    model: _Model = dataclasses.field(default_factory=_Model)
    lr: float = 1e-3
    name: str | None = None


def test_config_round_trip_and_overrides(tmp_path):
    cfg = apply_overrides(
        _Cfg(), ["model.n_filters=16", "lr=0.01", "model.kernel=[5,5,5]", "name=x"]
    )
    assert cfg.model.n_filters == 16 and cfg.lr == 0.01 and cfg.model.kernel == (5, 5, 5)
    assert from_dict(_Cfg, to_dict(cfg)) == cfg
    assert config_hash(cfg) != config_hash(_Cfg())
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"n_filters": 4}}))
    assert resolve_config(_Cfg, path, ["lr=2"]).model.n_filters == 4
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("model:\n  act: tanh\n")
    assert resolve_config(_Cfg, yaml_path, None).model.act == "tanh"


@pytest.mark.parametrize(
    "override",
    ["model.n_filterz=3", "nosection.x=1", "model.n_filters=abc", "lr", "model.n_filters=1.5"],
)
def test_config_rejects_bad_overrides(override):
    with pytest.raises(ConfigError):
        apply_overrides(_Cfg(), [override])


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match=r"model\.bogus"):
        from_dict(_Cfg, {"model": {"bogus": 1}})


def test_model_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv.weight": rng.standard_normal((4, 1, 3)).astype(np.float32),
        "bn.eps": np.ones(1),
    }
    out = save_model(
        tmp_path / "m",
        tensors,
        pipeline="quasar",
        architecture="toy",
        config={"a": 1},
        preprocessing={"grid": "log"},
        label_names=["x"],
        training={"command": "surveynet quasar train ...", "data_hash": "abc"},
    )
    saved = load_model(out, pipeline="quasar")
    assert saved.architecture == "toy" and saved.config == {"a": 1}
    np.testing.assert_array_equal(saved.tensors["conv.weight"], tensors["conv.weight"])
    assert len(saved.weights_hash) == 16
    meta = json.loads((out / "config.json").read_text())
    assert meta["surveynet_version"] == surveynet.__version__ and meta["format_version"] == 1
    assert not list(tmp_path.glob("*.tmp-*"))
    with pytest.raises(FileExistsError):
        save_model(out, tensors, pipeline="quasar", architecture="toy", config={})
    with pytest.raises(ModelFormatError, match="pipeline"):
        load_model(out, pipeline="dla")


def test_model_load_errors(tmp_path):
    with pytest.raises(ModelFormatError, match="no such model"):
        load_model(tmp_path / "absent")
    d = tmp_path / "broken"
    d.mkdir()
    (d / "config.json").write_text("{")
    (d / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFormatError, match="invalid JSON"):
        load_model(d)
    (d / "config.json").write_text(
        json.dumps({"format_version": 1, "pipeline": "dla", "architecture": "a", "config": {}})
    )
    with pytest.raises(ModelFormatError, match="safetensors"):
        load_model(d)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.fits"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_catalog_provenance(tmp_path):
    hdr = provenance_header(
        pipeline="quasar", model_name="m", model_hash="0" * 16, config_hash="1" * 16, seed=3
    )
    t = Table({"targetid": np.arange(3, dtype=np.int64), "Z": np.zeros(3)})
    path = write_catalog(tmp_path / "cat.fits", {"CATALOG": t}, hdr)
    with fits.open(path) as h:
        assert h[0].header["PIPELINE"] == "quasar" and h[0].header["SEED"] == 3
        assert h[0].header["SNVER"] == surveynet.__version__
        assert h["CATALOG"].columns.names == ["TARGETID", "Z"]
    with pytest.raises(FileExistsError):
        write_catalog(path, {"CATALOG": t}, hdr)


def test_input_error_names_file_hdu_column():
    err = InputError("bad values", path="x.fits", hdu="B_FLUX", column="TARGETID")
    assert "x.fits" in str(err) and "HDU B_FLUX" in str(err) and "column TARGETID" in str(err)
    assert isinstance(err, ValueError)


def test_run_batch_in_process_reports_failures(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("abc")
    res = run_batch(os.path.getsize, [str(good), str(tmp_path / "missing")], workers=0, quiet=True)
    assert res[0].ok and res[0].value == 3
    assert not res[1].ok and "FileNotFoundError" in res[1].error


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_run_batch_on_dask_local_cluster(tmp_path):
    files = []
    for i in range(4):
        f = tmp_path / f"f{i}.txt"
        f.write_text("x" * (i + 1))
        files.append(str(f))
    files.insert(2, str(tmp_path / "missing"))
    res = run_batch(os.path.getsize, files, workers=2, quiet=True)
    assert [r.input for r in res] == files
    assert [r.value for r in res if r.ok] == [1, 2, 3, 4]
    assert sum(not r.ok for r in res) == 1 and "missing" in res[2].input


def test_cli_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert surveynet.__version__ in capsys.readouterr().out
    assert main(["models"]) == 0
    assert main([]) == 2


def test_cli_every_command_has_help():
    """Smoke test: ``--help`` of every registered step and group parses and exits 0."""
    from surveynet.registry import list_steps

    steps = list_steps()
    for argv in [["demo"], ["bench"], *([s.group, s.name] for s in steps)]:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--help"])
        assert exc.value.code == 0, argv


def test_python_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "surveynet", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"surveynet {surveynet.__version__}"


def test_inference_modules_do_not_import_torch():
    """The CLI and every pipeline's registrations load without importing torch."""
    code = (
        "import sys, surveynet.cli as c; c.build_parser(); "
        "import surveynet.io.spectra; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")
def test_demo_end_to_end(tmp_path):
    """``surveynet demo`` makes the mock, runs every pipeline and links every output it reports."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "60", "--quiet"]) == 0
    index = (out / "index.html").read_text()
    for title in ("Mock spectra", "QuasarNET", "DLA finder"):
        assert f"<h2>{title}</h2>" in index
    import re

    links = re.findall(r"(?:href|src)='([^']+)'", index)
    assert any(x.endswith(".png") for x in links) and any(x.endswith(".fits") for x in links)
    for rel in links:
        assert (out / rel).is_file(), rel
    with fits.open(out / "quasar" / "qn_catalog.fits") as h:
        assert h[0].header["PIPELINE"] == "quasar" and len(h["QN_CATALOG"].data) == 60


def test_bench_spectra_json(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert main(["bench", "spectra", "--quick", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    assert figures["simulate_spectra_per_s"] > 0 and figures["read_spectra_per_s"] > 0
    assert "simulate_spectra_per_s" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 1
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------ numpy ops vs torch (float64)
CONV_CASES = [
    # (length, kernel, stride, dilation, padding)
    (50, 3, 1, 1, "valid"),
    (50, 3, 1, 4, "same"),
    (64, 5, 2, 3, "same"),
    (61, 4, 3, 2, (3, 1)),
    (443, 10, 2, 1, "same"),
    (40, 3, 1, 8, (8, 8)),
    (33, 7, 4, 1, "valid"),
]


@pytest.mark.parametrize(("n", "k", "s", "d", "padding"), CONV_CASES)
def test_numpy_conv1d_matches_torch_with_dilation(n, k, s, d, padding):
    """numpy conv1d (im2col) and conv1d_taps_nlc vs torch.nn.functional.conv1d, float64.

    Tolerance: 1e-10 absolute on O(1) outputs (float64 summation-order differences only).
    """
    torch = pytest.importorskip("torch")
    from surveynet.nn import numpy_ops as ops

    rng = np.random.default_rng(n * 100 + k * 10 + d)
    x = rng.standard_normal((3, 4, n))
    w = rng.standard_normal((5, 4, k)) / np.sqrt(4 * k)
    b = rng.standard_normal(5)
    left, right = ops.resolve_padding(n, k, s, padding, d)
    xt = torch.nn.functional.pad(torch.from_numpy(x), (left, right))
    ref = torch.nn.functional.conv1d(
        xt, torch.from_numpy(w), torch.from_numpy(b), stride=s, dilation=d
    ).numpy()
    out = ops.conv1d(x, w, b, stride=s, padding=padding, dilation=d)
    assert out.shape == ref.shape == (3, 5, ops.conv_output_length(n, k, s, padding, d))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)
    if padding == "same":
        assert out.shape[-1] == -(-n // s)  # TensorFlow 'SAME': ceil(n / s)
    if s == 1:
        xn = np.ascontiguousarray(x.transpose(0, 2, 1))
        taps = ops.conv1d_taps_nlc(xn, w, b, padding=padding, dilation=d)
        np.testing.assert_allclose(taps.transpose(0, 2, 1), ref, rtol=0, atol=1e-10)
        wide = ops.conv1d_taps_nlc(xn, w, b, padding=padding, dilation=d, gap=left + right + 5)
        np.testing.assert_allclose(wide.transpose(0, 2, 1), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("n", "k", "s", "padding"), [(50, 2, 2, "valid"), (51, 3, 2, "same")])
def test_numpy_maxpool_matches_torch(n, k, s, padding):
    """maxpool1d (N, C, L) and maxpool1d_nlc (N, L, C) vs torch max_pool1d; exact."""
    torch = pytest.importorskip("torch")
    from surveynet.nn import numpy_ops as ops

    x = np.random.default_rng(n).standard_normal((2, 3, n))
    left, right = ops.resolve_padding(n, k, s, padding)
    xt = torch.nn.functional.pad(torch.from_numpy(x), (left, right), value=-np.inf)
    ref = torch.nn.functional.max_pool1d(xt, k, s).numpy()
    np.testing.assert_array_equal(ops.maxpool1d(x, k, s, padding=padding), ref)
    nlc = ops.maxpool1d_nlc(np.ascontiguousarray(x.transpose(0, 2, 1)), k, s, padding=padding)
    np.testing.assert_array_equal(nlc.transpose(0, 2, 1), ref)


def test_same_padding_with_dilation():
    from surveynet.nn.numpy_ops import same_padding

    # span (k - 1) d + 1 = 9: stride 1 keeps the length with 4 + 4
    assert same_padding(100, 3, 1, dilation=4) == (4, 4)
    assert same_padding(100, 3, 2, dilation=4) == (3, 4)
    with pytest.raises(ValueError):
        same_padding(10, 0, 1)


def test_time_call_policy():
    """One warm-up call, then ``repeat`` trials; a warm-up as long as the budget is the answer."""
    import time

    from surveynet.bench import time_call

    calls: list[int] = []
    t = time_call(lambda: calls.append(1), min_time=0.0, repeat=3)
    assert len(calls) == 4 and t >= 0.0
    calls.clear()
    time_call(lambda: calls.append(1), min_time=0.0, repeat=2, warmup=False)
    assert len(calls) == 2
    calls.clear()
    slow = time_call(lambda: (calls.append(1), time.sleep(0.03)), min_time=0.01, repeat=2)
    assert len(calls) == 1 and slow >= 0.03  # warm-up >= repeat * min_time: timed once
    with pytest.raises(ValueError):
        time_call(lambda: None, repeat=0)


def test_demo_stage_needing_torch_is_reported_not_fatal(tmp_path, monkeypatch):
    """``pip install .`` has no torch: a training stage is skipped with a reason, the rest runs."""
    import argparse

    from surveynet import demo

    def needs_torch(ctx):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    def other_missing(ctx):
        raise ModuleNotFoundError("No module named 'nothere'", name="nothere")

    monkeypatch.setattr(demo, "_STAGES", {"trainer": (10, needs_torch)})
    monkeypatch.setattr("surveynet.registry.load_pipelines", lambda: None)
    args = argparse.Namespace(out=str(tmp_path / "d"), seed=1, n=20, quiet=True)
    assert demo.run(args) == 0
    html = (tmp_path / "d" / "index.html").read_text()
    assert "Skipped: this stage trains a network and needs PyTorch" in html
    monkeypatch.setattr(demo, "_STAGES", {"broken": (10, other_missing)})
    with pytest.raises(ModuleNotFoundError):
        demo.run(argparse.Namespace(out=str(tmp_path / "e"), seed=1, n=20, quiet=True))
