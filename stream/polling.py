"""Polling a hand-assigned Kafka consumer without spinning on an idle broker.

The embedded broker (noida-db) answers a fetch request at once when it has nothing new,
instead of holding it for ``fetch_max_wait_ms`` as Apache Kafka does, and aiokafka's
fetcher sends the next request as soon as an answer comes: a consumer that has caught up
spins, at about 0.8 CPU-seconds per second on this machine, taking the worker's cores and
its interpreter lock. :func:`poll_paced` keeps the partitions paused between polls and
rests between polls that did not fill up, so a caught-up consumer fetches only when asked
(a paused partition's prefetched records are dropped, not consumed, and fetched again
after the resume; nothing is skipped).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

__all__ = ["poll_paced"]


async def poll_paced(
    consumer: AIOKafkaConsumer, *, wait_s: float, idle_s: float, max_records: int
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """Fetch up to ``max_records`` within ``wait_s``; unless that many came, rest ``idle_s``.

    Resting after every poll that did not fill up (not only after empty ones) matters
    when records trickle in: each poll would otherwise bring one or two and start the
    next fetch at once.

    Parameters
    ----------
    consumer : AIOKafkaConsumer
        A started consumer with partitions assigned by hand.
    wait_s : float
        Longest wait for records once resumed. Keep it short (5-10 ms): while resumed, a
        caught-up consumer spins; records already there are returned at once.
    idle_s : float
        Rest (partitions paused) after a poll that did not fill up: the most a new record
        waits before it is read.
    max_records : int
        Most records returned; a full poll is followed by the next one at once (backlog).
    """
    tps = consumer.assignment()
    consumer.resume(*tps)
    try:
        batches = await consumer.getmany(timeout_ms=int(wait_s * 1000),
                                         max_records=max_records)
    finally:
        consumer.pause(*tps)
    if sum(len(v) for v in batches.values()) < max_records:
        await asyncio.sleep(idle_s)
    return batches
