"""The Heart Rate Measurement characteristic (0x2A37) of the Bluetooth Heart Rate Service.

Layout (Bluetooth SIG, Heart Rate Service 1.0, little-endian)::

    flags    uint8    bit 0: heart rate is uint16 (else uint8)
                      bit 1: sensor contact detected (meaningful only with bit 2)
                      bit 2: sensor contact feature supported
                      bit 3: energy expended present (uint16, kJ)
                      bit 4: RR intervals present (uint16 each, 1/1024 s)
    heart rate        uint8 or uint16, bpm
    energy expended   uint16 (if bit 3)
    RR intervals      uint16 * n (if bit 4), the rest of the payload

:func:`parse_measurement` reads one notification exactly as laid out and refuses anything
that does not fit; :func:`beat_times` places its RR intervals in time.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "RR_TICKS_PER_S",
    "HeartRateMeasurement",
    "beat_times",
    "parse_measurement",
]

#: Heart Rate Service and its measurement characteristic, as bleak spells UUIDs.
HEART_RATE_SERVICE_UUID: Final = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID: Final = "00002a37-0000-1000-8000-00805f9b34fb"
#: RR intervals are sent in units of 1/1024 s.
RR_TICKS_PER_S: Final = 1024

_HR_UINT16: Final = 0x01
_CONTACT_DETECTED: Final = 0x02
_CONTACT_SUPPORTED: Final = 0x04
_ENERGY_PRESENT: Final = 0x08
_RR_PRESENT: Final = 0x10


@dataclass(frozen=True)
class HeartRateMeasurement:
    """One decoded 0x2A37 notification.

    Attributes
    ----------
    heart_rate : int
        Heart rate in bpm, as sent (0..65535; no range check here).
    contact : bool or None
        Sensor contact: True detected, False not detected, None when the sensor does not
        report contact (flag bit 2 clear).
    energy_expended : int or None
        Energy expended in kJ when present (read to find the RR intervals; not used).
    rr_present : bool
        Flag bit 4: the notification has an RR-interval field (possibly empty).
    rr_ticks : tuple of int
        RR intervals in 1/1024 s, oldest first, exactly as sent.
    """

    heart_rate: int
    contact: bool | None
    energy_expended: int | None
    rr_present: bool
    rr_ticks: tuple[int, ...]

    @property
    def rr_s(self) -> tuple[float, ...]:
        """RR intervals in s (``ticks / 1024``, exact in binary floating point)."""
        return tuple(t / RR_TICKS_PER_S for t in self.rr_ticks)


def parse_measurement(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Decode one Heart Rate Measurement notification.

    Parameters
    ----------
    data : bytes-like
        The notification's value.

    Returns
    -------
    HeartRateMeasurement

    Raises
    ------
    ValueError
        If the payload is shorter than its flags announce, or its RR field does not hold
        a whole number of uint16 values; the message gives the byte length and what the
        flags require.
    """
    raw = bytes(data)
    if not raw:
        msg = "heart rate measurement is 0 bytes long; expected at least 2 (flags + uint8 bpm)"
        raise ValueError(msg)
    flags = raw[0]
    hr_size = 2 if flags & _HR_UINT16 else 1
    energy_size = 2 if flags & _ENERGY_PRESENT else 0
    needed = 1 + hr_size + energy_size
    if len(raw) < needed:
        fields = [f"flags, uint{8 * hr_size} bpm"] + (["uint16 energy"] if energy_size else [])
        msg = (f"heart rate measurement is {len(raw)} bytes long; flags 0x{flags:02x} need at "
               f"least {needed} ({', '.join(fields)})")
        raise ValueError(msg)
    heart_rate = raw[1] if hr_size == 1 else struct.unpack_from("<H", raw, 1)[0]
    energy = struct.unpack_from("<H", raw, 1 + hr_size)[0] if energy_size else None
    rest = len(raw) - needed
    rr_present = bool(flags & _RR_PRESENT)
    if not rr_present and rest:
        msg = (f"heart rate measurement is {len(raw)} bytes long; flags 0x{flags:02x} announce "
               f"{needed} (no RR intervals), so {rest} bytes are left over")
        raise ValueError(msg)
    if rest % 2:
        msg = (f"heart rate measurement is {len(raw)} bytes long; its RR field has {rest} "
               f"bytes after {needed} bytes of header, expected a multiple of 2 (uint16 "
               "intervals): the last interval is truncated")
        raise ValueError(msg)
    rr = struct.unpack_from(f"<{rest // 2}H", raw, needed) if rest else ()
    contact = bool(flags & _CONTACT_DETECTED) if flags & _CONTACT_SUPPORTED else None
    return HeartRateMeasurement(int(heart_rate), contact, energy, rr_present,
                                tuple(int(t) for t in rr))


def beat_times(received_s: float, rr_s: Sequence[float],
               last_beat_s: float | None = None) -> list[float]:
    """Times of the beats that end a notification's RR intervals.

    The last interval ends at the notification's receive time; each earlier one ends where
    the next begins, so the beats are found by going backwards through the list. Beats that
    would fall before ``last_beat_s`` (receive delays make notifications arrive unevenly)
    are moved up to it, so the times never decrease from one notification to the next.

    Parameters
    ----------
    received_s : float
        Receive time of the notification, in s since the session start.
    rr_s : sequence of float
        The notification's RR intervals in s, oldest first.
    last_beat_s : float, optional
        Time of the last beat already placed (previous notifications).

    Returns
    -------
    list of float
        One time per interval, non-decreasing and none before ``last_beat_s``.
    """
    times = [received_s] * len(rr_s)
    for i in range(len(rr_s) - 2, -1, -1):
        times[i] = times[i + 1] - rr_s[i + 1]
    if last_beat_s is not None:
        times = [max(t, last_beat_s) for t in times]
    return times
