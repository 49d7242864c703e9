"""Timer ``health``: the worker's health as a log line and a ``sleep_pipeline`` point.

Every ``SLEEPSTREAM_STATS_INTERVAL_S``: stage events per second, dead letters, consumer
lag, epoch close -> stage event latency, active subjects, and whether the input is
readable. The points go through one sink, created on the first report and closed when
the worker stops; a failing write is logged and never stops the worker (a sink that gave
up is closed and the next report starts a new one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import faust
import numpy as np
from faust.types import TP

from stream.sinks import PipelineStats, Sink

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["HealthReporter", "register"]

log = logging.getLogger(__name__)


class HealthReporter:
    """Measure the worker's health and write it through one long-lived sink.

    Parameters
    ----------
    deps : Deps
        The worker, its processed offsets, the readability gate and the sink settings.
    highwater : callable
        ``TP -> end offset or None`` as the consumer last saw it (no broker request).
    clock : callable, optional
        Monotonic clock (tests pass a fake one).
    """

    def __init__(self, deps: Deps, highwater: Callable[[TP], int | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deps, self.highwater, self.clock = deps, highwater, clock
        self._last_t, self._last_events = clock(), 0
        self._sink: Sink | None = None

    def measure(self) -> PipelineStats:
        """The figures since the previous measurement (latencies are consumed)."""
        now, stats = self.clock(), self.deps.worker.stats
        events = stats.causal_events + stats.offline_events
        rate = (events - self._last_events) / max(now - self._last_t, 1e-9)
        self._last_t, self._last_events = now, events
        lat = np.asarray(stats.latencies_s, dtype=np.float64)
        stats.latencies_s.clear()
        lag = 0
        for tp, offset in self.deps.offsets.items():
            high = self.highwater(tp)
            if high is not None:
                lag += max(0, int(high) - offset - 1)
        return PipelineStats(
            self.deps.worker_name, float(rate), events, stats.dead_letter_total, lag,
            float(np.percentile(lat, 50)) if lat.size else None,
            float(np.percentile(lat, 99)) if lat.size else None,
            self.deps.worker.active_subjects,
        )

    async def report(self) -> PipelineStats:
        """Measure, log, and queue the point on the sink."""
        point = self.measure()
        gate = self.deps.gate
        unreadable = "" if gate.readable() is not False else \
            f"; input unreadable for {gate.unreadable_s():.0f} s"
        log.info("sleepstream: %d subjects, %d stage events (%.1f/s), %d dead letters, "
                 "lag %d%s", point.active_subjects, point.stage_events, point.events_per_s,
                 point.dead_letters, point.consumer_lag, unreadable)
        if self.deps.sink_settings.kind != "none":
            await self._write(point)
        return point

    async def _write(self, point: PipelineStats) -> None:
        if self._sink is None:
            self._sink = self.deps.make_sink(self.deps.sink_settings)
        try:
            # queued only: the sink's sender delivers it within its flush interval, so a
            # slow or absent database never holds up the timer
            await self._sink.write_batch([point])
        except Exception as err:  # health must never stop the worker
            log.warning("sleepstream: health point not written: %s", err)
            await self.close()

    async def close(self) -> None:
        """Flush and close the sink (within the sink's request time limit)."""
        sink, self._sink = self._sink, None
        if sink is None:
            return
        try:
            await asyncio.wait_for(sink.close(), self.deps.sink_settings.timeout_s)
        except Exception as err:  # a sink that gave up raises its failure again
            log.warning("sleepstream: health sink closed with points unwritten: %s", err)


def register(app: faust.App, deps: Deps) -> HealthReporter:
    """Add the ``health`` timer to ``app``; its sink is closed when the worker stops."""
    reporter = HealthReporter(deps, lambda tp: app.consumer.highwater(tp))

    @app.timer(deps.settings.stats_interval_s, name="health")
    async def report_health() -> None:
        """One health report."""
        await reporter.report()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_health_sink(sender: faust.App, **kwargs: object) -> None:
        await reporter.close()

    return reporter
