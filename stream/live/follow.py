"""The live page's follower: reads the output and session topics into a :class:`LiveView`.

It runs as a task inside the worker process, with its own aiokafka consumer: no consumer
group (nothing committed, every worker sees every partition), all partitions of the
``stages``, ``summaries`` and ``sessions`` topics assigned by hand and sought to the
first offsets of the look-back window (``offsets_for_times``; the beginning when the
broker cannot answer). A message that does not decode is counted and skipped; a broker
error restarts the consumer after a pause, from where it stopped. Cancelling the task
(the worker stopping) stops the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.live.view import LiveView, TopicKind
from stream.polling import poll_paced
from stream.settings import StreamSettings

__all__ = ["LiveFollower"]

log = logging.getLogger(__name__)

_KINDS: tuple[TopicKind, ...] = ("stages", "summaries", "sessions")


@dataclass
class LiveFollower:
    """Follow the topics of ``settings`` into ``view`` until cancelled.

    Parameters
    ----------
    settings : StreamSettings
        Broker, topic names and ``live_lookback_h``.
    view : LiveView
        Where the messages go.
    poll_s : float
        Rest between polls once caught up (the page refreshes every 1.5 s).
    retry_s : float
        Pause before reconnecting after a broker error.
    """

    settings: StreamSettings
    view: LiveView
    poll_s: float = 1.0
    retry_s: float = 2.0
    errors: int = 0
    _positions: dict[TopicPartition, int] = field(default_factory=dict, repr=False)

    @property
    def lookback_s(self) -> float:
        """The look-back window in s."""
        return self.settings.live_lookback_h * 3600.0

    async def run(self) -> None:
        """Follow until cancelled; broker errors are logged and the consumer restarted."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the worker must outlive a broker hiccup
                self.errors += 1
                log.warning("sleepstream live: follower error (%s: %s); reconnecting in "
                            "%.0f s", type(err).__name__, err, self.retry_s)
                await asyncio.sleep(self.retry_s)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap, group_id=None,
            enable_auto_commit=False, client_id="sleepstream-live",
            auto_offset_reset="earliest", **self.settings.kafka_client_options())
        await consumer.start()
        try:
            kinds = await self._assign(consumer)
            last_evict = time.monotonic()
            while True:
                # paused between polls: a caught-up consumer spins on the embedded broker
                batches = await poll_paced(consumer, wait_s=0.01, idle_s=self.poll_s,
                                           max_records=2000)
                for tp, records in batches.items():
                    kind = kinds[tp.topic]
                    for rec in records:
                        stamp = rec.timestamp / 1000.0 if rec.timestamp and \
                            rec.timestamp > 0 else None
                        self.view.apply(kind, rec.value, stamp)
                    self._positions[tp] = records[-1].offset + 1
                if time.monotonic() - last_evict > 60.0:
                    last_evict = time.monotonic()
                    self.view.evict_older_than(time.time() - self.lookback_s)
                await asyncio.sleep(0)  # let the worker's agents run between batches
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(consumer.stop())

    async def _assign(self, consumer: AIOKafkaConsumer) -> dict[str, TopicKind]:
        """Assign every partition of the three topics (waiting for them to exist)."""
        kinds = {self.settings.topic(k): k for k in _KINDS}
        warn_at = time.monotonic() + 30.0
        while True:
            parts = {name: consumer.partitions_for_topic(name) for name in kinds}
            if all(parts.values()):
                break
            if time.monotonic() > warn_at:  # once: the worker declares them at start
                warn_at = float("inf")
                missing = sorted(n for n, p in parts.items() if not p)
                log.warning("sleepstream live: still waiting for topics %s", missing)
            await consumer._client.force_metadata_update()  # noqa: SLF001
            await asyncio.sleep(0.5)
        tps = [TopicPartition(name, p) for name, ps in parts.items() for p in sorted(ps or ())]
        consumer.assign(tps)
        await self._seek(consumer, tps)
        log.info("sleepstream live: following %d partitions of %s", len(tps), sorted(kinds))
        return kinds

    async def _seek(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Resume where we stopped, else at the look-back window's first offset."""
        fresh = [tp for tp in tps if tp not in self._positions]
        for tp in tps:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        if not fresh:
            return
        since_ms = int((time.time() - self.lookback_s) * 1000)
        try:
            found = await consumer.offsets_for_times({tp: since_ms for tp in fresh})
        except Exception as err:  # brokers without timestamp lookups: read everything
            log.info("sleepstream live: offsets_for_times failed (%s); reading the topics "
                     "from their beginning", err)
            await consumer.seek_to_beginning(*fresh)
            return
        empty = [tp for tp in fresh if found.get(tp) is None]
        for tp in fresh:
            hit = found.get(tp)
            if hit is not None:
                consumer.seek(tp, hit.offset)
        if empty:  # nothing inside the window: start at the end
            await consumer.seek_to_end(*empty)
