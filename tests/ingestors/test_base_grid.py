"""The grid that cuts streams into chunks: live cutting equals the replay's, whatever the timing."""

from __future__ import annotations

import numpy as np
import pytest

from ingestors.base import DEFAULT_SPANS, GridChunker, grid_cells, split
from ingestors.live_edf import RPeakDetector
from ingestors.replay import ReplayStream, plan_night
from tests.ingestors._live_edf_data import synth_ecg
from tests.ingestors.test_replay import synthetic


def cut_whole(t: np.ndarray, span: float, max_samples: int) -> list[tuple[int, int]]:
    return [r for _, a, b in grid_cells(t, span) for r in split(a, b, max_samples)]


def fed_in_pieces(t: np.ndarray, v: np.ndarray, span: float, max_samples: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Feed the chunker in random pieces, asking for ready chunks at random watermarks
    that never pass a sample still to come."""
    chunker = GridChunker(span, max_samples)
    out: list[np.ndarray] = []
    i = 0
    while i < t.size:
        j = min(t.size, i + int(rng.integers(1, 40)))
        chunker.add(t[i:j], v[i:j])
        i = j
        for _ in range(int(rng.integers(0, 3))):
            upto = t[i] if i < t.size else t[-1] + span
            out += [p.t_s for p in chunker.ready(float(rng.uniform(t[i - 1], upto)))]
    out += [p.t_s for p in chunker.rest()]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_live_cutting_gives_the_same_chunks_whatever_the_delivery(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(-3.0, 120.0, 400))
    v = rng.normal(60.0, 5.0, t.size)
    expected = [t[a:b] for a, b in cut_whole(t, 5.0, 7)]
    for _ in range(3):
        got = fed_in_pieces(t, v, 5.0, 7, rng)
        assert len(got) == len(expected)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))


def test_live_cutting_equals_the_replay_plan() -> None:
    t = np.concatenate([[-40.0, -1.0], np.arange(0.0, 90.0, 0.37)])
    values = np.column_stack([np.sin(t), np.cos(t), t / 100.0])
    night = synthetic({"acceleration": ReplayStream(t, values)}, n_epochs=3)
    plan = plan_night(night, anchor="original", max_samples=11)
    chunker = GridChunker(DEFAULT_SPANS["acceleration"], 11)
    chunker.add(t, values)
    pieces = chunker.ready(90.0) + chunker.rest()
    chunks = [c for _, c in plan.chunks()]
    assert len(pieces) == len(chunks)
    for seq, (piece, chunk) in enumerate(zip(pieces, chunks, strict=True)):
        live = plan.info.chunk("acceleration", seq, piece.t_s, piece.values)
        assert live == chunk  # the same message, bit for bit


def test_a_cell_is_cut_only_once_the_watermark_passes_its_end() -> None:
    chunker = GridChunker(5.0, 100)
    chunker.add(np.array([0.5, 4.9, 5.1]), np.array([1.0, 2.0, 3.0]))
    assert chunker.ready(4.99) == [] and chunker.pending == 3
    (first,) = chunker.ready(5.0)
    assert first.t_s.tolist() == [0.5, 4.9] and chunker.pending == 1
    # a sample that comes after its cell was cut is not lost: it goes out on its own
    chunker.add(np.array([5.1, 7.0]), np.array([4.0, 5.0]))
    assert [p.values.tolist() for p in chunker.rest()] == [[3.0, 4.0, 5.0]]


def test_beat_types_follow_their_samples_and_times_must_not_go_back() -> None:
    chunker = GridChunker(5.0, 2)
    chunker.add(np.array([1.0, 2.0, 3.0]), np.array([0.9, 1.0, 1.1]), ("N", "S", "V"))
    assert [p.beat_types for p in chunker.rest()] == [("N", "S"), ("V",)]
    with pytest.raises(ValueError, match="must not decrease"):
        chunker.add(np.array([2.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="one value per time"):
        chunker.add(np.array([4.0, 5.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="span"):
        GridChunker(0.0)
    with pytest.raises(ValueError, match="max_samples"):
        GridChunker(5.0, 0)


def test_the_rpeak_detector_reports_no_beat_before_its_settled_index() -> None:
    ecg, _ = synth_ecg(256, 60.0, seed=5)
    rng = np.random.default_rng(6)
    detector = RPeakDetector(256)
    settled, i = 0, 0
    while i < ecg.size:
        j = min(ecg.size, i + int(rng.integers(1, 700)))
        beats = detector.process(ecg[i:j])
        assert np.all(beats >= settled)
        settled = detector.settled()
        assert settled <= detector.n_samples
        i = j
    assert detector.n_samples - settled < 0.5 * 256 + 1.2 * 256  # lags by about a beat
