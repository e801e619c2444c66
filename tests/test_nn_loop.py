"""The shared torch training loop: seeded, resumable, ends on the best-validation weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from surveynet.nn.loop import LoopConfig, fit  # noqa: E402


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32))[:, None] + 0.1
    return x, y.astype(np.float32)


def _step(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def _model_opt():
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    return model, torch.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)


def test_resume_equals_uninterrupted(tmp_path):
    x, y = _data()
    m1, o1 = _model_opt()
    h1 = fit(m1, o1, [x, y], _step, LoopConfig(epochs=4, batch_size=32, seed=3, quiet=True))
    m2, o2 = _model_opt()
    fit(
        m2,
        o2,
        [x, y],
        _step,
        LoopConfig(epochs=2, batch_size=32, seed=3, quiet=True),
        workdir=tmp_path,
    )
    m3, o3 = _model_opt()  # fresh objects: everything comes from the checkpoint
    h3 = fit(
        m3,
        o3,
        [x, y],
        _step,
        LoopConfig(epochs=4, batch_size=32, seed=3, quiet=True),
        workdir=tmp_path,
        resume=True,
    )
    assert [r["epoch"] for r in h3.rows] == [1, 2, 3, 4]
    # same batches, same optimizer state: identical to float32 round-off
    np.testing.assert_allclose(
        [r["train_loss"] for r in h3.rows], [r["train_loss"] for r in h1.rows], rtol=1e-6
    )
    torch.testing.assert_close(m3.weight, m1.weight, rtol=1e-6, atol=1e-7)


def test_resumed_run_ends_on_best_weights(tmp_path):
    x, y = _data()
    cfg = LoopConfig(epochs=20, batch_size=32, seed=1, quiet=True)
    m, o = _model_opt()
    fit(m, o, [x, y], _step, cfg, val_data=[x, y], validation_step=_step, workdir=tmp_path)
    best = load_file(str(tmp_path / "best.safetensors"))
    # the resumed epochs train on wrong labels, so they are worse on the validation set
    m2, o2 = _model_opt()
    hist = fit(
        m2,
        o2,
        [x, y + 50.0],
        _step,
        LoopConfig(epochs=22, batch_size=32, seed=1, quiet=True),
        val_data=[x, y],
        validation_step=_step,
        workdir=tmp_path,
        resume=True,
    )
    assert min(r["val_loss"] for r in hist.rows[20:]) > min(r["val_loss"] for r in hist.rows[:20])
    torch.testing.assert_close(m2.state_dict()["weight"], best["weight"])
