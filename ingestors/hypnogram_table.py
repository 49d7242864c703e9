"""CSV and TSV hypnograms: BIDS-style events tables and one-stage-per-epoch tables.

Rows become a :class:`~ingestors.types.Hypnogram` of fixed epochs (see
:mod:`ingestors._epochs` for the rules all hypnogram readers share). Errors name the file,
line and column. :func:`read_hypnogram_table` is re-exported by
:mod:`ingestors.hypnogram_io`, whose :func:`~ingestors.hypnogram_io.read_scoring`
dispatches here for ``.csv``, ``.tsv`` and ``.txt`` files.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Final, NamedTuple

from ingestors._epochs import Scored, Segment, build_hypnogram, check_epoch
from ingestors.errors import DataFormatError
from ingestors.types import EPOCH_S, NOMINAL_START, Hypnogram, require_aware
from models.stages import Stage, StageCodeError, parse_stage

__all__ = ["read_hypnogram_table"]

_ONSET_COLUMNS: Final = ("onset", "onset_s")


class _Table(NamedTuple):
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # (1-based line, fields)
    meta: dict[str, tuple[int, str]]  # key -> (line, value) from "# key: value" comments


def _split_table(path: Path) -> _Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, "file is not UTF-8 text", got=str(exc),
                              fix="Save the table as UTF-8 CSV or TSV.") from None
    meta: dict[str, tuple[int, str]] = {}
    content: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            if sep and not content:  # metadata only above the header line
                meta.setdefault(key.strip().lower(), (n, value.strip()))
        elif stripped:
            content.append((n, line))
    if not content:
        raise DataFormatError(path, "no header line", expected="a header such as "
                              "'onset,duration,stage' or 'stage'", fix="Add the header line.")
    head_line, head = content[0]
    delimiter = _sniff(path, head_line, head)
    columns = [c.strip().lower() for c in next(csv.reader([head], delimiter=delimiter))]
    rows = [(n, next(csv.reader([line], delimiter=delimiter))) for n, line in content[1:]]
    for n, fields in rows:
        if len(fields) != len(columns):
            raise DataFormatError(path, "wrong number of fields", line=n,
                                  expected=f"{len(columns)} ({', '.join(columns)})",
                                  got=len(fields), fix="Quote fields that contain the "
                                  "delimiter and remove trailing delimiters.")
    return _Table(columns, rows, meta)


def _sniff(path: Path, line: int, header: str) -> str:
    if "\t" in header:
        return "\t"
    if "," in header or header.strip().lower() == "stage":
        return ","
    found = sorted({c for c in header if c in ";| :"}) or ["none"]
    raise DataFormatError(
        path, f"header is neither comma- nor tab-separated (found {', '.join(map(repr, found))})",
        line=line, expected="columns 'onset,duration,stage' or 'stage', separated by ',' or "
        "TAB", got=header, fix="Save the table as CSV (comma) or TSV (tab).",
    )


def _cell_number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(path, "not a number", line=line, field=column, got=text,
                              fix="Write seconds as a plain number such as 30 or 30.0.") from None
    if not math.isfinite(value):
        raise DataFormatError(path, "NaN or infinite value", line=line, field=column, got=text,
                              fix="Every row needs a finite number here; remove the row.")
    return value


def _cell_stage(path: Path, line: int, text: str) -> Stage:
    try:
        return parse_stage(text, "text")
    except StageCodeError as exc:
        raise DataFormatError(path, "unknown stage", line=line, field="stage", got=text,
                              fix=str(exc)) from None


def _table_segments(path: Path, table: _Table, epoch_s: float) -> list[Segment]:
    cols = table.columns
    onset_col = next((c for c in _ONSET_COLUMNS if c in cols), None)
    if "stage" not in cols or ("duration" in cols and onset_col is None):
        raise DataFormatError(
            path, "missing column", field="stage" if "stage" not in cols else "onset",
            expected="'onset', 'duration', 'stage' (BIDS events) or 'stage' with optional "
            "'epoch'/'onset' (one row per epoch)", got=cols, fix="Rename the header columns.",
        )
    by_duration = onset_col is not None and "duration" in cols
    segments: list[Segment] = []
    for i, (line, fields) in enumerate(table.rows):
        cell = dict(zip(cols, fields, strict=True))
        if onset_col is not None:
            onset = _cell_number(path, line, onset_col, cell[onset_col])
        elif "epoch" in cols:
            onset = _cell_number(path, line, "epoch", cell["epoch"]) * epoch_s
        else:
            onset = i * epoch_s
        duration = _cell_number(path, line, "duration", cell["duration"]) if by_duration \
            else epoch_s
        if segments and onset <= segments[-1].onset_s:
            raise DataFormatError(
                path, "onsets do not increase", line=line, field=onset_col or "epoch",
                got=f"{onset:g} s after {segments[-1].onset_s:g} s on line {segments[-1].line}",
                fix="Sort the rows by onset and remove duplicates.",
            )
        segments.append(Segment(onset, duration, cell["stage"].strip(),
                                 _cell_stage(path, line, cell["stage"]),
                                 f"the row with onset {onset:g} s", line))
    return segments


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(side, f"sidecar is not valid JSON ({exc})",
                              fix="Repair it or delete it.") from None
    if not isinstance(data, dict):
        raise DataFormatError(side, "sidecar is not a JSON object", got=type(data).__name__)
    return data


def _meta_start(path: Path, table: _Table, side: dict[str, Any]) -> datetime | None:
    line, text = table.meta.get("start", (None, side.get("StartTime")))
    if text is None:
        return None
    where = path if line is not None else path.with_suffix(".json")
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise DataFormatError(where, "start time is not ISO 8601 with a UTC offset", line=line,
                              field="start" if line else "StartTime", got=text,
                              fix="Write it like 2024-03-01T22:30:00+01:00.")
    return when


def _meta_epoch(path: Path, table: _Table, side: dict[str, Any]) -> float:
    line, text = table.meta.get("epoch_s", (None, side.get("EpochLength", EPOCH_S)))
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataFormatError(path, "epoch length must be a positive number of seconds",
                              line=line, field="epoch_s", got=text, fix="Write e.g. 30.")
    return value


def load_hypnogram_table(
    path: str | PathLike[str], *, start: datetime | None = None, epoch_s: float | None = None
) -> Scored:
    """Read a CSV/TSV hypnogram; it has no other events, so the event list is empty.

    The loader behind :func:`read_hypnogram_table` and
    :func:`ingestors.hypnogram_io.read_scoring`; parameters and errors as for
    :func:`read_hypnogram_table`.
    """
    path = Path(path)
    table = _split_table(path)
    side = _sidecar(path)
    found_start = _meta_start(path, table, side) if start is None else require_aware(start)
    epoch = _meta_epoch(path, table, side) if epoch_s is None else check_epoch(epoch_s)
    subject = table.meta.get("subject", (0, str(side.get("Subject") or path.stem)))[1]
    segments = _table_segments(path, table, epoch)
    origin = NOMINAL_START if found_start is None else found_start
    hyp, _ = build_hypnogram(path, segments, epoch, origin, subject,
                             nominal=found_start is None)
    return hyp, []


def read_hypnogram_table(
    path: str | PathLike[str], *, start: datetime | None = None, epoch_s: float | None = None
) -> Hypnogram:
    """Read a CSV or TSV hypnogram (BIDS-style events or one stage per epoch).

    Parameters
    ----------
    path : path-like
        A table whose header is comma- or tab-separated, with either the columns
        ``onset, duration, stage`` (seconds; runs of any whole number of epochs) or a
        ``stage`` column, one row per epoch, with optional ``epoch`` (index) or
        ``onset``/``onset_s`` (seconds). Other columns are ignored. Stage strings are read
        with :func:`models.stages.parse_stage` scheme ``"text"`` (``W``, ``N1``, ``REM``,
        ``Sleep stage 2``, ``n/a`` ...). Lines starting with ``#`` are comments; ``# start:
        <ISO 8601 with offset>``, ``# epoch_s: 30`` and ``# subject: ...`` are read as
        metadata. A JSON sidecar with the same stem (``StartTime``, ``EpochLength``,
        ``Subject``, as written by :func:`~ingestors.hypnogram_writers.write_bids_tsv`) is
        used where comments say nothing.
    start : datetime, optional
        Timezone-aware time of onset 0; overrides the file. Without it and without
        metadata the hypnogram starts at NOMINAL_START with ``start_is_nominal=True``.
    epoch_s : float, optional
        Epoch length; overrides the file's metadata (default 30 s).

    Returns
    -------
    Hypnogram
        Codes are the stage cells as written.

    Raises
    ------
    DataFormatError
        Naming the file, line and column: header not comma/tab separated, missing column,
        wrong field count, non-numeric or NaN onset or duration, unknown stage, onsets that
        do not increase, overlapping rows, durations that are not whole epochs.
    """
    return load_hypnogram_table(path, start=start, epoch_s=epoch_s)[0]
