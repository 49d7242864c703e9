from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from ingestors.sleep_accel import read_subject
from models.features import compute_features
from stream.engine import Outcome, SeqWindow, Session, SubjectProcessor
from stream.schemas import SampleChunk

START = datetime(2026, 11, 21, 22, 30, tzinfo=UTC)


def _night():  # type: ignore[no-untyped-def]
    night = read_subject(sleep_accel_sample(), SAMPLE_NIGHT)
    assert night.labels is not None and night.heart_rate is not None and night.counts is not None
    return night


def _chunks(t: np.ndarray, v: np.ndarray, modality: str, unit: str, source: str,
            span_s: float) -> list[SampleChunk]:
    out = []
    edges = np.floor(t / span_s).astype(int)
    for seq, k in enumerate(np.unique(edges)):
        sel = edges == k
        t0 = START + timedelta(seconds=float(k * span_s))
        out.append(SampleChunk(
            subject_id="s1", session_id="n1", source_id=source, seq=seq, modality=modality,
            unit=unit, t0_utc=t0, offsets_s=tuple(float(x) - k * span_s for x in t[sel]),
            values=tuple(float(x) for x in v[sel]),
        ))
    return out


def _replay(proc: SubjectProcessor, chunks: list[SampleChunk]) -> list[np.ndarray]:
    rows = []
    for c in chunks:
        outcome, reason = proc.apply(c)
        assert outcome is not Outcome.REJECTED, reason
        rows += [e.row for e in proc.close(proc.due())]
    return rows


def test_stream_rows_equal_batch_features() -> None:
    night = _night()
    hr, counts, n = night.heart_rate, night.counts, len(night.labels)  # type: ignore[union-attr,arg-type]
    session = Session("s1", "n1", START, "wearable", "UTC", False, ("heart_rate",))
    chunks = _chunks(hr.t_s, hr.values, "heart_rate", "bpm", "hr", 5.0)  # type: ignore[union-attr]
    chunks += _chunks(counts.t_s, counts.values, "activity_counts", "count", "act", 15.0)  # type: ignore[union-attr]
    chunks.sort(key=lambda c: (c.t0_utc, c.source_id))
    proc = SubjectProcessor(session, grace_s=30.0)
    rows = _replay(proc, chunks)
    rows += [e.row for e in proc.close_until(START + timedelta(seconds=n * 30))]
    batch = compute_features(
        "wearable", START, n, heart_rate=(hr.t_s, hr.values),  # type: ignore[union-attr]
        activity_counts=(counts.t_s, counts.values),  # type: ignore[union-attr]
    )
    assert len(rows) == n
    assert np.array_equal(np.stack(rows), batch)


def test_duplicates_dropped_and_state_round_trip() -> None:
    night = _night()
    hr = night.heart_rate
    session = Session("s1", "n1", START, "wearable", "UTC", False, ("heart_rate",))
    chunks = _chunks(hr.t_s[:600], hr.values[:600], "heart_rate", "bpm", "hr", 5.0)  # type: ignore[union-attr]
    a = SubjectProcessor(session)
    b = SubjectProcessor(session)
    half = len(chunks) // 2
    rows_a = _replay(a, chunks)
    rows_b = _replay(b, chunks[:half])
    b = SubjectProcessor.from_state(json.loads(json.dumps(b.to_state())))
    # a second delivery of the first half changes nothing
    assert all(b.apply(c)[0] is Outcome.DUPLICATE for c in chunks[:half])
    rows_b += _replay(b, chunks[half:])
    assert np.array_equal(np.stack(rows_a), np.stack(rows_b))
    window = a.close(1)[0]
    assert window.window.shape == (25, len(window.row))
    assert window.valid.sum() == 25


def test_late_and_foreign_chunks_are_rejected_with_reason() -> None:
    session = Session("s1", "n1", START, "wearable", "UTC", False, ("heart_rate",))
    proc = SubjectProcessor(session, grace_s=0.0)
    mk = lambda seq, t0, vals, **kw: SampleChunk(  # noqa: E731
        subject_id=kw.get("subject", "s1"), session_id=kw.get("session", "n1"),
        source_id="hr", seq=seq, modality="heart_rate", unit="bpm",
        t0_utc=START + timedelta(seconds=t0), offsets_s=tuple(range(len(vals))), values=vals)
    assert proc.apply(mk(0, 0, (60.0, 61.0)))[0] is Outcome.ACCEPTED
    assert proc.apply(mk(1, 95, (62.0,)))[0] is Outcome.ACCEPTED
    assert len(proc.close(proc.due())) == 3
    outcome, reason = proc.apply(mk(2, 10, (60.0,)))
    assert outcome is Outcome.REJECTED and "heart_rate" in reason
    outcome, reason = proc.apply(mk(3, 100, (60.0,), session="n2"))
    assert outcome is Outcome.REJECTED and "session 'n2'" in reason


def test_silent_subject_closes_on_the_live_clock() -> None:
    session = Session("s1", "n1", START, "wearable", "UTC", False, ("heart_rate",))
    proc = SubjectProcessor(session, grace_s=10.0)
    assert proc.due() == 0
    assert proc.due(now_s=95.0) == 2  # (95 - 10) // 30
    closed = proc.close(proc.due(now_s=95.0))
    assert [e.has_data for e in closed] == [False, False]


@pytest.mark.parametrize(("size", "seen_4"), [(4, True), (4096, False)])
def test_seq_window(size: int, seen_4: bool) -> None:
    w = SeqWindow(size)
    for s in (0, 1, 3, 2, 10):
        assert not w.seen(s)
        w.add(s)
    assert w.seen(3)
    # 4 was never sent: only a small window takes it for too old to tell
    assert w.seen(4) is seen_4
    assert SeqWindow.from_state(w.to_state(), size).seen(10)
