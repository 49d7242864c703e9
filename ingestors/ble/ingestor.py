"""A Bluetooth LE heart-rate strap or watch published on Kafka as a live session.

:func:`ingest_ble` connects to the device through bleak (:class:`~ingestors.ble.link.BleakLink`),
subscribes to the Heart Rate Measurement characteristic (0x2A37) and sends what it
receives through the ingestor base (:mod:`ingestors.base`), as the replay sends a recorded
night: a session start on the ``sessions`` topic, the samples in chunks on the ``samples``
topic (``t0_utc`` = the session start, ``offsets_s`` = sample times, source
``<session_id>-<modality>``, ``seq`` from 0 per source) and, when the user stops, a session
end carrying the last ``seq`` of every source. Message keys are the subject id.

* **Which family.** The first usable notification decides: RR intervals present (flag
  bit 4) -> ``cardio`` with modality ``rr``; else ``wearable`` with ``heart_rate``. The
  session start is spooled then. The worker rejects modalities a family does not take, so
  a cardio session sends no heart rate and a wearable one no RR intervals (both counted).
* **Times.** Heart rate is stamped with the notification's receive time; each RR interval
  with the beat that ends it, found from the receive time going backwards through the
  notification's intervals (:func:`~ingestors.ble.measurement.beat_times`), never before
  the previous beat.
* **Chunks.** The samples are cut on the replay's grid (``span_s`` seconds from the
  session start): a cell becomes a chunk once the clock has passed its end (for RR
  intervals :data:`RR_HOLD_S` later, as a notification's beats lie before its receive
  time).
* **Broker outages and restarts.** Chunks go to the session's spool before they are sent,
  so a failed send never ends the session: the strap is read on while the broker is
  unreachable, the status line shows the backlog, and it is sent in order once the broker
  is back. Started again with the same subject and session (after a crash), the ingestor
  resumes the spooled session: same start, ``seq`` numbering on.
* **Nothing made up.** A dropped link is re-established with doubling back-off; whatever
  the device measured meanwhile is missing from the stream (a gap), not filled in.
  Notifications without sensor contact (flag bits 1-2) are dropped. Values are sent as
  measured: the schema takes any finite number, and the feature code drops heart rates
  outside 25-250 bpm and implausible intervals itself.
* **Bad input.** A malformed notification is logged with the reason, counted and dropped;
  the ingestor goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ingestors._signals import run_until_signal
from ingestors.base import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_SPANS,
    LiveOutlet,
    LiveSession,
    ProducerFactory,
    SendStatus,
    SessionInfo,
    SessionSender,
    live_outlet,
)
from ingestors.base.grid import check_span
from ingestors.ble.link import BleakLink, BleError, HeartRateLink, connection_loop
from ingestors.ble.measurement import HeartRateMeasurement, beat_times, parse_measurement
from stream.schemas.session import Modality, SessionEvent
from stream.settings import StreamSettings

__all__ = ["RR_HOLD_S", "BleError", "BleReport", "BleStatus", "BleakLink", "HeartRateLink",
           "ingest_ble", "run_ble"]

log = logging.getLogger(__name__)

Family = Literal["wearable", "cardio"]
#: What each family's session announces and sends.
_FAMILY_MODALITY: Final[dict[str, Modality]] = {"wearable": "heart_rate", "cardio": "rr"}
DEFAULT_DEVICE: Final = "BLE heart-rate sensor"
#: RR cells are cut this long after their end: a notification places its beats up to the
#: sum of its intervals before its receive time (one to three beats, 1-3 s).
RR_HOLD_S: Final = 3.0


@dataclass
class BleStatus:
    """Live counters of one BLE session (shown while it runs, returned at the end).

    Attributes
    ----------
    connected : bool
        Whether the link is up now.
    connections, reconnect_attempts : int
        Links established; failed connection attempts.
    notifications, malformed, no_contact, not_sent : int
        Notifications received; dropped as malformed; dropped for lost sensor contact;
        values the session's family does not take (heart rate of a cardio session, RR of a
        wearable one).
    last_hr : int or None
        Last heart rate received (bpm).
    family : str or None
        The session's family once the first usable notification decided it.
    samples, chunks : int
        Samples and chunks spooled for sending.
    last_error : str
        The last connection error.
    """

    connected: bool = False
    connections: int = 0
    reconnect_attempts: int = 0
    notifications: int = 0
    malformed: int = 0
    no_contact: int = 0
    not_sent: int = 0
    last_hr: int | None = None
    family: Family | None = None
    samples: int = 0
    chunks: int = 0
    last_error: str = ""

    def line(self, outlet: str = "") -> Text:
        """One status line for the terminal; ``outlet`` is the broker state and backlog."""
        state = ("[green]connected" if self.connected else "[yellow]connecting")
        hr = "-" if self.last_hr is None else f"{self.last_hr} bpm"
        text = (f"{state}[/] | {self.family or 'family pending'} | notifications "
                f"{self.notifications} | last HR {hr} | chunks {self.chunks} "
                f"({self.samples} samples) | malformed {self.malformed} | no contact "
                f"{self.no_contact} | links {self.connections}")
        if self.last_error and not self.connected:
            text += f" | last error: {escape(self.last_error)}"
        return Text.from_markup(f"{text} | {outlet}" if outlet else text)


@dataclass(frozen=True)
class BleReport:
    """What a BLE session sent.

    Attributes
    ----------
    subject_id, session_id : str
        Who and which session.
    family : str or None
        ``wearable`` or ``cardio``; None when no usable notification arrived (then nothing
        was sent).
    status : BleStatus
        The final counters.
    final_seq : dict of str to int
        The session end's last ``seq`` per source.
    duration_s : float
        Session length in s.
    send : SendStatus
        What the sender did (acknowledged, re-sent, failures, largest backlog).
    """

    subject_id: str
    session_id: str
    family: Family | None
    status: BleStatus
    final_seq: dict[str, int]
    duration_s: float
    send: SendStatus

    def summary(self) -> str:
        """One line for a terminal."""
        s = self.status
        if self.family is None:
            return (f"session {self.session_id}: no usable notification in "
                    f"{self.duration_s:.0f} s ({s.notifications} received, {s.malformed} "
                    f"malformed, {s.no_contact} without contact); nothing sent")
        return (f"session {self.session_id} ({self.family}): {s.chunks} chunks, {s.samples} "
                f"samples in {self.duration_s:.0f} s from {s.notifications} notifications "
                f"({s.malformed} malformed, {s.no_contact} without contact), "
                f"{s.connections} links")


class _Strap:
    """Notifications -> samples of the session, which opens once the family is known."""

    def __init__(self, identify: Callable[[Family], SessionInfo], outlet: LiveOutlet,
                 clock: Callable[[], float], span_s: float, max_samples: int) -> None:
        self.identify, self.outlet, self.clock = identify, outlet, clock
        self.span_s, self.max_samples = span_s, max_samples
        self.session_id = str(outlet.spool.meta().get("session_id"))
        self.status = BleStatus()
        self.session: LiveSession | None = None
        self.last_beat_s: float | None = None
        if outlet.resumed is not None:  # the family was decided in the earlier run
            family = outlet.resumed.family
            if family == "psg":
                msg = (f"the spool {outlet.spool.path} holds a psg session, not a heart-rate "
                       f"one; give this BLE session another session id")
                raise BleError(msg)
            self._open(family)
            self.last_beat_s = SessionSender.progress(outlet.spool).get("last_beat_s")

    @property
    def modality(self) -> Modality | None:
        return None if self.session is None else self.session.info.modalities[0]

    def _open(self, family: Family) -> None:
        info = self.identify(family)
        self.status.family = family
        self.session = LiveSession(self.outlet.session_sender(info),
                                   {info.modalities[0]: self.span_s}, self.max_samples)

    def on_value(self, data: bytes) -> None:
        """Take one notification (called by the link, in the event loop)."""
        received_s = self.clock()
        self.status.notifications += 1
        try:
            m = parse_measurement(data)
        except ValueError as err:
            self.status.malformed += 1
            log.warning("BLE session %s: malformed heart rate notification %s dropped: %s",
                        self.session_id, data.hex(), err)
            return
        if m.contact is False:
            self.status.no_contact += 1
            return
        self.status.last_hr = m.heart_rate
        if self.session is None:
            self._open("cardio" if m.rr_present else "wearable")
            log.info("BLE session %s: %s, so the session is %s", self.session_id,
                     "RR intervals present" if m.rr_present else "no RR intervals",
                     self.status.family)
        self._add(received_s, m)

    def _add(self, received_s: float, m: HeartRateMeasurement) -> None:
        assert self.session is not None
        if self.modality == "rr":
            times = beat_times(received_s, m.rr_s, self.last_beat_s)
            self.session.add("rr", np.array(times), np.array(m.rr_s))
            if times:
                self.last_beat_s = times[-1]
            self.status.not_sent += 1  # its heart rate
        else:
            self.session.add("heart_rate", np.array([received_s]),
                             np.array([float(m.heart_rate)]))
            self.status.not_sent += len(m.rr_ticks)

    def advance(self) -> None:
        """Spool the cells the clock has passed."""
        if self.session is not None and self.modality is not None:
            now = self.clock()
            watermark = now - RR_HOLD_S if self.modality == "rr" else now
            self.session.advance({self.modality: watermark}, self._progress())
            self._count()

    def end(self) -> dict[str, int]:
        """Spool what is pending and the session end (if the session started)."""
        if self.session is None:
            return {}
        when = self.session.info.start + timedelta(seconds=max(self.clock(), 0.0))
        final = self.session.finish(when, self._progress())
        self._count()
        return final

    def _progress(self) -> dict[str, Any]:
        return {"last_beat_s": self.last_beat_s}

    def _count(self) -> None:
        assert self.session is not None
        self.status.chunks = self.session.sender.chunks
        self.status.samples = self.session.sender.samples


def _check(subject_id: str, session_id: str, time_zone: str, device: str,
           values: dict[str, float]) -> None:
    """Refuse ids, time zones and options the session would refuse, before connecting."""
    SessionEvent(event="end", subject_id=subject_id, session_id=session_id, device=device,
                 time_zone=time_zone, t_utc=datetime.now(UTC))
    for name, value in values.items():
        check_span(name, value)


async def _run(link: HeartRateLink, strap: _Strap, stop: asyncio.Event, tick_s: float,
               backoff: tuple[float, float], show: Callable[[], None]) -> None:
    """Read the device and spool its samples until ``stop``."""
    connection = asyncio.create_task(
        connection_loop(link, strap.status, strap.on_value, stop, *backoff))
    stopped = asyncio.create_task(stop.wait())
    try:
        while not stopped.done() and not connection.done():
            await asyncio.wait({stopped, connection}, timeout=tick_s,
                               return_when=asyncio.FIRST_COMPLETED)
            strap.advance()
            strap.outlet.check()
            show()
        stop.set()
        await connection  # raises BleError for a device without heart rate
    finally:
        stop.set()
        stopped.cancel()
        if not connection.done():
            with contextlib.suppress(Exception):
                await connection


async def _finish(outlet: LiveOutlet, show: Callable[[], None]) -> None:
    """Wait until the broker has everything, showing the backlog meanwhile."""
    finishing = asyncio.ensure_future(outlet.finish())
    while not finishing.done():
        await asyncio.wait({finishing}, timeout=0.25)
        show()
    finishing.result()


async def ingest_ble(
    link: HeartRateLink,
    subject_id: str,
    session_id: str,
    settings: StreamSettings | None = None,
    *,
    stop: asyncio.Event,
    time_zone: str = "UTC",
    device: str = DEFAULT_DEVICE,
    span_s: float = DEFAULT_SPANS["heart_rate"],
    min_backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    progress: bool = True,
    producer_factory: ProducerFactory | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> BleReport:
    """Stream one BLE heart-rate device as a live session until ``stop`` is set.

    Parameters
    ----------
    link : HeartRateLink
        The device (:class:`BleakLink`).
    subject_id, session_id : str
        Message key and session (:data:`stream.schemas.base.ID_PATTERN`).
    settings : StreamSettings, optional
        Broker, topic names, Kafka security, spool folder and bound; default read from the
        environment.
    stop : asyncio.Event
        Set it to end the session (the CLI sets it on SIGINT/SIGTERM).
    time_zone : str
        IANA zone of the subject's clock.
    device : str
        The session's ``device`` text.
    span_s : float
        Grid span of the chunks in s (keep it below the worker's grace period).
    min_backoff_s, max_backoff_s : float
        First and largest wait between reconnection attempts to the device (doubling).
    progress : bool
        Show a status line (connection, notifications, last heart rate, chunks, broker,
        backlog).
    producer_factory : ProducerFactory, optional
        Makes started producers; default idempotent ``AIOKafkaProducer`` s of ``settings``.
    max_samples : int
        Most samples per chunk.

    Returns
    -------
    BleReport

    Raises
    ------
    BleError
        If the device has no heart rate measurement characteristic.
    ValueError
        For ids, a time zone or a device text the session messages refuse, or a span or
        back-off that is not a positive number.
    SpoolError
        If the session's spool is used by another ingestor, damaged, or full.
    SendError
        If sending fails in a way no retry mends; what was not sent stays in the spool.
    """
    _check(subject_id, session_id, time_zone, device, {
        "span_s": span_s, "min_backoff_s": min_backoff_s, "max_backoff_s": max_backoff_s})
    settings = settings if settings is not None else StreamSettings()
    async with AsyncExitStack() as stack:
        outlet = await stack.enter_async_context(live_outlet(
            settings, subject_id, session_id, "BLE session", producer_factory))
        now = datetime.now(UTC)
        # whole seconds, as the replay's anchor "now"; a resumed session keeps its start
        start = outlet.resumed.start if outlet.resumed else now.replace(microsecond=0)
        t0 = time.monotonic() - (now - start).total_seconds()

        def identify(family: Family) -> SessionInfo:
            return SessionInfo(subject_id, session_id, device, family,
                               (_FAMILY_MODALITY[family],), time_zone, start)

        strap = _Strap(identify, outlet, lambda: time.monotonic() - t0, span_s, max_samples)
        display = None if not progress else stack.enter_context(Live(
            strap.status.line(outlet.text()), refresh_per_second=4, transient=False,
            redirect_stderr=False))

        def show() -> None:
            if display is not None:
                display.update(strap.status.line(outlet.text()))

        if outlet.ended_before:
            log.warning("BLE session %s had ended in an earlier run; sending what its spool "
                        "holds, nothing more is read", session_id)
        else:
            await _run(link, strap, stop, min(span_s / 2, 0.5), (min_backoff_s,
                                                                 max_backoff_s), show)
        final = strap.end() if not outlet.ended_before else {}
        await _finish(outlet, show)
    return BleReport(subject_id, session_id, strap.status.family, strap.status, final,
                     strap.clock(), outlet.send)


def run_ble(link: HeartRateLink, subject_id: str, session_id: str,
            settings: StreamSettings | None = None, **options: Any) -> BleReport:
    """Run :func:`ingest_ble` in a new event loop until SIGINT or SIGTERM (for the CLI).

    The arguments are those of :func:`ingest_ble`, less ``stop``. A second signal stops
    waiting for the broker; what it has not acknowledged stays in the spool.
    """
    return run_until_signal(lambda stop: ingest_ble(link, subject_id, session_id, settings,
                                                    stop=stop, **options))
