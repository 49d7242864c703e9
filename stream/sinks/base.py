"""Batching, retrying, back-pressured delivery of points, shared by the database sinks.

A sink has bytewax's shape, made async for the Faust worker: ``await write_batch(items)``
queues points, ``await flush()`` returns once everything queued so far has been answered
by the database, ``await close()`` flushes and releases the connection.

Delivery rules
--------------
* One background task per sink sends the queue head in batches of up to ``batch_size``
  points, as soon as a batch is full, a ``flush()`` asks for it, or the oldest queued
  point has waited ``flush_interval_s``. Order is kept: a batch leaves the queue only
  once the database has answered it.
* Unreachable database, timeouts, HTTP 5xx and 429: the same batch is retried after an
  exponential back-off with jitter (``min_backoff_s`` doubling up to ``max_backoff_s``;
  a ``Retry-After`` header is honoured up to ``max_backoff_s``). Points are idempotent
  (same series + timestamp overwrite), so resending a batch whose answer was lost cannot
  duplicate anything. After ``max_retries`` failed retries of one batch the sink fails:
  :class:`SinkUnavailableError` is raised by the next ``write_batch``/``flush``/``close``
  and the points stay queued (:attr:`BatchingSink.pending`); ``max_retries=None`` retries
  for ever.
* HTTP 400, 422 and other client errors say the batch itself is bad (a field type
  conflict, a malformed point): it is logged at ERROR with the database's own message,
  counted in :attr:`SinkStats.points_rejected` and kept in :attr:`BatchingSink.rejected`
  (the last 100), and delivery goes on. InfluxDB stores the valid points of such a batch
  ("partial write").
* HTTP 401, 403, 404 and 413 say the sink is misconfigured (token, permissions, bucket or
  database name, ``batch_size`` too large), not that the batch is bad: the sink fails at
  once with :class:`SinkConfigurationError` and keeps the points.
* Back-pressure, never dropping: when ``queue_limit`` points wait, ``write_batch`` blocks
  until the database has taken some (counted in :attr:`SinkStats.backpressure_waits`,
  logged once per episode).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, TypedDict

from influxdb_client import Point

from stream.sinks.errors import (
    RejectedBatch,
    RejectedWriteError,
    RetryableWriteError,
    SinkClosedError,
    SinkConfigurationError,
    SinkError,
    SinkStats,
    SinkUnavailableError,
)
from stream.sinks.points import SinkItem, to_points

__all__ = ["BatchingSink", "SinkOptions"]

log = logging.getLogger(__name__)

_CONFIG_STATUSES: Final = frozenset({401, 403, 404, 413})
_KEEP_REJECTED: Final = 100


class SinkOptions(TypedDict, total=False):
    """Keyword options of every :class:`BatchingSink` (see its parameters)."""

    batch_size: int
    flush_interval_s: float
    max_retries: int | None
    min_backoff_s: float
    max_backoff_s: float
    queue_limit: int
    timeout_s: float


class BatchingSink(ABC):
    """Queue, batch and deliver points with retries; subclasses only send one batch.

    Parameters
    ----------
    batch_size : int
        Most points per request.
    flush_interval_s : float
        Longest time in s a point waits in the queue before a partial batch is sent.
    max_retries : int or None
        Retries of one batch before the sink fails; None retries for ever.
    min_backoff_s, max_backoff_s : float
        First and largest wait in s between retries (doubling, with jitter).
    queue_limit : int
        Most points queued; beyond it ``write_batch`` waits (back-pressure).
    timeout_s : float
        Time limit in s of one HTTP request.
    """

    def __init__(
        self,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_retries: int | None = 10,
        min_backoff_s: float = 0.25,
        max_backoff_s: float = 30.0,
        queue_limit: int = 100_000,
        timeout_s: float = 10.0,
    ) -> None:
        if batch_size < 1 or queue_limit < batch_size:
            msg = f"need 1 <= batch_size <= queue_limit; got {batch_size} and {queue_limit}"
            raise ValueError(msg)
        if not 0 < min_backoff_s <= max_backoff_s or flush_interval_s <= 0 or timeout_s <= 0:
            msg = (
                "need 0 < min_backoff_s <= max_backoff_s, flush_interval_s > 0 and "
                f"timeout_s > 0; got {min_backoff_s}, {max_backoff_s}, {flush_interval_s}, "
                f"{timeout_s}"
            )
            raise ValueError(msg)
        if max_retries is not None and max_retries < 0:
            msg = f"max_retries must be >= 0 or None (for ever); got {max_retries}"
            raise ValueError(msg)
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.max_retries, self.queue_limit, self.timeout_s = max_retries, queue_limit, timeout_s
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self._queue: deque[tuple[float, Point]] = deque()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._failure: SinkError | None = None
        self._closing = self._closed = self._blocked = False
        self._queued = self._done = self._flush_upto = 0
        self._written = self._rejected_points = self._batches = self._rejected_batches = 0
        self._retries = self._waits = 0
        self._last_error: str | None = None
        self.rejected: deque[RejectedBatch] = deque(maxlen=_KEEP_REJECTED)

    # -- what subclasses provide -------------------------------------------------------
    @property
    @abstractmethod
    def target(self) -> str:
        """Where the points go, for messages (URL and database or bucket, no secret)."""

    @abstractmethod
    async def _send(self, points: list[Point]) -> None:
        """Send one batch; raise :class:`RetryableWriteError` or :class:`RejectedWriteError`."""

    async def _close_transport(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called once by :meth:`close`)."""

    # -- public API ------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Points queued and not yet answered by the database."""
        return len(self._queue)

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the counters."""
        return SinkStats(
            self._queued, self._written, self._rejected_points, len(self._queue),
            self._batches, self._rejected_batches, self._retries, self._waits,
            self._last_error,
        )

    async def write_batch(self, items: Iterable[SinkItem]) -> None:
        """Queue the points of ``items``; wait only while the queue is full.

        Points are durable once :meth:`flush` returns: a worker that commits its input
        offsets must flush first.
        """
        points = []
        for item in items:
            # the builders always give fields; a ready-made point might not, and the client
            # would then skip it without a word
            if isinstance(item, Point) and not item.to_line_protocol():
                name = getattr(item, "_name", "?")
                msg = f"point of measurement {name!r} has no fields; add at least one"
                raise ValueError(msg)
            points += to_points(item)
        async with self._changed:
            i = 0
            while i < len(points):
                self._check_usable()
                room = self.queue_limit - len(self._queue)
                if room <= 0:
                    self._note_backpressure()
                    await self._changed.wait()
                    continue
                now = time.monotonic()
                self._queue.extend((now, p) for p in points[i : i + room])
                self._queued += min(room, len(points) - i)
                i += room
                self._ensure_flusher()
                self._changed.notify_all()
            self._blocked = False

    async def flush(self) -> None:
        """Send everything queued so far and wait until the database has answered it."""
        async with self._changed:
            target = self._queued
            self._flush_upto = max(self._flush_upto, target)
            while self._done < target:
                self._check_usable(closing_ok=True)
                self._ensure_flusher()
                self._changed.notify_all()
                await self._changed.wait()
            self._check_usable(closing_ok=True)

    async def close(self) -> None:
        """Flush, stop the sender and release the connection; raise if points remain."""
        if self._closed:
            return
        self._closing = True
        try:
            if self._task is not None:
                async with self._changed:
                    self._changed.notify_all()
                await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task is not None:
                self._task.cancel()
            raise
        finally:
            self._closed = True
            await self._close_transport()
        if self._failure is not None:
            raise self._failure
        if self._queue:  # never reached normally: the sender drains before it stops
            msg = f"{self.target}: closed with {len(self._queue)} points not written"
            raise SinkError(msg, len(self._queue))

    # -- internals -------------------------------------------------------------------------
    def _check_usable(self, closing_ok: bool = False) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed or (self._closing and not closing_ok):
            msg = f"{self.target}: the sink is closed; create a new one to write again"
            raise SinkClosedError(msg, len(self._queue))

    def _note_backpressure(self) -> None:
        if not self._blocked:
            self._blocked = True
            self._waits += 1
            log.warning(
                "%s: %d points queued (queue_limit); the producer waits until the database "
                "takes some (last error: %s)", self.target, len(self._queue), self._last_error,
            )

    def _ensure_flusher(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while batch := await self._next_batch():
                await self._deliver(batch)
                async with self._changed:
                    for _ in batch:
                        self._queue.popleft()
                    self._done += len(batch)
                    self._changed.notify_all()
        except SinkError as exc:
            await self._fail(exc)
        except Exception as exc:  # a bug must surface to the producer, not vanish in a task
            log.exception("%s: the sender stopped", self.target)
            await self._fail(SinkError(f"{self.target}: sender crashed: {exc!r}"))

    async def _fail(self, exc: SinkError) -> None:
        exc.pending = len(self._queue)
        self._failure = exc
        log.error("%s (%d points kept queued)", exc, exc.pending)
        async with self._changed:
            self._changed.notify_all()

    async def _next_batch(self) -> list[Point]:
        """Wait until a batch is due; an empty list means the sink is closing and drained."""
        async with self._changed:
            while True:
                if not self._queue:
                    if self._closing:
                        return []
                    await self._changed.wait()
                    continue
                due = self._queue[0][0] + self.flush_interval_s - time.monotonic()
                urgent = self._closing or self._flush_upto > self._done
                if urgent or due <= 0 or len(self._queue) >= self.batch_size:
                    n = min(self.batch_size, len(self._queue))
                    return [self._queue[i][1] for i in range(n)]
                try:
                    await asyncio.wait_for(self._changed.wait(), due)
                except TimeoutError:
                    pass

    async def _deliver(self, batch: list[Point]) -> None:
        attempt = 0
        while True:
            try:
                await self._send(batch)
            except RetryableWriteError as exc:
                attempt += 1
                self._last_error = str(exc)
                if self.max_retries is not None and attempt > self.max_retries:
                    msg = f"{self.target}: gave up after {attempt} attempts; last error: {exc}"
                    raise SinkUnavailableError(msg) from exc
                delay = self._backoff_s(attempt, exc.retry_after_s)
                self._retries += 1
                log.warning("%s: %s; retry %d in %.2f s", self.target, exc, attempt, delay)
                await asyncio.sleep(delay)
            except RejectedWriteError as exc:
                self._last_error = str(exc)
                if exc.status in _CONFIG_STATUSES:
                    msg = f"{self.target} refused the sink: {exc}. Check the sink settings."
                    raise SinkConfigurationError(msg) from exc
                self._record_rejection(batch, exc)
                return
            else:
                self._written += len(batch)
                self._batches += 1
                return

    def _record_rejection(self, batch: list[Point], exc: RejectedWriteError) -> None:
        first = batch[0].to_line_protocol()
        self._rejected_points += len(batch)
        self._rejected_batches += 1
        self.rejected.append(
            RejectedBatch(exc.status, exc.message, len(batch), first, datetime.now(UTC))
        )
        log.error(
            "%s rejected a batch of %d points (HTTP %d): %s; first point: %s",
            self.target, len(batch), exc.status, exc.message, first[:300],
        )

    def _backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        cap = min(self.max_backoff_s, self.min_backoff_s * 2.0 ** min(attempt - 1, 60))
        delay = cap / 2 + random.uniform(0, cap / 2)  # jitter, not cryptography
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_backoff_s))
        return delay
