"""The worker's tables: each subject's changelog partition is its input partition.

Faust takes the changelog partition of a table write from "the current event"; the stage
agent writes many subjects' checkpoints after a batch (and the tick timer writes outside
any event), so the writer names the partition (:func:`in_partition`) and
:class:`SubjectTable` uses it. Every subject's state thereby stays on the worker that owns
its input partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import faust

__all__ = ["SubjectTable", "current_partition", "in_partition"]

_partition: ContextVar[int | None] = ContextVar("sleepstream_partition", default=None)


@contextmanager
def in_partition(partition: int) -> Iterator[None]:
    """Table writes inside the block go to changelog partition ``partition``."""
    token = _partition.set(partition)
    try:
        yield
    finally:
        _partition.reset(token)


def current_partition() -> int | None:
    """The partition set by the innermost :func:`in_partition`, if any."""
    return _partition.get()


class SubjectTable(faust.Table):
    """A table whose changelog partition is the one set by :func:`in_partition`."""

    def partition_for_key(self, key: Any) -> int | None:
        """The partition set by the writer, else Faust's rule."""
        partition = current_partition()
        if partition is not None:
            return partition
        return super().partition_for_key(key)
