"""The worker with psg sessions, without Faust: nights of 1, 2 and 6 EEG channels together.

The tables are dicts (tests/stream/_harness.py) and the psg models are the shipped ones. The
same logic runs under Faust in tests/stream/test_stream_psg.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from stream.eeg_assembly import EegAssembler, eeg_night_rows
from stream.schemas import SessionEvent, StageEvent
from stream.staging import FamilyModels
from stream.worker import Inbound
from tests.stream._harness import Harness
from tests.stream._psg import EegNight, clip_night, generated_night

STAGES = ["W"] * 4 + ["N2"] * 4 + ["N3"] * 6 + ["W"] * 2 + ["N2"] * 4


@pytest.fixture(scope="module")
def family_models(psg_weights: Path) -> dict[str, FamilyModels]:
    return {"psg": FamilyModels("psg", psg_weights)}


@pytest.fixture(scope="module")
def nights(test_data: Path) -> list[EegNight]:
    clips = np.load(test_data / "sleep-edf" / "pz-oz-first-900s.npz")["val"]
    return [clip_night("clip", clips[0]),
            generated_night("two", STAGES, 256.0, 2, seed=1),
            generated_night("six", STAGES[:14], 256.0, 6, seed=2, dtype="float32")]


def messages(h: Harness, nights: list[EegNight], span_s: float = 5.0) -> list[Inbound]:
    """Every night's start, chunks (interleaved across the nights by time) and end."""
    out = [h.msg("sessions", n.start_event()) for n in nights]
    timed = []
    for n in nights:
        chunks = n.chunks(span_s)
        timed += [(c.sample0 / (c.rate_hz or 1.0), i, c) for i, c in enumerate(chunks)]
        timed.append((n.n_epochs * 30.0, len(chunks), n.end_event(chunks)))
    for _, _, payload in sorted(timed, key=lambda x: (x[0], x[1])):
        out.append(h.msg("samples" if not isinstance(payload, SessionEvent) else "sessions",
                         payload))
    return out


def signature(events: list[StageEvent]) -> dict[tuple[str, str, int], tuple[float, ...]]:
    return {(e.subject_id, e.kind, e.epoch_index): tuple(round(p, 6)
            for p in e.probabilities.values()) for e in events}


def test_nights_in_batches_equal_the_batch_predictions(
        family_models: dict[str, FamilyModels], nights: list[EegNight]) -> None:
    h = Harness(family_models)
    msgs = messages(h, nights)
    for i in range(0, len(msgs), 13):
        h.feed(msgs[i: i + 13])
    assert not h.dead
    for night in nights:
        rows = eeg_night_rows(night.signals(), night.n_epochs)
        batch = dict(zip(("causal", "offline"), family_models["psg"].predict_night(
            rows.features, rows.present), strict=True))
        for kind, ref in batch.items():
            got = sorted((e for e in h.events if e.subject_id == night.subject_id
                          and e.kind == kind), key=lambda e: e.epoch_index)
            assert [e.epoch_index for e in got] == list(range(night.n_epochs))
            p = np.array([list(e.probabilities.values()) for e in got])
            np.testing.assert_allclose(p, ref, atol=1e-5)
            assert all(e.stage_set == 5 and e.valid for e in got)
        causal = [e for e in h.events if e.subject_id == night.subject_id and e.kind == "causal"]
        assert {e.inputs.eeg_channels for e in causal if e.inputs} == {len(night.labels)}
        (summary,) = [s for s in h.summaries if s.subject_id == night.subject_id]
        assert summary.n_epochs == summary.n_valid_epochs == night.n_epochs
        assert set(summary.minutes) == {"W", "N1", "N2", "N3", "REM"}
    assert h.released == set(range(1, h.offset + 1)) and not h.rows
    assert h.worker.active_subjects == 0


def test_kill_and_restart_anywhere_gives_the_same_events(
        family_models: dict[str, FamilyModels], nights: list[EegNight]) -> None:
    ref = Harness(family_models)
    ref.feed(messages(ref, nights))
    want = signature(ref.events)
    n = len(messages(Harness(family_models), nights))
    for crash_at in (2, 40, n // 2, n - 4):
        h = Harness(family_models, checkpoint_interval_s=1.0)
        msgs = messages(h, nights)
        for m in msgs[:crash_at]:
            h.clock.t += 0.4
            h.feed([m])
        redelivered = [m for m in msgs[:crash_at] if m.token not in h.released]
        h.restart()
        h.feed(redelivered)
        for m in msgs[crash_at:]:
            h.clock.t += 0.4
            h.feed([m])
        assert signature(h.events) == want, f"crash after message {crash_at}"
        assert not h.dead and not h.rows


def test_live_timer_masks_a_silent_channel_and_closes_a_silent_subject(
        family_models: dict[str, FamilyModels]) -> None:
    night = generated_night("live", ["W"] * 10, 256.0, 2, live=True)
    h = Harness(family_models, grace_s=10.0)
    h.feed([h.msg("sessions", night.start_event())])
    # Fpz-Cz sends 95 s, Pz-Oz 65 s, then both go quiet (the recorder lost its link)
    chunks = [c for c in night.chunks(5.0)
              if c.sample0 < (95 if c.channel == "Fpz-Cz" else 65) * 256]
    h.feed([h.msg("samples", c) for c in chunks])
    complete = sorted(e.epoch_index for e in h.events)
    assert complete == [0, 1]  # both channels made them final: no wait for the grace period
    h.tick(night.start + timedelta(seconds=135))
    events = {e.epoch_index: e for e in h.events}
    assert sorted(events) == [0, 1, 2, 3]  # 3 ends at 120 s: closed at 120 + grace (10 s)
    assert events[2].inputs and events[2].inputs.eeg_channels == 1  # Pz-Oz stopped in epoch 2
    assert events[3].inputs and events[3].inputs.eeg_channels == 0 and not events[3].valid
    # both runs were ended (flushed) by the closes: a later chunk starts a new run
    proc = h.worker.subjects["live"].proc
    assert proc is not None and isinstance(proc.assembler, EegAssembler)
    assert not any(f._in_run for f in proc.assembler.fronts.values())


def test_a_psg_session_the_models_cannot_read_is_dead_lettered(
        family_models: dict[str, FamilyModels], nights: list[EegNight]) -> None:
    h = Harness(family_models)
    start = nights[1].start_event()
    no_eeg = start.model_copy(update={"subject_id": "ecg", "modalities": ("rr",),
                                      "channels": ()})
    h.feed([h.msg("sessions", no_eeg)])
    (dead,) = h.dead
    assert dead.error_type == "BadSession" and "the session has 0: []" in dead.reason
    assert h.worker.active_subjects == 0


def test_the_shipped_psg_models_stage_generated_wake_and_n3() -> None:
    """Alpha-dominated wake and delta-dominated N3 of generated EEG, through the worker."""
    from models.stages import Stage
    from tests.ingestors._psg_data import night_stages, stage_eeg
    from tests.stream._psg import EegChannelData

    stages = night_stages(20, 96, 20)
    labels = ("Fpz-Cz", "Pz-Oz")
    night = EegNight("shipped", "shipped-n1", stages.size, [
        EegChannelData(label, 100.0, np.round(stage_eeg(stages, 100.0, seed=k) / 0.05)
                       .astype(np.int16), 0.05) for k, label in enumerate(labels)])
    h = Harness({"psg": FamilyModels("psg")})
    h.feed(messages(h, [night], span_s=30.0))
    assert not h.dead
    for kind in ("causal", "offline"):
        got = {e.epoch_index: e.stage for e in h.events if e.kind == kind}
        for stage, name in ((Stage.W, "W"), (Stage.N3, "N3")):
            epochs = np.flatnonzero(stages == stage)
            share = np.mean([got[int(k)] == name for k in epochs])
            assert share >= 0.8, (kind, name, share)
