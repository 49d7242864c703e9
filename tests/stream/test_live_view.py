"""The live page's store without a broker: events in, the page's JSON out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pytest

from models.stages import CLASS_NAMES
from stream.live import MAX_EPOCHS, LiveView, UnknownNight
from stream.schemas import EpochInputStats, ModelKind, NightSummary, SessionEvent, StageEvent

T0 = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
STAGES = CLASS_NAMES[4]


def _event(k: int, stage: str = "light", kind: ModelKind = "causal", subject: str = "s1",
           session: str = "n1", start: datetime = T0, hr: float | None = 60.0) -> bytes:
    probs = {s: (0.7 if s == stage else 0.1) for s in STAGES}
    at = start + timedelta(seconds=30 * (k + 1))
    return StageEvent(
        subject_id=subject, session_id=session, epoch_index=k,
        epoch_start_utc=start + timedelta(seconds=30 * k), model_name=f"wearable-{kind}",
        model_version="1", kind=kind, stage=stage, probabilities=probs, confidence=0.7,
        valid=hr is not None, closed_at_utc=at, emitted_at_utc=at, latency_s=0.01,
        inputs=EpochInputStats(hr_mean_bpm=hr, hr_samples=6 if hr else 0, activity_counts=3.0,
                               activity_samples=2) if kind == "causal" else None,
    ).model_dump_json().encode()


def _session(event: Literal["start", "end"], subject: str = "s1", session: str = "n1",
             when: datetime = T0, tz: str = "Europe/Amsterdam") -> bytes:
    return SessionEvent(event=event, subject_id=subject, session_id=session,
                        modalities=("heart_rate",), time_zone=tz, t_utc=when,
                        device="watch").model_dump_json().encode()


def _summary(n: int, subject: str = "s1", session: str = "n1") -> bytes:
    return NightSummary(
        subject_id=subject, session_id=session, model_name="wearable-offline", kind="offline",
        t_start_utc=T0, t_end_utc=T0 + timedelta(seconds=30 * n), n_epochs=n,
        n_valid_epochs=n, tib_min=n / 2, tst_min=n / 2 - 1, se_pct=90.0, sol_min=1.0,
        waso_min=0.0, rem_latency_min=None, minutes=dict.fromkeys(STAGES, 1.0),
        percent_of_tst={"light": 50.0, "deep": 25.0, "REM": 25.0},
        emitted_at_utc=T0 + timedelta(hours=9),
    ).model_dump_json().encode()


def test_a_night_in_order_gives_the_page_arrays() -> None:
    view = LiveView()
    stages = ["W", "W", "light", "deep", "REM", "light"]
    assert view.apply("sessions", _session("start"))
    for k, s in enumerate(stages):
        assert view.apply("stages", _event(k, s, hr=None if k == 1 else 55.0 + k))
    night = view.night("s1")
    assert night["n_epochs"] == 6 and night["time_zone"] == "Europe/Amsterdam"
    assert [STAGES[c] for c in night["causal"]["stage"]] == stages
    assert night["offline"]["stage"] == [-1] * 6 and night["offline"]["n_scored"] == 0
    assert night["causal"]["counts"] == {"W": 2, "light": 2, "deep": 1, "REM": 1}
    assert night["valid"] == [1, 0, 1, 1, 1, 1]
    assert night["hr_bpm"][:3] == [55.0, None, 57.0]
    # probabilities as 1/255 steps, one list per stage
    assert night["causal"]["prob"][STAGES.index("REM")][4] == round(0.7 * 255)
    assert night["summary"] is None
    row = view.subjects()[0]
    assert row["current_stage"] == "light" and row["n_causal"] == 6 and not row["ended"]
    json.dumps(night), json.dumps(view.subjects())  # JSON-ready as they are


def test_redelivered_events_overwrite_their_epoch() -> None:
    view = LiveView()
    for k in range(10):
        view.apply("stages", _event(k, "light"))
    version = view.night("s1")["version"]
    for k in range(5, 10):  # a crash re-delivers the tail, once more with the same content
        view.apply("stages", _event(k, "light"))
    view.apply("stages", _event(3, "REM"))  # and a revised copy lands on its own epoch
    night = view.night("s1")
    assert night["n_epochs"] == 10 and night["causal"]["n_scored"] == 10
    assert night["causal"]["counts"] == {"W": 0, "light": 9, "deep": 0, "REM": 1}
    assert night["version"] > version


def test_offline_revision_summary_and_end_arrive_in_any_order() -> None:
    view = LiveView()
    assert view.apply("sessions", _session("end", when=T0 + timedelta(minutes=2)))
    for k in range(4):
        view.apply("stages", _event(k, "deep", kind="offline"))
    assert view.subjects()[0]["ended"]  # the end that came first was kept for the night
    view.apply("summaries", _summary(4))
    night = view.night("s1")
    assert night["ended_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert night["offline"]["counts"]["deep"] == 4 and night["causal"]["n_scored"] == 0
    assert night["summary"]["se_pct"] == 90.0 and night["summary"]["rem_latency_min"] is None
    assert view.subjects()[0]["has_summary"]


def test_sessions_per_subject_keeps_the_latest() -> None:
    view = LiveView(sessions_per_subject=2)
    for day in range(3):
        start = T0 + timedelta(days=day)
        view.apply("sessions", _session("start", session=f"n{day}", when=start))
        view.apply("stages", _event(0, session=f"n{day}", start=start))
    assert [s["session"] for s in view.night("s1")["sessions"]] == ["n2", "n1"]
    # a late event of the dropped, older night does not bring it back
    assert not view.apply("stages", _event(1, session="n0", start=T0))
    assert view.dropped["old_session"] == 1
    assert view.night("s1", "n1")["n_epochs"] == 1
    with pytest.raises(UnknownNight, match="unknown session 'n0' of subject 's1'"):
        view.night("s1", "n0")
    with pytest.raises(UnknownNight, match="unknown subject 'nobody'"):
        view.night_of("nobody")


def test_memory_is_bounded() -> None:
    view = LiveView(max_subjects=3)
    for i in range(5):
        view.apply("stages", _event(0, subject=f"s{i}"), timestamp_s=1000.0 + i)
    assert [r["subject"] for r in view.subjects()] == ["s2", "s3", "s4"]
    assert not view.apply("stages", _event(MAX_EPOCHS, subject="s4"))
    assert view.dropped["beyond_max_epochs"] == 1
    view.apply("stages", _event(MAX_EPOCHS - 1, subject="s4"))
    night = view.night_of("s4")
    assert night.valid.size == MAX_EPOCHS and night.stage.dtype == np.int8
    assert view.evict_older_than(1003.5) == 2 and len(view) == 1


def test_undecodable_messages_are_counted_and_skipped() -> None:
    view = LiveView()
    bad = [b"", b"not json", b'{"schema_version": 1}', _event(0).replace(b'"light"', b'"N9"', 1),
           _event(0).replace(b'"schema_version":1', b'"schema_version":7')]
    for raw in bad:
        assert not view.apply("stages", raw)
    assert not view.apply("summaries", b"{}") and not view.apply("sessions", None)
    assert view.undecodable == {"stages": 5, "summaries": 1, "sessions": 1}
    assert len(view) == 0 and view.applied == 0
    assert view.apply("stages", _event(0))  # and the next good one is used
    with pytest.raises(ValueError, match="`kind` must be one of"):
        view.apply("samples", b"{}")  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="`sessions_per_subject` must be an int >= 1; got 0"):
        LiveView(sessions_per_subject=0)


def _psg_event(k: int, stage: str, kind: ModelKind = "causal", channels: int = 2) -> bytes:
    names = CLASS_NAMES[5]
    probs = {s: (0.6 if s == stage else 0.1) for s in names}
    at = T0 + timedelta(seconds=30 * (k + 1))
    return StageEvent(
        subject_id="p1", session_id="n1", epoch_index=k,
        epoch_start_utc=T0 + timedelta(seconds=30 * k), model_name=f"psg-{kind}",
        model_version="1", kind=kind, stage_set=5, stage=stage, probabilities=probs,
        confidence=0.6, valid=channels > 0, closed_at_utc=at, emitted_at_utc=at,
        latency_s=0.01, inputs=EpochInputStats(
            eeg_channels=channels, eeg_rms_uv=20.0 + k if channels else None)
        if kind == "causal" else None,
    ).model_dump_json().encode()


def test_a_psg_night_is_kept_in_5_stages_with_its_eeg_inputs() -> None:
    view = LiveView()
    start = SessionEvent(event="start", subject_id="p1", session_id="n1", family="psg",
                         modalities=("eeg",), channels=("Fpz-Cz", "Pz-Oz"), t_utc=T0)
    assert view.apply("sessions", start.model_dump_json().encode())
    before = view.night("p1")
    assert before["stages"] == ["W", "N1", "N2", "N3", "REM"] and before["family"] == "psg"
    assert before["channels"] == ["Fpz-Cz", "Pz-Oz"]
    stages = ["W", "N1", "N2", "N3", "N3", "REM"]
    for k, s in enumerate(stages):
        assert view.apply("stages", _psg_event(k, s, channels=1 if k == 2 else 2))
    view.apply("stages", _psg_event(4, "N2", channels=0))  # a re-scored copy of epoch 4
    night = view.night("p1")
    assert [night["stages"][c] for c in night["causal"]["stage"]] == [
        "W", "N1", "N2", "N3", "N2", "REM"]
    assert night["causal"]["counts"] == {"W": 1, "N1": 1, "N2": 2, "N3": 1, "REM": 1}
    assert len(night["causal"]["prob"]) == 5
    assert night["causal"]["prob"][night["stages"].index("REM")][5] == round(0.6 * 255)
    assert night["eeg_channels"] == [2, 2, 1, 2, 0, 2]
    assert night["eeg_rms_uv"][:3] == [20.0, 21.0, 22.0] and night["eeg_rms_uv"][4] is None
    assert night["hr_bpm"] == [None] * 6 and night["valid"] == [1, 1, 1, 1, 0, 1]
    assert view.subjects()[0]["current_stage"] == "REM"
    # a 4-class event cannot join a 5-class night
    assert not view.apply("stages", _event(6, subject="p1"))
    assert view.dropped["other_stage_set"] == 1
    json.dumps(night)
