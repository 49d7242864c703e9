"""The stream end to end: a real broker (noida-db), the real worker (``faust -A stream.app
worker`` in a subprocess) and a real InfluxDB 1.x, fed by the replay ingestor.

* a replayed night: stage events for every epoch, equal to the batch predictions, and the
  points in the database; bad messages become dead letters while the night goes on;
* kill -9 in the middle of a replay and a restart: the same events and points as an
  uninterrupted run, and a second replay of the same nights changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from ingestors.replay import ReplayNight, plan_night, replay, sleep_accel_nights
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from stream.collect import OutputCollector, same_event
from stream.replay_eval import AFAP_SPANS, evaluate, run_through_stream
from stream.schemas import SampleChunk, SessionEvent
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker, WorkerProcess, free_port
from tests.servers import InfluxDB1

pytestmark = pytest.mark.timeout(600)
_WALL = {"closed_at_utc", "emitted_at_utc", "latency_s"}


@pytest.fixture(scope="module")
def night() -> ReplayNight:
    return sleep_accel_nights(sleep_accel_sample(), (SAMPLE_NIGHT,))[0]


class Stack:
    """One worker on its own topics, consumer group and InfluxDB database."""

    def __init__(self, name: str, broker: EmbeddedBroker, influx: InfluxDB1, tmp: Path,
                 **env: str):
        self.name = name
        self.settings = StreamSettings(broker=broker.url, partitions=4, app_id=name,
                                       topic_prefix=f"{name}.")
        self.influx = influx
        self.port = free_port()
        self.worker = WorkerProcess({
            "SLEEPSTREAM_BROKER": broker.url, "SLEEPSTREAM_APP_ID": name,
            "SLEEPSTREAM_TOPIC_PREFIX": f"{name}.", "SLEEPSTREAM_PARTITIONS": "4",
            "SLEEPSTREAM_DATA_DIR": str(tmp / f"{name}-data"),
            "SLEEPSTREAM_WEB_PORT": str(self.port),
            # static membership: the restarted worker takes its partitions back at once
            "SLEEPSTREAM_INSTANCE_ID": f"{name}-0",
            "SLEEPSTREAM_END_WAIT_S": "2",
            "SLEEPSTREAM_INFLUX_KIND": "v1", "SLEEPSTREAM_INFLUX_URL": influx.url,
            "SLEEPSTREAM_INFLUX_DATABASE": name, "SLEEPSTREAM_INFLUX_FLUSH_INTERVAL_S": "0.2",
            **env,
        }, tmp / f"{name}-worker.log")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/sleepstream/stats/",
                                    timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def wait_stats(self, ok: Any, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats()
            if ok(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.3)

    def points(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every point of the three measurements, wall-clock fields left out."""
        out = {}
        for m in ("sleep_stage", "sleep_summary", "sleep_inputs"):
            series = self.influx.query(f'SELECT * FROM "{m}"', db=self.name)
            rows: list[tuple[Any, ...]] = []
            for s in series:
                cols = s["columns"]
                keep = [i for i, c in enumerate(cols) if c != "latency_s"]
                rows += [tuple(round(v, 6) if isinstance(v, float) else v
                               for v in (r[i] for i in keep)) for r in s["values"]]
            out[m] = sorted(rows, key=repr)
        return out

    def wait_points(self, want: dict[str, int], timeout_s: float = 60.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            got = {m: sum(len(s["values"]) for s in self.influx.query(
                f'SELECT * FROM "{m}"', db=self.name)) for m in want}
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.5)


def _sample_chunk(session: SessionEvent, seq: int, t: float, values: tuple[float, ...],
                  source: str = "probe") -> SampleChunk:
    return SampleChunk(subject_id=session.subject_id, session_id=session.session_id,
                       source_id=source, seq=seq, modality="heart_rate", unit="bpm",
                       t0_utc=session.t_utc + timedelta(seconds=t),
                       offsets_s=tuple(float(i) for i in range(len(values))), values=values)


async def _send(settings: StreamSettings, messages: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(settings.topic(topic), value, key=key)
    finally:
        await producer.stop()


def test_replayed_night_is_staged_written_and_bad_input_dead_lettered(
        broker: EmbeddedBroker, influxdb_v1: InfluxDB1, night: ReplayNight,
        tmp_path: Path) -> None:
    stack = Stack("e2e", broker, influxdb_v1, tmp_path,
                  SLEEPSTREAM_UNKNOWN_SESSION_WAIT_S="2")
    n = night.n_epochs
    start = plan_night(night, anchor="original").start_event
    good = _sample_chunk(start, 0, 0.0, (61.0,)).model_dump_json()
    bad = [
        ("samples", b"x", b"{this is not json"),
        ("samples", night.subject_id.encode(),
         good.replace('"schema_version":1', '"schema_version":7').encode()),
        ("samples", night.subject_id.encode(),
         good.replace('"values":[61.0]', '"values":[NaN]').encode()),
        ("sessions", b"x", json.dumps({"event": "start"}).encode()),
        ("samples", b"someone-else", good.encode()),  # keyed by another subject
        # a chunk of a session that never starts
        ("samples", b"ghost", _sample_chunk(
            start.model_copy(update={"subject_id": "ghost", "session_id": "never"}), 0, 0.0,
            (60.0,)).model_dump_json().encode()),
    ]
    with stack.worker:
        asyncio.run(_send(stack.settings, bad))
        run = asyncio.run(run_through_stream([night], stack.settings, spans=AFAP_SPANS,
                                             timeout_s=240, progress=False))
        assert run.complete, "not every epoch was staged"
        result = evaluate("sleep-accel", [night], run)
        assert result.parity_ok, result.markdown()
        # every scored epoch: one causal and one offline point, its inputs, one summary
        got = stack.wait_points({"sleep_stage": 2 * n, "sleep_inputs": n, "sleep_summary": 1})
        assert got == {"sleep_stage": 2 * n, "sleep_inputs": n, "sleep_summary": 1}
        causal = influxdb_v1.query(
            f"SELECT count(stage_code) FROM sleep_stage WHERE subject = '{night.subject_id}' "
            "GROUP BY kind", db="e2e")
        assert {s["tags"]["kind"]: s["values"][0][1] for s in causal} == {
            "causal": n, "offline": n}
        # a second replay of the same night changes nothing: every message a duplicate
        before, points = stack.stats(), stack.points()
        plan = plan_night(night, anchor="original", spans=AFAP_SPANS)
        asyncio.run(replay([night], stack.settings, anchor="original", spans=AFAP_SPANS,
                           progress=False))
        after = stack.wait_stats(
            lambda s: s["messages"] >= before["messages"] + plan.n_chunks + 2)
        assert after["duplicates"] - before["duplicates"] == plan.n_chunks + 2
        for counter in ("causal_events", "offline_events", "nights_finished"):
            assert after[counter] == before[counter]
        assert stack.points() == points
        # a duplicate of a processed chunk is dropped; a chunk after the night ended is a
        # dead letter; the worker is still there and answers
        first = next(plan_night(night, anchor="original").chunks())[1]
        late = _sample_chunk(start, 99_999, 10.0, (70.0,), source=first.source_id)
        asyncio.run(_send(stack.settings, [
            ("samples", night.subject_id.encode(), first.model_dump_json().encode()),
            ("samples", night.subject_id.encode(), late.model_dump_json().encode()),
        ]))
        stats = stack.wait_stats(lambda s: sum(s["dead_letters"].values()) >= 7
                                 and s["duplicates"] >= 1)
    assert stack.worker.proc is not None and stack.worker.proc.returncode == 0
    assert stats["dead_letters"] == {"decode": 1, "validate": 4, "process": 2}
    assert stats["duplicates"] >= 1
    collector = OutputCollector(stack.settings, dead_letters=True)

    async def dead() -> list[Any]:
        await collector.start()
        while len(collector.dead) < 7:
            await collector.poll()
        await collector.stop()
        return collector.dead

    letters = asyncio.run(asyncio.wait_for(dead(), 60))
    reasons = " | ".join(d.reason for d in letters)
    for expected in ("schema_version 7 is not supported", "must be a finite number",
                     "never arrived", "was finished", "subject id"):
        assert expected in reasons
    assert {d.topic for d in letters} == {"e2e.samples", "e2e.sessions"}
    assert any(d.raw == bad[0][2] for d in letters)


def _copies(night: ReplayNight, k: int) -> list[ReplayNight]:
    return [dataclasses.replace(night, subject_id=f"r{i}", session_id=f"r{i}-night")
            for i in range(k)]


async def _replay_with_kill(stack: Stack, nights: list[ReplayNight]) -> OutputCollector:
    collector = OutputCollector(stack.settings)
    await collector.start()
    expected = {(n.subject_id, n.session_id): n.n_epochs for n in nights}
    total = sum(expected.values())
    task = asyncio.create_task(replay(nights, stack.settings, anchor="original",
                                      spans=AFAP_SPANS, speed=400.0, progress=False))
    while sum(len(v) for (_, _, k), v in collector.events.items() if k == "causal") \
            < 0.3 * total:
        await collector.poll()
    stack.worker.kill()  # kill -9 in the middle of the replay, which goes on
    await asyncio.sleep(1.0)
    # started from this (main) thread: the worker dies with the thread that started it
    stack.worker.start()
    await task
    assert await collector.wait_complete(expected, 240)
    await collector.stop()
    return collector


async def _replay_plain(stack: Stack, nights: list[ReplayNight]) -> OutputCollector:
    collector = OutputCollector(stack.settings)
    await collector.start()
    await replay(nights, stack.settings, anchor="original", spans=AFAP_SPANS, progress=False)
    expected = {(n.subject_id, n.session_id): n.n_epochs for n in nights}
    assert await collector.wait_complete(expected, 240)
    await collector.stop()
    return collector


def test_kill_9_mid_replay_then_restart_loses_and_duplicates_nothing(
        broker: EmbeddedBroker, influxdb_v1: InfluxDB1, night: ReplayNight,
        tmp_path: Path) -> None:
    nights = _copies(night, 3)
    n_points = {"sleep_stage": 2 * 3 * night.n_epochs, "sleep_inputs": 3 * night.n_epochs,
                "sleep_summary": 3}
    clean = Stack("clean", broker, influxdb_v1, tmp_path)
    with clean.worker:
        want = asyncio.run(_replay_plain(clean, nights))
        assert clean.stats()["dead_letters"] == {}
        assert clean.wait_points(n_points) == n_points
        want_points = clean.points()

    killed = Stack("killed", broker, influxdb_v1, tmp_path)
    try:
        killed.worker.start()
        got = asyncio.run(_replay_with_kill(killed, nights))
        assert killed.worker.starts == 2
        stats = killed.stats()
        print("after the restart:", {k: stats[k] for k in ("delivery_gaps", "redelivered",
                                                            "duplicates", "seq_gaps")})
        assert stats["dead_letters"] == {}
        assert stats["seq_gaps"] == 0, "a chunk never reached the worker"
        assert killed.wait_points(n_points) == n_points
        # the same events: same ids, stages, probabilities; nothing lost
        assert got.events.keys() == want.events.keys()
        for key, events in want.events.items():
            assert events.keys() == got.events[key].keys()
            diffs = [(k, e.model_dump(exclude=_WALL), got.events[key][k].model_dump(
                exclude=_WALL)) for k, e in events.items()
                if not same_event(e, got.events[key][k], atol=1e-5)]
            assert not diffs, f"{key}: {len(diffs)} events differ, e.g. {diffs[:2]}"
        assert got.summaries.keys() == want.summaries.keys()
        # re-delivered copies after the restart are identical to the first ones
        assert got.conflicts == 0
        # the database holds exactly the same points
        assert killed.points() == want_points

        # a second replay of the same nights changes nothing
        before = killed.stats()
        messages = sum(plan_night(nt, anchor="original", spans=AFAP_SPANS).n_chunks + 2
                       for nt in nights)
        asyncio.run(replay(nights, killed.settings, anchor="original", spans=AFAP_SPANS,
                           progress=False))
        after = killed.wait_stats(lambda s: s["messages"] >= before["messages"] + messages)
        assert after["messages"] == before["messages"] + messages
        assert after["duplicates"] == before["duplicates"] + messages
        assert after["causal_events"] == before["causal_events"]
        assert after["offline_events"] == before["offline_events"]
        assert sum(after["dead_letters"].values()) == sum(before["dead_letters"].values())
        assert killed.points() == want_points
    finally:
        killed.worker.stop()


def test_all_31_sleep_accel_nights_through_the_stream_equal_the_batch_predictions(
        broker: EmbeddedBroker, shared_data: Path, tmp_path: Path) -> None:
    """Parity on the whole dataset: every epoch of every night, causal and offline."""
    from training.datasets.sleep_accel import load_sleep_accel

    folder = shared_data / "sleep-accel-walch-cropped" / "cropped"
    nights = sleep_accel_nights(folder)
    assert len(nights) == 31
    # the replayed samples are the training samples: same feature rows as training
    from stream.replay_eval import batch_rows

    training = {n.subject: n.features for n in load_sleep_accel(folder, progress=False).nights}
    for nt in nights:
        assert (batch_rows(nt) == training[nt.subject_id]).all(), nt.subject_id
    name = "parity"
    settings = StreamSettings(broker=broker.url, partitions=4, app_id=name,
                              topic_prefix=f"{name}.")
    worker = WorkerProcess({
        "SLEEPSTREAM_BROKER": broker.url, "SLEEPSTREAM_APP_ID": name,
        "SLEEPSTREAM_TOPIC_PREFIX": f"{name}.", "SLEEPSTREAM_PARTITIONS": "4",
        "SLEEPSTREAM_DATA_DIR": str(tmp_path / "data"), "SLEEPSTREAM_WEB_ENABLED": "false",
        "SLEEPSTREAM_INSTANCE_ID": f"{name}-0",
    }, tmp_path / "worker.log")
    with worker:
        run = asyncio.run(run_through_stream(nights, settings, spans=AFAP_SPANS,
                                             timeout_s=400, progress=False))
    assert run.complete
    result = evaluate("sleep-accel", nights, run)
    assert result.epochs == 27_180
    assert result.parity_ok, result.markdown()
    assert result.conflicts == 0
