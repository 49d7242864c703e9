"""Replays: recorded nights published on Kafka as if their devices were sending them live.

Each night becomes a session start on the ``sessions`` topic, its samples in chunks on the
``samples`` topic and a session end carrying the last sequence number of every source
(:func:`plan_night`). The samples are exactly those the training features see for the same
night (:mod:`ingestors._replay_nights`), at their original float64 times, so the worker's
feature rows equal the batch rows. :func:`replay` sends many nights at once, merged by event
time and optionally paced by the wall clock::

    nights = sleep_accel_nights("sleep-accel-walch-cropped/cropped")
    report = run_replay(nights, StreamSettings(), speed=60.0)  # one hour per minute

PSG recordings (:func:`psg_nights`, :mod:`ingestors.psg_replay`) send their EEG channels as
compact chunks of the recorded samples, one source per channel.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from rich.progress import Progress, TaskID

from ingestors._replay_nights import (
    RegularStream,
    ReplayNight,
    ReplayStream,
    UnsentChannel,
    beat_symbols,
    sleep_accel_night,
    sleep_accel_nights,
    slpdb_night,
    slpdb_nights,
)
from ingestors._replay_plan import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_SPANS,
    Anchor,
    ChunkSlot,
    NightPlan,
    PlannedMessage,
    plan_night,
)
from ingestors.base import (
    MemoryOutbox,
    OutboxSender,
    Producer,
    ProducerFactory,
    SendError,
    SendStatus,
    SessionSender,
    Stored,
    Topics,
)
from ingestors.base import producer_factory as _kafka_factory
from ingestors.psg_replay import PsgPair, describe_night, pair_recordings, psg_night, psg_nights
from stream.schemas.samples import SampleChunk
from stream.settings import StreamSettings

__all__ = [
    "DEFAULT_MAX_SAMPLES", "DEFAULT_SPANS", "Anchor", "ChunkSlot", "NightPlan",
    "PlannedMessage", "PsgPair", "RegularStream", "ReplayError", "ReplayNight", "ReplayReport",
    "ReplayStream", "UnsentChannel", "beat_symbols", "describe_night", "pair_recordings",
    "plan_night", "psg_night", "psg_nights", "replay", "run_replay", "sleep_accel_night",
    "sleep_accel_nights", "slpdb_night", "slpdb_nights",
]

#: Most messages a replay keeps waiting for the broker: beyond, reading the nights waits
#: (a few MB; the files are the durable copy, so nothing needs to pile up in memory).
QUEUE_ROWS: Final = 5000


class ReplayError(RuntimeError):
    """Sending a replay failed; the message names the subject, session and topic."""


@dataclass(frozen=True)
class ReplayReport:
    """What a replay sent.

    Attributes
    ----------
    nights, chunks, samples, messages : int
        Nights, sample chunks, samples and messages (chunks plus two per night) sent.
    event_s : float
        Event time replayed in s, summed over the nights.
    wall_s : float
        Wall-clock duration of the replay in s.
    session_ids : tuple of str
        The sessions sent, in input order.
    send : SendStatus
        What the sender did (failures while the broker was unreachable, re-sends).
    """

    nights: int
    chunks: int
    samples: int
    messages: int
    event_s: float
    wall_s: float
    session_ids: tuple[str, ...]
    send: SendStatus = field(default_factory=SendStatus)

    @property
    def x_real_time(self) -> float:
        """Night-seconds replayed per wall-clock second (sums over parallel nights)."""
        return self.event_s / self.wall_s if self.wall_s > 0 else math.inf

    def summary(self) -> str:
        """One line for a terminal."""
        return (f"replayed {self.nights} nights: {self.chunks} chunks, {self.samples} samples, "
                f"{self.messages} messages, {self.event_s / 3600:.2f} h of nights in "
                f"{self.wall_s:.1f} s ({self.x_real_time:.1f}x real time)")


class _Progress:
    """The progress bar: chunks and nights acknowledged by the broker."""

    def __init__(self, bar: Progress, plans: Sequence[NightPlan]) -> None:
        self.bar = bar
        self.chunks_task: TaskID = bar.add_task("chunks", total=sum(p.n_chunks for p in plans))
        self.nights_task: TaskID = bar.add_task("nights", total=len(plans))
        self.events: Counter[str] = Counter()
        self.chunks = 0

    def acked(self, rows: Sequence[Stored]) -> None:
        chunks = sum(1 for s in rows if not s.row.barrier)
        self.chunks += chunks
        self.bar.advance(self.chunks_task, chunks)
        for stored in rows:
            if stored.row.barrier:
                self.events[stored.row.session_id] += 1
                if self.events[stored.row.session_id] == 2:  # its start, then its end
                    self.bar.advance(self.nights_task)


def _timed(index: int, plan: NightPlan) -> Iterator[tuple[float, int, int, NightPlan,
                                                           PlannedMessage]]:
    """The plan's messages with their merge key: send time, then night, then position."""
    for n, msg in enumerate(plan.messages()):
        yield msg.send_s, index, n, plan, msg


async def _room(outbox: MemoryOutbox, drain: asyncio.Task[None]) -> None:
    """Wait until the outbox has room; raise the sender's error if it stopped."""
    room = asyncio.ensure_future(outbox.room(QUEUE_ROWS))
    try:
        await asyncio.wait({room, drain}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        room.cancel()
    if drain.done():
        drain.result()


async def _send_merged(outbox: MemoryOutbox, topics: Topics, plans: Sequence[NightPlan],
                       speed: float | None, drain: asyncio.Task[None]) -> None:
    """Hand the plans' messages to the outbox merged by send time, paced if ``speed``."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    senders = [SessionSender(plan.info, outbox, topics) for plan in plans]
    streams = [_timed(i, plan) for i, plan in enumerate(plans)]
    for send_s, index, _, _, msg in heapq.merge(*streams, key=lambda e: e[:3]):
        if speed is not None:
            delay = t0 + send_s / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        if outbox.rows >= QUEUE_ROWS:
            await _room(outbox, drain)
        sender, payload = senders[index], msg.payload
        if isinstance(payload, SampleChunk):
            sender.put([payload])
        elif payload.event == "start":
            sender.start()
        else:
            sender.end(payload.t_utc)


def _check_speed(speed: float | None) -> None:
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float)
                              or not math.isfinite(speed) or speed <= 0):
        msg = (f"`speed` must be None (as fast as possible) or a factor > 0 (1 = real time); "
               f"got {speed!r}")
        raise ValueError(msg)


async def _first_producer(factory: ProducerFactory, settings: StreamSettings) -> Producer:
    """A started producer; a replay that cannot reach the broker at all fails at once."""
    try:
        return await factory()
    except Exception as err:
        msg = (f"cannot start a Kafka producer for {settings.bootstrap}: {err}. Start the "
               "broker or point SLEEPSTREAM_BROKER at it.")
        raise ReplayError(msg) from err


async def replay(
    nights: Iterable[ReplayNight],
    settings: StreamSettings | None = None,
    *,
    speed: float | None = None,
    anchor: Anchor = "now",
    spans: Mapping[str, float] | None = None,
    live: bool | None = None,
    parallel: bool = True,
    progress: bool = True,
    producer_factory: ProducerFactory | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> ReplayReport:
    """Publish nights on the ``sessions`` and ``samples`` topics as live devices would.

    Each night's session start is sent and acknowledged before its first chunk, and its
    end is sent once all its chunks are acknowledged. Message keys are the subject ids.
    The messages go through an in-memory outbox (:class:`~ingestors.base.MemoryOutbox`)
    and its sender: while the broker is unreachable the replay waits (reading at most
    :data:`QUEUE_ROWS` messages ahead) and sends everything in order once it is back.

    Parameters
    ----------
    nights : iterable of ReplayNight
        What to replay (:func:`sleep_accel_nights`, :func:`slpdb_nights`, :func:`psg_nights`).
    settings : StreamSettings, optional
        Broker and topic names; default read from the environment (``SLEEPSTREAM_*``).
    speed : float, optional
        None: as fast as possible; 1.0: real time; N: N times real time.
    anchor : {"now", "original"}
        Session starts at the replay's start (whole seconds) or as recorded; see
        :func:`plan_night`.
    spans : mapping of str to float, optional
        Chunk span in s per modality (default :data:`DEFAULT_SPANS`).
    live : bool, optional
        The sessions' ``live`` flag; default True only for ``speed=1`` at ``anchor="now"``.
    parallel : bool
        True: all nights start together, merged by event time; False: one after another
        (with ``anchor="now"`` each starts when its turn comes).
    progress : bool
        Show a progress bar (chunks sent, nights finished).
    producer_factory : ProducerFactory, optional
        Makes and starts a producer (again after each failure); default idempotent
        ``AIOKafkaProducer`` s (``acks="all"``) on ``settings.bootstrap``.
    max_samples : int
        Most samples per chunk.

    Returns
    -------
    ReplayReport

    Raises
    ------
    ReplayError
        If the broker cannot be reached at the start, or a send fails in a way no retry
        mends (naming subject, session and topic).
    ValueError
        For a bad ``speed``, ``anchor``, ``spans`` or ``max_samples``.
    """
    _check_speed(speed)
    settings = settings if settings is not None else StreamSettings()
    nights = tuple(nights)
    now = datetime.now(UTC)
    options: dict[str, Any] = {"anchor": anchor, "spans": spans, "speed": speed,
                               "live": live, "max_samples": max_samples}
    plans = [plan_night(night, now=now, **options) for night in nights]
    started = time.perf_counter()
    factory = producer_factory if producer_factory is not None else \
        _kafka_factory(settings)
    first = await _first_producer(factory, settings)
    outbox, topics = MemoryOutbox(), Topics.of(settings)
    with Progress(disable=not progress, transient=False) as bar:
        shown = _Progress(bar, plans)
        sender = OutboxSender(outbox, factory, label="replay", window=settings.send_window,
                              timeout_s=settings.send_timeout_s,
                              retry_max_s=settings.send_retry_max_s, producer=first,
                              on_acked=shown.acked)
        drain = asyncio.create_task(sender.run())
        try:
            groups = [plans] if parallel else [[p] for p in plans]
            for group in groups:
                if not parallel and anchor == "now":
                    group = [plan_night(group[0].night, now=datetime.now(UTC), **options)]
                await _send_merged(outbox, topics, group, speed, drain)
            outbox.seal()
            await drain
        except SendError as err:
            raise ReplayError(str(err)) from err
        finally:
            drain.cancel()
            await asyncio.wait({drain})
    return ReplayReport(
        len(plans), shown.chunks, sum(p.n_samples for p in plans), sender.status.acked,
        sum(p.end_s for p in plans), time.perf_counter() - started,
        tuple(n.session_id for n in nights), sender.status,
    )


def run_replay(
    nights: Iterable[ReplayNight],
    settings: StreamSettings | None = None,
    *,
    speed: float | None = None,
    anchor: Anchor = "now",
    spans: Mapping[str, float] | None = None,
    live: bool | None = None,
    parallel: bool = True,
    progress: bool = True,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> ReplayReport:
    """Run :func:`replay` to completion in a new event loop (for scripts and the CLI).

    The arguments are those of :func:`replay`, less ``producer_factory`` (a producer is
    bound to the event loop it was started in, so this one makes its own).
    """
    return asyncio.run(replay(
        nights, settings, speed=speed, anchor=anchor, spans=spans, live=live,
        parallel=parallel, progress=progress, max_samples=max_samples,
    ))

