"""Generated recordings for the live EDF tests: ECG with known beats, heart rate, acceleration.

:func:`synth_ecg` sums Gaussian P, Q, R, S and T waves at known beat times (RR drawn from
0.6-1.2 s) over baseline wander and white noise; :func:`write_edf` writes a real EDF+ file
with pyedflib; :class:`GrowingCopy` rewrites such a finished file into a followed path as a
recorder would: header first (record count -1), then the data records a few at a time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib

from ingestors._edf_header import read_header

# (offset from the R peak in s, width in s, amplitude in mV)
_WAVES = ((-0.2, 0.025, 0.15), (-0.03, 0.01, -0.12), (0.0, 0.01, 1.0), (0.03, 0.01, -0.25),
          (0.28, 0.05, 0.3))
HEADER_COUNT = slice(236, 244)  # "number of data records" in the fixed header


def synth_ecg(fs: float, duration_s: float, seed: int = 0, noise_mv: float = 0.03,
              wander_mv: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """ECG in mV sampled at ``fs`` and its beat (R peak) times in s."""
    rng = np.random.default_rng(seed)
    beats = []
    t = 0.5
    while t < duration_s - 1.0:
        beats.append(t)
        t += rng.uniform(0.6, 1.2)
    tt = np.arange(int(round(duration_s * fs))) / fs
    x = np.zeros_like(tt)
    for b in beats:
        for off, width, amp in _WAVES:
            c = b + off
            lo, hi = max(int((c - 5 * width) * fs), 0), min(int((c + 5 * width) * fs) + 1, tt.size)
            x[lo:hi] += amp * np.exp(-0.5 * ((tt[lo:hi] - c) / width) ** 2)
    x += (wander_mv * np.sin(2 * np.pi * 0.25 * tt) + 0.1 * np.sin(2 * np.pi * 0.05 * tt + 1)
          + rng.normal(0.0, noise_mv, tt.size))
    return x, np.asarray(beats)


def signal_header(label: str, fs: float, unit: str, lo: float, hi: float) -> dict:
    return {"label": label, "dimension": unit, "sample_frequency": fs, "physical_min": lo,
            "physical_max": hi, "digital_min": -32768, "digital_max": 32767,
            "transducer": "", "prefilter": ""}


def write_edf(path: Path, signals: list[tuple[dict, np.ndarray]], start: datetime,
              file_type: int = pyedflib.FILETYPE_EDFPLUS, annotate: bool = True) -> Path:
    """Write ``(header, samples)`` pairs into an EDF(+) file with 1-s data records."""
    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=file_type)
    try:
        writer.setSignalHeaders([h for h, _ in signals])
        writer.setStartdatetime(start)
        writer.writeSamples([x for _, x in signals])
        if annotate and file_type in (pyedflib.FILETYPE_EDFPLUS, pyedflib.FILETYPE_BDFPLUS):
            writer.writeAnnotation(1.0, -1, "Lights off")
    finally:
        writer.close()
    return path


def record_layout(path: Path) -> tuple[int, int, int]:
    """Header bytes, bytes per data record and number of records of a finished EDF file."""
    header = read_header(path)
    header_bytes = 256 * (len(header.labels) + 1)
    record_bytes = 2 * sum(header.samples_per_record)
    return header_bytes, record_bytes, (path.stat().st_size - header_bytes) // record_bytes


class GrowingCopy:
    """Writes a finished EDF file into ``dst`` step by step, in a background thread.

    The header goes first with "number of data records" = -1; then ``step`` records (and,
    to exercise partial reads, half of the next one unless ``half`` is False) every
    ``pause_s`` seconds.
    """

    def __init__(self, src: Path, dst: Path, step: int = 3, pause_s: float = 0.15,
                 half: bool = True) -> None:
        self.src, self.dst, self.step, self.pause_s = src, dst, step, pause_s
        self.half = half
        self.header_bytes, self.record_bytes, self.n_records = record_layout(src)
        head = bytearray(src.read_bytes()[:self.header_bytes])
        head[HEADER_COUNT] = b"-1      "
        dst.write_bytes(bytes(head))
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> GrowingCopy:
        self._thread.start()
        return self

    def _run(self) -> None:
        data = self.src.read_bytes()[self.header_bytes:]
        written = 0
        with self.dst.open("ab") as fh:
            while written < len(data):
                end = min(written + self.step * self.record_bytes
                          + (self.record_bytes // 2 if self.half else 0), len(data))
                fh.write(data[written:end])
                fh.flush()
                written = end
                time.sleep(self.pause_s)
        self.done.set()

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
