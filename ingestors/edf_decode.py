"""The project's one EDF, EDF+ and BDF decoder, for whole files and for files still growing.

:class:`EdfDecoder` reads the header (:func:`ingestors._edf_header.read_header`), decides how
each signal's stored (digital) samples become physical values, and decodes data records:
:func:`ingestors.edf.read_edf` reads a whole file with it, and
:class:`ingestors.live_edf.reader.EdfFollower` the records a recorder has completed so far.

Decoding is edflib's (pyedflib's), so that values are bit-identical on files pyedflib reads:
samples are little-endian two's complement, 16-bit in EDF and 24-bit in BDF;
``physical = gain * (offset + digital)`` with ``gain = (pmax - pmin) / (dmax - dmin)`` and
``offset = pmax / gain - dmax``. EDF+ annotations come from the time-stamped annotation lists
(TALs) of the ``EDF Annotations``/``BDF Annotations`` signals: the first TAL of each data
record in the first annotation signal keeps time (its onset is the record's start, and that
of record 0 is the sub-second part of the start), every other text is an annotation with its
onset in seconds since the start.

What real recorders write although the specification forbids it is read, and said in one
:class:`~ingestors.errors.DataQualityWarning` per file (:meth:`EdfDecoder.warn`), with how
it was interpreted (MNE's EDF reader is the model):

* a digital range outside the sample range (16-bit EDF: -32768..32767, 24-bit BDF:
  -8388608..8388607) or empty: the sample range is used; a reversed one within it: swapped.
  The warning gives the resulting scaling.
* physical minimum = physical maximum (no scaling defined): the values are the stored
  digital numbers (gain 1, offset 0) and the unit is left empty, so that nothing downstream
  takes them for microvolts.
* physical dimensions spelled oddly: ``uv``, ``µV`` (Latin-1 or UTF-8), ``μV``, ``mcV``,
  ``microvolt`` -> ``"uV"``; likewise ``"mV"``, ``"V"``, ``"nV"``. A dimension that is no
  unit known here, or none at all, is kept verbatim with the warning.
* number of data records -1 (never finalised) or stale: the file size says how many
  complete records there are; a partial last record is dropped. A file holding fewer
  records than the header declares is truncated and refused.
* EDF+D (discontinuous), or EDF+C whose record times have gaps: the record start times come
  from the TALs and samples are placed at their true times (``record_onsets_s``; nothing is
  filled in); the warning names the gaps. Records that overlap are refused.
* a malformed TAL is skipped (the rest of the file is read); annotation text that is not
  UTF-8 is decoded as Latin-1; the header's own quirks come from
  :attr:`~ingestors._edf_header.EdfHeader.notes`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors._edf_header import EdfHeader, SignalHeader, norm_label, read_header
from ingestors._edf_tal import RecordTimes, read_tals
from ingestors.errors import DataFormatError, DataQualityWarning, format_problem
from ingestors.types import Event

__all__ = ["EdfDecoder", "EdfSignal", "Records", "normalise_unit"]

_SAMPLE_RANGE: Final = {2: (-32768, 32767), 3: (-8388608, 8388607)}
_CHUNK_BYTES: Final = 32 * 2**20  # records are decoded this much at a time
_DAMAGED: Final = "The header is damaged; re-export the recording or drop this channel."

_VOLTS: Final = {
    **dict.fromkeys(("uv", "µv", "μv", "mcv", "microv", "microvolt", "microvolts", "âµv",
                     "î¼v", "\x83êv"), "uV"),
    **dict.fromkeys(("mv", "millivolt", "millivolts"), "mV"),
    **dict.fromkeys(("v", "volt", "volts"), "V"),
    **dict.fromkeys(("nv", "nanovolt", "nanovolts"), "nV"),
}
# Dimensions kept as written without a word (compared lower-cased, spaces removed).
_KNOWN_UNITS: Final = frozenset({
    "%", "bpm", "/min", "1/min", "min^-1", "beats/min", "b/min", "rpm", "g", "mg", "m/s^2",
    "m/s2", "m/s²", "ms^-2", "m/s/s", "degc", "°c", "c", "degf", "°f", "deg", "°", "k",
    "mmhg", "cmh2o", "mbar", "pa", "hpa", "kpa", "l/min", "l/s", "ml/s", "ml", "l", "ohm",
    "kohm", "ω", "kω", "db", "hz", "s", "ms", "lux", "lx", "a", "ma", "ua", "µa", "w",
    "mw", "ppm", "mmol/l", "us", "µs", "m", "cm", "mm", "au", "a.u.", "arb", "arb.", "cnt",
    "count", "counts", "steps", "%sao2", "%spo2", "uv^2", "µv^2", "uv²", "µv²",
})


def normalise_unit(dimension: str) -> tuple[str, str | None]:
    """Return the unit used for ``dimension`` and, if it was odd, what was done.

    Parameters
    ----------
    dimension : str
        The physical dimension as written (``"uV"``, ``"uv"``, ``"µV"``, ``"mcV"``, ``"%"``).

    Returns
    -------
    unit : str
        ``"uV"``, ``"mV"``, ``"V"`` or ``"nV"`` for any spelling of these; else
        ``dimension`` stripped.
    note : str or None
        ``None`` for a usual spelling; else a phrase for the file's warning.
    """
    text = dimension.strip()
    key = norm_label(text)
    if key in _VOLTS:
        unit = _VOLTS[key]
        return unit, None if text == unit else f"physical dimension {text!r} read as {unit!r}"
    if not text:
        return "", "no physical dimension (kept empty)"
    if key in _KNOWN_UNITS:
        return text, None
    return text, f"physical dimension {text!r} is not a unit known here (kept as written)"


@dataclass(frozen=True)
class EdfSignal:
    """One ordinary signal of a file and how its samples become physical values.

    Attributes
    ----------
    index : int
        Position in the file's signal list, annotation signals counted.
    label : str
        The label as written.
    unit : str
        The physical unit of the decoded values (:func:`normalise_unit`).
    sfreq_hz : float
        Sampling rate (samples per record / record duration).
    samples_per_record : int
        Samples of this signal in one data record.
    gain, offset : float
        ``physical = gain * (offset + digital)``.
    physical_min, physical_max : float
        Physical range from the header, as written.
    prefilter, transducer : str
        Prefiltering and transducer texts from the header.
    """

    index: int
    label: str
    unit: str
    sfreq_hz: float
    samples_per_record: int
    gain: float
    offset: float
    physical_min: float
    physical_max: float
    prefilter: str = ""
    transducer: str = ""

    def physical(self, digital: NDArray[np.int32]) -> NDArray[np.float64]:
        """Physical values of ``digital`` samples (any shape), in :attr:`unit`."""
        return self.gain * (self.offset + digital.astype(np.float64))


class Records(NamedTuple):
    """What :meth:`EdfDecoder.read` decoded.

    Attributes
    ----------
    values : dict of int to ndarray of float64
        Physical values by signal index, shape (n_records * samples_per_record,).
    times : RecordTimes or None
        Start offset and (if not contiguous) record start times from the TALs, for EDF+
        files read with ``annotations=True``; else ``None``.
    annotations : list of Event
        EDF+ annotations, onsets in seconds since the recording start.
    """

    values: dict[int, NDArray[np.float64]]
    times: RecordTimes | None
    annotations: list[Event]


def _scaling(sig: SignalHeader, bytes_per_sample: int, unit: str,
             ) -> tuple[float, float, str | None]:
    """Gain, offset and (for a range the specification forbids) what was done."""
    pmin, pmax = sig.physical_min, sig.physical_max
    if pmin == pmax:
        return 1.0, 0.0, (f"physical minimum = physical maximum = {pmin:g}, so no scaling "
                          "is defined: the values are the stored digital numbers (gain 1, "
                          f"offset 0) and the unit ({sig.dimension!r}) is left empty")
    lo, hi = _SAMPLE_RANGE[bytes_per_sample]
    dmin, dmax = sig.digital_min, sig.digital_max
    if lo <= dmin < dmax <= hi:
        gain = (pmax - pmin) / (dmax - dmin)
        return gain, pmax / gain - dmax, None
    sample_range = f"the {8 * bytes_per_sample}-bit sample range [{lo}, {hi}]"
    if lo <= dmax < dmin <= hi:
        what = f"digital minimum {dmin:g} is above the digital maximum {dmax:g}; swapped"
        dmin, dmax = dmax, dmin
    elif dmin == dmax:
        what = f"digital minimum = digital maximum = {dmin:g}; {sample_range} was used instead"
        dmin, dmax = lo, hi
    else:
        what = (f"digital range [{dmin:g}, {dmax:g}] is not within {sample_range}; the sample "
                "range was used instead")
        dmin, dmax = lo, hi
    gain = (pmax - pmin) / (dmax - dmin)
    offset = pmax / gain - dmax
    sign = "-" if offset < 0 else "+"
    return gain, offset, (f"{what}: physical = {gain:.6g} x (digital {sign} {abs(offset):.6g})"
                          + (f" {unit}" if unit else ""))


def _samples(raw: NDArray[np.uint8], bytes_per_sample: int) -> NDArray[np.int32]:
    """Little-endian signed samples of ``raw`` (records x bytes of one signal), flattened."""
    flat = np.ascontiguousarray(raw).reshape(-1, bytes_per_sample)
    if bytes_per_sample == 2:
        return flat.view("<i2").ravel().astype(np.int32)
    padded = np.zeros((flat.shape[0], 4), dtype=np.uint8)
    padded[:, 1:] = flat  # 24 bits in the top of an int32: the arithmetic shift keeps the sign
    return padded.view("<i4").ravel() >> 8


class EdfDecoder:
    """Decodes the data records of one EDF, EDF+, BDF or BDF+ file.

    Parameters
    ----------
    path : path-like
        The file.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    header : EdfHeader
        Its header.
    signals : tuple of EdfSignal
        The ordinary signals (annotation signals left out), in file order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If the header cannot be read (:func:`~ingestors._edf_header.read_header`), a
        signal has no samples per record, or an ordinary signal's sampling rate is not
        positive; the message names the file, the field or channel and the fix.
    """

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            msg = f"EDF file {str(self.path)!r} does not exist; check the path."
            raise FileNotFoundError(msg)
        self.header: EdfHeader = read_header(self.path)
        self._notes: list[str] = list(self.header.notes)
        self._signal_notes: dict[int, list[str]] = {}
        self._slots = np.cumsum([0, *self.header.samples_per_record]) * \
            self.header.bytes_per_sample
        for sig in self.header.signals:
            self._check_layout(sig)
        self.signals = tuple(self._signal(sig) for sig in self.header.signals
                             if not sig.is_annotation)

    def _check_layout(self, sig: SignalHeader) -> None:
        """Refuse what leaves the record layout or a sampling rate undefined."""
        header = self.header
        if sig.samples_per_record <= 0 and sig.is_annotation:
            raise DataFormatError(
                self.path, f"annotation signal {sig.label!r} has no samples per data record",
                field=f"samples per record of {sig.label!r}", expected="a number > 0",
                got=sig.samples_per_record, fix=_DAMAGED)
        if not sig.is_annotation and (sig.samples_per_record <= 0 or header.record_s <= 0):
            raise DataFormatError(
                self.path, f"sampling rate of channel {sig.label!r} is not positive",
                field=sig.label, expected="samples per record > 0 and record duration > 0 s",
                got=f"{sig.samples_per_record} samples per {header.record_s} s", fix=_DAMAGED)

    def _signal(self, sig: SignalHeader) -> EdfSignal:
        uncalibrated = sig.physical_min == sig.physical_max
        unit, unit_note = ("", None) if uncalibrated else normalise_unit(sig.dimension)
        gain, offset, scale_note = _scaling(sig, self.header.bytes_per_sample, unit)
        self._signal_notes[sig.index] = [n for n in (scale_note, unit_note) if n]
        return EdfSignal(sig.index, sig.label, unit, sig.samples_per_record / self.header.record_s,
                         sig.samples_per_record, gain, offset, sig.physical_min,
                         sig.physical_max, sig.prefilter, sig.transducer)

    def note(self, text: str) -> None:
        """Add ``text`` to what :meth:`warn` reports."""
        self._notes.append(text)

    def records_on_disk(self) -> int:
        """Complete data records in the file now, from its size (the header count is not used)."""
        size = self.path.stat().st_size
        return max(size - self.header.header_bytes, 0) // self.header.record_bytes

    def count_records(self) -> int:
        """Complete data records of a finished file, noting a header count that disagrees.

        Raises
        ------
        DataFormatError
            If the file holds fewer records than its header declares (truncated) or none.
        """
        header, size = self.header, self.path.stat().st_size
        n = self.records_on_disk()
        rest = max(size - header.header_bytes, 0) - n * header.record_bytes
        declared = header.n_records
        if 0 <= declared and n < declared:
            raise DataFormatError(
                self.path, "file is truncated", field="number of data records",
                expected=f"{header.header_bytes + declared * header.record_bytes} bytes for "
                f"{declared} data records", got=f"{size} bytes",
                fix="Copy or download the file again.")
        if n == 0:
            raise DataFormatError(
                self.path, "file holds no complete data record", field="number of data records",
                expected=f"at least {header.header_bytes + header.record_bytes} bytes (header "
                f"and one {header.record_bytes}-byte record)", got=f"{size} bytes",
                fix="The recording is empty or was cut off; copy it again.")
        if declared < 0:
            self.note(f"number of data records is {declared} (the file was never finalised); "
                      f"read the {n} complete records the file size holds")
        elif n > declared:
            self.note(f"number of data records says {declared} but the file holds {n} "
                      f"complete records; read all {n}")
        if rest:
            self.note(f"the last data record is incomplete ({rest} of {header.record_bytes} "
                      "bytes); dropped")
        return n

    def read(self, first: int, count: int, picks: Sequence[int] | None = None, *,
             annotations: bool = False) -> Records:
        """Decode ``count`` data records from record ``first`` on.

        Parameters
        ----------
        first, count : int
            Which records (0-based), all of them complete on disk.
        picks : sequence of int, optional
            Indices (:attr:`EdfSignal.index`) of the signals to decode; ``None`` for all.
        annotations : bool
            Also read the EDF+ TALs (annotations, record times); meant for whole files.

        Returns
        -------
        Records

        Raises
        ------
        DataFormatError
            If the file became shorter than these records, or its record times overlap.
        """
        by_index = {s.index: s for s in self.signals}
        chosen = [by_index[i] for i in (picks if picks is not None else by_index)]
        values = {s.index: np.empty(count * s.samples_per_record) for s in chosen}
        tal_signals = [s for s in self.header.signals if s.is_annotation] if annotations \
            and self.header.file_type not in ("EDF", "BDF") else []
        tals: list[list[bytes]] = []
        step = max(1, _CHUNK_BYTES // self.header.record_bytes)
        with self.path.open("rb") as fh:
            for done in range(0, count, step):
                raw = self._raw(fh, first + done, min(step, count - done))
                for sig in chosen:
                    spr = sig.samples_per_record
                    cut = raw[:, self._slots[sig.index]:self._slots[sig.index + 1]]
                    values[sig.index][done * spr:(done + raw.shape[0]) * spr] = \
                        sig.physical(_samples(cut, self.header.bytes_per_sample))
                tals += [[raw[r, self._slots[s.index]:self._slots[s.index + 1]].tobytes()
                          for s in tal_signals] for r in range(raw.shape[0] if tal_signals else 0)]
        if not tal_signals:
            return Records(values, None, [])
        slack = 0.5 / max(s.sfreq_hz for s in self.signals) if self.signals else None
        times, events, notes = read_tals(self.path, tals, self.header.record_s, slack_s=slack)
        self._notes += notes
        return Records(values, times, events)

    def _raw(self, fh: BinaryIO, first: int, n: int) -> NDArray[np.uint8]:
        header = self.header
        fh.seek(header.header_bytes + first * header.record_bytes)
        data = fh.read(n * header.record_bytes)
        if len(data) < n * header.record_bytes:
            raise DataFormatError(
                self.path, "file became shorter while being read",
                field="number of data records",
                expected=f"{first + n} complete data records", got=f"{len(data)} bytes of "
                f"{n * header.record_bytes} from record {first}",
                fix="Another program truncated or replaced the file; read it again.")
        return np.frombuffer(data, dtype=np.uint8).reshape(n, header.record_bytes)

    def warn(self, picks: Sequence[int] | None = None, stacklevel: int = 2) -> None:
        """Issue one :class:`DataQualityWarning` saying all that was tolerated, if anything.

        Parameters
        ----------
        picks : sequence of int, optional
            Signals whose own quirks (unit, scaling) are reported; ``None`` for all.
        stacklevel : int
            As for :func:`warnings.warn`, counted from the caller of this method.
        """
        parts = list(self._notes)
        labels = {s.index: s.label for s in self.header.signals}
        grouped: dict[str, list[str]] = {}
        for index in picks if picks is not None else self._signal_notes:
            for text in self._signal_notes.get(index, []):
                grouped.setdefault(text, []).append(repr(labels[index]))
        parts += [f"{text} ({', '.join(names)})" for text, names in grouped.items()]
        if not parts:
            return
        numbered = "; ".join(f"({k}) {text}" for k, text in enumerate(parts, start=1))
        warnings.warn(
            format_problem(self.path, f"read although it departs from the EDF specification: "
                           f"{numbered}"),
            DataQualityWarning, stacklevel=stacklevel + 1)
