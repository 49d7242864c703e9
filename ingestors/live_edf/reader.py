"""Incremental reading of an EDF/EDF+ file that is still being written.

:class:`EdfFollower` parses the header once (:func:`~ingestors._edf_header.read_header`), then
each :meth:`~EdfFollower.poll` reads only the data records completed since the last poll: the
number of records on disk follows from the file size, so the header's "number of data
records" may be -1 (still recording) or a stale count; a partial record at the end of the
file waits for the next poll. Digital samples become physical values with the header's
ranges exactly as pyedflib (edflib) computes them, ``bitvalue * (offset + digital)`` with
``bitvalue = (pmax - pmin) / (dmax - dmin)`` and ``offset = pmax / bitvalue - dmax``, and
sample ``k`` of a channel is at ``k / rate`` seconds after the header start, as in
:attr:`ingestors.edf.EdfChannel.t_s`. EDF+ annotation signals are skipped. BDF (24-bit) and
discontinuous EDF+D files are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors._edf_header import norm_label, read_header, read_signal_fields
from ingestors.edf import DEFAULT_ALIASES, resolve_channel
from ingestors.errors import DataFormatError

__all__ = ["LIVE_ALIASES", "EdfFollower", "LiveSignal", "SignalBlock"]

_HEADER_UNIT: Final = 256
_ANNOTATION_LABELS: Final = frozenset({"edfannotations", "bdfannotations"})
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                  "DEC")
_STARTDATE: Final = re.compile(r"^Startdate\s+\d{2}-([A-Z]{3})-(\d{4})\b")

#: :data:`~ingestors.edf.DEFAULT_ALIASES` plus the labels of heart rate and acceleration
#: channels of wearables and PSG systems: canonical ``"HR"``, ``"AccX"``, ``"AccY"``,
#: ``"AccZ"``.
LIVE_ALIASES: Final[Mapping[str, str]] = {
    **DEFAULT_ALIASES,
    **{label: "HR" for label in ("HR", "Heart Rate", "HeartRate", "Pulse", "Pulse Rate",
                                 "PR", "Puls", "Heart rate (bpm)")},
    **{f"{prefix}{sep}{axis}": f"Acc{axis}" for axis in "XYZ"
       for prefix in ("Acc", "Accel", "Accelerometer", "ACC") for sep in ("", " ", "_", "-")},
}


@dataclass(frozen=True)
class LiveSignal:
    """One ordinary signal of the followed file.

    Attributes
    ----------
    index : int
        Position in the file's signal list (annotation signals counted).
    label, name : str
        Label as written, and canonical name (:func:`~ingestors.edf.resolve_channel` with
        :data:`LIVE_ALIASES`).
    unit : str
        Physical dimension from the header.
    samples_per_record : int
        Samples of this signal in one data record.
    sfreq_hz : float
        Sampling rate in Hz.
    bitvalue, offset : float
        Digital -> physical: ``bitvalue * (offset + digital)``.
    """

    index: int
    label: str
    name: str
    unit: str
    samples_per_record: int
    sfreq_hz: float
    bitvalue: float
    offset: float


class SignalBlock(NamedTuple):
    """Samples of one signal read by one poll.

    Attributes
    ----------
    t_s : ndarray of float64
        Sample times in s since the header start (``k / sfreq_hz``).
    values : ndarray of float64
        Physical values in the signal's unit.
    """

    t_s: NDArray[np.float64]
    values: NDArray[np.float64]


def _start(path: Path, date: str, time: str, recording_id: str) -> datetime:
    """The header's clock start; EDF+ "Startdate dd-MMM-yyyy" gives the four-digit year."""
    try:
        day, month, yy = (int(p) for p in date.split("."))
        hour, minute, second = (int(p) for p in time.split("."))
        year = 1900 + yy if yy >= 85 else 2000 + yy  # EDF: years 1985-2084
        full = _STARTDATE.match(recording_id)
        if full and full.group(1) in _MONTHS:
            year = int(full.group(2))
        return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - local clock
    except ValueError:
        raise DataFormatError(
            path, "start date or time of the recording is not a date", field="startdate",
            expected="'dd.mm.yy' and 'hh.mm.ss'", got=f"{date} {time}",
            fix="The header is damaged; re-export the recording.",
        ) from None


class EdfFollower:
    """Reads the data records of a growing EDF/EDF+ file as they are completed.

    Parameters
    ----------
    path : path-like
        The file being written.
    aliases : mapping of str to str
        File label -> canonical name (default :data:`LIVE_ALIASES`).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    start : datetime
        Naive clock time of the recording start (the header's; the caller knows its zone).
    record_s : float
        Duration of a data record in s.
    signals : list of LiveSignal
        The ordinary signals, annotation signals left out, in file order.
    records_read : int
        Data records read so far.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If the header is not EDF/EDF+, is truncated or damaged, or the file is BDF or EDF+D.
    """

    def __init__(self, path: str | PathLike[str],
                 aliases: Mapping[str, str] = LIVE_ALIASES) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            msg = f"EDF file {str(self.path)!r} does not exist; check the path."
            raise FileNotFoundError(msg)
        header = read_header(self.path)
        if header.file_type.startswith("BDF"):
            raise DataFormatError(
                self.path, "BDF (24-bit) files cannot be followed live", field="version",
                expected="EDF or EDF+C (16-bit samples)", got=header.file_type,
                fix="Record EDF, or convert the finished file and read it with read_edf.",
            )
        if header.file_type.endswith("+D"):
            raise DataFormatError(
                self.path, "discontinuous EDF+D files cannot be followed live",
                field="reserved", expected="EDF+C or plain EDF", got=header.file_type,
                fix="Record continuous EDF+C.",
            )
        if not header.record_s > 0:
            raise DataFormatError(
                self.path, "duration of a data record is not positive",
                field="duration of a data record", expected="a number of seconds > 0",
                got=header.record_s, fix="The header is damaged; re-export the recording.",
            )
        fields = read_signal_fields(self.path, header)
        self.start = _start(self.path, fields.start_date, fields.start_time,
                            header.recording_id)
        self.record_s = header.record_s
        self.header_bytes = _HEADER_UNIT * (len(header.labels) + 1)
        self.record_bytes = 2 * sum(header.samples_per_record)
        self.file_type = header.file_type
        self.signals: list[LiveSignal] = []
        for i, (label, spr) in enumerate(zip(header.labels, header.samples_per_record,
                                             strict=True)):
            if spr <= 0:
                raise DataFormatError(
                    self.path, f"channel {label!r} has no samples per data record",
                    field=f"samples per record of {label!r}", expected="a number > 0",
                    got=spr, fix="The header is damaged; re-export the recording.",
                )
            if norm_label(label) in _ANNOTATION_LABELS:
                continue
            pmin, pmax = fields.physical_min[i], fields.physical_max[i]
            dmin, dmax = fields.digital_min[i], fields.digital_max[i]
            bitvalue = (pmax - pmin) / (dmax - dmin)
            offset = pmax / bitvalue - dmax if bitvalue != 0 else 0.0
            self.signals.append(LiveSignal(i, label, resolve_channel(label, aliases),
                                           fields.dimensions[i], spr, spr / header.record_s,
                                           bitvalue, offset))
        self._slot = np.cumsum([0, *header.samples_per_record])
        self.records_read = 0

    def records_on_disk(self) -> int:
        """Complete data records in the file now (from its size).

        Raises
        ------
        DataFormatError
            If the file is now shorter than its header or than the records already read.
        """
        size = self.path.stat().st_size
        if size < self.header_bytes:
            raise DataFormatError(
                self.path, "file shrank below its header while being followed",
                expected=f"at least {self.header_bytes} bytes", got=f"{size} bytes",
                fix="Another program truncated or replaced the file; start again.",
            )
        n = (size - self.header_bytes) // self.record_bytes
        if n < self.records_read:
            raise DataFormatError(
                self.path, "number of data records went backwards",
                field="number of data records",
                expected=f"at least the {self.records_read} records already read",
                got=f"{n} records ({size} bytes)",
                fix="Another program truncated or replaced the file; start again.",
            )
        return n

    def poll(self) -> dict[int, SignalBlock]:
        """Read the records completed since the last poll.

        Returns
        -------
        dict of int to SignalBlock
            By signal index (:attr:`LiveSignal.index`); empty when no new record is complete.
        """
        n_new = self.records_on_disk() - self.records_read
        if n_new <= 0:
            return {}
        with self.path.open("rb") as fh:
            fh.seek(self.header_bytes + self.records_read * self.record_bytes)
            raw = fh.read(n_new * self.record_bytes)
        n_new = len(raw) // self.record_bytes  # the file cannot shrink here, but be exact
        digital = np.frombuffer(raw[:n_new * self.record_bytes], dtype="<i2").reshape(n_new, -1)
        out = {}
        for sig in self.signals:
            d = digital[:, self._slot[sig.index]:self._slot[sig.index + 1]].ravel()
            values = sig.bitvalue * (sig.offset + d.astype(np.float64))
            k0 = self.records_read * sig.samples_per_record
            t = np.arange(k0, k0 + d.size, dtype=np.float64) / sig.sfreq_hz
            out[sig.index] = SignalBlock(t, values)
        self.records_read += n_new
        return out
