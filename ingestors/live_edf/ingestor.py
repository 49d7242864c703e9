"""A growing EDF/EDF+ file published on Kafka as a live session.

:func:`ingest_edf_live` follows the file (:class:`~ingestors.live_edf.reader.EdfFollower`)
and sends what it reads exactly as the replay and BLE ingestors send a night: a session
start on the ``sessions`` topic, the samples in chunks on the ``samples`` topic
(``t0_utc`` = the session start, ``offsets_s`` = sample times, source
``<session_id>-<modality>``, ``seq`` from 0 per source) and a session end carrying the last
``seq`` of every source. Message keys are the subject id.

* **Which channels.** :func:`~ingestors.live_edf.channels.choose_channels`: ECG ->
  ``cardio`` with RR intervals from the causal R-peak detector
  (:mod:`ingestors.live_edf.rpeaks`), each interval stamped with the beat that ends it;
  heart rate (bpm) and/or 3-axis acceleration (g) -> ``wearable``.
* **Times.** The session starts at the header's start date and time, read in the time
  zone the user gives (EDF stores local clock time without a zone; the sub-second start of
  EDF+ is not read). Sample ``k`` of a channel is at ``k / rate`` after it.
* **Live flag.** The session is ``live`` (the worker then also closes a silent subject's
  epochs by the wall clock) when, at the start, the end of the data on disk lies within
  the worker's grace period (``settings.grace_s``) of the wall clock. Following a file
  that began long before, or a recorder whose clock is off by more than that, would let
  the wall clock close epochs before their samples arrive; such sessions are sent with
  ``live=False`` (epochs close on the samples' own times) unless ``live`` says otherwise.
* **Chunks.** Each poll sends what the newly complete data records hold, cut on a grid of
  :data:`~ingestors._replay_plan.DEFAULT_SPANS` seconds of event time (as the replay
  does) and into at most ``max_samples`` samples.
* **Nothing made up.** Values are sent as recorded (converted to the modality's unit); a
  gap in the file is a gap in the stream.
* **The end.** The session ends when the file has not grown for ``idle_s`` seconds, or
  when ``stop`` is set (the CLI sets it on SIGINT/SIGTERM); the records completed by then
  are sent first. A file that shrinks or is replaced ends the session and raises
  :class:`~ingestors.errors.DataFormatError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from rich.live import Live
from rich.text import Text

from ingestors._replay_plan import DEFAULT_MAX_SAMPLES, DEFAULT_SPANS
from ingestors._signals import run_until_signal
from ingestors.edf import as_timezone
from ingestors.errors import DataFormatError
from ingestors.live_edf.channels import ChannelPlan, choose_channels
from ingestors.live_edf.reader import LIVE_ALIASES, EdfFollower, SignalBlock
from ingestors.live_edf.rpeaks import RPeakDetector
from ingestors.replay import ReplayProducer, _kafka_producer
from stream.schemas.samples import UNITS, SampleChunk
from stream.schemas.session import Modality, SessionEvent
from stream.settings import StreamSettings

__all__ = ["EdfLiveError", "EdfLiveReport", "EdfLiveStatus", "ingest_edf_live",
           "run_edf_live"]

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]


class EdfLiveError(RuntimeError):
    """Sending a live EDF session failed; the message names subject, session and topic."""


@dataclass
class EdfLiveStatus:
    """Live counters of one EDF session (shown while it runs, returned at the end).

    Attributes
    ----------
    records : int
        Data records read.
    samples, chunks : int
        Samples and chunks sent (an acceleration sample is one x, y, z triple).
    beats : int
        R peaks detected (cardio sessions).
    idle_s : float
        Seconds since the file last grew.
    ended : str
        Why the session ended: ``"idle"``, ``"stopped"`` or ``"error"``; empty while it
        runs.
    """

    records: int = 0
    samples: int = 0
    chunks: int = 0
    beats: int = 0
    idle_s: float = 0.0
    ended: str = ""

    def line(self, family: str, record_s: float) -> Text:
        """One status line for the terminal."""
        state = f"[yellow]ended ({self.ended})" if self.ended else "[green]following"
        text = (f"{state}[/] | {family} | records {self.records} "
                f"({self.records * record_s:.0f} s) | chunks sent {self.chunks} "
                f"({self.samples} samples)")
        if family == "cardio":
            text += f" | beats {self.beats}"
        return Text.from_markup(text + f" | idle {self.idle_s:.0f} s")


@dataclass(frozen=True)
class EdfLiveReport:
    """What a live EDF session sent.

    Attributes
    ----------
    subject_id, session_id : str
        Who and which session.
    family : str
        ``wearable`` or ``cardio``.
    modalities : tuple of str
        The streams sent.
    start : datetime
        Session start (UTC).
    live : bool
        The session's ``live`` flag.
    status : EdfLiveStatus
        The final counters.
    final_seq : dict of str to int
        The session end's last ``seq`` per source.
    duration_s : float
        Event time read from the file, in s.
    """

    subject_id: str
    session_id: str
    family: str
    modalities: tuple[Modality, ...]
    start: datetime
    live: bool
    status: EdfLiveStatus
    final_seq: dict[str, int]
    duration_s: float

    def summary(self) -> str:
        """One line for a terminal."""
        s = self.status
        beats = f", {s.beats} beats" if self.family == "cardio" else ""
        return (f"session {self.session_id} ({self.family}: {', '.join(self.modalities)}): "
                f"{s.records} records ({self.duration_s:.0f} s), {s.chunks} chunks, "
                f"{s.samples} samples{beats}; ended: {s.ended}")


def _cells(t: F64, span_s: float, max_samples: int) -> list[tuple[int, int]]:
    """Index ranges of ``t`` (sorted) cut on the ``span_s`` grid and at ``max_samples``."""
    if t.size == 0:
        return []
    cell = np.floor(t / span_s)
    cuts = [0, *(np.flatnonzero(np.diff(cell)) + 1).tolist(), t.size]
    out: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        out.extend((i, min(i + max_samples, b)) for i in range(a, b, max_samples))
    return out


class _Session:
    """Sequence numbers, sends and the conversion of blocks into modality samples."""

    def __init__(self, subject_id: str, session_id: str, time_zone: str, device: str,
                 plan: ChannelPlan, start: datetime, live: bool, settings: StreamSettings,
                 producer: ReplayProducer, max_samples: int) -> None:
        self.subject_id, self.session_id, self.live = subject_id, session_id, live
        self.time_zone, self.device, self.plan, self.start = time_zone, device, plan, start
        self.producer, self.max_samples = producer, max_samples
        self.topics = {name: settings.topic(name) for name in ("sessions", "samples")}
        self.next_seq: dict[Modality, int] = dict.fromkeys(plan.modalities, 0)
        self.status = EdfLiveStatus()
        self.detector = None if plan.ecg is None else RPeakDetector(plan.ecg.signal.sfreq_hz)
        self.last_beat_s: float | None = None

    def source(self, modality: Modality) -> str:
        return f"{self.session_id}-{modality}"

    def event(self, kind: Literal["start", "end"], when: datetime,
              final_seq: dict[str, int]) -> SessionEvent:
        return SessionEvent(
            event=kind, subject_id=self.subject_id, session_id=self.session_id,
            device=self.device, family=self.plan.family, modalities=self.plan.modalities,
            time_zone=self.time_zone, t_utc=when, start_is_nominal=False, live=self.live,
            final_seq=final_seq,
        )

    def _error(self, topic: str, err: BaseException) -> EdfLiveError:
        return EdfLiveError(f"live EDF session of subject {self.subject_id!r} (session "
                            f"{self.session_id}) failed on topic {self.topics[topic]!r}: "
                            f"{type(err).__name__}: {err}")

    async def send_event(self, event: SessionEvent) -> None:
        topic = "sessions"
        try:
            await self.producer.send_and_wait(self.topics[topic],
                                              value=event.model_dump_json().encode(),
                                              key=self.subject_id.encode())
        except Exception as err:
            raise self._error(topic, err) from err

    def streams(self, blocks: Mapping[int, SignalBlock]) -> dict[Modality, tuple[F64, F64]]:
        """Times and values (acceleration: shape (n, 3)) per modality from one poll."""
        plan = self.plan
        out: dict[Modality, tuple[F64, F64]] = {}
        if plan.heart_rate is not None:
            b = blocks[plan.heart_rate.signal.index]
            out["heart_rate"] = (b.t_s, b.values * plan.heart_rate.factor)
        if plan.acceleration:
            axes = [blocks[a.signal.index] for a in plan.acceleration]
            xyz = np.column_stack([b.values * a.factor
                                   for b, a in zip(axes, plan.acceleration, strict=True)])
            out["acceleration"] = (axes[0].t_s, xyz)
        if plan.ecg is not None and self.detector is not None:
            b = blocks[plan.ecg.signal.index]
            beats = self.detector.process(b.values * plan.ecg.factor)
            self.status.beats += int(beats.size)
            t = beats.astype(np.float64) / plan.ecg.signal.sfreq_hz
            prev = np.concatenate([[self.last_beat_s if self.last_beat_s is not None
                                    else math.nan], t[:-1]])
            if t.size:
                self.last_beat_s = float(t[-1])
            keep = np.isfinite(prev)  # the first beat ends no interval
            out["rr"] = (t[keep], (t - prev)[keep])
        return out

    async def send_samples(self, blocks: Mapping[int, SignalBlock]) -> None:
        """Send one poll's samples, chunk by chunk, and wait until the broker has them."""
        pending: list[Awaitable[Any]] = []
        topic = "samples"
        try:
            for modality, (t, v) in self.streams(blocks).items():
                for i0, i1 in _cells(t, DEFAULT_SPANS[modality], self.max_samples):
                    chunk = SampleChunk(
                        subject_id=self.subject_id, session_id=self.session_id,
                        source_id=self.source(modality), seq=self.next_seq[modality],
                        modality=modality, unit=UNITS[modality], t0_utc=self.start,
                        offsets_s=tuple(t[i0:i1].tolist()),
                        values=tuple(v[i0:i1].ravel().tolist()),
                    )
                    pending.append(await self.producer.send(
                        self.topics[topic], value=chunk.model_dump_json().encode(),
                        key=self.subject_id.encode()))
                    self.next_seq[modality] += 1
                    self.status.chunks += 1
                    self.status.samples += i1 - i0
            await asyncio.gather(*pending)
        except EdfLiveError:
            raise
        except Exception as err:
            raise self._error(topic, err) from err

    def final_seq(self) -> dict[str, int]:
        return {self.source(m): n - 1 for m, n in self.next_seq.items() if n > 0}


async def ingest_edf_live(
    path: str | PathLike[str],
    subject_id: str,
    session_id: str,
    settings: StreamSettings | None = None,
    *,
    time_zone: str,
    stop: asyncio.Event | None = None,
    hr: str | None = None,
    ecg: str | None = None,
    acc: Sequence[str] | None = None,
    poll_s: float = 1.0,
    idle_s: float = 60.0,
    device: str | None = None,
    live: bool | None = None,
    aliases: Mapping[str, str] = LIVE_ALIASES,
    progress: bool = True,
    producer: ReplayProducer | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    clock: Callable[[], float] = time.monotonic,
) -> EdfLiveReport:
    """Follow a growing EDF/EDF+ file and stream it as a live session until it ends.

    Parameters
    ----------
    path : path-like
        The file being recorded.
    subject_id, session_id : str
        Message key and session (:data:`stream.schemas.base.ID_PATTERN`).
    settings : StreamSettings, optional
        Broker, topic names and Kafka security; default read from the environment.
    time_zone : str
        IANA zone of the recorder's clock (EDF stores local time without a zone).
    stop : asyncio.Event, optional
        Set it to end the session (the CLI sets it on SIGINT/SIGTERM).
    hr, ecg : str, optional
        Heart rate and ECG channel (label or canonical name); see
        :func:`~ingestors.live_edf.channels.choose_channels` for the defaults.
    acc : sequence of three str, optional
        X, Y, Z acceleration channels.
    poll_s : float
        Seconds between looks at the file size.
    idle_s : float
        The session ends once the file has not grown for this many seconds.
    device : str, optional
        The session's ``device`` text; default ``"live EDF <file name>"``.
    live : bool, optional
        The session's ``live`` flag; default True when the data on disk end within
        ``settings.grace_s`` of the wall clock at the start, else False (see above).
    aliases : mapping of str to str
        File label -> canonical name (:data:`~ingestors.live_edf.reader.LIVE_ALIASES`).
    progress : bool
        Show a status line (records read, chunks and samples sent, beats, idle time).
    producer : ReplayProducer, optional
        A started producer to use (and leave running); default a new idempotent
        ``AIOKafkaProducer`` made as the replay makes it.
    max_samples : int
        Most samples per chunk.
    clock : callable
        Monotonic seconds (for the idle time).

    Returns
    -------
    EdfLiveReport

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If the header is not EDF/EDF+ or is damaged, a channel's unit does not fit its
        modality, or the file shrinks while followed (the session is ended first).
    ValueError
        For an unknown channel, a bad time zone, ids the session messages refuse, or a
        ``poll_s``/``idle_s`` that is not a positive number.
    EdfLiveError
        If a send fails.
    ReplayError
        If no producer can be started (the replay's message: start the broker).
    """
    for name, value in (("poll_s", poll_s), ("idle_s", idle_s)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            msg = f"`{name}` must be a number of seconds > 0; got {value!r}"
            raise ValueError(msg)
    zone = as_timezone(time_zone, "time_zone")
    follower = EdfFollower(path, aliases)
    plan = choose_channels(follower, hr=hr, ecg=ecg, acc=acc)
    start = follower.start.replace(tzinfo=zone).astimezone(UTC)
    device = device if device is not None else f"live EDF {Path(path).name}"[:200]
    settings = settings if settings is not None else StreamSettings()
    stop = stop if stop is not None else asyncio.Event()
    async with AsyncExitStack() as stack:
        if live is None:
            on_disk = start + timedelta(seconds=follower.records_on_disk() * follower.record_s)
            lag_s = (datetime.now(UTC) - on_disk).total_seconds()
            live = abs(lag_s) <= settings.grace_s
            if not live:
                log.warning("live EDF %s: the data on disk end %.0f s %s the wall clock (more "
                            "than the %.0f-s grace period): sending live=False, so epochs "
                            "close on the samples' own times", follower.path, abs(lag_s),
                            "before" if lag_s > 0 else "after", settings.grace_s)
        SessionEvent(event="start", subject_id=subject_id, session_id=session_id,
                     device=device, family=plan.family, modalities=plan.modalities,
                     time_zone=time_zone, t_utc=start)  # bad ids fail before connecting
        if producer is None:
            producer = await _kafka_producer(settings, stack)
        session = _Session(subject_id, session_id, time_zone, device, plan, start, live,
                           settings, producer, max_samples)
        status = session.status
        display = None
        if progress:
            display = stack.enter_context(Live(status.line(plan.family, follower.record_s),
                                               refresh_per_second=4, transient=False,
                                               redirect_stderr=False))
        await session.send_event(session.event("start", start, {}))
        log.info("live EDF %s: session %s (%s, %s) starts %s", follower.path, session_id,
                 plan.family, ", ".join(plan.modalities), start.isoformat())
        last_growth = clock()
        try:
            while True:
                blocks = follower.poll()
                status.records = follower.records_read
                if blocks:
                    last_growth = clock()
                    await session.send_samples(blocks)
                status.idle_s = clock() - last_growth
                if display is not None:
                    display.update(status.line(plan.family, follower.record_s))
                if stop.is_set():
                    status.ended = "stopped"
                    break
                if status.idle_s >= idle_s:
                    status.ended = "idle"
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(poll_s, idle_s))
        except DataFormatError:
            status.ended = "error"
            raise
        finally:
            if status.ended:
                duration = follower.records_read * follower.record_s
                await session.send_event(session.event(
                    "end", start + timedelta(seconds=duration), session.final_seq()))
                await producer.flush()
                if display is not None:
                    display.update(status.line(plan.family, follower.record_s))
    return EdfLiveReport(subject_id, session_id, plan.family, plan.modalities, start, live,
                         status, session.final_seq(), follower.records_read * follower.record_s)


def run_edf_live(path: str | PathLike[str], subject_id: str, session_id: str,
                 settings: StreamSettings | None = None, **options: Any) -> EdfLiveReport:
    """Run :func:`ingest_edf_live` in a new event loop; SIGINT or SIGTERM end the session.

    The arguments are those of :func:`ingest_edf_live`, less ``stop`` and ``producer``.
    """
    return run_until_signal(lambda stop: ingest_edf_live(path, subject_id, session_id, settings,
                                                         stop=stop, **options))
