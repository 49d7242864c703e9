"""WFDB records as text: ``.hea`` headers and ``ann2rr`` / ``rdann`` annotation dumps.

* ``.hea``: a record line ``name n_signals fs[/counter_freq(base)] n_samples HH:MM:SS
  [D/M/YYYY]``, one line per signal and ``#`` comments;
* ``ann2rr``, one beat per line: ``start_time <TAB> type_of_previous_beat <TAB> RR_seconds
  <TAB> beat_type <TAB> end_time``, times ``[h:]mm:ss.sss``, ``[0]`` before the first beat;
* ``rdann`` dumps of epoch (stage) annotations are read by :mod:`ingestors.wfdb_rdann`.

What differs between databases (clock time zone, beat codes, the name remedies cite) comes
in a :class:`WfdbSource`; :mod:`ingestors.slpdb` reads SLPDB with these parsers. Malformed
files raise :class:`~ingestors.errors.DataFormatError` naming the file, line and field.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.types import NOMINAL_START, TimeSeries, require_aware

__all__ = [
    "Beats", "HeaderFields", "SignalSpec", "WfdbSource", "parse_clock_s", "read_ann2rr",
    "read_header_fields", "read_text",
]

_RR_TOLERANCE_S: Final = 0.002  # times and RR are printed to 1 ms; allow both roundings
_CLOCK = r"(?:(\d+):)?(\d{1,2}):(\d{1,2}\.\d+)"  # rdann/ann2rr: [h:]mm:ss.sss
_CLOCK_RE: Final = re.compile(r" *" + _CLOCK)
_FS_RE: Final = re.compile(r"(\d+(?:\.\d*)?)(?:/(\d+(?:\.\d*)?)(?:\((-?\d+(?:\.\d*)?)\))?)?")
_GAIN_RE: Final = re.compile(r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S+))?")
_HEA_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)")
_HEA_DATE_RE: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")


class WfdbSource(NamedTuple):
    """The database a file comes from, as far as the parsers need to know it."""

    name: str  # PhysioNet's short name, lower case ("slpdb"); remedies cite it
    timezone: tzinfo  # of the clock times in headers
    beat_codes: tuple[str, ...]  # the one-character beat mnemonics that may occur


@dataclass(frozen=True)
class SignalSpec:
    """One signal line of a WFDB header.

    Attributes
    ----------
    description : str
        Signal name as written (``"ECG"``, ``"EEG (C4-A1)"``, ``"Resp (nasal)"``).
    file : str
        Sample file (``"slp01a.dat"``; not part of this text-only copy).
    format : int
        WFDB storage format (212 for every SLPDB signal).
    gain : float
        ADC units per physical unit; negative for inverted signals; 0 in the file means
        WFDB's default 200.
    baseline : int
        ADC value of 0 physical units; defaults to ``adc_zero`` when the file omits it.
    unit : str
        Physical unit; WFDB's default ``"mV"`` when the file omits it.
    adc_bits : int
        ADC resolution in bits.
    adc_zero : int
        ADC value at the middle of the input range.
    """

    description: str
    file: str
    format: int
    gain: float
    baseline: int
    unit: str
    adc_bits: int
    adc_zero: int


class HeaderFields(NamedTuple):
    """What a WFDB header says (see :class:`ingestors.slpdb.SlpdbHeader` for the details)."""

    record: str  # from the record line
    n_signals: int
    fs_hz: float
    n_samples: int  # per signal
    start: datetime | None  # timezone-aware; None when the header gives no date
    clock_time: time  # known even when the date is not
    signals: tuple[SignalSpec, ...]  # in file order
    comments: tuple[str, ...]  # without their "#", in file order


@dataclass(frozen=True, eq=False)
class Beats:
    """Expert-annotated heartbeats of one record (a parsed ``<rec>.rr``).

    Attributes
    ----------
    record : str
        Record name.
    t_s : ndarray of float64, shape (n_beats,)
        Beat times (``end_time`` column) in seconds since ``start``, strictly increasing.
    rr_s : ndarray of float64, shape (n_beats,)
        Interval in seconds ending at each beat. Where ``prev_type`` is ``""`` (the first
        line, ``[0]`` in the file) it is the time since the record start, not an RR interval.
    beat_type : ndarray of str, shape (n_beats,)
        One-character code of each beat, see :data:`ingestors.slpdb.BEAT_CODES`.
    prev_type : ndarray of str, shape (n_beats,)
        Code of the previous beat, ``""`` where there is none.
    start : datetime
        Timezone-aware time of ``t_s == 0`` (the record start).
    start_is_nominal : bool
        True when the header gave no date and ``start`` is :data:`NOMINAL_START`.
    source : str
        File the beats were read from.
    """

    record: str
    t_s: NDArray[np.float64]
    rr_s: NDArray[np.float64]
    beat_type: NDArray[np.str_]
    prev_type: NDArray[np.str_]
    start: datetime
    start_is_nominal: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        require_aware(self.start)
        n = self.t_s.shape[0]
        if any(a.shape != (n,) for a in (self.t_s, self.rr_s, self.beat_type, self.prev_type)):
            msg = (f"Beats {self.record!r}: t_s, rr_s, beat_type and prev_type must be 1-D of "
                   f"equal length; got shapes {self.t_s.shape}, {self.rr_s.shape}, "
                   f"{self.beat_type.shape}, {self.prev_type.shape}")
            raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def normal(self) -> NDArray[np.bool_]:
        """Mask of normal (``N``) beats, shape (n_beats,)."""
        return self.beat_type == "N"

    @property
    def is_interval(self) -> NDArray[np.bool_]:
        """Mask of beats whose ``rr_s`` is a beat-to-beat interval, shape (n_beats,)."""
        return self.prev_type != ""

    @property
    def nn(self) -> NDArray[np.bool_]:
        """Mask of normal-to-normal intervals (this and the previous beat ``N``)."""
        return self.normal & (self.prev_type == "N")

    def rr_series(self, *, normal_only: bool = True) -> TimeSeries:
        """RR intervals as a :class:`TimeSeries` named ``"rr"`` in seconds, timed at their beat.

        Parameters
        ----------
        normal_only : bool
            Keep only normal-to-normal intervals (the usual input of HRV features); with
            False every beat-to-beat interval is kept. The first line's time since the record
            start is never included.

        Returns
        -------
        TimeSeries
            ``t_s`` shape (n_intervals,) in s since ``start``; ``values`` the same shape, in s.
        """
        keep = self.nn if normal_only else self.is_interval
        return TimeSeries("rr", self.t_s[keep], self.rr_s[keep], "s", self.start,
                          self.start_is_nominal)


def read_text(path: Path) -> list[str]:
    """Lines of an ASCII text file without line ends (LF or CRLF)."""
    try:
        text = path.read_text(encoding="ascii").replace("\r\n", "\n")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, "not an ASCII text file", expected="a WFDB text dump",
                              got=f"byte {err.start}", fix="Check that the file was not "
                              "replaced by a binary WFDB file.") from None
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def parse_clock_s(text: str) -> float | None:
    """Seconds of an ``rdann``/``ann2rr`` time ``[h:]mm:ss.sss``; None if it is not one."""
    m = _CLOCK_RE.fullmatch(text)
    if m is None:
        return None
    return (int(m.group(1) or 0) * 60 + int(m.group(2))) * 60 + float(m.group(3))


def read_header_fields(path: Path, source: WfdbSource) -> HeaderFields:
    """Parse a WFDB header (``<rec>.hea``), reading clock times in ``source.timezone``.

    Errors are those listed by :func:`ingestors.slpdb.read_header`.
    """
    numbered = list(enumerate(read_text(path), start=1))
    comments = [ln.lstrip("#").strip() for _, ln in numbered if ln.lstrip().startswith("#")]
    lines = [(i, ln) for i, ln in numbered if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataFormatError(path, "empty header", expected="a WFDB record line", got="no line",
                              fix=f"Restore the header from PhysioNet {source.name}.")
    lineno, first = lines[0]
    tokens, fs_hz = _record_line(path, lineno, first, source)
    n_signals = _header_int(path, tokens[1], "n_signals", lineno, source)
    if len(lines) - 1 != n_signals:
        raise DataFormatError(path, "signal count does not match the signal lines",
                              field="n_signals", expected=f"{n_signals} signal lines",
                              got=len(lines) - 1,
                              fix="Restore the missing lines or correct n_signals on line 1.")
    clock, start = _parse_start(path, tokens[4:], lineno, source.timezone)
    n_samples = _header_int(path, tokens[3], "n_samples", lineno, source)
    signals = tuple(_parse_signal(path, ln, i, source) for i, ln in lines[1:])
    return HeaderFields(tokens[0], n_signals, fs_hz, n_samples, start, clock, signals,
                        tuple(comments))


def _record_line(path: Path, lineno: int, line: str,
                 source: WfdbSource) -> tuple[list[str], float]:
    """Tokens and sampling rate of the record line, checked against the file name."""
    tokens = line.split()
    fs = _FS_RE.fullmatch(tokens[2]) if len(tokens) > 2 else None
    if len(tokens) not in (5, 6) or fs is None or not float(fs.group(1)) > 0:
        raise DataFormatError(path, "record line has the wrong fields", line=lineno,
                              expected="5 or 6 fields: name n_signals fs[/counter_freq(base)] "
                              "n_samples HH:MM:SS [D/M/YYYY], with fs > 0 Hz", got=line,
                              fix=f"Restore the header from PhysioNet {source.name}.")
    if tokens[0] != path.stem:
        raise DataFormatError(path, "record name does not match the file name", line=lineno,
                              field="name", expected=repr(path.stem), got=tokens[0],
                              fix="Rename the file or fix the record line.")
    return tokens, float(fs.group(1))


def _header_int(path: Path, token: str, field: str, line: int, source: WfdbSource) -> int:
    try:
        return int(token)
    except ValueError:
        raise DataFormatError(path, "not an integer", line=line, field=field,
                              expected="an integer", got=token, fix="Restore the header from "
                              f"the PhysioNet {source.name} release.") from None


def _parse_start(path: Path, tokens: list[str], lineno: int,
                 tz: tzinfo) -> tuple[time, datetime | None]:
    clock = _HEA_TIME_RE.fullmatch(tokens[0])
    date = _HEA_DATE_RE.fullmatch(tokens[1]) if len(tokens) > 1 else None
    try:
        if clock is None:
            raise ValueError(tokens[0])
        sec = float(clock.group(3))
        t = time(int(clock.group(1)), int(clock.group(2)), int(sec), round(sec % 1 * 1e6))
        if len(tokens) == 1:
            return t, None
        if date is None:
            raise ValueError(tokens[1])
        year = int(date.group(3))
        day = datetime(year + 1900 if year < 100 else year, int(date.group(2)),
                       int(date.group(1)), tzinfo=tz)
    except ValueError:
        raise DataFormatError(path, "unparsable start time or date", line=lineno,
                              field="start_time start_date", expected="HH:MM:SS D/M/YYYY with "
                              "a valid clock time and calendar date", got=" ".join(tokens),
                              fix="Correct the record line of the header.") from None
    return t, datetime.combine(day.date(), t, tzinfo=tz)


def _parse_signal(path: Path, line: str, lineno: int, source: WfdbSource) -> SignalSpec:
    tokens = line.split()
    if len(tokens) < 9:
        raise DataFormatError(path, "signal line has too few fields", line=lineno,
                              expected="at least 9 space-separated fields: file format "
                              "gain(baseline)/unit bits zero first_value checksum block_size "
                              "description", got=line, fix="Restore the header from the "
                              f"PhysioNet {source.name} release.")
    gain = _GAIN_RE.fullmatch(tokens[2])
    if gain is None:
        raise DataFormatError(path, "unparsable gain", line=lineno, field="gain",
                              expected="gain[(baseline)][/unit], e.g. 4.77778(-477)/mmHg",
                              got=tokens[2], fix="Correct the gain field of this signal line.")
    bits, zero = (_header_int(path, tokens[i], n, lineno, source)
                  for i, n in ((3, "bits"), (4, "zero")))
    value = float(gain.group(1))
    return SignalSpec(
        description=" ".join(tokens[8:]), file=tokens[0],
        format=_header_int(path, tokens[1], "format", lineno, source),
        gain=value if value else 200.0, baseline=int(gain.group(2)) if gain.group(2) else zero,
        unit=gain.group(3) or "mV", adc_bits=bits, adc_zero=zero,
    )


@lru_cache
def _rr_line_re(beat_codes: tuple[str, ...]) -> re.Pattern[str]:
    beat = "[" + re.escape("".join(beat_codes)) + "]"
    return re.compile(rf"^ *{_CLOCK}\t(\[0\]|{beat})\t(\d+\.\d+)\t({beat})\t *{_CLOCK}$",
                      re.MULTILINE)


def read_ann2rr(path: Path, source: WfdbSource, *, start: datetime | None = None,
                record: str | None = None, stacklevel: int = 2) -> Beats:
    """Parse an ``ann2rr`` dump into :class:`Beats`; see :func:`ingestors.slpdb.read_rr`.

    ``stacklevel`` is that of :func:`warnings.warn` as if called here (2: the caller).
    """
    lines = read_text(path)
    h0, m0, s0, prev, rr, types, h1, m1, s1 = _rr_columns(path, lines, source)
    prev_arr, type_arr = np.array(prev, dtype="<U3"), np.array(types, dtype="<U1")
    end_s, rr_s = _clock_columns(h1, m1, s1), _floats(rr)
    start_s = _start_times(h0, m0, s0, list(zip(h1, m1, s1, strict=True)), end_s)
    _check_beats(path, start_s, rr_s, end_s)
    _warn_beats(path, start_s, rr_s, end_s, (prev_arr, type_arr), stacklevel + 1)
    when, nominal = (NOMINAL_START, True) if start is None else (require_aware(start), False)
    return Beats(record=record or path.stem, t_s=end_s, rr_s=rr_s, beat_type=type_arr,
                 prev_type=np.where(prev_arr == "[0]", "", prev_arr).astype("<U1"),
                 start=when, start_is_nominal=nominal, source=str(path))


def _rr_columns(path: Path, lines: list[str], source: WfdbSource) -> list[tuple[str, ...]]:
    """The nine text columns (h, m, s of both times) of an ann2rr dump, every line valid."""
    pattern = _rr_line_re(source.beat_codes)
    rows = pattern.findall("\n".join(lines))
    if len(rows) != len(lines) or not rows:
        if not lines:
            raise DataFormatError(path, "empty file", expected="one line per beat", got="0 lines",
                                  fix="Restore the ann2rr output.")
        lineno = next(i for i, ln in enumerate(lines, 1) if not pattern.fullmatch(ln))
        raise _rr_line_error(path, lineno, lines[lineno - 1], source)
    columns = list(zip(*rows, strict=True))
    if "[0]" in columns[3][1:]:
        lineno = columns[3].index("[0]", 1) + 1
        raise _rr_line_error(path, lineno, lines[lineno - 1], source)
    return columns


def _rr_line_error(path: Path, lineno: int, line: str, source: WfdbSource) -> DataFormatError:
    """Say precisely why one ``.rr`` line does not match the ann2rr format."""
    fields = line.split("\t")
    fix = f"Restore the file from the {source.name} copy or regenerate it with WFDB ann2rr."
    if len(fields) != 5:
        problem = ("wrong delimiter" if len(fields) == 1 and len(line.split()) >= 5
                   else "truncated line" if len(fields) < 5 else "too many fields")
        return DataFormatError(
            path, problem, line=lineno, expected="5 TAB-separated fields: start_time, "
            "type_of_previous_beat, RR_seconds, beat_type, end_time", got=line, fix=fix)
    names = ("start_time", "type_of_previous_beat", "RR_seconds", "beat_type", "end_time")
    for name, value in zip(names, fields, strict=True):
        if name.endswith("time") and parse_clock_s(value) is None:
            expected = "a time h:mm:ss.sss or m:ss.sss"
        elif name == "RR_seconds" and not re.fullmatch(r"\d+\.\d+", value):
            expected = "a finite, positive number of seconds like 0.876"
        elif "beat" in name and value not in source.beat_codes and not (
            value == "[0]" and lineno == 1 and name.startswith("type_of")
        ):
            expected = f"one of {', '.join(source.beat_codes)}" + (
                " (or [0] on line 1 only)" if name.startswith("type_of") else "")
        else:
            continue
        return DataFormatError(path, f"bad {name}", line=lineno, field=name,
                               expected=expected, got=value, fix=fix)
    return DataFormatError(path, "unreadable line", line=lineno, got=line, fix=fix)


def _floats(column: tuple[str, ...]) -> NDArray[np.float64]:
    # map(float) on the strings is several times faster than numpy's str -> float cast
    return np.fromiter(map(float, column), dtype=np.float64, count=len(column))


def _clock_columns(h: tuple[str, ...], m: tuple[str, ...], s: tuple[str, ...]
                   ) -> NDArray[np.float64]:
    hours = _floats(tuple(x or "0" for x in h))
    return (hours * 60 + _floats(m)) * 60 + _floats(s)


def _start_times(h0: tuple[str, ...], m0: tuple[str, ...], s0: tuple[str, ...],
                 ends: list[tuple[str, str, str]], end_s: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """``start_time`` column; it repeats the previous ``end_time``, so only parse the rest."""
    start_s = np.r_[0.0, end_s[:-1]]
    fresh = [0] + [i for i, a in enumerate(zip(h0, m0, s0, strict=True)) if i and a != ends[i - 1]]
    for i in fresh:
        start_s[i] = (float(h0[i] or 0) * 60 + float(m0[i])) * 60 + float(s0[i])
    return start_s


def _check_beats(path: Path, start_s: NDArray[np.float64], rr: NDArray[np.float64],
                 end_s: NDArray[np.float64]) -> None:
    if (rr <= 0).any():
        i = int(np.argmax(rr <= 0))
        raise DataFormatError(path, "RR interval is not positive", line=i + 1,
                              field="RR_seconds", expected="RR > 0 s", got=f"{rr[i]:.3f}",
                              fix="Remove the duplicated beat.")
    bad = np.flatnonzero(np.diff(end_s) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise DataFormatError(path, "beat times are not strictly increasing", line=i + 1,
                              field="end_time", expected=f"a time after {end_s[i - 1]:.3f} s "
                              f"(line {i})", got=f"{end_s[i]:.3f} s",
                              fix="Sort the lines by time and remove duplicated beats.")


def _warn_beats(path: Path, start_s: NDArray[np.float64], rr: NDArray[np.float64],
                end_s: NDArray[np.float64], types: tuple[NDArray[np.str_], NDArray[np.str_]],
                stacklevel: int) -> None:
    """Warn about lines that contradict themselves or do not continue the line before."""
    prev, this = types
    off = np.abs(start_s + rr - end_s) > _RR_TOLERANCE_S
    if off.any():
        warnings.warn(
            f"{path}: {int(off.sum())} lines have start_time + RR_seconds != end_time (first "
            f"at line {int(np.argmax(off)) + 1}); beat times were taken from end_time. "
            "Check that the file was not edited.", DataQualityWarning, stacklevel=stacklevel)
    broken = (np.abs(start_s[1:] - end_s[:-1]) > _RR_TOLERANCE_S) | (prev[1:] != this[:-1])
    if broken.any():
        warnings.warn(
            f"{path}: {int(broken.sum())} lines do not continue the previous line (first at "
            f"line {int(np.argmax(broken)) + 2}): start_time or type_of_previous_beat differ "
            "from the previous beat, so lines are missing. Restore the full ann2rr output.",
            DataQualityWarning, stacklevel=stacklevel)
