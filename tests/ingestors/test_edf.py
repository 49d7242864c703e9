"""Tests of ingestors.edf on EDF/EDF+ files written with pyedflib, and on damaged copies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib
import pytest

from ingestors.edf import DEFAULT_ALIASES, EdfRecording, as_timezone, read_edf, resolve_channel
from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.types import TimeSeries

START = datetime(2021, 1, 15, 22, 30, 0)  # noqa: DTZ001 - EDF stores naive clock time
DURATION_S = 20
# label, rate (Hz), unit, sine frequency (Hz), amplitude, physical range
SIGNALS = [
    ("EEG Fpz-Cz", 100.0, "uV", 10.0, 50.0, 200.0),
    ("EMG submental", 16.0, "mV", 2.0, 3.0, 5.0),
]


def _header(label: str, rate: float, unit: str, phys: float) -> dict:
    return {
        "label": label, "dimension": unit, "sample_frequency": rate,
        "physical_min": -phys, "physical_max": phys, "digital_min": -32768,
        "digital_max": 32767, "transducer": "AgAgCl electrode", "prefilter": "HP:0.5Hz",
    }


def _sine(rate: float, freq: float, amp: float) -> np.ndarray:
    t = np.arange(int(DURATION_S * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


@pytest.fixture()
def edf_plus(tmp_path: Path) -> Path:
    """EDF+ file: two sines at different rates and units, three annotations."""
    path = tmp_path / "night.edf"
    writer = pyedflib.EdfWriter(str(path), len(SIGNALS), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders([_header(lab, fs, u, ph) for lab, fs, u, _, _, ph in SIGNALS])
        writer.setStartdatetime(START)
        writer.setPatientCode("P001")
        writer.setSex(1)
        writer.setTechnician("tech")
        writer.setEquipment("device42")
        writer.writeSamples([_sine(fs, f, a) for _, fs, _, f, a, _ in SIGNALS])
        writer.writeAnnotation(1.5, 2.0, "Lights off")
        writer.writeAnnotation(4.0, -1, "Marker")
        writer.writeAnnotation(10.0, 5.0, "Arousal")
    finally:
        writer.close()
    return path


def _write_plain_edf(path: Path, labels: list[str], rate: float = 8.0) -> Path:
    writer = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_EDF)
    try:
        writer.setSignalHeaders([_header(lab, rate, "uV", 100.0) for lab in labels])
        writer.setStartdatetime(START)
        writer.writeSamples([np.full(int(4 * rate), float(i)) for i in range(len(labels))])
    finally:
        writer.close()
    return path


def _patched(src: Path, dst: Path, offset: int, new: bytes) -> Path:
    data = bytearray(src.read_bytes())
    data[offset:offset + len(new)] = new
    dst.write_bytes(bytes(data))
    return dst


# -- reading -------------------------------------------------------------------------------


def test_reads_signals_with_their_own_rates_units_and_values(edf_plus: Path) -> None:
    rec = read_edf(edf_plus)
    assert isinstance(rec, EdfRecording)
    assert list(rec.channels) == ["Fpz-Cz", "EMG"]
    for (label, rate, unit, freq, amp, phys), ch in zip(SIGNALS, rec.channels.values(),
                                                         strict=True):
        assert ch.label == label
        assert ch.sfreq_hz == rate
        assert ch.unit == unit
        assert ch.data.dtype == np.float64
        assert ch.data.shape == (int(DURATION_S * rate),)
        assert (ch.physical_min, ch.physical_max) == (-phys, phys)
        assert ch.prefilter == "HP:0.5Hz"
        assert ch.transducer == "AgAgCl electrode"
        # 16-bit quantisation: one digital step of the physical range
        step = 2 * phys / 65535
        np.testing.assert_allclose(ch.data, _sine(rate, freq, amp), atol=step)
        spectrum = np.abs(np.fft.rfft(ch.data))
        peak_hz = np.fft.rfftfreq(ch.data.size, 1 / ch.sfreq_hz)[np.argmax(spectrum)]
        assert peak_hz == pytest.approx(freq)
        np.testing.assert_allclose(ch.t_s[:3], np.arange(3) / rate)
    assert rec.duration_s == DURATION_S
    assert rec.file_type == "EDF+C"


def test_start_is_aware_in_the_given_zone(edf_plus: Path) -> None:
    utc = read_edf(edf_plus, [])
    assert utc.start == START.replace(tzinfo=UTC)
    ams = read_edf(edf_plus, [], tz="Europe/Amsterdam")
    assert ams.start == START.replace(tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert ams.start.utcoffset() == timedelta(hours=1)  # CET in January
    assert read_edf(edf_plus, [], tz=ZoneInfo("America/New_York")).start.utcoffset() == \
        timedelta(hours=-5)


def test_header_fields_and_annotations(edf_plus: Path) -> None:
    rec = read_edf(edf_plus, [])
    assert rec.channels == {}
    assert rec.patient["code"] == "P001"
    assert rec.patient["sex"] == "Male"
    assert rec.recording["technician"] == "tech"
    assert rec.recording["equipment"] == "device42"
    assert rec.patient_id.startswith("P001")
    assert [(e.onset_s, e.duration_s, e.label) for e in rec.annotations] == [
        (1.5, 2.0, "Lights off"), (4.0, 0.0, "Marker"), (10.0, 5.0, "Arousal"),
    ]


def test_timeseries_of_a_channel(edf_plus: Path) -> None:
    rec = read_edf(edf_plus, ["EMG"], tz="Europe/Amsterdam")
    ts = rec.timeseries("EMG")
    assert isinstance(ts, TimeSeries)
    assert ts.unit == "mV"
    assert ts.start == rec.start
    assert ts.t_s[1] == pytest.approx(1 / 16)
    with pytest.raises(KeyError, match="Fpz-Cz"):
        rec.timeseries("Fpz-Cz")


@pytest.mark.parametrize(
    "wanted", [["Fpz-Cz"], ["fpz-cz"], ["EEG Fpz-Cz"], ["EEG FPZ-CZ"], ["  eeg  fpz-cz "]]
)
def test_select_by_canonical_name_or_label(edf_plus: Path, wanted: list[str]) -> None:
    rec = read_edf(edf_plus, wanted)
    assert list(rec.channels) == ["Fpz-Cz"]


def test_selection_keeps_the_order_asked_for(edf_plus: Path) -> None:
    assert list(read_edf(edf_plus, ["emg", "Fpz-Cz"]).channels) == ["EMG", "Fpz-Cz"]


def test_absent_channel_lists_what_the_file_has(edf_plus: Path) -> None:
    with pytest.raises(ValueError, match="no channel 'C4-A1'") as info:
        read_edf(edf_plus, ["C4-A1"])
    assert "night.edf" in str(info.value)
    assert "'Fpz-Cz' (label 'EEG Fpz-Cz')" in str(info.value)
    assert "'EMG' (label 'EMG submental')" in str(info.value)


def test_channels_must_be_a_sequence_not_a_str(edf_plus: Path) -> None:
    with pytest.raises(TypeError, match=r"\['EMG'\]"):
        read_edf(edf_plus, "EMG")


def test_same_channel_twice_is_refused(edf_plus: Path) -> None:
    with pytest.raises(ValueError, match="twice"):
        read_edf(edf_plus, ["EMG", "EMG submental"])


def test_shhs_style_plain_edf_gets_canonical_names(tmp_path: Path) -> None:
    labels = ["EEG(sec)", "ECG", "EMG", "EOG(L)", "EEG", "THOR RES", "ABDO RES", "SaO2"]
    rec = read_edf(_write_plain_edf(tmp_path / "shhs1-200001.edf", labels))
    assert list(rec.channels) == ["C3-A2", "ECG", "EMG", "EOG", "C4-A1", "Thor", "Abdo",
                                  "SpO2"]
    assert rec.file_type == "EDF"
    assert rec.annotations == []
    np.testing.assert_allclose(rec.channels["C4-A1"].data, 4.0, atol=1e-2)


def test_custom_aliases(tmp_path: Path) -> None:
    path = _write_plain_edf(tmp_path / "x.edf", ["EEG C4", "Leg"])
    rec = read_edf(path, aliases={**DEFAULT_ALIASES, "eeg c4": "C4-A1"})
    assert list(rec.channels) == ["C4-A1", "Leg"]
    assert list(read_edf(path, ["c4-a1"], aliases={"EEG C4": "C4-A1"}).channels) == ["C4-A1"]


def test_two_labels_with_one_canonical_name_warn(tmp_path: Path) -> None:
    path = _write_plain_edf(tmp_path / "x.edf", ["EKG", "ECG", "Leg", "EKG"])
    with pytest.warns(DataQualityWarning) as caught:
        rec = read_edf(path)
    assert [str(w.message).split(": ", 1)[1].split(";")[0] for w in caught] == [
        "label 'ECG' maps to channel 'ECG', which label 'EKG' already has",
        "label 'EKG' maps to channel 'ECG', which label 'EKG' already has",
    ]
    assert list(rec.channels) == ["ECG", "ECG (1)", "Leg", "EKG"]
    assert [ch.label for ch in rec.channels.values()] == ["EKG", "ECG", "Leg", "EKG"]
    np.testing.assert_allclose(rec.channels["EKG"].data, 3.0, atol=1e-2)


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("EEG Fpz-Cz", "Fpz-Cz"), ("Fpz-Cz", "Fpz-Cz"), ("EEG FPZ-CZ", "Fpz-Cz"),
        ("EEG Pz-Oz", "Pz-Oz"), ("EEG(sec)", "C3-A2"), ("EEG 2", "C3-A2"), ("EEG", "C4-A1"),
        ("EEG (C4-A1)", "C4-A1"), ("EOG horizontal", "EOG"), ("EOG(L)", "EOG"),
        ("EMG submental", "EMG"), ("ECG", "ECG"), ("EKG", "ECG"), ("THOR RES", "Thor"),
        ("Resp chest", "Thor"), ("ABDO RES", "Abdo"), ("SpO2", "SpO2"), ("SO2", "SpO2"),
        ("  thor   res ", "Thor"), ("Temp rectal", "Temp rectal"), (" Event marker ",
                                                                     "Event marker"),
    ],
)
def test_resolve_channel(label: str, name: str) -> None:
    assert resolve_channel(label) == name


def test_resolve_channel_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="label"):
        resolve_channel(3)  # type: ignore[arg-type]


def test_as_timezone() -> None:
    assert as_timezone("Europe/Amsterdam") == ZoneInfo("Europe/Amsterdam")
    assert as_timezone(UTC) is UTC
    with pytest.raises(ValueError, match="'Mars/Olympus'"):
        as_timezone("Mars/Olympus")
    with pytest.raises(TypeError, match="tz"):
        as_timezone(1)  # type: ignore[arg-type]


def test_real_sleep_edf_hypnogram_has_no_signals(test_data: Path) -> None:
    rec = read_edf(test_data / "sleep-edf" / "SC4001EC-Hypnogram.edf", tz="Europe/Amsterdam")
    assert rec.channels == {}
    assert rec.start == datetime(1989, 4, 24, 16, 13, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert len(rec.annotations) == 154
    assert rec.annotations[0].label == "Sleep stage W"
    assert rec.patient["name"] == "Female 33yr"


# -- errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        read_edf(tmp_path / "nope.edf")


def test_text_file_is_not_edf(tmp_path: Path) -> None:
    path = tmp_path / "notes.edf"
    path.write_text("version,label\n" * 40)
    with pytest.raises(DataFormatError, match=r"notes\.edf, field 'version': not an EDF"):
        read_edf(path)


def test_flipped_version_bytes(edf_plus: Path, tmp_path: Path) -> None:
    bad = _patched(edf_plus, tmp_path / "flipped.edf", 0, b"\x00\xff")
    with pytest.raises(DataFormatError, match=r"flipped\.edf.*not an EDF"):
        read_edf(bad)


def test_flipped_record_count(edf_plus: Path, tmp_path: Path) -> None:
    bad = _patched(edf_plus, tmp_path / "flipped.edf", 236, b"2x")
    with pytest.raises(DataFormatError, match="field 'number of data records'"):
        read_edf(bad)


@pytest.mark.parametrize("keep", [100, 1000, -1])
def test_truncated_file(edf_plus: Path, tmp_path: Path, keep: int) -> None:
    bad = tmp_path / "truncated.edf"
    bad.write_bytes(edf_plus.read_bytes()[:keep])
    with pytest.raises(DataFormatError, match=r"truncated\.edf(, field 'number of data records')?"
                       r": file is (truncated|shorter)"):
        read_edf(bad)


@pytest.mark.parametrize("samples", [b"0       ", b"-100    "])
def test_non_positive_sampling_rate_names_the_channel(
    edf_plus: Path, tmp_path: Path, samples: bytes
) -> None:
    n_signals = 3  # two signals + the annotation signal
    offset = 256 + n_signals * (16 + 80 + 8 * 5 + 80)  # samples per record, signal 0
    bad = _patched(edf_plus, tmp_path / "rate.edf", offset, samples)
    with pytest.raises(DataFormatError, match=r"rate\.edf, field 'EEG Fpz-Cz': sampling rate"):
        read_edf(bad)


def test_zero_record_duration_names_the_channel(edf_plus: Path, tmp_path: Path) -> None:
    bad = _patched(edf_plus, tmp_path / "dur.edf", 244, b"0       ")
    with pytest.raises(DataFormatError, match="channel 'EEG Fpz-Cz' is not positive"):
        read_edf(bad)


def test_impossible_start_date_names_the_field(edf_plus: Path, tmp_path: Path) -> None:
    bad = _patched(edf_plus, tmp_path / "date.edf", 168, b"99.99.99")
    with pytest.raises(DataFormatError, match=r"date\.edf, field 'startdate': start date or "
                       r"time of the recording is not a date; expected 'dd\.mm\.yy' and "
                       r"'hh\.mm\.ss'; got '99\.99\.99 22\.30\.00'"):
        read_edf(bad)
