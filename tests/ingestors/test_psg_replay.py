"""PSG folders as replay nights: pairing, channel choice, labels on the epoch grid, crop.

The recordings are EDF files written here with pyedflib: (a) the real raw Sleep-EDF Pz-Oz
clips (tests/data excerpt; the full clips under shared data) with the real hypnograms, and
(b) generated EEG whose stage is known per epoch at 100 and 256 Hz with 1 to 6 channels,
as Sleep-EDF pairs and as NSRR ``.edf`` + ``-nsrr.xml`` pairs.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import scipy.io

from ingestors.base import RegularSpec
from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.hypnogram_io import read_edf_hypnogram
from ingestors.psg_channels import channel_kind, eeg_samples
from ingestors.replay import describe_night, pair_recordings, plan_night, psg_nights
from models.features.eeg import eeg_measures
from models.stages import Stage
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker
from tests.ingestors._contract import Sent, check_session
from tests.ingestors._edf_files import RawSignal, write_raw
from tests.ingestors._psg_data import (
    Channel,
    digitise,
    night_stages,
    nsrr_xml,
    read_back,
    sleep_edf_hypnogram,
    stage_eeg,
    write_psg,
)
from tests.ingestors._topics import read_topics

SC4001_START = datetime(1989, 4, 24, 16, 13, 0)  # noqa: DTZ001 - EDF clock time
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: Sleep-EDF's EEG calibration, close to SC4001E0's: physical = gain * (digital + 5).
PZ_OZ = {"physical_min": -197.0, "physical_max": 196.0, "digital_min": -2048,
         "digital_max": 2047}


def sleep_edf_folder(folder: Path, clips: dict[str, np.ndarray], hypnograms: Path,
                     start: dict[str, datetime]) -> Path:
    """Sleep-EDF pairs from Pz-Oz clips: generated Fpz-Cz, the clip, EOG, EMG, respiration."""
    folder.mkdir(exist_ok=True)
    for night, val in clips.items():
        n_s = val.size // 100
        wake = np.zeros(n_s // 30, dtype=np.int8)
        write_psg(folder / f"{night}-PSG.edf", [
            digitise(stage_eeg(wake, 100, seed=1), "EEG Fpz-Cz", 100),
            Channel("EEG Pz-Oz", 100, "uV", val, **PZ_OZ),
            digitise(stage_eeg(wake, 100, seed=2), "EOG horizontal", 100),
            digitise(np.random.default_rng(3).normal(0, 5, n_s), "Resp oro-nasal", 1),
            digitise(np.random.default_rng(4).normal(0, 5, n_s), "EMG submental", 1)],
            start[night])
        hyp = next(hypnograms.glob(f"{night[:7]}?-Hypnogram.edf"))
        shutil.copy(hyp, folder / hyp.name)
    return folder


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Path:
    data = np.load(test_data / "sleep-edf" / "pz-oz-first-900s.npz")
    clips = {str(n): data["val"][i] for i, n in enumerate(data["night"])
             if str(n) in ("SC4001E0", "SC4002E0")}
    starts = {"SC4001E0": SC4001_START, "SC4002E0": datetime(1989, 4, 25, 14, 50)}  # noqa: DTZ001
    return sleep_edf_folder(tmp_path_factory.mktemp("real"), clips, test_data / "sleep-edf",
                            starts)


def test_sleep_edf_pairs_are_found_by_name(real_folder: Path, tmp_path: Path) -> None:
    pairs = pair_recordings(real_folder)
    assert [(p.night, p.psg.name, p.hypnogram.name, p.kind) for p in pairs] == [
        ("SC4001E0", "SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "sleep-edf"),
        ("SC4002E0", "SC4002E0-PSG.edf", "SC4002EC-Hypnogram.edf", "sleep-edf")]
    assert pair_recordings(real_folder / "SC4002E0-PSG.edf")[0].night == "SC4002E0"
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(real_folder / "SC4001E0-PSG.edf", lonely)
    with pytest.raises(DataFormatError, match=r"SC4001E0-PSG.edf: no single hypnogram.*"
                                              r"expected one SC4001E\?-Hypnogram.edf"):
        pair_recordings(lonely)
    for scorer in "CH":
        shutil.copy(real_folder / "SC4001EC-Hypnogram.edf",
                    lonely / f"SC4001E{scorer}-Hypnogram.edf")
    with pytest.raises(DataFormatError, match=r"got \['SC4001EC-Hypnogram.edf', "
                                              r"'SC4001EH-Hypnogram.edf'\]"):
        pair_recordings(lonely)
    (lonely / "SC4001EH-Hypnogram.edf").unlink()
    shutil.copy(real_folder / "SC4001E0-PSG.edf", lonely / "night-7.edf")
    with pytest.raises(DataFormatError, match=r"night-7.edf: no hypnogram.*night-7-nsrr.xml"):
        pair_recordings(lonely)
    with pytest.raises(FileNotFoundError, match="no PSG recording"):
        pair_recordings(tmp_path / "lonely" / "SC4001EC-Hypnogram.edf")


def test_the_real_pz_oz_clip_arrives_as_recorded_with_its_hypnogram(
        real_folder: Path, test_data: Path) -> None:
    with pytest.warns(DataQualityWarning, match=r"covers epochs 0\.\.29 .* only; the session "
                                                r"runs over epochs 0\.\.29 instead of 0\.\.2649"):
        (night,) = psg_nights(real_folder, ["SC4001E0"], crop_min=None)
    written = read_back(real_folder / "SC4001E0-PSG.edf")
    clip = np.load(test_data / "sleep-edf" / "pz-oz-first-900s.npz")["val"][0]
    assert (night.subject_id, night.session_id, night.family, night.device) == (
        "SC4001E0", "edf-SC4001E0", "psg", "replay:sleep-edf")
    assert night.start == SC4001_START.replace(tzinfo=AMSTERDAM) and not night.start_is_nominal
    assert night.time_zone == "Europe/Amsterdam" and night.n_epochs == 30
    hyp = read_edf_hypnogram(test_data / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    assert night.labels is not None and np.array_equal(night.labels, hyp.stages[:30])
    assert night.channels == ("Fpz-Cz", "Pz-Oz")
    fpz, pz = night.eeg
    assert pz.raw.dtype == np.int16 and np.array_equal(pz.raw, clip)  # the recorded samples
    assert np.array_equal(fpz.raw, written["EEG Fpz-Cz"].digital)
    assert pz.sample0 == 0 and pz.spec.rate_hz == 100.0
    np.testing.assert_allclose(pz.physical(), written["EEG Pz-Oz"].physical(), rtol=1e-12,
                               atol=1e-12)
    assert [(u.label, u.kind, u.rate_hz) for u in night.unsent] == [
        ("EOG horizontal", "EOG", 100.0), ("EMG submental", "EMG", 1.0)]
    text = describe_night(night)
    for part in ("SC4001E0: 30 epochs, 0.2 h", "(W 30)", "EEG Pz-Oz: 100 Hz, 90000 samples",
                 "EOG horizontal (EOG, 100 Hz, uV, 0.2 h read): not sent: no model uses EOG",
                 "EMG submental (EMG, 1 Hz, uV, 0.2 h read): not sent: no model uses EMG"):
        assert part in text
    assert "Resp" not in text


def test_the_default_crop_needs_eeg_over_the_sleep_period(real_folder: Path) -> None:
    with pytest.raises(DataFormatError, match=r"does not cover any epoch of the session; "
                                              r"expected EEG over epochs 961\.\.1801 .* "
                                              r"replay it uncropped \(crop none\)"):
        psg_nights(real_folder, ["SC4001E0"])


def test_nights_are_chosen_by_name_or_its_start(real_folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        both = psg_nights(real_folder, ["SC400"], crop_min=None, eeg=["Pz-Oz"])
        second = psg_nights(real_folder, ["SC4002E0"], crop_min=None, eeg=["EEG Pz-Oz"])
    assert [n.subject_id for n in both] == ["SC4001E0", "SC4002E0"]
    assert second[0].channels == ("Pz-Oz",) and second[0].start.hour == 14
    assert [u.label for u in second[0].unsent] == ["EEG Fpz-Cz", "EOG horizontal",
                                                  "EMG submental"]
    assert "not among the EEG channels asked for" in second[0].unsent[0].reason
    with pytest.raises(ValueError, match="no night 'SC4091E0' in the folder; it holds "
                                         "SC4001E0, SC4002E0"):
        psg_nights(real_folder, ["SC4091E0"])


@pytest.mark.shared_data
def test_all_nine_real_clips_arrive_as_recorded(shared_data: Path, tmp_path: Path) -> None:
    clips_dir = shared_data / "sleep-edf" / "pz-oz-raw-first-10000s"
    clips = {p.name[:8]: scipy.io.loadmat(p)["val"][0] for p in sorted(clips_dir.glob("*.mat"))}
    hyp_dir = shared_data / "sleep-edf" / "hypnograms"
    starts = {}
    for night in clips:
        hyp = read_edf_hypnogram(next(hyp_dir.glob(f"{night[:7]}?-Hypnogram.edf")))
        starts[night] = hyp.start.replace(tzinfo=None)
    folder = sleep_edf_folder(tmp_path / "nine", clips, hyp_dir, starts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # 10,000 s of a 24-h hypnogram
        nights = psg_nights(folder, crop_min=None)
    assert len(nights) == 9
    for night in nights:
        clip = clips[night.subject_id]
        assert night.n_epochs == 333 and night.eeg[1].channel == "Pz-Oz"
        assert np.array_equal(night.eeg[1].raw, clip[:333 * 3000])
        hyp = read_edf_hypnogram(next(hyp_dir.glob(f"{night.subject_id[:7]}?-Hypnogram.edf")))
        assert night.labels is not None and np.array_equal(night.labels, hyp.stages[:333])
        plan = plan_night(night, anchor="original")
        assert plan.n_samples == 2 * 333 * 3000 and plan.n_chunks == 2 * 333 * 6


def generated_night(fs: float, n_channels: int, stages: np.ndarray, seed: int = 0,
                    ) -> list[Channel]:
    """``n_channels`` EEG channels of the stages (mixtures of two generated signals)."""
    a, b = stage_eeg(stages, fs, seed), stage_eeg(stages, fs, seed + 10)
    labels = ("EEG Fpz-Cz", "EEG Pz-Oz", "C3-M2", "C4-M1", "O1-M2", "EEG F4-M1")
    return [digitise((1.0 - 0.15 * k) * a + 0.15 * k * b, labels[k], fs)
            for k in range(n_channels)]


@pytest.fixture(scope="module")
def generated() -> dict[float, tuple[np.ndarray, list[Channel]]]:
    stages = night_stages(70, 16, 64)  # 150 epochs: sleep from epoch 70 to 85
    return {fs: (stages, generated_night(fs, 6, stages)) for fs in (100.0, 256.0)}


@pytest.mark.parametrize(("fs", "n_channels"), [(100.0, 1), (100.0, 2), (256.0, 3),
                                                (256.0, 6)])
def test_generated_eeg_is_cropped_to_the_sleep_period_with_its_stages(
        generated: dict[float, tuple[np.ndarray, list[Channel]]], tmp_path: Path, fs: float,
        n_channels: int) -> None:
    stages, channels = generated[fs]
    start = datetime(2024, 3, 9, 22, 0, 0)  # noqa: DTZ001
    write_psg(tmp_path / "SC4051E0-PSG.edf", channels[:n_channels], start)
    sleep_edf_hypnogram(tmp_path / "SC4051EC-Hypnogram.edf", stages, start)
    (night,) = psg_nights(tmp_path)  # default: sleep period +- 30 min
    first, last = 70 - 60, 85 + 60
    assert night.n_epochs == last - first + 1
    assert night.start == start.replace(tzinfo=AMSTERDAM) + timedelta(seconds=first * 30)
    assert night.labels is not None and np.array_equal(night.labels, stages[first:last + 1])
    assert len(night.channels) == n_channels
    per_epoch = round(30 * fs)
    for stream, ch in zip(night.eeg, channels, strict=False):
        assert stream.sample0 == 0 and stream.spec.rate_hz == fs
        assert np.array_equal(stream.raw, ch.digital[first * per_epoch:(last + 1) * per_epoch])
    # the stages are in the samples sent (frontal spectra of a real night): beta in wake,
    # delta in N3, little power in REM
    measures = eeg_measures(night.eeg[0].physical(), fs).measures
    labels = night.labels
    beta, delta, var = measures[:, 3], measures[:, 0], measures[:, 5]
    ok = np.isfinite(beta)
    wake, n3, rem = (ok & (labels == s) for s in (Stage.W, Stage.N3, Stage.REM))
    assert np.median(beta[wake]) > 3 * np.median(beta[n3])
    assert np.median(delta[n3]) > 1.5 * np.median(delta[wake])
    assert np.median(var[rem]) < 0.5 * np.median(var[ok & (labels == Stage.N2)])
    uncropped = psg_nights(tmp_path, crop_min=None)[0]
    assert uncropped.n_epochs == 150 and uncropped.start == start.replace(tzinfo=AMSTERDAM)


def test_an_nsrr_pair_is_read_with_its_xml_and_the_aliases(tmp_path: Path) -> None:
    stages = night_stages(6, 8, 6)
    eeg = stage_eeg(stages, 125.0, seed=5)
    channels = [digitise(eeg, "EEG", 125.0), digitise(0.8 * eeg, "EEG(sec)", 125.0),
                digitise(stage_eeg(stages, 50.0, seed=6) / 1000.0, "EOG(L)", 50.0, unit="mV",
                         span=1.0),
                digitise(np.zeros(600 * 125), "ECG", 125.0, unit="mV", span=5.0),
                digitise(np.full(600, 95.0), "SaO2", 1.0, unit="%", span=100.0)]
    write_psg(tmp_path / "shhs1-200001.edf", channels, datetime(1985, 1, 1, 22, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "shhs1-200001-nsrr.xml", stages[1:], onset_s=30.0)
    (pair,) = pair_recordings(tmp_path)
    assert (pair.night, pair.hypnogram.name, pair.kind) == ("shhs1-200001",
                                                            "shhs1-200001-nsrr.xml", "nsrr")
    (night,) = psg_nights(tmp_path, crop_min=None)
    assert night.channels == ("C4-A1", "C3-A2") and night.time_zone == "UTC"
    assert night.device == "replay:nsrr" and night.n_epochs == 19
    assert night.labels is not None and np.array_equal(night.labels, stages[1:])
    assert night.start.isoformat() == "1985-01-01T22:00:30+00:00"  # the XML's first stage
    assert np.array_equal(night.eeg[0].raw, channels[0].digital[30 * 125:])
    assert [(u.label, u.kind) for u in night.unsent] == [("EOG(L)", "EOG"), ("ECG", "ECG")]
    assert "one session at a time" in night.unsent[1].reason
    (c3,) = psg_nights(tmp_path, crop_min=None, eeg=["C3-M2"])[0].eeg  # alias of EEG(sec)
    assert c3.channel == "C3-A2" and np.array_equal(c3.raw, channels[1].digital[30 * 125:])


def test_eeg_in_millivolts_keeps_its_samples_and_folds_the_unit_into_the_calibration(
        tmp_path: Path) -> None:
    stages = night_stages(4, 4, 4)
    mv = digitise(stage_eeg(stages, 100.0) / 1000.0, "EEG Cz-M1", 100.0, unit="mV", span=0.5)
    write_psg(tmp_path / "night.edf", [mv], datetime(2024, 1, 1, 23, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "night.xml", stages)
    (night,) = psg_nights(tmp_path, crop_min=None)
    (cz,) = night.eeg
    assert cz.channel == "EEG Cz-M1" and np.array_equal(cz.raw, mv.digital)
    np.testing.assert_allclose(cz.physical(), 1000.0 * mv.physical(), rtol=1e-12)


def test_unusable_channels_and_hypnograms_are_named(tmp_path: Path) -> None:
    stages = night_stages(4, 4, 4)
    eeg = stage_eeg(stages, 100.0)
    slow = stage_eeg(stages, 50.0)
    write_psg(tmp_path / "night.edf", [digitise(eeg, "EEG C3-M2", 100.0),
                                       digitise(slow, "EEG C4-M1", 50.0),
                                       digitise(eeg, "EEG O1", 100.0, unit="%")],
              datetime(2024, 1, 1, 23, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "night.xml", stages)
    (night,) = psg_nights(tmp_path, crop_min=None)
    assert night.channels == ("C3-A2",)
    reasons = {u.label: u.reason for u in night.unsent}
    assert "sampled at 50 Hz, below the 100 Hz the EEG front-end needs" in reasons["EEG C4-M1"]
    assert "physical dimension '%' is not V, mV or uV" in reasons["EEG O1"]
    with pytest.raises(DataFormatError, match=r"night.edf, field 'EEG C4-M1': channel 'EEG "
                                              r"C4-M1' cannot be sent as EEG: sampled at 50 Hz"):
        psg_nights(tmp_path, eeg=["C4-A1"])
    with pytest.raises(ValueError, match=r"no channel 'Fz' \(asked for as EEG\); expected one "
                                         r"of 'EEG C3-M2' \(EEG\)"):
        psg_nights(tmp_path, eeg=["Fz"])
    nsrr_xml(tmp_path / "night.xml", stages, onset_s=0.005)
    with pytest.raises(DataFormatError, match="session start falls between two samples of "
                                              "channel 'EEG C3-M2'"), \
            pytest.warns(DataQualityWarning, match="covers epochs 0..10 of night.xml only"):
        psg_nights(tmp_path, crop_min=None)
    nsrr_xml(tmp_path / "night.xml", np.repeat(stages, 3), epoch_s=10.0)
    with pytest.raises(DataFormatError, match="night.xml, field 'epoch length': epochs are "
                                              "not 30 s long; expected 30 s; got '10 s'"):
        psg_nights(tmp_path, crop_min=None)
    write_psg(tmp_path / "night.edf", [digitise(eeg, "ECG", 100.0, unit="mV")],
              datetime(2024, 1, 1, 23, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "night.xml", stages)
    with pytest.raises(ValueError, match=r"no usable EEG channel.*got \"'ECG' \(ECG, 100 Hz"):
        psg_nights(tmp_path)
    with pytest.raises(ValueError, match="crop_min"):
        psg_nights(tmp_path, crop_min=-1.0)


def test_labels_keep_unscored_and_movement_epochs_on_the_grid(tmp_path: Path) -> None:
    stages = night_stages(3, 6, 3)
    stages[5], stages[7] = Stage.UNSCORED, Stage.MOVEMENT
    start = datetime(2024, 3, 9, 22, 0, 0)  # noqa: DTZ001
    write_psg(tmp_path / "SC4061E0-PSG.edf", generated_night(100.0, 1, stages), start)
    sleep_edf_hypnogram(tmp_path / "SC4061EC-Hypnogram.edf", stages, start)
    (night,) = psg_nights(tmp_path)
    assert night.labels is not None and np.array_equal(night.labels, stages)


@pytest.mark.parametrize(("label", "kind"), [
    ("EEG Fpz-Cz", "EEG"), ("C3-M2", "EEG"), ("Cz", "EEG"), ("O2:A1", "EEG"), ("F4-M1", "EEG"),
    ("EEG(sec)", "EEG"), ("EOG horizontal", "EOG"), ("E1-M2", "EOG"), ("LOC", "EOG"),
    ("EMG submental", "EMG"), ("Chin1-Chin2", "EMG"), ("ECG I", "ECG"), ("EKG", "ECG"),
    ("SaO2", "other"), ("Resp oro-nasal", "other"), ("A1", "other"), ("Position", "other")])
def test_channel_kinds_come_from_labels_and_aliases(label: str, kind: str) -> None:
    from ingestors.edf import resolve_channel

    assert channel_kind(label, resolve_channel(label)) == kind


def test_24_bit_samples_come_back_exactly_as_float32() -> None:
    digital = np.array([-8_388_608, -1, 0, 5, 8_388_607])
    gain, offset = 0.03125, 0.5
    values = gain * (offset + digital.astype(np.float64))
    raw = eeg_samples("x.bdf", "Cz", values, gain, offset, wide=True)
    assert raw.dtype == np.float32 and np.array_equal(raw.astype(np.int64), digital)
    with pytest.raises(DataFormatError, match="do not follow from whole digital values"):
        eeg_samples("x.edf", "Cz", values, gain, offset)  # beyond 16 bits
    with pytest.raises(DataFormatError, match="do not follow from whole digital values"):
        eeg_samples("x.bdf", "Cz", values + 0.3 * gain, gain, offset, wide=True)


def test_the_replay_edf_command_reports_sends_and_checks_its_options(
        broker: EmbeddedBroker, real_folder: Path, test_data: Path) -> None:
    from typer.testing import CliRunner

    from stream.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["replay", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for option in ("--eeg", "--crop", "--timezone", "--dry-run", "--subjects", "--speed",
                   "--anchor"):
        assert option in shown.output
    assert "sleep period +- 30 min that the psg models were trained" in re.sub(
        r"[│\s]+", " ", shown.output)  # the words of the --crop help, out of rich's box
    clip_only = pytest.warns(DataQualityWarning, match=r"covers epochs 0\.\.29 .* only")
    with clip_only:
        listed = runner.invoke(app, ["replay", "edf", str(real_folder), "--dry-run", "--crop",
                                     "none", "--eeg", "Pz-Oz"], terminal_width=400)
    assert listed.exit_code == 0, listed.output
    for part in ("SC4001E0: 30 epochs", "SC4002E0: 30 epochs", "EEG Pz-Oz: 100 Hz",
                 "EEG Fpz-Cz (EEG, 100 Hz, uV, 0.2 h read): not sent: not among the EEG",
                 "EOG horizontal (EOG, 100 Hz, uV, 0.2 h read): not sent: no model uses EOG"):
        assert part in listed.output
    for args, message in (
            (["sleep-accel", str(real_folder), "--crop", "none"], "options of the edf replay"),
            (["edf", str(real_folder), "--crop", "half"], "--crop must be minutes >= 0"),
            (["edf", str(real_folder), "--subjects", "SC4001E0"], "replay it uncropped"),
            (["edf", str(test_data / "sleep-edf")], "no PSG recording")):
        bad = runner.invoke(app, ["replay", *args, "--broker", "kafka://127.0.0.1:9"],
                            terminal_width=400)
        assert bad.exit_code == 2 and message in " ".join(bad.output.split()), bad.output
    settings = StreamSettings(broker=broker.url, topic_prefix="psgreplaycli.")
    with pytest.warns(DataQualityWarning, match=r"covers epochs 0\.\.29 .* only"):
        done = runner.invoke(app, ["replay", "edf", str(real_folder), "--subjects",
                                   "SC4001E0", "--crop", "none", "--anchor", "original",
                                   "--broker", broker.url],
                             env={"SLEEPSTREAM_TOPIC_PREFIX": "psgreplaycli."},
                             terminal_width=400)
    assert done.exit_code == 0, done.output
    assert "replayed 1 nights: 360 chunks, 180000 samples" in done.output
    written = read_back(real_folder / "SC4001E0-PSG.edf")
    expected = {name: (written[label].digital, 0,
                       RegularSpec(100.0, written[label].gain,
                                   written[label].gain * written[label].offset))
                for name, label in (("Fpz-Cz", "EEG Fpz-Cz"), ("Pz-Oz", "EEG Pz-Oz"))}
    records = asyncio.run(read_topics(settings))
    received = check_session(records, Sent("SC4001E0", "edf-SC4001E0", {}, expected))
    assert received.start.t_utc == SC4001_START.replace(tzinfo=AMSTERDAM)


def raw_signal(label: str, digital: np.ndarray, rate: int) -> RawSignal:
    """A uV channel for :func:`write_raw` over the full 24-bit range (+-839 uV)."""
    return RawSignal(label.encode(), b"uV", "-838.861", "838.8607", -8_388_608, 8_388_607,
                     rate, digital)


def test_a_bdf_recording_arrives_with_its_24_bit_samples(tmp_path: Path) -> None:
    stages = night_stages(2, 4, 2)
    rng = np.random.default_rng(12)
    digital = [rng.integers(-8_388_608, 8_388_608, 8 * 30 * 256) for _ in range(2)]
    write_raw(tmp_path / "night.bdf", [raw_signal("EEG C4-M1", digital[0], 256),
                                       raw_signal("EEG O2-M1", digital[1], 256)],
              bdf=True, start=datetime(2024, 1, 1, 23, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "night.xml", stages)
    (night,) = psg_nights(tmp_path, crop_min=None)
    assert night.channels == ("C4-A1", "EEG O2-M1")
    for stream, d in zip(night.eeg, digital, strict=True):
        assert stream.raw.dtype == np.float32 and np.array_equal(stream.raw, d)
        gain = (838.8607 + 838.861) / (2 * 8_388_608 - 1)
        expected = gain * (838.8607 / gain - 8_388_607 + d)  # edflib's decoding
        np.testing.assert_allclose(stream.physical(), expected, rtol=1e-9, atol=1e-9)
    chunk = next(c for _, c in plan_night(night, anchor="original").chunks())
    assert chunk.dtype == "<f4" and len(chunk) == 1280


def test_an_edf_with_its_digital_range_out_of_range_is_replayed_with_the_warning(
        tmp_path: Path) -> None:
    stages = night_stages(2, 4, 2)
    digital = np.random.default_rng(13).integers(-32768, 32768, 8 * 30 * 100)
    signal = RawSignal(b"EEG Fpz-Cz", b"uV", "-400", "400", -40000, 40000, 100, digital)
    write_raw(tmp_path / "night.edf", [signal], bdf=False,
              start=datetime(2024, 1, 1, 23, 0))  # noqa: DTZ001
    nsrr_xml(tmp_path / "night.xml", stages)
    with pytest.warns(DataQualityWarning, match=r"digital range \[-40000, 40000\] is not "
                                                r"within the 16-bit sample range"):
        (night,) = psg_nights(tmp_path, crop_min=None)
    assert night.eeg[0].raw.dtype == np.int16 and np.array_equal(night.eeg[0].raw, digital)
