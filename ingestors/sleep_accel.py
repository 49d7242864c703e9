"""Readers for Sleep-Accel (Walch et al. 2019): the PhysioNet release and the authors' crops.

Two folder layouts are understood (see ``shared/data/README.md`` sections 4 and 5):

``"physionet"``
    The raw release: any of ``heart_rate/<id>_heartrate.txt`` (``time,bpm``),
    ``motion/<id>_acceleration.txt`` (``time x y z``, g), ``steps/<id>_steps.txt``
    (``time,steps``) and ``labels/<id>_labeled_sleep.txt`` (``time stage``).
``"cropped"``
    The authors' ``outputs/cropped/`` folder: ``<id>_cleaned_hr.out`` (``time bpm``),
    ``<id>_cleaned_counts.out`` (``time,count``, 15-s activity counts),
    ``<id>_cleaned_psg.out`` (``time stage``) and ``<id>_cleaned_motion.out``.

Times are seconds from the start of the PSG recording and may be negative (the watch export
reaches days back). The release gives no clock time, so every result is anchored at
:data:`~ingestors.types.NOMINAL_START` with ``start_is_nominal=True``. Streams are sorted by
time and duplicate time stamps are dropped (keeping the first sample, as the authors'
pipeline does); each repair is listed in ``problems`` and announced with a
:class:`~ingestors.errors.DataQualityWarning`. The per-epoch feature files live in
:mod:`ingestors.sleep_accel_features`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Final, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.types import EPOCH_S, NOMINAL_START, Hypnogram, TimeSeries
from models.stages import StageCodeError, parse_stage

__all__ = [
    "MAX_GAP_S",
    "Layout",
    "SleepAccelNight",
    "detect_layout",
    "hr_samples_in_night",
    "list_subjects",
    "read_cropped_counts",
    "read_cropped_hr",
    "read_cropped_motion",
    "read_cropped_psg",
    "read_heart_rate",
    "read_labels",
    "read_motion",
    "read_sleep_accel",
    "read_steps",
    "read_subject",
]

Layout = Literal["physionet", "cropped"]
PathArg = str | PathLike[str]

#: Default longest tolerated stretch without samples inside the labelled night, in seconds.
MAX_GAP_S: Final[float] = 300.0


class _Spec(NamedTuple):
    """How one Sleep-Accel file type is laid out and what it measures."""

    columns: tuple[str, ...]
    delimiter: str | None  # None: any run of whitespace
    name: str
    unit: str
    subfolder: str  # "" for the cropped layout
    suffix: str


_RAW: Final[dict[str, _Spec]] = {
    "heart_rate": _Spec(("time", "bpm"), ",", "heart_rate", "bpm", "heart_rate", "_heartrate.txt"),
    "motion": _Spec(("time", "x", "y", "z"), None, "acceleration", "g", "motion",
                    "_acceleration.txt"),
    "steps": _Spec(("time", "steps"), ",", "steps", "steps", "steps", "_steps.txt"),
    "labels": _Spec(("time", "stage"), None, "labels", "", "labels", "_labeled_sleep.txt"),
}
_CROPPED: Final[dict[str, _Spec]] = {
    "heart_rate": _Spec(("time", "bpm"), None, "heart_rate", "bpm", "", "_cleaned_hr.out"),
    "motion": _Spec(("time", "x", "y", "z"), None, "acceleration", "g", "", "_cleaned_motion.out"),
    "counts": _Spec(("time", "count"), ",", "activity_counts", "count", "", "_cleaned_counts.out"),
    "labels": _Spec(("time", "stage"), None, "labels", "", "", "_cleaned_psg.out"),
}
_LAYOUTS: Final[dict[str, dict[str, _Spec]]] = {"physionet": _RAW, "cropped": _CROPPED}
_OTHER_DELIMITERS: Final[tuple[str, ...]] = (",", ";", "\t", "|", " ")


class _Table(NamedTuple):
    """Parsed numeric rows and the 1-based file line each row came from."""

    values: NDArray[np.float64]  # (n_rows, n_columns)
    lines: NDArray[np.int64]  # (n_rows,)


@dataclass(frozen=True, eq=False)
class SleepAccelNight:
    """Everything recorded for one Sleep-Accel subject (one lab night).

    Attributes
    ----------
    subject : str
        Subject id as in the file names (``"46343"``).
    layout : {"physionet", "cropped"}
        The folder layout the night was read from.
    heart_rate, motion, steps, counts : TimeSeries or None
        Streams in ``"bpm"``, ``"g"`` (values shape (n, 3): x, y, z), ``"steps"`` and
        ``"count"`` (15-s activity counts); None when the file is absent.
    labels : Hypnogram or None
        PSG stages per 30-s epoch with the source codes (``"-1"``, ``"0"`` ... ``"5"``).
    problems : tuple of str
        One human-readable line per repair or gap (empty for a clean subject).
    start : datetime
        :data:`~ingestors.types.NOMINAL_START`; times are seconds from PSG start.
    start_is_nominal : bool
        Always True: the release gives no clock time.
    """

    subject: str
    layout: Layout
    heart_rate: TimeSeries | None = None
    motion: TimeSeries | None = None
    steps: TimeSeries | None = None
    counts: TimeSeries | None = None
    labels: Hypnogram | None = None
    problems: tuple[str, ...] = ()
    start: datetime = NOMINAL_START
    start_is_nominal: bool = True

    @property
    def night_s(self) -> tuple[float, float]:
        """The labelled window ``[t0, t1)`` in seconds since ``start``.

        Raises
        ------
        ValueError
            If the subject has no label file.
        """
        if self.labels is None:
            msg = (
                f"Sleep-Accel subject {self.subject}: no labels were read, so the night is "
                "unknown. Add the label file (labels/<id>_labeled_sleep.txt or "
                "<id>_cleaned_psg.out) to the folder."
            )
            raise ValueError(msg)
        return _window(self.labels, self.start)


def _window(labels: Hypnogram, origin: datetime = NOMINAL_START) -> tuple[float, float]:
    t0 = (labels.start - origin).total_seconds()
    return t0, t0 + labels.duration_s


def hr_samples_in_night(night: SleepAccelNight) -> TimeSeries:
    """Heart-rate samples inside the labelled window ``[t0, t0 + n_epochs * 30 s)``.

    Parameters
    ----------
    night : SleepAccelNight
        A subject read by :func:`read_subject`, with heart rate and labels.

    Returns
    -------
    TimeSeries
        The de-duplicated heart-rate samples of the night, in bpm.

    Raises
    ------
    ValueError
        If the subject has no heart rate or no labels.
    """
    if night.heart_rate is None:
        msg = (
            f"Sleep-Accel subject {night.subject} has no heart rate; expected "
            "heart_rate/<id>_heartrate.txt or <id>_cleaned_hr.out in the folder."
        )
        raise ValueError(msg)
    return night.heart_rate.between(*night.night_s)


# --- parsing ------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFormatError(path, "file not found", fix="Check the folder and subject id.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, "not a UTF-8 text file", expected="plain-text numbers",
            got=f"byte {err.object[err.start]:#04x} at offset {err.start}",
            fix="Use the original text file from the Sleep-Accel release.",
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataFormatError(
            path, "file is empty", expected="one sample per line",
            fix="Re-download the file; an empty file cannot be read.",
        )
    return lines


def _columns_error(
    path: Path, line_no: int, line: str, columns: tuple[str, ...], delimiter: str | None
) -> DataFormatError:
    sep = "whitespace" if delimiter is None else repr(delimiter)
    layout = (" " if delimiter is None else delimiter).join(columns)
    for other in _OTHER_DELIMITERS:
        if other == delimiter or (delimiter is None and other.isspace()):
            continue
        if other in line and len([f for f in line.split(other) if f.strip()]) == len(columns):
            return DataFormatError(
                path, "wrong delimiter", line=line_no,
                expected=f"{len(columns)} columns {layout!r} separated by {sep}",
                got=line, fix=f"Replace {other!r} by {sep} (the release's own format).",
            )
    n = len(line.split(delimiter))
    return DataFormatError(
        path, f"wrong number of columns ({n})", line=line_no,
        expected=f"{len(columns)} columns {layout!r} separated by {sep}", got=line,
        fix="The line looks truncated or merged; restore it from the original download "
        "or delete it.",
    )


def _parse_slow(path: Path, lines: list[str], columns: tuple[str, ...],
                delimiter: str | None) -> _Table:
    """Line-by-line parse that names the first bad line; the reference for the fast path."""
    rows: list[list[float]] = []
    numbers: list[int] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != len(columns):
            raise _columns_error(path, line_no, line, columns, delimiter)
        row = [_parse_number(path, line_no, name, text)
               for name, text in zip(columns, fields, strict=True)]
        rows.append(row)
        numbers.append(line_no)
    return _Table(np.asarray(rows, dtype=np.float64).reshape(-1, len(columns)),
                  np.asarray(numbers, dtype=np.int64))


def _parse_number(path: Path, line_no: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        problem = "missing value" if not text.strip() else "value is not a number"
        fix = ("Remove the header line: Sleep-Accel files have none." if line_no == 1
               else "Repair or delete the line.")
        raise DataFormatError(path, problem, line=line_no, field=column,
                              expected="a decimal number", got=text.strip(), fix=fix) from None
    if not math.isfinite(value):
        raise DataFormatError(path, "value is not finite", line=line_no, field=column,
                              expected="a finite number", got=text.strip(),
                              fix="Delete the line or replace the value by a measured one.")
    return value


def _read_table(path: PathArg, columns: tuple[str, ...], delimiter: str | None) -> _Table:
    """Read a headerless numeric text table; any defect raises :class:`DataFormatError`."""
    path = Path(path)
    lines = _read_lines(path)
    try:
        # numpy's C parser is several times faster; when it refuses a file, or the result
        # needs checking, the line loop finds and names the defect.
        values = np.loadtxt(lines, dtype=np.float64, delimiter=delimiter, comments=None,
                            ndmin=2)
    except ValueError:
        return _parse_slow(path, lines, columns, delimiter)
    if values.shape != (len(lines), len(columns)) or not np.isfinite(values).all():
        return _parse_slow(path, lines, columns, delimiter)
    return _Table(values, np.arange(1, len(lines) + 1, dtype=np.int64))


def _stage_codes(
    path: Path, table: _Table, column: int, field: str = "stage"
) -> tuple[NDArray[np.int8], tuple[str, ...]]:
    """Validate Sleep-Accel stage codes and map them to canonical stages."""
    raw = table.values[:, column]
    bad = np.flatnonzero((raw != np.round(raw)) | (np.abs(raw) > 99))
    if bad.size:
        raise DataFormatError(path, "stage code is not a whole number",
                              line=int(table.lines[bad[0]]), field=field,
                              expected="one of -1, 0, 1, 2, 3, 4, 5", got=float(raw[bad[0]]),
                              fix="Fix the label file; codes are integers.")
    ints = raw.astype(np.int64)
    lookup: dict[int, int] = {}
    for code in np.unique(ints).tolist():
        try:
            lookup[code] = int(parse_stage(str(code), "sleep-accel"))
        except StageCodeError:
            lookup[code] = -99
    unknown = np.flatnonzero(np.isin(ints, [c for c, s in lookup.items() if s == -99]))
    if unknown.size:
        raise DataFormatError(
            path, "unknown stage code", line=int(table.lines[unknown[0]]), field=field,
            expected="one of -1 (unscored), 0 W, 1 N1, 2 N2, 3 N3, 4 N4, 5 REM",
            got=int(ints[unknown[0]]),
            fix="Correct the code or map it to a Sleep-Accel code before reading.",
        )
    stages = np.array([lookup[c] for c in ints.tolist()], dtype=np.int8)
    return stages, tuple(str(c) for c in ints.tolist())


# --- single-file readers ------------------------------------------------------------------


def _clean(path: Path, table: _Table) -> tuple[_Table, list[str]]:
    """Sort by time and drop repeated time stamps, describing each repair."""
    t, lines, name = table.values[:, 0], table.lines, path.name
    problems: list[str] = []
    back = np.flatnonzero(np.diff(t) < 0) + 1
    if back.size:
        where = ", ".join(str(n) for n in lines[back[:5]].tolist())
        problems.append(
            f"{name}: time restarts {back.size} time(s) (at line {where}), so the file holds "
            f"{back.size + 1} blocks, as when the watch export was written repeatedly; "
            "sorted by time"
        )
    order = np.argsort(t, kind="stable")
    values, lines = table.values[order], lines[order]
    t = values[:, 0]
    keep = np.r_[True, t[1:] != t[:-1]]
    n_dup = int((~keep).sum())
    if n_dup:
        first = np.maximum.accumulate(np.where(keep, np.arange(t.size), 0))
        conflict = np.flatnonzero(~keep & (values[:, 1:] != values[first, 1:]).any(axis=1))
        problems.append(
            f"{name}: dropped {n_dup} sample(s) whose time stamp was already present "
            f"({n_dup - conflict.size} with the same value), keeping the first occurrence"
        )
        if conflict.size:
            i = int(conflict[0])
            problems.append(
                f"{name}: {conflict.size} repeated time stamp(s) carry different values, e.g. "
                f"t={t[i]:.5f} s: {_row(values[first[i]])} at line {lines[first[i]]} vs "
                f"{_row(values[i])} at line {lines[i]}; kept the first"
            )
    return _Table(values[keep], lines[keep]), problems


def _row(row: NDArray[np.float64]) -> str:
    return " ".join(f"{v:g}" for v in row[1:].tolist())


def _series(path: PathArg, spec: _Spec) -> tuple[TimeSeries, list[str]]:
    path = Path(path)
    table, problems = _clean(path, _read_table(path, spec.columns, spec.delimiter))
    values = table.values[:, 1] if len(spec.columns) == 2 else table.values[:, 1:]
    series = TimeSeries(spec.name, np.ascontiguousarray(table.values[:, 0]),
                        np.ascontiguousarray(values), spec.unit, NOMINAL_START,
                        start_is_nominal=True)
    return series, problems


def _warn(what: str, repairs: list[str], gaps: list[str], stacklevel: int) -> None:
    """One warning for a file or subject: the repairs made and the gaps left."""
    if not repairs and not gaps:
        return
    remedy = []
    if repairs:
        remedy.append("The reader sorted by time and kept the first sample of each time "
                      "stamp, as the authors' pipeline does; nothing to do unless the "
                      "dropped copies matter.")
    if gaps:
        remedy.append("Gaps are left as they are: exclude the affected epochs or the "
                      "subject from HR-based evaluation.")
    msg = f"{what}: " + "; ".join(repairs + gaps) + ". " + " ".join(remedy)
    warnings.warn(msg, DataQualityWarning, stacklevel=stacklevel + 1)


def _read_and_warn(path: PathArg, spec: _Spec) -> TimeSeries:
    series, repairs = _series(path, spec)
    _warn(str(path), repairs, [], stacklevel=3)
    return series


def read_heart_rate(path: PathArg) -> TimeSeries:
    """Read a raw ``<id>_heartrate.txt`` (``time,bpm``), sorted and de-duplicated.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    TimeSeries
        ``t_s`` shape (n,), seconds from PSG start (negative before it); values in bpm.

    Raises
    ------
    DataFormatError
        If the file is missing, empty or malformed (the message names the line).

    Warns
    -----
    DataQualityWarning
        If the time restarts (repeated export) or time stamps repeat.
    """
    return _read_and_warn(path, _RAW["heart_rate"])


def read_motion(path: PathArg) -> TimeSeries:
    """Read a raw ``<id>_acceleration.txt`` (``time x y z``); values shape (n, 3) in g."""
    return _read_and_warn(path, _RAW["motion"])


def read_steps(path: PathArg) -> TimeSeries:
    """Read a raw ``<id>_steps.txt`` (``time,steps``); values shape (n,) in steps."""
    return _read_and_warn(path, _RAW["steps"])


def read_cropped_hr(path: PathArg) -> TimeSeries:
    """Read the authors' ``<id>_cleaned_hr.out`` (``time bpm``); values in bpm."""
    return _read_and_warn(path, _CROPPED["heart_rate"])


def read_cropped_counts(path: PathArg) -> TimeSeries:
    """Read the authors' ``<id>_cleaned_counts.out`` (``time,count``, 15-s activity counts)."""
    return _read_and_warn(path, _CROPPED["counts"])


def read_cropped_motion(path: PathArg) -> TimeSeries:
    """Read the authors' ``<id>_cleaned_motion.out`` (``time x y z``); shape (n, 3) in g."""
    return _read_and_warn(path, _CROPPED["motion"])


def read_labels(path: PathArg) -> Hypnogram:
    """Read PSG labels (``time stage``, one line per 30-s epoch) into a :class:`Hypnogram`.

    Parameters
    ----------
    path : str or path-like
        ``<id>_labeled_sleep.txt`` (integers) or ``<id>_cleaned_psg.out`` (floats).

    Returns
    -------
    Hypnogram
        Canonical stages (N4 ``"4"`` becomes N3; ``"-1"`` is unscored), the source codes in
        ``codes``, ``start`` at NOMINAL_START plus the first epoch's time.

    Raises
    ------
    DataFormatError
        If a line is malformed, a code is unknown, or the time does not step by 30 s.
    """
    path = Path(path)
    table = _read_table(path, _RAW["labels"].columns, None)
    t = table.values[:, 0]
    step = np.diff(t)
    bad = np.flatnonzero(np.abs(step - EPOCH_S) > 1e-3)
    if bad.size:
        i = int(bad[0]) + 1
        problem = "time is not increasing" if step[i - 1] <= 0 else "time does not step by 30 s"
        raise DataFormatError(
            path, problem, line=int(table.lines[i]), field="time",
            expected=f"{t[i - 1] + EPOCH_S:g} (one line per 30-s epoch)", got=float(t[i]),
            fix="Restore the missing or misordered epochs from the original label file.",
        )
    stages, codes = _stage_codes(path, table, 1)
    return Hypnogram(stages, NOMINAL_START + timedelta(seconds=float(t[0])), EPOCH_S, codes,
                     subject=path.name.split("_")[0], source=str(path), start_is_nominal=True)


def read_cropped_psg(path: PathArg) -> Hypnogram:
    """Read the authors' ``<id>_cleaned_psg.out``; same result as :func:`read_labels`."""
    return read_labels(path)


# --- folders ------------------------------------------------------------------------------


def _folder(folder: PathArg) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise DataFormatError(path, "folder not found", expected="a Sleep-Accel folder",
                              fix="Pass the release folder (with heart_rate/, labels/ ...) or "
                              "the authors' outputs/cropped folder.")
    return path


def detect_layout(folder: PathArg) -> Layout:
    """Tell the PhysioNet release layout from the authors' cropped layout.

    Parameters
    ----------
    folder : str or path-like
        Either the release folder (subfolders ``heart_rate/``, ``motion/``, ``steps/``,
        ``labels/``) or a folder of ``<id>_cleaned_*.out`` files.

    Returns
    -------
    {"physionet", "cropped"}

    Raises
    ------
    DataFormatError
        If the folder is missing or looks like neither layout.
    """
    path = _folder(folder)
    if any((path / spec.subfolder).is_dir() for spec in _RAW.values()):
        return "physionet"
    if any(next(path.glob(f"*{spec.suffix}"), None) for spec in _CROPPED.values()):
        return "cropped"
    raise DataFormatError(
        path, "not a Sleep-Accel folder",
        expected="subfolders heart_rate/, motion/, steps/ or labels/, or <id>_cleaned_*.out "
        "files", got=sorted(p.name for p in path.iterdir())[:8],
        fix="Pass the folder that directly holds them (e.g. outputs/cropped, not outputs).",
    )


def _subject_key(subject: str) -> tuple[int, str]:
    return (int(subject), "") if subject.isdigit() else (2**63, subject)


def _subject_files(path: Path, layout: Layout) -> dict[str, dict[str, Path]]:
    """Map subject -> kind -> file for every file of the layout found in ``path``."""
    found: dict[str, dict[str, Path]] = {}
    for kind, spec in _LAYOUTS[layout].items():
        for file in (path / spec.subfolder).glob(f"*{spec.suffix}"):
            subject = file.name[: -len(spec.suffix)]
            if subject and file.is_file():
                found.setdefault(subject, {})[kind] = file
    return found


def list_subjects(folder: PathArg) -> tuple[str, ...]:
    """Subjects with at least one file in ``folder``, sorted numerically."""
    path = _folder(folder)
    return tuple(sorted(_subject_files(path, detect_layout(path)), key=_subject_key))


def _gaps(kind: str, series: TimeSeries, t0: float, t1: float,
          max_gap_s: float) -> tuple[list[str], str | None]:
    """List each stretch of ``[t0, t1)`` over ``max_gap_s`` without data, and summarise."""
    t = series.t_s[(series.t_s >= t0) & (series.t_s < t1)]
    if t.size == 0:
        return [], f"{kind}: no sample inside the labelled night {t0:g}-{t1:g} s"
    edges = np.r_[t0, t, t1]
    long = np.flatnonzero(np.diff(edges) > max_gap_s)
    if not long.size:
        return [], None
    each = [f"{kind}: no sample for {edges[i + 1] - edges[i]:.0f} s inside the labelled night "
            f"({edges[i]:.1f}-{edges[i + 1]:.1f} s)" for i in long.tolist()]
    total = float(np.diff(edges)[long].sum())
    return each, (f"{kind}: {long.size} gap(s) longer than {max_gap_s:g} s without a sample "
                  f"cover {total:.0f} s of the {t1 - t0:.0f}-s labelled night ({t.size} "
                  "samples in it)")


def _check_gap(max_gap_s: object) -> None:
    if isinstance(max_gap_s, bool) or not isinstance(max_gap_s, (int, float)) \
            or not max_gap_s > 0:
        msg = (f"`max_gap_s` must be a number of seconds > 0; got {max_gap_s!r}. "
               f"Use e.g. {MAX_GAP_S:g} (the default).")
        raise ValueError(msg)


def read_subject(
    folder: PathArg, subject: str | int, *, max_gap_s: float = MAX_GAP_S
) -> SleepAccelNight:
    """Read every file of one subject from a release or cropped folder.

    Parameters
    ----------
    folder : str or path-like
        Release folder (any of ``heart_rate/``, ``motion/``, ``steps/``, ``labels/``) or
        the authors' cropped folder; see :func:`detect_layout`.
    subject : str or int
        Subject id (``"46343"`` or ``46343``).
    max_gap_s : float
        Stretches inside the labelled night longer than this without a sample are listed
        in ``problems`` (default 300 s; steps are exempt, they are sparse by nature).

    Returns
    -------
    SleepAccelNight
        The streams found (None for absent files), the labels and the problems.

    Raises
    ------
    DataFormatError
        If the folder or subject is missing, or any file is malformed.

    Warns
    -----
    DataQualityWarning
        Once per subject when anything was repaired or a stream has long gaps.
    """
    _check_gap(max_gap_s)
    night, repairs, gaps = _read_night(_folder(folder), str(subject), float(max_gap_s))
    _warn(f"Sleep-Accel subject {night.subject}", repairs, gaps, stacklevel=2)
    return night


def _read_night(path: Path, subject: str,
                max_gap_s: float) -> tuple[SleepAccelNight, list[str], list[str]]:
    """Read one subject; also return the repairs and the gap summaries for the warning."""
    layout = detect_layout(path)
    files = _subject_files(path, layout).get(subject)
    if not files:
        known = sorted(_subject_files(path, layout), key=_subject_key)
        raise DataFormatError(path, f"subject {subject!r} not found", expected="one of "
                              + ", ".join(known[:40]), fix="Check the subject id.")
    labels = read_labels(files["labels"]) if "labels" in files else None
    streams: dict[str, TimeSeries] = {}
    repairs: list[str] = []
    for kind, file in files.items():
        if kind != "labels":
            streams[kind], found = _series(file, _LAYOUTS[layout][kind])
            repairs += found
    gaps: list[str] = []
    summaries: list[str] = []
    for kind, series in streams.items():
        if labels is not None and kind != "steps":
            each, summary = _gaps(kind, series, *_window(labels), max_gap_s)
            gaps += each
            summaries += [summary] if summary else []
    night = SleepAccelNight(
        subject, layout, streams.get("heart_rate"), streams.get("motion"), streams.get("steps"),
        streams.get("counts"), labels, tuple(repairs + gaps + summaries),
    )
    return night, repairs, summaries


def read_sleep_accel(
    folder: PathArg, *, max_gap_s: float = MAX_GAP_S
) -> Iterator[SleepAccelNight]:
    """Read all subjects of a folder, one night at a time, in numeric subject order.

    Parameters
    ----------
    folder : str or path-like
        Release or cropped folder; see :func:`detect_layout`.
    max_gap_s : float
        As in :func:`read_subject`.

    Returns
    -------
    Iterator of SleepAccelNight
        Lazily read nights (``list(read_sleep_accel(folder))`` reads them all).

    Warns
    -----
    DataQualityWarning
        As :func:`read_subject`, once per affected subject.
    """
    _check_gap(max_gap_s)
    subjects = list_subjects(folder)
    return (read_subject(folder, subject, max_gap_s=max_gap_s) for subject in subjects)
