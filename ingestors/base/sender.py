"""Sending an outbox to Kafka in order, through broker outages: :class:`OutboxSender`.

The sender reads the outbox in id order and keeps at most ``send_window`` rows in flight
on an idempotent producer (``acks="all"``): a row is removed only once its send is
acknowledged. Session events are barriers: a start is sent once every earlier row is
acknowledged and nothing follows it until it is, and an end waits for the chunks before it.

Any failure (a send or acknowledgement that fails, or no progress for ``send_timeout_s``)
retires the producer (stopped in the background: its pending batches may still reach the
broker, which only makes duplicates) and, after a back-off that doubles from
``RETRY_MIN_S`` up to ``send_retry_max_s``, a fresh producer sends again from the oldest
unacknowledged row. So nothing is skipped and, per partition, nothing is written before
an older row that was not: rows are re-sent in order, never one alone after newer ones,
which the worker would dead-letter as late. Re-sent rows the broker already had are
dropped by the worker's ``(source_id, seq)`` de-duplication. Errors that no retry can
mend (a message too large, a refused authorization, a bad certificate) raise
:class:`SendError` naming the subject, session and topic.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from ingestors.base.outbox import Outbox, Stored

if TYPE_CHECKING:
    from stream.settings import StreamSettings

__all__ = ["RETRY_MIN_S", "OutboxSender", "Producer", "ProducerFactory", "SendError",
           "SendStatus", "is_transient", "kafka_producer", "producer_factory"]

log = logging.getLogger(__name__)

#: First wait in s after a failure before a fresh producer is tried (then doubling).
RETRY_MIN_S: Final = 0.25
#: Producer batching delay in ms: a few ms gather many chunks per request without delaying
#: a live chunk noticeably.
LINGER_MS: Final = 10
_WINDOW_BYTES: Final = 16_000_000  # most payload bytes in flight, whatever the row count
_RETIRE_WAIT_S: Final = 10.0  # how long closing waits for retired producers to stop


class Producer(Protocol):
    """What the sender needs of a started producer (``aiokafka.AIOKafkaProducer``)."""

    async def send(self, topic: str, value: bytes | None = None,
                   key: bytes | None = None) -> Awaitable[Any]:
        """Queue a message; the returned awaitable completes once the broker has it."""

    async def stop(self) -> None:
        """Deliver what is queued and close the connections."""


#: Makes and starts a producer (raises when the broker cannot be reached).
ProducerFactory = Callable[[], Awaitable[Producer]]


class SendError(RuntimeError):
    """Sending failed in a way no retry mends; the message names subject, session, topic."""


@dataclass
class SendStatus:
    """What the sender did so far (for status lines and reports).

    Attributes
    ----------
    acked : int
        Rows acknowledged by the broker.
    resent : int
        Rows sent again after a failure (the broker may have had them).
    failures : int
        Failures that retired a producer or failed to start one.
    producers : int
        Producers started.
    unreachable_since : datetime or None
        Since when the broker has not acknowledged anything (UTC; the last acknowledgement
        before a failure); None while it does.
    last_error : str
        The last failure.
    max_backlog : int
        Most rows that waited at once.
    outages : list of (datetime, datetime)
        Each time the broker acknowledged nothing: since when, and when it did again (UTC).
    """

    acked: int = 0
    resent: int = 0
    failures: int = 0
    producers: int = 0
    unreachable_since: datetime | None = None
    last_error: str = ""
    max_backlog: int = 0
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)

    def text(self) -> str:
        """``"broker ok"`` or ``"broker unreachable since 23:04:05 (KafkaConnectionError)"``."""
        if self.unreachable_since is None:
            return "broker ok"
        return (f"broker unreachable since {self.unreachable_since.astimezone():%H:%M:%S} "
                f"({self.last_error})")


_PERMANENT: Final = (
    "MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError",
    "InvalidTopicError", "TopicAuthorizationFailedError", "ClusterAuthorizationFailedError",
    "TransactionalIdAuthorizationFailed", "SaslAuthenticationFailed",
    "AuthenticationFailedError", "AuthenticationMethodNotSupported",
    "UnsupportedSaslMechanismError", "IllegalSaslStateError", "KafkaConfigurationError",
    "UnsupportedCodecError", "IncompatibleBrokerVersion", "UnrecognizedBrokerVersion",
    "InvalidRequiredAcksError",
)


def is_transient(err: BaseException) -> bool:
    """Whether a fresh producer may succeed where this error happened.

    Connection failures, timeouts and every Kafka error but those of a message, topic or
    credentials that the broker will refuse again (``_PERMANENT``) are transient. Other
    exceptions are bugs or refusals and are not retried.
    """
    if isinstance(err, ssl.SSLCertVerificationError):
        return False
    if isinstance(err, TimeoutError | OSError):
        return True
    from aiokafka.errors import KafkaError

    return isinstance(err, KafkaError) and type(err).__name__ not in _PERMANENT


async def kafka_producer(settings: StreamSettings) -> Producer:
    """Start an idempotent ``AIOKafkaProducer`` (``acks="all"``) on ``settings.bootstrap``.

    The Kafka security settings (``settings.kafka_client_options()``) apply. A producer that
    fails to start is stopped before the error propagates.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=LINGER_MS,
                                **settings.kafka_client_options())
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


def producer_factory(settings: StreamSettings) -> ProducerFactory:
    """A :data:`ProducerFactory` of :func:`kafka_producer` for ``settings``."""
    return lambda: kafka_producer(settings)


class _Failed(Exception):
    """A window failed at ``row`` (the oldest unacknowledged one) with ``error``."""

    def __init__(self, row: Stored | None, error: BaseException) -> None:
        super().__init__(str(error))
        self.row, self.error = row, error


class _Flight:
    """Rows sent and not yet acknowledged, oldest first, with their payload bytes."""

    def __init__(self) -> None:
        self.rows: deque[tuple[Stored, asyncio.Future[Any]]] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, stored: Stored, fut: asyncio.Future[Any]) -> None:
        self.rows.append((stored, fut))
        self.bytes += len(stored.row.value)

    def oldest(self) -> asyncio.Future[Any]:
        return self.rows[0][1]

    def pop(self) -> Stored:
        stored, _ = self.rows.popleft()
        self.bytes -= len(stored.row.value)
        return stored


class OutboxSender:
    """Sends an outbox to Kafka until it is sealed and empty; see the module docstring.

    Parameters
    ----------
    outbox : Outbox
        What to send.
    factory : ProducerFactory
        Makes a started producer; called again after every failure.
    label : str
        What is sent, for messages (``"replay"``, ``"BLE session"``, ...).
    window : int
        Most rows in flight (sent, not yet acknowledged).
    timeout_s : float
        No acknowledgement for this long while rows are in flight counts as a failure.
    retry_max_s : float
        Longest back-off between attempts.
    producer : Producer, optional
        A started producer to begin with (left to the sender, which stops it).
    on_acked : callable, optional
        Called with every batch of acknowledged rows, oldest first.
    """

    def __init__(self, outbox: Outbox, factory: ProducerFactory, *, label: str,
                 window: int = 500, timeout_s: float = 10.0, retry_max_s: float = 4.0,
                 producer: Producer | None = None,
                 on_acked: Callable[[Sequence[Stored]], None] | None = None) -> None:
        self.outbox, self.factory, self.label = outbox, factory, label
        self.window, self.timeout_s = window, timeout_s
        self.retry_max_s = max(retry_max_s, RETRY_MIN_S)
        self.on_acked = on_acked
        self.status = SendStatus(producers=int(producer is not None))
        self._producer = producer
        self._retiring: set[asyncio.Task[None]] = set()
        self._highest_sent = 0  # highest row id ever sent: ids at or below it are re-sends
        self._progress_at = datetime.now(UTC)  # last acknowledgement, or start of sending

    async def run(self) -> None:
        """Send until the outbox is sealed and every row acknowledged.

        Raises
        ------
        SendError
            On an error no retry mends (the rows stay in the outbox).
        """
        backoff = RETRY_MIN_S
        wait_s = _RETIRE_WAIT_S
        try:
            while not self.outbox.finished:
                if not self.outbox.rows:
                    await self.outbox.changed()
                    continue
                try:
                    if self.status.unreachable_since is None:
                        self._progress_at = datetime.now(UTC)
                    if self._producer is None:
                        self._producer = await self._start()
                    await self._pump(self._producer)
                except _Failed as failed:
                    self._failure(failed)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2.0, self.retry_max_s)
                else:
                    backoff = RETRY_MIN_S
        except asyncio.CancelledError:
            wait_s = 1.0  # stopped by the user: what is unacknowledged stays in the outbox
            raise
        finally:
            await self.close(wait_s)

    async def close(self, wait_s: float = _RETIRE_WAIT_S) -> None:
        """Stop the producer; wait up to ``wait_s`` for producers that still deliver."""
        producer, self._producer = self._producer, None
        if producer is not None:
            self._retire(producer)
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=wait_s)
            for task in self._retiring:
                task.cancel()

    async def _start(self) -> Producer:
        try:
            async with asyncio.timeout(self.timeout_s):
                producer = await self.factory()
        except Exception as err:
            raise _Failed(None, err) from err
        self.status.producers += 1
        return producer

    async def _pump(self, producer: Producer) -> None:
        """Send rows and collect acknowledgements until the outbox is empty or a failure."""
        loop = asyncio.get_running_loop()
        flight = _Flight()
        last_id = 0  # a fresh producer starts again from the oldest unacknowledged row
        stalled_at = loop.time() + self.timeout_s
        try:
            while flight or self.outbox.rows:
                async with asyncio.timeout_at(stalled_at):
                    last_id = await self._fill(producer, flight, last_id)
                    if not flight:  # every row sent was acknowledged: nothing left
                        return
                    await asyncio.wait([flight.oldest()])
                if self._collect(flight):
                    stalled_at = loop.time() + self.timeout_s
                    self._progress_at = datetime.now(UTC)
        except _Failed:
            raise
        except Exception as err:
            raise _Failed(flight.rows[0][0] if flight else None, err) from err
        finally:
            for _, fut in flight.rows:
                fut.add_done_callback(_consume)

    async def _fill(self, producer: Producer, flight: _Flight, last_id: int) -> int:
        """Send rows after ``last_id`` while the window has room; return the last id sent."""
        if flight and flight.rows[-1][0].row.barrier:
            return last_id  # nothing goes out before a session event is acknowledged
        for stored in self.outbox.after(last_id, self.window - len(flight)):
            row = stored.row
            if row.barrier and flight:
                break  # a session event waits for every earlier row
            if flight and flight.bytes + len(row.value) > _WINDOW_BYTES:
                break
            try:
                fut = await producer.send(row.topic, value=row.value, key=row.key)
            except Exception as err:
                raise _Failed(flight.rows[0][0] if flight else stored, err) from err
            flight.add(stored, asyncio.ensure_future(fut))
            if stored.id <= self._highest_sent:
                self.status.resent += 1
            self._highest_sent = max(self._highest_sent, stored.id)
            last_id = stored.id
            if row.barrier:
                break
        return last_id

    def _collect(self, flight: _Flight) -> bool:
        """Remove the acknowledged rows at the front of ``flight``; True if any were."""
        acked: list[Stored] = []
        while flight and flight.oldest().done():
            stored, fut = flight.rows[0]
            if fut.cancelled() or fut.exception() is not None:
                error = fut.exception() if not fut.cancelled() else TimeoutError("cancelled")
                self._acked(acked)
                raise _Failed(stored, error)  # type: ignore[arg-type]
            acked.append(flight.pop())
        self._acked(acked)
        return bool(acked)

    def _acked(self, acked: list[Stored]) -> None:
        if not acked:
            return
        self.status.max_backlog = max(self.status.max_backlog, self.outbox.rows)
        self.outbox.remove(acked)
        self.status.acked += len(acked)
        if self.status.unreachable_since is not None:
            log.info("%s: the broker acknowledges again (down since %s); sending the backlog",
                     self.label, self.status.unreachable_since.isoformat())
            self.status.outages.append((self.status.unreachable_since, datetime.now(UTC)))
            self.status.unreachable_since = None
        if self.on_acked is not None:
            self.on_acked(acked)

    def _failure(self, failed: _Failed) -> None:
        """Retire the producer; raise :class:`SendError` if no retry can help."""
        err = failed.error
        if not is_transient(err):
            raise SendError(self._describe(failed.row, err)) from err
        producer, self._producer = self._producer, None
        if producer is not None:
            self._retire(producer)
        self.status.failures += 1
        self.status.max_backlog = max(self.status.max_backlog, self.outbox.rows)
        self.status.last_error = _problem(err)
        if self.status.unreachable_since is None:
            self.status.unreachable_since = self._progress_at
            log.warning("%s; keeping what is read in the outbox and retrying",
                        self._describe(failed.row, err))

    def _describe(self, stored: Stored | None, err: BaseException) -> str:
        problem = _problem(err)
        if stored is None:
            return f"{self.label}: cannot start a Kafka producer: {problem}"
        row = stored.row
        return (f"{self.label} of subject {row.key.decode(errors='replace')!r} (session "
                f"{row.session_id}) failed on topic {row.topic!r}: {problem}")

    def _retire(self, producer: Producer) -> None:
        """Stop ``producer`` in the background (stopping waits for its pending batches)."""
        task = asyncio.ensure_future(producer.stop())
        self._retiring.add(task)
        task.add_done_callback(self._retired)

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s: a retired producer failed to stop: %s", self.label,
                      task.exception())


def _problem(err: BaseException) -> str:
    """``"Type: message"`` (aiokafka's messages start with their type already)."""
    name, text = type(err).__name__, str(err)
    if not text:
        return name
    return text if text.startswith(f"{name}: ") else f"{name}: {text}"


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (the rows it stood for are re-sent anyway)."""
    if not fut.cancelled():
        fut.exception()

