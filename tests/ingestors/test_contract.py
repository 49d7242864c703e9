"""The contract every ingestor passes, broker outage included (MNE's ``_test_raw_reader``).

Each harness runs one ingestor against the embedded broker and stops the broker in the
middle of the session for :data:`OUTAGE_S` seconds while the ingestor goes on reading; the
topics are then read back and checked by :func:`tests.ingestors._contract.check_session`:
start first, consecutive ``seq`` per source, the end with each source's final ``seq``, and
every sample exactly as the ingestor was given it, nothing lost (for PSG: every EEG
channel's recorded samples, one source per channel). The long outages (60 s, a killed
ingestor) are in ``test_outage.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from ingestors.base import RegularSpec
from ingestors.ble import BleakLink, ingest_ble
from ingestors.live_edf import EdfLiveReport, ingest_edf_live
from ingestors.replay import plan_night, psg_nights, replay, sleep_accel_nights
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker
from tests.ingestors._bumble_backend import BumbleBleakClient, Measurement, VirtualStrap
from tests.ingestors._contract import Sent, check_session
from tests.ingestors._live_edf_data import GrowingCopy, signal_header, synth_ecg, write_edf
from tests.ingestors._psg_data import (
    Channel,
    digitise,
    night_stages,
    read_back,
    sleep_edf_hypnogram,
    stage_eeg,
    write_psg,
)
from tests.ingestors._topics import read_topics

pytestmark = pytest.mark.timeout(180)

OUTAGE_S = 10.0
Outage = Callable[[], Awaitable[None]]
_prefixes = itertools.count()


async def replay_harness(settings: StreamSettings, outage: Outage, _tmp: Path) -> Sent:
    """The bundled night replayed in about 20 s; the broker goes away after 5 s."""
    (night,) = sleep_accel_nights(sleep_accel_sample(), [SAMPLE_NIGHT])
    task = asyncio.create_task(replay([night], settings, speed=night.duration_s / 20.0,
                                      progress=False))
    await asyncio.sleep(5.0)
    await outage()
    report = await task
    assert report.nights == 1 and report.send.failures >= 1
    plan = plan_night(night, anchor="original")
    return Sent(night.subject_id, night.session_id,
                {m: (s.t_s, s.values) for m, s in plan.streams.items()})


async def ble_harness(settings: StreamSettings, outage: Outage, _tmp: Path) -> Sent:
    """A strap sending one RR interval every 0.1 s for 20 s; the broker goes away at 5 s."""
    strap = await VirtualStrap().start()
    stop = asyncio.Event()
    link = BleakLink(strap.address, backend=BumbleBleakClient, options={"strap": strap},
                     timeout_s=10.0)
    task = asyncio.create_task(ingest_ble(link, "ble-subject", "ble-contract", settings,
                                          stop=stop, span_s=1.0, progress=False))
    await asyncio.wait_for(strap.subscribed.wait(), 30)
    ticks = [int(t) for t in np.random.default_rng(3).integers(700, 1200, 200)]
    down = None
    for i, tick in enumerate(ticks):
        if i == 50:
            down = asyncio.create_task(outage())
        await strap.notify(Measurement(int(61440 / tick), rr_intervals=[tick / 1024]))
        await asyncio.sleep(0.1)
    assert down is not None
    await down
    stop.set()
    report = await asyncio.wait_for(task, 60)
    assert report.status.notifications == len(ticks) and report.send.failures >= 1
    return Sent("ble-subject", "ble-contract",
                {"rr": (None, np.array(ticks, dtype=float) / 1024)})


async def follow_through_outage(settings: StreamSettings, outage: Outage, src: Path,
                                subject: str, session: str) -> EdfLiveReport:
    """``edf-live`` on ``src`` (60 one-second records) grown into a followed copy.

    The broker goes away 5 s in; the ingestor's report is checked to have read every record
    and to have met a failed send.
    """
    followed = src.with_name(f"live-{src.name}")
    writer = GrowingCopy(src, followed, step=1, pause_s=0.3).start()
    task = asyncio.create_task(ingest_edf_live(
        followed, subject, session, settings, time_zone="Europe/Amsterdam",
        poll_s=0.1, idle_s=2.0, progress=False))
    await asyncio.sleep(5.0)
    await outage()
    report = await asyncio.wait_for(task, 60)
    writer.join()
    assert report.status.records == 60 and report.send.failures >= 1
    return report


async def edf_harness(settings: StreamSettings, outage: Outage, tmp: Path) -> Sent:
    """A 60-s recording (heart rate, acceleration) growing for about 20 s; the broker goes
    away after 5 s."""
    rng = np.random.default_rng(8)
    hr = 55 + 10 * rng.random(60)
    acc = [rng.normal(0.0, 0.1, 32 * 60) + (1.0 if ax == "Z" else 0.0) for ax in "XYZ"]
    src = write_edf(tmp / "watch.edf", [
        (signal_header("HR", 1, "bpm", 0.0, 250.0), hr),
        *[(signal_header(f"Acc {ax}", 32, "g", -8.0, 8.0), a)
          for ax, a in zip("XYZ", acc, strict=True)]], datetime(2024, 3, 9, 23, 41, 7))  # noqa: DTZ001
    await follow_through_outage(settings, outage, src, "edf-subject", "edf-contract")
    with pyedflib.EdfReader(str(src)) as reader:
        read = {label: reader.readSignal(i) for i, label in enumerate(reader.getSignalLabels())}
    return Sent("edf-subject", "edf-contract", {
        "heart_rate": (np.arange(60.0), read["HR"]),
        "acceleration": (np.arange(32 * 60) / 32.0,
                         np.column_stack([read[f"Acc {ax}"] for ax in "XYZ"]))})


def expected_spec(ch: Channel) -> RegularSpec:
    """A uV channel's rate and calibration from its header, by edflib's formula."""
    return RegularSpec(ch.fs_hz, ch.gain, ch.gain * ch.offset)


async def psg_replay_harness(settings: StreamSettings, outage: Outage, tmp: Path) -> Sent:
    """A generated PSG night (EEG at 256 and 100 Hz, EOG) replayed in about 20 s; the
    broker goes away after 5 s."""
    stages = night_stages(3, 10, 3)
    start = datetime(2024, 3, 9, 22, 0, 0)  # noqa: DTZ001
    eeg = [digitise(stage_eeg(stages, 256.0, seed=1), "EEG Fpz-Cz", 256.0),
           digitise(stage_eeg(stages, 256.0, seed=2), "C3-M2", 256.0),
           digitise(stage_eeg(stages, 100.0, seed=3), "EOG(L)", 100.0)]
    write_psg(tmp / "SC4071E0-PSG.edf", eeg, start)
    sleep_edf_hypnogram(tmp / "SC4071EC-Hypnogram.edf", stages, start)
    (night,) = psg_nights(tmp, crop_min=None)
    task = asyncio.create_task(replay([night], settings, speed=night.duration_s / 20.0,
                                      progress=False))
    await asyncio.sleep(5.0)
    await outage()
    report = await task
    assert report.nights == 1 and report.send.failures >= 1
    written = read_back(tmp / "SC4071E0-PSG.edf")
    return Sent(night.subject_id, night.session_id, {}, {
        "Fpz-Cz": (written["EEG Fpz-Cz"].digital, 0, expected_spec(written["EEG Fpz-Cz"])),
        "C3-A2": (written["C3-M2"].digital, 0, expected_spec(written["C3-M2"]))})


async def psg_edf_harness(settings: StreamSettings, outage: Outage, tmp: Path) -> Sent:
    """A 60-s PSG recording (2 EEG at 256 Hz, 1 at 200 Hz, EOG, EMG, ECG) growing for about
    20 s; the broker goes away after 5 s."""
    stages = night_stages(0, 2, 0)
    channels = [digitise(stage_eeg(stages, 256.0, seed=4), "EEG F4-M1", 256.0),
                digitise(stage_eeg(stages, 256.0, seed=5), "EEG C4-M1", 256.0),
                digitise(stage_eeg(stages, 200.0, seed=6), "O2-M1", 200.0),
                digitise(stage_eeg(stages, 100.0, seed=7), "E1-M2", 100.0),
                digitise(stage_eeg(stages, 200.0, seed=8), "Chin EMG", 200.0),
                digitise(synth_ecg(256.0, 60.0, seed=9)[0], "ECG", 256.0, unit="mV", span=5.0)]
    src = write_psg(tmp / "psg.edf", channels, datetime(2024, 3, 9, 23, 41, 7))  # noqa: DTZ001
    report = await follow_through_outage(settings, outage, src, "psg-subject", "psg-contract")
    assert report.family == "psg" and len(report.unsent) == 3  # EOG, EMG, ECG
    written = read_back(src)
    return Sent("psg-subject", "psg-contract", {}, {
        name: (written[label].digital, 0, expected_spec(written[label]))
        for name, label in (("EEG F4-M1", "EEG F4-M1"), ("C4-A1", "EEG C4-M1"),
                            ("O2-M1", "O2-M1"))})


HARNESSES = {"replay": replay_harness, "ble": ble_harness, "live-edf": edf_harness,
             "replay-psg": psg_replay_harness, "live-edf-psg": psg_edf_harness}


@pytest.mark.parametrize("kind", HARNESSES)
def test_every_ingestor_keeps_the_session_contract_through_a_broker_outage(
        kind: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    # a short send timeout: the producer stuck in the outage is replaced within it
    settings = StreamSettings(broker=broker.url, topic_prefix=f"contract{next(_prefixes)}.",
                              send_timeout_s=3.0)
    downs: list[float] = []

    async def outage() -> None:
        broker.stop()
        downs.append(time.monotonic())
        await asyncio.sleep(OUTAGE_S)
        broker.start()  # the same port and data folder
        downs.append(time.monotonic())

    async def scenario():
        sent = await HARNESSES[kind](settings, outage, tmp_path)
        return sent, await read_topics(settings)

    try:
        sent, records = asyncio.run(scenario())
    finally:
        if broker.proc is None or broker.proc.poll() is not None:
            broker.start()  # the module's other tests need it
    assert len(downs) == 2 and downs[1] - downs[0] >= OUTAGE_S
    received = check_session(records, sent)
    assert sum(len(c) for c in received.chunks.values()) > 10


def test_the_contract_check_catches_gaps_late_chunks_and_changed_copies() -> None:
    from datetime import UTC, timedelta

    from ingestors.base import SessionInfo
    from tests.ingestors._topics import Record

    start = datetime(2024, 1, 1, 22, 0, tzinfo=UTC)
    info = SessionInfo("s1", "n1", "test", "wearable", ("heart_rate",), "UTC", start, False)
    chunks = [info.chunk("heart_rate", i, np.array([5.0 * i]), np.array([60.0 + i]))
              for i in range(4)]
    end = info.event("end", start + timedelta(seconds=30), {"n1-heart_rate": 3})
    sent = Sent("s1", "n1", {"heart_rate": (np.arange(4) * 5.0, 60.0 + np.arange(4))})

    def records(order: list[int], last: dict[str, int] | None = None) -> list[Record]:
        out = [Record("s", 0, 0, 1, info.event("start", start).model_dump_json().encode(),
                      info.event("start", start))]
        for offset, i in enumerate(order):
            c = chunks[i]
            out.append(Record("c", 0, offset, 2 + offset, c.model_dump_json().encode(), c))
        e = end if last is None else info.event("end", end.t_utc, last)
        return [*out, Record("s", 0, 1, 99, e.model_dump_json().encode(), e)]

    assert check_session(records([0, 1, 2, 1, 2, 3]), sent).resent == 2
    with pytest.raises(AssertionError, match="a gap, or late"):
        check_session(records([0, 2, 1, 3]), sent)  # 1 late, after 2
    with pytest.raises(AssertionError, match="a gap, or late"):
        check_session(records([0, 1, 3]), sent)  # 2 lost
    with pytest.raises(AssertionError):
        check_session(records([0, 1, 2, 3], {"n1-heart_rate": 2}), sent)
    changed = records([0, 1, 2, 3])
    copy = chunks[3].model_copy(update={"values": (1.0,)})
    changed.insert(4, Record("c", 0, 9, 50, copy.model_dump_json().encode(), copy))
    with pytest.raises(AssertionError, match="differs"):
        check_session(changed, sent)
