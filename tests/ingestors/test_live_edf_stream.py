"""Growing EDF files staged by the real worker: EDF -> ingestor -> broker -> Faust -> stages.

Two 3-minute recordings are grown record by record into followed files at once: one with an
ECG channel (a cardio session from the detected RR intervals) and one with heart rate and
3-axis acceleration (a wearable session). Both were recorded in the past, so the sessions
are not ``live`` and their epochs close on the samples' own times; the worker must stage
every epoch with the family's causal and offline models and send each night's summary.
A third, a 20-minute PSG recording of generated EEG whose stages are known, is staged by the
shipped ``psg`` models epoch by epoch while it grows.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ingestors.live_edf import ingest_edf_live
from models.stages import Stage
from stream.collect import OutputCollector
from stream.stack import LocalStack
from tests.ingestors._live_edf_data import GrowingCopy, signal_header, synth_ecg, write_edf
from tests.ingestors._psg_data import digitise, night_stages, stage_eeg, write_psg

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


def test_a_growing_psg_file_is_staged_epoch_by_epoch_by_the_psg_models(tmp_path: Path) -> None:
    """edf-live on a PSG file (Fpz-Cz and Pz-Oz at 256 Hz) grown one epoch at a time."""
    stages = night_stages(8, 24, 8)
    src = write_psg(tmp_path / "psg.edf", [
        digitise(stage_eeg(stages, 256.0, seed=k), label, 256.0)
        for k, label in enumerate(("EEG Fpz-Cz", "EEG Pz-Oz"))], START)
    with LocalStack(tmp_path / "stack", partitions=2) as stack:
        settings = stack.settings()

        async def scenario():
            collector = OutputCollector(settings)
            await collector.start()
            writer = GrowingCopy(src, tmp_path / "live.edf", step=30, pause_s=0.5).start()
            task = asyncio.create_task(ingest_edf_live(
                tmp_path / "live.edf", "edf-psg", "edf-psg-night", settings,
                time_zone="Europe/Amsterdam", poll_s=0.1, idle_s=1.5, progress=False))
            while not writer.done.is_set():  # events while the file still grows
                await collector.poll(0.1)
            during = len(collector.events.get(("edf-psg", "edf-psg-night", "causal"), {}))
            report = await asyncio.wait_for(task, 60)
            deadline = time.monotonic() + 150
            expected = {("edf-psg", "edf-psg-night"): stages.size}
            while time.monotonic() < deadline and not collector.complete(expected):
                await collector.poll()
            await collector.stop()
            return report, collector, during

        report, collector, during = asyncio.run(scenario())

    assert (report.family, report.channels) == ("psg", ("Fpz-Cz", "Pz-Oz"))
    assert during > 0, "no causal stage arrived while the file was growing"
    key = ("edf-psg", "edf-psg-night")
    for kind in ("causal", "offline"):
        events = collector.events[(*key, kind)]
        assert sorted(events) == list(range(stages.size))
        assert {ev.model_name for ev in events.values()} == {f"psg-{kind}"}
        assert all(set(ev.probabilities) == {"W", "N1", "N2", "N3", "REM"}
                   for ev in events.values())
        got = np.array([events[k].stage for k in range(stages.size)])
        truth = np.array([Stage(s).name for s in stages])
        assert np.mean(got == truth) >= 0.6, (kind, list(zip(truth, got, strict=True)))
        for name, floor in (("W", 0.5), ("N3", 0.8)):
            assert np.mean(got[truth == name] == name) >= floor, (kind, name)
    assert collector.summaries[(*key, "offline")].n_epochs == stages.size
    assert collector.conflicts == 0 and collector.undecodable == 0
