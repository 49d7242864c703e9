"""The 0x2A37 Heart Rate Measurement parser on hand-built payloads, and beat times."""

from __future__ import annotations

import pytest
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestors.ble.measurement import HeartRateMeasurement, beat_times, parse_measurement


@pytest.mark.parametrize(("data", "expected"), [
    # flags 0x00: uint8 bpm, no contact feature, nothing else
    (b"\x00\x48", HeartRateMeasurement(72, None, None, False, ())),
    # bit 0: uint16 bpm, little-endian (0x012c = 300)
    (b"\x01\x2c\x01", HeartRateMeasurement(300, None, None, False, ())),
    # bits 1-2: contact supported and detected / supported, not detected / detected alone
    (b"\x06\x3c", HeartRateMeasurement(60, True, None, False, ())),
    (b"\x04\x3c", HeartRateMeasurement(60, False, None, False, ())),
    (b"\x02\x3c", HeartRateMeasurement(60, None, None, False, ())),
    # bit 3: energy expended (uint16, 0x2710 = 10000 kJ) comes before the RR intervals
    (b"\x18\x3c\x10\x27\x00\x04\x00\x03",
     HeartRateMeasurement(60, None, 10000, True, (1024, 768))),
    # everything: uint16 bpm, contact detected, energy, three RR intervals
    (b"\x1f\x5a\x00\x01\x00\x01\x04\x02\x04\xff\xff",
     HeartRateMeasurement(90, True, 1, True, (1025, 1026, 65535))),
    # RR flag with an empty field: no intervals in this notification
    (b"\x10\x3c", HeartRateMeasurement(60, None, None, True, ())),
])
def test_known_payloads(data: bytes, expected: HeartRateMeasurement) -> None:
    assert parse_measurement(data) == expected
    assert parse_measurement(bytearray(data)) == expected


def test_rr_intervals_are_in_1024ths_of_a_second() -> None:
    m = parse_measurement(b"\x10\x3c\x00\x04\x00\x03\x01\x00")
    assert m.rr_s == (1.0, 0.75, 1 / 1024)


@pytest.mark.parametrize(("data", "match"), [
    (b"", r"0 bytes long; expected at least 2 \(flags \+ uint8 bpm\)"),
    (b"\x00", r"1 bytes long; flags 0x00 need at least 2 \(flags, uint8 bpm\)"),
    (b"\x01\x3c", r"2 bytes long; flags 0x01 need at least 3 \(flags, uint16 bpm\)"),
    (b"\x08\x3c\x10", r"3 bytes long; flags 0x08 need at least 4 \(flags, uint8 bpm, "
                      r"uint16 energy\)"),
    (b"\x10\x3c\x00\x04\x01", r"5 bytes long; its RR field has 3 bytes after 2 bytes of "
                              r"header, expected a multiple of 2 .* truncated"),
    (b"\x00\x3c\x00", r"3 bytes long; flags 0x00 announce 2 \(no RR intervals\), so 1 bytes "
                      r"are left over"),
])
def test_malformed_payloads_say_what_was_expected(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_measurement(data)


@settings(deadline=None)
@given(hr=st.integers(0, 0xFFFF), contact=st.none() | st.booleans(),
       energy=st.none() | st.integers(0, 0xFFFF),
       rr=st.none() | st.lists(st.integers(0, 0xFFFF), max_size=9))
def test_agrees_with_bumbles_encoder(hr, contact, energy, rr) -> None:
    sent = HeartRateService.HeartRateMeasurement(
        hr, contact, energy, None if rr is None else [t / 1024 for t in rr])
    m = parse_measurement(bytes(sent))
    assert (m.heart_rate, m.contact, m.energy_expended) == (hr, contact, energy)
    assert m.rr_present == (rr is not None) and m.rr_ticks == tuple(rr or ())


def test_beats_go_backwards_from_the_receive_time() -> None:
    assert beat_times(10.0, [0.5, 0.75, 1.0]) == [8.25, 9.0, 10.0]
    assert beat_times(10.0, []) == []
    # a beat before the previous notification's last beat is moved up to it
    assert beat_times(10.0, [0.5, 0.75, 1.0], last_beat_s=8.5) == [8.5, 9.0, 10.0]
    assert beat_times(10.0, [1.0], last_beat_s=9.0) == [10.0]


def test_the_status_line_shows_errors_verbatim() -> None:
    from ingestors.ble import BleStatus

    status = BleStatus(notifications=3, last_hr=61, last_error="BleakError: [org.bluez.Failed]")
    line = status.line().plain
    assert "connecting" in line and "notifications 3" in line and "last HR 61 bpm" in line
    assert line.endswith("last error: BleakError: [org.bluez.Failed]")
