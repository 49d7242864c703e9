"""Incremental reading of an EDF/EDF+ or BDF/BDF+ file that is still being written.

:class:`EdfFollower` reads the header once with the project's one decoder
(:class:`~ingestors.edf_decode.EdfDecoder`, which :func:`~ingestors.edf.read_edf` uses too),
then each :meth:`~EdfFollower.poll` decodes only the data records completed since the last
poll: the number of records on disk follows from the file size, so the header's "number of
data records" may be -1 (still recording) or a stale count; a partial record at the end of
the file waits for the next poll. Samples become physical values exactly as pyedflib
(edflib) computes them, 16-bit for EDF and 24-bit for BDF, and sample ``k`` of a channel is
at ``k / rate`` seconds after the header start, as in :attr:`ingestors.edf.EdfChannel.t_s`.
Header quirks the decoder tolerates (odd units, digital ranges out of range, Latin-1 text)
give one :class:`~ingestors.errors.DataQualityWarning` when the follower is made. EDF+
annotation signals are skipped. Discontinuous EDF+D/BDF+D files are refused: their samples
would need the record times of the annotation signal, and the live pipeline's R-peak
detector and epoch grid assume a continuous signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.edf import DEFAULT_ALIASES, resolve_channel
from ingestors.edf_decode import EdfDecoder, EdfSignal
from ingestors.errors import DataFormatError

__all__ = ["LIVE_ALIASES", "EdfFollower", "LiveSignal", "SignalBlock"]

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
        Physical unit of the values (the header's dimension, microvolts spelled ``"uV"``;
        see :class:`~ingestors.edf_decode.EdfSignal`).
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


class EdfFollower:
    """Reads the data records of a growing EDF/EDF+/BDF/BDF+ file as they are completed.

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
        If the header is not EDF/BDF, is truncated or damaged, or the file is EDF+D/BDF+D.

    Warns
    -----
    DataQualityWarning
        Once, if the header holds what the decoder tolerates (see
        :mod:`ingestors.edf_decode`).
    """

    def __init__(self, path: str | PathLike[str],
                 aliases: Mapping[str, str] = LIVE_ALIASES) -> None:
        self._decoder = EdfDecoder(path)
        self.path = self._decoder.path
        header = self._decoder.header
        if header.file_type.endswith("+D"):
            raise DataFormatError(
                self.path, "discontinuous EDF+D files cannot be followed live",
                field="reserved", expected="EDF+C, BDF+C or plain EDF/BDF",
                got=header.file_type,
                fix="Record continuous EDF+C, or read the finished file with read_edf.",
            )
        self.start = header.clock_start()
        self.record_s = header.record_s
        self.header_bytes = header.header_bytes
        self.record_bytes = header.record_bytes
        self.file_type = header.file_type
        self.signals = [_live(sig, aliases) for sig in self._decoder.signals]
        self.records_read = 0
        self._decoder.warn(stacklevel=2)

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
        values = self._decoder.read(self.records_read, n_new).values
        out = {}
        for sig in self.signals:
            k0 = self.records_read * sig.samples_per_record
            t = np.arange(k0, k0 + values[sig.index].size, dtype=np.float64) / sig.sfreq_hz
            out[sig.index] = SignalBlock(t, values[sig.index])
        self.records_read += n_new
        return out


def _live(sig: EdfSignal, aliases: Mapping[str, str]) -> LiveSignal:
    return LiveSignal(sig.index, sig.label, resolve_channel(sig.label, aliases), sig.unit,
                      sig.samples_per_record, sig.sfreq_hz, sig.gain, sig.offset)
