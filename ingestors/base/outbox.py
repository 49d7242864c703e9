"""What an ingestor has handed over but the broker has not acknowledged yet: the outbox.

Rows (a session event or a chunk, serialized, with its topic and key) are appended before
any send is attempted and removed only once the broker has acknowledged them; the sender
(:class:`~ingestors.base.sender.OutboxSender`) sends them in id order. Two stores keep
them: :class:`MemoryOutbox` (replays: the file is the durable copy) and
:class:`~ingestors.base.spool.SpoolOutbox` (live sessions: SQLite on disk, so a broker
outage or a killed ingestor loses nothing).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = ["Backlog", "MemoryOutbox", "Outbox", "Row", "Stored"]


class Row(NamedTuple):
    """One message to send.

    Attributes
    ----------
    topic : str
        Full topic name.
    key, value : bytes
        Message key (the subject id) and payload (JSON).
    session_id : str
        The session the message belongs to (for error messages).
    source_id : str or None
        A chunk's source; None for a session event.
    seq : int or None
        A chunk's sequence number; None for a session event.
    """

    topic: str
    key: bytes
    value: bytes
    session_id: str
    source_id: str | None = None
    seq: int | None = None

    @property
    def barrier(self) -> bool:
        """Whether the row is a session event, sent alone.

        It goes out once every earlier row is acknowledged and nothing follows before it
        is: a start precedes its chunks, an end follows them.
        """
        return self.source_id is None


class Stored(NamedTuple):
    """A row with its outbox id (increasing in append order) and when it was appended."""

    id: int
    row: Row
    spooled_at: float


@dataclass(frozen=True)
class Backlog:
    """Rows waiting for the broker's acknowledgement.

    Attributes
    ----------
    rows, chunks : int
        Rows waiting, and how many of them are sample chunks.
    bytes : int
        Their payload size.
    since : datetime or None
        When the oldest of them was appended (UTC); None when empty.
    """

    rows: int
    chunks: int
    bytes: int
    since: datetime | None

    def text(self) -> str:
        """``"backlog 12 chunks, 0.3 MB since 23:04:05"`` or ``"backlog 0"``."""
        if not self.rows:
            return "backlog 0"
        since = "" if self.since is None else f" since {self.since.astimezone():%H:%M:%S}"
        return f"backlog {self.chunks} chunks, {self.bytes / 1e6:.1f} MB{since}"


class Outbox(ABC):
    """Rows in id order; the base of the memory and disk stores.

    Subclasses store the rows (``_store``, ``_load_after``, ``_delete_through``) and may
    keep meta data (``meta``): strings by name, written with the rows they describe.
    """

    #: Rows and meta data survive the process (then worth writing the meta data).
    durable: bool = False

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self._room = asyncio.Event()
        self._sealed = False
        self.rows = self.chunks = self.bytes = 0
        self.oldest_at: float | None = None

    # -- what the subclasses provide --------------------------------------------------------
    @abstractmethod
    def _store(self, rows: Sequence[Row], meta: Mapping[str, str], at: float) -> None:
        """Keep ``rows`` (appended at ``at``, epoch s) and ``meta`` together."""

    @abstractmethod
    def _load_after(self, after_id: int, limit: int) -> list[Stored]:
        """Up to ``limit`` rows with ids above ``after_id``, oldest first."""

    @abstractmethod
    def _delete_through(self, last: Stored) -> float | None:
        """Delete rows up to ``last`` (inclusive); return the new oldest ``spooled_at``."""

    def meta(self) -> dict[str, str]:
        """Meta data written with the rows (empty for a memory outbox)."""
        return {}

    # -- the outbox --------------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        """No more rows will be appended."""
        return self._sealed

    @property
    def finished(self) -> bool:
        """Sealed and every row acknowledged: the sender is done."""
        return self._sealed and self.rows == 0

    def append(self, rows: Sequence[Row], meta: Mapping[str, str] | None = None) -> None:
        """Append rows (and meta data describing them) in one step.

        Raises
        ------
        RuntimeError
            If the outbox was sealed.
        """
        if self._sealed:
            msg = "the outbox is sealed: the session has ended and takes no more messages"
            raise RuntimeError(msg)
        if not rows and not meta:
            return
        now = time.time()
        self._store(rows, meta or {}, now)
        if rows:
            if self.rows == 0:
                self.oldest_at = now
            self.rows += len(rows)
            self.chunks += sum(1 for r in rows if not r.barrier)
            self.bytes += sum(len(r.value) for r in rows)
        self._wake()

    def after(self, after_id: int, limit: int) -> list[Stored]:
        """Up to ``limit`` rows with ids above ``after_id``, oldest first."""
        return self._load_after(after_id, limit) if limit > 0 and self.rows else []

    def remove(self, acked: Sequence[Stored]) -> None:
        """Remove acknowledged rows: the oldest ones, in order."""
        if not acked:
            return
        self.oldest_at = self._delete_through(acked[-1])
        self.rows -= len(acked)
        self.chunks -= sum(1 for s in acked if not s.row.barrier)
        self.bytes -= sum(len(s.row.value) for s in acked)
        self._room.set()
        if self.rows == 0:
            self._wake()

    def seal(self) -> None:
        """Take no more rows; the sender stops once the rest is acknowledged."""
        self._sealed = True
        self._wake()

    def backlog(self) -> Backlog:
        """What waits for the broker now."""
        since = None if self.oldest_at is None or not self.rows else \
            datetime.fromtimestamp(self.oldest_at, UTC)
        return Backlog(self.rows, self.chunks, self.bytes, since)

    async def changed(self) -> None:
        """Wait until rows are appended, the last row is removed or the outbox is sealed."""
        await self._changed.wait()
        self._changed.clear()

    async def room(self, max_rows: int) -> None:
        """Wait until fewer than ``max_rows`` rows wait (back-pressure for replays)."""
        while self.rows >= max_rows:
            self._room.clear()
            await self._room.wait()

    def _wake(self) -> None:
        self._changed.set()


class MemoryOutbox(Outbox):
    """Rows in memory: a replay's outbox (its file is the durable copy)."""

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Stored] = []
        self._head = 0  # index of the oldest row not removed
        self._next_id = 1

    def _store(self, rows: Sequence[Row], meta: Mapping[str, str], at: float) -> None:
        for row in rows:
            self._items.append(Stored(self._next_id, row, at))
            self._next_id += 1

    def _load_after(self, after_id: int, limit: int) -> list[Stored]:
        first = self._items[self._head].id
        i = self._head + max(after_id - first + 1, 0)  # ids are consecutive
        return self._items[i:i + limit]

    def _delete_through(self, last: Stored) -> float | None:
        self._head += last.id - self._items[self._head].id + 1
        if self._head > 4096 and self._head * 2 > len(self._items):
            del self._items[:self._head]  # drop removed rows now and then, not every time
            self._head = 0
        return self._items[self._head].spooled_at if self._head < len(self._items) else None
