"""Sinks without a database: the point layout, settings, and delivery rules.

Faults a real server will not produce on demand (503, 429, 401, a slow answer) come from a
small in-process aiohttp server that records what it receives; the real databases are in
test_sinks_servers.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from influxdb_client import Point
from pydantic import ValidationError

from models.stages import CLASS_NAMES
from stream.schemas import EpochInputStats, ModelKind, NightSummary, StageEvent
from stream.settings import SinkSettings
from stream.sinks import (
    InfluxV1Sink,
    InfluxV2Sink,
    NullSink,
    PipelineStats,
    SinkClosedError,
    SinkConfigurationError,
    SinkOptions,
    SinkUnavailableError,
    inputs_point,
    make_sink,
    to_points,
)
from stream.sinks.points import STAGE_CODES
from tests.servers import free_port

T0 = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
T0_NS = 1_709_330_400 * 10**9
FAST: SinkOptions = {"min_backoff_s": 0.01, "max_backoff_s": 0.05, "flush_interval_s": 0.05}


def stage_event(i: int = 0, kind: ModelKind = "causal", stage: str = "REM") -> StageEvent:
    if stage == "REM":  # a tiny probability: serialised as 1e-07, which the parser must take
        probs = {"W": 0.1, "light": 0.2, "deep": 1e-7, "REM": 0.7 - 1e-7}
    else:
        probs = {k: (0.7 if k == stage else 0.1) for k in ("W", "light", "deep", "REM")}
    return StageEvent(
        subject_id="s1", session_id="n1", epoch_index=i, epoch_start_utc=T0 + timedelta(
            seconds=30 * i), model_name="wearable-causal", model_version="1", kind=kind,
        stage=stage, probabilities=probs, confidence=probs[stage], closed_at_utc=T0,
        emitted_at_utc=T0, latency_s=0.02,
    )


def to_point(item: Any) -> Point:
    (point,) = to_points(item)
    return point


def fields_of(line: str) -> dict[str, str]:
    _, fields, _ = line.split(" ")
    return dict(kv.split("=", 1) for kv in fields.split(","))


# -- the layout ------------------------------------------------------------------------------


def test_stage_point_layout() -> None:
    line = to_point(stage_event(2)).to_line_protocol()
    head, _, ts = line.split(" ")
    assert head == "sleep_stage,kind=causal,model=wearable-causal,session=n1,subject=s1"
    assert int(ts) == T0_NS + 60 * 10**9
    assert fields_of(line) == {
        "stage": '"REM"', "stage_code": "3i", "p_W": "0.1", "p_light": "0.2", "p_deep": "1e-07",
        "p_REM": repr(0.7 - 1e-7), "confidence": repr(0.7 - 1e-7), "epoch_index": "2i",
        "latency_s": "0.02", "valid": "true",
    }
    assert fields_of(to_point(stage_event(stage="W")).to_line_protocol())["stage_code"] == "0i"


def test_stage_code_is_one_code_per_class_whatever_the_stage_set() -> None:
    ev = stage_event().model_copy(update={
        "stage_set": 3, "stage": "NREM", "probabilities": {"W": 0.1, "NREM": 0.8, "REM": 0.1}})
    f = fields_of(to_point(ev).to_line_protocol())
    assert f["stage_code"] == "7i" and f["p_NREM"] == "0.8" and "p_deep" not in f
    probs = {"W": 0.05, "N1": 0.1, "N2": 0.6, "N3": 0.15, "REM": 0.1}
    for stage, code in (("N1", 4), ("N2", 5), ("N3", 6), ("REM", 3), ("W", 0)):
        psg = stage_event().model_copy(update={
            "stage_set": 5, "stage": stage, "probabilities": probs, "model_name": "psg-causal"})
        f = fields_of(to_point(psg).to_line_protocol())
        assert f["stage_code"] == f"{code}i" and f["p_N2"] == "0.6" and "p_light" not in f
    # every class name of every stage set has its own code
    names = {n for s in CLASS_NAMES.values() for n in s}
    assert set(STAGE_CODES) == names and len(set(STAGE_CODES.values())) == len(names)


def test_summary_and_pipeline_points() -> None:
    summary = NightSummary(
        subject_id="s1", session_id="n1", model_name="m", kind="offline", t_start_utc=T0,
        t_end_utc=T0 + timedelta(hours=8), n_epochs=960, n_valid_epochs=950, tib_min=480,
        tst_min=400.5, se_pct=83.4, sol_min=12.0, waso_min=30.0, rem_latency_min=None,
        minutes={"W": 79.5, "light": 250.0, "deep": 60.0, "REM": 90.5},
        percent_of_tst={"light": 62.4, "deep": 15.0, "REM": 22.6},
        emitted_at_utc=T0,
    )
    line = to_point(summary).to_line_protocol()
    assert line.startswith("sleep_summary,kind=offline,model=m,session=n1,subject=s1 ")
    assert line.endswith(f" {T0_NS}")
    f = fields_of(line)
    assert f["n_epochs"] == "960i" and f["tib_min"] == "480" and f["minutes_REM"] == "90.5"
    assert f["pct_light"] == "62.4" and "rem_latency_min" not in f  # undefined: left out

    stats = PipelineStats("w1", 3.5, 10, 1, 0, None, 0.25, 2, t_utc=T0)
    line = to_point(stats).to_line_protocol()
    assert line.startswith("sleep_pipeline,worker=w1 ") and line.endswith(str(T0_NS))
    assert "epoch_close_latency_p50_s" not in line


def test_a_causal_event_gives_its_stage_and_its_inputs_point() -> None:
    inputs = EpochInputStats(hr_mean_bpm=61.5, hr_samples=6, activity_samples=0)
    event = stage_event(3).model_copy(update={"inputs": inputs})
    stage, inp = to_points(event)
    assert stage.to_line_protocol() == to_point(stage_event(3)).to_line_protocol()
    line = inp.to_line_protocol()
    assert line.startswith("sleep_inputs,session=n1,subject=s1 ")
    assert line.endswith(f" {T0_NS + 90 * 10**9}")  # the epoch start
    assert fields_of(line) == {"hr_mean_bpm": "61.5", "hr_samples": "6i",
                               "activity_samples": "0i", "beats": "0i"}
    with pytest.raises(ValueError, match="carries no inputs"):
        inputs_point(stage_event(3))


def test_the_inputs_point_of_an_eeg_epoch_holds_its_channels_and_amplitude() -> None:
    inputs = EpochInputStats(eeg_channels=2, eeg_rms_uv=31.25)
    line = inputs_point(stage_event(3).model_copy(update={"inputs": inputs})).to_line_protocol()
    assert fields_of(line) == {"eeg_channels": "2i", "eeg_rms_uv": "31.25"}
    none = EpochInputStats(eeg_channels=0)  # every channel masked: no amplitude
    line = inputs_point(stage_event(3).model_copy(update={"inputs": none})).to_line_protocol()
    assert fields_of(line) == {"eeg_channels": "0i"}


def test_pct_of_a_night_without_sleep_is_left_out() -> None:
    summary = NightSummary(
        subject_id="s1", session_id="n1", model_name="m", kind="causal", t_start_utc=T0,
        t_end_utc=T0 + timedelta(minutes=5), n_epochs=10, n_valid_epochs=10, tib_min=5,
        tst_min=0, se_pct=0, sol_min=None, waso_min=0, rem_latency_min=None,
        minutes={"W": 5.0, "light": 0.0, "deep": 0.0, "REM": 0.0},
        percent_of_tst={"light": None, "deep": None, "REM": None}, emitted_at_utc=T0,
    )
    f = fields_of(to_point(summary).to_line_protocol())
    assert f["minutes_light"] == "0" and not any(k.startswith("pct_") for k in f)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: PipelineStats("w", 1.0, 0, 0, 0, None, None, 0, datetime(2024, 1, 1)),  # noqa: DTZ001
         ValueError, "timezone-aware"),
        (lambda: PipelineStats("w", 1.0, -1, 0, 0, None, None, 0), ValueError, "stage_events"),
        (lambda: PipelineStats("w", float("nan"), 0, 0, 0, None, None, 0), ValueError,
         "finite"),
        (lambda: EpochInputStats(hr_samples=-1), ValidationError, "hr_samples"),
        (lambda: EpochInputStats(rr_mean_s=float("nan")), ValidationError, "finite"),
        (lambda: to_points("sleep_stage x=1"), TypeError, "got str"),  # type: ignore[arg-type]
    ],
)
def test_bad_items_are_refused(make: Callable[[], object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# -- settings and the factory ----------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEEPSTREAM_INFLUX_KIND", "v2")
    monkeypatch.setenv("SLEEPSTREAM_INFLUX_TOKEN", "s3cret")
    monkeypatch.setenv("SLEEPSTREAM_INFLUX_BATCH_SIZE", "100")
    s = SinkSettings()
    assert (s.kind, s.batch_size, s.token.get_secret_value()) == ("v2", 100, "s3cret")
    assert "s3cret" not in repr(s)
    sink = make_sink(s)
    assert isinstance(sink, InfluxV2Sink) and sink.batch_size == 100
    assert "s3cret" not in repr(sink)
    assert isinstance(make_sink(SinkSettings(kind="v1", username="u")), InfluxV1Sink)
    assert isinstance(make_sink(SinkSettings(kind="none")), NullSink)
    with pytest.raises(ValidationError, match="queue_limit"):
        SinkSettings(batch_size=10, queue_limit=5)
    with pytest.raises(ValidationError, match="http"):
        SinkSettings(url="127.0.0.1:8086")


@pytest.mark.asyncio
async def test_a_point_without_fields_is_refused_before_queueing() -> None:
    sink = InfluxV1Sink("http://127.0.0.1:9", "db")
    with pytest.raises(ValueError, match="'sleep_stage' has no fields"):
        await sink.write_batch([stage_event(0), Point("sleep_stage").tag("subject", "s1")])
    assert sink.pending == 0
    await sink.close()


@pytest.mark.asyncio
async def test_null_sink_counts_and_closes() -> None:
    sink = NullSink()
    await sink.write_batch([stage_event(0), stage_event(1)])
    await sink.close()
    assert sink.stats.points_written == 2
    with pytest.raises(SinkClosedError):
        await sink.write_batch([stage_event(2)])


# -- delivery, against a scripted HTTP server -----------------------------------------------


@dataclass
class FakeInflux:
    """Answers /write, /query and /api/v2/write from a script of (status, body, headers)."""

    url: str = ""
    script: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [ln for path, body in self.requests if "write" in path
                for ln in body.decode().splitlines()]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path, body))
        if request.path == "/query":
            return web.json_response({"results": [{"statement_id": 0}]})
        await asyncio.sleep(self.delay_s)
        status, text, headers = self.script.pop(0) if self.script else (204, "", {})
        return web.Response(status=status, text=text, headers=headers)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeInflux]:
    server = FakeInflux()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def v1(url: str, **kw: Any) -> InfluxV1Sink:
    return InfluxV1Sink(url, "db", **FAST, **kw)


@pytest.mark.asyncio
async def test_batches_and_flush_interval(fake: FakeInflux) -> None:
    sink = v1(fake.url, batch_size=3)
    await sink.write_batch(stage_event(i) for i in range(10))
    await sink.flush()
    assert [len(b.splitlines()) for p, b in fake.requests if p == "/write"] == [3, 3, 3, 1]
    assert fake.requests[0][0] == "/query"  # CREATE DATABASE, once
    await sink.write_batch([stage_event(10)])  # no flush: the interval sends it
    await asyncio.sleep(0.3)
    assert sink.pending == 0 and len(fake.lines()) == 11
    await sink.close()
    assert sink.stats.points_written == 11 and sink.stats.batches_written == 5


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["v1", "v2"])
async def test_5xx_and_429_are_retried_in_order(fake: FakeInflux, kind: str) -> None:
    fake.script = [(503, '{"error":"busy"}', {}), (429, "slow down", {"Retry-After": "0.1"}),
                   (500, "", {})]
    sink = v1(fake.url) if kind == "v1" else InfluxV2Sink(fake.url, "", "o", "b", **FAST)
    events = [stage_event(i) for i in range(5)]
    await sink.write_batch(events)
    await sink.close()
    writes = [b for p, b in fake.requests if p != "/query"]
    assert len(writes) == 4 and len(set(writes)) == 1  # the same batch, resent
    assert fake.lines() == [to_point(e).to_line_protocol() for e in events] * 4
    assert sink.stats.retries == 3 and sink.stats.points_written == 5
    assert sink.stats.last_error == "HTTP 500: Internal Server Error"


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["v1", "v2"])
async def test_400_is_counted_with_the_server_message(fake: FakeInflux, kind: str) -> None:
    message = 'partial write: field type conflict: input field "stage_code" dropped=1'
    body = json.dumps({"error": message} if kind == "v1" else {"code": "invalid",
                                                               "message": message})
    fake.script = [(400, body, {})]
    options = FAST | SinkOptions(batch_size=2)
    sink = InfluxV1Sink(fake.url, "db", **options) if kind == "v1" else InfluxV2Sink(
        fake.url, "", "o", "b", **options)
    await sink.write_batch(stage_event(i) for i in range(4))
    await sink.close()  # the bad batch does not stop the next one
    assert (sink.stats.points_rejected, sink.stats.points_written) == (2, 2)
    (rejected,) = sink.rejected
    assert (rejected.status, rejected.message, rejected.n_points) == (400, message, 2)


@pytest.mark.asyncio
async def test_401_fails_the_sink_and_keeps_the_points(fake: FakeInflux) -> None:
    fake.script = [(401, '{"error":"authorization failed"}', {})]
    sink = v1(fake.url)
    await sink.write_batch(stage_event(i) for i in range(3))
    with pytest.raises(SinkConfigurationError, match="authorization failed") as err:
        await sink.flush()
    assert err.value.pending == 3 and sink.stats.points_rejected == 0
    with pytest.raises(SinkConfigurationError):
        await sink.close()


@pytest.mark.asyncio
async def test_gives_up_after_max_retries_without_dropping() -> None:
    sink = v1(f"http://127.0.0.1:{free_port()}", max_retries=2)  # nothing listens there
    await sink.write_batch(stage_event(i) for i in range(3))
    with pytest.raises(SinkUnavailableError, match="gave up after 3 attempts") as err:
        await sink.close()
    assert err.value.pending == 3 and sink.pending == 3 and sink.stats.retries == 2


@pytest.mark.asyncio
async def test_full_queue_blocks_the_producer(fake: FakeInflux) -> None:
    fake.delay_s = 0.1
    sink = v1(fake.url, batch_size=2, queue_limit=4)
    loop = asyncio.get_running_loop()
    t = loop.time()
    await sink.write_batch(stage_event(i) for i in range(10))  # 10 > 4: waits for room
    assert loop.time() - t >= 0.2 and sink.stats.backpressure_waits == 1
    await sink.close()
    assert fake.lines() == [to_point(stage_event(i)).to_line_protocol() for i in range(10)]
    with pytest.raises(SinkClosedError):
        await sink.write_batch([stage_event(0)])
