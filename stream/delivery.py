"""At-least-once delivery to the ``stage`` agent on top of faust-streaming 0.15.

Faust acknowledges and commits offsets for us, but three of its paths can let an input
message go by unprocessed, and each was seen to lose a sample chunk after ``kill -9``:

* **a cleared buffer.** At the end of table recovery Faust resumes the input partitions,
  seeks them, and *then* resumes flow control, which empties every stream buffer
  (``FlowControlQueue(clear_on_resume=True)``). Messages fetched in between are dropped
  and the fetcher goes on after them: the agent never sees them, and once a later message
  is acknowledged the commit moves past them.
* **a skipped message.** A stream skips, and acknowledges, a message that arrives while
  flow control is suspended or from an older consumer generation, before any processor
  of ours runs.
* **a gap at the head.** Before a partition's first commit Faust does not check for
  unacknowledged offsets below the first acknowledged one.

:class:`InputTopic` takes a reference to every input message the moment Faust hands it
to our stream, so Faust itself never acknowledges one (skipped or not); only
:class:`InOrderAcks` does, once the message's effects are durable, and strictly in offset
order per partition. :class:`GapFiller` notices when the offsets reaching the agent jump
(compared with the partition's committed offset, then with the last offset seen) and
reads the missing messages straight from the broker, so they are processed in order
before the message that revealed the gap. Re-reading a message that was in fact
processed is harmless: the worker drops duplicates by ``(source_id, seq)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.types import TP, ConsumerMessage, EventT, Message

__all__ = ["GapFiller", "InOrderAcks", "InputTopic", "message_of"]

log = logging.getLogger(__name__)


class InputTopic(faust.Topic):
    """A topic whose messages carry one extra reference from the moment of delivery.

    The conductor decodes each message once per subscribed channel before queueing it
    for our stream; the reference taken there is released only by
    :meth:`InOrderAcks.release`. A message that Faust drops from a buffer or skips is
    therefore never acknowledged, and :class:`GapFiller` brings it back.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # faust.Topic sets ``decode`` per instance (a compiled schema), so it is wrapped
        # here rather than overridden
        decode = self.decode

        async def holding_decode(message: Message, *, propagate: bool = False) -> Any:
            message.incref()
            return await decode(message, propagate=propagate)

        self.decode = holding_decode  # type: ignore[method-assign]


class InOrderAcks:
    """Acknowledge each partition's messages strictly in offset order.

    The worker releases messages subject by subject (at each subject's checkpoint), which
    is out of offset order within a partition. Faust commits the highest run of
    consecutive acknowledged offsets but does not check for a gap at the head before a
    partition's first commit, and treats ``min(acked) - committed == 1`` as contiguous
    (``Consumer._new_offset``). Holding every acknowledgement until all earlier messages
    of its partition are released keeps the acknowledged offsets contiguous.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.queues: dict[TP, deque[list[Any]]] = defaultdict(deque)

    def hold(self, message: Message) -> list[Any]:
        """Register a message (in processing order); returns its release token."""
        entry = [message, False]
        self.queues[message.tp].append(entry)
        return entry

    def release(self, tokens: Sequence[object]) -> None:
        """Mark messages done; acknowledge every partition's leading run of done ones."""
        tps = set()
        for token in tokens:
            if token is not None:
                entry: list[Any] = token  # type: ignore[assignment]
                entry[1] = True
                tps.add(entry[0].tp)
        for tp in tps:
            queue = self.queues.get(tp)
            while queue and queue[0][1]:
                queue.popleft()[0].ack(self.app.consumer)

    def forget(self, tps: set[TP]) -> None:
        """Drop revoked partitions (their messages are re-delivered to the new owner)."""
        for tp in tps:
            self.queues.pop(tp, None)


def message_of(record: ConsumerRecord[bytes, bytes],
               generation_id: int | None) -> ConsumerMessage:
    """A Faust message for a record read around Faust, acknowledged like any other.

    A ``ConsumerMessage`` (not a plain ``Message``, whose final ack tells nobody), so
    its acknowledgement reaches the consumer and the committed offset can move past it.
    """
    return ConsumerMessage(
        record.topic, record.partition, record.offset,
        record.timestamp / 1000.0 if record.timestamp is not None else 0.0,
        record.timestamp_type, record.headers, record.key, record.value, record.checksum,
        record.serialized_key_size, record.serialized_value_size,
        TP(record.topic, record.partition), generation_id=generation_id,
    )


@dataclass
class GapFiller:
    """Find and read input messages that never reached the agent.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    group_id : str
        The worker's consumer group (its committed offsets mark where each partition's
        delivery must start).
    client_options : mapping
        Security arguments of the aiokafka clients
        (:meth:`~stream.settings.StreamSettings.kafka_client_options`); empty: PLAINTEXT.
    timeout_s : float
        How long one read of missing messages may take before it fails.
    max_backoff_s : float
        Longest pause between two tries of a question the broker could not answer.

    Attributes
    ----------
    expected : dict
        ``TP -> next offset`` the agent must see on each partition.
    filled, gaps : int
        Messages read back and gaps found (both should stay 0; see the module notes).
    """

    bootstrap: str
    group_id: str
    # repr=False: it holds the SASL password
    client_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    timeout_s: float = 30.0
    max_backoff_s: float = 30.0
    expected: dict[TP, int] = field(default_factory=dict)
    filled: int = 0
    gaps: int = 0
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)
    _admin: AIOKafkaAdminClient | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def missing(self, tp: TP, offset: int) -> list[ConsumerRecord[bytes, bytes]]:
        """The records before ``offset`` on ``tp`` that the agent has not seen, in order.

        Call once per delivered message, in delivery order. A message below the expected
        offset is a re-delivery (after a rebalance Faust seeks back to the committed
        offset) and reveals nothing.
        """
        start = self.expected.get(tp)
        if start is None:
            start = await self.delivery_start(tp)
        if offset <= start:
            self.expected[tp] = max(start, offset + 1)
            return []
        records = await self._read(tp, start, offset)
        # only now: a read that failed is tried again by the next call
        self.expected[tp] = offset + 1
        self.gaps += 1
        self.filled += len(records)
        log.warning("sleepstream: %s[%d] offsets %d..%d never reached the agent "
                    "(faust dropped them); read %d back from the broker", tp.topic,
                    tp.partition, start, offset - 1, len(records))
        return records

    async def complete(self, events: Sequence[EventT]) -> list[Message]:
        """The messages of a batch of events, each preceded by any it revealed missing.

        While the broker cannot answer (an outage, a restart) the questions are asked
        again with a growing pause, up to ``max_backoff_s``: an exception here would
        crash the agent, and Faust's restart of it would lose the batch in hand.
        """
        out: list[Message] = []
        for event in events:
            message = event.message
            for record in await self._missing_retrying(message.tp, message.offset):
                out.append(message_of(record, message.generation_id))
            out.append(message)
        return out

    async def _missing_retrying(self, tp: TP, offset: int) -> list[
            ConsumerRecord[bytes, bytes]]:
        pause = 1.0
        while True:
            try:
                return await self.missing(tp, offset)
            except (KafkaError, TimeoutError) as err:
                log.warning("sleepstream: cannot check %s[%d] for missing messages (%s: %s);"
                            " asking again in %.0f s", tp.topic, tp.partition,
                            type(err).__name__, err, pause)
                await asyncio.sleep(pause)
                pause = min(2 * pause, self.max_backoff_s)

    async def end_offsets(self, tps: Collection[TP], timeout_s: float) -> dict[TP, int]:
        """The end offsets of ``tps`` (the next offset to be written), from the broker.

        Raises
        ------
        KafkaError or TimeoutError
            If the broker does not answer within ``timeout_s`` (the wait for another
            request of this client to finish does not count).
        """
        async with self._lock:
            async with asyncio.timeout(timeout_s):
                consumer = await self._client()
                ends = await consumer.end_offsets(
                    [TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(k.topic, k.partition): int(v) for k, v in ends.items()}


    def forget(self, tps: set[TP]) -> None:
        """Partitions revoked: their next delivery starts from their committed offset."""
        for tp in tps:
            self.expected.pop(tp, None)

    async def stop(self) -> None:
        """Close the broker connections."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                        enable_auto_commit=False,
                                        auto_offset_reset="earliest", **self.client_options)
            try:
                await consumer.start()
            except BaseException:  # a broker that is down (or a timeout): no half client
                await asyncio.shield(consumer.stop())
                raise
            self._consumer = consumer
        return self._consumer

    async def delivery_start(self, tp: TP) -> int:
        """Where delivery of ``tp`` starts: its committed offset, else the log start."""
        async with self._lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                            **self.client_options)
                try:
                    await admin.start()
                except BaseException:
                    await asyncio.shield(admin.close())
                    raise
                self._admin = admin
            ktp = TopicPartition(tp.topic, tp.partition)
            committed = await self._admin.list_consumer_group_offsets(
                self.group_id, partitions=[ktp])
            meta = committed.get(ktp)
            if meta is not None and meta.offset is not None and meta.offset >= 0:
                return int(meta.offset)
            consumer = await self._client()
            return int((await consumer.beginning_offsets([ktp]))[ktp])

    async def _read(self, tp: TP, start: int, stop: int) -> list[ConsumerRecord[bytes, bytes]]:
        """Records with ``start <= offset < stop`` (offsets a producer skipped are fine)."""
        async with self._lock:
            consumer = await self._client()
            ktp = TopicPartition(tp.topic, tp.partition)
            consumer.assign([ktp])
            consumer.seek(ktp, start)
            out: list[ConsumerRecord[bytes, bytes]] = []
            deadline = time.monotonic() + self.timeout_s
            while await consumer.position(ktp) < stop:
                if time.monotonic() > deadline:
                    msg = (f"could not read {tp.topic}[{tp.partition}] offsets {start}.."
                           f"{stop - 1} from {self.bootstrap} within {self.timeout_s:.0f} s")
                    raise TimeoutError(msg)
                batch = await consumer.getmany(ktp, timeout_ms=500, max_records=stop - start)
                out.extend(r for r in batch.get(ktp, []) if start <= r.offset < stop)
            # an assigned consumer keeps fetching (and spins on the embedded broker)
            consumer.unsubscribe()
            return out
