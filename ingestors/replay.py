"""Replays: recorded nights published on Kafka as if their devices were sending them live.

Each night becomes a session start on the ``sessions`` topic, its samples in chunks on the
``samples`` topic and a session end carrying the last sequence number of every source
(:func:`plan_night`). The samples are exactly those the training features see for the same
night (:mod:`ingestors._replay_nights`), at their original float64 times, so the worker's
feature rows equal the batch rows. :func:`replay` sends many nights at once, merged by event
time and optionally paced by the wall clock::

    nights = sleep_accel_nights("sleep-accel-walch-cropped/cropped")
    report = run_replay(nights, StreamSettings(), speed=60.0)  # one hour per minute
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.progress import Progress

from ingestors._replay_nights import (
    ReplayNight,
    ReplayStream,
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
from stream.schemas.session import SessionEvent
from stream.settings import StreamSettings

__all__ = [
    "DEFAULT_MAX_SAMPLES", "DEFAULT_SPANS", "Anchor", "ChunkSlot", "NightPlan",
    "PlannedMessage", "ReplayError", "ReplayNight", "ReplayProducer", "ReplayReport",
    "ReplayStream", "beat_symbols", "plan_night", "replay", "run_replay", "sleep_accel_night",
    "sleep_accel_nights", "slpdb_night", "slpdb_nights",
]

#: Producer batching delay in ms: a few ms gather the chunks of many nights per request
#: without delaying a real-time replay noticeably.
LINGER_MS = 10
_PRUNE_AT = 1000  # outstanding sends per night before finished ones are checked


class ReplayProducer(Protocol):
    """What :func:`replay` needs of a started producer (``aiokafka.AIOKafkaProducer``)."""

    async def send(self, topic: str, value: bytes | None = None,
                   key: bytes | None = None) -> Awaitable[Any]:
        """Queue a message; the returned awaitable completes once the broker has it."""

    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None) -> Any:
        """Send a message and wait for the broker's acknowledgement."""

    async def flush(self) -> None:
        """Wait until every queued message is delivered."""


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
    """

    nights: int
    chunks: int
    samples: int
    messages: int
    event_s: float
    wall_s: float
    session_ids: tuple[str, ...]

    @property
    def x_real_time(self) -> float:
        """Night-seconds replayed per wall-clock second (sums over parallel nights)."""
        return self.event_s / self.wall_s if self.wall_s > 0 else math.inf

    def summary(self) -> str:
        """One line for a terminal."""
        return (f"replayed {self.nights} nights: {self.chunks} chunks, {self.samples} samples, "
                f"{self.messages} messages, {self.event_s / 3600:.2f} h of nights in "
                f"{self.wall_s:.1f} s ({self.x_real_time:.1f}x real time)")


class _Sender:
    """Sends the messages of many plans, keeping each night's order across the two topics."""

    def __init__(self, producer: ReplayProducer, settings: StreamSettings,
                 progress: Progress, tasks: tuple[Any, Any]) -> None:
        self.producer = producer
        self.topics = {name: settings.topic(name) for name in ("sessions", "samples")}
        self.progress, self.tasks = progress, tasks
        self.pending: dict[str, list[Awaitable[Any]]] = {}
        self.chunks = self.messages = 0

    def _error(self, plan: NightPlan, topic: str, err: BaseException) -> ReplayError:
        night = plan.night
        return ReplayError(f"replay of subject {night.subject_id!r} (session "
                           f"{night.session_id}) failed on topic {self.topics[topic]!r}: "
                           f"{type(err).__name__}: {err}")

    async def send(self, plan: NightPlan, msg: PlannedMessage) -> None:
        """Send one message; a session end waits for the night's chunks to be delivered."""
        session = plan.night.session_id
        payload = msg.payload
        is_end = isinstance(payload, SessionEvent) and payload.event == "end"
        value = payload.model_dump_json().encode()
        key = plan.night.subject_id.encode()
        topic = self.topics[msg.topic]
        try:
            if msg.topic == "samples":
                fut = await self.producer.send(topic, value=value, key=key)
                self._keep(session, fut)
                self.chunks += 1
                self.progress.advance(self.tasks[0])
            else:
                if is_end:
                    await self._delivered(plan)
                await self.producer.send_and_wait(topic, value=value, key=key)
                if is_end:
                    self.progress.advance(self.tasks[1])
        except ReplayError:
            raise
        except Exception as err:
            raise self._error(plan, msg.topic, err) from err
        self.messages += 1

    def _keep(self, session: str, fut: Awaitable[Any]) -> None:
        waiting = self.pending.setdefault(session, [])
        waiting.append(fut)
        if len(waiting) >= _PRUNE_AT:
            self.pending[session] = [f for f in waiting if not _done(f)]

    async def _delivered(self, plan: NightPlan) -> None:
        waiting = self.pending.pop(plan.night.session_id, [])
        try:
            await asyncio.gather(*waiting)
        except Exception as err:
            raise self._error(plan, "samples", err) from err


def _done(fut: Awaitable[Any]) -> bool:
    """True for a finished send; raises its error if it failed."""
    if isinstance(fut, asyncio.Future) and fut.done():
        fut.result()
        return True
    return False


def _timed(index: int, plan: NightPlan) -> Iterator[tuple[float, int, int, NightPlan,
                                                           PlannedMessage]]:
    """The plan's messages with their merge key: send time, then night, then position."""
    for n, msg in enumerate(plan.messages()):
        yield msg.send_s, index, n, plan, msg


async def _send_merged(sender: _Sender, plans: Sequence[NightPlan], speed: float | None) -> None:
    """Send the plans' messages merged by send time, paced by the wall clock if ``speed``."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    streams = [_timed(i, plan) for i, plan in enumerate(plans)]
    for send_s, _, _, plan, msg in heapq.merge(*streams, key=lambda e: e[:3]):
        if speed is not None:
            delay = t0 + send_s / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await sender.send(plan, msg)


def _check_speed(speed: float | None) -> None:
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float)
                              or not math.isfinite(speed) or speed <= 0):
        msg = (f"`speed` must be None (as fast as possible) or a factor > 0 (1 = real time); "
               f"got {speed!r}")
        raise ValueError(msg)


async def _kafka_producer(settings: StreamSettings, stack: AsyncExitStack) -> ReplayProducer:
    """Start an idempotent aiokafka producer, stopped when ``stack`` closes."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=LINGER_MS,
                                **settings.kafka_client_options())
    try:
        await producer.start()
    except Exception as err:
        await producer.stop()
        msg = (f"cannot start a Kafka producer for {settings.bootstrap}: {err}. Start the "
               "broker or point SLEEPSTREAM_BROKER at it.")
        raise ReplayError(msg) from err
    stack.push_async_callback(producer.stop)
    return producer


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
    producer: ReplayProducer | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> ReplayReport:
    """Publish nights on the ``sessions`` and ``samples`` topics as live devices would.

    Each night's session start is sent and acknowledged before its first chunk, and its
    end is sent once all its chunks are acknowledged. Message keys are the subject ids.

    Parameters
    ----------
    nights : iterable of ReplayNight
        What to replay (:func:`sleep_accel_nights`, :func:`slpdb_nights`).
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
    producer : ReplayProducer, optional
        A started producer to use (and leave running); default a new idempotent
        ``AIOKafkaProducer`` (``acks="all"``) on ``settings.bootstrap``, stopped at the end.
    max_samples : int
        Most samples per chunk.

    Returns
    -------
    ReplayReport

    Raises
    ------
    ReplayError
        If the broker cannot be reached or a send fails (naming subject, session, topic).
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
    async with AsyncExitStack() as stack:
        if producer is None:
            producer = await _kafka_producer(settings, stack)
        bar = stack.enter_context(Progress(disable=not progress, transient=False))
        tasks = (bar.add_task("chunks", total=sum(p.n_chunks for p in plans)),
                 bar.add_task("nights", total=len(plans)))
        sender = _Sender(producer, settings, bar, tasks)
        groups = [plans] if parallel else [[p] for p in plans]
        for group in groups:
            if not parallel and anchor == "now":
                group = [plan_night(group[0].night, now=datetime.now(UTC), **options)]
            await _send_merged(sender, group, speed)
        await producer.flush()
    return ReplayReport(
        len(plans), sender.chunks, sum(p.n_samples for p in plans), sender.messages,
        sum(p.end_s for p in plans), time.perf_counter() - started,
        tuple(n.session_id for n in nights),
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

    The arguments are those of :func:`replay`, less ``producer`` (a producer is bound to
    the event loop it was started in, so this one makes its own).
    """
    return asyncio.run(replay(
        nights, settings, speed=speed, anchor=anchor, spans=spans, live=live,
        parallel=parallel, progress=progress, max_samples=max_samples,
    ))

