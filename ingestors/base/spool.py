"""The disk outbox of a live session: one SQLite file per session, locked by its owner.

A spool holds two tables: ``outbox`` (id autoincrement, topic, key, value, session_id,
source_id, seq, spooled_at), the messages not yet acknowledged by the broker, and ``meta``
(name -> text): the subject and session, the session start event (its identity), the last
``seq`` per source, the end event once the session ended, the ingestor's progress and
when rows were last appended. Rows
and the meta data describing them are written in one transaction, so after a crash both
agree. SQLite runs in WAL mode with ``synchronous=FULL`` for appends: a committed row
survives a killed process and a power cut (removals skip the fsync: one lost means a
re-send, which the worker drops as a duplicate).

One process owns a spool: it holds an exclusive lock on ``<spool>.lock`` (``flock``) while
the file is open, so two ingestors never drain one spool. The lock goes with the process,
so a killed ingestor's spool can be taken over at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final
from urllib.parse import quote

from ingestors.base.outbox import Outbox, Row, Stored

__all__ = ["SPOOL_SUFFIX", "SpoolError", "SpoolFullError", "SpoolLockedError", "SpoolOutbox",
           "leftover_spools", "spool_file"]

SPOOL_SUFFIX: Final = ".spool"
_FORMAT: Final = "1"
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "topic TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, session_id TEXT NOT NULL, "
    "source_id TEXT, seq INTEGER, spooled_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class SpoolError(RuntimeError):
    """A spool cannot be used (damaged, locked, full); the message says which and why."""


class SpoolLockedError(SpoolError):
    """Another process owns the spool."""


class SpoolFullError(SpoolError):
    """The spool holds ``SLEEPSTREAM_SPOOL_MAX_MB`` and takes nothing more."""


def spool_file(folder: Path, subject_id: str, session_id: str) -> Path:
    """The spool of one session: ``<subject>+<session>.spool``.

    The ids are %-quoted, so ``+`` cannot occur in them and names never collide.
    """
    return folder / f"{quote(subject_id, safe='._-@')}+{quote(session_id, safe='._-@')}" \
        f"{SPOOL_SUFFIX}"


def leftover_spools(folder: Path, own: Path) -> list[Path]:
    """Spools in ``folder`` other than ``own``, oldest first (by modification time)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"*{SPOOL_SUFFIX}") if p.is_file() and p != own]
    return sorted(found, key=lambda p: p.stat().st_mtime)


class _Lock:
    """An exclusive, non-blocking lock on ``path`` (a small file holding the owner's pid)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        fh = self.path.open("a+", encoding="ascii")
        try:
            _lock_file(fh)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def owner(self) -> str:
        with contextlib.suppress(OSError):
            return self.path.read_text(encoding="ascii").strip() or "?"
        return "?"

    def release(self, unlink: bool = False) -> None:
        if self._fh is None:
            return
        if unlink:  # while still holding it: whoever opens it next makes a new file
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._fh.close()  # closing the file releases the lock
        self._fh = None


def _lock_file(fh: IO[str]) -> None:
    """Lock ``fh`` exclusively or raise OSError (flock on POSIX, msvcrt on Windows)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


class SpoolOutbox(Outbox):
    """The outbox of one session in a SQLite file, owned (locked) by this process.

    Use :meth:`open`. ``context`` may be set to a callable whose text is added to the
    "spool full" error (the owner's view of the broker).
    """

    durable = True

    def __init__(self, path: Path, db: sqlite3.Connection, lock: _Lock, max_bytes: int) -> None:
        super().__init__()
        self.path, self.max_bytes = path, max_bytes
        self._db, self._lock = db, lock
        self._meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        n, size, n_chunks = db.execute("SELECT count(*), coalesce(sum(length(value)), 0), "
                                       "count(source_id) FROM outbox").fetchone()
        self.rows, self.bytes, self.chunks = int(n), int(size), int(n_chunks)
        self.oldest_at = self._oldest()
        self.context: Callable[[], str] = lambda: ""

    @classmethod
    def open(cls, path: Path, *, max_bytes: int, subject_id: str | None = None,
             session_id: str | None = None, create: bool = True) -> SpoolOutbox:
        """Lock and open (or create) a spool.

        Parameters
        ----------
        path : Path
            The spool file (:func:`spool_file`); its folder is created (mode 0700: the spool
            holds health data).
        max_bytes : int
            Most payload bytes held; appending more raises :class:`SpoolFullError`.
        subject_id, session_id : str, optional
            Written into a new spool; an existing one must hold the same.
        create : bool
            Create the spool if it does not exist (else :class:`SpoolError`).

        Raises
        ------
        SpoolLockedError
            If another process owns the spool.
        SpoolError
            If the file is not a spool of this version, belongs to another session, or
            is gone (``create=False``).
        """
        lock = _Lock(path.with_name(path.name + ".lock"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            acquired = lock.acquire()
        except OSError as err:
            msg = (f"cannot use the spool folder {path.parent}: {err}. Point "
                   "SLEEPSTREAM_SPOOL_DIR (--spool-dir) at a folder this user can write.")
            raise SpoolError(msg) from err
        if not acquired:
            msg = (f"spool {path} is in use by another ingestor (process {lock.owner()}); two "
                   "ingestors must not send one session. Stop the other one, or give this "
                   "one another session id.")
            raise SpoolLockedError(msg)
        try:
            if not create and not path.is_file():  # sent and removed by its owner meanwhile
                msg = f"spool {path} is gone"
                raise SpoolError(msg)
            db = _connect(path)
            spool = cls(path, db, lock, max_bytes)
            spool._claim(subject_id, session_id)
        except BaseException:
            lock.release()
            raise
        return spool

    def _claim(self, subject_id: str | None, session_id: str | None) -> None:
        meta = self._meta
        if meta.get("format", _FORMAT) != _FORMAT:
            self.close()
            msg = (f"spool {self.path} has format {meta['format']!r}, this sleepstream reads "
                   f"format {_FORMAT!r}; send it with the version that wrote it, or move it away")
            raise SpoolError(msg)
        wanted = {"subject_id": subject_id, "session_id": session_id}
        for name, value in wanted.items():
            if value is not None and meta.get(name, value) != value:
                self.close()
                msg = (f"spool {self.path} belongs to {name} {meta[name]!r}, not {value!r}; "
                       "move it away")
                raise SpoolError(msg)
        fresh = {k: v for k, v in wanted.items() if v is not None and k not in meta}
        if fresh or "format" not in meta:
            self._store([], {"format": _FORMAT, **fresh,
                             "created_utc": meta.get("created_utc",
                                                     datetime.now(UTC).isoformat())}, 0.0)

    def meta(self) -> dict[str, str]:
        """The meta table."""
        return dict(self._meta)

    def _store(self, rows: Sequence[Row], meta: Mapping[str, str], at: float) -> None:
        size = sum(len(r.value) for r in rows)
        if rows and self.bytes + size > self.max_bytes:
            raise SpoolFullError(self._full_message(size))
        if rows:
            meta = {**meta, "appended_at": repr(at)}
        with self._db:  # one transaction: rows and the meta that describes them
            self._db.executemany(
                "INSERT INTO outbox (topic, key, value, session_id, source_id, seq, "
                "spooled_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [(*r, at) for r in rows])
            self._db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                "SET value = excluded.value", list(meta.items()))
        self._meta.update(meta)

    def _load_after(self, after_id: int, limit: int) -> list[Stored]:
        cur = self._db.execute(
            "SELECT id, topic, key, value, session_id, source_id, seq, spooled_at FROM outbox "
            "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [Stored(i, Row(topic, bytes(key), bytes(value), session, source, seq), at)
                for i, topic, key, value, session, source, seq, at in cur]

    def _delete_through(self, last: Stored) -> float | None:
        # A removal lost in a power cut only means a re-send (a duplicate the worker drops),
        # so it skips the fsync: the next append's commit writes it out anyway.
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._db:
                self._db.execute("DELETE FROM outbox WHERE id <= ?", (last.id,))
        finally:
            self._db.execute("PRAGMA synchronous=FULL")
        return self._oldest()

    def _oldest(self) -> float | None:
        row = self._db.execute("SELECT spooled_at FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def _full_message(self, adding: int) -> str:
        since = self.backlog().since
        when = "" if since is None else f" since {since.astimezone():%Y-%m-%d %H:%M:%S %Z}"
        who = f"subject {self._meta.get('subject_id')!r} (session {self._meta.get('session_id')})"
        return (f"spool {self.path} of {who} is full: {self.rows} messages, "
                f"{self.bytes / 1e6:.1f} MB waiting{when}, {adding} bytes more do not fit the "
                f"limit of {self.max_bytes / 1e6:.1f} MB (SLEEPSTREAM_SPOOL_MAX_MB)"
                f"{self.context()}. The session stops here; what the spool holds is sent when "
                "an ingestor runs again and reaches the broker. Start the broker or point "
                "SLEEPSTREAM_BROKER at it, or raise SLEEPSTREAM_SPOOL_MAX_MB (--spool-max-mb).")

    def close(self, delete: bool = False) -> None:
        """Close the file and release the lock.

        ``delete`` removes the spool; only for one that holds nothing to send.
        """
        self._db.close()
        if delete:
            for part in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}{part}").unlink()
        self._lock.release(unlink=delete)


def _connect(path: Path) -> sqlite3.Connection:
    """Open the SQLite file (created with mode 0600) and make sure the tables exist."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.isolation_level = "DEFERRED"  # `with db:` wraps a transaction from here on
        with db:
            for statement in _SCHEMA:
                db.execute(statement)
    except sqlite3.DatabaseError as err:
        db.close()
        msg = (f"{path} is not a readable sleepstream spool (SQLite: {err}); move it out of "
               "the spool folder")
        raise SpoolError(msg) from err
    return db
