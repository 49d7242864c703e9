"""The PSG modes of bench_stream.py: live EEG subjects, and a replay of 20 EEG nights.

``psg-live`` (d)
    N simulated live PSG subjects, each sending 6 EEG channels at 256 Hz as an ingestor does:
    per channel one compact int16 chunk of 1,280 samples (5 s) when its 5 s have passed,
    one source per channel. Sessions start spread over 30 s. A consumer measures epoch close
    -> stage event received (``closed_at_utc``, stamped by the worker; same clock); the
    worker's ingest delay says whether it keeps up. N is sustained when the p99 close ->
    event latency is <= 1 s, the p99 ingest delay <= 5 s and all expected epochs were
    staged. Worker memory per subject: the worker's resident set (``VmRSS``) with the N
    subjects open minus before their sessions started, over N. Goal: >= 200 subjects.
``psg-replay`` (e)
    20 nights of 2-channel 100-Hz EEG (8 h each; the real Sleep-EDF Pz-Oz clips tiled to
    8 h when ``--data`` holds them, else generated EEG) replayed as fast as possible:
    wall time from the first message sent to the last stage event received, x real time,
    and parity of every epoch with the batch computation. Goal: >= 1,000x real time.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import json
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import scipy.signal
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from ingestors.base.regular import RegularSpec
from ingestors.replay import RegularStream, ReplayNight
from stream.schemas import SessionEvent
from stream.settings import StreamSettings
from stream.stack import LocalStack, free_port

console = Console()
#: bench_stream's ``_collect_latencies`` (stage events -> close latencies) and ``_stats``.
Probes = tuple[Callable[[StreamSettings, asyncio.Event, float], Awaitable[list[float]]],
               Callable[[int, float], dict[str, Any]]]
CHANNELS = ("Fpz-Cz", "Pz-Oz", "C3-M2", "C4-M1", "O1-M2", "O2-M1")
RATE_HZ = 256.0
SPAN_S = 5.0
#: int16 steps of the generated EEG: 0.05 uV per step, as a PSG amplifier's resolution.
SCALE = 0.05


def _eeg_pool(n_chunks: int, seed: int = 0) -> list[str]:
    """base64 of ``n_chunks`` 5-s int16 chunks of EEG-like signal (alpha over brown noise)."""
    rng = np.random.default_rng(seed)
    n = int(SPAN_S * RATE_HZ)
    a = np.exp(-2 * np.pi * 2.0 / RATE_HZ)
    t = np.arange(n * n_chunks) / RATE_HZ
    uv = scipy.signal.lfilter([1 - a], [1, -a], rng.normal(0, 40.0, t.size)) \
        + 20 * np.sin(2 * np.pi * 10.0 * t) + rng.normal(0, 3.0, t.size)
    raw = np.round(uv / SCALE).astype(np.int16).reshape(n_chunks, n)
    return [base64.b64encode(r.astype("<i2").tobytes()).decode("ascii") for r in raw]


class PsgLoad:
    """N live PSG subjects with 6 EEG channels at 256 Hz, a 5-s chunk per channel."""

    def __init__(self, settings: StreamSettings, n: int, seed: int = 0) -> None:
        self.settings, self.n = settings, n
        rng = np.random.default_rng(seed)
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        self.starts = [base + timedelta(seconds=float(o)) for o in np.round(
            rng.uniform(0, 30, n), 3)]
        self.first = base.timestamp()
        self.pool = _eeg_pool(24, seed)
        self.sent = 0

    def _chunk(self, i: int, channel: str, k: int) -> bytes:
        subject = f"psg{i}"
        return json.dumps({
            "schema_version": 1, "subject_id": subject, "session_id": f"{subject}-n",
            "source_id": f"{subject}-n-eeg-{channel}", "seq": k, "modality": "eeg",
            "unit": "uV", "t0_utc": self.starts[i].isoformat(), "rate_hz": RATE_HZ,
            "sample0": k * int(SPAN_S * RATE_HZ), "channel": channel,
            "data_b64": self.pool[(i + k) % len(self.pool)], "dtype": "<i2", "scale": SCALE,
            "offset": 0.0,
        }).encode()

    async def run(self, duration_s: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, linger_ms=20,
                                    max_batch_size=1 << 20,
                                    **self.settings.kafka_client_options())
        await producer.start()
        try:
            sessions, samples = self.settings.topic("sessions"), self.settings.topic("samples")
            for i in range(self.n):
                ev = SessionEvent(event="start", subject_id=f"psg{i}", session_id=f"psg{i}-n",
                                  device="bench:psg", family="psg", modalities=("eeg",),
                                  channels=CHANNELS, t_utc=self.starts[i], live=True)
                await producer.send(sessions, ev.model_dump_json().encode(),
                                    key=f"psg{i}".encode())
            await producer.flush()
            heap = [(self.starts[i].timestamp() + SPAN_S, i, 0) for i in range(self.n)]
            heapq.heapify(heap)
            end = self.first + duration_s
            while heap:
                due, i, k = heapq.heappop(heap)
                if due > end:
                    break
                wait = due - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                for channel in CHANNELS:
                    await producer.send(samples, self._chunk(i, channel, k),
                                        key=f"psg{i}".encode())
                self.sent += len(CHANNELS)
                heapq.heappush(heap, (due + SPAN_S, i, k + 1))
            await producer.flush()
        finally:
            await producer.stop()


def _rss_mb(pid: int) -> float:
    """Resident set of a process in MB (``VmRSS`` of /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def _psg_live_once(stack: LocalStack, port: int, n: int, duration: float,
                         warmup: float, probes: Probes) -> dict[str, Any]:
    collect_latencies, worker_stats = probes
    settings = stack.settings()
    assert stack.worker.proc is not None
    pid = stack.worker.proc.pid
    rss_before = _rss_mb(pid)
    load = PsgLoad(settings, n)
    stop = asyncio.Event()
    collector = asyncio.create_task(collect_latencies(settings, stop, load.first + warmup))
    await asyncio.sleep(1.0)
    t0 = time.time()
    await load.run(duration)
    rss_open = _rss_mb(pid)  # every session still open (live: they end by silence)
    await asyncio.sleep(3.0)
    stop.set()
    lat = np.asarray(await collector)
    stats = worker_stats(port, duration - warmup)
    expected = n * max(0.0, math.floor((duration - warmup) / 30) - 1)
    return {
        "subjects": n, "messages_per_s": load.sent / (time.time() - t0),
        "epochs_staged": int(lat.size), "epochs_expected_min": int(expected),
        "close_to_event_p50_s": float(np.percentile(lat, 50)) if lat.size else math.nan,
        "close_to_event_p99_s": float(np.percentile(lat, 99)) if lat.size else math.nan,
        "ingest_delay_p99_s": stats["ingest_delay_p99_s"] or math.nan,
        "ingest_delay_max_s": stats["ingest_delay_max_s"] or math.nan,
        "rss_before_mb": rss_before, "rss_open_mb": rss_open,
        "kb_per_subject": (rss_open - rss_before) * 1024 / n,
    }


def bench_psg_live(subjects: list[int], duration: float, warmup: float,
                   weights: Path | None, probes: Probes) -> None:
    """Mode (d): see the module docstring; ``probes`` are bench_stream's latency consumer
    and worker statistics reader."""
    rows = []
    for n in subjects:
        port = free_port()
        env = {"SLEEPSTREAM_WEB_PORT": str(port), "SLEEPSTREAM_GRACE_S": "10",
               "SLEEPSTREAM_LIVE_ENABLED": "false"}
        if weights is not None:
            env["SLEEPSTREAM_WEIGHTS_DIR"] = str(weights)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp, LocalStack(
                Path(tmp), partitions=8, env=env) as stack:
            console.print(f"live PSG load: {n} subjects x 6 channels at 256 Hz for "
                          f"{duration:.0f} s ...")
            rows.append(asyncio.run(_psg_live_once(stack, port, n, duration, warmup, probes)))
            console.print(rows[-1])
    t = Table(title="(d) live PSG subjects (6 EEG channels at 256 Hz, 5-s chunks) on one "
              "worker (2-core machine, broker and load generator on the same cores)")
    for col in ("subjects", "msgs/s", "epochs staged", "close->event p50 / p99 s",
                "ingest delay p99 / max s", "worker KB / subject", "sustained"):
        t.add_column(col)
    for r in rows:
        ok = (r["close_to_event_p99_s"] <= 1.0 and r["ingest_delay_p99_s"] <= 5.0
              and r["epochs_staged"] >= r["epochs_expected_min"])
        t.add_row(str(r["subjects"]), f"{r['messages_per_s']:.0f}",
                  f"{r['epochs_staged']} (>= {r['epochs_expected_min']})",
                  f"{r['close_to_event_p50_s']:.3f} / {r['close_to_event_p99_s']:.3f}",
                  f"{r['ingest_delay_p99_s']:.2f} / {r['ingest_delay_max_s']:.2f}",
                  f"{r['kb_per_subject']:.0f}", "yes" if ok else "no")
    console.print(t)


def replay_nights(n_nights: int, hours: float, data: Path | None) -> list[ReplayNight]:
    """``n_nights`` psg nights of 2 channels at 100 Hz: tiled Pz-Oz clips, or generated."""
    n = int(hours * 3600 * 100)
    clips: list[np.ndarray] = []
    if data is not None and data.is_dir():
        clips = [scipy.io.loadmat(p)["val"][0].astype(np.int16)
                 for p in sorted(data.glob("*-PSG_edfm.mat"))]
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)
    nights = []
    for i in range(n_nights):
        streams = []
        for c, label in enumerate(("EEG Fpz-Cz", "EEG Pz-Oz")):
            if clips:  # SC4001E0's Pz-Oz calibration: uV = (digital - 5) / 10.4198
                raw = np.resize(clips[(i + c) % len(clips)], n)
                spec = RegularSpec(100.0, 1 / 10.4198, -5 / 10.4198)
            else:
                a = np.exp(-2 * np.pi * 2.0 / 100.0)
                uv = scipy.signal.lfilter([1 - a], [1, -a], rng.normal(0, 40.0, n))
                raw = np.round(uv / SCALE).astype(np.int16)
                spec = RegularSpec(100.0, SCALE, 0.0)
            streams.append(RegularStream(label, spec, raw))
        nights.append(ReplayNight(f"eeg{i:02d}", f"eeg{i:02d}-n", "psg", ("eeg",), "UTC",
                                  start, True, n // 3000, {}, None, "bench:psg",
                                  eeg=tuple(streams)))
    return nights


def bench_psg_replay(n_nights: int, hours: float, data: Path | None,
                     weights: Path | None) -> None:
    """Mode (e): see the module docstring."""
    from stream.replay_eval import AFAP_SPANS, evaluate, run_through_stream

    nights = replay_nights(n_nights, hours, data)
    env = {"SLEEPSTREAM_WEB_ENABLED": "false"}
    if weights is not None:
        env["SLEEPSTREAM_WEIGHTS_DIR"] = str(weights)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, LocalStack(Path(tmp),
                                                                         env=env) as stack:
        run = asyncio.run(run_through_stream(nights, stack.settings(), progress=False,
                                             spans=AFAP_SPANS, timeout_s=3600))
    result = evaluate("psg", nights, run, weights_dir=weights)
    eeg_h = sum(n.duration_s for n in nights) / 3600
    t = Table(title=f"(e) {n_nights} nights of 2-channel 100-Hz EEG through broker + worker, "
              "as fast as possible")
    for col in ("nights", "epochs", "night-hours", "wall s (last event)", "x real time",
                "parity", "events complete", "goal >= 1,000x"):
        t.add_column(col)
    t.add_row(str(result.nights), str(result.epochs), f"{eeg_h:.0f}", f"{result.wall_s:.1f}",
              f"{result.x_real_time:,.0f}", "yes" if result.parity_ok else "NO",
              "yes" if result.complete else "NO",
              "met" if result.x_real_time >= 1000 else "not met")
    console.print(t)
