"""The sinks against real databases started by tests/servers.py.

* v2 sink -> VictoriaMetrics (the InfluxDB 2.x write API), read back with its export API;
* v1 sink -> InfluxDB 1.x ``influxd``, read back with InfluxQL.

A synthetic night: 960 epochs (8 h) for two subjects, causal stage events carrying the
inputs of their epoch, offline stage events and a summary per subject and kind. The night
lies in 2024 on purpose: a server whose retention drops old points fails these tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from influxdb_client import Point, WritePrecision

from models.stages import CLASS_NAMES
from stream.schemas import EpochInputStats, NightSummary, StageEvent
from stream.settings import SinkSettings
from stream.sinks import InfluxV1Sink, InfluxV2Sink, Sink, SinkItem, make_sink
from tests.servers import InfluxDB1, VictoriaMetrics

pytestmark = pytest.mark.asyncio

N_EPOCHS = 960
NIGHT0 = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
NAMES = CLASS_NAMES[4]
MODEL = "wearable-net"


def ns(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def stage_events(subject: str, kind: str, revision: int = 1) -> list[StageEvent]:
    rng = random.Random(f"{subject}|{kind}|{revision}")
    events = []
    for i in range(N_EPOCHS):
        raw = [rng.random() for _ in NAMES]
        raw[(i // 40 + revision) % 4] += 2.0  # stages change every 20 min
        if i % 97 == 0:
            raw[2] = 1e-9  # tiny probabilities travel in exponent notation
        probs = {n: r / sum(raw) for n, r in zip(NAMES, raw, strict=True)}
        stage = max(probs, key=probs.__getitem__)
        t = NIGHT0 + timedelta(seconds=30 * i)
        events.append(StageEvent(
            subject_id=subject, session_id="night-1", epoch_index=i, epoch_start_utc=t,
            model_name=MODEL, model_version="1", kind=kind, stage=stage,  # type: ignore[arg-type]
            probabilities=probs, confidence=probs[stage], valid=i % 50 != 7,
            closed_at_utc=t, emitted_at_utc=t, latency_s=rng.uniform(0.001, 0.2),
            inputs=epoch_inputs(i) if kind == "causal" else None,
        ))
    return events


def summary(subject: str, kind: str, tst_min: float = 400.0) -> NightSummary:
    minutes = {"W": 480.0 - tst_min, "light": tst_min * 0.6, "deep": tst_min * 0.15,
               "REM": tst_min * 0.25}
    return NightSummary(
        subject_id=subject, session_id="night-1", model_name=MODEL, kind=kind,  # type: ignore[arg-type]
        t_start_utc=NIGHT0, t_end_utc=NIGHT0 + timedelta(hours=8), n_epochs=N_EPOCHS,
        n_valid_epochs=N_EPOCHS - 19, tib_min=480.0, tst_min=tst_min,
        se_pct=tst_min / 4.8, sol_min=11.5, waso_min=20.0, rem_latency_min=None,
        minutes=minutes, percent_of_tst={k: 100 * v / tst_min for k, v in minutes.items()
                                         if k != "W"},
        emitted_at_utc=NIGHT0,
    )


def epoch_inputs(i: int) -> EpochInputStats:
    return EpochInputStats(hr_mean_bpm=None if i % 50 == 7 else 55 + (i % 30) / 3,
                           hr_samples=0 if i % 50 == 7 else 6, activity_counts=float(i % 13),
                           activity_samples=2, rr_mean_s=None, beats=0)


def whole_night(prefix: str) -> tuple[list[str], list[SinkItem]]:
    subjects = [f"{prefix}-a", f"{prefix}-b"]
    items: list[SinkItem] = []
    for s in subjects:
        for kind in ("causal", "offline"):
            items += stage_events(s, kind)
            items.append(summary(s, kind))
    return subjects, items


def stage_fields(e: StageEvent) -> dict[str, Any]:
    """The fields the layout promises, computed from the payload, not by the sink's code."""
    fields: dict[str, Any] = {"stage": e.stage, "stage_code": NAMES.index(e.stage)}
    fields |= {f"p_{n}": e.probabilities[n] for n in NAMES}
    return fields | {"confidence": e.confidence, "epoch_index": e.epoch_index,
                     "latency_s": e.latency_s, "valid": e.valid}


Key = tuple[str, frozenset[tuple[str, str]]]  # (metric name, labels)


def expected_samples(items: list[SinkItem]) -> dict[Key, dict[int, float]]:
    """(metric, labels) -> {time in ms: value}, as VictoriaMetrics stores the points."""
    out: dict[Key, dict[int, float]] = {}

    def put(measurement: str, tags: dict[str, str], t: datetime, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                key = (f"{measurement}_{name}", frozenset(tags.items()))
                out.setdefault(key, {})[ns(t) // 10**6] = float(value)

    for it in items:
        if isinstance(it, StageEvent):
            tags = {"subject": it.subject_id, "session": it.session_id, "kind": it.kind,
                    "model": it.model_name}
            put("sleep_stage", tags, it.epoch_start_utc, stage_fields(it))
            if it.inputs is not None:
                put("sleep_inputs", {"subject": it.subject_id, "session": it.session_id},
                    it.epoch_start_utc, it.inputs.model_dump(exclude={"schema_version"}))
        elif isinstance(it, NightSummary):
            tags = {"subject": it.subject_id, "session": it.session_id, "kind": it.kind,
                    "model": it.model_name}
            fields = it.model_dump(include={"n_epochs", "n_valid_epochs", "tib_min", "tst_min",
                                            "se_pct", "sol_min", "waso_min", "rem_latency_min"})
            fields |= {f"minutes_{k}": v for k, v in it.minutes.items()}
            put("sleep_summary", tags, it.t_start_utc,
                fields | {f"pct_{k}": v for k, v in it.percent_of_tst.items()})
    return out


def exported_samples(vm: VictoriaMetrics, prefix: str) -> dict[Key, list[tuple[int, float]]]:
    out = {}
    for series in vm.export(f'{{__name__=~"sleep_.*", subject=~"{prefix}-.*"}}'):
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        if name == "sleep_stage_stage":
            continue  # VictoriaMetrics keeps string fields as the number 0: not comparable
        out[(name, frozenset(labels.items()))] = list(
            zip(series["timestamps"], series["values"], strict=True))
    return out


async def write_all(sink: Sink, items: list[SinkItem]) -> None:
    await sink.write_batch(items)
    await sink.close()
    # a causal event with inputs gives two points: its stage and its inputs
    n_points = sum(2 if isinstance(i, StageEvent) and i.inputs else 1 for i in items)
    assert sink.stats.points_written == n_points and sink.stats.points_rejected == 0


async def test_v2_sink_writes_every_point_to_victoria_metrics(
    victoria_metrics: VictoriaMetrics,
) -> None:
    prefix = uuid.uuid4().hex[:8]
    _, items = whole_night(prefix)
    sink = InfluxV2Sink(victoria_metrics.url, "", "sleepstream", "sleepstream", batch_size=1000)
    await write_all(sink, items)

    want = expected_samples(items)
    assert_exported(exported_samples(victoria_metrics, prefix), want)

    again = InfluxV2Sink(victoria_metrics.url, "", "sleepstream", "sleepstream", batch_size=700)
    await write_all(again, items)  # a replay: the same points, batched differently
    assert_exported(exported_samples(victoria_metrics, prefix), want)  # no duplicates


def assert_exported(got: dict[Key, list[tuple[int, float]]],
                    want: dict[Key, dict[int, float]]) -> None:
    assert got.keys() == want.keys()
    for key, samples in want.items():
        times, values = zip(*sorted(samples.items()), strict=True)
        assert [t for t, _ in got[key]] == list(times), key  # ms, from the payload
        # VictoriaMetrics stores a block of floats as decimals with one shared exponent:
        # about 12 significant digits of the block's largest value survive
        assert [v for _, v in got[key]] == pytest.approx(values, rel=1e-11, abs=1e-11), key


def rows(influx: InfluxDB1, db: str, q: str) -> list[dict[str, Any]]:
    out = []
    for series in influx.query(q, db):
        tags = series.get("tags", {})
        out += [dict(zip(series["columns"], values, strict=True)) | tags
                for values in series["values"]]
    return out


def stage_rows(influx: InfluxDB1, db: str, subject: str, kind: str) -> dict[int, dict[str, Any]]:
    q = f"SELECT * FROM sleep_stage WHERE subject = '{subject}' AND kind = '{kind}'"
    return {r.pop("time"): r for r in rows(influx, db, q)}


def expected_rows(events: list[StageEvent]) -> dict[int, dict[str, Any]]:
    return {ns(e.epoch_start_utc): stage_fields(e) | {
        "subject": e.subject_id, "session": e.session_id, "kind": e.kind, "model": MODEL}
        for e in events}


def v1_settings(influx: InfluxDB1, db: str, **kw: Any) -> SinkSettings:
    return SinkSettings(kind="v1", url=influx.url, database=db, batch_size=1000,
                        flush_interval_s=0.2, **kw)


async def test_v1_sink_writes_rewrites_and_revises_in_influxdb(influxdb_v1: InfluxDB1) -> None:
    db, prefix = f"sleep_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    subjects, items = whole_night(prefix)
    sink = make_sink(v1_settings(influxdb_v1, db))
    assert isinstance(sink, InfluxV1Sink)
    await write_all(sink, items)  # creates the database

    def check(offline_revision: int) -> None:
        for s in subjects:
            assert stage_rows(influxdb_v1, db, s, "causal") == expected_rows(
                stage_events(s, "causal"))
            assert stage_rows(influxdb_v1, db, s, "offline") == expected_rows(
                stage_events(s, "offline", offline_revision))
        counts = rows(influxdb_v1, db, "SELECT count(stage_code) FROM sleep_stage GROUP BY *")
        assert [c["count"] for c in counts] == [N_EPOCHS] * 4
        n = rows(influxdb_v1, db, "SELECT count(hr_samples) FROM sleep_inputs")
        assert n[0]["count"] == 2 * N_EPOCHS

    check(offline_revision=1)
    await write_all(make_sink(v1_settings(influxdb_v1, db)), items)  # a replay
    check(offline_revision=1)

    revision = [e for s in subjects for e in stage_events(s, "offline", revision=2)]
    revised_summary = summary(subjects[0], "offline", tst_min=380.0)
    assert [e.stage for e in revision[:N_EPOCHS]] != [
        e.stage for e in stage_events(subjects[0], "offline")]
    await write_all(make_sink(v1_settings(influxdb_v1, db)), [*revision, revised_summary])
    check(offline_revision=2)  # the second revision replaced the first, causal untouched

    q = f"SELECT tst_min, minutes_light FROM sleep_summary WHERE subject = '{subjects[0]}'"
    got = {r["kind"]: r for r in rows(influxdb_v1, db, q + " GROUP BY kind")}
    assert got["offline"]["tst_min"] == 380.0 and got["causal"]["tst_min"] == 400.0
    assert got["offline"]["time"] == ns(NIGHT0) and len(got) == 2
    assert got["offline"]["minutes_light"] == pytest.approx(380.0 * 0.6)


async def test_v1_sink_survives_an_outage(influxdb_v1_restartable: InfluxDB1) -> None:
    influx, db = influxdb_v1_restartable, f"sleep_{uuid.uuid4().hex[:8]}"
    events = stage_events(f"{uuid.uuid4().hex[:8]}-a", "causal")[:300]
    sink = InfluxV1Sink(influx.url, db, batch_size=100, flush_interval_s=0.1,
                        min_backoff_s=0.1, max_backoff_s=0.5, max_retries=None)
    influx.stop()
    await sink.write_batch(events)  # 300 stage and 300 inputs points
    flushed = asyncio.create_task(sink.flush())
    await asyncio.sleep(2.0)
    assert not flushed.done() and sink.pending == 600 and sink.stats.retries >= 3
    influx.start()  # same port, same data
    await asyncio.wait_for(flushed, 20)
    await sink.close()
    assert sink.stats.points_written == 600 and sink.stats.batches_written == 6
    got = stage_rows(influx, db, events[0].subject_id, "causal")
    assert got == expected_rows(events)  # every point, once


async def test_v1_sink_reports_a_rejected_batch(
    influxdb_v1: InfluxDB1, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sleep_{uuid.uuid4().hex[:8]}"
    events = [e.model_copy(update={"inputs": None})  # stage points only: one per event
              for e in stage_events(f"{uuid.uuid4().hex[:8]}-a", "causal")[:30]]
    sink = InfluxV1Sink(influxdb_v1.url, db, batch_size=10, flush_interval_s=0.1)
    await sink.write_batch(events[:10])
    await sink.flush()  # stage_code is an integer field from now on
    e = events[10]
    bad = (Point("sleep_stage").tag("subject", e.subject_id).tag("session", e.session_id)
           .tag("kind", "causal").tag("model", MODEL).field("stage_code", "deep")
           .time(ns(e.epoch_start_utc - timedelta(seconds=15)), WritePrecision.NS))
    with caplog.at_level(logging.ERROR, logger="stream.sinks"):
        await sink.write_batch([*events[10:14], bad, *events[14:19]])
        await sink.write_batch(events[19:])
        await sink.close()
    (rejected,) = sink.rejected
    assert rejected.status == 400 and rejected.n_points == 10
    assert "field type conflict" in rejected.message and "dropped=1" in rejected.message
    assert "field type conflict" in caplog.text
    assert (sink.stats.points_rejected, sink.stats.points_written) == (10, 21)
    # InfluxDB keeps the valid points of a rejected batch ("partial write")
    assert stage_rows(influxdb_v1, db, e.subject_id, "causal") == expected_rows(events)
