"""What every ingestor's session must look like on the broker (MNE's ``_test_raw_reader``).

:func:`check_session` takes the records of the topics (:func:`tests.ingestors._topics.read_topics`)
and what the ingestor was given, and checks the contract:

* the session start comes first: its first copy is older than every chunk, all copies equal;
* per source, the chunks in topic order are ``seq`` 0, 1, 2, ... the first time each appears
  (no gap, nothing after a newer one); a ``seq`` seen again is the same message, byte for
  byte (a re-send, which the worker drops);
* the session end comes last, carrying each source's final ``seq``;
* every chunk has ``t0_utc`` = the session start, and the samples, read once per ``seq``,
  are exactly the input samples; EEG channels (one source each, the id made by
  :meth:`~ingestors.base.SessionInfo.source_id`) arrive as compact chunks whose raw samples
  are exactly the recorded ones, consecutive by ``sample0`` from the expected index, with the
  channel's rate and calibration.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ingestors.base import RegularSpec, SessionInfo
from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent
from tests.ingestors._topics import Record


@dataclass(frozen=True)
class Sent:
    """What an ingestor was given: per modality the sample times in s since the session
    start (None where the ingestor stamps them itself, as BLE does with receive times)
    and values (acceleration: shape (n, 3)); per EEG channel the recorded (digital)
    samples, the index of the first on the session's grid, and the rate and calibration."""

    subject_id: str
    session_id: str
    samples: Mapping[str, tuple[np.ndarray | None, np.ndarray]]
    eeg: Mapping[str, tuple[np.ndarray, int, RegularSpec]] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One session as the worker sees it after de-duplication."""

    start: SessionEvent
    end: SessionEvent
    chunks: dict[str, list[SampleChunk]]  # by source, in seq order
    resent: int  # chunk copies dropped as duplicates


def check_session(records: list[Record], sent: Sent) -> Received:
    """Check the contract for one session; return it de-duplicated."""
    mine = [r for r in records if r.message.session_id == sent.session_id]
    assert all(r.message.subject_id == sent.subject_id for r in mine)
    starts = [r for r in mine if isinstance(r.message, SessionEvent) and r.message.event == "start"]
    ends = [r for r in mine if isinstance(r.message, SessionEvent) and r.message.event == "end"]
    assert starts and ends, f"session {sent.session_id}: start or end missing"
    assert len({r.value for r in starts}) == 1 and len({r.value for r in ends}) == 1
    start, end = starts[0].message, ends[0].message
    assert isinstance(start, SessionEvent) and isinstance(end, SessionEvent)
    chunk_records = sorted((r for r in mine if isinstance(r.message, SampleChunk)),
                           key=lambda r: (r.partition, r.offset))
    assert len({r.partition for r in chunk_records}) <= 1  # one key, one partition: one order
    first: dict[str, dict[int, Record]] = {}
    for r in chunk_records:
        chunk = r.message
        assert isinstance(chunk, SampleChunk)
        seen = first.setdefault(chunk.source_id, {})
        if chunk.seq in seen:
            assert seen[chunk.seq].value == r.value, f"{chunk.source_id}#{chunk.seq} differs"
            continue
        assert chunk.seq == len(seen), (f"{chunk.source_id}: seq {chunk.seq} after "
                                        f"{len(seen) - 1} (a gap, or late after newer ones)")
        seen[chunk.seq] = r
    kept = [r for by_seq in first.values() for r in by_seq.values()]
    if kept:
        assert min(r.timestamp_ms for r in starts) <= min(r.timestamp_ms for r in kept)
        assert max(r.timestamp_ms for r in kept) <= min(r.timestamp_ms for r in ends)
    assert end.final_seq == {s: len(by_seq) - 1 for s, by_seq in first.items()}
    chunks = {s: [r.message for r in by_seq.values()] for s, by_seq in first.items()}
    _check_samples(start, chunks, sent)  # type: ignore[arg-type]
    return Received(start, end, chunks, len(chunk_records) - len(kept))  # type: ignore[arg-type]


def _check_samples(start: SessionEvent, chunks: dict[str, list[SampleChunk]],
                   sent: Sent) -> None:
    info = SessionInfo.from_event(start)
    assert start.channels == tuple(sent.eeg)
    eeg_sources = {info.source_id("eeg", ch): ch for ch, (raw, _, _) in sent.eeg.items()
                   if raw.size}
    assert set(chunks) == {f"{sent.session_id}-{m}" for m, (_, v) in sent.samples.items()
                           if len(v)} | set(eeg_sources)
    for source, ch in eeg_sources.items():
        _check_regular(start, ch, chunks[source], *sent.eeg[ch])
    for modality, (t, v) in sent.samples.items():
        mine = chunks.get(f"{sent.session_id}-{modality}", [])
        assert all(c.t0_utc == start.t_utc and c.modality == modality for c in mine)
        got_t = np.concatenate([c.times_s(start.t_utc) for c in mine] or [np.empty(0)])
        got_v = np.concatenate([c.values_array() for c in mine] or [np.empty(0)])
        assert got_v.shape == v.shape and np.array_equal(got_v, v), f"{modality} values"
        if t is None:
            assert np.all(np.diff(got_t) >= 0), f"{modality} times go back"
        else:
            assert np.array_equal(got_t, t), f"{modality} times"


def _check_regular(start: SessionEvent, channel: str, chunks: list[SampleChunk],
                   raw: np.ndarray, sample0: int, spec: RegularSpec) -> None:
    """One EEG channel: compact chunks, consecutive from ``sample0``, the recorded samples."""
    assert all(c.modality == "eeg" and c.channel == channel and c.t0_utc == start.t_utc
               and c.rate_hz == spec.rate_hz and c.dtype in ("<i2", "<f4")
               and math.isclose(c.scale, spec.scale, rel_tol=1e-12)
               and math.isclose(c.offset, spec.offset, rel_tol=1e-12, abs_tol=1e-12)
               for c in chunks), f"EEG {channel}: chunk fields"
    starts = [c.sample0 for c in chunks]
    assert starts == [sample0, *(sample0 + np.cumsum([len(c) for c in chunks])[:-1])], \
        f"EEG {channel}: chunks are not consecutive"
    got = np.concatenate([np.frombuffer(base64.b64decode(c.data_b64 or ""), c.dtype or "<i2")
                          for c in chunks])
    assert got.shape == raw.shape and np.array_equal(got, raw), f"EEG {channel} samples"
    times = np.concatenate([c.times_s(start.t_utc) for c in chunks])
    assert np.array_equal(times, (sample0 + np.arange(raw.size)) / spec.rate_hz)
