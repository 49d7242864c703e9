"""psg nights through the real stream: stream = batch, epoch by epoch, causal and offline.

A real broker (noida-db), the real worker (``faust -A stream.app worker`` in a subprocess,
with the shipped models) and a real InfluxDB 1.x. Each
night's EEG goes onto the samples topic as compact chunks, one source per channel, time-
interleaved across channels and nights, as fast as possible (as a replay sends it). For
every epoch of every night the stage probabilities of the causal and the offline events
equal the batch computation on the same samples (:func:`~stream.eeg_assembly.eeg_night_rows`
then :meth:`~stream.staging.FamilyModels.predict_night`) within 1e-5:

* nights made from the real Sleep-EDF Pz-Oz clips (100 Hz, EDF digital values with the
  recording's calibration): the 900-s excerpts of tests/data everywhere, the full
  10,000-s clips of ``../shared/data`` when they are there;
* generated EEG whose stages are known (noise with a real night's spectrum per stage) at
  100 and 256 Hz on 1, 2 and 6 channels, as int16 digital values or float32 uV.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from stream.collect import OutputCollector
from stream.eeg_assembly import eeg_night_rows
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker, WorkerProcess, free_port
from stream.staging import FamilyModels
from tests.servers import InfluxDB1
from tests.stream._psg import CLIP_LABELS, EegNight, clip_night, generated_night, send_nights

pytestmark = pytest.mark.timeout(900)
ATOL = 1e-5


class PsgStack:
    """One worker on its own topics and InfluxDB database, with the psg models."""

    def __init__(self, name: str, broker: EmbeddedBroker, influx: InfluxDB1, weights: Path,
                 tmp: Path) -> None:
        self.name, self.influx = name, influx
        self.settings = StreamSettings(broker=broker.url, partitions=4, app_id=name,
                                       topic_prefix=f"{name}.")
        self.port = free_port()
        self.worker = WorkerProcess({
            "SLEEPSTREAM_BROKER": broker.url, "SLEEPSTREAM_APP_ID": name,
            "SLEEPSTREAM_TOPIC_PREFIX": f"{name}.", "SLEEPSTREAM_PARTITIONS": "4",
            "SLEEPSTREAM_DATA_DIR": str(tmp / f"{name}-data"),
            "SLEEPSTREAM_WEB_PORT": str(self.port), "SLEEPSTREAM_INSTANCE_ID": f"{name}-0",
            "SLEEPSTREAM_WEIGHTS_DIR": str(weights), "SLEEPSTREAM_LIVE_ENABLED": "false",
            "SLEEPSTREAM_INFLUX_KIND": "v1", "SLEEPSTREAM_INFLUX_URL": influx.url,
            "SLEEPSTREAM_INFLUX_DATABASE": name, "SLEEPSTREAM_INFLUX_FLUSH_INTERVAL_S": "0.2",
        }, tmp / f"{name}-worker.log")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/sleepstream/stats/",
                                    timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def count(self, query: str) -> dict[str, int]:
        """``SELECT count(...) ... GROUP BY subject`` as subject -> count."""
        series = self.influx.query(query, db=self.name)
        return {s["tags"]["subject"]: s["values"][0][1] for s in series}


async def run_nights(stack: PsgStack, nights: list[EegNight],
                     timeout_s: float) -> tuple[OutputCollector, float]:
    collector = OutputCollector(stack.settings, dead_letters=True)
    await collector.start()
    try:
        t0 = time.monotonic()
        await send_nights(stack.settings, nights)
        expected = {(n.subject_id, n.session_id): n.n_epochs for n in nights}
        assert await collector.wait_complete(expected, timeout_s), "not every epoch staged"
        return collector, time.monotonic() - t0
    finally:
        await collector.stop()


def parity(models: FamilyModels, night: EegNight,
           collector: OutputCollector) -> dict[str, float]:
    """Max |p_stream - p_batch| per kind over every epoch; asserts every epoch is there."""
    rows = eeg_night_rows(night.signals(), night.n_epochs)
    batch = dict(zip(("causal", "offline"), models.predict_night(rows.features, rows.present),
                     strict=True))
    out = {}
    for kind, ref in batch.items():
        events = collector.events[(night.subject_id, night.session_id, kind)]
        assert sorted(events) == list(range(night.n_epochs)), (night.subject_id, kind)
        got = np.array([list(events[k].probabilities.values()) for k in range(night.n_epochs)])
        assert all(events[k].stage_set == 5 for k in events)
        out[kind] = float(np.abs(got - ref).max())
        # the stage is the batch's wherever the batch's two best classes are not tied
        top2 = np.sort(ref, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2 * ATOL
        assert (got.argmax(1) == ref.argmax(1))[clear].all(), (night.subject_id, kind)
    return out


def check_nights(stack: PsgStack, models: FamilyModels, nights: list[EegNight],
                 collector: OutputCollector) -> dict[str, dict[str, float]]:
    diffs = {n.subject_id: parity(models, n, collector) for n in nights}
    assert all(d <= ATOL for v in diffs.values() for d in v.values()), diffs
    assert not collector.dead, [d.reason for d in collector.dead]
    assert collector.conflicts == 0
    for n in nights:
        summary = collector.summaries[(n.subject_id, n.session_id, "offline")]
        assert summary.n_epochs == n.n_epochs and set(summary.minutes) == {
            "W", "N1", "N2", "N3", "REM"}
    return diffs


def test_psg_nights_through_broker_and_worker_equal_the_batch(
        broker: EmbeddedBroker, influxdb_v1: InfluxDB1, psg_weights: Path, test_data: Path,
        tmp_path: Path) -> None:
    clips = np.load(test_data / "sleep-edf" / "pz-oz-first-900s.npz")
    assert tuple(clips["night"]) == CLIP_LABELS
    nights = [clip_night(f"clip-{label}", raw) for label, raw in zip(
        CLIP_LABELS, clips["val"], strict=True)]
    stages = ["W"] * 4 + ["N2"] * 3 + ["N3"] * 6 + ["W"] * 3 + ["N2"] * 4
    for fs, n_channels, dtype in ((100.0, 1, "int16"), (100.0, 2, "int16"),
                                  (256.0, 1, "int16"), (256.0, 2, "float32"),
                                  (256.0, 6, "int16")):
        nights.append(generated_night(f"gen-{fs:g}hz-{n_channels}ch", stages, fs, n_channels,
                                      seed=n_channels, dtype=dtype))
    models = FamilyModels("psg", psg_weights)
    stack = PsgStack("psg", broker, influxdb_v1, psg_weights, tmp_path)
    with stack.worker:
        collector, wall = asyncio.run(run_nights(stack, nights, 300))
        diffs = check_nights(stack, models, nights, collector)
        print(f"\n{len(nights)} psg nights in {wall:.1f} s; max |dp| per night: {diffs}")
        # every epoch a causal and an offline point, its EEG inputs, one summary a night
        n = {night.subject_id: night.n_epochs for night in nights}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            inputs = stack.count('SELECT count("eeg_channels") FROM "sleep_inputs" '
                                 'GROUP BY "subject"')
            if inputs == n:
                break
            time.sleep(0.5)
        assert inputs == n
        stages_written = stack.count('SELECT count("p_N1") FROM "sleep_stage" GROUP BY "subject"')
        assert stages_written == {s: 2 * k for s, k in n.items()}
        summaries = stack.count('SELECT count("minutes_N3") FROM "sleep_summary" '
                                'GROUP BY "subject"')
        assert summaries == dict.fromkeys(n, 1)
        stats = stack.stats()
        assert stats["dead_letters"] == {}
    assert stack.worker.proc is not None and stack.worker.proc.returncode == 0


@pytest.mark.shared_data
def test_full_pz_oz_clips_through_the_stream_equal_the_batch(
        broker: EmbeddedBroker, influxdb_v1: InfluxDB1, psg_weights: Path, shared_data: Path,
        tmp_path: Path) -> None:
    folder = shared_data / "sleep-edf" / "pz-oz-raw-first-10000s"
    nights = []
    for label in CLIP_LABELS:
        raw = scipy.io.loadmat(folder / f"{label}-PSG_edfm.mat")["val"][0]
        nights.append(clip_night(f"full-{label}", raw.astype(np.int16)))
    assert [n.n_epochs for n in nights] == [333] * 9
    models = FamilyModels("psg", psg_weights)
    stack = PsgStack("psgfull", broker, influxdb_v1, psg_weights, tmp_path)
    with stack.worker:
        collector, wall = asyncio.run(run_nights(stack, nights, 600))
        diffs = check_nights(stack, models, nights, collector)
    hours = sum(n.n_epochs for n in nights) * 30 / 3600
    print(f"\n9 full clips ({hours:.1f} h of EEG) in {wall:.1f} s "
          f"({hours * 3600 / wall:,.0f}x real time); max |dp|: "
          f"{max(d for v in diffs.values() for d in v.values()):.2e}")
    assert math.isfinite(wall)
