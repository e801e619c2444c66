"""The one DLA config root: sections, CLI flags as keys, old shapes, bundled models, registry."""

from __future__ import annotations

import typing

import pytest

from surveynet.config import from_dict, to_dict
from surveynet.dla.cli import resolve
from surveynet.dla.config import (
    DLAConfig,
    ModelSection,
    PredictConfig,
    migrate_config,
    training_config,
)
from surveynet.errors import ConfigError

BUNDLED = (
    "dla_fcn",
    "dla_fcn_lowsnr",
    "dla_refiner",
    "dla_refiner_wide",
    "dla_vetter",
    "dla_window_cnn",
)


def _args(argv: list[str]):
    from surveynet.cli import build_parser

    return build_parser(argv).parse_args(argv)


def test_sections_and_round_trip():
    cfg = DLAConfig()
    names = [f for f in to_dict(cfg)]
    assert names == ["data", "input", "dataset", "insert", "model", "train", "predict", "evaluate"]
    assert from_dict(DLAConfig, to_dict(cfg)) == cfg


def test_every_flag_is_a_config_key():
    argv = ["dla", "predict", "a.fits", "--out", "c.fits", "--truth", "t.fits"]
    argv += [
        "--model",
        "m1",
        "--model",
        "m2+m3",
        "--refiner",
        "none",
        "--vetter",
        "v",
        "--skip-bal",
    ]
    p = resolve(_args(argv)).predict
    assert (p.models, p.refiner, p.vetter, p.skip_bal) == (("m1", "m2+m3"), "none", "v", True)
    # unset flags leave the keys (and what --config or --set gives them) alone
    p = resolve(_args([*argv[:7], "--set", "predict.skip_bal=true"])).predict
    assert (p.models, p.refiner, p.vetter, p.skip_bal) == ((), None, None, True)
    argv = ["dla", "train", "a.fits", "--truth", "t.fits", "--out", "m"]
    cfg = resolve(_args([*argv, "--seed", "7", "--max-sightlines", "30", "--init", "dla_fcn"]))
    assert (cfg.train.seed, cfg.data.max_sightlines, cfg.train.init) == (7, 30, "dla_fcn")
    # --set is applied after the flags
    assert resolve(_args([*argv, "--seed", "7", "--set", "train.seed=8"])).train.seed == 8


def test_flat_keys_of_earlier_versions_are_named_with_their_section():
    argv = ["dla", "predict", "a.fits", "--out", "c.fits", "--truth", "t.fits"]
    with pytest.raises(ConfigError, match=r"predict\.vet_threshold"):
        resolve(_args([*argv, "--set", "vet_threshold=0.4"]))
    argv = ["dla", "evaluate", "c.fits", "--truth", "t.fits", "--out", "ev"]
    with pytest.raises(ConfigError, match=r"evaluate\.min_confidence"):
        resolve(_args([*argv, "--set", "min_confidence=0.4"]))
    assert resolve(_args([*argv, "--set", "evaluate.min_confidence=0.4"])).evaluate.min_confidence
    # a config file of the former flat shapes migrates
    assert from_dict(DLAConfig, migrate_config({"merge_core": None})).predict.merge_core is None
    assert from_dict(DLAConfig, migrate_config({"rule": "dz"})).evaluate.rule == "dz"
    with pytest.raises(ValueError, match="nonsense"):
        migrate_config({"nonsense": 1})


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_read_in_the_new_root(name):
    """The bundled models store the former training root (data, dataset, input, model, train):
    it reads as a DLAConfig, with the stored values."""
    from surveynet.io.model import load_model

    saved = load_model(name, pipeline="dla")
    cfg = training_config(saved.meta)
    stored = saved.meta["training"].get("config")
    if stored is None:  # the vetter records its fit, not a sightline-training config
        assert cfg == DLAConfig()
        return
    assert set(stored) <= set(to_dict(cfg))
    assert cfg.model.architecture == saved.architecture
    assert cfg.train.seed == saved.meta["training"]["seed"]
    _assert_subset(stored, to_dict(cfg))


def _assert_subset(stored, got, where=""):
    """Every stored key has the stored value in ``got`` (keys added since take defaults)."""
    for k, v in stored.items():
        if isinstance(v, dict):
            _assert_subset(v, got[k], f"{where}{k}.")
        else:
            assert got[k] == v, f"{where}{k}"


def test_the_train_step_has_a_driver_for_every_architecture():
    pytest.importorskip("torch")
    from surveynet.dla.train import TRAINERS

    archs = typing.get_args(typing.get_type_hints(ModelSection)["architecture"])
    assert set(TRAINERS) == set(archs)


def test_config_root_and_steps_are_registered():
    from surveynet.registry import get_config, list_architectures, list_steps

    assert get_config("dla") is DLAConfig
    assert {"dla_window_cnn", "dla_fcn", "dla_refiner"} <= set(list_architectures())
    steps = {s.name for s in list_steps() if s.group == "dla"}
    assert steps == {"train", "predict", "evaluate"}
    assert PredictConfig().norm == 80.0
