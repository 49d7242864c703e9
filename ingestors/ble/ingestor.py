"""A Bluetooth LE heart-rate strap or watch published on Kafka as a live session.

:func:`ingest_ble` connects to the device through bleak (:class:`BleakLink`), subscribes to
the Heart Rate Measurement characteristic (0x2A37) and sends what it receives exactly as
the replay ingestor sends a recorded night (:mod:`ingestors.replay`): a session start on
the ``sessions`` topic, the samples in chunks on the ``samples`` topic (``t0_utc`` = the
session start, ``offsets_s`` = sample times, source ``<session_id>-<modality>``, ``seq``
from 0 per source) and, when the user stops, a session end carrying the last ``seq`` of
every source. Message keys are the subject id.

* **Which family.** The first usable notification decides: RR intervals present (flag
  bit 4) -> ``cardio`` with modality ``rr``; else ``wearable`` with ``heart_rate``. The
  session start is sent then. The worker rejects modalities a family does not take, so a
  cardio session sends no heart rate and a wearable one no RR intervals (both counted).
* **Times.** Heart rate is stamped with the notification's receive time; each RR interval
  with the beat that ends it, found from the receive time going backwards through the
  notification's intervals (:func:`~ingestors.ble.measurement.beat_times`), never before
  the previous beat.
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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ingestors._replay_plan import DEFAULT_MAX_SAMPLES, DEFAULT_SPANS
from ingestors._signals import run_until_signal
from ingestors.ble.measurement import (
    HEART_RATE_MEASUREMENT_UUID,
    HeartRateMeasurement,
    beat_times,
    parse_measurement,
)
from ingestors.replay import ReplayProducer, _kafka_producer
from stream.schemas.samples import UNITS, SampleChunk
from stream.schemas.session import Modality, SessionEvent
from stream.settings import StreamSettings

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient

__all__ = ["BleError", "BleReport", "BleStatus", "BleakLink", "HeartRateLink", "ingest_ble",
           "run_ble"]

log = logging.getLogger(__name__)

Family = Literal["wearable", "cardio"]
#: What each family's session announces and sends.
_FAMILY_MODALITY: Final[dict[str, Modality]] = {"wearable": "heart_rate", "cardio": "rr"}
DEFAULT_DEVICE: Final = "BLE heart-rate sensor"


class BleError(RuntimeError):
    """The device cannot serve heart rate, or sending to Kafka failed (names what and where)."""


class HeartRateLink(Protocol):
    """What :func:`ingest_ble` needs of a device connection (see :class:`BleakLink`)."""

    @property
    def address(self) -> str:
        """The device's address (for messages)."""

    def subscribe(self, on_value: Callable[[bytes], None],
                  on_lost: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        """Connect and deliver every 0x2A37 value to ``on_value`` until the context exits.

        ``on_lost`` is called when the device drops the link. Entering raises on a failed
        connection (retried by the caller) or :class:`BleError` for a device without the
        characteristic (not retried).
        """


@dataclass(frozen=True)
class BleakLink:
    """A device reached through bleak's ``BleakClient``.

    Parameters
    ----------
    address : str
        Bluetooth address (``AA:BB:CC:DD:EE:FF``; a UUID on macOS).
    backend : type, optional
        A ``bleak.backends.client.BaseBleakClient`` subclass; default bleak's platform
        backend (BlueZ, CoreBluetooth, WinRT, Android).
    options : mapping, optional
        More keyword arguments of ``BleakClient`` (and so of the backend).
    timeout_s : float
        Connection and service discovery time limit.
    """

    address: str
    backend: type[BaseBleakClient] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 20.0

    @asynccontextmanager
    async def subscribe(self, on_value: Callable[[bytes], None],
                        on_lost: Callable[[], None]) -> AsyncIterator[None]:
        """Connect, check for 0x2A37 and subscribe; stop and disconnect on exit."""
        from bleak import BleakClient

        client = BleakClient(self.address, lambda _client: on_lost(), backend=self.backend,
                             timeout=self.timeout_s, **self.options)
        async with client:
            if client.services.get_characteristic(HEART_RATE_MEASUREMENT_UUID) is None:
                offered = ", ".join(s.uuid for s in client.services) or "none"
                msg = (f"BLE device {self.address} has no Heart Rate Measurement "
                       f"characteristic (0x2A37 of service 0x180D); its services: {offered}")
                raise BleError(msg)
            await client.start_notify(HEART_RATE_MEASUREMENT_UUID,
                                      lambda _char, data: on_value(bytes(data)))
            try:
                yield
            finally:
                if client.is_connected:
                    with contextlib.suppress(Exception):
                        await client.stop_notify(HEART_RATE_MEASUREMENT_UUID)


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
        Samples and chunks sent.
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

    def line(self) -> Text:
        """One status line for the terminal."""
        state = ("[green]connected" if self.connected else "[yellow]connecting")
        hr = "-" if self.last_hr is None else f"{self.last_hr} bpm"
        text = (f"{state}[/] | {self.family or 'family pending'} | notifications "
                f"{self.notifications} | last HR {hr} | chunks sent {self.chunks} "
                f"({self.samples} samples) | malformed {self.malformed} | no contact "
                f"{self.no_contact} | links {self.connections}")
        if self.last_error and not self.connected:
            text += f" | last error: {escape(self.last_error)}"
        return Text.from_markup(text)


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
    """

    subject_id: str
    session_id: str
    family: Family | None
    status: BleStatus
    final_seq: dict[str, int]
    duration_s: float

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


class _Session:
    """The state of one running session: buffers, sequence numbers, sends."""

    def __init__(self, subject_id: str, session_id: str, time_zone: str, device: str,
                 settings: StreamSettings, producer: ReplayProducer, max_samples: int,
                 start: datetime, clock: Callable[[], float]) -> None:
        self.subject_id, self.session_id = subject_id, session_id
        self.time_zone, self.device = time_zone, device
        self.producer, self.max_samples = producer, max_samples
        self.topics = {name: settings.topic(name) for name in ("sessions", "samples")}
        self.start, self.clock = start, clock
        self.status = BleStatus()
        self.pending: list[tuple[float, float]] = []  # (time, value) not yet sent
        self.last_beat_s: float | None = None
        self.next_seq = 0
        self.started = False

    @property
    def modality(self) -> Modality | None:
        fam = self.status.family
        return None if fam is None else _FAMILY_MODALITY[fam]

    @property
    def source_id(self) -> str:
        """Source id of the session's stream, ``<session_id>-<modality>`` as in the replay."""
        return f"{self.session_id}-{self.modality}"

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
        if self.status.family is None:
            self.status.family = "cardio" if m.rr_present else "wearable"
            log.info("BLE session %s: %s, so the session is %s", self.session_id,
                     "RR intervals present" if m.rr_present else "no RR intervals",
                     self.status.family)
        self._buffer(received_s, m)

    def _buffer(self, received_s: float, m: HeartRateMeasurement) -> None:
        if self.status.family == "cardio":
            times = beat_times(received_s, m.rr_s, self.last_beat_s)
            self.pending.extend(zip(times, m.rr_s, strict=True))
            if times:
                self.last_beat_s = times[-1]
            self.status.not_sent += 1  # its heart rate
        else:
            self.pending.append((received_s, float(m.heart_rate)))
            self.status.not_sent += len(m.rr_ticks)

    def _event(self, kind: Literal["start", "end"], when: datetime,
               final_seq: dict[str, int]) -> SessionEvent:
        modality = self.modality
        assert self.status.family is not None and modality is not None
        return SessionEvent(
            event=kind, subject_id=self.subject_id, session_id=self.session_id,
            device=self.device, family=self.status.family, modalities=(modality,),
            time_zone=self.time_zone, t_utc=when, start_is_nominal=False, live=True,
            final_seq=final_seq,
        )

    async def _send(self, topic: str, payload: SessionEvent | SampleChunk) -> None:
        try:
            await self.producer.send_and_wait(self.topics[topic],
                                              value=payload.model_dump_json().encode(),
                                              key=self.subject_id.encode())
        except Exception as err:
            msg = (f"BLE session of subject {self.subject_id!r} (session {self.session_id}) "
                   f"failed on topic {self.topics[topic]!r}: {type(err).__name__}: {err}")
            raise BleError(msg) from err

    async def flush(self) -> None:
        """Send the session start once the family is known, then the buffered samples."""
        modality = self.modality
        if modality is None:
            return
        if not self.started:
            await self._send("sessions", self._event("start", self.start, {}))
            self.started = True
        batch, self.pending = self.pending, []
        for i0 in range(0, len(batch), self.max_samples):
            part = batch[i0:i0 + self.max_samples]
            chunk = SampleChunk(
                subject_id=self.subject_id, session_id=self.session_id,
                source_id=self.source_id, seq=self.next_seq, modality=modality,
                unit=UNITS[modality], t0_utc=self.start,
                offsets_s=tuple(t for t, _ in part), values=tuple(v for _, v in part),
            )
            await self._send("samples", chunk)
            self.next_seq += 1
            self.status.chunks += 1
            self.status.samples += len(part)

    async def end(self) -> dict[str, int]:
        """Send the session end with the last seq of the source (if the session started)."""
        if not self.started:
            return {}
        final = {self.source_id: self.next_seq - 1} if self.next_seq else {}
        when = self.start + timedelta(seconds=max(self.clock(), 0.0))
        await self._send("sessions", self._event("end", when, final))
        return final


async def _connection_loop(link: HeartRateLink, session: _Session, stop: asyncio.Event,
                           min_backoff_s: float, max_backoff_s: float) -> None:
    """Keep the link up until ``stop``: reconnect with doubling back-off after a drop."""
    backoff = min_backoff_s
    status = session.status
    while not stop.is_set():
        lost = asyncio.Event()
        try:
            async with link.subscribe(session.on_value, lost.set):
                status.connected = True
                status.connections += 1
                backoff = min_backoff_s
                log.info("BLE %s: connected, notifications on", link.address)
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                if lost.is_set():
                    log.warning("BLE %s: link lost; reconnecting (samples until then are "
                                "missing from the stream)", link.address)
        except (BleError, ImportError):  # no heart rate service, or no bleak: not retried
            raise
        except Exception as err:
            status.reconnect_attempts += 1
            status.last_error = f"{type(err).__name__}: {err}"
            log.warning("BLE %s: connection failed (%s); next try in %.1f s", link.address,
                        status.last_error, backoff)
        finally:
            status.connected = False
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2.0, max_backoff_s)


def _check(subject_id: str, session_id: str, time_zone: str, device: str) -> None:
    """Refuse ids and time zones the session messages would refuse, before connecting."""
    SessionEvent(event="end", subject_id=subject_id, session_id=session_id, device=device,
                 time_zone=time_zone, t_utc=datetime.now(UTC))


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
    producer: ReplayProducer | None = None,
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
        Broker, topic names and Kafka security; default read from the environment.
    stop : asyncio.Event
        Set it to end the session (the CLI sets it on SIGINT/SIGTERM).
    time_zone : str
        IANA zone of the subject's clock.
    device : str
        The session's ``device`` text.
    span_s : float
        Buffered samples are sent every this many seconds (keep it below the worker's
        grace period).
    min_backoff_s, max_backoff_s : float
        First and largest wait between reconnection attempts (doubling).
    progress : bool
        Show a status line (connection, notifications, last heart rate, chunks sent).
    producer : ReplayProducer, optional
        A started producer to use (and leave running); default a new idempotent
        ``AIOKafkaProducer`` made as the replay makes it.
    max_samples : int
        Most samples per chunk.

    Returns
    -------
    BleReport

    Raises
    ------
    BleError
        If the device has no heart rate measurement characteristic or a send fails.
    ReplayError
        If no producer can be started (the replay's message: start the broker).
    ValueError
        For ids, a time zone or a device text the session messages refuse, or a span or
        back-off that is not a positive number.
    """
    _check(subject_id, session_id, time_zone, device)
    for name, value in (("span_s", span_s), ("min_backoff_s", min_backoff_s),
                        ("max_backoff_s", max_backoff_s)):
        if not value > 0:
            msg = f"`{name}` must be a number of seconds > 0; got {value!r}"
            raise ValueError(msg)
    settings = settings if settings is not None else StreamSettings()
    now = datetime.now(UTC)
    start = now.replace(microsecond=0)  # whole seconds, as the replay's anchor "now"
    t0 = time.monotonic() - (now - start).total_seconds()
    async with AsyncExitStack() as stack:
        if producer is None:
            producer = await _kafka_producer(settings, stack)
        session = _Session(subject_id, session_id, time_zone, device, settings, producer,
                           max_samples, start, lambda: time.monotonic() - t0)
        live = None
        if progress:
            live = stack.enter_context(Live(session.status.line(), refresh_per_second=4,
                                            transient=False, redirect_stderr=False))
        connection = asyncio.create_task(
            _connection_loop(link, session, stop, min_backoff_s, max_backoff_s))
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stopped.done() and not connection.done():
                await asyncio.wait({stopped, connection}, timeout=span_s,
                                   return_when=asyncio.FIRST_COMPLETED)
                await session.flush()
                if live is not None:
                    live.update(session.status.line())
            stop.set()
            await connection  # raises BleError for a device without heart rate
        finally:
            stop.set()
            stopped.cancel()
            if not connection.done():
                with contextlib.suppress(Exception):
                    await connection
        await session.flush()
        final = await session.end()
        await producer.flush()
        if live is not None:
            live.update(session.status.line())
    return BleReport(subject_id, session_id, session.status.family, session.status, final,
                     session.clock())


def run_ble(link: HeartRateLink, subject_id: str, session_id: str,
            settings: StreamSettings | None = None, **options: Any) -> BleReport:
    """Run :func:`ingest_ble` in a new event loop until SIGINT or SIGTERM (for the CLI).

    The arguments are those of :func:`ingest_ble`, less ``stop`` and ``producer``.
    """
    return run_until_signal(lambda stop: ingest_ble(link, subject_id, session_id, settings,
                                                    stop=stop, **options))
