"""A growing EDF/EDF+ file published on Kafka as a live session.

:func:`ingest_edf_live` follows the file (:class:`~ingestors.live_edf.reader.EdfFollower`)
and sends what it reads through the ingestor base (:mod:`ingestors.base`), as the replay
and BLE ingestors send a night: a session start on the ``sessions`` topic, the samples in
chunks on the ``samples`` topic (``t0_utc`` = the session start, ``offsets_s`` = sample
times, source ``<session_id>-<modality>``, ``seq`` from 0 per source) and a session end
carrying the last ``seq`` of every source. Message keys are the subject id.

* **Which channels.** :func:`~ingestors.live_edf.channels.choose_channels`: EEG ->
  ``psg``, each EEG channel its own source of compact chunks (the file's digital samples
  with the channel's calibration to uV, placed by sample index; EOG, EMG, ECG and the rest
  reported, not sent); ECG -> ``cardio`` with RR intervals from the causal R-peak detector
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
* **Chunks.** The streams are cut on the replay's grid
  (:data:`~ingestors.base.grid.DEFAULT_SPANS` seconds of event time from the session
  start, at most ``max_samples`` samples per chunk; EEG by sample index); a cell becomes
  chunks once the data read are past its end (for RR intervals: once the detector can
  report no earlier beat).
  So the chunks and their ``seq`` depend only on the file, not on when it was polled.
* **Broker outages and restarts.** Chunks go to the session's spool
  (:func:`~ingestors.base.live.live_outlet`) before they are sent; the file is followed
  on while the broker is unreachable, and the backlog is sent in order once it is back. A
  restarted ingestor (same subject and session) resumes the spooled session: it reads the
  file again from its start, cuts the same chunks, skips those the spool already took and
  goes on from there.
* **Nothing made up.** Values are sent as recorded (converted to the modality's unit); a
  gap in the file is a gap in the stream.
* **The end.** The session ends when the file has not grown for ``idle_s`` seconds, or
  when ``stop`` is set (the CLI sets it on SIGINT/SIGTERM); the records completed by then
  are sent first, then the ingestor waits until the broker has everything. A file that
  shrinks or is replaced ends the session and raises
  :class:`~ingestors.errors.DataFormatError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.live import Live
from rich.text import Text

from ingestors._signals import run_until_signal
from ingestors.base import (
    DEFAULT_MAX_SAMPLES,
    LiveOutlet,
    LiveSession,
    ProducerFactory,
    SendStatus,
    SessionInfo,
    live_outlet,
)
from ingestors.edf import as_timezone
from ingestors.errors import DataFormatError
from ingestors.live_edf.channels import ChannelPlan, Scaled, choose_channels
from ingestors.live_edf.reader import LIVE_ALIASES, EdfFollower, SignalBlock
from ingestors.live_edf.rpeaks import RPeakDetector
from ingestors.psg_channels import eeg_samples
from stream.schemas.session import Modality, SessionEvent
from stream.settings import StreamSettings

__all__ = ["EdfLiveReport", "EdfLiveStatus", "ingest_edf_live", "run_edf_live"]

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]


@dataclass
class EdfLiveStatus:
    """Live counters of one EDF session (shown while it runs, returned at the end).

    Attributes
    ----------
    records : int
        Data records read.
    samples, chunks : int
        Samples and chunks spooled for sending by this run (an acceleration sample is one
        x, y, z triple; a resumed session skips those spooled before).
    beats : int
        R peaks detected (cardio sessions).
    idle_s : float
        Seconds since the file last grew.
    ended : str
        Why the session ended: ``"idle"``, ``"stopped"``, ``"error"``, or ``"before"``
        (it had ended in an earlier run; only its spool was sent); empty while it runs.
    """

    records: int = 0
    samples: int = 0
    chunks: int = 0
    beats: int = 0
    idle_s: float = 0.0
    ended: str = ""

    def line(self, family: str, record_s: float, outlet: str) -> Text:
        """One status line for the terminal; ``outlet`` is the broker state and backlog."""
        state = f"[yellow]ended ({self.ended})" if self.ended else "[green]following"
        text = (f"{state}[/] | {family} | records {self.records} "
                f"({self.records * record_s:.0f} s) | chunks {self.chunks} "
                f"({self.samples} samples)")
        if family == "cardio":
            text += f" | beats {self.beats}"
        return Text.from_markup(f"{text} | idle {self.idle_s:.0f} s | {outlet}")


@dataclass(frozen=True)
class EdfLiveReport:
    """What a live EDF session sent.

    Attributes
    ----------
    subject_id, session_id : str
        Who and which session.
    family : str
        ``wearable``, ``cardio`` or ``psg``.
    modalities : tuple of str
        The streams sent.
    channels : tuple of str
        The EEG channels sent (psg).
    unsent : tuple of str
        Channels of the file not sent, with the reason.
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
    send : SendStatus
        What the sender did (acknowledged, re-sent, failures, largest backlog).
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
    send: SendStatus
    channels: tuple[str, ...] = ()
    unsent: tuple[str, ...] = ()

    def summary(self) -> str:
        """A line for a terminal, and one per channel not sent."""
        s = self.status
        beats = f", {s.beats} beats" if self.family == "cardio" else ""
        sent = ", ".join(self.channels or self.modalities)
        return "\n".join([
            f"session {self.session_id} ({self.family}: {sent}): {s.records} records "
            f"({self.duration_s:.0f} s), {s.chunks} chunks, {s.samples} samples{beats}; "
            f"ended: {s.ended}", *(f"  not sent: {u}" for u in self.unsent)])


class _Streams:
    """The modalities' samples from the file's blocks, and how far each stream is complete."""

    def __init__(self, plan: ChannelPlan, follower: EdfFollower, status: EdfLiveStatus) -> None:
        self.plan, self.follower, self.status = plan, follower, status
        self.detector = None if plan.ecg is None else RPeakDetector(plan.ecg.signal.sfreq_hz)
        self.last_beat_s: float | None = None
        self.wide = follower.file_type.startswith("BDF")

    def add(self, session: LiveSession, blocks: Mapping[int, SignalBlock]) -> None:
        """Convert one poll's blocks and add them to the session's streams."""
        plan = self.plan
        for eeg in plan.eeg:  # the recorded samples, placed by their index in the file
            b, sig = blocks[eeg.signal.index], eeg.signal
            raw = eeg_samples(self.follower.path, sig.label, b.values, sig.bitvalue,
                              sig.offset, wide=self.wide)
            session.add_regular(eeg.label, round(float(b.t_s[0]) * sig.sfreq_hz), raw)
        if plan.heart_rate is not None:
            b = blocks[plan.heart_rate.signal.index]
            session.add("heart_rate", b.t_s, b.values * plan.heart_rate.factor)
        if plan.acceleration:
            axes = [blocks[a.signal.index] for a in plan.acceleration]
            xyz = np.column_stack([b.values * a.factor
                                   for b, a in zip(axes, plan.acceleration, strict=True)])
            session.add("acceleration", axes[0].t_s, xyz)
        if plan.ecg is not None and self.detector is not None:
            t, rr = self._intervals(blocks[plan.ecg.signal.index].values * plan.ecg.factor)
            session.add("rr", t, rr)

    def _intervals(self, ecg_mv: F64) -> tuple[F64, F64]:
        """RR intervals (s) stamped with the beat that ends each, from the next ECG."""
        assert self.detector is not None
        beats = self.detector.process(ecg_mv)
        self.status.beats += int(beats.size)
        t = beats.astype(np.float64) / self.detector.fs
        if t.size == 0:  # a record without a beat: nothing to add
            return t, t
        prev = np.concatenate([[self.last_beat_s if self.last_beat_s is not None
                                else math.nan], t[:-1]])
        self.last_beat_s = float(t[-1])
        keep = np.isfinite(prev)  # the first beat ends no interval
        return t[keep], (t - prev)[keep]

    def watermarks(self) -> dict[Modality, float]:
        """Per stream, the earliest time a sample still to be read may have."""
        plan, n = self.plan, self.follower.records_read
        out: dict[Modality, float] = {}
        channels: tuple[tuple[Modality, Scaled | None], ...] = (
            ("heart_rate", plan.heart_rate),
            ("acceleration", plan.acceleration[0] if plan.acceleration else None))
        for modality, channel in channels:
            if channel is not None:  # the next sample's time, computed as the reader does
                sig = channel.signal
                out[modality] = n * sig.samples_per_record / sig.sfreq_hz
        if self.detector is not None:
            out["rr"] = self.detector.settled() / self.detector.fs
        return out


def _check_options(poll_s: float, idle_s: float) -> None:
    for name, value in (("poll_s", poll_s), ("idle_s", idle_s)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            msg = f"`{name}` must be a number of seconds > 0; got {value!r}"
            raise ValueError(msg)


def _live_default(follower: EdfFollower, start: datetime, settings: StreamSettings) -> bool:
    """Live when the data on disk end within the grace period of the wall clock."""
    on_disk = start + timedelta(seconds=follower.records_on_disk() * follower.record_s)
    lag_s = (datetime.now(UTC) - on_disk).total_seconds()
    live = abs(lag_s) <= settings.grace_s
    if not live:
        log.warning("live EDF %s: the data on disk end %.0f s %s the wall clock (more than "
                    "the %.0f-s grace period): sending live=False, so epochs close on the "
                    "samples' own times", follower.path, abs(lag_s),
                    "before" if lag_s > 0 else "after", settings.grace_s)
    return live


@dataclass
class _Following:
    """One run of a live EDF session: the file, its channels, the outlet, the counters."""

    follower: EdfFollower
    plan: ChannelPlan
    info: SessionInfo
    outlet: LiveOutlet
    status: EdfLiveStatus
    show: Callable[[], None]

    async def run(self, stop: asyncio.Event, poll_s: float, idle_s: float,
                  clock: Callable[[], float], max_samples: int) -> dict[str, int]:
        """Follow the file into the session, end it, wait until the broker has it all."""
        info, follower, status = self.info, self.follower, self.status
        if self.outlet.ended_before:
            log.warning("live EDF session %s of %r had ended in an earlier run; sending what "
                        "its spool holds, nothing more is read (use another session id to "
                        "stream the file again)", info.session_id, info.subject_id)
            status.ended = "before"
            await self.finish()
            return {}
        sender = self.outlet.session_sender(info, regenerates=True)
        if self.outlet.resumed is not None:
            log.info("live EDF %s: resuming session %s (spooled up to %s); reading the file "
                     "again from its start, skipping the chunks spooled before",
                     follower.path, info.session_id, sender.spooled)
        session = LiveSession(sender, max_samples=max_samples,
                              regular={e.label: e.spec for e in self.plan.eeg})
        log.info("live EDF %s: session %s (%s, %s) starts %s", follower.path, info.session_id,
                 info.family, ", ".join(info.channels or info.modalities),
                 info.start.isoformat())
        for text in self.plan.unsent:
            log.info("live EDF %s: not sent: %s", follower.path, text)
        try:
            await self.follow(session, stop, poll_s, idle_s, clock)
        finally:
            if status.ended:  # idle, stopped or a damaged file: the session ends
                duration = follower.records_read * follower.record_s
                final = session.finish(info.start + timedelta(seconds=duration),
                                       {"records": follower.records_read})
                status.chunks, status.samples = sender.chunks, sender.samples
                await self.finish()
        return final

    async def follow(self, session: LiveSession, stop: asyncio.Event, poll_s: float,
                     idle_s: float, clock: Callable[[], float]) -> None:
        """Read the file as it grows until idle or stopped; sets ``status.ended``."""
        follower, status = self.follower, self.status
        streams = _Streams(self.plan, follower, status)
        last_growth = clock()
        try:
            while True:
                blocks = follower.poll()
                status.records = follower.records_read
                if blocks:
                    last_growth = clock()
                    streams.add(session, blocks)
                    session.advance(streams.watermarks(), {"records": follower.records_read})
                status.chunks, status.samples = session.sender.chunks, session.sender.samples
                status.idle_s = clock() - last_growth
                self.outlet.check()
                self.show()
                if stop.is_set() or status.idle_s >= idle_s:
                    status.ended = "stopped" if stop.is_set() else "idle"
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(poll_s, idle_s))
        except DataFormatError:
            status.ended = "error"
            raise

    async def finish(self) -> None:
        """Wait until the broker has everything, showing the backlog meanwhile."""
        finishing = asyncio.ensure_future(self.outlet.finish())
        while not finishing.done():
            await asyncio.wait({finishing}, timeout=0.25)
            self.show()
        finishing.result()


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
    eeg: Sequence[str] | None = None,
    poll_s: float = 1.0,
    idle_s: float = 60.0,
    device: str | None = None,
    live: bool | None = None,
    aliases: Mapping[str, str] = LIVE_ALIASES,
    progress: bool = True,
    producer_factory: ProducerFactory | None = None,
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
        Broker, topic names, Kafka security, spool folder and bound; default read from the
        environment.
    time_zone : str
        IANA zone of the recorder's clock (EDF stores local time without a zone).
    stop : asyncio.Event, optional
        Set it to end the session (the CLI sets it on SIGINT/SIGTERM).
    hr, ecg : str, optional
        Heart rate and ECG channel (label or canonical name); see
        :func:`~ingestors.live_edf.channels.choose_channels` for the defaults.
    acc : sequence of three str, optional
        X, Y, Z acceleration channels.
    eeg : sequence of str, optional
        EEG channels (a psg session); default, when no other channel is named, every EEG
        channel recognised by label at >= 100 Hz.
    poll_s : float
        Seconds between looks at the file size.
    idle_s : float
        The session ends once the file has not grown for this many seconds.
    device : str, optional
        The session's ``device`` text; default ``"live EDF <file name>"``.
    live : bool, optional
        The session's ``live`` flag; default True when the data on disk end within
        ``settings.grace_s`` of the wall clock at the start, else False (see above). A
        resumed session keeps the flag it was started with.
    aliases : mapping of str to str
        File label -> canonical name (:data:`~ingestors.live_edf.reader.LIVE_ALIASES`).
    progress : bool
        Show a status line (records read, chunks, beats, idle time, broker, backlog).
    producer_factory : ProducerFactory, optional
        Makes started producers; default idempotent ``AIOKafkaProducer`` s of ``settings``.
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
        For an unknown channel, a bad time zone, ids the session messages refuse, a
        ``poll_s``/``idle_s`` that is not a positive number, or a spool that holds this
        session with another identity (start, channels).
    SpoolError
        If the session's spool is used by another ingestor, damaged, or full.
    SendError
        If sending fails in a way no retry mends (a message too large, a refused
        authorization); what was not sent stays in the spool.
    """
    _check_options(poll_s, idle_s)
    zone = as_timezone(time_zone, "time_zone")
    follower = EdfFollower(path, aliases)
    plan = choose_channels(follower, hr=hr, ecg=ecg, acc=acc, eeg=eeg)
    start = follower.start.replace(tzinfo=zone).astimezone(UTC)
    device = device if device is not None else f"live EDF {Path(path).name}"[:200]
    settings = settings if settings is not None else StreamSettings()
    stop = stop if stop is not None else asyncio.Event()
    SessionEvent(event="start", subject_id=subject_id, session_id=session_id, device=device,
                 family=plan.family, modalities=plan.modalities, channels=plan.channels,
                 time_zone=time_zone, t_utc=start)  # bad ids fail before anything is opened
    async with AsyncExitStack() as stack:
        outlet = await stack.enter_async_context(live_outlet(
            settings, subject_id, session_id, "live EDF session", producer_factory))
        if outlet.resumed is not None:
            live = outlet.resumed.live
        elif live is None:
            live = _live_default(follower, start, settings)
        info = SessionInfo(subject_id, session_id, device, plan.family, plan.modalities,
                           time_zone, start, False, live, plan.channels)
        status = EdfLiveStatus()
        display = None if not progress else stack.enter_context(Live(
            status.line(plan.family, follower.record_s, outlet.text()), refresh_per_second=4,
            transient=False, redirect_stderr=False))

        def show() -> None:
            if display is not None:
                display.update(status.line(plan.family, follower.record_s, outlet.text()))

        following = _Following(follower, plan, info, outlet, status, show)
        final = await following.run(stop, poll_s, idle_s, clock, max_samples)
    return EdfLiveReport(subject_id, session_id, plan.family, plan.modalities, start, live,
                         status, final, follower.records_read * follower.record_s,
                         outlet.send, plan.channels, plan.unsent)


def run_edf_live(path: str | PathLike[str], subject_id: str, session_id: str,
                 settings: StreamSettings | None = None, **options: Any) -> EdfLiveReport:
    """Run :func:`ingest_edf_live` in a new event loop; SIGINT or SIGTERM end the session.

    The arguments are those of :func:`ingest_edf_live`, less ``stop``. A second signal
    stops waiting for the broker; what it has not acknowledged stays in the spool.
    """
    return run_until_signal(lambda stop: ingest_edf_live(path, subject_id, session_id, settings,
                                                         stop=stop, **options))
