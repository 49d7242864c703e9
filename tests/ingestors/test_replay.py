"""Replays: chunking, parity with the training features, and sending (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ingestors.errors import DataQualityWarning
from ingestors.replay import (
    DEFAULT_SPANS,
    NightPlan,
    ReplayError,
    ReplayNight,
    ReplayStream,
    beat_symbols,
    plan_night,
    replay,
    run_replay,
    sleep_accel_night,
    sleep_accel_nights,
    slpdb_night,
    slpdb_nights,
)
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from ingestors.sleep_accel import SleepAccelNight, read_subject
from ingestors.slpdb import read_record
from ingestors.types import NOMINAL_START, Hypnogram, TimeSeries
from models.features import FeatureExtractor
from models.features.hrv import beat_codes
from stream.schemas import SampleChunk, SessionEvent
from stream.settings import StreamSettings
from training.datasets.sleep_accel import night_from_sleep_accel
from training.datasets.slpdb import night_from_slpdb

SETTINGS = StreamSettings()
NOW = datetime(2024, 3, 1, 22, 15, 7, 654321, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_night() -> ReplayNight:
    (night,) = sleep_accel_nights(sleep_accel_sample(), [SAMPLE_NIGHT])
    return night


@pytest.fixture(scope="module")
def sample_plan(sample_night: ReplayNight) -> NightPlan:
    return plan_night(sample_night, anchor="original")


def round_trip(chunk: SampleChunk) -> SampleChunk:
    return SampleChunk.model_validate_json(chunk.model_dump_json().encode())


def received(plan: NightPlan) -> list[tuple[float, SampleChunk]]:
    """The plan's chunks as a consumer decodes them."""
    return [(send_s, round_trip(chunk)) for send_s, chunk in plan.chunks()]


def concatenated(plan: NightPlan, modality: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    start = SessionEvent.model_validate_json(plan.start_event.model_dump_json()).t_utc
    parts = sorted((c.seq, c) for _, c in received(plan) if c.modality == modality)
    t = np.concatenate([c.times_s(start) for _, c in parts])
    v = np.concatenate([c.values_array() for _, c in parts])
    types = [b for _, c in parts for b in (c.beat_types or ())]
    return t, v, types


def synthetic(
    streams: dict[str, ReplayStream], n_epochs: int = 2, **kw: object
) -> ReplayNight:
    fields: dict[str, object] = {
        "subject_id": "s1", "session_id": "test-s1", "family": "wearable",
        "modalities": tuple(streams) or ("heart_rate",), "time_zone": "UTC",
        "start": NOMINAL_START, "start_is_nominal": True, "n_epochs": n_epochs,
        "streams": streams, "device": "replay:test",
    }
    fields.update(kw)
    return ReplayNight(**fields)  # type: ignore[arg-type]


def stream_features(plan: NightPlan, grace_s: float = 30.0) -> np.ndarray:
    """Feature rows as the worker computes them: chunks in send order, epochs closed once
    event time passes their end plus the grace period (a late chunk raises)."""
    ev = SessionEvent.model_validate_json(plan.start_event.model_dump_json())
    start = ev.t_utc.astimezone(ZoneInfo(ev.time_zone))
    ex = FeatureExtractor(ev.family, start, ev.start_is_nominal)
    n, watermark = plan.night.n_epochs, -math.inf
    rows: list[np.ndarray] = []
    for _, chunk in received(plan):
        t = chunk.times_s(start)
        ex.add_samples(chunk.modality, t, chunk.values_array(), chunk.beat_types)
        watermark = max(watermark, float(t[-1]))
        while len(rows) < n and ex.open_epoch_end_s + grace_s <= watermark:
            rows.append(ex.close_epoch())
    rows += [ex.close_epoch() for _ in range(n - len(rows))]
    return np.array(rows, dtype=np.float32).reshape(n, -1)


class FakeProducer:
    """Records what would go to Kafka; ``fail_on`` makes sends to that topic fail."""

    def __init__(self, fail_on: str | None = None, fail_late: bool = False) -> None:
        self.sent: list[tuple[str, bytes, dict, float]] = []
        self.stopped = 0
        self.fail_on, self.fail_late = fail_on, fail_late

    async def factory(self) -> FakeProducer:
        return self

    def _record(self, topic: str, value: bytes | None, key: bytes | None) -> None:
        assert value is not None and key is not None
        if topic == self.fail_on and not self.fail_late:
            raise RuntimeError("broker said no")
        self.sent.append((topic, key, json.loads(value), time.perf_counter()))

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None):
        self._record(topic, value, key)
        fut = asyncio.get_running_loop().create_future()
        if topic == self.fail_on:
            fut.set_exception(RuntimeError("not acknowledged"))
        else:
            fut.set_result(None)
        return fut

    async def stop(self) -> None:
        self.stopped += 1


# --- the bundled night: bit-exact chunks ---------------------------------------------------


def test_sample_night_mirrors_the_training_inputs(sample_night: ReplayNight) -> None:
    assert sample_night.subject_id == SAMPLE_NIGHT
    assert sample_night.session_id == f"sleep-accel-{SAMPLE_NIGHT}"
    assert sample_night.modalities == ("heart_rate", "activity_counts")
    assert (sample_night.family, sample_night.device) == ("wearable", "replay:sleep-accel")
    assert sample_night.start == NOMINAL_START and sample_night.start_is_nominal
    assert sample_night.labels is not None and sample_night.n_epochs == len(sample_night.labels)


def test_chunks_reproduce_the_original_arrays_bit_exactly(
    sample_night: ReplayNight, sample_plan: NightPlan
) -> None:
    end_s = sample_night.duration_s
    for modality, (t0, v0, _) in sample_night.streams.items():
        keep = t0 < end_s
        t, v, _ = concatenated(sample_plan, modality)
        assert t.dtype == np.float64 and np.array_equal(t, t0[keep])
        assert np.array_equal(v, v0[keep])
    assert sample_plan.n_samples == sample_night.n_samples  # nothing at or after the end here


def test_seq_numbers_are_consecutive_and_final_seq_is_the_last(sample_plan: NightPlan) -> None:
    seqs: dict[str, list[int]] = {}
    for _, chunk in sample_plan.chunks():
        assert chunk.session_id == sample_plan.night.session_id
        assert chunk.source_id == f"{chunk.session_id}-{chunk.modality}"
        seqs.setdefault(chunk.source_id, []).append(chunk.seq)
    for source, found in seqs.items():
        assert found == list(range(len(found))), source
    end = sample_plan.end_event
    assert end.final_seq == {source: found[-1] for source, found in seqs.items()}
    assert end.event == "end" and end.t_utc == sample_plan.start + timedelta(
        seconds=30 * sample_plan.night.n_epochs)
    assert sample_plan.start_event.final_seq == {}


def test_chunks_are_sent_at_their_cell_end_and_never_lag_more_than_one_span(
    sample_plan: NightPlan,
) -> None:
    sends = [s for s, _ in sample_plan.chunks()]
    assert sends == sorted(sends)
    watermark = -math.inf
    for send_s, chunk in received(sample_plan):
        t = chunk.times_s(sample_plan.start)
        span = DEFAULT_SPANS[chunk.modality]
        assert t[-1] <= send_s <= sample_plan.end_s
        assert t[0] >= send_s - span  # samples of one grid cell
        assert t[0] > watermark - span  # nothing older than a span behind what was sent
        watermark = max(watermark, float(t[-1]))
    assert len({(c.source_id, c.seq) for _, c in sample_plan.chunks()}) == sample_plan.n_chunks


def test_streamed_features_equal_the_training_features(sample_plan: NightPlan) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # as load_sleep_accel
        batch = night_from_sleep_accel(read_subject(sleep_accel_sample(), SAMPLE_NIGHT))
    np.testing.assert_array_equal(stream_features(sample_plan), batch.features)


# --- SLPDB excerpt ---------------------------------------------------------------------------


def test_slpdb_record_replays_beats_with_their_types_and_training_epochs(test_data) -> None:
    folder = test_data / "slpdb"
    rec = read_record(folder, "slp67x")
    night = slpdb_night(rec)
    batch = night_from_slpdb(rec)
    assert (night.subject_id, night.session_id, night.family) == ("slp67x", "slpdb-slp67x",
                                                                  "cardio")
    assert night.modalities == ("rr",) and night.time_zone == "America/New_York"
    assert night.labels is not None and night.n_epochs == len(batch.stages)
    assert np.array_equal(night.labels, batch.stages)
    plan = plan_night(night, anchor="original")
    t, v, types = concatenated(plan, "rr")
    assert rec.beats is not None
    assert np.array_equal(t, rec.beats.t_s) and np.array_equal(v, rec.beats.rr_s)
    assert types == rec.beats.beat_type.tolist() and "S" in types
    np.testing.assert_array_equal(stream_features(plan), batch.features)


def test_slpdb_records_without_beats_still_plan_start_and_end(test_data) -> None:
    nights = {n.subject_id: n for n in slpdb_nights(test_data / "slpdb")}
    assert set(nights) == {"slp32", "slp37", "slp67x"}
    bare = nights["slp32"]
    assert bare.streams == {} and bare.labels is None and not bare.start_is_nominal
    plan = plan_night(bare, anchor="original")
    messages = list(plan.messages())
    assert [m.topic for m in messages] == ["sessions", "sessions"]
    assert plan.end_event.final_seq == {} and plan.start_event.modalities == ("rr",)
    assert plan.start == bare.start  # same instant, sent in UTC
    assert plan.start_event.model_dump_json().count("Z") >= 1


def test_beat_symbols_keep_the_aami_class_the_features_use() -> None:
    symbols = ["N", "L", "R", "A", "a", "J", "V", "E", "F", "/", "Q", "x", ""]
    letters = beat_symbols(symbols)
    assert letters == ("N", "N", "N", "S", "S", "S", "V", "V", "F", "Q", "Q", "Q", "Q")
    n = len(symbols)
    assert np.array_equal(beat_codes(np.array(letters), n), beat_codes(np.array(symbols), n))
    assert beat_symbols(np.array([0, 1, 2, 3, 4, 9])) == ("N", "S", "V", "F", "Q", "Q")
    assert beat_symbols([]) == ()
    with pytest.raises(ValueError, match="0..255"):
        beat_symbols(np.array([-1]))


# --- grid, edges, acceleration ---------------------------------------------------------------


def test_samples_before_the_start_form_one_chunk_and_those_after_the_end_are_dropped() -> None:
    t = np.array([-9000.0, -100.0, -5.0, 0.0, 4.999, 5.0, 59.9, 60.0, 70.0])
    night = synthetic({"heart_rate": ReplayStream(t, np.full(t.size, 60.0))})
    plan = plan_night(night, anchor="original")
    chunks = [(s, c.offsets_s) for s, c in plan.chunks()]
    assert chunks == [(0.0, (-9000.0, -100.0, -5.0)), (5.0, (0.0, 4.999)), (10.0, (5.0,)),
                      (60.0, (59.9,))]
    assert plan.n_samples == 7 and plan.end_s == 60.0


def test_spans_and_max_samples_split_chunks() -> None:
    t = np.arange(0.0, 60.0, 0.5)
    night = synthetic({"heart_rate": ReplayStream(t, np.full(t.size, 60.0))})
    plan = plan_night(night, anchor="original", spans={"heart_rate": 30}, max_samples=25)
    sizes = [(s, c.seq, len(c)) for s, c in plan.chunks()]
    assert sizes == [(30.0, 0, 25), (30.0, 1, 25), (30.0, 2, 10),
                     (60.0, 3, 25), (60.0, 4, 25), (60.0, 5, 10)]
    with pytest.raises(ValueError, match="spans"):
        plan_night(night, spans={"heart_rate": 0.0})
    with pytest.raises(ValueError, match="unknown modality"):
        plan_night(night, spans={"spo2": 5.0})
    with pytest.raises(ValueError, match="max_samples"):
        plan_night(night, max_samples=0)


def test_acceleration_is_sent_interleaved_when_there_are_no_counts() -> None:
    t = np.arange(0.0, 60.0, 0.1)
    xyz = np.column_stack([np.sin(t), np.cos(t), -1.0 + 0.01 * t])
    motion = TimeSeries("acceleration", t, xyz, "g", NOMINAL_START, True)
    labels = Hypnogram(np.zeros(2, dtype=np.int8), NOMINAL_START, start_is_nominal=True)
    night = sleep_accel_night(SleepAccelNight("123", "physionet", motion=motion, labels=labels))
    assert night.modalities == ("acceleration",)
    plan = plan_night(night, anchor="original")
    (_, first), *_ = received(plan)
    assert first.values[:6] == (xyz[0, 0], xyz[0, 1], xyz[0, 2], xyz[1, 0], xyz[1, 1],
                                xyz[1, 2])
    got_t, got_v, _ = concatenated(plan, "acceleration")
    assert np.array_equal(got_t, t) and np.array_equal(got_v, xyz)
    counts = TimeSeries("activity_counts", np.array([0.0, 15.0]), np.array([3.0, 0.0]),
                        "count", NOMINAL_START, True)
    both = sleep_accel_night(SleepAccelNight("123", "physionet", motion=motion, counts=counts,
                                             labels=labels))
    assert both.modalities == ("activity_counts",)  # as training: motion only without counts


def test_non_finite_values_are_dropped_and_a_usable_z_is_announced() -> None:
    t = np.arange(4.0)
    hr = ReplayStream(t, np.array([60.0, np.nan, 61.0, np.inf]))
    plan = plan_night(synthetic({"heart_rate": hr}), anchor="original")
    assert concatenated(plan, "heart_rate")[1].tolist() == [60.0, 61.0]
    xyz = np.zeros((4, 3))
    xyz[1, 0] = np.nan
    with pytest.warns(DataQualityWarning, match="finite z"):
        plan = plan_night(synthetic({"acceleration": ReplayStream(t, xyz)}), anchor="original")
    assert plan.n_samples == 3


def test_anchors_and_the_live_default(sample_night: ReplayNight) -> None:
    original = plan_night(sample_night, anchor="original")
    assert original.start == sample_night.start and original.start.tzinfo == UTC
    now = plan_night(sample_night, anchor="now", now=NOW)
    assert now.start == NOW.replace(microsecond=0) and now.start_event.t_utc == now.start
    assert now.start_event.start_is_nominal == sample_night.start_is_nominal
    first = next(now.chunks())[1]
    assert first.t0_utc == now.start and first.offsets_s == next(original.chunks())[1].offsets_s
    assert now.slots == original.slots  # only the anchor moves
    assert not now.live and not original.live
    assert plan_night(sample_night, now=NOW, speed=1.0).start_event.live
    assert not plan_night(sample_night, now=NOW, speed=60.0).live
    assert not plan_night(sample_night, anchor="original", speed=1.0).live
    assert plan_night(sample_night, anchor="original", live=True).end_event.live
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_night(sample_night, now=datetime(2024, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="anchor"):
        plan_night(sample_night, anchor="yesterday")  # type: ignore[arg-type]


def test_replay_night_checks_its_input() -> None:
    hr = ReplayStream(np.arange(3.0), np.ones(3))
    with pytest.raises(ValueError, match="subject_id"):
        synthetic({"heart_rate": hr}, subject_id="a b")
    with pytest.raises(ValueError, match="non-decreasing"):
        synthetic({"heart_rate": ReplayStream(np.array([2.0, 1.0]), np.ones(2))})
    with pytest.raises(ValueError, match="modalities"):
        synthetic({"heart_rate": hr}, modalities=("rr",))
    with pytest.raises(ValueError, match="beat_types"):
        synthetic({"heart_rate": ReplayStream(np.arange(3.0), np.ones(3), ("N",) * 3)})
    with pytest.raises(ValueError, match="labels"):
        synthetic({"heart_rate": hr}, labels=np.zeros(5, dtype=np.int8))


# --- sending -----------------------------------------------------------------------------------


def by_session(sent: list[tuple[str, bytes, dict, float]]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for topic, key, payload, at in sent:
        out.setdefault(payload["session_id"], []).append((topic, key, payload, at))
    return out


@pytest.mark.asyncio
async def test_replay_sends_start_chunks_end_per_night_keyed_by_subject(
    sample_night: ReplayNight, test_data
) -> None:
    slp = slpdb_nights(test_data / "slpdb", ["slp67x", "slp32"])
    nights = (sample_night, *slp)
    producer = FakeProducer()
    report = await replay(nights, SETTINGS, producer_factory=producer.factory,
                          progress=False)
    plans = [plan_night(n, anchor="original") for n in nights]
    assert report.nights == 3 and report.session_ids == tuple(n.session_id for n in nights)
    assert report.chunks == sum(p.n_chunks for p in plans)
    assert report.messages == len(producer.sent) == report.chunks + 6
    assert report.samples == sum(p.n_samples for p in plans)
    assert report.event_s == sum(n.duration_s for n in nights) and report.x_real_time > 1
    assert producer.stopped == 1 and "replayed 3 nights" in report.summary()
    for night in nights:
        msgs = by_session(producer.sent)[night.session_id]
        topics = [m[0] for m in msgs]
        assert topics[0] == topics[-1] == "sleep.sessions"
        assert set(topics[1:-1]) <= {"sleep.samples"}
        assert msgs[0][2]["event"] == "start" and msgs[-1][2]["event"] == "end"
        assert {m[1] for m in msgs} == {night.subject_id.encode()}
        assert not msgs[0][2]["live"]
    # all starts first (every night begins at t = 0), then chunks merged by event time:
    # across nights and modalities no chunk trails what was sent before by a span or more
    firsts = [i for i, m in enumerate(producer.sent) if m[2].get("event") == "start"]
    assert firsts == [0, 1, 2]
    watermark = -math.inf
    for _, _, payload, _ in producer.sent:
        if "offsets_s" in payload:
            assert payload["offsets_s"][0] > watermark - DEFAULT_SPANS[payload["modality"]]
            watermark = max(watermark, payload["offsets_s"][-1])


@pytest.mark.asyncio
async def test_sequential_replay_sends_one_night_after_the_other(test_data) -> None:
    nights = slpdb_nights(test_data / "slpdb", ["slp32", "slp37"])
    producer = FakeProducer()
    await replay(nights, SETTINGS, producer_factory=producer.factory, progress=False,
                 parallel=False)
    events = [(m[2]["session_id"], m[2]["event"]) for m in producer.sent]
    assert events == [("slpdb-slp32", "start"), ("slpdb-slp32", "end"),
                      ("slpdb-slp37", "start"), ("slpdb-slp37", "end")]


@pytest.mark.asyncio
async def test_replay_is_paced_by_the_wall_clock() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    nights = [synthetic({"heart_rate": ReplayStream(t, np.full(t.size, 60.0))},
                        subject_id=f"s{i}", session_id=f"test-s{i}") for i in range(3)]
    producer = FakeProducer()
    began = time.perf_counter()
    report = await replay(nights, SETTINGS, producer_factory=producer.factory, progress=False,
                          speed=1000.0)
    # 60 s of event time at x1000: about 60 ms; loose bounds, this is no benchmark
    assert 0.05 <= time.perf_counter() - began < 3.0
    assert report.wall_s >= 0.05
    sent_at = [(m[3] - began) * 1000.0 for m in producer.sent if m[2].get("seq") == 11]
    assert all(at >= 59.0 for at in sent_at)  # the chunk of [55, 60) s waits for t = 60 s


@pytest.mark.asyncio
async def test_replay_errors_name_the_subject_and_topic(sample_night: ReplayNight) -> None:
    short = replace(sample_night, n_epochs=4, labels=sample_night.labels[:4])  # type: ignore[index]
    with pytest.raises(ReplayError, match=r"subject '8692923'.*'sleep.samples'"):
        await replay([short], SETTINGS, producer_factory=FakeProducer("sleep.samples").factory,
                     progress=False)
    with pytest.raises(ReplayError, match=r"session sleep-accel-8692923.*not acknowledged"):
        await replay([short], SETTINGS, progress=False,
                     producer_factory=FakeProducer("sleep.samples", fail_late=True).factory)
    with pytest.raises(ValueError, match="speed"):
        await replay([short], SETTINGS, producer_factory=FakeProducer().factory, speed=0.0)


def test_run_replay_without_a_broker_fails_with_a_clear_message(sample_night: ReplayNight) -> None:
    settings = StreamSettings(broker="kafka://127.0.0.1:1")
    short = replace(sample_night, n_epochs=1, labels=sample_night.labels[:1])  # type: ignore[index]
    with pytest.raises(ReplayError, match="127.0.0.1:1"):
        run_replay([short], settings, progress=False)


# --- real data beside the checkout -----------------------------------------------------------


@pytest.mark.shared_data
def test_a_full_slpdb_record_with_a_real_clock_streams_the_training_features(
    shared_data,
) -> None:
    rec = read_record(shared_data / "slpdb", "slp01a")
    plan = plan_night(slpdb_night(rec), anchor="original")
    assert not plan.night.start_is_nominal
    np.testing.assert_array_equal(stream_features(plan), night_from_slpdb(rec).features)
