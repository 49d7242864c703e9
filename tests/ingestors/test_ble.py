"""The BLE ingestor end to end: a virtual strap (bumble) -> bleak -> ingestor -> real broker.

The strap is bumble's Heart Rate Service on in-process virtual controllers; bleak's
unmodified ``BleakClient`` reaches it through the test backend in ``_bumble_backend.py``.
Every test reads the topics back from the embedded broker (noida-db).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingestors.ble import BleakLink, BleError, BleReport, ingest_ble
from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker
from tests.ingestors._bumble_backend import BumbleBleakClient, Measurement, VirtualStrap
from tests.ingestors._topics import consume

pytestmark = pytest.mark.timeout(120)

_prefixes = itertools.count()


def settings_for(broker: EmbeddedBroker) -> StreamSettings:
    """Settings with topics of their own, so the tests do not read each other's messages."""
    return StreamSettings(broker=broker.url, topic_prefix=f"ble{next(_prefixes)}.")


def link_to(strap: VirtualStrap) -> BleakLink:
    return BleakLink(strap.address, backend=BumbleBleakClient, options={"strap": strap},
                     timeout_s=5.0)


class Run:
    """One ingestor session against a strap, driven by the test."""

    def __init__(self, strap: VirtualStrap, settings: StreamSettings, **options) -> None:
        self.strap, self.settings = strap, settings
        self.stop = asyncio.Event()
        options = {"span_s": 0.3, "min_backoff_s": 0.05, "progress": False} | options
        self.task = asyncio.create_task(ingest_ble(
            link_to(strap), "subject-1", "ble-night-1", settings, stop=self.stop, **options))
        self.sent_at: list[datetime] = []

    async def subscribed(self) -> None:
        await asyncio.wait_for(self.strap.subscribed.wait(), 10)

    async def notify(self, value: Measurement | bytes, pause_s: float = 0.15) -> None:
        self.sent_at.append(datetime.now(UTC))
        await self.strap.notify(value)
        await asyncio.sleep(pause_s)

    async def finish(self) -> BleReport:
        await asyncio.sleep(0.1)
        self.stop.set()
        return await asyncio.wait_for(self.task, 30)


def times_utc(chunks: list[SampleChunk], start: datetime) -> list[datetime]:
    return [start + timedelta(seconds=float(t)) for c in chunks for t in c.times_s(start)]


def values(chunks: list[SampleChunk]) -> list[float]:
    return [v for c in chunks for v in c.values]


def check_session(events: list[SessionEvent], chunks: list[SampleChunk], family: str,
                  modality: str, report: BleReport) -> datetime:
    """Start first, end last with the final seq, chunks numbered 0.. in order."""
    assert [e.event for e in events] == ["start", "end"]
    start, end = events
    assert (start.subject_id, start.session_id) == ("subject-1", "ble-night-1")
    assert (start.family, start.modalities, start.live) == (family, (modality,), True)
    assert start.t_utc.microsecond == 0 and not start.start_is_nominal
    assert end.t_utc > start.t_utc and (end.family, end.modalities) == (family, (modality,))
    source = f"ble-night-1-{modality}"
    assert [(c.source_id, c.seq) for c in chunks] == [(source, i) for i in range(len(chunks))]
    assert end.final_seq == {source: len(chunks) - 1} == report.final_seq
    assert all(c.modality == modality and c.t0_utc == start.t_utc for c in chunks)
    assert len(chunks) > 1  # batched over several spans, not one chunk at the end
    assert report.family == family and report.status.chunks == len(chunks)
    return start.t_utc


RR_NOTIFICATIONS = [(61, [120, 128]), (62, [131]), (60, [125, 126]), (59, [130]),
                    (63, [127, 129]), (64, [124])]


def test_an_rr_strap_streams_a_cardio_session_with_beat_times(broker: EmbeddedBroker) -> None:
    settings = settings_for(broker)

    async def scenario():
        strap = await VirtualStrap().start()
        run = Run(strap, settings)
        await run.subscribed()
        for hr, ticks in RR_NOTIFICATIONS:
            await run.notify(Measurement(hr, sensor_contact_detected=True,
                                         rr_intervals=[t / 1024 for t in ticks]))
        # contact lost: dropped, nothing invented for it
        await run.notify(Measurement(0, sensor_contact_detected=False, rr_intervals=[]))
        report = await run.finish()
        return run, report, await consume(settings)

    run, report, (events, chunks) = asyncio.run(scenario())
    start = check_session(events, chunks, "cardio", "rr", report)
    assert all(c.unit == "s" and c.beat_types is None for c in chunks)
    # exactly the intervals sent, in s
    assert values(chunks) == [t / 1024 for _, ticks in RR_NOTIFICATIONS for t in ticks]
    # each notification's last beat at its receive time, the earlier ones RR before
    beats = times_utc(chunks, start)
    i = 0
    for (_, ticks), sent in zip(RR_NOTIFICATIONS, run.sent_at, strict=False):
        mine = beats[i:i + len(ticks)]
        i += len(ticks)
        assert timedelta(0) <= mine[-1] - sent < timedelta(seconds=0.1)
        for a, b, t in zip(mine, mine[1:], ticks[1:], strict=False):
            assert (b - a).total_seconds() == pytest.approx(t / 1024, abs=2e-6)
    assert beats == sorted(beats)
    s = report.status
    assert (s.notifications, s.malformed, s.no_contact, s.samples) == (7, 0, 1, 9)
    assert s.connections == 1 and not s.connected


def test_a_watch_without_rr_streams_a_wearable_heart_rate_session(
        broker: EmbeddedBroker) -> None:
    settings = settings_for(broker)
    bpm = [58, 57, 300, 56, 55, 0, 54]  # sent as measured (uint16 for 300)

    async def scenario():
        strap = await VirtualStrap().start()
        run = Run(strap, settings)
        await run.subscribed()
        for hr in bpm:
            await run.notify(Measurement(hr))
        report = await run.finish()
        return run, report, await consume(settings)

    run, report, (events, chunks) = asyncio.run(scenario())
    start = check_session(events, chunks, "wearable", "heart_rate", report)
    assert all(c.unit == "bpm" for c in chunks)
    assert values(chunks) == bpm
    for t, sent in zip(times_utc(chunks, start), run.sent_at, strict=True):
        assert timedelta(0) <= t - sent < timedelta(seconds=0.1)


def test_a_dropped_link_is_reconnected_and_leaves_a_gap(broker: EmbeddedBroker) -> None:
    settings = settings_for(broker)

    async def scenario():
        strap = await VirtualStrap().start()
        run = Run(strap, settings)
        await run.subscribed()
        for hr, ticks in RR_NOTIFICATIONS[:3]:
            await run.notify(Measurement(hr, rr_intervals=[t / 1024 for t in ticks]))
        await strap.drop()
        dropped = datetime.now(UTC)
        await run.notify(Measurement(70, rr_intervals=[1000 / 1024]), pause_s=0)  # nobody hears
        await run.subscribed()  # the ingestor is back
        back = datetime.now(UTC)
        for hr, ticks in RR_NOTIFICATIONS[3:]:
            await run.notify(Measurement(hr, rr_intervals=[t / 1024 for t in ticks]))
        report = await run.finish()
        return dropped, back, report, await consume(settings)

    dropped, back, report, (events, chunks) = asyncio.run(scenario())
    start = check_session(events, chunks, "cardio", "rr", report)
    # the intervals heard, no more (the one sent while the link was down is missing) and
    # none twice; seq goes on across the reconnection
    assert values(chunks) == [t / 1024 for _, ticks in RR_NOTIFICATIONS for t in ticks]
    beats = times_utc(chunks, start)
    assert beats == sorted(beats)
    # a gap: no beat while the link was down (the first beat after it may lie up to its
    # notification's earlier intervals before the reconnection)
    before, after = beats[:5], beats[5:]
    assert before[-1] <= dropped and after[0] >= back - timedelta(seconds=0.3)
    s = report.status
    assert s.connections == 2 and s.notifications == 6


def test_malformed_notifications_are_logged_counted_and_skipped(
        broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(broker)

    async def scenario():
        strap = await VirtualStrap().start()
        run = Run(strap, settings)
        await run.subscribed()
        await run.notify(Measurement(50))
        await run.notify(b"\x01\x3c")  # uint16 flag, one byte of heart rate
        await run.notify(b"\x10\x3c\x00\x04\x01")  # last RR interval cut short
        await run.notify(Measurement(51))
        return await run.finish(), await consume(settings)

    with caplog.at_level(logging.WARNING, logger="ingestors.ble.ingestor"):
        report, (events, chunks) = asyncio.run(scenario())
    assert values(chunks) == [50, 51]
    assert report.status.malformed == 2 and report.status.notifications == 4
    warnings = [r.getMessage() for r in caplog.records]
    assert any("malformed heart rate notification 013c dropped" in w and
               "need at least 3 (flags, uint16 bpm)" in w for w in warnings)
    assert any("103c000401 dropped" in w and "truncated" in w for w in warnings)
    assert [e.event for e in events] == ["start", "end"]


def test_a_device_without_heart_rate_service_is_refused(broker: EmbeddedBroker) -> None:
    settings = settings_for(broker)

    async def scenario():
        strap = await VirtualStrap(heart_rate_service=False).start()
        return await ingest_ble(link_to(strap), "subject-1", "ble-night-1", settings,
                                stop=asyncio.Event(), progress=False)

    with pytest.raises(BleError, match=r"has no Heart Rate Measurement characteristic "
                                       r"\(0x2A37 of service 0x180D\); its services: "):
        asyncio.run(scenario())


def test_bad_ids_and_zones_are_refused_before_connecting() -> None:
    async def scenario(subject: str, zone: str):
        link = BleakLink("F1:F1:F1:F1:F1:F1")  # never reached
        return await ingest_ble(link, subject, "s1", stop=asyncio.Event(), time_zone=zone)

    with pytest.raises(ValueError, match="subject_id"):
        asyncio.run(scenario("a subject", "UTC"))
    with pytest.raises(ValueError, match="unknown IANA time zone 'Mars/Base'"):
        asyncio.run(scenario("me", "Mars/Base"))


def test_the_ble_command_takes_the_documented_options_and_checks_them_first() -> None:
    from typer.testing import CliRunner

    from stream.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["ble", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for option in ("--address", "--subject", "--session", "--timezone", "--broker",
                   "--spool-dir", "--spool-max-mb"):
        assert option in shown.output
    bad = runner.invoke(app, ["ble", "--address", "AA:BB:CC:DD:EE:FF", "--subject", "me",
                              "--timezone", "Mars/Base", "--broker", "kafka://127.0.0.1:9"])
    assert bad.exit_code == 2
    assert "unknown IANA time zone 'Mars/Base'" in bad.output


class FlakyLink:
    """A link whose first connection attempts fail, as with a strap still out of range."""

    def __init__(self, inner: BleakLink, failures: int) -> None:
        self.inner, self.failures, self.address = inner, failures, inner.address

    def subscribe(self, on_value, on_lost):
        if self.failures > 0:
            self.failures -= 1
            raise TimeoutError("no answer from the strap")
        return self.inner.subscribe(on_value, on_lost)


def test_failed_connections_are_retried_with_backoff(broker: EmbeddedBroker) -> None:
    settings = settings_for(broker)

    async def scenario():
        strap = await VirtualStrap().start()
        stop = asyncio.Event()
        t0 = time.monotonic()
        task = asyncio.create_task(ingest_ble(
            FlakyLink(link_to(strap), 3), "subject-1", "ble-night-1", settings, stop=stop,
            span_s=0.3, min_backoff_s=0.1, progress=False))
        await asyncio.wait_for(strap.subscribed.wait(), 10)
        waited = time.monotonic() - t0
        await strap.notify(Measurement(66))
        await asyncio.sleep(0.2)
        stop.set()
        return waited, await task, await consume(settings)

    waited, report, (events, chunks) = asyncio.run(scenario())
    assert waited >= 0.1 + 0.2 + 0.4  # doubling back-off between the three failures
    assert report.status.reconnect_attempts == 3 and report.status.connections == 1
    assert report.status.last_error == "TimeoutError: no answer from the strap"
    assert values(chunks) == [66] and [e.event for e in events] == ["start", "end"]
