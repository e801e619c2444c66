"""Shared fixtures: ``shared_file`` resolves ../shared/data (skips only when the file is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("SURVEYNET_SHARED_DATA", ROOT.parent / "shared" / "data")
).resolve()


def shared_path(relpath: str) -> Path:
    """Path of a shared-data file; skip the test when it is absent."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"optional shared data not available: {relpath}")
    return path


@pytest.fixture
def shared_file():
    """Fixture form of :func:`shared_path`."""
    return shared_path
