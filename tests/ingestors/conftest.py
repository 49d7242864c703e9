"""Fixtures of the ingestor tests: the embedded broker of the stream tests."""

from tests.stream.conftest import broker  # noqa: F401  (pytest finds the fixture by name)
