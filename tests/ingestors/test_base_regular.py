"""Regular high-rate signals (EEG): the grid by sample index, compact chunks, source ids."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from ingestors.base import (
    LiveSession,
    MemoryOutbox,
    RegularChunker,
    RegularSpec,
    SessionInfo,
    SessionSender,
    Topics,
    check_raw,
    regular_pieces,
)
from stream.schemas.base import ID_PATTERN
from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent

START = datetime(2024, 3, 9, 22, 0, tzinfo=UTC)
TOPICS = Topics("t.sessions", "t.samples")


def psg_info(channels: tuple[str, ...], session: str = "night-1") -> SessionInfo:
    return SessionInfo("subject-1", session, "test", "psg", ("eeg",), "UTC", START,
                       channels=channels)


@pytest.mark.parametrize(("rate", "per_cell"), [(100.0, 500), (256.0, 1280), (200.0, 1000)])
def test_cells_hold_the_samples_of_5_s_by_index(rate: float, per_cell: int) -> None:
    cells = list(regular_pieces(0, 3 * per_cell + 7, rate, 5.0, max_samples=100_000))
    assert [(c, a, b) for c, a, b in cells] == [
        (0, 0, per_cell), (1, per_cell, 2 * per_cell), (2, 2 * per_cell, 3 * per_cell),
        (3, 3 * per_cell, 3 * per_cell + 7)]
    # a run that starts inside a cell: the cell's rest first
    later = list(regular_pieces(per_cell - 3, 10, rate, 5.0))
    assert later == [(0, 0, 3), (1, 3, 10)]


def test_a_rate_with_a_fractional_cell_puts_each_sample_by_its_time() -> None:
    rate = 128.3  # 641.5 samples per 5 s
    pieces = list(regular_pieces(0, 5000, rate, 5.0))
    k = np.arange(5000)
    for cell, a, b in pieces:
        assert np.all(np.floor(k[a:b] / (rate * 5.0)) == cell)
    assert np.array_equal(np.concatenate([k[a:b] for _, a, b in pieces]), k)


def test_a_cell_over_max_samples_becomes_several_chunks() -> None:
    assert list(regular_pieces(0, 1280, 256.0, 5.0, max_samples=500)) == [
        (0, 0, 500), (0, 500, 1000), (0, 1000, 1280)]


def fed_in_blocks(raw: np.ndarray, rate: float, rng: np.random.Generator,
                  max_samples: int) -> list[tuple[int, np.ndarray]]:
    """Feed the chunker in random blocks (the polls of a live file); collect its chunks."""
    chunker = RegularChunker(rate, 5.0, max_samples)
    out: list[tuple[int, np.ndarray]] = []
    i = 0
    while i < raw.size:
        j = min(raw.size, i + int(rng.integers(1, 900)))
        chunker.add(i, raw[i:j])
        i = j
        out += [(p.sample0, p.raw) for p in chunker.ready()]
    out += [(p.sample0, p.raw) for p in chunker.rest()]
    assert chunker.pending == 0
    return out


@pytest.mark.parametrize("seed", range(4))
def test_live_cutting_gives_the_replay_chunks_whatever_the_polling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.integers(-3000, 3000, 12_345).astype(np.int16)
    expected = [(a, b) for _, a, b in regular_pieces(0, raw.size, 256.0, 5.0, max_samples=700)]
    for _ in range(3):  # other poll sizes each time
        got = fed_in_blocks(raw, 256.0, rng, 700)
        assert [(s0, s0 + r.size) for s0, r in got] == expected
        assert all(np.array_equal(r, raw[s0:s0 + r.size]) for s0, r in got)


def test_a_gap_splits_its_cell_and_nothing_is_cut_before_its_cell_is_complete() -> None:
    chunker = RegularChunker(100.0, 5.0)
    chunker.add(0, np.arange(499, dtype=np.int16))
    assert chunker.ready() == []  # sample 499 of cell 0 may still come
    chunker.add(499, np.array([1], dtype=np.int16))
    (first,) = chunker.ready()
    assert (first.sample0, first.raw.size) == (0, 500)
    chunker.add(700, np.arange(100, dtype=np.int16))  # samples 500..699 are missing
    chunker.add(800, np.arange(350, dtype=np.int16))
    pieces = chunker.ready()
    assert [(p.sample0, p.raw.size) for p in pieces] == [(700, 300)]  # cell 1 ends at 1000
    assert [(p.sample0, p.raw.size) for p in chunker.rest()] == [(1000, 150)]
    with pytest.raises(ValueError, match="must not overlap"):
        chunker.add(1100, np.arange(5, dtype=np.int16))
    with pytest.raises(ValueError, match="changed type"):
        chunker.add(1150, np.arange(5, dtype=np.float32))


def test_raw_samples_must_be_int16_or_float32_and_finite() -> None:
    assert check_raw(np.zeros(3, dtype=np.int16), "x").dtype == np.int16
    with pytest.raises(ValueError, match="int16 or float32"):
        check_raw(np.zeros(3), "EEG 'Cz'")
    with pytest.raises(ValueError, match="finite"):
        check_raw(np.array([1.0, np.nan], dtype=np.float32), "EEG 'Cz'")
    with pytest.raises(ValueError, match="rate_hz"):
        RegularSpec(0.0, 1.0, 0.0).check("EEG 'Cz'")
    with pytest.raises(ValueError, match="scale != 0"):
        RegularSpec(100.0, 0.0, 0.0).check("EEG 'Cz'")


def test_every_eeg_channel_has_its_own_safe_source_id() -> None:
    labels = ("Fpz-Cz", "EEG Fpz-Cz", "C3_M2", "C3 M2", "EEG(sec)", "Fp1/M2", "µV-chan",
              "C4:A1")
    info = psg_info(labels)
    ids = [info.source_id("eeg", label) for label in labels]
    assert ids[0] == "night-1-eeg-Fpz-Cz" and ids[1] == "night-1-eeg-EEG_20Fpz-Cz"
    assert ids[4] == "night-1-eeg-EEG_28sec_29" and ids[7] == "night-1-eeg-C4:A1"
    assert len(set(ids)) == len(ids)  # one-to-one: '_' itself is escaped
    assert all(re.fullmatch(ID_PATTERN, i) for i in ids)
    long_session = "s" * 100
    long_id = psg_info(("x" * 64,), long_session).source_id("eeg", "x" * 64)
    assert re.fullmatch(ID_PATTERN, long_id) and long_id.startswith(f"{long_session}-eeg-h")
    with pytest.raises(ValueError, match="names a channel exactly for eeg"):
        info.source_id("eeg")
    with pytest.raises(ValueError, match="names a channel exactly for eeg"):
        info.source_id("heart_rate", "Cz")
    with pytest.raises(ValueError, match="too long for the source ids"):
        psg_info(("Cz",), "s" * 126)  # refused when the session is made, before any send


def test_a_live_psg_session_sends_compact_chunks_in_time_order_over_its_channels() -> None:
    info = psg_info(("Fpz-Cz", "Pz-Oz"))
    outbox = MemoryOutbox()
    specs = {"Fpz-Cz": RegularSpec(100.0, 0.5, -1.0), "Pz-Oz": RegularSpec(256.0, 0.25, 2.0)}
    session = LiveSession(SessionSender(info, outbox, TOPICS), regular=specs)
    fpz = np.arange(1600, dtype=np.int16)  # 16 s at 100 Hz
    pz = (np.arange(4096) % 3000).astype(np.int16)  # 16 s at 256 Hz
    session.add_regular("Fpz-Cz", 0, fpz)
    session.add_regular("Pz-Oz", 0, pz)
    assert session.advance({}) == 6  # cells 0, 1, 2 of both
    final = session.finish(START)
    assert final == {info.source_id("eeg", "Fpz-Cz"): 3, info.source_id("eeg", "Pz-Oz"): 3}
    rows = [s.row for s in outbox.after(0, 100)]
    start = SessionEvent.model_validate_json(rows[0].value)
    assert start.channels == ("Fpz-Cz", "Pz-Oz") and start.family == "psg"
    chunks = [SampleChunk.model_validate_json(r.value) for r in rows[1:-1]]
    times = [c.times_s(START)[0] for c in chunks]
    assert times == sorted(times)  # one channel's backlog never runs ahead of the other's
    for label, raw, spec in (("Fpz-Cz", fpz, specs["Fpz-Cz"]), ("Pz-Oz", pz, specs["Pz-Oz"])):
        mine = [c for c in chunks if c.channel == label]
        assert [c.seq for c in mine] == [0, 1, 2, 3]
        assert all(c.dtype == "<i2" and c.rate_hz == spec.rate_hz and c.t0_utc == START
                   and (c.scale, c.offset) == (spec.scale, spec.offset) for c in mine)
        assert [c.sample0 for c in mine] == [0, *np.cumsum([len(c) for c in mine])[:-1]]
        got = np.concatenate([np.frombuffer(base64.b64decode(c.data_b64 or ""), "<i2")
                              for c in mine])
        assert np.array_equal(got, raw)
        values = np.concatenate([c.values_array() for c in mine])
        assert np.array_equal(values, spec.physical(raw))
    with pytest.raises(ValueError, match="exactly its EEG channels"):
        LiveSession(SessionSender(info, MemoryOutbox(), TOPICS), regular={})
