"""At-least-once delivery around Faust: references, ordered acks, and reading gaps back.

The gap reader runs against the real embedded broker; the end-to-end proof (kill -9 in
the middle of a replay, nothing lost) is in ``test_stream_e2e.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from faust.types import TP, ConsumerMessage

from stream.delivery import GapFiller, InOrderAcks, InputTopic, message_of
from stream.stack import EmbeddedBroker

pytestmark = pytest.mark.timeout(180)


def _message(offset: int, partition: int = 0, topic: str = "t") -> ConsumerMessage:
    return ConsumerMessage(topic, partition, offset, 0.0, 0, None, b"k", b"v%d" % offset, None,
                   tp=TP(topic, partition))


class _Consumer:
    """Records what Faust would be told is safe to commit."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def ack(self, message: ConsumerMessage) -> bool:
        self.acked.append((message.partition, message.offset))
        return True


def test_input_topic_holds_a_reference_from_delivery_on_itself_and_its_clones() -> None:
    app = faust.App("delivery-test", broker="kafka://127.0.0.1:9")
    topic = InputTopic(app, topics=["t"], key_serializer="raw", value_serializer="raw")
    for channel in (topic, topic.clone(is_iterator=False)):
        message = _message(3)
        event = asyncio.run(channel.decode(message, propagate=True))
        assert event.value == b"v3"
        # the stream's own ack after the take buffer is consumed leaves our reference
        assert message.refcount == 1
        message.decref()
        assert message.refcount == 0


def test_in_order_acks_wait_for_every_earlier_message_of_the_partition() -> None:
    app: Any = type("App", (), {"consumer": _Consumer()})()
    acks = InOrderAcks(app)
    held = {(p, o): acks.hold(_message(o, p)) for p in (0, 1) for o in range(4)}
    acks.release([held[0, 2], held[0, 1], held[1, 0]])
    assert app.consumer.acked == [(1, 0)]  # partition 0 waits for offset 0
    acks.release([held[0, 0]])
    assert app.consumer.acked == [(1, 0), (0, 0), (0, 1), (0, 2)]
    acks.forget({TP("t", 1)})  # revoked: nothing of partition 1 is acknowledged any more
    acks.release([held[1, 1], held[0, 3]])
    assert app.consumer.acked[-1] == (0, 3) and (1, 1) not in app.consumer.acked


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, b"v%d" % i, key=b"k", partition=0)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


def test_gap_filler_reads_back_exactly_the_offsets_that_never_arrived(
        broker: EmbeddedBroker) -> None:
    async def scenario() -> None:
        await _produce(broker.bootstrap, "gaps", 30)
        tp = TP("gaps", 0)
        gaps = GapFiller(broker.bootstrap, "no-commits-yet")
        try:
            # no committed offset: delivery starts at the log start, so a first message
            # at offset 3 reveals 0..2
            assert [r.offset for r in await gaps.missing(tp, 3)] == [0, 1, 2]
            assert await gaps.missing(tp, 4) == []
            lost = await gaps.missing(tp, 9)
            assert [(r.offset, r.value) for r in lost] == [(o, b"v%d" % o) for o in
                                                           range(5, 9)]
            # a re-delivery after a rebalance (Faust seeks back) reveals nothing
            assert await gaps.missing(tp, 6) == []
            assert await gaps.missing(tp, 10) == []
            assert (gaps.gaps, gaps.filled) == (2, 7)
            # revoked and assigned again: delivery restarts at the committed offset
            await _commit(broker.bootstrap, "no-commits-yet", "gaps", 20)
            gaps.forget({tp})
            assert [r.offset for r in await gaps.missing(tp, 22)] == [20, 21]
            assert await gaps.missing(tp, 20) == []
            message = message_of(lost[0], generation_id=4)
            assert (message.tp, message.offset, message.value) == (tp, 5, b"v5")
            assert message.generation_id == 4 and message.refcount == 0
            # its acknowledgement reaches the consumer (a plain Message's would not)
            consumer: Any = _Consumer()
            assert message.ack(consumer) and consumer.acked == [(0, 5)]
        finally:
            await gaps.stop()

    asyncio.run(scenario())


def test_gap_filler_complete_puts_the_lost_messages_before_the_one_that_revealed_them(
        broker: EmbeddedBroker) -> None:
    async def scenario() -> list[int]:
        await _produce(broker.bootstrap, "complete", 8)
        gaps = GapFiller(broker.bootstrap, "complete-group")
        events: Any = [type("Event", (), {"message": _message(o, topic="complete")})()
                       for o in (0, 1, 4, 5, 7)]
        try:
            return [m.offset for m in await gaps.complete(events)]
        finally:
            await gaps.stop()

    assert asyncio.run(scenario()) == list(range(8))


def test_paced_polling_skips_nothing_fetched_while_paused(broker: EmbeddedBroker) -> None:
    from stream.polling import poll_paced

    async def scenario() -> list[bytes]:
        await _produce(broker.bootstrap, "paced", 5)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        got: list[bytes] = []
        try:
            tp = TopicPartition("paced", 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            for round_ in range(2):
                deadline = asyncio.get_running_loop().time() + 20
                while len(got) < 5 * (round_ + 1) and \
                        asyncio.get_running_loop().time() < deadline:
                    batches = await poll_paced(consumer, wait_s=0.05, idle_s=0.05,
                                               max_records=100)
                    got += [r.value for r in batches.get(tp, [])]
                    # between polls the partition stays paused
                    assert consumer.paused() == {tp}
                if round_ == 0:  # more arrive while the consumer is paused
                    await _produce(broker.bootstrap, "paced", 5)
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(scenario()) == [b"v%d" % i for i in range(5)] * 2


def test_gap_filler_end_offsets_from_the_broker_and_from_one_that_is_down(
        broker: EmbeddedBroker) -> None:
    from stream.stack import free_port

    async def scenario() -> None:
        await _produce(broker.bootstrap, "ends", 6)
        gaps = GapFiller(broker.bootstrap, "ends-group")
        try:
            assert await gaps.end_offsets([TP("ends", 0)], 10.0) == {TP("ends", 0): 6}
            assert await gaps.delivery_start(TP("ends", 0)) == 0  # nothing committed
        finally:
            await gaps.stop()
        down = GapFiller(f"127.0.0.1:{free_port()}", "g")
        started = asyncio.get_running_loop().time()
        with pytest.raises((KafkaError, TimeoutError)):
            await down.end_offsets([TP("ends", 0)], 1.0)
        assert asyncio.get_running_loop().time() - started < 5.0
        await down.stop()  # nothing was left half started

    asyncio.run(scenario())


def test_gap_filler_asks_again_until_the_broker_answers(
        broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def no_wait(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(0)

    async def scenario() -> list[int]:
        await _produce(broker.bootstrap, "retry", 6)
        gaps = GapFiller(broker.bootstrap, "retry-group", max_backoff_s=3.0)
        real_read, failures = gaps._read, [KafkaConnectionError("down"), TimeoutError("late")]

        async def flaky_read(tp: TP, start: int, stop: int) -> Any:
            if failures:
                raise failures.pop(0)
            return await real_read(tp, start, stop)

        monkeypatch.setattr(gaps, "_read", flaky_read)
        monkeypatch.setattr("stream.delivery.asyncio.sleep", no_wait)
        events: Any = [type("Event", (), {"message": _message(o, topic="retry")})()
                       for o in (0, 4, 5)]
        try:
            return [m.offset for m in await gaps.complete(events)]
        finally:
            await gaps.stop()

    # the read that failed is tried again: offsets 1..3 are not skipped
    assert asyncio.run(scenario()) == list(range(6))
    assert pauses == [1.0, 2.0]
