"""The tutorial (docs/tutorial/quasarnet_tutorial.py) runs end to end with --fast settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial" / "quasarnet_tutorial.py"


def test_tutorial_fast(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("quasarnet_tutorial", TUTORIAL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--fast", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    # gradient descent converges to the normal-equation solution (1e-3 after 200 steps, lr 0.1)
    assert abs(s["a_gd"] - s["a_exact"]) < 1e-3 and abs(s["b_gd"] - s["b_exact"]) < 1e-3
    assert abs(s["a_exact"] - 2.5) < 0.2
    # the small network beats the best straight line on sin(3x)
    assert s["mlp_mse"] < 0.5 * s["line_mse"]
    for name in (
        "1_linear_regression.png",
        "3_small_network.png",
        "evaluate/purity_completeness.png",
        "evaluate/metrics.json",
        "catalog.fits",
    ):
        assert (tmp_path / name).is_file(), name
    assert 0.0 <= s["purity_at_crossover"] <= 1.0
