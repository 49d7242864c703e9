"""The outboxes (memory, SQLite spool) and the session sender that fills them."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ingestors.base import (
    MemoryOutbox,
    Row,
    SessionInfo,
    SessionSender,
    SpoolError,
    SpoolFullError,
    SpoolLockedError,
    SpoolOutbox,
    Topics,
    leftover_spools,
    spool_file,
)
from stream.schemas import SampleChunk, SessionEvent

START = datetime(2024, 5, 1, 22, 0, 0, tzinfo=UTC)
INFO = SessionInfo("subject-1", "night-1", "test strap", "wearable", ("heart_rate",), "UTC",
                   START)
TOPICS = Topics("t.sessions", "t.samples")


def rows(n: int, start: int = 0) -> list[Row]:
    return [Row("t.samples", b"subject-1", f"value-{i}".encode(), "night-1",
                "night-1-heart_rate", i) for i in range(start, start + n)]


def open_spool(folder: Path, max_bytes: int = 10**9, subject: str = "subject-1",
               session: str = "night-1") -> SpoolOutbox:
    return SpoolOutbox.open(spool_file(folder, subject, session), max_bytes=max_bytes,
                            subject_id=subject, session_id=session)


@pytest.mark.parametrize("kind", ["memory", "spool"])
def test_rows_come_back_in_order_and_leave_only_when_removed(kind: str, tmp_path: Path) -> None:
    outbox = MemoryOutbox() if kind == "memory" else open_spool(tmp_path)
    outbox.append(rows(5))
    outbox.append(rows(3, 5))
    first = outbox.after(0, 4)
    assert [s.row.seq for s in first] == [0, 1, 2, 3]
    assert [s.row.seq for s in outbox.after(first[-1].id, 100)] == [4, 5, 6, 7]
    outbox.remove(first[:2])
    backlog = outbox.backlog()
    assert (backlog.rows, backlog.chunks) == (6, 6)
    assert backlog.bytes == sum(len(r.value) for r in rows(6, 2))
    assert backlog.since is not None and "backlog 6 chunks" in backlog.text()
    assert [s.row.seq for s in outbox.after(0, 100)] == [2, 3, 4, 5, 6, 7]
    outbox.remove(outbox.after(0, 100))
    assert outbox.backlog().text() == "backlog 0" and not outbox.finished
    outbox.seal()
    assert outbox.finished
    with pytest.raises(RuntimeError, match="sealed"):
        outbox.append(rows(1))
    if isinstance(outbox, SpoolOutbox):
        outbox.close()


def test_a_spool_keeps_rows_and_meta_across_a_reopen(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(rows(4), {"seqs": json.dumps({"night-1-heart_rate": 3})})
    spool.remove(spool.after(0, 1))
    spool.close()
    again = open_spool(tmp_path)
    assert again.rows == 3 and again.chunks == 3 and again.durable
    assert [s.row for s in again.after(0, 10)] == rows(3, 1)
    assert again.meta()["seqs"] == '{"night-1-heart_rate": 3}'
    assert again.meta()["subject_id"] == "subject-1" and again.meta()["format"] == "1"
    again.append(rows(1, 4))
    assert again.after(0, 10)[-1].id == 5  # ids keep growing: the order survives
    assert oct(spool.path.stat().st_mode & 0o777) == "0o600"
    assert oct(spool.path.parent.stat().st_mode & 0o777) == "0o700"
    again.close(delete=True)
    assert not spool.path.exists() and not list(tmp_path.iterdir())


def test_a_spool_is_owned_by_one_process_at_a_time(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    with pytest.raises(SpoolLockedError, match=rf"in use by another ingestor \(process "
                                               rf"{os.getpid()}\)"):
        open_spool(tmp_path)
    assert leftover_spools(tmp_path, spool_file(tmp_path, "x", "y")) == [spool.path]
    spool.close()
    open_spool(tmp_path).close()


def test_a_full_spool_says_what_how_much_since_when_and_how_to_fix(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, max_bytes=30)
    spool.context = lambda: "; the broker at 127.0.0.1:9 has acknowledged nothing since 22:01"
    spool.append(rows(3))  # 21 bytes
    with pytest.raises(SpoolFullError) as caught:
        spool.append(rows(2, 3))
    text = str(caught.value)
    for part in (str(spool.path), "subject 'subject-1' (session night-1) is full",
                 "3 messages", "waiting since", "limit of 0.0 MB (SLEEPSTREAM_SPOOL_MAX_MB)",
                 "acknowledged nothing since 22:01", "raise SLEEPSTREAM_SPOOL_MAX_MB"):
        assert part in text
    assert spool.rows == 3  # the refused rows were not half written
    spool.close()


def test_damaged_and_foreign_spools_are_refused(tmp_path: Path) -> None:
    bad = spool_file(tmp_path, "subject-1", "night-1")
    bad.write_bytes(b"this is not a database, just some bytes " * 40)
    with pytest.raises(SpoolError, match="not a readable sleepstream spool"):
        open_spool(tmp_path)
    bad.unlink()
    open_spool(tmp_path, session="night-2").close()
    spool_file(tmp_path, "subject-1", "night-2").rename(bad)
    with pytest.raises(SpoolError, match="belongs to session_id 'night-2', not 'night-1'"):
        open_spool(tmp_path)


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    with pytest.raises(SpoolError, match=r"cannot use the spool folder .*file-not-folder.* "
                                         r"SLEEPSTREAM_SPOOL_DIR \(--spool-dir\)"):
        open_spool(blocked / "spool")


def test_spool_names_cannot_collide() -> None:
    folder = Path("/spool")
    assert spool_file(folder, "a+b", "c") != spool_file(folder, "a", "b+c")
    assert spool_file(folder, "me@lab:1", "n.1").name == "me@lab%3A1+n.1.spool"


def chunk(seq: int, t: float) -> SampleChunk:
    return INFO.chunk("heart_rate", seq, np.array([t]), np.array([60.0]))


def test_the_sender_numbers_chunks_and_ends_with_the_final_seq() -> None:
    outbox = MemoryOutbox()
    sender = SessionSender(INFO, outbox, TOPICS)
    sender.start()
    sender.start()  # once only
    sender.put([chunk(0, 1.0), chunk(1, 6.0)])
    with pytest.raises(ValueError, match=r"expected night-1-heart_rate#2"):
        sender.put([chunk(3, 11.0)])
    final = sender.end(START + timedelta(seconds=30))
    assert final == {"night-1-heart_rate": 1}
    stored = [s.row for s in outbox.after(0, 10)]
    assert [r.topic for r in stored] == ["t.sessions", "t.samples", "t.samples", "t.sessions"]
    assert [r.barrier for r in stored] == [True, False, False, True]
    start, end = (SessionEvent.model_validate_json(stored[i].value) for i in (0, -1))
    assert (start.event, end.event, end.final_seq) == ("start", "end", final)
    assert {r.key for r in stored} == {b"subject-1"}


def test_a_spooled_session_resumes_numbering_on_or_regenerating(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    first = SessionSender(INFO, spool, TOPICS)
    first.start()
    first.put([chunk(0, 1.0), chunk(1, 6.0)], {"records": 12})
    spool.close()
    spool = open_spool(tmp_path)
    assert SessionSender.resumable(spool) == INFO
    assert SessionSender.progress(spool) == {"records": 12}
    device = SessionSender(INFO, spool, TOPICS)  # a device: numbering goes on
    device.start()
    assert device.take_seq("heart_rate") == 2
    spool.close()
    spool = open_spool(tmp_path)
    again = SessionSender(INFO, spool, TOPICS, regenerates=True)  # a file read again
    assert [again.take_seq("heart_rate") for _ in range(3)] == [None, None, 2]
    again.put([chunk(2, 11.0)])
    assert again.end(START) == {"night-1-heart_rate": 2}
    assert [s.row.seq for s in spool.after(0, 10)] == [None, 0, 1, 2, None]
    spool.close()


def test_a_spool_is_not_resumed_as_another_session(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    SessionSender(INFO, spool, TOPICS).start()
    later = SessionInfo(**{**INFO.__dict__, "start": START + timedelta(hours=1)})
    with pytest.raises(ValueError, match=r"holds session night-1 of subject 'subject-1' as "
                                         r"another session .*start: spooled"):
        SessionSender(later, spool, TOPICS)
    spool.close()
    db = sqlite3.connect(spool.path)
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (1,)
    db.close()
