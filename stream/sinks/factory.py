"""Choose a sink from :class:`~stream.settings.SinkSettings`, and the sink that writes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from stream.settings import SinkSettings
from stream.sinks.base import SinkOptions
from stream.sinks.errors import SinkClosedError, SinkStats
from stream.sinks.influx import InfluxV1Sink, InfluxV2Sink
from stream.sinks.points import SinkItem, to_points

__all__ = ["NullSink", "Sink", "make_sink"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """What the worker needs of a sink (bytewax's shape, async)."""

    @property
    def stats(self) -> SinkStats:
        """Counters since the sink was created."""

    async def write_batch(self, items: Iterable[SinkItem]) -> None:
        """Queue the points of ``items``."""

    async def flush(self) -> None:
        """Return once everything queued so far is answered."""

    async def close(self) -> None:
        """Flush and release resources."""


class NullSink:
    """``kind = "none"``: builds and validates the points, counts them, stores nothing."""

    def __init__(self) -> None:
        self._points = 0
        self._closed = False

    @property
    def stats(self) -> SinkStats:
        """Every point counts as written: nothing was asked to keep them."""
        return SinkStats(self._points, self._points, 0, 0, 0, 0, 0, 0, None)

    async def write_batch(self, items: Iterable[SinkItem]) -> None:
        """Build the points of ``items`` (so bad items fail here too) and forget them."""
        if self._closed:
            msg = "the null sink is closed"
            raise SinkClosedError(msg)
        self._points += sum(len(to_points(item)) for item in items)

    async def flush(self) -> None:
        """Nothing to do."""

    async def close(self) -> None:
        """Nothing to release."""
        self._closed = True


def make_sink(settings: SinkSettings | None = None) -> InfluxV2Sink | InfluxV1Sink | NullSink:
    """The sink that ``settings`` (default: from the environment) describe."""
    settings = settings if settings is not None else SinkSettings()
    options: SinkOptions = {
        "batch_size": settings.batch_size,
        "flush_interval_s": settings.flush_interval_s,
        "max_retries": settings.max_retries,
        "min_backoff_s": settings.min_backoff_s,
        "max_backoff_s": settings.max_backoff_s,
        "queue_limit": settings.queue_limit,
        "timeout_s": settings.timeout_s,
    }
    if settings.kind == "v2":
        return InfluxV2Sink(settings.url, settings.token.get_secret_value(), settings.org,
                            settings.bucket, **options)
    if settings.kind == "v1":
        password = settings.password.get_secret_value() if settings.password else None
        return InfluxV1Sink(settings.url, settings.database, settings.username, password,
                            settings.retention_policy, **options)
    log.info("no database configured (SLEEPSTREAM_INFLUX_KIND=none): points are not stored")
    return NullSink()
