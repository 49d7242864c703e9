"""psg sessions in the engine: raw EEG chunks to rows equal to the batch, closing, rejects, state.

No Kafka here: :class:`~stream.engine.SubjectProcessor` is fed chunks as the worker feeds
it (apply, then close what is due), and its rows are compared with
:func:`~stream.eeg_assembly.eeg_night_rows` on the same samples.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stream.eeg_assembly import EegSignal, eeg_night_rows
from stream.engine import Outcome, Session, SubjectProcessor
from stream.schemas import SampleChunk
from tests.stream._psg import EegNight, generated_night


def session_of(night: EegNight) -> Session:
    return Session.from_event(night.start_event())


def run(night: EegNight, chunks: list[SampleChunk], *, grace_s: float = 30.0,
        restart_every: int = 0) -> tuple[SubjectProcessor, list]:
    """Feed chunks as the worker does; optionally restore from JSON every few chunks."""
    proc = SubjectProcessor(session_of(night), grace_s=grace_s)
    closed = []
    for i, chunk in enumerate(chunks):
        outcome, reason = proc.apply(chunk)
        assert outcome is Outcome.ACCEPTED, reason
        closed += proc.close(proc.due())
        if restart_every and i % restart_every == restart_every - 1:
            proc = SubjectProcessor.from_state(json.loads(json.dumps(proc.to_state())))
    closed += proc.close_until(night.end_event(chunks).t_utc)
    return proc, closed


def assert_equals_batch(night: EegNight, closed: list,
                        signals: list[EegSignal] | None = None) -> None:
    batch = eeg_night_rows(signals or night.signals(), night.n_epochs)
    assert [e.index for e in closed] == list(range(night.n_epochs))
    np.testing.assert_array_equal(np.stack([e.row for e in closed]), batch.features)
    np.testing.assert_array_equal(np.stack([e.present for e in closed]), batch.present)


@pytest.mark.parametrize(("fs", "n_channels", "span"), [
    (100.0, 1, 30.0), (100.0, 2, 7.0), (256.0, 2, 5.0), (256.0, 6, 30.0), (200.0, 1, 13.3),
])
def test_rows_equal_the_batch_computation(fs: float, n_channels: int, span: float) -> None:
    stages = ["W"] * 4 + ["N2"] * 3 + ["N3"] * 4 + ["W"]
    night = generated_night("gen", stages, fs, n_channels, seed=n_channels)
    _, closed = run(night, night.chunks(span))
    assert_equals_batch(night, closed)
    # the last epoch ends the recording: its measures are final only at the session end,
    # and every other epoch of every channel has them
    present = np.stack([e.present for e in closed])
    assert present.all()
    assert all(e.inputs.eeg_channels == n_channels for e in closed)


def test_restarts_from_json_checkpoints_change_nothing() -> None:
    night = generated_night("gen", ["W", "N3"] * 5, 256.0, 3, seed=4, dtype="float32")
    _, closed = run(night, night.chunks(5.0), restart_every=7)
    assert_equals_batch(night, closed)


def test_complete_epochs_close_without_waiting_for_the_grace_period() -> None:
    night = generated_night("gen", ["W"] * 6, 256.0, 2)
    proc = SubjectProcessor(session_of(night), grace_s=30.0)
    chunks = night.chunks(5.0)  # both channels, 5 s at a time
    closed_after = {}
    for chunk in chunks:
        assert proc.apply(chunk)[0] is Outcome.ACCEPTED
        for e in proc.close(proc.due()):
            closed_after[e.index] = proc.watermark_s
    # epoch k closes as soon as both channels have 0.72 s (the resampler's delay) past its
    # end: with 5-s chunks, at the chunk ending 5 s after it, long before end + grace
    for k, t in closed_after.items():
        assert 30 * (k + 1) < t < 30 * (k + 1) + 5.0, (k, t)
    assert sorted(closed_after) == list(range(5))


def test_a_silent_channel_is_masked_and_its_epochs_close_by_event_time() -> None:
    night = generated_night("gen", ["W"] * 8, 100.0, 2)
    proc = SubjectProcessor(session_of(night), grace_s=10.0)
    closed = []
    for chunk in night.chunks(5.0):
        # Pz-Oz stops after 100 s (inside epoch 3): a loose electrode
        if chunk.channel == "Pz-Oz" and chunk.sample0 >= 100 * 100:
            continue
        assert proc.apply(chunk)[0] is Outcome.ACCEPTED
        closed += proc.close(proc.due())
    # epochs 0-2 closed at once (both channels final); later ones wait for end + grace
    by_index = {e.index: e for e in closed}
    assert max(by_index) == math.floor((proc.watermark_s - 10.0) / 30.0) - 1
    np.testing.assert_array_equal([by_index[k].present for k in range(3)], [[True, True]] * 3)
    for k in range(3, max(by_index) + 1):
        e = by_index[k]
        assert e.present.tolist() == [True, False] and e.has_data
        assert e.inputs.eeg_channels == 1
        assert not e.window[-1, 1].any() and e.valid[-1].tolist() == [1.0, 0.0]
    # the amplitude is the RMS of the one channel present: its variance at 100 Hz
    x = night.channels[0].uv[3 * 3000: 4 * 3000]
    assert by_index[3].inputs.eeg_rms_uv == pytest.approx(float(np.sqrt(np.var(x))), rel=1e-9)


def test_a_gap_masks_the_epochs_around_it_as_the_batch_does() -> None:
    night = generated_night("gen", ["N3"] * 10, 256.0, 2, seed=3)
    chunks = night.chunks(5.0)
    lost = [c for c in chunks if c.channel == "Fpz-Cz" and 95 <= c.sample0 / 256 < 105]
    kept = [c for c in chunks if c not in lost]
    _, closed = run(night, kept)
    # the batch sees the same loss as missing (non-finite) samples
    signals = night.signals()
    x = night.channels[0].uv
    x[95 * 256: 105 * 256] = np.nan
    signals[0] = signals[0]._replace(x_uv=x)
    assert_equals_batch(night, closed, signals)
    present = np.stack([e.present for e in closed])
    assert present[:, 0].tolist() == [True] * 3 + [False] * 1 + [True] * 6
    assert present[:, 1].all()


def test_unusable_chunks_are_rejected_with_the_reason_and_change_nothing() -> None:
    night = generated_night("gen", ["W"] * 4, 256.0, 3)
    proc = SubjectProcessor(session_of(night), grace_s=0.0)
    chunks = [c for c in night.chunks(10.0) if c.channel != "C3-M2"]  # C3-M2 sends nothing
    for c in chunks[:8]:  # 40 s of two channels: epoch 0 closed
        proc.apply(c)
        proc.close(proc.due())
    assert proc.n_closed == 1
    first = chunks[0]
    base = first.model_dump(exclude={"data_b64", "dtype", "scale", "offset"})
    raw = np.zeros(256, np.int16)

    def chunk(**changes: object) -> SampleChunk:
        return SampleChunk.compact(raw, **{**base, "seq": 99, **changes})

    cases = {
        "not one of the session's channels": chunk(channel="O2-M1"),
        "sampled at 256 Hz in this session": chunk(rate_hz=512.0, sample0=100_000),
        "arrive after epoch 0 closed": chunk(sample0=20 * 256),
        "before the end of the samples already fed": chunk(sample0=40 * 256 - 10),
        "the EEG front-end needs >= 100 Hz": chunk(channel="C3-M2", rate_hz=50.0,
                                                   sample0=10_000),
    }
    before = json.dumps(proc.to_state())
    for expected, c in cases.items():
        outcome, reason = proc.apply(c)
        assert outcome is Outcome.REJECTED and expected in reason, (expected, reason)
    hr = SampleChunk(subject_id="gen", session_id=night.session_id, source_id="hr", seq=0,
                     modality="heart_rate", unit="bpm", t0_utc=night.start,
                     offsets_s=(50.0,), values=(60.0,))
    outcome, reason = proc.apply(hr)
    assert outcome is Outcome.REJECTED and "psg sessions take eeg chunks" in reason
    assert json.dumps(proc.to_state()) == before


def test_state_size_per_subject() -> None:
    """The checkpoint of a 6-channel 256-Hz subject mid-night: front-ends, rows, context."""
    night = generated_night("gen", ["W", "N3"] * 15, 256.0, 6, seed=2)
    proc = SubjectProcessor(session_of(night), grace_s=30.0)
    for c in night.chunks(5.0)[: 6 * 6 * 27]:  # 27 epochs of 6 chunks of 6 channels
        proc.apply(c)
        proc.close(proc.due())
    assert proc.n_closed >= 25  # a full causal window is kept
    state = json.dumps(proc.to_state())
    parts = {k: len(json.dumps(v)) for k, v in proc.to_state()["eeg"].items()}
    per_front = parts["fronts"] / 6
    # D measured ~8.5 KB per 256-Hz channel; the whole checkpoint stays well under 100 KB
    assert 6_000 < per_front < 10_000, parts
    assert len(state) < 100_000, (len(state), parts)
