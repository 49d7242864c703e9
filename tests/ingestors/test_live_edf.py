"""The live EDF ingestor end to end: a growing EDF+ file -> ingestor -> real broker.

A background thread writes a finished pyedflib file into the followed path as a recorder
would (header with record count -1, then a few data records and half of the next one at a
time); the ingestor follows it into the embedded broker (noida-db) and every test reads the
topics back.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib
import pytest
from aiokafka import AIOKafkaConsumer

from ingestors.errors import DataFormatError
from ingestors.live_edf import EdfLiveReport, RPeakDetector, ingest_edf_live
from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker
from tests.ingestors._live_edf_data import GrowingCopy, signal_header, synth_ecg, write_edf
from tests.ingestors._topics import consume

pytestmark = pytest.mark.timeout(120)

START = datetime(2024, 3, 9, 23, 41, 7)  # noqa: DTZ001 - EDF stores naive clock time
ZONE = "Europe/Amsterdam"
DURATION_S = 40
FS_ECG = 256
_prefixes = itertools.count()


def settings_for(broker: EmbeddedBroker) -> StreamSettings:
    """Settings with topics of their own, so the tests do not read each other's messages."""
    return StreamSettings(broker=broker.url, topic_prefix=f"edf{next(_prefixes)}.")


def make_recording(folder: Path, start: datetime) -> tuple[Path, np.ndarray]:
    """A finished EDF+ file (ECG, heart rate, acceleration in mg) and its beat times."""
    rng = np.random.default_rng(11)
    ecg, beats = synth_ecg(FS_ECG, DURATION_S, seed=12)
    hr = 60.0 / np.interp(np.arange(DURATION_S) + 0.5, beats[1:], np.diff(beats))
    acc = [rng.normal(0.0, 300.0, 32 * DURATION_S) + (1000.0 if ax == "Z" else 0.0)
           for ax in "XYZ"]
    signals = [(signal_header("ECG I", FS_ECG, "mV", -5.0, 5.0), ecg),
               (signal_header("Pulse", 1, "bpm", 0.0, 250.0), hr),
               *[(signal_header(f"Acc {ax}", 32, "mg", -8000.0, 8000.0), a)
                 for ax, a in zip("XYZ", acc, strict=True)]]
    return write_edf(folder / "night.edf", signals, start), beats


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A recording made in 2024: followed now, it is caught up with (``live=False``)."""
    return make_recording(tmp_path_factory.mktemp("edf"), START)


def recorded(path: Path) -> dict[str, np.ndarray]:
    """What pyedflib reads from the finished file, by label."""
    with pyedflib.EdfReader(str(path)) as reader:
        return {label: reader.readSignal(i) for i, label in enumerate(reader.getSignalLabels())}


async def session_started(settings: StreamSettings, timeout_s: float = 60.0) -> None:
    """Wait until a session start is on the sessions topic."""
    consumer = AIOKafkaConsumer(settings.topic("sessions"), bootstrap_servers=settings.bootstrap,
                                group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, metadata_max_age_ms=500)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            if any(records for records in batches.values()):
                return
        raise AssertionError("no session start within the time limit")
    finally:
        await consumer.stop()


def by_source(chunks: list[SampleChunk]) -> dict[str, list[SampleChunk]]:
    out: dict[str, list[SampleChunk]] = {}
    for c in chunks:
        out.setdefault(c.source_id, []).append(c)
    return out


def check_session(events: list[SessionEvent], chunks: list[SampleChunk], family: str,
                  modalities: tuple[str, ...], report: EdfLiveReport, clock: datetime = START,
                  live: bool = False) -> datetime:
    """Start first, end last with the final seqs, every source numbered 0.. in order."""
    assert [e.event for e in events] == ["start", "end"]
    start, end = events
    assert (start.subject_id, start.session_id) == ("subject-1", "edf-night-1")
    assert (start.family, start.modalities, start.live) == (family, modalities, live)
    assert start.time_zone == ZONE and not start.start_is_nominal and report.live == live
    assert start.t_utc == clock.replace(tzinfo=ZoneInfo(ZONE)) == report.start
    assert end.t_utc == start.t_utc + timedelta(seconds=DURATION_S)
    sources = by_source(chunks)
    assert set(sources) == {f"edf-night-1-{m}" for m in modalities}
    for mine in sources.values():
        assert [c.seq for c in mine] == list(range(len(mine)))
        assert all(c.t0_utc == start.t_utc and c.offsets_s is not None for c in mine)
        assert len(mine) > 2  # sent as the file grew, not at the end
    assert end.final_seq == {s: len(c) - 1 for s, c in sources.items()} == report.final_seq
    assert report.status.chunks == len(chunks)
    return start.t_utc


def test_heart_rate_and_acceleration_follow_the_growing_file(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = settings_for(broker)
    now = datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None, microsecond=0)
    src, _ = make_recording(tmp_path, now)  # recorded now: a live session
    followed = tmp_path / "live.edf"

    async def scenario():
        writer = GrowingCopy(src, followed).start()
        report = await ingest_edf_live(
            followed, "subject-1", "edf-night-1", settings, time_zone=ZONE, hr="Pulse",
            acc=["Acc X", "Acc Y", "Acc Z"], poll_s=0.05, idle_s=1.0, progress=False)
        writer.join()
        return report, await consume(settings)

    report, (events, chunks) = asyncio.run(scenario())
    start = check_session(events, chunks, "wearable", ("heart_rate", "acceleration"), report,
                          now, live=True)
    assert report.status.ended == "idle" and report.status.records == DURATION_S
    file = recorded(src)
    sources = by_source(chunks)
    hr = sources["edf-night-1-heart_rate"]
    assert all(c.unit == "bpm" for c in hr)
    assert np.array_equal(np.concatenate([c.values_array() for c in hr]), file["Pulse"])
    assert np.array_equal(np.concatenate([c.times_s(start) for c in hr]),
                          np.arange(DURATION_S, dtype=float))
    acc = sources["edf-night-1-acceleration"]
    assert all(c.unit == "g" for c in acc)
    xyz = np.column_stack([file[f"Acc {ax}"] * 1e-3 for ax in "XYZ"])  # mg -> g
    assert np.array_equal(np.concatenate([c.values_array() for c in acc]), xyz)
    assert np.array_equal(np.concatenate([c.times_s(start) for c in acc]),
                          np.arange(32 * DURATION_S) / 32.0)
    # cut on the 5-s grid of the replay
    for c in chunks:
        t = c.times_s(start)
        assert np.floor(t[0] / 5.0) == np.floor(t[-1] / 5.0)
    assert report.status.samples == DURATION_S * 33


def test_ecg_streams_rr_intervals_of_the_known_beats(
        broker: EmbeddedBroker, recording: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    settings = settings_for(broker)
    src, beats = recording
    followed = tmp_path / "live.edf"

    async def scenario():
        writer = GrowingCopy(src, followed).start()
        stop = asyncio.Event()
        task = asyncio.create_task(ingest_edf_live(
            followed, "subject-1", "edf-night-1", settings, time_zone=ZONE, stop=stop,
            poll_s=0.05, idle_s=60.0, progress=False))
        while not writer.done.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()  # the user ends the session
        report = await asyncio.wait_for(task, 30)
        return report, await consume(settings)

    report, (events, chunks) = asyncio.run(scenario())
    start = check_session(events, chunks, "cardio", ("rr",), report)
    assert report.status.ended == "stopped" and report.status.records == DURATION_S
    assert all(c.unit == "s" and c.beat_types is None for c in chunks)
    t = np.concatenate([c.times_s(start) for c in chunks])
    rr = np.concatenate([c.values_array() for c in chunks])
    # every beat after the detector's 2-s learning period, on time (the first found beat
    # ends no interval)
    expected = beats[beats > 2.0 + 0.075]
    assert t.size == expected.size - 1 == report.status.beats - 1
    assert np.max(np.abs(t - expected[1:])) <= 0.010
    assert np.max(np.abs(rr - np.diff(expected))) <= 0.020
    assert np.allclose(rr, np.diff(np.concatenate([[t[0] - rr[0]], t])), atol=1e-9)
    # the same beats as the detector finds in the whole finished file
    whole = RPeakDetector(FS_ECG).process(recorded(src)["ECG I"]) / FS_ECG
    assert np.array_equal(t, whole[1:])


def test_a_shrinking_file_ends_the_session_with_an_error(
        broker: EmbeddedBroker, recording: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    settings = settings_for(broker)
    src, _ = recording
    followed = tmp_path / "live.edf"
    data = src.read_bytes()

    async def scenario():
        followed.write_bytes(data)
        task = asyncio.create_task(ingest_edf_live(
            followed, "subject-1", "edf-night-1", settings, time_zone=ZONE, hr="Pulse",
            poll_s=0.05, idle_s=60.0, progress=False))
        await asyncio.sleep(1.0)
        followed.write_bytes(data[:len(data) // 2])  # another program rewrites the file
        with pytest.raises(DataFormatError, match=r"live\.edf, field 'number of data "
                           r"records': number of data records went backwards"):
            await asyncio.wait_for(task, 30)
        return await consume(settings)

    events, chunks = asyncio.run(scenario())
    assert [e.event for e in events] == ["start", "end"]
    assert events[1].final_seq == {"edf-night-1-heart_rate": len(chunks) - 1}
    assert np.array_equal(np.concatenate([c.values_array() for c in chunks]),
                          recorded(src)["Pulse"])


def test_bad_options_fail_before_anything_is_sent(
        recording: tuple[Path, np.ndarray]) -> None:
    src, _ = recording
    settings = StreamSettings(broker="kafka://127.0.0.1:9")  # never reached

    def run(**options):
        base = {"time_zone": ZONE, "progress": False}
        return asyncio.run(ingest_edf_live(src, "subject-1", "edf-night-1", settings,
                                           **(base | options)))

    with pytest.raises(ValueError, match="no channel 'Heart'"):
        run(hr="Heart")
    with pytest.raises(ValueError, match="`time_zone` must be an IANA time zone"):
        run(time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match="`idle_s` must be a number of seconds > 0"):
        run(idle_s=0)
    with pytest.raises(ValueError, match="session_id"):
        asyncio.run(ingest_edf_live(src, "subject-1", "bad id", settings, time_zone=ZONE,
                                    progress=False))


def test_the_edf_live_command_streams_a_file_and_checks_its_options(
        broker: EmbeddedBroker, recording: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stream.cli import app

    src, _ = recording
    runner = CliRunner()
    shown = runner.invoke(app, ["edf-live", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for option in ("--subject", "--session", "--timezone", "--hr", "--ecg", "--acc", "--poll",
                   "--idle", "--broker", "--spool-dir", "--spool-max-mb"):
        assert option in shown.output
    full = runner.invoke(app, ["edf-live", str(src), "--subject", "subject-1", "--timezone",
                               ZONE, "--spool-max-mb", "0"], terminal_width=400)
    assert full.exit_code == 2 and "spool_max_mb" in full.output
    bad = runner.invoke(app, ["edf-live", str(src), "--subject", "subject-1", "--timezone",
                              ZONE, "--acc", "Acc X,Acc Y,Pulse", "--broker",
                              "kafka://127.0.0.1:9"], terminal_width=400)
    assert bad.exit_code == 2
    assert "channel 'Pulse' has a physical dimension that is not acceleration" in bad.output
    settings = StreamSettings(broker=broker.url, topic_prefix="edfcli.")
    done = runner.invoke(app, ["edf-live", str(src), "--subject", "subject-1", "--session",
                               "edf-night-1", "--timezone", ZONE, "--hr", "Pulse", "--poll",
                               "0.05", "--idle", "0.3", "--broker", broker.url],
                         env={"SLEEPSTREAM_TOPIC_PREFIX": "edfcli."}, terminal_width=400)
    assert done.exit_code == 0, done.output
    assert "session edf-night-1 (wearable: heart_rate): 40 records (40 s)" in done.output
    assert "ended: idle" in done.output
    events, chunks = asyncio.run(consume(settings))
    assert [e.event for e in events] == ["start", "end"]
    assert np.array_equal(np.concatenate([c.values_array() for c in chunks]),
                          recorded(src)["Pulse"])


def test_sigint_ends_the_command_with_a_session_end(
        broker: EmbeddedBroker, recording: tuple[Path, np.ndarray], tmp_path: Path,
        spool_dir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    src, _ = recording
    followed = tmp_path / "live.edf"
    writer = GrowingCopy(src, followed, step=1, pause_s=0.05)  # header only so far
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPSTREAM_")}
    env |= {"PYTHONPATH": str(root), "SLEEPSTREAM_TOPIC_PREFIX": "edfsig.",
            "SLEEPSTREAM_SPOOL_DIR": str(spool_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stream.cli import main; main()", "edf-live",
         str(followed), "--subject", "subject-1", "--session", "edf-night-1", "--timezone",
         ZONE, "--hr", "Pulse", "--poll", "0.05", "--idle", "600", "--broker", broker.url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    settings = StreamSettings(broker=broker.url, topic_prefix="edfsig.")
    try:
        writer.start()
        writer.join()
        asyncio.run(session_started(settings))  # so the signal handlers are in place
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "ended: stopped" in out and "40 records (40 s)" in out
    events, chunks = asyncio.run(consume(settings))
    assert [e.event for e in events] == ["start", "end"]
    assert events[1].final_seq == {"edf-night-1-heart_rate": len(chunks) - 1}
    assert np.array_equal(np.concatenate([c.values_array() for c in chunks]),
                          recorded(src)["Pulse"])
