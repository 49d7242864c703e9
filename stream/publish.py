"""Making a batch's effects durable, in the one order that survives a crash anywhere.

:class:`Publisher` takes the :class:`~stream.effects.Effects` of a batch or a tick and

1. sends the stage events, summaries and dead letters, and waits until the broker has
   them (outputs are never behind the checkpoints that cover them);
2. writes the new night-row blocks, and waits (a checkpoint never points at rows that are
   not durable yet);
3. writes the subject checkpoints (and deletes finished subjects' ones), and waits;
4. deletes the row blocks no checkpoint points at any more (never before the checkpoint
   that stops pointing at them is durable);
5. acknowledges the messages whose effects are now durable, in offset order.

A crash between any two steps re-delivers the messages, and the worker's
de-duplication by ``(source_id, seq)`` makes the replay harmless. An output the producer
gave up on (Faust's producer retries for ``producer_request_timeout``, 20 minutes by
default, then drops the batch) raises :class:`PublishError` before anything else is
written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

from stream.effects import Effects
from stream.tables import in_partition

__all__ = ["PublishError", "Publisher"]


class PublishError(RuntimeError):
    """Outputs were not written to the broker; nothing after them was written."""


class Producer(Protocol):
    """What the publisher needs of Faust's producer (``app.producer``)."""

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> Awaitable[Any]:
        """Queue a message; the awaitable completes once the broker has it."""

    async def flush(self) -> None:
        """Wait until everything queued (table changelogs included) is on the broker."""


class Acknowledger(Protocol):
    """What the publisher needs of :class:`~stream.delivery.InOrderAcks`."""

    def release(self, tokens: Sequence[object]) -> None:
        """Acknowledge messages once every earlier one of their partition is."""


class Publisher:
    """Publish a batch's outputs, write its checkpoints, then acknowledge its messages.

    Parameters
    ----------
    producer : callable
        Returns the producer (Faust creates ``app.producer`` on first use).
    state_table, rows_table : mutable mapping
        The ``subject-state`` and ``night-rows`` tables; their writes go through the
        producer and are durable after its flush.
    acks : Acknowledger
        Acknowledges the released messages.
    stages, summaries, deadletter : str
        Output topic names.
    """

    def __init__(self, producer: Callable[[], Producer],
                 state_table: MutableMapping[str, Any], rows_table: MutableMapping[str, Any],
                 acks: Acknowledger, *, stages: str, summaries: str, deadletter: str) -> None:
        self.producer = producer
        self.state_table, self.rows_table = state_table, rows_table
        self.acks = acks
        self.stages, self.summaries, self.deadletter = stages, summaries, deadletter

    async def publish(self, fx: Effects) -> None:
        """Make ``fx`` durable step by step (see the module notes), then acknowledge."""
        producer = self.producer()
        sends = [(self.stages, e.subject_id, e) for e in fx.stage_events] + [
            (self.summaries, s.subject_id, s) for s in fx.summaries] + [
            (self.deadletter, d.key, d) for d in fx.dead_letters]
        delivered = [await producer.send(topic, key.encode() if key else None,
                                         payload.model_dump_json().encode(), None, None, None)
                     for topic, key, payload in sends]
        if sends:
            await producer.flush()
            await _check_delivered(delivered, [topic for topic, _, _ in sends])
        puts = [(p, k, b) for p, k, b in fx.rows if b is not None]
        for partition, key, block in puts:
            with in_partition(partition):
                self.rows_table[key] = block
        if puts:
            await producer.flush()
        for partition, key, value in fx.state:
            with in_partition(partition):
                if value is not None:
                    self.state_table[key] = value
                elif key in self.state_table:
                    del self.state_table[key]
        if fx.state:
            await producer.flush()
        for partition, key, gone in fx.rows:
            if gone is None and key in self.rows_table:
                with in_partition(partition):
                    del self.rows_table[key]
        self.acks.release(fx.release)


async def _check_delivered(delivered: Sequence[Awaitable[Any]], topics: Sequence[str]) -> None:
    """Raise :class:`PublishError` if the broker did not take every output."""
    results = await asyncio.gather(*delivered, return_exceptions=True)
    failed = [(t, r) for t, r in zip(topics, results, strict=True) if isinstance(r, BaseException)]
    if failed:
        topic, err = failed[0]
        msg = (f"{len(failed)} of {len(results)} outputs were not written to the broker "
               f"(first: {topic}: {type(err).__name__}: {err})")
        raise PublishError(msg) from err
