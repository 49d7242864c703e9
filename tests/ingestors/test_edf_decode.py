"""The project's EDF decoder equals pyedflib on files pyedflib reads, and reads BDF.

Files are written with pyedflib (EDF, EDF+, BDF, BDF+; several rates per channel, narrow
and odd ranges) or byte by byte (a BioSemi-style BDF with a known signal); the Sleep-EDF
hypnograms are the real EDF+ files at hand.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib
import pytest

from ingestors.edf import read_edf
from ingestors.edf_decode import EdfDecoder
from ingestors.errors import DataQualityWarning
from ingestors.live_edf import EdfFollower
from tests.ingestors._edf_files import (
    RawSignal,
    header,
    patch_fixed,
    set_record_times,
    write_pyedflib,
    write_raw,
)

START = datetime(2022, 11, 3, 23, 5, 17)  # noqa: DTZ001 - EDF stores naive clock time
DURATION_S = 12


def _night(seed: int) -> list[tuple[dict, np.ndarray]]:
    """Five signals at 256, 200, 100, 10 and 1 Hz; ranges narrow, odd and asymmetric."""
    rng = np.random.default_rng(seed)
    specs = [("EEG C3-M2", 256, "uV", -187.123, 211.5, -32768, 32767),
             ("EEG Fpz-Cz", 200, "uV", -500.0, 500.0, -2048, 2047),
             ("EMG chin", 100, "mV", -0.25, 0.5, -32768, 32767),
             ("SpO2", 10, "%", 0.0, 100.0, 0, 1000),
             ("Temp", 1, "degC", 30.25, 40.75, -100, 100)]
    out = []
    for label, rate, unit, lo, hi, dmin, dmax in specs:
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        x = mid + half * np.clip(rng.normal(0.0, 0.3, DURATION_S * rate), -0.99, 0.99)
        out.append((header(label, rate, unit, lo, hi, dmin, dmax), x))
    return out


@pytest.mark.parametrize("file_type", [pyedflib.FILETYPE_EDFPLUS, pyedflib.FILETYPE_EDF,
                                       pyedflib.FILETYPE_BDFPLUS, pyedflib.FILETYPE_BDF])
@pytest.mark.parametrize("seed", [1, 2])
def test_values_equal_pyedflib(tmp_path: Path, file_type: int, seed: int) -> None:
    annotations = ((0.5, 2.0, "Lights off"), (3.25, -1, "Marker"), (7.0, 1.5, "Arousal"))
    plus = file_type in (pyedflib.FILETYPE_EDFPLUS, pyedflib.FILETYPE_BDFPLUS)
    path = write_pyedflib(tmp_path / "night.edf", _night(seed), START, file_type,
                          annotations if plus else ())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_edf(path)
        follower = EdfFollower(path)
    blocks = follower.poll()
    with pyedflib.EdfReader(str(path)) as ref:
        assert rec.start.replace(tzinfo=None) == ref.getStartdatetime()
        assert rec.file_type == {pyedflib.FILETYPE_EDFPLUS: "EDF+C", pyedflib.FILETYPE_EDF: "EDF",
                                 pyedflib.FILETYPE_BDFPLUS: "BDF+C",
                                 pyedflib.FILETYPE_BDF: "BDF"}[file_type]
        assert rec.duration_s == ref.getFileDuration() == DURATION_S
        for i, ch in enumerate(rec.channels.values()):
            expected = ref.readSignal(i)
            assert np.array_equal(ch.data, expected), ch.label
            assert np.array_equal(blocks[follower.signals[i].index].values, expected)
            assert ch.sfreq_hz == ref.getSampleFrequency(i)
            assert ch.unit == ref.getPhysicalDimension(i)
            assert (ch.physical_min, ch.physical_max) == (ref.getPhysicalMinimum(i),
                                                          ref.getPhysicalMaximum(i))
            assert (ch.prefilter, ch.transducer) == (ref.getPrefilter(i), ref.getTransducer(i))
        onsets, durations, texts = ref.readAnnotations()
    assert [(e.onset_s, e.duration_s, e.label) for e in rec.annotations] == [
        (float(o), max(float(d), 0.0), str(t)) for o, d, t in zip(onsets, durations, texts,
                                                                  strict=True)]
    assert len(rec.annotations) == (3 if plus else 0)


def test_patient_and_recording_fields_equal_pyedflib(tmp_path: Path) -> None:
    path = tmp_path / "ids.edf"
    writer = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders([header("EEG", 100, "uV", -200, 200)])
        writer.setStartdatetime(START)
        for setter, value in (("setPatientCode", "P_0042"), ("setPatientName", "Doe_Jane"),
                              ("setPatientAdditional", "left-handed"),
                              ("setAdmincode", "study_7"), ("setTechnician", "tech"),
                              ("setEquipment", "amp_3"), ("setRecordingAdditional", "night_2")):
            getattr(writer, setter)(value)
        writer.setSex(1)
        writer.setBirthdate(datetime(1969, 6, 30))  # noqa: DTZ001 - a date, no time zone
        writer.writeSamples([np.zeros(300)])
    finally:
        writer.close()
    rec = read_edf(path)
    with pyedflib.EdfReader(str(path)) as ref:
        assert rec.patient == {"code": ref.getPatientCode(), "sex": ref.getSex(),
                               "birthdate": ref.getBirthdate(), "name": ref.getPatientName(),
                               "additional": ref.getPatientAdditional()}
        assert rec.recording == {"admincode": ref.getAdmincode(),
                                 "technician": ref.getTechnician(),
                                 "equipment": ref.getEquipment(),
                                 "additional": ref.getRecordingAdditional()}
    assert rec.patient["sex"] == "Male" and rec.patient["birthdate"] == "30 jun 1969"


def _hypnogram_matches_pyedflib(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_edf(path, tz="Europe/Amsterdam")
    with pyedflib.EdfReader(str(path)) as ref:
        assert rec.start == ref.getStartdatetime().replace(tzinfo=ZoneInfo("Europe/Amsterdam"))
        onsets, durations, texts = ref.readAnnotations()
        assert rec.patient["name"] == ref.getPatientName()
        assert rec.patient["sex"] == ref.getSex()
    assert [(e.onset_s, e.duration_s, e.label) for e in rec.annotations] == [
        (float(o), max(float(d), 0.0), str(t)) for o, d, t in zip(onsets, durations, texts,
                                                                  strict=True)]
    assert rec.annotations and rec.annotations[0].label.startswith("Sleep stage")


@pytest.mark.parametrize("name", ["SC4001EC", "SC4002EC"])
def test_sleep_edf_hypnograms_equal_pyedflib(test_data: Path, name: str) -> None:
    _hypnogram_matches_pyedflib(test_data / "sleep-edf" / f"{name}-Hypnogram.edf")


@pytest.mark.shared_data
def test_all_shared_sleep_edf_hypnograms_equal_pyedflib(shared_data: Path) -> None:
    files = sorted((shared_data / "sleep-edf" / "hypnograms").glob("*-Hypnogram.edf"))
    assert len(files) == 20
    for path in files:
        _hypnogram_matches_pyedflib(path)


def test_sub_second_start_comes_from_the_first_record(tmp_path: Path) -> None:
    signals = [(header("EEG Pz-Oz", 10, "uV", -100, 100), np.linspace(-50, 50, 60))]
    good = write_pyedflib(tmp_path / "whole.edf", signals, START,
                          annotations=((2.5, 1.0, "A"), (0.0, 1.0, "B")))
    late = tmp_path / "late.edf"
    late.write_bytes(set_record_times(good.read_bytes(), [f"+{r}.5" for r in range(6)]))
    rec = read_edf(late)
    assert rec.start == START.replace(microsecond=500_000, tzinfo=ZoneInfo("UTC"))
    with pyedflib.EdfReader(str(late)) as ref:  # its onsets, not its start (off by 10x)
        assert [e.onset_s for e in rec.annotations] == list(ref.readAnnotations()[0])
        assert np.array_equal(rec.channels["Pz-Oz"].data, ref.readSignal(0))
    assert [e.onset_s for e in rec.annotations] == [2.0, -0.5]


def _biosemi(n_records: int | None = None) -> tuple[list[RawSignal], np.ndarray]:
    """A 512-Hz, 10-Hz sine of 120 uV in BioSemi's 1/32-uV steps, a full-scale ramp, Status."""
    rate, seconds = 512, 4
    t = np.arange(rate * seconds) / rate
    sine = 120.0 * np.sin(2 * np.pi * 10 * t)
    gain = (262143 - -262144) / (8388607 - -8388608)  # about 1/32 uV
    digital = np.round(sine / gain - (262143 / gain - 8388607)).astype(np.int64)
    ramp = np.linspace(-8388608, 8388607, rate * seconds).round().astype(np.int64)
    status = np.full(rate * seconds, 0xFF00 | 7, dtype=np.int64)
    full = ("-8388608", "8388607", -8388608, 8388607)
    return [RawSignal(b"Fpz", b"uV", "-262144", "262143", -8388608, 8388607, rate, digital),
            RawSignal(b"Ramp", b"", *full, rate, ramp),
            RawSignal(b"Status", b"Boolean", *full, rate, status)], sine


def test_hand_written_bdf_gives_the_known_signal(tmp_path: Path) -> None:
    signals, sine = _biosemi()
    path = write_raw(tmp_path / "biosemi.bdf", signals, bdf=True, reserved=b"24BIT")
    with pytest.warns(DataQualityWarning) as caught:
        rec = read_edf(path)
    assert rec.file_type == "BDF" and rec.duration_s == 4.0
    fpz = rec.channels["Fpz"]
    assert fpz.unit == "uV" and fpz.sfreq_hz == 512.0
    np.testing.assert_allclose(fpz.data, sine, atol=1 / 64 + 1e-9)  # half a 24-bit step
    assert np.array_equal(rec.channels["Ramp"].data, signals[1].digital)  # sign kept
    assert np.array_equal(rec.channels["Status"].data, signals[2].digital)
    # only the empty and the unknown dimensions are worth a word
    assert len(caught) == 1
    assert "no physical dimension (kept empty) ('Ramp')" in str(caught[0].message)
    assert "'Boolean' is not a unit known here (kept as written) ('Status')" in \
        str(caught[0].message)


def test_bdf_still_being_recorded_is_read_with_the_warning(tmp_path: Path) -> None:
    signals, sine = _biosemi()
    path = write_raw(tmp_path / "growing.bdf", signals[:1], bdf=True, n_records=-1)
    with open(path, "ab") as fh:  # half of a fifth record
        fh.write(b"\x01" * (3 * 256))
    with pytest.warns(DataQualityWarning) as caught:
        rec = read_edf(path)
    np.testing.assert_allclose(rec.channels["Fpz"].data, sine, atol=1 / 64 + 1e-9)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: read although it departs from the EDF specification: (1) number of data "
        "records is -1 (the file was never finalised); read the 4 complete records the file "
        "size holds; (2) the last data record is incomplete (768 of 1536 bytes); dropped.")


def test_bdf_plus_equals_plain_edf_written_from_the_same_digital_values(tmp_path: Path) -> None:
    signals, _ = _biosemi()
    bdf = read_edf(write_raw(tmp_path / "a.bdf", signals[:1], bdf=True))
    small = [signals[0]._replace(physical_min="-262144", physical_max="262143",
                                 digital_min=-32768, digital_max=32767,
                                 digital=signals[0].digital // 256)]
    edf = read_edf(write_raw(tmp_path / "a.edf", small, bdf=False))
    # the same signal at 8 bits less resolution: within one 16-bit step
    np.testing.assert_allclose(edf.channels["Fpz"].data, bdf.channels["Fpz"].data,
                               atol=524287 / 65535)


def test_decoder_reads_any_block_of_records(tmp_path: Path) -> None:
    path = write_pyedflib(tmp_path / "n.edf", _night(3), START)
    decoder = EdfDecoder(path)
    whole = decoder.read(0, 12).values
    parts = [decoder.read(first, n).values for first, n in ((0, 5), (5, 1), (6, 6))]
    for sig in decoder.signals:
        assert np.array_equal(np.concatenate([p[sig.index] for p in parts]), whole[sig.index])


def test_a_stale_header_count_does_not_limit_the_live_reader(tmp_path: Path) -> None:
    path = write_pyedflib(tmp_path / "n.edf", _night(4), START)
    stale = tmp_path / "stale.edf"
    stale.write_bytes(patch_fixed(path.read_bytes(), "n_records", b"3"))
    assert EdfDecoder(stale).records_on_disk() == DURATION_S
