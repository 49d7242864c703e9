"""Hypnogram files: Sleep-EDF EDF+ annotations, NSRR XML and CSV/TSV tables.

Every reader returns a :class:`ingestors.types.Hypnogram` of fixed epochs: stage entries of
any length (a Sleep-EDF annotation of 30630 s, a BIDS row of 90 s) are expanded into
``epoch_s`` epochs, each keeping the code it had in the source. Two rules hold everywhere:

* ``hypnogram.start`` is the source's time zero plus the onset of the first stage entry;
  the events of :class:`Scoring` are in seconds since ``hypnogram.start``.
* Durations and gaps must be whole multiples of ``epoch_s``; gaps between stage entries
  become :attr:`~models.stages.Stage.UNSCORED` epochs (with code ``""``) and a
  :class:`~ingestors.errors.DataQualityWarning`; overlapping entries are an error.

The writers live in :mod:`ingestors.hypnogram_writers` and are re-exported here.
"""

from __future__ import annotations

import csv
import json
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from os import PathLike
from pathlib import Path
from typing import Any, Final, NamedTuple
from xml.parsers import expat
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ingestors.edf import read_edf
from ingestors.errors import DataFormatError, DataQualityWarning, format_problem
from ingestors.hypnogram_writers import write_bids_tsv, write_csv, write_edf_annotations
from ingestors.types import EPOCH_S, NOMINAL_START, Event, Hypnogram, require_aware
from models.stages import Stage, StageCodeError, parse_stage

__all__ = [
    "SLEEP_EDF_TZ",
    "Scoring",
    "read_edf_hypnogram",
    "read_hypnogram",
    "read_hypnogram_table",
    "read_nsrr_xml",
    "read_scoring",
    "write_bids_tsv",
    "write_csv",
    "write_edf_annotations",
]

#: Time zone of the Sleep-EDF recordings (Leiden, the Netherlands).
SLEEP_EDF_TZ: Final[tzinfo] = ZoneInfo("Europe/Amsterdam")

_TOL_S: Final = 1e-3  # onsets written with millisecond precision still line up
_MAX_XML_BYTES: Final = 64 * 2**20  # NSRR XML files are well under 5 MB
_ONSET_COLUMNS: Final = ("onset", "onset_s")


class Scoring(NamedTuple):
    """A hypnogram and the other scored events of the same file.

    Attributes
    ----------
    hypnogram : Hypnogram
        The stages in fixed epochs.
    events : list of Event
        Non-stage annotations (arousals, respiratory events, notes), onsets in seconds
        since ``hypnogram.start``.
    """

    hypnogram: Hypnogram
    events: list[Event]


class _Segment(NamedTuple):
    onset_s: float
    duration_s: float
    code: str
    stage: Stage
    where: str
    line: int | None = None


def _n_epochs(path: Path, seconds: float, epoch_s: float, seg: _Segment, what: str) -> int:
    n = round(seconds / epoch_s)
    if n < 1 or abs(n * epoch_s - seconds) > _TOL_S:
        raise DataFormatError(
            path, f"{what} {seg.where} is not a positive multiple of the {epoch_s:g}-s epoch",
            line=seg.line, got=f"{seconds:g} s",
            fix="Fix the scoring file, or pass the epoch length it was scored with.",
        )
    return n


def _expand(
    path: Path, segments: Sequence[_Segment], epoch_s: float
) -> tuple[NDArray[np.int8], tuple[str, ...], float]:
    """Stages and codes per epoch, and the onset of epoch 0, from ordered stage entries."""
    if not segments:
        raise DataFormatError(path, "no sleep-stage entries found",
                              fix="Check that this file holds a scored hypnogram.")
    stages: list[int] = []
    codes: list[str] = []
    end = segments[0].onset_s
    gaps: list[str] = []
    for seg in segments:
        n = _n_epochs(path, seg.duration_s, epoch_s, seg, "duration of")
        gap = seg.onset_s - end
        if gap < -_TOL_S:
            raise DataFormatError(
                path, f"{seg.where} starts before the previous stage entry ends at {end:g} s",
                line=seg.line, expected="stage entries that do not overlap",
                fix="Remove the duplicate entry or correct its onset.",
            )
        if gap > _TOL_S:
            k = _n_epochs(path, gap, epoch_s, seg, "gap before")
            stages += [Stage.UNSCORED] * k
            codes += [""] * k
            gaps.append(f"{k} before {seg.where}")
        stages += [int(seg.stage)] * n
        codes += [seg.code] * n
        end = seg.onset_s + n * epoch_s
    if gaps:
        warnings.warn(
            format_problem(path, f"{len(gaps)} gap(s) between stage entries filled with "
                           f"UNSCORED epochs ({'; '.join(gaps[:3])})",
                           fix="Check that the scoring export is complete."),
            DataQualityWarning, stacklevel=5,
        )
    return np.asarray(stages, dtype=np.int8), tuple(codes), segments[0].onset_s


def _check_epoch(epoch_s: float) -> float:
    if isinstance(epoch_s, bool) or not isinstance(epoch_s, (int, float)):
        msg = f"`epoch_s` must be a number of seconds; got {type(epoch_s).__name__}"
        raise TypeError(msg)
    if not (math.isfinite(epoch_s) and epoch_s > 0):
        msg = f"`epoch_s` must be a finite number of seconds > 0; got {epoch_s}. Use e.g. 30."
        raise ValueError(msg)
    return float(epoch_s)


def _hypnogram(
    path: Path, segments: Sequence[_Segment], epoch_s: float, start: datetime,
    subject: str, *, nominal: bool = False,
) -> tuple[Hypnogram, float]:
    stages, codes, t0 = _expand(path, segments, epoch_s)
    hyp = Hypnogram(stages, start + timedelta(seconds=t0), epoch_s, codes, subject, str(path),
                    nominal)
    return hyp, t0


def _shift(events: list[Event], t0: float) -> list[Event]:
    return [Event(e.onset_s - t0, e.duration_s, e.label, e.description) for e in events]


# -- EDF+ (Sleep-EDF) ---------------------------------------------------------------------


def _load_edf(
    path: str | PathLike[str], *, tz: tzinfo | str = SLEEP_EDF_TZ, epoch_s: float = EPOCH_S
) -> Scoring:
    epoch_s = _check_epoch(epoch_s)
    rec = read_edf(path, channels=[], tz=tz)
    segments: list[_Segment] = []
    events: list[Event] = []
    for i, ann in enumerate(rec.annotations):
        try:
            stage = parse_stage(ann.label, "sleep-edf")
        except StageCodeError as exc:
            if ann.label.strip().lower().startswith("sleep stage"):
                raise DataFormatError(rec.path, f"unknown stage in annotation {i} at onset "
                                      f"{ann.onset_s:g} s", field="annotation",
                                      got=ann.label, fix=str(exc)) from None
            events.append(ann)
            continue
        where = f"annotation {i} ({ann.label!r} at onset {ann.onset_s:g} s)"
        segments.append(_Segment(ann.onset_s, ann.duration_s, ann.label, stage, where))
    segments.sort(key=lambda s: s.onset_s)
    subject = rec.patient["code"] or re.sub(r"-hypnogram$", "", rec.path.stem, flags=re.I)
    hyp, t0 = _hypnogram(rec.path, segments, epoch_s, rec.start, subject)
    return Scoring(hyp, _shift(events, t0))


def read_edf_hypnogram(
    path: str | PathLike[str], *, tz: tzinfo | str = SLEEP_EDF_TZ, epoch_s: float = EPOCH_S
) -> Hypnogram:
    """Read an EDF+ hypnogram as published by Sleep-EDF (``SC4001EC-Hypnogram.edf``).

    Parameters
    ----------
    path : path-like
        EDF+ file whose annotations (``"Sleep stage W/1/2/3/4/R/?"``, ``"Movement time"``)
        carry the stages; any signals in it are ignored.
    tz : tzinfo or str
        Time zone of the header clock time; Sleep-EDF was recorded in the Netherlands.
    epoch_s : float
        Epoch length in seconds; every stage annotation must last a whole number of epochs.

    Returns
    -------
    Hypnogram
        Codes as in the file (``"Sleep stage 4"``); subject from the EDF+ patient code, else
        the file name without ``-Hypnogram``. Other annotations: see :func:`read_scoring`.

    Raises
    ------
    DataFormatError
        If the file is not a readable EDF+ file, holds no stage annotation, an unknown
        ``"Sleep stage"`` text, a duration that is not a multiple of ``epoch_s`` or two
        overlapping stages.
    """
    return _load_edf(path, tz=tz, epoch_s=epoch_s).hypnogram


# -- NSRR XML -----------------------------------------------------------------------------


def _guard_xml(path: Path, data: bytes) -> list[int]:
    """Check XML with expat and return the line of each ``<ScoredEvent>``, in order.

    DOCTYPE and ENTITY declarations are refused before ElementTree sees the text, which
    rules out entity expansion bombs and external entities (defusedxml is not installed).
    """
    parser = expat.ParserCreate()
    lines: list[int] = []

    def refuse(what: str) -> Callable[..., None]:
        def handler(*_: object) -> None:
            raise DataFormatError(
                path, f"XML {what} declarations are not accepted",
                line=parser.CurrentLineNumber, expected="an NSRR PSGAnnotation document",
                fix="Remove the DOCTYPE/ENTITY declarations; NSRR files have none.",
            )
        return handler

    def start(name: str, _attrs: object) -> None:
        if name == "ScoredEvent":
            lines.append(parser.CurrentLineNumber)

    parser.StartDoctypeDeclHandler = refuse("DOCTYPE")
    parser.EntityDeclHandler = refuse("ENTITY")
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise DataFormatError(path, f"malformed XML: {expat.ErrorString(exc.code)}",
                              line=exc.lineno, fix="Repair or re-export the XML file.") from None
    return lines


def _xml_number(path: Path, elem: ET.Element, tag: str, line: int | None) -> float:
    text = (elem.findtext(tag) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataFormatError(path, f"<{tag}> is not a finite number", line=line, field=tag,
                              got=text, fix="Repair the XML file.")
    return value


def _load_nsrr(path: str | PathLike[str], *, start: datetime | None = None) -> Scoring:
    path = Path(path)
    origin = NOMINAL_START if start is None else require_aware(start, "start")
    if path.stat().st_size > _MAX_XML_BYTES:
        raise DataFormatError(path, "XML file is too large for a hypnogram",
                              expected=f"at most {_MAX_XML_BYTES} bytes",
                              got=f"{path.stat().st_size} bytes")
    data = path.read_bytes()
    lines = _guard_xml(path, data)
    root = ET.fromstring(data)  # already parsed once by expat without error
    if root.tag != "PSGAnnotation":
        raise DataFormatError(path, "not an NSRR annotation file", field="root element",
                              expected="<PSGAnnotation>", got=f"<{root.tag}>")
    epoch_s = _xml_number(path, root, "EpochLength", None) if root.find("EpochLength") \
        is not None else EPOCH_S
    segments: list[_Segment] = []
    events: list[Event] = []
    for i, (elem, line) in enumerate(zip(root.iter("ScoredEvent"), lines, strict=True)):
        etype = (elem.findtext("EventType") or "").split("|")[0].strip()
        concept = (elem.findtext("EventConcept") or "").strip()
        if concept == "Recording Start Time":  # metadata, not an event
            continue
        onset = _xml_number(path, elem, "Start", line)
        duration = _xml_number(path, elem, "Duration", line)
        if etype.lower() != "stages":
            events.append(Event(onset, duration, concept, etype))
            continue
        try:
            stage = parse_stage(concept, "nsrr")
        except StageCodeError as exc:
            raise DataFormatError(path, f"unknown stage in ScoredEvent {i}", line=line,
                                  field="EventConcept", got=concept, fix=str(exc)) from None
        where = f"ScoredEvent {i} ({concept!r} at Start {onset:g} s)"
        segments.append(_Segment(onset, duration, concept, stage, where, line))
    segments.sort(key=lambda s: s.onset_s)
    hyp, t0 = _hypnogram(path, segments, epoch_s, origin, path.stem, nominal=start is None)
    return Scoring(hyp, _shift(events, t0))


def read_nsrr_xml(path: str | PathLike[str], *, start: datetime | None = None) -> Hypnogram:
    """Read an NSRR XML annotation file (``<PSGAnnotation>``, SHHS/MESA/CFS exports).

    Parameters
    ----------
    path : path-like
        The XML file. Stage events have ``<EventType>Stages|Stages</EventType>`` and an
        ``<EventConcept>`` such as ``"Stage 2 sleep|2"``; the epoch length is
        ``<EpochLength>`` (30 s when absent).
    start : datetime, optional
        Timezone-aware clock time of ``Start == 0`` (the EDF's start). NSRR XML carries no
        date, so without it the hypnogram starts at :data:`~ingestors.types.NOMINAL_START`
        with ``start_is_nominal=True``.

    Returns
    -------
    Hypnogram
        Codes as in the file (``"Stage 4 sleep|4"``); subject is the file stem. Respiratory
        events, arousals etc.: see :func:`read_scoring`.

    Raises
    ------
    DataFormatError
        If the XML is malformed (with the parser's line number), declares a DOCTYPE or
        entities, is not a ``PSGAnnotation``, or its stages are unknown, overlap or do not
        fill whole epochs.
    """
    return _load_nsrr(path, start=start).hypnogram


# -- CSV / TSV tables ---------------------------------------------------------------------


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


def _table_segments(path: Path, table: _Table, epoch_s: float) -> list[_Segment]:
    cols = table.columns
    onset_col = next((c for c in _ONSET_COLUMNS if c in cols), None)
    if "stage" not in cols or ("duration" in cols and onset_col is None):
        raise DataFormatError(
            path, "missing column", field="stage" if "stage" not in cols else "onset",
            expected="'onset', 'duration', 'stage' (BIDS events) or 'stage' with optional "
            "'epoch'/'onset' (one row per epoch)", got=cols, fix="Rename the header columns.",
        )
    by_duration = onset_col is not None and "duration" in cols
    segments: list[_Segment] = []
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
        segments.append(_Segment(onset, duration, cell["stage"].strip(),
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


def _load_table(
    path: str | PathLike[str], *, start: datetime | None = None, epoch_s: float | None = None
) -> Scoring:
    path = Path(path)
    table = _split_table(path)
    side = _sidecar(path)
    found_start = _meta_start(path, table, side) if start is None else require_aware(start)
    epoch = _meta_epoch(path, table, side) if epoch_s is None else _check_epoch(epoch_s)
    subject = table.meta.get("subject", (0, str(side.get("Subject") or path.stem)))[1]
    segments = _table_segments(path, table, epoch)
    origin = NOMINAL_START if found_start is None else found_start
    hyp, _ = _hypnogram(path, segments, epoch, origin, subject, nominal=found_start is None)
    return Scoring(hyp, [])


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
        ``Subject``, as written by :func:`write_bids_tsv`) is used where comments say nothing.
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
    return _load_table(path, start=start, epoch_s=epoch_s).hypnogram


# -- dispatch -----------------------------------------------------------------------------

_LOADERS: Final[dict[str, Callable[..., Scoring]]] = {
    ".edf": _load_edf, ".xml": _load_nsrr, ".csv": _load_table, ".tsv": _load_table,
    ".txt": _load_table,
}

# What each reader is called in messages, and the keyword options it takes.
_KINDS: Final[dict[Callable[..., Scoring], tuple[str, tuple[str, ...]]]] = {
    _load_edf: ("EDF+ annotations", ("tz", "epoch_s")),
    _load_nsrr: ("NSRR XML", ("start",)),
    _load_table: ("a CSV/TSV table", ("start", "epoch_s")),
}


def _loader(path: Path) -> Callable[..., Scoring]:
    suffix = path.suffix.lower()
    if suffix in _LOADERS:
        return _LOADERS[suffix]
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == b"0       ":
        return _load_edf
    return _load_nsrr if head.lstrip().startswith(b"<") else _load_table


def read_scoring(path: str | PathLike[str], **kwargs: Any) -> Scoring:
    """Read a hypnogram and the file's other events, choosing the reader by file type.

    ``.edf`` -> :func:`read_edf_hypnogram`, ``.xml`` -> :func:`read_nsrr_xml`, ``.csv``,
    ``.tsv``, ``.txt`` -> :func:`read_hypnogram_table`; other names are recognised by their
    first bytes. ``kwargs`` go to that reader (``tz``, ``start``, ``epoch_s``).
    """
    loader = _loader(Path(path))
    kind, options = _KINDS[loader]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        msg = (
            f"{', '.join(map(repr, unknown))}: not an option for {Path(path).name}, read as "
            f"{kind}; expected some of {list(options)}. Drop the option."
        )
        raise TypeError(msg)
    return loader(path, **kwargs)


def read_hypnogram(path: str | PathLike[str], **kwargs: Any) -> Hypnogram:
    """Read any supported hypnogram file; see :func:`read_scoring` for the dispatch."""
    return read_scoring(path, **kwargs).hypnogram
