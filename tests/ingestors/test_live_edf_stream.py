"""Growing EDF files staged by the real worker: EDF -> ingestor -> broker -> Faust -> stages.

Two 3-minute recordings are grown record by record into followed files at once: one with an
ECG channel (a cardio session from the detected RR intervals) and one with heart rate and
3-axis acceleration (a wearable session). Both were recorded in the past, so the sessions
are not ``live`` and their epochs close on the samples' own times; the worker must stage
every epoch with the family's causal and offline models and send each night's summary.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ingestors.live_edf import ingest_edf_live
from stream.collect import OutputCollector
from stream.stack import LocalStack
from tests.ingestors._live_edf_data import GrowingCopy, signal_header, synth_ecg, write_edf

pytestmark = pytest.mark.timeout(300)

START = datetime(2024, 3, 9, 23, 41, 7)  # noqa: DTZ001 - EDF stores naive clock time
DURATION_S = 180
N_EPOCHS = DURATION_S // 30


def recordings(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(21)
    ecg, _ = synth_ecg(256, DURATION_S, seed=22)
    cardio = write_edf(folder / "psg.edf", [(signal_header("EKG", 256, "uV", -5000, 5000),
                                             ecg * 1000.0)], START)
    hr = 58 + 4 * np.sin(np.arange(DURATION_S) / 20.0)
    acc = [rng.normal(0.0, 0.05, 32 * DURATION_S) + (1.0 if ax == "Z" else 0.0)
           for ax in "XYZ"]
    wearable = write_edf(folder / "watch.edf", [
        (signal_header("Heart Rate", 1, "bpm", 0.0, 250.0), hr),
        *[(signal_header(f"ACC_{ax}", 32, "g", -8.0, 8.0), a)
          for ax, a in zip("XYZ", acc, strict=True)]], START)
    return cardio, wearable


def test_growing_edf_files_are_staged_by_the_worker(tmp_path: Path) -> None:
    cardio, wearable = recordings(tmp_path)
    with LocalStack(tmp_path / "stack", partitions=2) as stack:
        settings = stack.settings()

        async def scenario():
            collector = OutputCollector(settings)
            await collector.start()
            runs = []
            for subject, src in (("edf-cardio", cardio), ("edf-wear", wearable)):
                followed = tmp_path / f"live-{src.name}"
                writer = GrowingCopy(src, followed, step=10, pause_s=0.1).start()
                runs.append((writer, asyncio.create_task(ingest_edf_live(
                    followed, subject, f"{subject}-night", settings,
                    time_zone="Europe/Amsterdam", poll_s=0.1, idle_s=1.5,
                    progress=False))))
            reports = [await asyncio.wait_for(task, 60) for _, task in runs]
            for writer, _ in runs:
                writer.join()
            expected = {(r.subject_id, r.session_id): N_EPOCHS for r in reports}
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not collector.complete(expected):
                await collector.poll()
            await collector.stop()
            return reports, collector

        reports, collector = asyncio.run(scenario())

    assert [(r.family, r.modalities, r.live) for r in reports] == [
        ("cardio", ("rr",), False), ("wearable", ("heart_rate", "acceleration"), False)]
    assert reports[0].status.beats > 150
    for report in reports:
        key = (report.subject_id, report.session_id)
        causal = collector.events[(*key, "causal")]
        offline = collector.events[(*key, "offline")]
        summary = collector.summaries[(*key, "offline")]
        assert sorted(causal) == sorted(offline) == list(range(N_EPOCHS))
        assert summary.n_epochs == N_EPOCHS
        for ev in causal.values():
            assert ev.model_name == f"{report.family}-causal"
            assert abs(sum(ev.probabilities.values()) - 1.0) < 1e-4
        assert all(ev.model_name == f"{report.family}-offline" for ev in offline.values())
    assert collector.conflicts == 0 and collector.undecodable == 0
