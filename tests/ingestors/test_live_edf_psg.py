"""``sleepstream edf-live`` on a growing PSG file: a psg session of its EEG channels.

Files are written here with pyedflib (generated EEG of known stages, EOG, EMG, ECG) and
grown record by record into the followed path; the ingestor follows them into the embedded
broker and the tests read the topics back: the recorded samples of every EEG channel, the
same chunks however the file was polled, and a resumed session after a killed ingestor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ingestors.base import RegularSpec
from ingestors.errors import DataFormatError
from ingestors.live_edf import EdfFollower, ingest_edf_live
from ingestors.live_edf.channels import choose_channels
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker
from tests.ingestors._contract import Sent, check_session
from tests.ingestors._edf_files import RawSignal, write_raw
from tests.ingestors._live_edf_data import GrowingCopy, synth_ecg
from tests.ingestors._psg_data import digitise, night_stages, read_back, stage_eeg, write_psg
from tests.ingestors._topics import read_topics

pytestmark = pytest.mark.timeout(180)

START = datetime(2024, 3, 9, 23, 41, 7)  # noqa: DTZ001 - EDF stores naive clock time
ZONE = "Europe/Amsterdam"
_prefixes = itertools.count()


def settings_for(broker: EmbeddedBroker) -> StreamSettings:
    return StreamSettings(broker=broker.url, topic_prefix=f"psgedf{next(_prefixes)}.")


@pytest.fixture(scope="module")
def psg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 s: EEG at 256 Hz (2 channels) and 200 Hz, EOG, chin EMG, ECG, pulse, an EEG at
    50 Hz."""
    stages = night_stages(1, 2, 0)
    folder = tmp_path_factory.mktemp("psg")
    return write_psg(folder / "psg.edf", [
        digitise(stage_eeg(stages, 256.0, seed=1), "EEG Fpz-Cz", 256.0),
        digitise(stage_eeg(stages, 256.0, seed=2), "C3-M2", 256.0),
        digitise(stage_eeg(stages, 200.0, seed=3), "EEG O2-M1", 200.0),
        digitise(stage_eeg(stages, 100.0, seed=4), "EOG horizontal", 100.0),
        digitise(stage_eeg(stages, 200.0, seed=5), "Chin EMG", 200.0),
        digitise(synth_ecg(256.0, 90.0, seed=6)[0], "ECG", 256.0, unit="mV", span=5.0),
        digitise(np.full(90, 60.0), "Pulse", 1.0, unit="bpm", span=250.0),
        digitise(stage_eeg(stages, 50.0, seed=7), "EEG Cz-Oz", 50.0)], START)


def sent(src: Path, session: str, names: dict[str, str]) -> Sent:
    """What a psg session of ``src`` must carry: the recorded samples of each channel."""
    written = read_back(src)
    return Sent("subject-1", session, {}, {
        name: (written[label].digital, 0,
               RegularSpec(written[label].fs_hz, written[label].gain,
                           written[label].gain * written[label].offset))
        for name, label in names.items()})


ALL_EEG = {"Fpz-Cz": "EEG Fpz-Cz", "C3-A2": "C3-M2", "EEG O2-M1": "EEG O2-M1"}


def follow(settings: StreamSettings, src: Path, followed: Path, session: str,
           step: int, **options: object):
    """Grow ``src`` into ``followed`` ``step`` records at a time and follow it to the end."""

    async def scenario():
        writer = GrowingCopy(src, followed, step=step, pause_s=0.05).start()
        report = await ingest_edf_live(followed, "subject-1", session, settings,
                                       time_zone=ZONE, poll_s=0.05, idle_s=1.0,
                                       progress=False, **options)  # type: ignore[arg-type]
        writer.join()
        return report, await read_topics(settings)

    return asyncio.run(scenario())


def test_a_growing_psg_file_sends_every_eeg_channel_as_recorded_in_the_same_chunks(
        broker: EmbeddedBroker, psg_file: Path, tmp_path: Path) -> None:
    runs = []
    for step in (1, 7):  # another polling, the same chunks
        settings = settings_for(broker)
        report, records = follow(settings, psg_file, tmp_path / f"live-{step}.edf",
                                 "psg-night-1", step)
        received = check_session(records, sent(psg_file, "psg-night-1", ALL_EEG))
        runs.append({(c.source_id, c.seq): c.model_dump_json() for chunks in
                     received.chunks.values() for c in chunks})
        assert report.family == "psg" and report.channels == tuple(ALL_EEG)
        assert received.start.family == "psg" and received.start.modalities == ("eeg",)
        assert report.status.records == 90 and report.status.ended == "idle"
        assert report.status.samples == 90 * (256 + 256 + 200)
    assert runs[0] == runs[1]
    unsent = "\n".join(report.unsent)
    for part in ("EEG Cz-Oz (EEG, 50 Hz): sampled at 50 Hz, below the 100 Hz",
                 "EOG horizontal (EOG, 100 Hz): no model uses EOG yet",
                 "Chin EMG (EMG, 200 Hz): no model uses EMG yet",
                 "ECG (ECG, 256 Hz): a psg session is staged from EEG",
                 "Pulse (HR, 1 Hz): a psg session sends EEG only"):
        assert part in unsent
    assert "not sent: EOG horizontal" in report.summary()
    # one 5-s cell per chunk: 1280 samples at 256 Hz, 1000 at 200 Hz
    assert {len(c) for chunks in received.chunks.values() for c in chunks} == {1280, 1000}


def test_a_killed_ingestor_resumes_its_psg_session_from_the_spool(
        broker: EmbeddedBroker, psg_file: Path, tmp_path: Path) -> None:
    settings = settings_for(broker)
    followed = tmp_path / "live.edf"

    async def scenario():
        writer = GrowingCopy(psg_file, followed, step=1, pause_s=0.1).start()
        first = asyncio.create_task(ingest_edf_live(
            followed, "subject-1", "psg-night-2", settings, time_zone=ZONE, poll_s=0.05,
            idle_s=30.0, eeg=["Fpz-Cz", "C3-M2"], progress=False))
        await asyncio.sleep(3.0)
        first.cancel()  # killed half-way: what was spooled stays in the spool
        with contextlib.suppress(asyncio.CancelledError):
            await first
        writer.join()
        report = await ingest_edf_live(
            followed, "subject-1", "psg-night-2", settings, time_zone=ZONE, poll_s=0.05,
            idle_s=1.0, eeg=["Fpz-Cz", "C3-M2"], progress=False)
        return report, await read_topics(settings)

    report, records = asyncio.run(scenario())
    received = check_session(records, sent(psg_file, "psg-night-2",
                                           {"Fpz-Cz": "EEG Fpz-Cz", "C3-A2": "C3-M2"}))
    assert report.status.records == 90
    assert sum(len(c) for c in received.chunks.values()) == 2 * 18  # 90 s in 5-s cells
    assert report.status.chunks < 2 * 18  # the second run skipped what the first spooled


def test_channel_choice_of_a_psg_file_and_its_errors(psg_file: Path) -> None:
    follower = EdfFollower(psg_file)
    plan = choose_channels(follower)
    assert plan.family == "psg" and plan.channels == tuple(ALL_EEG)
    assert all(isinstance(e.spec, RegularSpec) and e.spec.scale > 0 for e in plan.eeg)
    cardio = choose_channels(follower, ecg="ECG")  # the ECG instead: a cardio session
    assert cardio.family == "cardio" and cardio.eeg == ()
    one = choose_channels(follower, eeg=["C3-A2"])
    assert one.channels == ("C3-A2",) and "C3-M2" not in "\n".join(one.unsent)
    assert "EEG Fpz-Cz (EEG, 256 Hz): not among the EEG channels asked for" in one.unsent
    with pytest.raises(ValueError, match="--eeg makes a psg session and --ecg/--hr/--acc"):
        choose_channels(follower, eeg=["Fpz-Cz"], ecg="ECG")
    with pytest.raises(DataFormatError, match="'EEG Cz-Oz' cannot be sent as EEG: sampled at "
                                              "50 Hz"):
        choose_channels(follower, eeg=["EEG Cz-Oz"])
    with pytest.raises(ValueError, match=r"no channel 'Pz-Oz' \(asked for as EEG\)"):
        choose_channels(follower, eeg=["Pz-Oz"])
    unreachable = StreamSettings(broker="kafka://127.0.0.1:9")
    with pytest.raises(ValueError, match="too long for the source ids of its EEG channels"):
        asyncio.run(ingest_edf_live(psg_file, "subject-1", "s" * 126, unreachable,
                                    time_zone=ZONE, progress=False))


def test_the_edf_live_command_takes_eeg_channels(
        broker: EmbeddedBroker, psg_file: Path) -> None:
    from typer.testing import CliRunner

    from stream.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["edf-live", "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "--eeg" in shown.output
    bad = runner.invoke(app, ["edf-live", str(psg_file), "--subject", "subject-1",
                              "--timezone", ZONE, "--eeg", "Fpz-Cz", "--ecg", "ECG",
                              "--broker", "kafka://127.0.0.1:9"], terminal_width=400)
    assert bad.exit_code == 2 and "--eeg makes a psg session" in bad.output
    settings = StreamSettings(broker=broker.url, topic_prefix="psgcli.")
    done = runner.invoke(app, ["edf-live", str(psg_file), "--subject", "subject-1",
                               "--session", "psg-night-3", "--timezone", ZONE, "--eeg",
                               "Fpz-Cz, EEG O2-M1", "--poll", "0.05", "--idle", "0.3",
                               "--broker", broker.url],
                         env={"SLEEPSTREAM_TOPIC_PREFIX": "psgcli."}, terminal_width=400)
    assert done.exit_code == 0, done.output
    assert "session psg-night-3 (psg: Fpz-Cz, EEG O2-M1): 90 records (90 s)" in done.output
    assert "not sent: C3-M2 (EEG, 256 Hz): not among the EEG channels asked for" in done.output
    records = asyncio.run(read_topics(settings))
    check_session(records, sent(psg_file, "psg-night-3",
                                {"Fpz-Cz": "EEG Fpz-Cz", "EEG O2-M1": "EEG O2-M1"}))


def test_a_bdf_psg_file_sends_its_24_bit_samples_as_float32(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = settings_for(broker)
    rng = np.random.default_rng(21)
    digital = {label: rng.integers(-8_388_608, 8_388_608, 20 * 256)
               for label in ("EEG Fpz-Cz", "EEG Pz-Oz")}
    src = write_raw(tmp_path / "psg.bdf", [
        RawSignal(label.encode(), b"uV", "-838.861", "838.8607", -8_388_608, 8_388_607, 256, d)
        for label, d in digital.items()], bdf=True, start=START)

    async def scenario():
        report = await ingest_edf_live(src, "subject-1", "psg-bdf", settings, time_zone=ZONE,
                                       poll_s=0.05, idle_s=0.5, progress=False)
        return report, await read_topics(settings)

    report, records = asyncio.run(scenario())
    gain = (838.8607 + 838.861) / (2 * 8_388_608 - 1)
    spec = RegularSpec(256.0, gain, gain * (838.8607 / gain - 8_388_607))
    received = check_session(records, Sent("subject-1", "psg-bdf", {}, {
        "Fpz-Cz": (digital["EEG Fpz-Cz"], 0, spec), "Pz-Oz": (digital["EEG Pz-Oz"], 0, spec)}))
    assert report.status.records == 20
    assert {c.dtype for chunks in received.chunks.values() for c in chunks} == {"<f4"}
