"""Fixtures shared by the stream tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

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

