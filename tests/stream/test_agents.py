"""The stage and sink agents under ``agent.test_context()``: no broker, fakes around them.

Each agent is added to a bare Faust app by its own ``register(app, deps)``; the ``deps``
hold a real :class:`~stream.worker.Worker` (shipped models, tables as dicts) and fakes
for what would talk to the broker or the database: the gap reader, the producer, the
acknowledgements and the sink. Sends of Faust topics are patched (inside a test context
they would start the real producer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock, patch

import faust
import pytest
from faust.types import EventT, Message

from stream.agents import sink as sink_agent
from stream.agents import stage as stage_agent
from stream.deps import Deps
from stream.effects import Effects, Inbound
from stream.publish import Publisher, PublishError
from stream.readability import InputGate
from stream.schemas import EpochInputStats, SampleChunk, SessionEvent, StageEvent
from stream.settings import SinkSettings, StreamSettings
from stream.sinks import SinkItem, SinkStats
from stream.staging import FamilyModels
from stream.topics import declare_topics
from stream.worker import Worker

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
Log = list[tuple[Any, ...]]


class FakeGaps:
    """Nothing missing: the batch's own messages."""

    gaps = filled = 0

    async def complete(self, events: Sequence[EventT]) -> list[Message]:
        return [e.message for e in events]


class FakeAcks:
    def __init__(self, log: Log) -> None:
        self.log = log

    def hold(self, message: Message) -> tuple[str, int]:
        return (message.topic, message.offset)

    def release(self, tokens: Sequence[Any]) -> None:
        self.log.append(("release", *tokens))


def _delivered(result: Any) -> asyncio.Future[Any]:
    """What the producer's send returns: done once the broker has the message."""
    future = asyncio.get_running_loop().create_future()
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
    return future


class FakeProducer:
    def __init__(self, log: Log) -> None:
        self.log = log

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> asyncio.Future[Any]:
        self.log.append(("send", topic, key, value))
        return _delivered(None)

    async def flush(self) -> None:
        self.log.append(("flush",))


class FakeSink:
    def __init__(self, log: Log) -> None:
        self.log = log

    @property
    def stats(self) -> SinkStats:
        return SinkStats(0, 0, 0, 0, 0, 0, 0, 0, None)

    async def write_batch(self, items: Any) -> None:
        self.log.append(("write", *items))

    async def flush(self) -> None:
        self.log.append(("sink-flush",))

    async def close(self) -> None:
        self.log.append(("sink-close",))


@pytest.fixture(scope="module")
def family_models() -> dict[str, FamilyModels]:
    return {"wearable": FamilyModels("wearable")}


def _deps(log: Log, family_models: dict[str, FamilyModels], sink_kind: str = "none") -> tuple[
        faust.App, Deps, dict[str, Any]]:
    settings = StreamSettings(broker="kafka://127.0.0.1:9", topic_prefix="t.", partitions=2,
                              batch_within_s=0.01)
    app = faust.App("agents-test", broker=settings.broker, store="memory://")
    topics = declare_topics(app, settings)
    tables: dict[str, Any] = {"state": {}, "rows": {}}
    worker = Worker(settings, tables["state"].get, tables["rows"].get, family_models=family_models)
    acks = FakeAcks(log)
    producer = FakeProducer(log)
    publisher = Publisher(lambda: producer, tables["state"], tables["rows"], acks,  # type: ignore[arg-type]
                          stages=topics.stages, summaries=topics.summaries,
                          deadletter=topics.deadletter)
    deps = Deps(settings, SinkSettings(kind=sink_kind), topics, worker, publisher,  # type: ignore[arg-type]
                asyncio.Lock(), acks, FakeGaps(), InputGate(settings.grace_s),  # type: ignore[arg-type]
                make_sink=lambda s: FakeSink(log))
    return app, deps, tables


def _close_consumer_loop(app: faust.App) -> None:
    """Close the event loop of the app's consumer thread, which was never started.

    Faust's stream iterator creates ``app.consumer`` (in a test context too), and with
    it a consumer thread that owns an event loop of its own.
    """
    if app._consumer is not None:
        app._consumer._thread.thread_loop.close()


def _raw_channel(app: faust.App) -> Any:
    return app.channel(schema=faust.Schema(key_serializer="raw", value_serializer="raw"))


async def _put(agent: Any, topic: str, key: str, value: bytes, offset: int,
               partition: int = 1) -> None:
    """Deliver one raw message as the input topic would (the test wrapper's own ``put``
    names no topic of a multi-topic channel)."""
    channel = agent.stream().channel
    # a message of another consumer generation would be skipped by the stream
    message = Message(topic, partition, offset, time.time(), 0, None, key.encode(), value,
                      b"", 0, 0, generation_id=agent.app.consumer_generation_id)
    await channel.put(await channel.decode(message))


async def _until(ok: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def _chunk(seq: int, t: float) -> SampleChunk:
    return SampleChunk(subject_id="s1", session_id="n1", source_id="hr", seq=seq,
                       modality="heart_rate", unit="bpm", t0_utc=T0 + timedelta(seconds=t),
                       offsets_s=tuple(float(i) for i in range(30)), values=(61.0,) * 30)


def test_stage_agent_publishes_then_checkpoints_then_acknowledges(
        family_models: dict[str, FamilyModels]) -> None:
    log: Log = []
    start = SessionEvent(event="start", subject_id="s1", session_id="n1",
                         modalities=("heart_rate",), t_utc=T0, live=False)
    inputs = [("t.sessions", start.model_dump_json().encode())] + [
        ("t.samples", _chunk(k, 30.0 * k).model_dump_json().encode()) for k in range(3)] + [
        ("t.samples", b"{not json")]

    async def scenario() -> tuple[Deps, dict[str, Any]]:
        app, deps, tables = _deps(log, family_models)
        stage_agent.register(app, deps)
        async with app.agents["stage"].test_context(channel=_raw_channel(app)) as agent:
            for offset, (topic, value) in enumerate(inputs):
                await _put(agent, topic, "s1", value, offset)
            await _until(lambda: 4 in deps.offsets.values())
        _close_consumer_loop(app)
        return deps, tables

    deps, tables = asyncio.run(scenario())
    sends = [e for e in log if e[0] == "send"]
    # epoch 0 closed (event time 60 s passes its end plus 30 s of grace) and was staged
    staged = [StageEvent.model_validate_json(e[3]) for e in sends if e[1] == "t.stages"]
    assert [(e.epoch_index, e.kind) for e in staged] == [(0, "causal")]
    assert [e[1] for e in sends if e[1] != "t.stages"] == ["t.deadletter"]
    # the outputs are flushed before the checkpoint is written, and the messages are
    # released only with (after) the checkpoint
    first_flush = log.index(("flush",))
    assert all(log.index(e) < first_flush for e in sends)
    released = {t for e in log if e[0] == "release" for t in e[1:]}
    assert released == {("t.sessions", 0), ("t.samples", 1), ("t.samples", 2),
                        ("t.samples", 3), ("t.samples", 4)}
    assert '"finished_session":null' in tables["state"]["s1"]
    assert deps.worker.stats.chunks == 3 and deps.worker.stats.dead_letters == {"decode": 1}
    assert {tp.topic: o for tp, o in deps.offsets.items()} == {"t.sessions": 0,
                                                               "t.samples": 4}


def _stage_event(inputs: EpochInputStats | None, kind: str = "causal") -> StageEvent:
    return StageEvent(
        subject_id="s1", session_id="n1", epoch_index=2, epoch_start_utc=T0 + timedelta(
            seconds=60), model_name="m", model_version="1", kind=kind,  # type: ignore[arg-type]
        stage="light", probabilities={"W": 0.1, "light": 0.7, "deep": 0.1, "REM": 0.1},
        confidence=0.7, closed_at_utc=T0, emitted_at_utc=T0, latency_s=0.0, inputs=inputs)


def test_sink_agent_writes_outputs_then_acknowledges(
        family_models: dict[str, FamilyModels]) -> None:
    log: Log = []
    stats = EpochInputStats(hr_mean_bpm=61.0, hr_samples=30)
    causal, offline = _stage_event(stats), _stage_event(None, "offline")
    outputs = [("t.stages", causal.model_dump_json().encode()),
               ("t.stages", offline.model_dump_json().encode()),
               ("t.summaries", b'{"subject_id": "s1"}')]
    dead = AsyncMock()

    async def scenario() -> Deps:
        app, deps, _ = _deps(log, family_models, sink_kind="v1")
        sink_agent.register(app, deps)
        with patch.object(deps.topics.dead_letters, "send", new=dead):
            async with app.agents["sink"].test_context(channel=_raw_channel(app)) as agent:
                for offset, (topic, value) in enumerate(outputs):
                    await _put(agent, topic, "s1", value, offset)
                await _until(lambda: any(e[0] == "release" for e in log))
        _close_consumer_loop(app)
        return deps

    deps = asyncio.run(scenario())
    written: list[SinkItem] = [item for e in log if e[0] == "write" for item in e[1:]]
    assert written == [causal, offline]  # the sink makes the inputs point of each
    # flushed (the database has them) before they are acknowledged, in offset order
    assert log.index(("sink-flush",)) < next(i for i, e in enumerate(log) if e[0] == "release")
    assert [t for e in log if e[0] == "release" for t in e[1:]] == [
        ("t.stages", 0), ("t.stages", 1), ("t.summaries", 2)]
    # the summary that does not validate became a dead letter naming its topic and offset
    letter = dead.await_args.kwargs["value"]
    assert (letter.topic, letter.offset, letter.stage) == ("t.summaries", 2, "validate")
    assert deps.worker.stats.dead_letters == {"validate": 1}
    assert ("sink-close",) in log  # the agent's sink is closed when it stops


def test_sink_agent_is_left_out_without_a_database(family_models: dict[str, FamilyModels]) -> None:
    async def scenario() -> faust.App:
        app, deps, _ = _deps([], family_models, sink_kind="none")
        sink_agent.register(app, deps)
        return app

    assert "sink" not in asyncio.run(scenario()).agents


def test_deps_process_publishes_the_checkpoints_after_the_outputs(
        family_models: dict[str, FamilyModels]) -> None:
    log: Log = []
    start = SessionEvent(event="start", subject_id="s2", session_id="n1",
                         modalities=("heart_rate",), t_utc=T0, live=False)

    async def scenario() -> dict[str, Any]:
        _, deps, tables = _deps(log, family_models)
        fx = deps.worker.handle([Inbound("sessions", "t.sessions", 0, 0, b"s2",
                                         start.model_dump_json().encode(), "tok")])
        assert not fx.state  # the checkpoints come after the outputs are out
        await deps.process(fx)
        return tables

    assert "s2" in asyncio.run(scenario())["state"] and log[-1] == ("release", "tok")


def test_effects_that_cannot_be_made_durable_stop_the_worker(
        family_models: dict[str, FamilyModels]) -> None:
    crashed: list[BaseException] = []
    start = SessionEvent(event="start", subject_id="s3", session_id="n1",
                         modalities=("heart_rate",), t_utc=T0, live=False)

    async def scenario() -> dict[str, Any]:
        _, deps, tables = _deps([], family_models)

        async def crash(err: BaseException) -> None:
            crashed.append(err)

        async def refused(fx: Effects) -> None:
            raise PublishError("1 of 1 outputs were not written to the broker")

        deps.crash = crash
        deps.publisher.publish = refused  # type: ignore[method-assign]
        await deps.process(deps.worker.handle([Inbound(
            "sessions", "t.sessions", 0, 0, b"s3", start.model_dump_json().encode(), "t")]))
        return tables

    assert asyncio.run(scenario())["state"] == {}
    assert [str(e) for e in crashed] == ["1 of 1 outputs were not written to the broker"]
