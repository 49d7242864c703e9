"""Fixtures of the ingestor tests: the embedded broker of the stream tests, a spool folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stream.conftest import broker  # noqa: F401  (pytest finds the fixture by name)


@pytest.fixture(autouse=True)
def spool_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spool folder of the test's own (``SLEEPSTREAM_SPOOL_DIR``), never the user's."""
    folder = tmp_path_factory.mktemp("spool")
    monkeypatch.setenv("SLEEPSTREAM_SPOOL_DIR", str(folder))
    return folder


@pytest.fixture()
def sleep_edf_excerpt(test_data: Path) -> Path:
    """A real Sleep-EDF hypnogram (EDF+), SC4001EC, from tests/data."""
    return test_data / "sleep-edf" / "SC4001EC-Hypnogram.edf"


@pytest.fixture
def raw_dir(test_data: Path) -> Path:
    """The Sleep-Accel raw-layout excerpt of tests/data."""
    return test_data / "sleep-accel" / "raw"
