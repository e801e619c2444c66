"""Every registered architecture: builds, runs forward, round-trips save/load, numpy parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from surveynet.io.model import load_model, save_model
from surveynet.registry import (
    get_architecture,
    get_example,
    get_numpy_engine,
    list_architectures,
    list_numpy_engines,
)

ARCHITECTURES = list_architectures()


def test_the_registry_is_filled() -> None:
    assert {"quasarnet", "dla_fcn", "dla_window_cnn", "dla_refiner"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_builds_saves_loads_and_matches_its_numpy_engine(
    name: str, tmp_path: Path
) -> None:
    ex = get_example(name)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = get_architecture(name)(**ex.config)
    # train mode for one pass so that BatchNorm running statistics are not the trivial (0, 1)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.ascontiguousarray(ex.inputs, dtype=np.float32)))
    out = ex.torch_forward(model, ex.inputs)
    assert np.all(np.isfinite(out))
    tensors = {
        k: v.detach().cpu().numpy()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    save_model(
        tmp_path / name,
        tensors,
        pipeline="registry-test",
        architecture=name,
        config=ex.config,
        preprocessing={},
        label_names=[],
        training={"command": "test"},
    )
    saved = load_model(tmp_path / name)
    assert saved.architecture == name
    assert set(saved.tensors) == set(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(saved.tensors[k], v)
    # the reloaded weights give the same torch outputs (strict load)
    again = get_architecture(name)(**saved.config)
    state = {k: torch.from_numpy(np.array(v)) for k, v in saved.tensors.items()}
    missing = again.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in missing.missing_keys)
    np.testing.assert_array_equal(ex.torch_forward(again, ex.inputs), out)
    if name in list_numpy_engines():
        engine = get_numpy_engine(name)(saved.tensors, saved.config, dtype=np.float64)
        got = np.asarray(ex.numpy_forward(engine, ex.inputs), dtype=np.float64)
        # float64 numpy engine against float32 torch: ex.atol (1e-5 unless stated)
        np.testing.assert_allclose(got, out, rtol=0, atol=ex.atol)
