"""The worker's logic without Faust: bad input, ordering, nights, checkpoints and restarts.

Tables are dicts here; the shipped models stage the epochs. The same logic runs under
Faust in tests/stream/test_stream_e2e.py.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingestors.replay import ReplayNight, plan_night, sleep_accel_nights
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from stream.schemas import SampleChunk, SessionEvent, StageEvent
from stream.staging import FamilyModels
from stream.worker import Inbound
from tests.stream._harness import Harness

T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def family_models() -> dict[str, FamilyModels]:
    return {"wearable": FamilyModels("wearable")}


@pytest.fixture(scope="module")
def night() -> ReplayNight:
    return sleep_accel_nights(sleep_accel_sample(), (SAMPLE_NIGHT,))[0]


def _messages(h: Harness, night: ReplayNight, n_epochs: int | None = None,
              spans: dict[str, float] | None = None) -> list[Inbound]:
    plan = plan_night(night, anchor="original", spans=spans)
    out = []
    for m in plan.messages():
        if n_epochs is not None and m.send_s > n_epochs * 30 and m.topic == "samples":
            continue
        if m.topic == "sessions" and m.payload.event == "end" and n_epochs is not None:
            continue
        out.append(h.msg(m.topic, m.payload))
    return out


def _key(ev: StageEvent) -> tuple[str, int]:
    return (ev.kind, ev.epoch_index)


def _signature(events: list[StageEvent]) -> dict[tuple[str, int], tuple[str, tuple[float, ...]]]:
    return {_key(e): (e.stage, tuple(round(p, 6) for p in e.probabilities.values()))
            for e in events}


def test_night_in_batches_equals_batch_predictions(family_models: dict[str, FamilyModels],
                                                   night: ReplayNight) -> None:
    from stream.replay_eval import batch_rows

    h = Harness(family_models)
    msgs = _messages(h, night)
    for i in range(0, len(msgs), 97):
        h.feed(msgs[i: i + 97])
    causal, offline = family_models["wearable"].predict_night(batch_rows(night))
    got = {k: sorted((e for e in h.events if e.kind == k), key=lambda e: e.epoch_index)
           for k in ("causal", "offline")}
    for kind, ref in (("causal", causal), ("offline", offline)):
        assert [e.epoch_index for e in got[kind]] == list(range(night.n_epochs))
        p = np.array([list(e.probabilities.values()) for e in got[kind]])
        np.testing.assert_allclose(p, ref, atol=1e-5)
    assert len(h.summaries) == 1 and h.summaries[0].n_epochs == night.n_epochs
    # everything acknowledged, nothing dead, the night's rows deleted, a finished marker left
    assert h.released == set(range(1, h.offset + 1))
    assert not h.dead and not h.rows
    assert json.loads(h.state[night.subject_id])["finished_session"] == night.session_id
    assert h.worker.active_subjects == 0


def test_a_rebalance_releases_every_held_message_at_once(
        family_models: dict[str, FamilyModels], night: ReplayNight) -> None:
    h = Harness(family_models, checkpoint_interval_s=600.0, max_unacked_s=600.0)
    msgs = _messages(h, night, n_epochs=3)
    h.feed(msgs[:1])  # the session start, checkpointed at once
    h.feed(msgs[1:])
    held = [m.token for m in msgs if m.token not in h.released]
    assert held  # chunks since the session start wait for a checkpoint
    h.tick()
    assert not any(t in h.released for t in held)
    fx = h.worker.tick(release_held=True)
    h.apply(fx)
    h.apply(h.worker.checkpoints())
    assert all(t in h.released for t in held)


def test_messages_released_only_at_checkpoints(family_models: dict[str, FamilyModels],
                                               night: ReplayNight) -> None:
    h = Harness(family_models, checkpoint_interval_s=0.0)
    msgs = _messages(h, night, n_epochs=40)
    start, chunks = msgs[0], msgs[1:]
    h.feed([start])
    assert start.token in h.released  # the session start is checkpointed at once
    # a chunk that closes no epoch is held: its effect lives only in memory
    first = h.feed([chunks[0]])
    assert not first.state and chunks[0].token not in h.released
    for c in chunks[1:]:
        fx = h.feed([c])
        if fx.stage_events:
            # the epoch close wrote the checkpoint, so every held chunk is released
            assert fx.state and all(m.token in h.released for m in chunks[: chunks.index(c) + 1])
            break
    else:
        pytest.fail("no epoch closed")


@pytest.mark.parametrize("seconds_per_message", [0.0, 0.3])
def test_kill_and_restart_anywhere_gives_the_same_events(
        family_models: dict[str, FamilyModels], night: ReplayNight,
        seconds_per_message: float) -> None:
    # 0.3 s per message: checkpoints (and row blocks) about every 4 messages; 0: only at
    # the session start and end, so a crash re-delivers the whole night so far
    ref = Harness(family_models)
    ref_msgs = _messages(ref, night)
    ref.feed(ref_msgs)
    want = _signature(ref.events)

    for crash_at in (1, 150, 1234, len(ref_msgs) - 3):
        h = Harness(family_models, checkpoint_interval_s=1.0)
        msgs = _messages(h, night)
        for m in msgs[:crash_at]:
            h.clock.t += seconds_per_message
            h.feed([m])
        # kill -9: unreleased messages are re-delivered to a fresh worker (after the
        # committed position, in order), the tables survive
        redelivered = [m for m in msgs[:crash_at] if m.token not in h.released]
        h.restart()
        h.feed(redelivered)
        for m in msgs[crash_at:]:
            h.clock.t += seconds_per_message
            h.feed([m])
        assert _signature(h.events) == want, f"crash after message {crash_at}"
        assert not h.rows  # every row block deleted when the night was finished
        assert h.released == set(range(1, h.offset + 1))
        assert not h.dead


def test_second_replay_changes_nothing(family_models: dict[str, FamilyModels],
                                       night: ReplayNight) -> None:
    h = Harness(family_models)
    h.feed(_messages(h, night))
    n_events, n_summaries = len(h.events), len(h.summaries)
    state = dict(h.state)
    h.feed(_messages(h, night))
    assert (len(h.events), len(h.summaries)) == (n_events, n_summaries)
    assert h.state == state
    assert not h.dead
    assert h.worker.stats.duplicates >= len(_messages(h, night))


def _chunk(subject: str = "s1", session: str = "n1", seq: int = 0, t: float = 0.0,
           values: tuple[float, ...] = (60.0,), source: str = "hr") -> SampleChunk:
    return SampleChunk(subject_id=subject, session_id=session, source_id=source, seq=seq,
                       modality="heart_rate", unit="bpm", t0_utc=T0 + timedelta(seconds=t),
                       offsets_s=tuple(float(i) for i in range(len(values))), values=values)


def _start(subject: str = "s1", session: str = "n1", live: bool = False) -> SessionEvent:
    return SessionEvent(event="start", subject_id=subject, session_id=session,
                        modalities=("heart_rate",), t_utc=T0, live=live)


def test_bad_input_becomes_dead_letters_and_the_worker_goes_on(
        family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models)
    good = _chunk(seq=0, t=0.0)
    nan_json = good.model_dump_json().replace('"values":[60.0]', '"values":[NaN]').encode()
    wrong_version = good.model_dump_json().replace('"schema_version":1',
                                                   '"schema_version":2').encode()
    batch = [
        h.msg("sessions", _start()),
        h.msg("samples", None, key="s1", raw=b"{not json"),
        h.msg("samples", None, key="s1", raw=wrong_version),
        h.msg("samples", None, key="s1", raw=nan_json),
        h.msg("samples", None, key="s1", raw=b""),
        h.msg("samples", good, key="someone-else"),
        h.msg("samples", good),
        h.msg("samples", good),  # duplicate
    ]
    h.feed(batch)
    reasons = [d.reason for d in h.dead]
    assert len(h.dead) == 5
    assert h.dead[0].stage == "decode" and "json" in reasons[0].lower()
    assert "schema_version 2 is not supported" in reasons[1]
    assert "finite" in reasons[2] and "values" in reasons[2]
    assert "empty" in reasons[3]
    assert "key" in reasons[4] and "subject id" in reasons[4]
    assert h.dead[2].raw == nan_json and h.dead[2].topic == "sleep.samples"
    assert h.worker.stats.duplicates == 1
    # after all that the subject goes on: samples close epochs and get staged
    more = [h.msg("samples", _chunk(seq=k, t=30.0 * k, values=(60.0,) * 30))
            for k in range(1, 6)]
    h.feed(more)
    assert [e.epoch_index for e in h.events] == [0, 1, 2, 3]


def test_late_and_out_of_order_chunks(family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models, grace_s=30.0)
    h.feed([h.msg("sessions", _start())])
    # seq 1 before seq 0, both inside the grace period: both used
    h.feed([h.msg("samples", _chunk(seq=1, t=10.0)), h.msg("samples", _chunk(seq=0, t=0.0))])
    assert not h.dead
    # event time moves to 100 s: epochs 0 and 1 close (grace 30 s)
    h.feed([h.msg("samples", _chunk(seq=2, t=100.0))])
    assert [e.epoch_index for e in h.events] == [0, 1]
    # a chunk for the closed epoch 0 is too late: dead-lettered with the reason
    h.feed([h.msg("samples", _chunk(seq=3, t=5.0))])
    assert len(h.dead) == 1 and "s1" in h.dead[0].reason and "hr#3" in h.dead[0].reason
    assert h.dead[0].stage == "process"


def test_unknown_session_is_held_then_dead_lettered(family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models, unknown_session_wait_s=30.0)
    early = h.msg("samples", _chunk(session="n2", seq=0, t=0.0))
    h.feed([early])
    assert not h.dead and early.token not in h.released
    # its start arrives (the sessions topic lagged): the held chunk is used
    h.feed([h.msg("sessions", _start(session="n2"))])
    assert not h.dead
    assert h.worker.subjects["s1"].proc is not None
    assert h.worker.subjects["s1"].proc.sources["hr"].highest == 0  # type: ignore[union-attr]
    # a chunk of a session that never starts is dead-lettered after the wait
    orphan = h.msg("samples", _chunk(subject="s9", session="x", seq=0))
    h.feed([orphan])
    h.tick()
    assert not h.dead
    h.clock.t += 31
    h.tick()
    assert len(h.dead) == 1 and "never arrived" in h.dead[0].reason
    assert orphan.token in h.released
    # an end of a session nobody started
    end = SessionEvent(event="end", subject_id="s8", session_id="zz", t_utc=T0)
    h.feed([h.msg("sessions", end)])
    assert len(h.dead) == 2 and "not open" in h.dead[1].reason


def test_a_session_no_model_here_can_stage_is_dead_lettered(tmp_path: Any) -> None:
    h = Harness({}, weights_dir=tmp_path)  # an empty model folder
    start = h.msg("sessions", _start(session="n3"))
    h.feed([start])
    assert len(h.dead) == 1 and h.dead[0].error_type == "NoModels"
    assert "session 'n3' of 's1' cannot be staged: no usable 'wearable' models" in \
        h.dead[0].reason and "SLEEPSTREAM_WEIGHTS_DIR" in h.dead[0].reason
    assert start.token in h.released and h.worker.subjects["s1"].proc is None


def test_a_session_sending_inputs_no_model_was_validated_on_is_dead_lettered(
        input_set_weights: Path) -> None:
    h = Harness({"wearable": FamilyModels("wearable", input_set_weights)},
                unknown_session_wait_s=30.0)
    rr_only = _start(session="n4").model_copy(update={"modalities": ("rr",)})
    start = h.msg("sessions", rr_only)
    beats = h.msg("samples", SampleChunk(
        subject_id="s1", session_id="n4", source_id="ecg", seq=0, modality="rr", unit="s",
        t0_utc=T0, offsets_s=(0.8, 1.6, 2.5), values=(0.8, 0.8, 0.9)))
    h.feed([start, beats])
    (dead,) = h.dead
    assert (dead.error_type, dead.stage, dead.raw) == ("BadSession", "process", start.value)
    assert dead.reason.startswith(
        "session 'n4' of 's1' cannot be staged: the wearable models here were validated on "
        "activity+heart_rate, heart_rate, activity; this session sends rr. To stage it, send "
        "one of activity+heart_rate, heart_rate, activity or install wearable models trained "
        "and validated on rr (SLEEPSTREAM_WEIGHTS_DIR)")
    assert start.token in h.released and h.worker.subjects["s1"].proc is None
    # its chunks wait for a start that never comes, then are dead-lettered too
    h.clock.t += 31
    h.tick()
    assert len(h.dead) == 2 and h.dead[1].raw == beats.value
    assert "session 'n4'" in h.dead[1].reason and beats.token in h.released
    # a session that sends a validated set is staged as usual
    h.feed([h.msg("sessions", _start(session="n5")), h.msg("samples", _chunk(session="n5"))])
    assert len(h.dead) == 2 and h.worker.subjects["s1"].proc is not None


def test_end_before_last_chunks_waits_for_final_seq(family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models)
    h.feed([h.msg("sessions", _start())])
    end = SessionEvent(event="end", subject_id="s1", session_id="n1",
                       t_utc=T0 + timedelta(minutes=3), final_seq={"hr": 5})
    h.feed([h.msg("sessions", end)] + [
        h.msg("samples", _chunk(seq=k, t=30.0 * k, values=(60.0,) * 30)) for k in range(5)])
    assert not h.summaries  # seq 5 still missing
    h.feed([h.msg("samples", _chunk(seq=5, t=150.0, values=(60.0,) * 30))])
    assert len(h.summaries) == 1 and h.summaries[0].n_epochs == 6
    assert sorted(e.epoch_index for e in h.events if e.kind == "causal") == list(range(6))
    assert sorted(e.epoch_index for e in h.events if e.kind == "offline") == list(range(6))


def test_end_without_final_seq_and_silence_finish_the_night(
        family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models, end_wait_s=5.0, silence_timeout_s=600.0)
    h.feed([h.msg("sessions", _start()),
            h.msg("samples", _chunk(seq=0, t=0.0, values=(60.0,) * 90)),
            h.msg("sessions", SessionEvent(event="end", subject_id="s1", session_id="n1",
                                           t_utc=T0 + timedelta(minutes=2)))])
    h.tick()
    assert not h.summaries
    h.clock.t += 6
    h.tick()
    assert len(h.summaries) == 1 and h.summaries[0].n_epochs == 4
    # a subject that just stops: finished after the silence timeout
    h.feed([h.msg("sessions", _start("s2", "m1")),
            h.msg("samples", _chunk("s2", "m1", seq=0, t=0.0, values=(60.0,) * 70))])
    h.clock.t += 601
    h.tick()
    assert len(h.summaries) == 2 and h.summaries[1].subject_id == "s2"
    assert h.summaries[1].n_epochs == math.ceil(69 / 30)


def test_live_timer_closes_a_silent_subject(family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models, grace_s=10.0)
    h.feed([h.msg("sessions", _start(live=True)),
            h.msg("samples", _chunk(seq=0, t=0.0, values=(60.0,) * 20))])
    assert not h.events
    # the device goes quiet; the wall clock says 95 s have passed since the start
    h.tick(T0 + timedelta(seconds=95))
    assert [e.epoch_index for e in h.events] == [0, 1]
    assert h.events[1].valid is False  # epoch 1 had no samples


def test_many_subjects_closing_together_share_one_model_call(
        family_models: dict[str, FamilyModels], monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(family_models)
    calls: list[int] = []
    real = family_models["wearable"].causal.predict

    def counting(x: Any, valid: Any = None, **kw: Any) -> Any:
        calls.append(len(x))
        return real(x, valid, **kw)

    monkeypatch.setattr(family_models["wearable"].causal, "predict", counting)
    subjects = [f"s{i}" for i in range(50)]
    h.feed([h.msg("sessions", _start(s)) for s in subjects])
    h.feed([h.msg("samples", _chunk(s, seq=0, t=0.0, values=(60.0,) * 70)) for s in subjects])
    assert calls == [50]  # epoch 0 of 50 subjects: one call
    assert len(h.events) == 50


def test_cardio_session_is_staged_with_the_cardio_models_causal_window() -> None:
    # the worker hands each closed epoch the window length of the family's shipped causal
    # model (its card), 25 epochs for both families today
    h = Harness({"cardio": FamilyModels("cardio")})
    start = SessionEvent(event="start", subject_id="c1", session_id="n1", family="cardio",
                         modalities=("rr",), t_utc=T0)
    h.feed([h.msg("sessions", start)])
    beats = tuple([0.9, 1.0, 1.1, 1.0] * 20)
    chunks = [SampleChunk(subject_id="c1", session_id="n1", source_id="ecg", seq=k,
                          modality="rr", unit="s", t0_utc=T0 + timedelta(seconds=80.0 * k),
                          offsets_s=tuple(float(x) for x in np.cumsum(beats)), values=beats)
              for k in range(4)]
    h.feed([h.msg("samples", c) for c in chunks])
    assert not h.dead
    assert h.worker.models_of("cardio").context_epochs == 25
    assert [e.epoch_index for e in h.events] == list(range(len(h.events)))
    assert len(h.events) >= 8


def _readable(h: Harness, wall: datetime) -> None:
    """A readability check at ``wall`` that finds everything on the broker processed."""
    assert h.gate is not None
    h.gate.checked(0, {}, {}, wall)


def _live_outage(h: Harness, chunks: list[SampleChunk]) -> None:
    """A live subject whose chunks up to 45 s arrive, then 155 s of broker outage during
    which the device goes on (its ingestor's outbox keeps the chunks), then the backlog."""
    h.feed([h.msg("sessions", _start(live=True))])
    h.feed([h.msg("samples", c) for c in chunks[:3]])
    if h.gate is not None:
        _readable(h, T0 + timedelta(seconds=45))
        h.gate.failed([0])
    h.tick(T0 + timedelta(seconds=46))
    h.clock.t += 154
    h.tick(T0 + timedelta(seconds=200))  # without the gate: epochs 1-4 close as silent
    if h.gate is not None:
        _readable(h, T0 + timedelta(seconds=205))
    h.feed([h.msg("samples", c) for c in chunks[3:]])  # the outbox's backlog
    h.tick(T0 + timedelta(seconds=206))


def test_a_worker_that_cannot_read_closes_no_live_epoch_as_silent(
        family_models: dict[str, FamilyModels]) -> None:
    chunks = [_chunk(seq=k, t=15.0 * k, values=(60.0 + k,) * 15) for k in range(14)]
    ref = Harness(family_models, silence_timeout_s=100.0)
    ref.feed([ref.msg("sessions", _start(live=True))])
    ref.feed([ref.msg("samples", c) for c in chunks])
    want = _signature(ref.events)
    assert len(want) == 5

    h = Harness(family_models, gated=True, silence_timeout_s=100.0)
    _live_outage(h, chunks)
    assert not h.dead and not h.summaries  # no late chunks, no night finished by silence
    assert _signature(h.events) == want and all(e.valid for e in h.events)
    assert h.gate is not None and h.gate.outages == 1

    # the same without readability checks: the outage's epochs closed empty, and the
    # backlog for them is dead-lettered as late (what the gate prevents)
    blind = Harness(family_models, silence_timeout_s=100.0)
    _live_outage(blind, chunks)
    assert blind.summaries or blind.dead
    assert _signature(blind.events) != want


def test_silence_is_not_counted_while_the_input_cannot_be_read(
        family_models: dict[str, FamilyModels]) -> None:
    h = Harness(family_models, gated=True, end_wait_s=5.0, silence_timeout_s=600.0,
                unknown_session_wait_s=30.0)
    assert h.gate is not None
    h.feed([h.msg("sessions", _start()),
            h.msg("samples", _chunk(seq=0, t=0.0, values=(60.0,) * 90)),
            h.msg("sessions", SessionEvent(event="end", subject_id="s1", session_id="n1",
                                           t_utc=T0 + timedelta(minutes=2))),
            h.msg("sessions", _start("s2", "m1")),
            h.msg("samples", _chunk("s2", "m1", seq=0, t=0.0, values=(60.0,) * 70)),
            h.msg("samples", _chunk("s3", "never", seq=0))])
    h.gate.failed([0])
    h.clock.t += 3600  # an hour the worker could not read: nothing counts as silence
    h.tick()
    assert not h.summaries and not h.dead
    _readable(h, T0)
    h.clock.t += 4
    h.tick()
    assert not h.summaries
    h.clock.t += 2  # 6 s of silence it could see: the ended night is finished
    h.tick()
    assert [s.subject_id for s in h.summaries] == ["s1"] and not h.dead
    h.clock.t += 30  # the chunk of a session that never started waited 36 s
    h.tick()
    assert len(h.dead) == 1 and "never arrived" in h.dead[0].reason
    h.clock.t += 570  # s2 silent for 606 s (not counting the outage)
    h.tick()
    assert [s.subject_id for s in h.summaries] == ["s1", "s2"]
