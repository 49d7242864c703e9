"""EDF and BDF files for the reader tests: written with pyedflib, corrupted copies, BDF by hand.

Bad files are made as MNE's ``test_edf_data_broken`` makes them: a good file is written and
bytes of a copy are changed (:func:`patch_fixed`, :func:`patch_signal`,
:func:`set_record_times`). :func:`write_raw` writes EDF or BDF byte by byte from digital
samples, the way a recorder does (the format is simple), so that values can be checked
against a known signal without pyedflib in the loop.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyedflib

FIXED = {"version": (0, 8), "patient": (8, 80), "recording": (88, 80),
         "startdate": (168, 8), "starttime": (176, 8), "header_bytes": (184, 8),
         "reserved": (192, 44), "n_records": (236, 8), "record_s": (244, 8),
         "n_signals": (252, 4)}
SIGNAL_FIELDS = ("label", "transducer", "dimension", "physical_min", "physical_max",
                 "digital_min", "digital_max", "prefilter", "samples", "reserved")
SIGNAL_WIDTHS = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)


def header(label: str, rate: float, unit: str, pmin: float, pmax: float,
           dmin: int = -32768, dmax: int = 32767) -> dict:
    """A pyedflib signal header."""
    return {"label": label, "dimension": unit, "sample_frequency": rate, "physical_min": pmin,
            "physical_max": pmax, "digital_min": dmin, "digital_max": dmax,
            "transducer": "AgAgCl electrode", "prefilter": "HP:0.3Hz LP:35Hz"}


def write_pyedflib(path: Path, signals: list[tuple[dict, np.ndarray]], start: datetime,
                   file_type: int = pyedflib.FILETYPE_EDFPLUS,
                   annotations: tuple[tuple[float, float, str], ...] = ()) -> Path:
    """Write ``(header, physical samples)`` pairs and annotations with pyedflib."""
    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=file_type)
    try:
        writer.setSignalHeaders([h for h, _ in signals])
        writer.setStartdatetime(start)
        writer.writeSamples([x for _, x in signals])
        for onset, duration, text in annotations:
            writer.writeAnnotation(onset, duration, text)
    finally:
        writer.close()
    return path


def n_signals(data: bytes) -> int:
    return int(data[252:256])


def _put(data: bytes, offset: int, width: int, value: bytes) -> bytes:
    if len(value) > width:
        msg = f"{value!r} does not fit in {width} bytes"
        raise ValueError(msg)
    out = bytearray(data)
    out[offset:offset + width] = value.ljust(width, b" ")
    return bytes(out)


def patch_fixed(data: bytes, field: str, value: bytes) -> bytes:
    """Replace a field of the fixed header (space-padded)."""
    offset, width = FIXED[field]
    return _put(data, offset, width, value)


def signal_offset(data: bytes, field: str, signal: int) -> int:
    index = SIGNAL_FIELDS.index(field)
    return 256 + sum(SIGNAL_WIDTHS[:index]) * n_signals(data) + SIGNAL_WIDTHS[index] * signal


def patch_signal(data: bytes, field: str, signal: int, value: bytes) -> bytes:
    """Replace a per-signal header field of signal ``signal`` (space-padded)."""
    width = SIGNAL_WIDTHS[SIGNAL_FIELDS.index(field)]
    return _put(data, signal_offset(data, field, signal), width, value)


def layout(data: bytes) -> tuple[int, list[int], int]:
    """Header bytes, samples per record of each signal, bytes per sample."""
    ns = n_signals(data)
    start = signal_offset(data, "samples", 0)
    spr = [int(data[start + 8 * k:start + 8 * (k + 1)]) for k in range(ns)]
    return 256 * (ns + 1), spr, 3 if data[:1] == b"\xff" else 2


def set_record_times(data: bytes, onsets: list[str]) -> bytes:
    """Rewrite the time-keeping TAL of each data record (the first annotation signal)."""
    head, spr, width = layout(data)
    labels = [data[256 + 16 * k:256 + 16 * (k + 1)].strip() for k in range(len(spr))]
    k = next(i for i, lab in enumerate(labels) if lab in (b"EDF Annotations", b"BDF Annotations"))
    record = width * sum(spr)
    a, b = width * sum(spr[:k]), width * sum(spr[:k + 1])
    out = bytearray(data)
    for r, onset in enumerate(onsets):
        slot = bytes(out[head + r * record + a:head + r * record + b])
        rest = slot[slot.index(b"\x00") + 1:].rstrip(b"\x00")
        new = f"{onset}\x14\x14\x00".encode() + rest + (b"\x00" if rest else b"")
        out[head + r * record + a:head + r * record + b] = new.ljust(b - a, b"\x00")
    return bytes(out)


class RawSignal(NamedTuple):
    """One signal for :func:`write_raw`: header numbers and the digital samples."""

    label: bytes
    dimension: bytes
    physical_min: str
    physical_max: str
    digital_min: int
    digital_max: int
    samples_per_record: int
    digital: np.ndarray


def write_raw(path: Path, signals: list[RawSignal], *, bdf: bool, record_s: str = "1",
              n_records: int | None = None, reserved: bytes = b"",
              start: datetime = datetime(2023, 5, 4, 22, 15, 30)) -> Path:  # noqa: DTZ001
    """Write EDF (16-bit) or BDF (24-bit) samples byte by byte, little-endian.

    ``n_records`` is what the header says (default: the number written; -1 as a recorder
    writes while recording).
    """
    written = signals[0].digital.size // signals[0].samples_per_record
    fixed = (b"\xffBIOSEMI" if bdf else b"0".ljust(8)) + b"X X X X".ljust(80) \
        + b"Startdate X X X X".ljust(80) + start.strftime("%d.%m.%y%H.%M.%S").encode() \
        + str(256 * (len(signals) + 1)).encode().ljust(8) + reserved.ljust(44) \
        + str(written if n_records is None else n_records).encode().ljust(8) \
        + record_s.encode().ljust(8) + str(len(signals)).encode().ljust(4)
    columns = [[s.label for s in signals], [b""] * len(signals),
               [s.dimension for s in signals], [s.physical_min.encode() for s in signals],
               [s.physical_max.encode() for s in signals],
               [str(s.digital_min).encode() for s in signals],
               [str(s.digital_max).encode() for s in signals], [b""] * len(signals),
               [str(s.samples_per_record).encode() for s in signals], [b""] * len(signals)]
    body = b"".join(v.ljust(w) for col, w in zip(columns, SIGNAL_WIDTHS, strict=True)
                    for v in col)
    width = 3 if bdf else 2
    records = []
    for r in range(written):
        for s in signals:
            d = s.digital[r * s.samples_per_record:(r + 1) * s.samples_per_record]
            little = d.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width]
            records.append(little.tobytes())
    path.write_bytes(fixed + body + b"".join(records))
    return path
