"""Headerless plain-text number tables: read, check and repair them, naming the bad line.

A table has one row per line and a fixed list of numeric columns, split by one delimiter
(``None``: any run of whitespace), with no header line; the first column is a time in
seconds. Readers of such files (Sleep-Accel's release and the authors' outputs) share
this parser, its checks (epochs one per line, whole-number stage codes, repeated or
restarting times, stretches without samples) and the ``<subject><suffix>`` file naming
(:func:`files_by_subject`). Every defect raises
:class:`~ingestors.errors.DataFormatError` with the file, the 1-based line, the column,
what was expected, what was found and a remedy; ``origin`` names the data set in those
remedies (``"Sleep-Accel"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError
from ingestors.types import NOMINAL_START, TimeSeries
from models.stages import Scheme, StageCodeError, parse_stage

__all__ = [
    "StageCoding",
    "Table",
    "check_epoch_times",
    "check_max_gap",
    "files_by_subject",
    "read_series",
    "read_table",
    "repair_times",
    "stage_codes",
    "subject_key",
    "time_gaps",
]

# Delimiters tried when a line has the wrong number of fields, to name the one it uses.
_OTHER_DELIMITERS: Final[tuple[str, ...]] = (",", ";", "\t", "|", " ")


class Table(NamedTuple):
    """Parsed numeric rows and the 1-based file line each row came from."""

    values: NDArray[np.float64]  # (n_rows, n_columns)
    lines: NDArray[np.int64]  # (n_rows,)


class StageCoding(NamedTuple):
    """How a table writes sleep stages as numbers, for :func:`stage_codes`."""

    scheme: Scheme  # dialect of models.stages.parse_stage
    codes: str  # the valid codes, for messages: "-1, 0, 1, 2, 3, 4, 5"
    legend: str  # the codes with their meaning: "-1 (unscored), 0 W, 1 N1, ..."
    origin: str  # data set named in remedies


def _read_lines(path: Path, origin: str) -> list[str]:
    if not path.is_file():
        raise DataFormatError(path, "file not found", fix="Check the folder and subject id.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, "not a UTF-8 text file", expected="plain-text numbers",
            got=f"byte {err.object[err.start]:#04x} at offset {err.start}",
            fix=f"Use the original text file from the {origin} release.",
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
                delimiter: str | None, origin: str) -> Table:
    """Line-by-line parse that names the first bad line; the reference for the fast path."""
    rows: list[list[float]] = []
    numbers: list[int] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != len(columns):
            raise _columns_error(path, line_no, line, columns, delimiter)
        row = [_parse_number(path, line_no, name, text, origin)
               for name, text in zip(columns, fields, strict=True)]
        rows.append(row)
        numbers.append(line_no)
    return Table(np.asarray(rows, dtype=np.float64).reshape(-1, len(columns)),
                 np.asarray(numbers, dtype=np.int64))


def _parse_number(path: Path, line_no: int, column: str, text: str, origin: str) -> float:
    try:
        value = float(text)
    except ValueError:
        problem = "missing value" if not text.strip() else "value is not a number"
        fix = (f"Remove the header line: {origin} files have none." if line_no == 1
               else "Repair or delete the line.")
        raise DataFormatError(path, problem, line=line_no, field=column,
                              expected="a decimal number", got=text.strip(), fix=fix) from None
    if not math.isfinite(value):
        raise DataFormatError(path, "value is not finite", line=line_no, field=column,
                              expected="a finite number", got=text.strip(),
                              fix="Delete the line or replace the value by a measured one.")
    return value


def read_table(path: str | PathLike[str], columns: tuple[str, ...], delimiter: str | None,
               *, origin: str) -> Table:
    """Read a headerless numeric text table.

    Parameters
    ----------
    path : str or path-like
        The file (UTF-8, optionally with a byte-order mark).
    columns : tuple of str
        Column names, used in messages; their number is the number of fields per line.
    delimiter : str or None
        Field separator; ``None`` for any run of whitespace.
    origin : str
        Data set named in remedies (``"Sleep-Accel"``).

    Returns
    -------
    Table
        ``values`` shape (n_rows, len(columns)); ``lines`` the 1-based line of each row.

    Raises
    ------
    DataFormatError
        If the file is missing, empty, not UTF-8, or a line has the wrong delimiter or
        number of fields, or a value that is missing, not a number or not finite.
    """
    path = Path(path)
    lines = _read_lines(path, origin)
    try:
        # numpy's C parser is several times faster; when it refuses a file, or the result
        # needs checking, the line loop finds and names the defect.
        values = np.loadtxt(lines, dtype=np.float64, delimiter=delimiter, comments=None,
                            ndmin=2)
    except ValueError:
        return _parse_slow(path, lines, columns, delimiter, origin)
    if values.shape != (len(lines), len(columns)) or not np.isfinite(values).all():
        return _parse_slow(path, lines, columns, delimiter, origin)
    return Table(values, np.arange(1, len(lines) + 1, dtype=np.int64))


def check_epoch_times(path: Path, table: Table, epoch_s: float) -> None:
    """Check that the time column steps by exactly one epoch from line to line.

    Raises
    ------
    DataFormatError
        Naming the first line whose time does not follow the previous one by ``epoch_s``.
    """
    t = table.values[:, 0]
    step = np.diff(t)
    bad = np.flatnonzero(np.abs(step - epoch_s) > 1e-3)
    if bad.size:
        i = int(bad[0]) + 1
        problem = ("time is not increasing" if step[i - 1] <= 0
                   else f"time does not step by {epoch_s:g} s")
        raise DataFormatError(
            path, problem, line=int(table.lines[i]), field="time",
            expected=f"{t[i - 1] + epoch_s:g} (one line per {epoch_s:g}-s epoch)",
            got=float(t[i]),
            fix="Restore the missing or misordered epochs from the original label file.",
        )


def read_series(path: Path, columns: tuple[str, ...], delimiter: str | None, name: str,
                unit: str, *, origin: str, restart_cause: str) -> tuple[TimeSeries, list[str]]:
    """Read a time table into a :class:`~ingestors.types.TimeSeries`, repaired.

    Column 0 is the time in seconds since a start the file does not give, so the series
    is anchored at :data:`~ingestors.types.NOMINAL_START` with ``start_is_nominal=True``;
    one further column gives values of shape (n,), several give shape (n, k), labelled
    ``name`` in ``unit``. Rows are sorted and de-duplicated by :func:`repair_times` (with
    ``restart_cause``), whose descriptions are returned with the series. ``columns``,
    ``delimiter`` and ``origin`` are as in :func:`read_table`.
    """
    table, problems = repair_times(path, read_table(path, columns, delimiter, origin=origin),
                                   restart_cause=restart_cause)
    values = table.values[:, 1] if len(columns) == 2 else table.values[:, 1:]
    series = TimeSeries(name, np.ascontiguousarray(table.values[:, 0]),
                        np.ascontiguousarray(values), unit, NOMINAL_START,
                        start_is_nominal=True)
    return series, problems


def repair_times(path: Path, table: Table, *, restart_cause: str) -> tuple[Table, list[str]]:
    """Sort rows by time and drop repeated time stamps, keeping the first occurrence.

    Parameters
    ----------
    path : pathlib.Path
        The file the table came from; its name starts each description.
    table : Table
        Rows with the time in column 0.
    restart_cause : str
        What usually makes the time restart in such files, for the description.

    Returns
    -------
    Table
        Rows in time order with unique times; ``lines`` still name the file lines.
    list of str
        One human-readable line per repair (empty when nothing was repaired).
    """
    table, problems = _sort_by_time(path.name, table, restart_cause)
    table, dropped = _drop_repeated_times(path.name, table)
    return table, problems + dropped


def _sort_by_time(name: str, table: Table, restart_cause: str) -> tuple[Table, list[str]]:
    back = np.flatnonzero(np.diff(table.values[:, 0]) < 0) + 1
    problems: list[str] = []
    if back.size:
        where = ", ".join(str(n) for n in table.lines[back[:5]].tolist())
        problems.append(
            f"{name}: time restarts {back.size} time(s) (at line {where}), so the file holds "
            f"{back.size + 1} blocks, as when {restart_cause}; sorted by time"
        )
    order = np.argsort(table.values[:, 0], kind="stable")
    return Table(table.values[order], table.lines[order]), problems


def _drop_repeated_times(name: str, table: Table) -> tuple[Table, list[str]]:
    values, lines = table
    t = values[:, 0]
    keep = np.r_[True, t[1:] != t[:-1]]
    n_dup = int((~keep).sum())
    problems: list[str] = []
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
    return Table(values[keep], lines[keep]), problems


def _row(row: NDArray[np.float64]) -> str:
    return " ".join(f"{v:g}" for v in row[1:].tolist())


def stage_codes(path: Path, table: Table, column: int, field: str,
                coding: StageCoding) -> tuple[NDArray[np.int8], tuple[str, ...]]:
    """Validate a column of whole-number stage codes and map them to canonical stages.

    Parameters
    ----------
    path : pathlib.Path
        The file the table came from, for messages.
    table : Table
        The parsed table.
    column : int
        Index of the stage column in ``table.values``.
    field : str
        Name of that column in messages.
    coding : StageCoding
        The code scheme and how to describe it.

    Returns
    -------
    ndarray of int8, shape (n_rows,)
        Canonical :class:`models.stages.Stage` of each row.
    tuple of str
        The source code of each row as an integer string (``"-1"``, ``"4"``).

    Raises
    ------
    DataFormatError
        Naming the first line whose code is not a whole number or not in the scheme.
    """
    ints = _whole_codes(path, table, column, field, coding)
    lookup = _stage_lookup(np.unique(ints).tolist(), coding.scheme)
    unknown = np.flatnonzero(np.isin(ints, [c for c, s in lookup.items() if s == -99]))
    if unknown.size:
        raise DataFormatError(
            path, "unknown stage code", line=int(table.lines[unknown[0]]), field=field,
            expected=f"one of {coding.legend}", got=int(ints[unknown[0]]),
            fix=f"Correct the code or map it to a {coding.origin} code before reading.",
        )
    stages = np.array([lookup[c] for c in ints.tolist()], dtype=np.int8)
    return stages, tuple(str(c) for c in ints.tolist())


def _whole_codes(path: Path, table: Table, column: int, field: str,
                 coding: StageCoding) -> NDArray[np.int64]:
    raw = table.values[:, column]
    bad = np.flatnonzero((raw != np.round(raw)) | (np.abs(raw) > 99))
    if bad.size:
        raise DataFormatError(path, "stage code is not a whole number",
                              line=int(table.lines[bad[0]]), field=field,
                              expected=f"one of {coding.codes}", got=float(raw[bad[0]]),
                              fix="Fix the label file; codes are integers.")
    return raw.astype(np.int64)


def _stage_lookup(codes: list[int], scheme: Scheme) -> dict[int, int]:
    """Canonical stage of each code; -99 for a code the scheme does not know."""
    lookup: dict[int, int] = {}
    for code in codes:
        try:
            lookup[code] = int(parse_stage(str(code), scheme))
        except StageCodeError:
            lookup[code] = -99
    return lookup


def check_max_gap(max_gap_s: object, default: float) -> None:
    """Raise ``ValueError`` unless ``max_gap_s`` (for :func:`time_gaps`) is seconds > 0."""
    if isinstance(max_gap_s, bool) or not isinstance(max_gap_s, (int, float)) \
            or not max_gap_s > 0:
        msg = (f"`max_gap_s` must be a number of seconds > 0; got {max_gap_s!r}. "
               f"Use e.g. {default:g} (the default).")
        raise ValueError(msg)


def time_gaps(kind: str, t_s: NDArray[np.float64], t0: float, t1: float,
              max_gap_s: float) -> tuple[list[str], str | None]:
    """Describe each stretch of the labelled night ``[t0, t1)`` without samples.

    Parameters
    ----------
    kind : str
        Name of the stream, starting each description.
    t_s : ndarray of float64, shape (n_samples,)
        Sample times in seconds, sorted.
    t0, t1 : float
        The labelled night in the same time base.
    max_gap_s : float
        Shorter stretches without samples are not reported.

    Returns
    -------
    list of str
        One line per stretch longer than ``max_gap_s``.
    str or None
        One summary line (also when no sample falls in the night); None without gaps.
    """
    t = t_s[(t_s >= t0) & (t_s < t1)]
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


def subject_key(subject: str) -> tuple[int, str]:
    """Sort key for subject ids: numeric ids in numeric order, then the others by name."""
    return (int(subject), "") if subject.isdigit() else (2**63, subject)


def files_by_subject(folder: Path,
                     patterns: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, Path]]:
    """Map subject -> kind -> file for the files ``<subfolder>/<subject><suffix>``.

    ``patterns`` gives ``(kind, subfolder, suffix)`` per file type; subfolder ``""`` is
    ``folder`` itself. Subfolders that do not exist hold no files.
    """
    found: dict[str, dict[str, Path]] = {}
    for kind, subfolder, suffix in patterns:
        for file in (folder / subfolder).glob(f"*{suffix}"):
            subject = file.name[: -len(suffix)]
            if subject and file.is_file():
                found.setdefault(subject, {})[kind] = file
    return found
