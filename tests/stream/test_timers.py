"""The health timer and the readability check, each on the real ``deps`` of an app with
fakes for the broker and the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from stream.deps import Deps, build_deps
from stream.settings import SinkSettings, StreamSettings
from stream.sinks import PipelineStats, SinkStats, SinkUnavailableError
from stream.timers.health import HealthReporter
from stream.timers.readability import ReadabilityMonitor

SESSIONS, SAMPLES = TP("t.sessions", 0), TP("t.samples", 0)


class FakeSink:
    def __init__(self, fail_on: int | None = None) -> None:
        self.points: list[Any] = []
        self.closed = 0
        self.fail_on = fail_on

    @property
    def stats(self) -> SinkStats:
        return SinkStats(0, 0, 0, 0, 0, 0, 0, 0, None)

    async def write_batch(self, items: Any) -> None:
        if self.fail_on is not None and len(self.points) + 1 >= self.fail_on:
            msg = "http://db: gave up after 11 attempts; last error: connection refused"
            raise SinkUnavailableError(msg)
        self.points += list(items)

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1
        if self.fail_on is not None:
            raise SinkUnavailableError("still down")


def _factory(made: list[FakeSink], first_fails_on: int | None = None) -> Any:
    """A sink factory that keeps what it made; the first sink may fail on a write."""
    def make(settings: SinkSettings) -> FakeSink:
        made.append(FakeSink(first_fails_on if not made else None))
        return made[-1]
    return make


def _deps(kind: str = "v1") -> tuple[faust.App, Deps]:
    settings = StreamSettings(broker="kafka://127.0.0.1:9", topic_prefix="t.", partitions=2,
                              grace_s=30.0)
    app = faust.App("timers-test", broker=settings.broker, store="memory://")
    return app, build_deps(app, settings, SinkSettings(kind=kind))  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------------------ health
def test_health_reports_through_one_sink_closed_at_shutdown() -> None:
    made: list[FakeSink] = []

    async def scenario() -> Deps:
        _, deps = _deps()
        deps.make_sink = _factory(made)
        clock = Clock()
        ends = {SAMPLES: 50}
        reporter = HealthReporter(deps, ends.get, clock)
        deps.offsets[SAMPLES] = 44  # processed up to 44 of 0..49: 5 behind
        stats = deps.worker.stats
        for _ in range(3):
            stats.causal_events += 20
            stats.latencies_s.extend([0.1, 0.2, 0.3])
            clock.t += 10
            point = await reporter.report()
            assert point.events_per_s == pytest.approx(2.0) and point.consumer_lag == 5
            assert point.epoch_close_latency_p50_s == pytest.approx(0.2)
        assert not stats.latencies_s
        await reporter.close()
        await reporter.close()  # a second shutdown signal changes nothing
        return deps

    deps = asyncio.run(scenario())
    (sink,) = made  # one sink for all reports, not one per report
    assert [p.stage_events for p in sink.points] == [20, 40, 60]
    assert all(isinstance(p, PipelineStats) and p.worker == deps.worker_name
               for p in sink.points)
    assert sink.closed == 1


def test_a_failing_health_write_is_logged_and_the_worker_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    made: list[FakeSink] = []

    async def scenario() -> None:
        _, deps = _deps()
        deps.make_sink = _factory(made, first_fails_on=2)
        reporter = HealthReporter(deps, lambda tp: None)
        for _ in range(4):
            await reporter.report()  # never raises
        await reporter.close()

    with caplog.at_level(logging.WARNING, "stream.timers.health"):
        asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records]
    assert any("health point not written" in w and "gave up" in w for w in warnings)
    assert any("closed with points unwritten" in w for w in warnings)
    # the sink that gave up was closed; the next report started a new one
    assert [len(s.points) for s in made] == [1, 2] and [s.closed for s in made] == [1, 1]


def test_health_without_a_database_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        _, deps = _deps(kind="none")
        deps.make_sink = lambda s: pytest.fail("no sink without a database")  # type: ignore[assignment]
        deps.gate.failed([0, 1], now=0.0)
        await HealthReporter(deps, lambda tp: None).report()

    with caplog.at_level(logging.INFO, "stream.timers.health"):
        asyncio.run(scenario())
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("sleepstream: 0 subjects, 0 stage events") and \
        "input unreadable for" in line


# ------------------------------------------------------------------------------ readability
class FakeBroker:
    """End offsets and committed offsets, or a broker that is down."""

    def __init__(self) -> None:
        self.ends = {SESSIONS: 2, SAMPLES: 10}
        self.committed = {SESSIONS: 2, SAMPLES: 7}
        self.down = False
        self.asked: list[list[TP]] = []

    async def end_offsets(self, tps: Collection[TP], timeout_s: float) -> dict[TP, int]:
        self.asked.append(list(tps))
        if self.down:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")
        return {tp: self.ends[tp] for tp in tps}

    async def delivery_start(self, tp: TP) -> int:
        return self.committed[tp]


def test_readability_check_feeds_the_gate_and_logs_each_outage_once(
        caplog: pytest.LogCaptureFixture) -> None:
    broker = FakeBroker()
    assigned = {SESSIONS, SAMPLES, TP("timers-test-subject-state-changelog", 0)}

    async def scenario() -> Deps:
        _, deps = _deps()
        deps.gaps = broker  # type: ignore[assignment]
        monitor = ReadabilityMonitor(deps, lambda: assigned)
        gate = deps.gate
        await monitor.check()
        assert broker.asked == [[SAMPLES, SESSIONS]]  # the input partitions only
        # samples processed up to 7 (committed), sessions up to 2: 3 chunks to go
        assert gate.readable() and gate.complete_until(0, datetime.now(UTC)) is None
        deps.offsets[SAMPLES] = 9  # processed; the sessions partition counts from its commit
        await monitor.check()
        checked = datetime.now(UTC)
        assert gate.partitions[0].complete is not None
        assert gate.partitions[0].complete <= checked
        broker.down = True
        for _ in range(3):
            await monitor.check()
        assert gate.readable() is False and gate.outages == 1
        assert gate.complete_until(0, datetime.now(UTC)) is None
        broker.down = False
        await monitor.check()
        assert gate.readable() and gate.complete_until(0, datetime.now(UTC)) is None  # grace
        monitor.forget({SAMPLES, SESSIONS})
        assert not monitor.starts and gate.partitions[0].complete is None
        return deps

    with caplog.at_level(logging.WARNING, "stream.timers.readability"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("sleepstream: cannot read input partitions [0] "
                               "(KafkaConnectionError")
    assert "no live epoch closes by the wall clock" in lines[0]
    assert lines[1].startswith("sleepstream: input partitions [0] readable again after")


def test_readability_check_with_nothing_assigned_asks_nothing() -> None:
    broker = FakeBroker()

    async def scenario() -> None:
        _, deps = _deps()
        deps.gaps = broker  # type: ignore[assignment]
        await ReadabilityMonitor(deps, lambda: set()).check()
        assert deps.gate.readable() is None

    asyncio.run(scenario())
    assert broker.asked == []
