"""Read what the stream produced: stage events and night summaries, de-duplicated by id.

:class:`OutputCollector` follows the ``stages`` and ``summaries`` topics from their
beginning with a plain consumer (no group, nothing committed). Stage events are keyed by
:attr:`~stream.schemas.StageEvent.event_id`; a re-delivered event (after a crash) lands on
the same key, and :attr:`OutputCollector.conflicts` counts re-deliveries whose stage or
probabilities differ from the first copy, which must never happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.codecs import DecodeFailure, decode
from stream.polling import poll_paced
from stream.schemas import DeadLetter, NightSummary, StageEvent
from stream.settings import StreamSettings

__all__ = ["OutputCollector", "same_event"]


def same_event(a: StageEvent, b: StageEvent, atol: float = 1e-6) -> bool:
    """Whether two copies of an event agree on everything but the wall-clock fields."""
    return (
        a.event_id == b.event_id and a.stage == b.stage and a.model_name == b.model_name
        and a.model_version == b.model_version and a.valid == b.valid
        and a.epoch_index == b.epoch_index and a.inputs == b.inputs
        and all(abs(a.probabilities[k] - b.probabilities[k]) <= atol for k in a.probabilities)
    )


@dataclass
class OutputCollector:
    """Everything on the output topics, de-duplicated.

    Attributes
    ----------
    events : dict
        ``(subject_id, session_id, kind) -> {epoch_index: StageEvent}`` (first copy kept).
    summaries : dict
        ``(subject_id, session_id, kind) -> NightSummary`` (latest kept).
    messages, duplicates, conflicts : int
        Stage-event messages read, re-deliveries of an id already seen, and re-deliveries
        that disagree with the first copy.
    received_at : dict
        ``event_id -> time.time()`` when the first copy was read (latency measurements).
    """

    settings: StreamSettings
    dead_letters: bool = False
    wait_topics_s: float = 60.0
    events: dict[tuple[str, str, str], dict[int, StageEvent]] = field(default_factory=dict)
    summaries: dict[tuple[str, str, str], NightSummary] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    received_at: dict[str, float] = field(default_factory=dict)
    messages: int = 0
    duplicates: int = 0
    conflicts: int = 0
    undecodable: int = 0
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        """Connect and seek every partition of the output topics to its beginning."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                    enable_auto_commit=False, group_id=None,
                                    **self.settings.kafka_client_options())
        await consumer.start()
        names = [self.settings.topic("stages"), self.settings.topic("summaries")]
        if self.dead_letters:
            names.append(self.settings.topic("deadletter"))
        tps = []
        for name in names:
            parts = None
            deadline = time.monotonic() + self.wait_topics_s
            while time.monotonic() < deadline:  # the topics appear when the worker starts
                parts = consumer.partitions_for_topic(name)
                if parts:
                    break
                await consumer._client.force_metadata_update()  # noqa: SLF001
                await asyncio.sleep(0.2)
            if not parts:
                await consumer.stop()
                msg = (f"topic {name!r} does not exist on {self.settings.bootstrap} after "
                       f"{self.wait_topics_s:.0f} s; is the worker running with the same "
                       "SLEEPSTREAM_TOPIC_PREFIX?")
                raise RuntimeError(msg)
            tps += [TopicPartition(name, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer

    async def stop(self) -> None:
        """Disconnect."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def poll(self, timeout_s: float = 0.2) -> int:
        """Read what is there now; returns the number of messages read.

        Waits at most ``timeout_s`` for records, then, if none came, rests 50 ms with the
        partitions paused (:func:`~stream.polling.poll_paced`: a caught-up consumer would
        otherwise spin on the embedded broker). A record is seen at most ~50 ms late.
        """
        assert self._consumer is not None, "call start() first"
        batches = await poll_paced(self._consumer, wait_s=min(timeout_s, 0.005),
                                   idle_s=min(timeout_s, 0.05), max_records=20_000)
        n = 0
        now = time.time()
        stages = self.settings.topic("stages")
        summaries = self.settings.topic("summaries")
        for tp, records in batches.items():
            for rec in records:
                n += 1
                if tp.topic == stages:
                    self._on_event(rec.value, now)
                elif tp.topic == summaries:
                    s = decode(rec.value, NightSummary)
                    if isinstance(s, DecodeFailure):
                        self.undecodable += 1
                    else:
                        self.summaries[(s.subject_id, s.session_id, s.kind)] = s
                else:
                    d = decode(rec.value, DeadLetter)
                    if isinstance(d, DecodeFailure):
                        self.undecodable += 1
                    else:
                        self.dead.append(d)
        return n

    def _on_event(self, raw: bytes | None, now: float) -> None:
        ev = decode(raw, StageEvent)
        if isinstance(ev, DecodeFailure):
            self.undecodable += 1
            return
        self.messages += 1
        night = self.events.setdefault((ev.subject_id, ev.session_id, ev.kind), {})
        first = night.get(ev.epoch_index)
        if first is None:
            night[ev.epoch_index] = ev
            self.received_at[ev.event_id] = now
            return
        self.duplicates += 1
        if not same_event(first, ev):
            self.conflicts += 1

    def complete(self, expected: Mapping[tuple[str, str], int]) -> bool:
        """Whether every ``(subject, session)`` has its summary and all its events.

        ``expected`` maps ``(subject, session)`` to the night's number of epochs.
        """
        for (subject, session), n in expected.items():
            for kind in ("causal", "offline"):
                if len(self.events.get((subject, session, kind), ())) < n:
                    return False
            if (subject, session, "offline") not in self.summaries:
                return False
        return True

    async def wait_complete(self, expected: Mapping[tuple[str, str], int], timeout_s: float,
                            settle_s: float = 0.0) -> bool:
        """Poll until :meth:`complete` (then ``settle_s`` more, to catch late copies)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.poll()
            if self.complete(expected):
                end = time.monotonic() + settle_s
                while time.monotonic() < end:
                    await self.poll()
                return True
        return False
