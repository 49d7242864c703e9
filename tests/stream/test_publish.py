"""The ordered write of a batch's effects, with a fake producer, fake tables and fake acks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP

from stream.delivery import InOrderAcks
from stream.effects import Effects
from stream.publish import Publisher, PublishError
from stream.schemas import DeadLetter, NightSummary, StageEvent
from stream.tables import current_partition

T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
Log = list[tuple[Any, ...]]


def _delivered(result: Any) -> asyncio.Future[Any]:
    """What the producer's send returns: done once the broker has the message."""
    future = asyncio.get_running_loop().create_future()
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
    return future


class FakeProducer:
    def __init__(self, log: Log, fail: BaseException | None = None) -> None:
        self.log, self.fail = log, fail

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> asyncio.Future[Any]:
        self.log.append(("send", topic, key))
        return _delivered(self.fail)

    async def flush(self) -> None:
        self.log.append(("flush",))


class FakeTable(MutableMapping[str, Any]):
    """A dict that logs its writes with the changelog partition they would go to."""

    def __init__(self, name: str, log: Log, **items: Any) -> None:
        self.name, self.log, self.data = name, log, dict(items)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.log.append(("put", self.name, key, current_partition()))
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        self.log.append(("del", self.name, key, current_partition()))
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class FakeAcks:
    def __init__(self, log: Log) -> None:
        self.log = log

    def release(self, tokens: Any) -> None:
        self.log.append(("release", *tokens))


def _event(subject: str, kind: str = "causal") -> StageEvent:
    return StageEvent(
        subject_id=subject, session_id="n1", epoch_index=0, epoch_start_utc=T0,
        model_name="m", model_version="1", kind=kind, stage="W",  # type: ignore[arg-type]
        probabilities={"W": 0.7, "light": 0.1, "deep": 0.1, "REM": 0.1}, confidence=0.7,
        closed_at_utc=T0, emitted_at_utc=T0, latency_s=0.0)


def _summary(subject: str) -> NightSummary:
    return NightSummary(
        subject_id=subject, session_id="n1", model_name="m", kind="offline", t_start_utc=T0,
        t_end_utc=T0, n_epochs=1, n_valid_epochs=1, tib_min=0.5, tst_min=0.0, se_pct=0.0,
        sol_min=None, waso_min=0.0, rem_latency_min=None,
        minutes={"W": 0.5, "light": 0.0, "deep": 0.0, "REM": 0.0},
        percent_of_tst={"light": 0.0, "deep": 0.0, "REM": 0.0}, emitted_at_utc=T0)


def _publisher(log: Log, fail: BaseException | None = None) -> tuple[
        Publisher, FakeTable, FakeTable]:
    state = FakeTable("state", log, old="x")
    rows = FakeTable("rows", log, **{"s1|n0|0": {"first": 0, "rows": []}})
    producer = FakeProducer(log, fail)
    return Publisher(lambda: producer, state, rows, FakeAcks(log), stages="t.stages",
                     summaries="t.summaries", deadletter="t.deadletter"), state, rows


def test_outputs_then_rows_then_checkpoints_then_deletions_then_acks() -> None:
    log: Log = []
    publisher, state, rows = _publisher(log)
    dead = DeadLetter.wrap(b"{", topic="t.samples", partition=2, offset=7, key="s9",
                           stage="decode", reason="bad", error_type="JSONDecodeError",
                           received_at_utc=T0)
    fx = Effects(stage_events=[_event("s1")], summaries=[_summary("s1")], dead_letters=[dead],
                 state=[(1, "s1", '{"v":1}'), (3, "old", None), (3, "never-saved", None)],
                 rows=[(1, "s1|n1|0", {"first": 0, "rows": ["r"]}), (1, "s1|n0|0", None),
                       (1, "s1|n0|25", None)],
                 release=[11, 12])
    asyncio.run(publisher.publish(fx))
    assert log == [
        ("send", "t.stages", b"s1"), ("send", "t.summaries", b"s1"),
        ("send", "t.deadletter", b"s9"),
        ("flush",),  # outputs durable before any checkpoint covers them
        ("put", "rows", "s1|n1|0", 1),
        ("flush",),  # rows durable before a checkpoint points at them
        ("put", "state", "s1", 1), ("del", "state", "old", 3),
        ("flush",),  # checkpoints durable before the rows they no longer need go
        ("del", "rows", "s1|n0|0", 1),
        ("release", 11, 12),
    ]
    assert state.data == {"s1": '{"v":1}'} and set(rows.data) == {"s1|n1|0"}


def test_outputs_the_broker_did_not_take_stop_the_write_before_any_checkpoint() -> None:
    log: Log = []
    publisher, state, _ = _publisher(log, fail=KafkaTimeoutError("batch expired"))
    fx = Effects(stage_events=[_event("s1")], state=[(1, "s1", '{"v":1}')], release=[3])
    with pytest.raises(PublishError, match=r"1 of 1 outputs were not written to the broker "
                       r"\(first: t.stages: KafkaTimeoutError"):
        asyncio.run(publisher.publish(fx))
    assert log == [("send", "t.stages", b"s1"), ("flush",)]  # no checkpoint, no ack
    assert "s1" not in state


def test_nothing_to_write_waits_for_nothing() -> None:
    log: Log = []
    publisher, _, _ = _publisher(log)
    asyncio.run(publisher.publish(Effects(release=[5])))
    assert log == [("release", 5)]


class _Message:
    def __init__(self, tp: TP, offset: int, acked: list[int]) -> None:
        self.tp, self.offset, self.acked = tp, offset, acked

    def ack(self, consumer: Any) -> None:
        self.acked.append(self.offset)


def test_acknowledgements_go_out_in_offset_order_per_partition() -> None:
    acked: list[int] = []
    acks = InOrderAcks(SimpleNamespace(consumer=None))  # type: ignore[arg-type]
    tp, other = TP("t.samples", 0), TP("t.samples", 1)
    tokens = {o: acks.hold(_Message(tp, o, acked)) for o in (10, 11, 12)}  # type: ignore[arg-type]
    side = acks.hold(_Message(other, 4, acked))  # type: ignore[arg-type]
    log: Log = []
    publisher, _, _ = _publisher(log)
    publisher.acks = acks
    # the subject of offset 12 checkpoints first: held until 10 and 11 are done
    asyncio.run(publisher.publish(Effects(release=[tokens[12], side])))
    assert acked == [4]
    asyncio.run(publisher.publish(Effects(release=[tokens[10]])))
    assert acked == [4, 10]
    asyncio.run(publisher.publish(Effects(release=[tokens[11]])))
    assert acked == [4, 10, 11, 12]
