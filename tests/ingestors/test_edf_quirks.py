"""EDF files as sleep labs' systems write them: read with one warning, or refused by field.

Each bad file is a copy of a good EDF+ file written with pyedflib with some header or data
bytes changed (MNE's ``test_edf_data_broken``); values are checked against what pyedflib
reads from the good file, messages by their text.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from rich.console import Console

from ingestors.edf import EdfRecording, read_edf
from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.inspect import inspect_path
from ingestors.inspect_report import render_inventory
from ingestors.live_edf import EdfFollower
from tests.ingestors._edf_files import (
    header,
    patch_fixed,
    patch_signal,
    set_record_times,
    write_pyedflib,
)

START = datetime(2021, 2, 1, 22, 0, 0)  # noqa: DTZ001 - EDF stores naive clock time
SECONDS = 10
SPEC = "read although it departs from the EDF specification: "


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    """EEG at 100 Hz (16-bit range), EMG at 50 Hz (12-bit range), two annotations."""
    rng = np.random.default_rng(11)
    signals = [(header("EEG Fpz-Cz", 100, "uV", -250, 250), rng.normal(0, 40, 100 * SECONDS)),
               (header("EMG submental", 50, "mV", -5, 5, -2048, 2047),
                rng.normal(0, 1, 50 * SECONDS))]
    return write_pyedflib(tmp_path / "good.edf", signals, START,
                          annotations=((1.0, 30.0, "Sleep stage W"), (4.5, -1, "Lights off")))


def _reference(path: Path, digital: bool = False) -> list[np.ndarray]:
    with pyedflib.EdfReader(str(path)) as ref:
        return [ref.readSignal(i, digital=digital) for i in range(ref.signals_in_file)]


def _copy(good: Path, name: str, change: Callable[[bytes], bytes]) -> Path:
    bad = good.parent / name
    bad.write_bytes(change(good.read_bytes()))
    return bad


def _read_warned(path: Path) -> tuple[EdfRecording, str]:
    """Read ``path``, which must give exactly one warning; its text without the path."""
    with pytest.warns(DataQualityWarning) as caught:
        rec = read_edf(path)
    assert len(caught) == 1, [str(w.message) for w in caught]
    text = str(caught[0].message)
    assert text.startswith(f"{path}: {SPEC}")
    return rec, text.removeprefix(f"{path}: {SPEC}")


# -- digital and physical ranges -----------------------------------------------------------------


@pytest.mark.parametrize(("dmin", "dmax"), [(b"-32769", b"32768"), (b"0", b"65535"),
                                            (b"-32768", b"-32768")])
def test_digital_range_out_of_range_uses_the_sample_range(good: Path, dmin: bytes,
                                                          dmax: bytes) -> None:
    bad = _copy(good, "range.edf", lambda d: patch_signal(
        patch_signal(d, "digital_min", 0, dmin), "digital_max", 0, dmax))
    rec, text = _read_warned(bad)
    # the good file used the whole 16-bit range, so the values are the same
    assert np.array_equal(rec.channels["Fpz-Cz"].data, _reference(good)[0])
    assert np.array_equal(rec.channels["EMG"].data, _reference(good)[1])
    what = ("digital minimum = digital maximum = -32768; the 16-bit sample range [-32768, "
            "32767] was used instead" if dmin == dmax else
            f"digital range [{int(dmin)}, {int(dmax)}] is not within the 16-bit sample range "
            "[-32768, 32767]; the sample range was used instead")
    assert text == f"(1) {what}: physical = 0.00762951 x (digital + 0.5) uV ('EEG Fpz-Cz')."


def test_a_narrow_range_written_out_of_range_is_scaled_by_the_sample_range(good: Path) -> None:
    bad = _copy(good, "wide.edf", lambda d: patch_signal(d, "digital_max", 1, b"40000"))
    rec, text = _read_warned(bad)
    gain = 10 / 65535
    digital = _reference(good, digital=True)[1]
    assert np.array_equal(rec.channels["EMG"].data, gain * ((5 / gain - 32767) + digital))
    assert "digital range [-2048, 40000] is not within the 16-bit" in text


def test_reversed_digital_range_is_swapped(good: Path) -> None:
    bad = _copy(good, "reversed.edf", lambda d: patch_signal(
        patch_signal(d, "digital_min", 1, b"2047"), "digital_max", 1, b"-2048"))
    rec, text = _read_warned(bad)
    assert np.array_equal(rec.channels["EMG"].data, _reference(good)[1])
    assert text == ("(1) digital minimum 2047 is above the digital maximum -2048; swapped: "
                    "physical = 0.002442 x (digital + 0.5) mV ('EMG submental').")


def test_equal_physical_range_gives_the_digital_numbers_without_a_unit(good: Path) -> None:
    bad = _copy(good, "flat.edf", lambda d: patch_signal(d, "physical_max", 1, b"-5"))
    rec, text = _read_warned(bad)
    emg = rec.channels["EMG"]
    assert np.array_equal(emg.data, _reference(good, digital=True)[1])
    assert emg.unit == ""
    assert text == ("(1) physical minimum = physical maximum = -5, so no scaling is defined: "
                    "the values are the stored digital numbers (gain 1, offset 0) and the "
                    "unit ('mV') is left empty ('EMG submental').")


# -- units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "unit", "note"), [
    (b"uv", "uV", "physical dimension 'uv' read as 'uV'"),
    (b"\xb5V", "uV", "physical dimension 'µV' read as 'uV'"),  # Latin-1 micro sign
    ("μV".encode(), "uV", "physical dimension 'Î¼V' read as 'uV'"),  # Greek mu, UTF-8
    (b"mcV", "uV", "physical dimension 'mcV' read as 'uV'"),
    (b" microV", "uV", "physical dimension 'microV' read as 'uV'"),
    (b"V", "V", None), (b"nV", "nV", None), (b"%", "%", None), (b"bpm", "bpm", None),
    (b"", "", "no physical dimension (kept empty)"),
    (b"quanta", "quanta", "physical dimension 'quanta' is not a unit known here (kept as "
     "written)"),
])
def test_units_are_normalised_or_kept_with_a_word(good: Path, written: bytes, unit: str,
                                                  note: str | None) -> None:
    bad = _copy(good, "unit.edf", lambda d: patch_signal(d, "dimension", 0, written))
    if note is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rec = read_edf(bad)
    else:
        rec, text = _read_warned(bad)
        assert text == f"(1) {note} ('EEG Fpz-Cz')."
    assert rec.channels["Fpz-Cz"].unit == unit
    assert np.array_equal(rec.channels["Fpz-Cz"].data, _reference(good)[0])


# -- record count, truncation ---------------------------------------------------------------------


def test_record_count_minus_one_is_read_from_the_file_size(good: Path) -> None:
    bad = _copy(good, "open.edf", lambda d: patch_fixed(d, "n_records", b"-1"))
    rec, text = _read_warned(bad)
    assert rec.duration_s == SECONDS
    assert np.array_equal(rec.channels["EMG"].data, _reference(good)[1])
    assert text == ("(1) number of data records is -1 (the file was never finalised); read the "
                    "10 complete records the file size holds.")


def test_stale_record_count_and_partial_record(good: Path) -> None:
    bad = _copy(good, "stale.edf", lambda d: patch_fixed(d, "n_records", b"4") + b"\x07" * 90)
    rec, text = _read_warned(bad)
    assert np.array_equal(rec.channels["Fpz-Cz"].data, _reference(good)[0])
    assert text == ("(1) number of data records says 4 but the file holds 10 complete records; "
                    "read all 10; (2) the last data record is incomplete (90 of 414 bytes); "
                    "dropped.")


def test_truncated_file_names_file_and_field(good: Path) -> None:
    bad = _copy(good, "cut.edf", lambda d: d[:-100])
    size = good.stat().st_size
    with pytest.raises(DataFormatError) as info:
        read_edf(bad)
    assert str(info.value) == (
        f"{bad}, field 'number of data records': file is truncated; expected {size} bytes "
        f"for 10 data records; got '{size - 100} bytes'. Copy or download the file again.")


def test_file_shorter_than_one_record_is_refused(good: Path) -> None:
    bad = _copy(good, "empty.edf", lambda d: patch_fixed(d[:1024 + 200], "n_records", b"-1"))
    with pytest.raises(DataFormatError, match=r"empty\.edf, field 'number of data records': "
                       r"file holds no complete data record; expected at least 1438 bytes "
                       r"\(header and one 414-byte record\); got '1224 bytes'"):
        read_edf(bad)


# -- header text and numbers ----------------------------------------------------------------------


def test_latin1_header_text_is_decoded_with_the_warning(good: Path) -> None:
    bad = _copy(good, "latin1.edf", lambda d: patch_signal(
        patch_fixed(d, "patient", b"X F X Ren\xe9e_M\xfcller"), "label", 1, b"EMG M\xfcller"))
    rec, text = _read_warned(bad)
    assert list(rec.channels) == ["Fpz-Cz", "EMG Müller"]
    assert rec.patient["name"] == "Renée Müller"
    assert text == ("(1) bytes outside printable ASCII in patient identification ('X F X "
                    "Renée_Müller'), label of signal 1 ('EMG Müller'), decoded as Latin-1 (a "
                    "NUL byte ends a field).")


def test_nul_padding_and_decimal_commas(good: Path) -> None:
    bad = _copy(good, "comma.edf", lambda d: patch_signal(
        patch_signal(d, "physical_min", 0, b"-250,0"), "label", 0, b"EEG Fpz-Cz\x00\x00"))
    rec, text = _read_warned(bad)
    assert np.array_equal(rec.channels["Fpz-Cz"].data, _reference(good)[0])
    assert "label of signal 0 ('EEG Fpz-Cz')" in text
    assert "a decimal comma in physical minimum of 'EEG Fpz-Cz' (-250.0), read as a point" in text


@pytest.mark.parametrize(("field", "signal", "value", "match"), [
    ("physical_min", 0, b"-2.5.0", r"field \"physical minimum of 'EEG Fpz-Cz'\": header field "
     r"is not a number; expected a decimal number; got '-2.5.0'"),
    ("samples", 1, b"fifty", r"field \"samples per record of 'EMG submental'\": header field "
     r"is not a number; expected an integer; got 'fifty'"),
    ("digital_max", 1, b"", r"field \"digital maximum of 'EMG submental'\": header field"),
])
def test_non_numeric_fields_are_refused_by_name(good: Path, field: str, signal: int,
                                               value: bytes, match: str) -> None:
    bad = _copy(good, "nan.edf", lambda d: patch_signal(d, field, signal, value))
    with pytest.raises(DataFormatError, match=r"nan\.edf, " + match):
        read_edf(bad)


def test_header_byte_count_must_match_the_signal_count(good: Path) -> None:
    bad = _copy(good, "count.edf", lambda d: patch_fixed(d, "n_signals", b"2"))
    with pytest.raises(DataFormatError, match=r"count\.edf, field 'number of bytes in header "
                       r"record': header byte count does not match the number of signals; "
                       r"expected 256 x \(1 \+ 2 signals\) = 768; got 1024"):
        read_edf(bad)


def test_negative_sampling_rate_is_refused(good: Path) -> None:
    bad = _copy(good, "rate.edf", lambda d: patch_fixed(d, "record_s", b"-1"))
    with pytest.raises(DataFormatError, match=r"rate\.edf, field 'EEG Fpz-Cz': sampling rate "
                       r"of channel 'EEG Fpz-Cz' is not positive"):
        read_edf(bad)


# -- EDF+D and TALs -------------------------------------------------------------------------------


GAPPED = ["+0", "+1", "+2", "+3", "+4", "+15", "+16", "+17.5", "+18.5", "+19.5"]


@pytest.mark.parametrize("declared", [b"EDF+D", b"EDF+C"])
def test_discontinuous_records_are_placed_at_their_true_times(good: Path,
                                                              declared: bytes) -> None:
    bad = _copy(good, "gaps.edf", lambda d: patch_fixed(set_record_times(d, GAPPED),
                                                        "reserved", declared))
    rec, text = _read_warned(bad)
    assert rec.file_type == declared.decode()
    eeg = rec.channels["Fpz-Cz"]
    assert np.array_equal(eeg.data, _reference(good)[0])  # only recorded samples
    np.testing.assert_allclose(eeg.t_s[[0, 499, 500, 700, 999]], [0, 4.99, 15, 17.5, 20.49])
    np.testing.assert_allclose(rec.timeseries("EMG").t_s[250], 15.0)
    assert rec.duration_s == 20.5
    assert [(e.onset_s, e.label) for e in rec.annotations] == [(1.0, "Sleep stage W"),
                                                               (4.5, "Lights off")]
    assert text == ("(1) the record start times in the TALs leave 2 gap(s) without data, 5 s "
                    "to 15 s, 17 s to 17.5 s after the start; the samples are placed at their "
                    "true times (record_onsets_s) and nothing is filled in.")
    with pytest.raises(DataFormatError, match=r"gaps\.edf, field 'reserved': discontinuous") \
            if declared == b"EDF+D" else warnings.catch_warnings():
        EdfFollower(bad)


def test_edf_plus_d_without_gaps_is_read_silently(good: Path) -> None:
    bad = _copy(good, "d.edf", lambda d: patch_fixed(d, "reserved", b"EDF+D"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_edf(bad)
    assert rec.channels["Fpz-Cz"].record_onsets_s is None
    assert np.array_equal(rec.channels["Fpz-Cz"].t_s, np.arange(1000) / 100)


def test_rounding_in_record_times_is_no_gap(good: Path) -> None:
    # a writer whose TAL times drift by well under a sample (100 Hz here) from the duration
    times = ["+0", "+1.0000003", "+2.0000001", "+2.9999998", "+4.0004", "+5", "+6.0000007",
             "+7", "+8", "+9.0001"]
    bad = _copy(good, "jitter.edf", lambda d: set_record_times(d, times))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_edf(bad)
    assert rec.channels["EMG"].record_onsets_s is None
    assert np.array_equal(rec.channels["EMG"].data, _reference(good)[1])


def test_overlapping_records_are_refused(good: Path) -> None:
    times = ["+0", "+1", "+2", "+2.5", "+4", "+5", "+6", "+7", "+8", "+9"]
    bad = _copy(good, "overlap.edf", lambda d: patch_fixed(set_record_times(d, times),
                                                           "reserved", b"EDF+D"))
    with pytest.raises(DataFormatError, match=r"overlap\.edf, field 'EDF Annotations': data "
                       r"record 3 starts at 2\.5 s, before data record 2 ends at 3 s"):
        read_edf(bad)


def test_malformed_tal_and_latin1_text(good: Path) -> None:
    def change(data: bytes) -> bytes:
        data = data.replace(b"Lights off", b"Lights \xe9t\xe9")
        return data.replace(b"+1\x1530\x14", b"+1\x15x0\x14", 1)  # a duration of "x0"

    rec, text = _read_warned(_copy(good, "tal.edf", change))
    assert [(e.onset_s, e.label) for e in rec.annotations] == [(4.5, "Lights été")]
    assert text == ("(1) malformed TALs in record 0 were skipped (their annotations are lost); "
                    "(2) annotation texts that are not UTF-8 ('Lights été') were decoded as "
                    "Latin-1.")


# -- one warning per file, and what inspect shows -------------------------------------------------


def test_everything_at_once_is_one_warning(good: Path) -> None:
    def change(data: bytes) -> bytes:
        data = patch_signal(patch_signal(data, "dimension", 0, b"\xb5V"), "digital_max", 1,
                            b"2047.0")
        return patch_signal(patch_fixed(data, "n_records", b"-1"), "digital_min", 1, b"4096")

    rec, text = _read_warned(_copy(good, "all.edf", change))
    assert text.startswith("(1) number of data records is -1")
    assert "(2) physical dimension 'µV' read as 'uV' ('EEG Fpz-Cz')" in text
    assert "(3) digital minimum 4096 is above the digital maximum 2047; swapped" in text
    assert rec.channels["Fpz-Cz"].unit == "uV"


def test_asking_for_one_channel_leaves_out_the_others_quirks(good: Path) -> None:
    bad = _copy(good, "one.edf", lambda d: patch_signal(d, "dimension", 1, b"mv"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_edf(bad, ["Fpz-Cz"])
    assert _read_warned(bad)[1] == "(1) physical dimension 'mv' read as 'mV' ('EMG submental')."


def test_inspect_lists_the_warnings_of_each_file(good: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    _copy(good, "lab/night1.edf", lambda d: patch_signal(d, "digital_max", 0, b"32768"))
    _copy(good, "lab/night2.BDF", lambda d: d)  # an EDF under a BDF name: read by content
    _copy(good, "lab/night3.edf", lambda d: d[:2000])
    inv = inspect_path(folder)
    assert [s.subject for s in inv.subjects] == ["night1", "night2", "night3.edf"]
    assert inv.subjects[0].problems == (
        f"{folder / 'night1.edf'}: {SPEC}(1) digital range [-32768, 32768] is not within the "
        "16-bit sample range [-32768, 32767]; the sample range was used instead: physical = "
        "0.00762951 x (digital + 0.5) uV ('EEG Fpz-Cz').",)
    assert inv.subjects[1].problems == ()
    assert "field 'number of data records': file is truncated" in inv.subjects[2].problems[0]
    console = Console(record=True, width=300)
    render_inventory(inv, console)
    assert "the sample range was used instead" in console.export_text()
