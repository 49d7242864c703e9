"""The incremental EDF reader and the channel choice of the live EDF ingestor."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from ingestors.edf import read_edf
from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.live_edf import LIVE_ALIASES, EdfFollower, choose_channels
from tests.ingestors._live_edf_data import (
    HEADER_COUNT,
    record_layout,
    signal_header,
    synth_ecg,
    write_edf,
)

START = datetime(2024, 3, 9, 23, 41, 7)  # noqa: DTZ001 - EDF stores naive clock time
DURATION_S = 30


def _signals(acc_unit: str = "g", hr_label: str = "Pulse") -> list[tuple[dict, np.ndarray]]:
    rng = np.random.default_rng(7)
    ecg, _ = synth_ecg(256, DURATION_S, seed=3)
    scale = {"g": 1.0, "mg": 1000.0, "m/s^2": 9.80665}[acc_unit]
    acc = [rng.normal(0.0, 0.3, 32 * DURATION_S) * scale for _ in range(3)]
    lim = 8.0 * scale
    return [
        (signal_header("ECG I", 256, "mV", -5.0, 5.0), ecg),
        (signal_header(hr_label, 1, "bpm", 0.0, 250.0), 60 + rng.normal(0, 4, DURATION_S)),
        *[(signal_header(f"Acc {ax}", 32, acc_unit, -lim, lim), a)
          for ax, a in zip("XYZ", acc, strict=True)],
    ]


@pytest.fixture()
def night(tmp_path: Path) -> Path:
    return write_edf(tmp_path / "night.edf", _signals(), START)


def test_reader_equals_pyedflib_on_a_finished_file(night: Path) -> None:
    follower = EdfFollower(night)
    assert follower.start == START and follower.file_type == "EDF+C"
    # the EDF Annotations signal is skipped
    assert [s.name for s in follower.signals] == ["ECG", "HR", "AccX", "AccY", "AccZ"]
    blocks = follower.poll()
    assert follower.records_read == DURATION_S and follower.poll() == {}
    rec = read_edf(night, aliases=LIVE_ALIASES, tz="UTC")
    with pyedflib.EdfReader(str(night)) as reader:
        for i, sig in enumerate(follower.signals):
            assert np.array_equal(blocks[sig.index].values, reader.readSignal(i))
            assert np.array_equal(blocks[sig.index].t_s, rec.channels[sig.name].t_s)


def test_growing_file_is_read_record_by_record(night: Path, tmp_path: Path) -> None:
    header_bytes, record_bytes, n = record_layout(night)
    data = night.read_bytes()
    growing = tmp_path / "growing.edf"
    head = bytearray(data[:header_bytes])
    head[HEADER_COUNT] = b"-1      "
    growing.write_bytes(bytes(head))
    follower = EdfFollower(growing)
    assert follower.poll() == {}
    parts = []
    cuts = [0, record_bytes // 3, record_bytes, 4 * record_bytes + 5, 4 * record_bytes + 5,
            n * record_bytes]
    for a, b in zip(cuts, cuts[1:], strict=False):
        with growing.open("ab") as fh:
            fh.write(data[header_bytes + a:header_bytes + b])
        parts.append(follower.poll())
        assert follower.records_read == b // record_bytes  # a partial record waits
    whole = EdfFollower(night).poll()
    for sig in follower.signals:
        got = [p[sig.index] for p in parts if p]
        assert np.array_equal(np.concatenate([g.values for g in got]), whole[sig.index].values)
        assert np.array_equal(np.concatenate([g.t_s for g in got]), whole[sig.index].t_s)


def test_a_stale_record_count_is_accepted(night: Path, tmp_path: Path) -> None:
    data = bytearray(night.read_bytes())
    data[HEADER_COUNT] = b"5       "  # the recorder updated the count long ago
    stale = tmp_path / "stale.edf"
    stale.write_bytes(bytes(data))
    follower = EdfFollower(stale)
    follower.poll()
    assert follower.records_read == DURATION_S


def test_a_record_count_going_backwards_is_an_error(night: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.edf"
    copy.write_bytes(night.read_bytes())
    follower = EdfFollower(copy)
    follower.poll()
    copy.write_bytes(night.read_bytes()[:-3 * record_layout(night)[1]])
    with pytest.raises(DataFormatError, match=r"copy\.edf, field 'number of data records': "
                       r"number of data records went backwards; expected at least the 30 "
                       r"records already read; got '27 records"):
        follower.poll()


def test_not_edf_truncated_and_discontinuous_are_refused(night: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.edf"
    text.write_text("subject 1, night 2\n" * 20)
    with pytest.raises(DataFormatError, match=r"notes\.edf, field 'version': not an EDF/BDF"):
        EdfFollower(text)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(night.read_bytes()[:700])
    with pytest.raises(DataFormatError, match=r"cut\.edf: file is truncated inside the signal "
                       r"headers"):
        EdfFollower(cut)
    data = bytearray(night.read_bytes())
    data[192:197] = b"EDF+D"
    gaps = tmp_path / "gaps.edf"
    gaps.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"gaps\.edf, field 'reserved': discontinuous "
                       r"EDF\+D files cannot be followed live; expected EDF\+C, BDF\+C or "
                       r"plain EDF/BDF; got 'EDF\+D'\. Record continuous EDF\+C, or read"):
        EdfFollower(gaps)
    with pytest.raises(FileNotFoundError, match="missing.edf"):
        EdfFollower(tmp_path / "missing.edf")


@pytest.mark.parametrize("file_type", [pyedflib.FILETYPE_BDFPLUS, pyedflib.FILETYPE_BDF])
def test_a_growing_bdf_file_is_followed(tmp_path: Path, file_type: int) -> None:
    signals = [(dict(h, digital_min=-8388608, digital_max=8388607), x) for h, x in _signals()]
    bdf = write_edf(tmp_path / "night.bdf", signals, START, file_type=file_type)
    data = bdf.read_bytes()
    header_bytes = 256 * (int(data[252:256]) + 1)
    record_bytes = (len(data) - header_bytes) // DURATION_S
    growing = tmp_path / "growing.bdf"
    growing.write_bytes(data[:236] + b"-1      " + data[244:header_bytes])
    follower = EdfFollower(growing)
    assert follower.file_type == ("BDF+C" if file_type == pyedflib.FILETYPE_BDFPLUS else "BDF")
    parts = []
    for cut in (record_bytes + 7, 13 * record_bytes, DURATION_S * record_bytes):
        with growing.open("ab") as fh:
            fh.write(data[growing.stat().st_size:header_bytes + cut])
        parts.append(follower.poll())
    assert follower.records_read == DURATION_S
    with pyedflib.EdfReader(str(bdf)) as reader:
        for i, sig in enumerate(follower.signals):
            values = np.concatenate([p[sig.index].values for p in parts])
            assert np.array_equal(values, reader.readSignal(i))
            assert np.array_equal(np.concatenate([p[sig.index].t_s for p in parts]),
                                  np.arange(values.size) / sig.sfreq_hz)


def test_a_quirky_header_warns_once_when_followed(night: Path, tmp_path: Path) -> None:
    data = bytearray(night.read_bytes())
    n = int(data[252:256])
    dimension = 256 + n * (16 + 80)  # physical dimension of signal 0 (ECG I, mV)
    data[dimension:dimension + 8] = b"millivlt"
    odd = tmp_path / "odd.edf"
    odd.write_bytes(bytes(data))
    with pytest.warns(DataQualityWarning) as caught:
        follower = EdfFollower(odd)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{odd}: read although it departs from the EDF specification: (1) physical dimension "
        "'millivlt' is not a unit known here (kept as written) ('ECG I').")
    with pytest.raises(DataFormatError, match=r"channel 'ECG I' has a physical dimension that "
                       r"is not ECG in V, mV or uV"):
        choose_channels(follower)


def test_a_garbled_start_date_names_the_field(night: Path, tmp_path: Path) -> None:
    data = bytearray(night.read_bytes())
    data[168:176] = b"31.02.xx"
    bad = tmp_path / "date.edf"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"date\.edf, field 'startdate'"):
        EdfFollower(bad)


# -- channels --------------------------------------------------------------------------------


def test_channels_are_recognised_by_label(night: Path) -> None:
    follower = EdfFollower(night)
    plan = choose_channels(follower)  # ECG wins: beat-to-beat data
    assert plan.family == "cardio" and plan.modalities == ("rr",)
    assert plan.ecg is not None and plan.ecg.signal.label == "ECG I"
    plan = choose_channels(follower, hr="pulse", acc=["Acc X", "acc y", "AccZ"])
    assert plan.family == "wearable" and plan.modalities == ("heart_rate", "acceleration")
    assert plan.heart_rate is not None and plan.heart_rate.signal.label == "Pulse"
    assert [a.signal.label for a in plan.acceleration] == ["Acc X", "Acc Y", "Acc Z"]
    assert choose_channels(follower, hr="HR").modalities == ("heart_rate",)


@pytest.mark.parametrize(("unit", "factor"), [("mg", 1e-3), ("m/s^2", 1 / 9.80665)])
def test_acceleration_units_are_converted(tmp_path: Path, unit: str, factor: float) -> None:
    follower = EdfFollower(write_edf(tmp_path / "acc.edf", _signals(unit)[1:], START))
    plan = choose_channels(follower)
    assert plan.modalities == ("heart_rate", "acceleration")
    assert [a.factor for a in plan.acceleration] == [factor] * 3


def test_a_wrong_unit_names_channel_and_dimension(tmp_path: Path) -> None:
    signals = _signals()
    signals[1] = (signal_header("Pulse", 1, "%", 0.0, 100.0), signals[1][1] - 20)
    follower = EdfFollower(write_edf(tmp_path / "unit.edf", signals, START))
    with pytest.raises(DataFormatError, match=r"unit\.edf, field 'physical dimension': channel "
                       r"'Pulse' has a physical dimension that is not heart rate in bpm; "
                       r"expected one of 'bpm'.*got '%'"):
        choose_channels(follower, hr="Pulse")


def test_unknown_channels_and_mixed_families_are_refused(night: Path) -> None:
    follower = EdfFollower(night)
    with pytest.raises(ValueError, match=r"night\.edf: no channel 'SpO2' \(asked for by --hr\);"
                       r" expected one of 'ECG I' \(ECG\), 'Pulse' \(HR\)"):
        choose_channels(follower, hr="SpO2")
    with pytest.raises(ValueError, match="give either --ecg or --hr/--acc"):
        choose_channels(follower, ecg="ECG", hr="Pulse")
    with pytest.raises(ValueError, match="--acc takes three channels"):
        choose_channels(follower, acc=["Acc X", "Acc Y"])


def test_a_file_without_known_channels_says_what_to_pass(tmp_path: Path) -> None:
    # EEG makes a psg session now (tests/ingestors/test_live_edf_psg.py); respiration and
    # an EEG below the front-end's 100 Hz are nothing a session can send
    resp = [(signal_header("Resp chest", 25, "uV", -200, 200), np.zeros(25 * 5)),
            (signal_header("EEG Fpz-Cz", 50, "uV", -200, 200), np.zeros(50 * 5))]
    follower = EdfFollower(write_edf(tmp_path / "resp.edf", resp, START))
    with pytest.raises(ValueError, match=r"resp\.edf: no EEG, ECG, heart rate or 3-axis.*"
                                         r"--eeg, --ecg"):
        choose_channels(follower)
