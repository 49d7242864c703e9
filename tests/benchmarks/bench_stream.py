"""Benchmarks of the stream on this machine: replay, live load and per-epoch cost.

Everything runs for real: the embedded broker (noida-db) and ``faust -A stream.app worker``
as subprocesses (:class:`stream.stack.LocalStack`), fed over Kafka.

``replay`` (a)
    All 31 Sleep-Accel nights replayed as fast as possible through broker and worker:
    wall time from the first message sent to the last stage event received, × real time,
    and parity of every epoch with the batch predictions. Goal: <= 60 s.
``live`` (b)
    N simulated subjects, each sending heart rate (1 Hz, a chunk every 5 s) and activity
    counts (one per 15 s, in 5-s chunks) at real-time rates, for ``--duration`` s. A
    consumer reads the stage events and measures epoch close -> stage event received
    (``closed_at_utc`` stamped by the worker; same clock). The worker's ingest delay
    (broker timestamp -> processed) shows whether it keeps up. N is sustained when the
    p99 close -> event latency is <= 1 s, the p99 ingest delay is <= 5 s (one chunk
    period) and all expected epochs were staged. Goal: >= 5,000 subjects.
``epoch`` (c)
    In-process cost per staged epoch of the worker's logic (features, causal model,
    checkpoint) for N subjects whose epochs close in one batch versus one at a time.
``psg-live`` (d), ``psg-replay`` (e)
    Live PSG subjects sending 6 EEG channels at 256 Hz (p99 close -> event, worker memory
    per subject; goal >= 200 subjects), and 20 nights of 2-channel 100-Hz EEG replayed as
    fast as possible (goal >= 1,000x real time): tests/benchmarks/_bench_psg.py.

Run from the repository root::

    python tests/benchmarks/bench_stream.py replay \
        --data ../shared/data/sleep-accel-walch-cropped/cropped [--sink influxdb1]
    python tests/benchmarks/bench_stream.py live --subjects 1000,3000,5000 --duration 150
    python tests/benchmarks/bench_stream.py epoch --subjects 1000
    python tests/benchmarks/bench_stream.py psg-live --subjects 100,200,300 --duration 150 \
        [--weights DIR]
    python tests/benchmarks/bench_stream.py psg-replay --nights 20 \
        --data ../shared/data/sleep-edf/pz-oz-raw-first-10000s [--weights DIR]

``--weights``: a folder with psg-causal and psg-offline (default: the shipped models).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stream.schemas import SampleChunk, SessionEvent, StageEvent  # noqa: E402
from stream.settings import StreamSettings  # noqa: E402
from stream.stack import LocalStack, free_port  # noqa: E402

console = Console()


# ---------------------------------------------------------------------------- (a) replay
def bench_replay(data: Path, sink: str) -> None:
    from ingestors.replay import sleep_accel_nights
    from stream.replay_eval import AFAP_SPANS, evaluate, run_through_stream

    nights = sleep_accel_nights(data)
    n_epochs = sum(n.n_epochs for n in nights)
    # every scored epoch: a causal and an offline stage point and an inputs point; a
    # summary per night
    want = {"sleep_stage": 2 * n_epochs, "sleep_inputs": n_epochs,
            "sleep_summary": len(nights)}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        env = {"SLEEPSTREAM_WEB_ENABLED": "false"}
        influx = None
        if sink == "influxdb1":
            influx = _start_influxdb1(Path(tmp))
            env |= {"SLEEPSTREAM_INFLUX_KIND": "v1", "SLEEPSTREAM_INFLUX_URL": influx.url,
                    "SLEEPSTREAM_INFLUX_DATABASE": "bench"}
        try:
            with LocalStack(Path(tmp), env=env) as stack:
                t0 = time.monotonic()
                run = asyncio.run(run_through_stream(nights, stack.settings(),
                                                     progress=False, spans=AFAP_SPANS))
                db_s = None
                if influx is not None:  # until the database holds every point
                    points = _wait_points(influx, "bench", want, 300.0)
                    db_s = time.monotonic() - t0
                    if points != want:
                        console.print(f"[red]database has {points}, expected {want}")
                        db_s = None
        finally:
            if influx is not None:
                influx.stop()
    result = evaluate("sleep-accel", nights, run)
    hours = n_epochs * 30 / 3600
    t = Table(title="(a) 31 Sleep-Accel nights through broker + worker"
              + (" + InfluxDB 1.x" if influx else "") + ", as fast as possible")
    for col in ("nights", "epochs", "night-hours", "wall s (last event)", "x real time",
                "wall s (all points in db)", "parity", "events complete", "goal <= 60 s"):
        t.add_column(col)
    last = db_s if db_s is not None else result.wall_s
    t.add_row(str(result.nights), str(result.epochs), f"{hours:.0f}", f"{result.wall_s:.1f}",
              f"{result.x_real_time:,.0f}", f"{db_s:.1f}" if db_s is not None else "-",
              "yes" if result.parity_ok else "NO", "yes" if result.complete else "NO",
              "met" if last <= 60 else "not met")
    console.print(t)


def _start_influxdb1(root: Path) -> Any:
    from tests.servers import InfluxDB1, _influxd_config, require_binary

    binary = require_binary("influxd")
    work = root / "influxd"
    work.mkdir()
    port, rpc = free_port(), free_port()
    conf = _influxd_config(work / "influxdb.conf", port, rpc)
    server = InfluxDB1("influxd", lambda: [binary, "-config", str(conf)], port, "/ping", work)
    server.start()
    return server


def _wait_points(influx: Any, db: str, want: dict[str, int],
                 timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = {}
        for m in want:
            series = influx.query(f'SELECT count(*) FROM "{m}"', db=db)
            got[m] = max((max(v for v in s["values"][0][1:] if v is not None)
                          for s in series), default=0)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


# ---------------------------------------------------------------------------- (b) live
class LoadGenerator:
    """N subjects sending 5-s heart-rate chunks and 15-s activity counts in real time.

    Sessions start at times spread over 30 s (as real nights do), so epochs of different
    subjects close at different moments, as in a real fleet.
    """

    def __init__(self, settings: StreamSettings, n: int, seed: int = 0) -> None:
        self.settings = settings
        self.n = n
        self.rng = np.random.default_rng(seed)
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        offsets = np.round(self.rng.uniform(0, 30, n), 3)
        self.starts = [base + timedelta(seconds=float(o)) for o in offsets]
        self.first = base.timestamp()
        self.sent = 0

    async def run(self, duration_s: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, linger_ms=20,
                                    max_batch_size=1 << 20,
                                    **self.settings.kafka_client_options())
        await producer.start()
        try:
            sessions, samples = self.settings.topic("sessions"), self.settings.topic("samples")
            for i in range(self.n):
                ev = SessionEvent(event="start", subject_id=f"sim{i}", session_id=f"sim{i}-n",
                                  device="bench", modalities=("heart_rate", "activity_counts"),
                                  t_utc=self.starts[i], live=True)
                await producer.send(sessions, ev.model_dump_json().encode(),
                                    key=f"sim{i}".encode())
            await producer.flush()
            # (send time, subject, chunk index): chunk k covers [5k, 5k + 5) s of the
            # subject's session and is sent when that span has passed
            heap = [(self.starts[i].timestamp() + 5.0, i, 0) for i in range(self.n)]
            heapq.heapify(heap)
            end = self.first + duration_s
            while heap:
                due, i, k = heapq.heappop(heap)
                if due > end:
                    break
                wait = due - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._send(producer, samples, i, k)
                heapq.heappush(heap, (due + 5.0, i, k + 1))
            await producer.flush()
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, topic: str, i: int, k: int) -> None:
        key = f"sim{i}".encode()
        t = 5.0 * k + np.arange(5.0)
        hr = 62 + 6 * np.sin(t / 900 + i) + self.rng.normal(0, 1.5, 5)
        start = self.starts[i]
        chunk = SampleChunk(subject_id=f"sim{i}", session_id=f"sim{i}-n", source_id=f"sim{i}-hr",
                            seq=k, modality="heart_rate", unit="bpm", t0_utc=start,
                            offsets_s=tuple(t.tolist()), values=tuple(hr.round(1).tolist()))
        await producer.send(topic, chunk.model_dump_json().encode(), key=key)
        self.sent += 1
        if k % 3 == 2:  # a 15-s activity count every third chunk
            act = SampleChunk(
                subject_id=f"sim{i}", session_id=f"sim{i}-n", source_id=f"sim{i}-act",
                seq=k // 3, modality="activity_counts", unit="count", t0_utc=start,
                offsets_s=(15.0 * (k // 3),), values=(float(self.rng.gamma(0.5, 20.0)),))
            await producer.send(topic, act.model_dump_json().encode(), key=key)
            self.sent += 1


async def _collect_latencies(settings: StreamSettings, stop: asyncio.Event,
                             after: float) -> list[float]:
    consumer = AIOKafkaConsumer(settings.topic("stages"), bootstrap_servers=settings.bootstrap,
                                group_id=None, auto_offset_reset="latest",
                                enable_auto_commit=False, **settings.kafka_client_options())
    await consumer.start()
    lat: list[float] = []
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for rec in records:
                    ev = StageEvent.model_validate_json(rec.value)
                    closed = ev.closed_at_utc.timestamp()
                    if ev.kind == "causal" and closed >= after:
                        lat.append(now - closed)
    finally:
        await consumer.stop()
    return lat


def _stats(port: int, window: float) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/sleepstream/stats/?window={window:.0f}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


async def _live_once(settings: StreamSettings, port: int, n: int, duration: float,
                     warmup: float) -> dict[str, Any]:
    gen = LoadGenerator(settings, n)
    stop = asyncio.Event()
    after = gen.first + warmup
    collector = asyncio.create_task(_collect_latencies(settings, stop, after))
    await asyncio.sleep(1.0)
    t0 = time.time()
    await gen.run(duration)
    await asyncio.sleep(3.0)
    stop.set()
    lat = np.asarray(await collector)
    stats = _stats(port, duration - warmup)
    measured = duration - warmup
    expected = n * max(0.0, math.floor(measured / 30) - 1)
    return {
        "subjects": n, "messages_per_s": gen.sent / (time.time() - t0),
        "epochs_staged": int(lat.size), "epochs_expected_min": int(expected),
        "close_to_event_p50_s": float(np.percentile(lat, 50)) if lat.size else math.nan,
        "close_to_event_p99_s": float(np.percentile(lat, 99)) if lat.size else math.nan,
        "ingest_delay_p99_s": stats["ingest_delay_p99_s"] or math.nan,
        "ingest_delay_max_s": stats["ingest_delay_max_s"] or math.nan,
    }


def bench_live(subjects: list[int], duration: float, warmup: float) -> None:
    rows = []
    for n in subjects:
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp, LocalStack(
            Path(tmp), partitions=8, env={"SLEEPSTREAM_WEB_PORT": str(port),
                                          "SLEEPSTREAM_GRACE_S": "10"}
        ) as stack:
            console.print(f"live load: {n} subjects for {duration:.0f} s ...")
            rows.append(asyncio.run(_live_once(stack.settings(), port, n, duration, warmup)))
            console.print(rows[-1])
    t = Table(title="(b) live load on one worker (2-core machine, broker and load generator "
              "on the same cores)")
    for col in ("subjects", "msgs/s", "epochs staged", "close->event p50 / p99 s",
                "ingest delay p99 / max s", "sustained"):
        t.add_column(col)
    for r in rows:
        ok = (r["close_to_event_p99_s"] <= 1.0 and r["ingest_delay_p99_s"] <= 5.0
              and r["epochs_staged"] >= r["epochs_expected_min"])
        t.add_row(str(r["subjects"]), f"{r['messages_per_s']:.0f}",
                  f"{r['epochs_staged']} (>= {r['epochs_expected_min']})",
                  f"{r['close_to_event_p50_s']:.3f} / {r['close_to_event_p99_s']:.3f}",
                  f"{r['ingest_delay_p99_s']:.2f} / {r['ingest_delay_max_s']:.2f}",
                  "yes" if ok else "no")
    console.print(t)


# ---------------------------------------------------------------------------- (c) epoch
def bench_epoch(n: int) -> None:
    from stream.staging import FamilyModels
    from stream.worker import Inbound, Worker

    family_models = {"wearable": FamilyModels("wearable")}
    t0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)

    def setup() -> tuple[Worker, list[Inbound]]:
        state: dict[str, str] = {}
        rows: dict[str, Any] = {}
        w = Worker(StreamSettings(grace_s=0.0, checkpoint_interval_s=0.0), state.get,
                   rows.get, family_models=family_models)
        msgs = []
        for i in range(n):
            ev = SessionEvent(event="start", subject_id=f"s{i}", session_id="n",
                              modalities=("heart_rate",), t_utc=t0, live=False)
            msgs.append(Inbound("sessions", "s", 0, i, f"s{i}".encode(),
                                ev.model_dump_json().encode()))
        w.handle(msgs)
        return w, []

    def chunks(k: int) -> list[Inbound]:
        out = []
        for i in range(n):
            c = SampleChunk(subject_id=f"s{i}", session_id="n", source_id=f"s{i}", seq=k,
                            modality="heart_rate", unit="bpm", t0_utc=t0,
                            offsets_s=tuple(30.0 * k + np.arange(0, 30, 5.0)),
                            values=(60.0, 61.0, 62.0, 61.0, 60.0, 59.0))
            out.append(Inbound("samples", "s", 0, k, f"s{i}".encode(),
                               c.model_dump_json().encode()))
        return out

    results = {}
    for mode in ("batched", "one at a time"):
        w, _ = setup()
        w.handle(chunks(0))  # warm-up: numba, onnxruntime
        times = []
        for k in range(1, 31):
            batch = chunks(k)  # each closes epoch k-1 of every subject
            start = time.perf_counter()
            if mode == "batched":
                w.handle(batch)
            else:
                for m in batch:
                    w.handle([m])
            times.append(time.perf_counter() - start)
        results[mode] = float(np.median(times)) / n
    t = Table(title=f"(c) worker cost per staged epoch, {n} subjects closing together "
              "(decode, features, causal model, checkpoint)")
    t.add_column("mode")
    t.add_column("µs per epoch")
    for mode, v in results.items():
        t.add_row(mode, f"{v * 1e6:.0f}")
    console.print(t)
    console.print("model call alone: python tests/benchmarks/bench_inference.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("replay")
    a.add_argument("--data", type=Path,
                   default=ROOT.parent / "shared/data/sleep-accel-walch-cropped/cropped")
    a.add_argument("--sink", choices=("none", "influxdb1"), default="none",
                   help="influxdb1: also start influxd 1.x, have the worker's sink write "
                   "every point and time until the database holds them all")
    b = sub.add_parser("live")
    b.add_argument("--subjects", default="1000,3000,5000")
    b.add_argument("--duration", type=float, default=150.0)
    b.add_argument("--warmup", type=float, default=45.0)
    c = sub.add_parser("epoch")
    c.add_argument("--subjects", type=int, default=1000)
    d = sub.add_parser("psg-live")
    d.add_argument("--subjects", default="100,200,300")
    d.add_argument("--duration", type=float, default=150.0)
    d.add_argument("--warmup", type=float, default=45.0)
    d.add_argument("--weights", type=Path, default=None)
    e = sub.add_parser("psg-replay")
    e.add_argument("--nights", type=int, default=20)
    e.add_argument("--hours", type=float, default=8.0)
    e.add_argument("--data", type=Path,
                   default=ROOT.parent / "shared/data/sleep-edf/pz-oz-raw-first-10000s")
    e.add_argument("--weights", type=Path, default=None)
    args = p.parse_args()
    if args.what == "replay":
        bench_replay(args.data, args.sink)
    elif args.what == "live":
        bench_live([int(x) for x in args.subjects.split(",")], args.duration, args.warmup)
    elif args.what == "epoch":
        bench_epoch(args.subjects)
    elif args.what == "psg-live":
        from tests.benchmarks._bench_psg import bench_psg_live

        bench_psg_live([int(x) for x in args.subjects.split(",")], args.duration,
                       args.warmup, args.weights, (_collect_latencies, _stats))
    else:
        from tests.benchmarks._bench_psg import bench_psg_replay

        bench_psg_replay(args.nights, args.hours, args.data, args.weights)


if __name__ == "__main__":
    main()
