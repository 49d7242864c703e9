"""NSRR XML annotation files (``<PSGAnnotation>``, as exported for SHHS, MESA and CFS).

Stage events become a :class:`~ingestors.types.Hypnogram` of fixed epochs (see
:mod:`ingestors._epochs` for the rules all hypnogram readers share); the other scored
events are returned by :func:`ingestors.hypnogram_io.read_scoring`, which dispatches here
for ``.xml`` files. :func:`read_nsrr_xml` is re-exported by :mod:`ingestors.hypnogram_io`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Final
from xml.parsers import expat

from ingestors._epochs import Scored, Segment, build_hypnogram, shift_events
from ingestors.errors import DataFormatError
from ingestors.types import EPOCH_S, NOMINAL_START, Event, Hypnogram, require_aware
from models.stages import StageCodeError, parse_stage

__all__ = ["read_nsrr_xml"]

_MAX_XML_BYTES: Final = 64 * 2**20  # NSRR XML files are well under 5 MB


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


def load_nsrr_xml(path: str | PathLike[str], *, start: datetime | None = None) -> Scored:
    """Read an NSRR XML file into its hypnogram and its other events.

    The loader behind :func:`read_nsrr_xml` and :func:`ingestors.hypnogram_io.read_scoring`;
    parameters and errors as for :func:`read_nsrr_xml`. Event onsets are in seconds since
    the hypnogram's start.
    """
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
    segments: list[Segment] = []
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
        segments.append(Segment(onset, duration, concept, stage, where, line))
    segments.sort(key=lambda s: s.onset_s)
    hyp, t0 = build_hypnogram(path, segments, epoch_s, origin, path.stem,
                              nominal=start is None)
    return hyp, shift_events(events, t0)


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
        events, arousals etc.: see :func:`~ingestors.hypnogram_io.read_scoring`.

    Raises
    ------
    DataFormatError
        If the XML is malformed (with the parser's line number), declares a DOCTYPE or
        entities, is not a ``PSGAnnotation``, or its stages are unknown, overlap or do not
        fill whole epochs.
    """
    return load_nsrr_xml(path, start=start)[0]
