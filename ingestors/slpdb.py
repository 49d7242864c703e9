"""MIT-BIH Polysomnographic Database (SLPDB) text dumps: headers, RR intervals, stages, events.

A record ``<rec>`` is three text files in one folder:

* ``<rec>.hea``, the WFDB header (sampling rate, start, signals, ``# age sex weight ...``);
* ``<rec>.rr``, WFDB ``ann2rr`` output of the expert beat annotations, one beat per line:
  ``start_time <TAB> type_of_previous_beat <TAB> RR_seconds <TAB> beat_type <TAB> end_time``;
* ``<rec>.an``, WFDB ``rdann`` output of the ``.st`` annotations: one line per 30-s epoch whose
  ``Aux`` text starts with the R&K stage and goes on with the events scored in that epoch.

The header is required; a record without ``.rr`` or ``.an`` still reads, with that part
``None`` and a note in :attr:`SlpdbRecord.problems`, which also lists what is odd but
faithful to the source (late scoring, RR gaps of minutes, doubly annotated beats); warnings
are kept for what the reader repaired. Malformed files raise
:class:`~ingestors.errors.DataFormatError` naming the file, the 1-based line and the field.
Recordings were made in Boston (Beth Israel Hospital), so clock times are read in
``America/New_York``.

References
----------
Ichimaru Y, Moody GB. Development of the polysomnographic database on CD-ROM.
Psychiatry Clin Neurosci 1999;53:175-177. PhysioNet ``slpdb`` 1.0.0 (ODC-By 1.0).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from os import PathLike
from pathlib import Path
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.types import EPOCH_S, NOMINAL_START, Event, Hypnogram, TimeSeries, require_aware
from models.stages import Stage, StageCodeError, parse_stage, parse_stages

__all__ = [
    "BEAT_CODES",
    "EVENT_CODES",
    "SLPDB_TIMEZONE",
    "STAGE_CODES",
    "Beats",
    "SignalSpec",
    "SlpdbAnnotations",
    "SlpdbHeader",
    "SlpdbRecord",
    "list_records",
    "read_annotations",
    "read_header",
    "read_record",
    "read_rr",
    "read_slpdb",
    "subject_of",
]

#: Time zone of the Beth Israel Hospital sleep laboratory, Boston.
SLPDB_TIMEZONE: Final = ZoneInfo("America/New_York")

#: Stage codes (first ``Aux`` token of ``.an``), as documented by the database.
STAGE_CODES: Final[Mapping[str, str]] = {
    "W": "wake", "1": "sleep stage 1", "2": "sleep stage 2", "3": "sleep stage 3",
    "4": "sleep stage 4", "R": "REM sleep", "MT": "movement time",
    "M": "movement time (written 'M' in slp45)",
}
#: Event codes (later ``Aux`` tokens of ``.an``). ``LL``/``LLL``/``LLLL`` occur in slp16, slp59,
#: slp60 and slp61 but are not in the database documentation; they are read as repeated ``L``.
EVENT_CODES: Final[Mapping[str, str]] = {
    "H": "hypopnea", "HA": "hypopnea with arousal", "OA": "obstructive apnea",
    "X": "obstructive apnea with arousal", "CA": "central apnea",
    "CAA": "central apnea with arousal", "L": "leg movements",
    "LA": "leg movements with arousal", "A": "arousal",
    "LL": "leg movements (undocumented code 'LL', read as repeated L)",
    "LLL": "leg movements (undocumented code 'LLL', read as repeated L)",
    "LLLL": "leg movements (undocumented code 'LLLL', read as repeated L)",
}
#: Beat types of ``.rr`` (WFDB annotation mnemonics used by SLPDB).
BEAT_CODES: Final[Mapping[str, str]] = {
    "N": "normal beat", "S": "supraventricular premature or ectopic beat",
    "V": "premature ventricular contraction", "F": "fusion of ventricular and normal beat",
    "Q": "unclassifiable beat",
}

_RR_TOLERANCE_S: Final = 0.002  # times and RR are printed to 1 ms; allow both roundings
_LONG_RR_S: Final = 3.0  # longer: beats missing from the annotation (signal loss)
_SHORT_RR_S: Final = 0.2  # shorter (> 300 bpm): a beat annotated twice
_CLOCK = r"(?:(\d+):)?(\d{1,2}):(\d{1,2}\.\d+)"  # rdann/ann2rr: [h:]mm:ss.sss
_CLOCK_RE: Final = re.compile(r" *" + _CLOCK)
_BEAT = "[" + "".join(BEAT_CODES) + "]"
_RR_LINE: Final = re.compile(
    rf"^ *{_CLOCK}\t(\[0\]|{_BEAT})\t(\d+\.\d+)\t({_BEAT})\t *{_CLOCK}$", re.MULTILINE
)
_FS_RE: Final = re.compile(r"(\d+(?:\.\d*)?)(?:/(\d+(?:\.\d*)?)(?:\((-?\d+(?:\.\d*)?)\))?)?")
_GAIN_RE: Final = re.compile(r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S+))?")
_HEA_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)")
_HEA_DATE_RE: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_SUBJECT_INFO_RE: Final = re.compile(r"(\d+|x)\s+([MFx])\s+(\d+(?:\.\d+)?|x)\b.*")
_RECORD_RE: Final = re.compile(r"slp\d{2}[a-z]?")
_SPLIT_NIGHT_RE: Final = re.compile(r"(slp\d{2})[ab]")


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


@dataclass(frozen=True)
class SlpdbHeader:
    """A parsed ``<rec>.hea``.

    Attributes
    ----------
    record : str
        Record name from line 1 (equals the file stem).
    n_signals : int
        Number of signals.
    fs_hz : float
        Sampling rate in Hz (250 for all of SLPDB).
    n_samples : int
        Samples per signal.
    start : datetime or None
        Timezone-aware recording start in :data:`SLPDB_TIMEZONE`; ``None`` when the header
        gives no date (slp67x). Two-digit years are 19xx, as WFDB reads them (slp32: ``89``).
    clock_time : datetime.time
        Clock time of the start, known even when the date is not.
    signals : tuple of SignalSpec
        One per signal, in file order.
    age : int or None
        Age in years from the first comment; ``None`` where written ``x``.
    sex : str or None
        ``"M"`` or ``"F"``; ``None`` where written ``x``.
    weight : float or None
        Body weight as written. The database does not document its unit; values 89-152
        suggest kilograms. ``None`` where written ``x``.
    comments : tuple of str
        Every comment line without its ``#``, in file order (slp37 has a BP calibration note).
    source : str
        File the header was read from.
    """

    record: str
    n_signals: int
    fs_hz: float
    n_samples: int
    start: datetime | None
    clock_time: time
    signals: tuple[SignalSpec, ...]
    age: int | None
    sex: str | None
    weight: float | None
    comments: tuple[str, ...]
    source: str = ""

    @property
    def duration_s(self) -> float:
        """Recording length in seconds, ``n_samples / fs_hz``."""
        return self.n_samples / self.fs_hz


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
        One-character code of each beat, see :data:`BEAT_CODES`.
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
            msg = (
                f"Beats {self.record!r}: t_s, rr_s, beat_type and prev_type must be 1-D of equal "
                f"length; got shapes {self.t_s.shape}, {self.rr_s.shape}, "
                f"{self.beat_type.shape}, {self.prev_type.shape}"
            )
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
        return TimeSeries(
            "rr", self.t_s[keep], self.rr_s[keep], "s", self.start, self.start_is_nominal
        )


class SlpdbAnnotations(NamedTuple):
    """Result of :func:`read_annotations`.

    Attributes
    ----------
    hypnogram : Hypnogram
        Stages from the first to the last annotated epoch; gaps are ``Stage.UNSCORED`` with
        code ``""``. ``codes`` holds the source codes (``"4"``, ``"MT"``, ``"M"`` ...).
    events : tuple of Event
        One per event token per epoch, ``onset_s`` from the record start.
    first_epoch : int
        Index of the hypnogram's first epoch counted from the record start.
    gaps : tuple of (int, int)
        ``(first_epoch, n_epochs)`` of every unannotated run filled with ``Stage.UNSCORED``,
        epochs counted from the record start.
    """

    hypnogram: Hypnogram
    events: tuple[Event, ...]
    first_epoch: int
    gaps: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class SlpdbRecord:
    """One SLPDB record: header, beats, hypnogram and events.

    Attributes
    ----------
    record : str
        Record name (``"slp01a"``).
    subject : str
        Subject id (:func:`subject_of`): slp01a/slp01b are ``"slp01"``, slp02a/slp02b
        ``"slp02"``; every other record is its own subject. Split by this, not by record.
    header : SlpdbHeader
        The parsed header.
    beats : Beats or None
        ``None`` when ``<rec>.rr`` is missing.
    hypnogram : Hypnogram or None
        ``None`` when ``<rec>.an`` is missing.
    events : tuple of Event
        Empty when ``<rec>.an`` is missing.
    problems : tuple of str
        Missing parts, filled gaps, partial scoring and implausible RR intervals, one
        sentence each; empty when nothing is odd.
    """

    record: str
    subject: str
    header: SlpdbHeader
    beats: Beats | None
    hypnogram: Hypnogram | None
    events: tuple[Event, ...]
    problems: tuple[str, ...]


def subject_of(record: str) -> str:
    """Subject id of an SLPDB record: ``"slp01a"`` -> ``"slp01"``, ``"slp67x"`` -> ``"slp67x"``.

    Raises
    ------
    ValueError
        If ``record`` is not an SLPDB record name (``slp`` + two digits + optional letter).
    """
    if not isinstance(record, str) or not _RECORD_RE.fullmatch(record):
        msg = (
            f"`record` must be an SLPDB record name like 'slp01a' or 'slp32'; got {record!r}. "
            "Pass the file stem without extension."
        )
        raise ValueError(msg)
    split = _SPLIT_NIGHT_RE.fullmatch(record)
    return split.group(1) if split else record


def _read_text(path: Path) -> list[str]:
    """Lines of an ASCII text file without line ends (LF or CRLF)."""
    try:
        text = path.read_text(encoding="ascii").replace("\r\n", "\n")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, "not an ASCII text file", expected="a WFDB text dump", got=f"byte {err.start}",
            fix="Check that the file was not replaced by a binary WFDB file.",
        ) from None
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _clock_s(text: str) -> float | None:
    m = _CLOCK_RE.fullmatch(text)
    if m is None:
        return None
    return (int(m.group(1) or 0) * 60 + int(m.group(2))) * 60 + float(m.group(3))


def _header_int(path: Path, token: str, field: str, line: int) -> int:
    try:
        return int(token)
    except ValueError:
        raise DataFormatError(
            path, "not an integer", line=line, field=field, expected="an integer", got=token,
            fix="Restore the header from the PhysioNet slpdb release.",
        ) from None


def _parse_start(path: Path, tokens: list[str], lineno: int) -> tuple[time, datetime | None]:
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
                       int(date.group(1)), tzinfo=SLPDB_TIMEZONE)
    except ValueError:
        raise DataFormatError(
            path, "unparsable start time or date", line=lineno, field="start_time start_date",
            expected="HH:MM:SS D/M/YYYY with a valid clock time and calendar date",
            got=" ".join(tokens), fix="Correct the record line of the header.",
        ) from None
    return t, datetime.combine(day.date(), t, tzinfo=SLPDB_TIMEZONE)


def _parse_signal(path: Path, line: str, lineno: int) -> SignalSpec:
    tokens = line.split()
    if len(tokens) < 9:
        raise DataFormatError(
            path, "signal line has too few fields", line=lineno, expected=(
                "at least 9 space-separated fields: file format gain(baseline)/unit bits zero "
                "first_value checksum block_size description"
            ), got=line, fix="Restore the header from the PhysioNet slpdb release.",
        )
    gain = _GAIN_RE.fullmatch(tokens[2])
    if gain is None:
        raise DataFormatError(
            path, "unparsable gain", line=lineno, field="gain",
            expected="gain[(baseline)][/unit], e.g. 4.77778(-477)/mmHg", got=tokens[2],
            fix="Correct the gain field of this signal line.",
        )
    bits, zero = (_header_int(path, tokens[i], n, lineno) for i, n in ((3, "bits"), (4, "zero")))
    value = float(gain.group(1))
    return SignalSpec(
        description=" ".join(tokens[8:]), file=tokens[0],
        format=_header_int(path, tokens[1], "format", lineno), gain=value if value else 200.0,
        baseline=int(gain.group(2)) if gain.group(2) else zero,
        unit=gain.group(3) or "mV", adc_bits=bits, adc_zero=zero,
    )


def _subject_info(comments: list[str]) -> tuple[int | None, str | None, float | None]:
    m = _SUBJECT_INFO_RE.fullmatch(comments[0]) if comments else None
    if m is None:
        return None, None, None
    age, sex, weight = m.groups()
    return (None if age == "x" else int(age), None if sex == "x" else sex,
            None if weight == "x" else float(weight))


def read_header(path: str | PathLike[str]) -> SlpdbHeader:
    """Read an SLPDB WFDB header (``<rec>.hea``).

    Parameters
    ----------
    path : str or PathLike
        The ``.hea`` file.

    Returns
    -------
    SlpdbHeader
        Record line, signal lines and the ``# age sex weight ...`` comment.

    Raises
    ------
    DataFormatError
        On a wrong field count, an unparsable rate, time or date, a signal count that does
        not match the signal lines, or a record name that differs from the file name.
    """
    path = Path(path)
    numbered = list(enumerate(_read_text(path), start=1))
    comments = [ln.lstrip("#").strip() for _, ln in numbered if ln.lstrip().startswith("#")]
    lines = [(i, ln) for i, ln in numbered if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataFormatError(path, "empty header", expected="a WFDB record line",
                              got="no line", fix="Restore the header from PhysioNet slpdb.")
    lineno, first = lines[0]
    tokens = first.split()
    fs = _FS_RE.fullmatch(tokens[2]) if len(tokens) > 2 else None
    if len(tokens) not in (5, 6) or fs is None or not float(fs.group(1)) > 0:
        raise DataFormatError(
            path, "record line has the wrong fields", line=lineno,
            expected="5 or 6 fields: name n_signals fs[/counter_freq(base)] n_samples "
            "HH:MM:SS [D/M/YYYY], with fs > 0 Hz", got=first,
            fix="Restore the header from PhysioNet slpdb.",
        )
    if tokens[0] != path.stem:
        raise DataFormatError(
            path, "record name does not match the file name", line=lineno, field="name",
            expected=repr(path.stem), got=tokens[0], fix="Rename the file or fix the record line.",
        )
    n_signals = _header_int(path, tokens[1], "n_signals", lineno)
    if len(lines) - 1 != n_signals:
        raise DataFormatError(
            path, "signal count does not match the signal lines", field="n_signals",
            expected=f"{n_signals} signal lines", got=len(lines) - 1,
            fix="Restore the missing lines or correct n_signals on line 1.",
        )
    clock, start = _parse_start(path, tokens[4:], lineno)
    age, sex, weight = _subject_info(comments)
    return SlpdbHeader(
        record=tokens[0], n_signals=n_signals, fs_hz=float(fs.group(1)),
        n_samples=_header_int(path, tokens[3], "n_samples", lineno), start=start,
        clock_time=clock, signals=tuple(_parse_signal(path, ln, i) for i, ln in lines[1:]),
        age=age, sex=sex, weight=weight, comments=tuple(comments), source=str(path),
    )


def _rr_line_error(path: Path, lineno: int, line: str) -> DataFormatError:
    """Say precisely why one ``.rr`` line does not match the ann2rr format."""
    fields = line.split("\t")
    fix = "Restore the file from the slpdb copy or regenerate it with WFDB ann2rr."
    if len(fields) != 5:
        problem = ("wrong delimiter" if len(fields) == 1 and len(line.split()) >= 5
                   else "truncated line" if len(fields) < 5 else "too many fields")
        return DataFormatError(
            path, problem, line=lineno, expected="5 TAB-separated fields: start_time, "
            "type_of_previous_beat, RR_seconds, beat_type, end_time", got=line, fix=fix)
    names = ("start_time", "type_of_previous_beat", "RR_seconds", "beat_type", "end_time")
    for name, value in zip(names, fields, strict=True):
        if name.endswith("time") and _clock_s(value) is None:
            expected = "a time h:mm:ss.sss or m:ss.sss"
        elif name == "RR_seconds" and not re.fullmatch(r"\d+\.\d+", value):
            expected = "a finite, positive number of seconds like 0.876"
        elif "beat" in name and value not in BEAT_CODES and not (
            value == "[0]" and lineno == 1 and name.startswith("type_of")
        ):
            expected = f"one of {', '.join(BEAT_CODES)}" + (
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
                 end_s: NDArray[np.float64], prev: NDArray[np.str_],
                 types: NDArray[np.str_]) -> None:
    if (rr <= 0).any():
        i = int(np.argmax(rr <= 0))
        raise DataFormatError(path, "RR interval is not positive", line=i + 1,
                              field="RR_seconds", expected="RR > 0 s", got=f"{rr[i]:.3f}",
                              fix="Remove the duplicated beat.")
    bad = np.flatnonzero(np.diff(end_s) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise DataFormatError(
            path, "beat times are not strictly increasing", line=i + 1, field="end_time",
            expected=f"a time after {end_s[i - 1]:.3f} s (line {i})", got=f"{end_s[i]:.3f} s",
            fix="Sort the lines by time and remove duplicated beats.",
        )
    off = np.abs(start_s + rr - end_s) > _RR_TOLERANCE_S
    if off.any():
        warnings.warn(
            f"{path}: {int(off.sum())} lines have start_time + RR_seconds != end_time (first "
            f"at line {int(np.argmax(off)) + 1}); beat times were taken from end_time. "
            "Check that the file was not edited.", DataQualityWarning, stacklevel=3)
    broken = (np.abs(start_s[1:] - end_s[:-1]) > _RR_TOLERANCE_S) | (prev[1:] != types[:-1])
    if broken.any():
        warnings.warn(
            f"{path}: {int(broken.sum())} lines do not continue the previous line (first at "
            f"line {int(np.argmax(broken)) + 2}): start_time or type_of_previous_beat differ "
            "from the previous beat, so lines are missing. Restore the full ann2rr output.",
            DataQualityWarning, stacklevel=3)


def read_rr(path: str | PathLike[str], *, start: datetime | None = None,
            record: str | None = None) -> Beats:
    """Read an SLPDB ``ann2rr`` dump (``<rec>.rr``) into :class:`Beats`.

    Parameters
    ----------
    path : str or PathLike
        The ``.rr`` file.
    start : datetime or None
        Timezone-aware record start; ``None`` uses :data:`NOMINAL_START` and marks it nominal.
    record : str or None
        Record name; defaults to the file stem.

    Returns
    -------
    Beats
        One entry per line: beat time (``end_time``), RR interval and beat types.

    Raises
    ------
    DataFormatError
        On a truncated line, a wrong delimiter, a bad time, RR or beat code, ``[0]`` after
        line 1, a non-positive RR or beat times that do not increase.

    Warns
    -----
    DataQualityWarning
        When ``start_time + RR_seconds`` differs from ``end_time`` by more than 2 ms, or a
        line does not continue the previous one (lines missing).
    """
    path = Path(path)
    lines = _read_text(path)
    text = "\n".join(lines)
    rows = _RR_LINE.findall(text)
    if len(rows) != len(lines) or not rows:
        if not lines:
            raise DataFormatError(path, "empty file", expected="one line per beat", got="0 lines",
                                  fix="Restore the ann2rr output.")
        lineno = next(i for i, ln in enumerate(lines, 1) if not _RR_LINE.fullmatch(ln))
        raise _rr_line_error(path, lineno, lines[lineno - 1])
    h0, m0, s0, prev, rr, types, h1, m1, s1 = zip(*rows, strict=True)
    if "[0]" in prev[1:]:
        lineno = prev.index("[0]", 1) + 1
        raise _rr_line_error(path, lineno, lines[lineno - 1])
    prev_arr, type_arr = np.array(prev, dtype="<U3"), np.array(types, dtype="<U1")
    end_s, rr_s = _clock_columns(h1, m1, s1), _floats(rr)
    start_s = _start_times(h0, m0, s0, list(zip(h1, m1, s1, strict=True)), end_s)
    _check_beats(path, start_s, rr_s, end_s, prev_arr, type_arr)
    when, nominal = (NOMINAL_START, True) if start is None else (require_aware(start), False)
    return Beats(
        record=record or path.stem, t_s=end_s, rr_s=rr_s, beat_type=type_arr,
        prev_type=np.where(prev_arr == "[0]", "", prev_arr).astype("<U1"), start=when,
        start_is_nominal=nominal, source=str(path),
    )


def _an_fields(path: Path, lineno: int, line: str, fs_hz: float) -> tuple[int, list[str]]:
    """Sample number and ``Aux`` tokens of one ``.an`` line, validated."""
    prefix, tab, aux = line.partition("\t")
    fields, tokens = prefix.split(), aux.split()
    fix = "Regenerate the file with `rdann -r <rec> -a st` or restore it."
    if not tab or len(fields) != 6 or not tokens:
        problem = ("wrong delimiter: no TAB before Aux" if not tab and len(fields) > 6
                   else "truncated line" if len(fields) < 6 or not tokens
                   else "wrong number of fields before the TAB")
        raise DataFormatError(
            path, problem, line=lineno, expected="Elapsed time, Sample #, Type, Sub, Chan, Num "
            "separated by spaces, then a TAB and Aux starting with the stage", got=line, fix=fix)
    elapsed = _clock_s(fields[0])
    if elapsed is None:
        raise DataFormatError(path, "bad time", line=lineno, field="Elapsed time",
                              expected="h:mm:ss.sss or m:ss.sss", got=fields[0], fix=fix)
    if not fields[1].isdigit():
        raise DataFormatError(path, "bad sample number", line=lineno, field="Sample #",
                              expected="a non-negative integer", got=fields[1], fix=fix)
    sample = int(fields[1])
    if abs(elapsed - sample / fs_hz) > 1 / fs_hz + 1e-3:
        raise DataFormatError(
            path, "Elapsed time and Sample # disagree", line=lineno, field="Sample #",
            expected=f"sample {elapsed * fs_hz:.0f} for {fields[0]} at {fs_hz:g} Hz",
            got=sample, fix="Pass the header's sampling rate as `fs_hz`, or restore the file.")
    return sample, tokens


def _check_aux(path: Path, lineno: int, tokens: list[str]) -> None:
    try:
        parse_stage(tokens[0], "slpdb")
    except StageCodeError:
        raise DataFormatError(
            path, "unknown stage code", line=lineno, field="Aux",
            expected=f"one of {', '.join(STAGE_CODES)} as the first Aux token", got=tokens[0],
            fix="Correct the stage in the file; SLPDB uses only these codes.",
        ) from None
    unknown = [t for t in tokens[1:] if t not in EVENT_CODES]
    if unknown:
        raise DataFormatError(
            path, "unknown event code", line=lineno, field="Aux",
            expected=f"event codes among {', '.join(EVENT_CODES)} after the stage",
            got=unknown[0], fix="Correct the event code in the file.",
        )


def _epoch_index(path: Path, lineno: int, sample: int, previous: tuple[int, int] | None,
                 fs_hz: float) -> int:
    """Epoch (from the record start) that an annotation at ``sample`` opens, validated."""
    if previous is not None and sample <= previous[0]:
        raise DataFormatError(
            path, "annotation samples are not strictly increasing", line=lineno,
            field="Sample #", expected=f"a sample after {previous[0]}", got=sample,
            fix="Sort the annotations by sample and remove duplicates.")
    spe = EPOCH_S * fs_hz
    index = round(sample / spe)
    if abs(sample - index * spe) > fs_hz:
        raise DataFormatError(
            path, "annotation is off the 30-s epoch grid", line=lineno, field="Sample #",
            expected=f"within 1 s of a multiple of {spe:g} samples", got=sample,
            fix="Check `fs_hz`; SLPDB stage annotations start each 30-s epoch.")
    if previous is not None and index == previous[1]:
        raise DataFormatError(
            path, "two annotations in one epoch", line=lineno, field="Sample #",
            expected=f"one annotation per 30-s epoch (epoch {index} is already annotated)",
            got=sample, fix="Remove the duplicate line.")
    return index


def read_annotations(path: str | PathLike[str], *, fs_hz: float = 250.0,
                     start: datetime | None = None, record: str | None = None
                     ) -> SlpdbAnnotations:
    """Read an SLPDB ``rdann`` dump of the ``.st`` annotations (``<rec>.an``).

    Each line annotates one 30-s epoch: the first ``Aux`` token is its stage and every later
    token one event scored in it. Events get the epoch's onset and ``duration_s = 30``: the
    files say in which epoch an event was scored, not when it began or how long it lasted.
    A token repeated in one epoch (``L L L``) gives one event per token.

    Parameters
    ----------
    path : str or PathLike
        The ``.an`` file.
    fs_hz : float
        Sampling rate of the record (``Sample #`` units); 250 Hz for all of SLPDB.
    start : datetime or None
        Timezone-aware record start; ``None`` uses :data:`NOMINAL_START` and marks it nominal.
    record : str or None
        Record name stored as the hypnogram's subject; defaults to the file stem.

    Returns
    -------
    SlpdbAnnotations
        Hypnogram from the first annotated epoch (gaps filled with ``Stage.UNSCORED``),
        events, the first epoch's index and the filled gaps.

    Raises
    ------
    DataFormatError
        On a missing header line, a truncated line, a wrong delimiter, a bad time or sample,
        an unknown stage or event code, or samples that do not increase epoch by epoch.

    Warns
    -----
    DataQualityWarning
        When epochs inside the scored span have no annotation (they are filled).
    """
    path = Path(path)
    if not isinstance(fs_hz, (int, float)) or not fs_hz > 0:
        msg = f"`fs_hz` must be a sampling rate > 0 Hz for {path}; got {fs_hz!r}"
        raise ValueError(msg)
    lines = _read_text(path)
    if not lines or not lines[0].startswith("Elapsed time"):
        raise DataFormatError(
            path, "missing rdann header line", line=1,
            expected="'Elapsed time  Sample #  Type  Sub Chan  Num\\tAux'",
            got=lines[0] if lines else "an empty file", fix="Restore the file's first line.")
    indices: list[int] = []
    codes: list[str] = []
    events: list[Event] = []
    previous: tuple[int, int] | None = None  # (sample, epoch) of the line before
    for lineno, line in enumerate(lines[1:], start=2):
        sample, tokens = _an_fields(path, lineno, line, fs_hz)
        _check_aux(path, lineno, tokens)
        indices.append(_epoch_index(path, lineno, sample, previous, fs_hz))
        previous = (sample, indices[-1])
        codes.append(tokens[0])
        events += [Event(indices[-1] * EPOCH_S, EPOCH_S, t, EVENT_CODES[t]) for t in tokens[1:]]
    if not indices:
        raise DataFormatError(path, "no annotations", expected="one line per 30-s epoch",
                              got="only the header line", fix="Restore the annotation lines.")
    return _build_annotations(path, np.asarray(indices), codes, tuple(events), start,
                              record or path.stem)


def _build_annotations(path: Path, indices: NDArray[np.int_], codes: list[str],
                       events: tuple[Event, ...], start: datetime | None,
                       record: str) -> SlpdbAnnotations:
    first = int(indices[0])
    stages = np.full(int(indices[-1]) - first + 1, Stage.UNSCORED, dtype=np.int8)
    stages[indices - first] = parse_stages(codes, "slpdb")
    all_codes = [""] * stages.size
    for i, code in zip(indices - first, codes, strict=True):
        all_codes[i] = code
    jumps = np.flatnonzero(np.diff(indices) > 1)
    gaps = tuple((int(indices[j]) + 1, int(indices[j + 1] - indices[j]) - 1) for j in jumps)
    if gaps:
        warnings.warn(
            f"{path}: {sum(n for _, n in gaps)} epochs inside the scored span have no "
            f"annotation (first gap at epoch {gaps[0][0]}, {gaps[0][1]} epochs); they were "
            "filled with Stage.UNSCORED and code ''. Exclude them from scoring.",
            DataQualityWarning, stacklevel=3)
    when, nominal = (NOMINAL_START, True) if start is None else (require_aware(start), False)
    hypnogram = Hypnogram(
        stages, when + timedelta(seconds=first * EPOCH_S), EPOCH_S, tuple(all_codes),
        subject=record, source=str(path), start_is_nominal=nominal)
    return SlpdbAnnotations(hypnogram, events, first, gaps)


def _clock_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _beat_problems(beats: Beats, header: SlpdbHeader) -> list[str]:
    name, found = Path(beats.source).name, []
    rr, valid = beats.rr_s, beats.is_interval
    for mask, what in ((valid & (rr > _LONG_RR_S), f"longer than {_LONG_RR_S:g} s (beats "
                        "missing from the annotation)"),
                       (valid & (rr < _SHORT_RR_S), f"shorter than {_SHORT_RR_S:g} s "
                        "(a beat annotated twice?)")):
        if mask.any():
            worst = int(np.flatnonzero(mask)[np.argmax(np.abs(np.log(rr[mask])))])
            found.append(f"{name}: {int(mask.sum())} RR intervals {what}; the most extreme is "
                         f"{rr[worst]:.3f} s ending at {_clock_text(beats.t_s[worst])}")
    if len(beats) and beats.t_s[-1] > header.duration_s:
        found.append(f"{name}: last beat at {beats.t_s[-1]:.3f} s is after the header's end "
                     f"({header.duration_s:.0f} s)")
    return found


def _stage_problems(ann: SlpdbAnnotations, header: SlpdbHeader) -> list[str]:
    name = Path(ann.hypnogram.source).name
    n_header = int(header.duration_s // EPOCH_S)
    last = ann.first_epoch + len(ann.hypnogram) - 1
    found = [f"{name}: epochs {a}-{a + n - 1} have no stage (filled with UNSCORED)"
             for a, n in ann.gaps]
    if ann.first_epoch > 0 or last < n_header - 1:
        found.append(f"{name}: stages cover epochs {ann.first_epoch}-{last} of the header's "
                     f"0-{n_header - 1} (scoring starts late or ends early)")
    if last >= n_header:
        found.append(f"{name}: epoch {last} is after the header's end ({n_header} epochs)")
    return found


def list_records(folder: str | PathLike[str]) -> list[str]:
    """Names of the SLPDB records (``slpNN[x].hea`` files) in ``folder``, sorted.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = (f"SLPDB folder {folder} not found or not a directory; expected a folder of "
               "<rec>.hea/.rr/.an files. Pass the folder that holds slp01a.hea etc.")
        raise FileNotFoundError(msg)
    return sorted(p.stem for p in folder.glob("*.hea") if _RECORD_RE.fullmatch(p.stem))


def read_record(folder: str | PathLike[str], record: str) -> SlpdbRecord:
    """Read one SLPDB record (header, beats, stages, events) from ``folder``.

    Parameters
    ----------
    folder : str or PathLike
        Folder holding ``<record>.hea`` and, optionally, ``<record>.rr`` and ``<record>.an``.
    record : str
        Record name, e.g. ``"slp01a"``.

    Returns
    -------
    SlpdbRecord
        A missing ``.rr`` or ``.an`` leaves that part ``None`` (events empty) and adds a
        line to ``problems``.

    Raises
    ------
    FileNotFoundError
        If ``<record>.hea`` is missing.
    DataFormatError
        If any of the files is malformed.
    """
    subject, folder = subject_of(record), Path(folder)
    hea = folder / f"{record}.hea"
    if not hea.is_file():
        found = ", ".join(list_records(folder)) if folder.is_dir() else "folder missing"
        msg = (f"{hea}: SLPDB header not found; every record needs its {record}.hea "
               f"(records in that folder: {found or 'none'}). Check the folder and the record "
               "name, or copy the header from PhysioNet slpdb.")
        raise FileNotFoundError(msg)
    header = read_header(hea)
    problems: list[str] = []
    if header.start is None:
        problems.append(f"{hea.name}: no start date; times are relative to NOMINAL_START")
    beats = hypnogram = None
    events: tuple[Event, ...] = ()
    rr, an = folder / f"{record}.rr", folder / f"{record}.an"
    if rr.is_file():
        beats = read_rr(rr, start=header.start, record=record)
        problems += _beat_problems(beats, header)
    else:
        problems.append(f"{rr.name} not found: no beats (beats is None)")
    if an.is_file():
        ann = read_annotations(an, fs_hz=header.fs_hz, start=header.start, record=record)
        hypnogram, events = ann.hypnogram, ann.events
        problems += _stage_problems(ann, header)
    else:
        problems.append(f"{an.name} not found: no stages or events (hypnogram is None)")
    return SlpdbRecord(record, subject, header, beats, hypnogram, events, tuple(problems))


def read_slpdb(folder: str | PathLike[str]) -> Iterator[SlpdbRecord]:
    """Read every SLPDB record in ``folder``, in name order (see :func:`read_record`).

    Raises
    ------
    FileNotFoundError
        If the folder is missing or holds no ``slpNN.hea`` file.
    """
    records = list_records(folder)
    if not records:
        msg = (f"no SLPDB header (slpNN.hea) in {Path(folder)}; expected the 18 records "
               "slp01a ... slp67x. Pass the slpdb folder itself.")
        raise FileNotFoundError(msg)
    return (read_record(folder, record) for record in records)
