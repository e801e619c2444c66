"""The quasar config root, its flags, the registrations and the saved configs (issue 21)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from surveynet.cli import main
from surveynet.config import (
    add_config_args,
    add_config_flag,
    config_from_args,
    config_hash,
    config_sidecar,
    from_dict,
    resolve_config,
    to_dict,
)
from surveynet.errors import ConfigError
from surveynet.quasar.config import DEFAULT_MODEL, QuasarConfig, TrainConfig


def _parse(step: str, argv: list[str]) -> argparse.Namespace:
    from surveynet.quasar import cli

    p = argparse.ArgumentParser()
    getattr(cli, f"{step}_args")(p)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------ config root
def test_config_root_sections_and_defaults() -> None:
    cfg = QuasarConfig()
    assert list(to_dict(cfg)) == [
        "data",
        "grid",
        "lines",
        "model",
        "train",
        "predict",
        "evaluate",
        "calibrate",
        "bal",
    ]
    assert cfg.predict.model == DEFAULT_MODEL and cfg.predict.c_th == 0.5
    assert cfg.train.lr_schedule == "constant" and cfg.train.device == "cpu"
    assert cfg.evaluate.dv_max == 6000.0
    # a saved config reads back to the same config
    assert from_dict(QuasarConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"'train\.epoch'.*did you mean 'epochs'"):
        resolve_config(QuasarConfig, None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"unknown section 'predcit'.*did you mean 'predict'"):
        resolve_config(QuasarConfig, None, ["predcit.c_th=0.3"])
    with pytest.raises(ConfigError, match=r"predict\.cth"):
        from_dict(QuasarConfig, {"predict": {"cth": 0.3}})
    with pytest.raises(ConfigError, match="lr_decay_start"):
        TrainConfig(epochs=3, lr_schedule="cosine", lr_decay_start=3)
    with pytest.raises(ConfigError, match=r"train\.device"):
        TrainConfig(device="gpu")


def test_config_file_then_flags_then_set(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  seed: 7\n  device: auto\npredict:\n  c_th: 0.3\n")
    args = _parse("train", ["d.npz", "--out", "m", "--config", str(f)])
    cfg = config_from_args(QuasarConfig, args)
    assert (cfg.train.seed, cfg.train.device) == (7, "auto")  # flags not given do not override
    args = _parse("train", ["d.npz", "--out", "m", "--config", str(f), "--seed", "9"])
    assert config_from_args(QuasarConfig, args).train.seed == 9
    args = _parse(
        "train", ["d.npz", "--out", "m", "--seed", "9", "--set", "train.seed=11"]
    )  # --set is applied last
    assert config_from_args(QuasarConfig, args).train.seed == 11


@pytest.mark.parametrize(
    ("step", "argv", "key", "value"),
    [
        ("prepare", ["--simulate", "40"], "data.simulate", 40),
        ("prepare", ["--seed", "3"], "data.seed", 3),
        ("prepare", ["--chunk", "7"], "data.chunk", 7),
        ("train", ["--seed", "3"], "train.seed", 3),
        ("train", ["--device", "auto"], "train.device", "auto"),
        ("train", ["--threads", "2"], "train.threads", 2),
        ("train", ["--max-batches", "5"], "train.max_batches", 5),
        ("train", ["--lr-schedule", "cosine"], "train.lr_schedule", "cosine"),
        ("train", ["--lr-decay-start", "2"], "train.lr_decay_start", 2),
        ("train", ["--lr-min", "1e-6"], "train.lr_min", 1e-6),
        ("predict", ["--model", "m"], "predict.model", "m"),
        ("predict", ["--c-th", "0.4"], "predict.c_th", 0.4),
        ("predict", ["--n-th", "2"], "predict.n_th", 2),
        ("predict", ["--edge", "clamp"], "predict.edge", "clamp"),
        ("predict", ["--batch-size", "64"], "predict.batch_size", 64),
        ("evaluate", ["--n-th", "2"], "predict.n_th", 2),
        ("evaluate", ["--dv-max", "3000"], "evaluate.dv_max", 3000.0),
        ("evaluate", ["--model", "m"], "evaluate.model", "m"),
    ],
)
def test_every_flag_sets_its_key(step: str, argv: list[str], key: str, value: object) -> None:
    from surveynet.config import get_key

    base = {
        "prepare": ["--out", "x.npz"],
        "train": ["d.npz", "--out", "m", "--set", "train.epochs=6"],
        "predict": ["a.fits", "--out", "c.fits"],
        "evaluate": ["c.fits", "--truth", "t.fits", "--out", "ev"],
    }[step]
    cfg = config_from_args(QuasarConfig, _parse(step, [*base, *argv]))
    assert get_key(cfg, key) == value
    assert get_key(config_from_args(QuasarConfig, _parse(step, base)), key) != value


def test_boolean_keys_switch_on_and_off() -> None:
    @dataclass_frozen
    class Opt:
        amsgrad: bool = True

    p = argparse.ArgumentParser()
    add_config_args(p)
    add_config_flag(p, "--amsgrad", key="amsgrad", config_cls=Opt)
    assert config_from_args(Opt, p.parse_args(["--no-amsgrad"])).amsgrad is False
    assert config_from_args(Opt, p.parse_args(["--amsgrad"])).amsgrad is True
    assert config_from_args(Opt, p.parse_args([])).amsgrad is True


def dataclass_frozen(cls: type) -> type:
    import dataclasses

    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


def test_cli_reports_bad_config_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["quasar", "prepare", "--simulate", "5", "--out", str(tmp_path / "d.npz"),
               "--set", "data.chunks=3"])  # fmt: skip
    assert rc == 1 and not (tmp_path / "d.npz").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("surveynet: error:") and "data.chunks" in err and "\n" not in err


# ------------------------------------------------------------------------------ registrations
def test_registrations_in_one_place() -> None:
    from surveynet import registry

    assert registry.get_config("quasar") is QuasarConfig
    assert "quasarnet" in registry.list_architectures()
    assert "quasarnet" in registry.list_numpy_engines()
    steps = [s.name for s in registry.list_steps() if s.group == "quasar"]
    assert sorted(steps) == [
        "bal",
        "calibrate",
        "convert",
        "evaluate",
        "predict",
        "prepare",
        "train",
    ]
    with pytest.raises(KeyError, match="already registered"):
        registry.register_group("quasar", "again")


def test_root_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from surveynet.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'scipy', 'h5py', 'distributed', "
        "'surveynet.quasar.config', 'surveynet.quasar.train') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "quasar" in res.stdout and "exit status" in res.stdout


def test_step_help_shows_the_config_key(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["quasar", "predict", "--help"])
    out = capsys.readouterr().out
    assert "config key predict.c_th, default 0.5" in " ".join(out.split())


def test_models_lists_the_bundled_command(capsys: pytest.CaptureFixture) -> None:
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(DEFAULT_MODEL))
    assert "quasar" in line and "surveynet quasar train" in line


# ------------------------------------------------------------------------------ saved configs
@pytest.fixture(scope="module")
def demo_mock(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    from surveynet.sim.spectra import SpectraSimConfig, simulate_to_files

    d = tmp_path_factory.mktemp("qcfg")
    return simulate_to_files(
        d / "mock", 40, 77, n_files=2, config=SpectraSimConfig(resolution=False)
    )


def test_predict_saves_config_next_to_catalogue(
    demo_mock: tuple[list[Path], Path], tmp_path: Path
) -> None:
    files, truth = demo_mock
    cat = tmp_path / "cat.fits"
    argv = ["quasar", "predict", *map(str, files), "--out", str(cat), "--workers", "0"]
    assert main([*argv, "--c-th", "0.4", "--quiet"]) == 0
    side = config_sidecar(cat)
    assert side.name == "cat.config.json"
    saved = from_dict(QuasarConfig, json.loads(side.read_text()))
    # the model sections are those of the model used, the predict section the resolved one
    assert saved.predict.c_th == 0.4 and saved.model.n_layers == 6 and saved.model.n_filters == 32
    with fits.open(cat) as h:
        hdr = h[0].header
        assert hdr["CFGHASH"] == config_hash(saved) and hdr["C_TH"] == 0.4
        assert hdr["CFGFILE"] == side.name
    # fed back with --config, the saved config makes the same catalogue
    cat2 = tmp_path / "cat2.fits"
    argv2 = ["quasar", "predict", *map(str, files), "--out", str(cat2), "--config", str(side)]
    assert main([*argv2, "--workers", "0", "--quiet"]) == 0
    with fits.open(cat) as a, fits.open(cat2) as b:
        assert a[0].header["CFGHASH"] == b[0].header["CFGHASH"]
        np.testing.assert_array_equal(
            a["QN_CATALOG"].data["C_LINES"], b["QN_CATALOG"].data["C_LINES"]
        )
    # evaluate writes its config beside the metrics, and refuses to overwrite them
    ev = tmp_path / "ev"
    argv3 = ["quasar", "evaluate", str(cat), "--truth", str(truth), "--out", str(ev), "--quiet"]
    assert main([*argv3, "--dv-max", "3000"]) == 0
    m = json.loads((ev / "metrics.json").read_text())
    assert m["dv_max_kms"] == 3000 and m["catalog_config_hash"] == config_hash(saved)
    assert (
        from_dict(QuasarConfig, json.loads((ev / "config.json").read_text())).evaluate.dv_max
        == 3000
    )
    assert main(argv3) == 1
    assert main([*argv3, "--overwrite"]) == 0


def test_predict_checks_overwrite_before_any_work(
    demo_mock: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    files, _ = demo_mock
    out = tmp_path / "c.fits"
    out.write_bytes(b"")
    # an unloadable model would fail the work: the existing output is reported first
    argv = ["quasar", "predict", str(files[0]), "--out", str(out), "--model", str(tmp_path)]
    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err


def test_prepare_simulate_saves_config_and_command(tmp_path: Path) -> None:
    out = tmp_path / "d.npz"
    argv = ["quasar", "prepare", "--simulate", "12", "--seed", "5", "--chunk", "5"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    cfg = from_dict(QuasarConfig, json.loads(config_sidecar(out).read_text()))
    assert (cfg.data.simulate, cfg.data.seed, cfg.data.chunk) == (12, 5, 5)
    with np.load(out, allow_pickle=False) as z:
        prov = str(z["PROVENANCE"])
        assert len(z["X"]) <= 12 and z["TARGETID"].max() >= 2 * 10**8  # three chunks
    assert prov.startswith("surveynet quasar prepare --simulate 12 --seed 5 --chunk 5 --out")


def test_simulated_chunks_do_not_depend_on_the_runner() -> None:
    from surveynet.quasar.config import GridConfig
    from surveynet.quasar.data import _simulate_chunk, simulate_dataset

    grid = GridConfig.log()
    d = simulate_dataset(9, 3, grid, chunk=5)
    parts = [_simulate_chunk(k, n=9, seed=3, chunk=5, grid=to_dict(grid)) for k in ("0", "1")]
    np.testing.assert_array_equal(d["X"], np.concatenate([p["X"] for p in parts]))
    np.testing.assert_array_equal(d["TARGETID"], np.concatenate([p["TARGETID"] for p in parts]))
