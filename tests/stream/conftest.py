"""Fixtures shared by the stream tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.stack import EmbeddedBroker, StackError


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """An embedded Kafka-compatible broker (noida-db) for the module's tests."""
    try:
        b = EmbeddedBroker(tmp_path_factory.mktemp("broker")).start()
    except StackError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no embedded broker: {err}")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def psg_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder: the shipped models, and psg-causal and psg-offline exported by the
    real export code.

    The psg models are untrained (see tests/stream/_psg.py): the shipped psg models come
    from training.
    """
    from models.runtime import default_weights_dir
    from tests.stream._psg import export_psg_models

    folder = tmp_path_factory.mktemp("psg-weights")
    for path in default_weights_dir().glob("*-*.*"):
        if path.suffix in (".onnx", ".json"):
            shutil.copy(path, folder / path.name)
    return export_psg_models(folder)
