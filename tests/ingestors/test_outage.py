"""Live ingestors through broker outages: nothing read is lost, not even by a killed ingestor.

* A live BLE session (virtual strap) and a live EDF recording (ECG, one data record a
  second) run side by side on the stack of ``sleepstream up`` (embedded broker and the
  real worker); the broker is stopped in the middle for :data:`LONG_OUTAGE_S` (more than
  the worker's 30-s grace period) and restarted. Every sample read is on the topics
  exactly once after the ``(source_id, seq)`` de-duplication, in order (the session
  contract, ``_contract.py``), and the worker's stage events are those of an
  uninterrupted run: for every epoch of both nights exactly one causal and one offline
  event, equal to the batch computation on the same samples (which the stream reproduces
  exactly, ``tests/stream/test_stream_e2e.py``), no dead letter, no conflicting copy.
* ``sleepstream edf-live`` in a subprocess is killed (SIGKILL) while the broker is down
  and started again: it resumes from its spool and nothing is lost either.
* Spools that earlier runs left are sent by the next run; a full spool and a spool in use
  stop an ingestor with a clear error.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib
import pytest

from ingestors.base import (
    SessionInfo,
    SessionSender,
    SpoolFullError,
    SpoolLockedError,
    SpoolOutbox,
    Topics,
    spool_file,
)
from ingestors.ble import BleakLink, BleReport, ingest_ble
from ingestors.live_edf import RPeakDetector, ingest_edf_live
from models.features import compute_features
from stream.collect import OutputCollector
from stream.schemas import SampleChunk, SessionEvent
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker, LocalStack
from stream.staging import FamilyModels
from tests.ingestors._bumble_backend import BumbleBleakClient, Measurement, VirtualStrap
from tests.ingestors._contract import Received, Sent, check_session
from tests.ingestors._live_edf_data import GrowingCopy, signal_header, synth_ecg, write_edf
from tests.ingestors._topics import read_topics

LONG_OUTAGE_S = 65.0
ZONE = "Europe/Amsterdam"
FS = 256


def ecg_recording(folder: Path, seconds: int, start: datetime, seed: int) -> Path:
    ecg, _ = synth_ecg(FS, seconds, seed=seed)
    return write_edf(folder / f"ecg-{seed}.edf", [(signal_header("ECG I", FS, "mV", -5.0, 5.0),
                                                  ecg)], start)


def rr_of(src: Path) -> tuple[np.ndarray, np.ndarray]:
    """The RR intervals the detector finds in the whole finished file (times, values)."""
    with pyedflib.EdfReader(str(src)) as reader:
        beats = RPeakDetector(FS).process(reader.readSignal(0)) / FS
    return beats[1:], beats[1:] - beats[:-1]


# --- (a) a 60-s outage in the middle of a live BLE and a live EDF session -----------------

async def strap_session(settings: StreamSettings, stop: asyncio.Event,
                        sent_ticks: list[int]) -> BleReport:
    """A strap notifying about once a second (one or two RR intervals) until ``stop``."""
    strap = await VirtualStrap().start()
    link = BleakLink(strap.address, backend=BumbleBleakClient, options={"strap": strap},
                     timeout_s=10.0)
    ended = asyncio.Event()
    task = asyncio.create_task(ingest_ble(link, "ble-subject", "ble-outage", settings,
                                          stop=ended, progress=False))
    await asyncio.wait_for(strap.subscribed.wait(), 30)
    rng = np.random.default_rng(4)
    while not stop.is_set():
        ticks = [int(t) for t in rng.integers(800, 1150, int(rng.integers(1, 3)))]
        sent_ticks.extend(ticks)
        await strap.notify(Measurement(60, rr_intervals=[t / 1024 for t in ticks]))
        await asyncio.sleep(sum(ticks) / 1024)
    ended.set()
    return await asyncio.wait_for(task, 60)


def test_a_long_broker_outage_mid_session_loses_no_sample(tmp_path: Path) -> None:
    now = datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None, microsecond=0)
    src = ecg_recording(tmp_path, 120, now, seed=31)  # recorded now: a live session
    followed = tmp_path / "live.edf"
    with LocalStack(tmp_path / "stack", partitions=2) as stack:
        settings = stack.settings()
        times: dict[str, float] = {}
        up_at: list[datetime] = []

        async def scenario():
            stop_strap = asyncio.Event()
            ticks: list[int] = []
            strap = asyncio.create_task(strap_session(settings, stop_strap, ticks))
            writer = GrowingCopy(src, followed, step=1, pause_s=1.0, half=False).start()
            edf = asyncio.create_task(ingest_edf_live(
                followed, "edf-subject", "edf-outage", settings, time_zone=ZONE, poll_s=0.2,
                idle_s=3.0, progress=False))
            await asyncio.sleep(15.0)
            stack.broker.stop()
            times["down"] = time.monotonic()
            await asyncio.sleep(LONG_OUTAGE_S)
            stack.broker.start()
            times["up"] = time.monotonic()
            up_at.append(datetime.now(UTC))
            await asyncio.sleep(15.0)
            stop_strap.set()
            reports = [await strap, await asyncio.wait_for(edf, 120)]
            writer.join()
            return ticks, reports, await read_topics(settings, sessions=2, timeout_s=60)

        ticks, (ble, edf), records = asyncio.run(scenario())
        t, rr = rr_of(src)
        received = [
            check_session(records, Sent("ble-subject", "ble-outage",
                                        {"rr": (None, np.array(ticks, dtype=float) / 1024)})),
            check_session(records, Sent("edf-subject", "edf-outage", {"rr": (t, rr)})),
        ]
        outputs = asyncio.run(worker_outputs(settings, received))

    assert times["up"] - times["down"] >= 60.0
    for report in (ble, edf):  # the outage was seen, and the backlog flowed soon after
        assert report.send.failures >= 1 and report.send.max_backlog >= 8
        since, again = report.send.outages[0]
        assert (again - since).total_seconds() >= 55.0
        assert (again - up_at[0]).total_seconds() <= 10.0  # well within the 30-s grace
    assert edf.live and edf.status.records == 120
    assert all(sum(map(len, r.chunks.values())) >= 10 for r in received)
    # the worker staged both nights as if nothing had happened
    assert outputs.dead == [] and outputs.conflicts == 0 and outputs.duplicates == 0
    for r in received:
        assert_staged_as_batch(outputs, r)
    print(f"outage {times['up'] - times['down']:.1f} s; epochs staged "
          f"{[n_epochs_of(r) for r in received]}; resent chunk copies "
          f"{[r.resent for r in received]}; event copies {outputs.duplicates}")


def n_epochs_of(r: Received) -> int:
    """Epochs of a session: every 30-s epoch that starts before its end (as the worker)."""
    return math.ceil((r.end.t_utc - r.start.t_utc).total_seconds() / 30.0 - 1e-9)


async def worker_outputs(settings: StreamSettings, sessions: list[Received]) -> OutputCollector:
    """The worker's outputs once every session is staged and summarised (or 240 s)."""
    expected = {(r.start.subject_id, r.start.session_id): n_epochs_of(r) for r in sessions}
    collector = OutputCollector(settings, dead_letters=True)
    await collector.start()
    try:
        await collector.wait_complete(expected, 180)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                (s, n, "offline") in collector.summaries for s, n in expected):
            await collector.poll()
        await collector.poll(timeout_s=1.0)  # anything late: a copy, a dead letter
    finally:
        await collector.stop()
    return collector


def assert_staged_as_batch(outputs: OutputCollector, r: Received) -> None:
    """Every epoch staged once per kind, with the batch computation's probabilities."""
    subject, session = r.start.subject_id, r.start.session_id
    n = n_epochs_of(r)
    chunks = [c for by_source in r.chunks.values() for c in by_source]
    t = np.concatenate([c.times_s(r.start.t_utc) for c in chunks])
    v = np.concatenate([c.values_array() for c in chunks])
    start = r.start.t_utc.astimezone(ZoneInfo(r.start.time_zone))
    rows = compute_features("cardio", start, n, rr=(t, v, None))
    causal, offline = FamilyModels("cardio").predict_night(rows)
    for kind, ref in (("causal", causal), ("offline", offline)):
        got = outputs.events.get((subject, session, kind), {})
        assert sorted(got) == list(range(n)), f"{session} {kind}: epochs {sorted(got)} of {n}"
        p = np.array([list(got[k].probabilities.values()) for k in range(n)])
        np.testing.assert_allclose(p, ref, atol=1e-5, err_msg=f"{session} {kind}")
    assert (subject, session, "offline") in outputs.summaries


# --- (b) the ingestor killed while the broker is down, and started again -----------------

def edf_live_command(followed: Path, broker: EmbeddedBroker, spool_dir: Path,
                     env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from stream.cli import main; main()", "edf-live",
         str(followed), "--subject", "edf-subject", "--session", "edf-killed", "--timezone",
         ZONE, "--ecg", "ECG I", "--poll", "0.1", "--idle", "3", "--broker", broker.url,
         "--spool-dir", str(spool_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def spooled_rows(path: Path) -> int:
    """Messages in a spool; 0 while the ingestor is still creating it (no table yet)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return 0
        raise
    finally:
        db.close()


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_a_killed_ingestor_resends_its_spool_and_resumes(
        broker: EmbeddedBroker, tmp_path: Path, spool_dir: Path) -> None:
    src = ecg_recording(tmp_path, 60, datetime(2024, 3, 9, 23, 41, 7), seed=41)  # noqa: DTZ001
    followed = tmp_path / "live.edf"
    writer = GrowingCopy(src, followed, step=1, pause_s=0.25)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPSTREAM_")}
    env |= {"PYTHONPATH": str(root), "SLEEPSTREAM_TOPIC_PREFIX": "killed.",
            "SLEEPSTREAM_SEND_TIMEOUT_S": "2"}
    settings = StreamSettings(broker=broker.url, topic_prefix="killed.")
    spool = spool_file(spool_dir, "edf-subject", "edf-killed")
    first = edf_live_command(followed, broker, spool_dir, env)
    second = None
    try:
        writer.start()
        wait_for(lambda: spool.exists() and followed.stat().st_size > 20_000, 60,
                 "the ingestor spooled")
        time.sleep(2.0)  # some chunks reach the broker
        broker.stop()
        time.sleep(4.0)  # the ingestor reads on, into its spool
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        held = spooled_rows(spool)
        assert held > 0  # what the broker never acknowledged survived the kill
        second = edf_live_command(followed, broker, spool_dir, env)  # resumes, still without broker
        time.sleep(4.0)
        broker.start()
        out, _ = second.communicate(timeout=120)
        writer.join()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        if broker.proc is None or broker.proc.poll() is not None:
            broker.start()
    assert second.returncode == 0, out
    assert "ended: idle" in out and "60 records (60 s)" in out
    assert not spool.exists()  # ended, everything acknowledged: removed
    records = asyncio.run(read_topics(settings))
    t, rr = rr_of(src)
    received = check_session(records, Sent("edf-subject", "edf-killed", {"rr": (t, rr)}))
    assert len(received.chunks["edf-killed-rr"]) >= 10


# --- spools of earlier runs; a full spool; a spool in use ---------------------------------

def leave_spool(folder: Path, session: str, chunks: int, ended: bool,
                settings: StreamSettings, age_s: float = 0.0) -> Path:
    """A spool as a killed ingestor leaves it: start, ``chunks`` chunks, maybe the end,
    written ``age_s`` ago."""
    start = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
    info = SessionInfo("old-subject", session, "strap", "cardio", ("rr",), "UTC", start)
    spool = SpoolOutbox.open(spool_file(folder, "old-subject", session), max_bytes=10**6,
                             subject_id="old-subject", session_id=session)
    sender = SessionSender(info, spool, Topics.of(settings))
    sender.start()
    sender.put([info.chunk("rr", i, np.array([i + 0.5]), np.array([0.9])) for i in range(chunks)])
    if ended:
        sender.end(start + timedelta(seconds=60))
    if age_s:
        spool.append([], {"appended_at": repr(time.time() - age_s)})
    spool.close()
    return spool.path


def test_spools_left_by_earlier_runs_are_sent_and_removed_once_ended(
        broker: EmbeddedBroker, tmp_path: Path, spool_dir: Path) -> None:
    settings = StreamSettings(broker=broker.url, topic_prefix="leftover.")
    ended = leave_spool(spool_dir, "old-night", 3, True, settings)
    open_ = leave_spool(spool_dir, "open-night", 2, False, settings)
    # not ended, but silent for longer than the worker waits: it cannot be resumed any more
    stale = leave_spool(spool_dir, "stale-night", 1, False, settings,
                        age_s=settings.silence_timeout_s + 60)
    src = ecg_recording(tmp_path, 20, datetime(2024, 3, 9, 23, 41, 7), seed=51)  # noqa: DTZ001

    async def scenario():
        report = await ingest_edf_live(src, "edf-subject", "new-night", settings,
                                       time_zone=ZONE, poll_s=0.1, idle_s=0.5, progress=False)
        return report, await read_topics(settings, sessions=2)

    report, records = asyncio.run(scenario())
    assert sum(r.message.session_id == "stale-night" for r in records) == 2  # start, chunk
    old = check_session(records, Sent("old-subject", "old-night",
                                      {"rr": (np.arange(3) + 0.5, np.full(3, 0.9))}))
    assert old.end.final_seq == {"old-night-rr": 2}
    kept = [r.message for r in records if r.message.session_id == "open-night"]
    assert [m.event for m in kept if isinstance(m, SessionEvent)] == ["start"]
    assert [m.seq for m in kept if isinstance(m, SampleChunk)] == [0, 1]
    assert not ended.exists()  # sent and ended: removed
    assert open_.exists() and spooled_rows(open_) == 0  # sent, kept for a resumption
    assert not stale.exists()
    assert report.status.ended == "idle"


def test_a_full_or_busy_spool_stops_the_ingestor_with_a_clear_error(
        tmp_path: Path, spool_dir: Path) -> None:
    src = ecg_recording(tmp_path, 30, datetime(2024, 3, 9, 23, 41, 7), seed=61)  # noqa: DTZ001
    unreachable = StreamSettings(broker="kafka://127.0.0.1:9", spool_max_mb=0.002)

    async def full():
        return await ingest_edf_live(src, "edf-subject", "full-night", unreachable,
                                     time_zone=ZONE, idle_s=0.5, progress=False)

    with pytest.raises(SpoolFullError) as caught:
        asyncio.run(full())
    text = str(caught.value)
    assert "full-night.spool of subject 'edf-subject' (session full-night) is full" in text
    assert "the broker at 127.0.0.1:9 has acknowledged nothing since" in text
    assert "SLEEPSTREAM_SPOOL_MAX_MB (--spool-max-mb)" in text
    spool = spool_file(spool_dir, "edf-subject", "full-night")
    assert spooled_rows(spool) >= 1  # what fitted is kept for the next run

    async def busy():
        held = SpoolOutbox.open(spool, max_bytes=10**6)
        try:
            await ingest_edf_live(src, "edf-subject", "full-night", unreachable,
                                  time_zone=ZONE, progress=False)
        finally:
            held.close()

    with pytest.raises(SpoolLockedError, match=r"in use by another ingestor .* Stop the "
                                               r"other one, or give this one another "
                                               r"session id"):
        asyncio.run(busy())


def test_a_second_signal_stops_waiting_and_leaves_the_backlog_in_the_spool(
        tmp_path: Path, spool_dir: Path) -> None:
    src = ecg_recording(tmp_path, 20, datetime(2024, 3, 9, 23, 41, 7), seed=71)  # noqa: DTZ001
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPSTREAM_")}
    env |= {"PYTHONPATH": str(root), "SLEEPSTREAM_SPOOL_DIR": str(spool_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stream.cli import main; main()", "edf-live", str(src),
         "--subject", "edf-subject", "--session", "unsent", "--timezone", ZONE, "--idle",
         "600", "--broker", "kafka://127.0.0.1:9"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    spool = spool_file(spool_dir, "edf-subject", "unsent")
    try:
        wait_for(lambda: spool.exists() and spooled_rows(spool) > 3, 60, "chunks spooled")
        proc.send_signal(signal.SIGINT)  # ends the session; the broker never answers
        time.sleep(2.0)
        assert proc.poll() is None  # still waiting to send the end and the chunks
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 2, out
    assert "stopped before the broker acknowledged everything; the rest stays in the spool" \
        in out
    held = SpoolOutbox.open(spool, max_bytes=10**6)
    try:  # everything read is there, the session end last
        meta = held.meta()
        assert "ended" in meta and held.rows >= 5
        assert held.after(0, 10**6)[-1].row.barrier
    finally:
        held.close()
