"""The outbox sender against scripted producers: order, windows, failures, back-off.

A producer here is a stand-in whose broker log the test reads (the ingestor tests run the
sender against the real broker, outages included): each one can acknowledge, fail, or
hang as a producer does while the broker is unreachable, and write what it held once the
broker is back (the batches a retired producer may still deliver).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NodeNotReadyError

from ingestors.base import MemoryOutbox, OutboxSender, Row, SendError, is_transient


class Broker:
    """What reached the broker, and whether it is up."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int | None]] = []  # (session id, seq) as written
        self.up = asyncio.Event()
        self.up.set()
        self.starts: list[float] = []
        self.refuse_starts = 0


class Producer:
    """A stand-in producer.

    ``ack_first``: how many sends it acknowledges; later ones fail with ``error`` (after
    being written when ``write_failed``) or, with ``error=None``, take the broker down and
    wait for it to be up again, then are written and acknowledged.
    """

    def __init__(self, broker: Broker, ack_first: int = 10**9,
                 error: Exception | None = None, write_failed: bool = False) -> None:
        self.broker, self.ack_first, self.error = broker, ack_first, error
        self.write_failed = write_failed
        self.sent: list[Row] = []
        self.in_flight: list[asyncio.Future[Any]] = []
        self.stopped = False
        self.barrier_sent_with_others = False

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None):
        assert not self.stopped
        session, seq = value.decode().split("#")  # type: ignore[union-attr]
        row = (session, None if seq == "-" else int(seq))
        if row[1] is None and any(not f.done() for f in self.in_flight):
            self.barrier_sent_with_others = True
        fut = asyncio.get_running_loop().create_future()
        self.in_flight.append(fut)
        n = len(self.sent)
        self.sent.append(row)  # type: ignore[arg-type]
        if n < self.ack_first and self.broker.up.is_set():
            self.broker.log.append(row)
            asyncio.get_running_loop().call_soon(fut.set_result, None)
        elif self.error is not None:
            if self.write_failed:
                self.broker.log.append(row)
            asyncio.get_running_loop().call_soon(fut.set_exception, self.error)
        else:
            self.broker.up.clear()
            asyncio.ensure_future(self._later(fut, row))
        return fut

    async def _later(self, fut: asyncio.Future[Any], row: tuple[str, int | None]) -> None:
        await self.broker.up.wait()
        self.broker.log.append(row)
        if not fut.done():
            fut.set_result(None)

    async def stop(self) -> None:  # delivers what it holds, as aiokafka's stop does
        self.stopped = True
        pending = [f for f in self.in_flight if not f.done()]
        if pending:
            await asyncio.wait(pending)


def script(broker: Broker, *producers: Producer):
    """A factory handing out ``producers`` in turn (then good ones), refusing while down."""
    queue = list(producers)

    async def factory() -> Producer:
        broker.starts.append(time.monotonic())
        if not broker.up.is_set() or broker.refuse_starts > 0:
            broker.refuse_starts = max(broker.refuse_starts - 1, 0)
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")
        return queue.pop(0) if queue else Producer(broker)
    return factory


def session_rows(session: str, n_chunks: int) -> list[Row]:
    """A session: start, chunks 0.., end (values ``<session>#<seq>``)."""
    def row(seq: int | None) -> Row:
        value = f"{session}#{'-' if seq is None else seq}".encode()
        return Row("t.sessions" if seq is None else "t.samples", b"subject-1", value, session,
                   None if seq is None else f"{session}-rr", seq)
    return [row(None), *(row(i) for i in range(n_chunks)), row(None)]


def first_occurrences(log: list[tuple[str, int | None]]) -> list[tuple[str, int | None]]:
    """The log with repeats of a chunk dropped, as the worker's de-duplication does."""
    seen: set[tuple[str, int | None]] = set()
    out = []
    for entry in log:
        if entry[1] is None or entry not in seen:
            out.append(entry)
            seen.add(entry)
    return out


def expected(rows: list[Row]) -> list[tuple[str, int | None]]:
    return [(r.session_id, r.seq) for r in rows]


async def run_sender(rows: list[Row], factory, **options) -> tuple[OutboxSender, MemoryOutbox]:
    outbox = MemoryOutbox()
    outbox.append(rows)
    outbox.seal()
    sender = OutboxSender(outbox, factory, label="test session", **options)
    await asyncio.wait_for(sender.run(), 30)
    return sender, outbox


@pytest.mark.asyncio
async def test_rows_go_out_in_order_in_windows_with_session_events_alone() -> None:
    broker = Broker()
    first = Producer(broker)
    rows = session_rows("a", 40) + session_rows("b", 3)
    sender, outbox = await run_sender(rows, script(broker, first), window=7)
    assert broker.log == expected(rows)
    assert not first.barrier_sent_with_others and first.stopped
    assert outbox.finished and sender.status.acked == len(rows) == 47
    assert (sender.status.failures, sender.status.resent) == (0, 0)


@pytest.mark.asyncio
async def test_a_broker_dying_mid_window_is_resent_from_the_oldest_unacknowledged() -> None:
    broker = Broker()
    rows = session_rows("a", 60)
    # the first producer gets 20 rows through; the next 10 reach the broker but their
    # acknowledgements are lost, the rest fail: everything from row 20 on is sent again
    dying = Producer(broker, ack_first=20, write_failed=True,
                     error=KafkaConnectionError("connection reset"))
    sender, outbox = await run_sender(rows, script(broker, dying), window=30)
    assert broker.log[:20] == expected(rows)[:20]
    assert first_occurrences(broker.log) == expected(rows)  # nothing lost, nothing late
    assert len(broker.log) > len(rows)  # the unacknowledged rows were written twice
    assert dying.stopped and sender.status.failures == 1 and sender.status.resent >= 10
    assert sender.status.producers == 2 and outbox.finished
    assert sender.status.unreachable_since is None  # acknowledged again since


@pytest.mark.asyncio
async def test_an_unreachable_broker_is_retried_with_doubling_back_off() -> None:
    broker = Broker()
    rows = session_rows("a", 30)
    stuck = Producer(broker, ack_first=5)  # then hangs: the broker goes away
    went_down: list[float] = []

    async def outage() -> None:
        while broker.up.is_set():
            await asyncio.sleep(0.001)
        went_down.append(time.monotonic())
        await asyncio.sleep(2.5)
        broker.up.set()

    task = asyncio.create_task(outage())
    sender, _ = await run_sender(rows, script(broker, stuck), window=10, timeout_s=0.3,
                                 retry_max_s=0.6)
    await task
    assert first_occurrences(broker.log) == expected(rows)
    gaps = [b - a for a, b in zip(broker.starts, broker.starts[1:], strict=False)]
    # no acknowledgement for 0.3 s, then back-off 0.25, 0.5 and 0.6 s from then on (capped;
    # the upper bounds leave room for a busy machine)
    assert 0.54 <= gaps[0] < 0.3 + 0.25 + 0.4
    assert 0.49 <= gaps[1] < 0.5 + 0.4
    assert len(gaps) >= 4 and all(0.59 <= g < 1.0 for g in gaps[2:])
    assert broker.starts[-1] - went_down[0] >= 2.5
    assert stuck.stopped and sender.status.failures == len(broker.starts) - 1
    assert sender.status.last_error == ("KafkaConnectionError: Unable to bootstrap from "
                                        "[('127.0.0.1', 9)]")
    assert sender.status.max_backlog >= 25


@pytest.mark.asyncio
async def test_errors_no_retry_mends_name_the_subject_session_and_topic() -> None:
    broker = Broker()
    rows = session_rows("night-7", 5)
    big = Producer(broker, ack_first=3, error=MessageSizeTooLargeError())
    outbox = MemoryOutbox()
    outbox.append(rows)
    sender = OutboxSender(outbox, script(broker, big), label="live EDF session")
    with pytest.raises(SendError, match=r"live EDF session of subject 'subject-1' \(session "
                                        r"night-7\) failed on topic 't.samples': "
                                        r"MessageSizeTooLargeError"):
        await sender.run()
    assert outbox.rows == 4 and big.stopped  # the rest stays for a later attempt


def test_which_errors_are_retried() -> None:
    import ssl

    assert is_transient(KafkaConnectionError("refused")) and is_transient(NodeNotReadyError())
    assert is_transient(TimeoutError()) and is_transient(ConnectionResetError())
    assert not is_transient(MessageSizeTooLargeError())
    assert not is_transient(ssl.SSLCertVerificationError("bad certificate"))
    assert not is_transient(ValueError("a bug"))
