"""Shared fixtures: where the real data lives, and the small excerpts under tests/data."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

# Real database servers (VictoriaMetrics, InfluxDB 1.x) as fixtures: see tests/servers.py.
pytest_plugins = ["tests.servers"]

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


def _shared_data_dir() -> Path:
    env = os.environ.get("SLEEPSTREAM_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets beside the checkout (``../shared/data``); skip when absent."""
    path = _shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"real data not found at {path} (set SLEEPSTREAM_SHARED_DATA to its folder)")
    return path


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Small real excerpts shipped with the tests (see tests/data/ATTRIBUTION.md)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def psg_weights() -> Path:
    """The shipped weights folder, which holds the trained psg-causal and psg-offline."""
    from models.runtime import default_weights_dir

    folder = default_weights_dir()
    for name in ("psg-causal", "psg-offline"):
        assert (folder / f"{name}.onnx").is_file(), f"{name} is not shipped in {folder}"
    return folder
