r"""EDF+ time-stamped annotation lists (TALs): annotations and the start time of each record.

An annotation signal holds, in every data record, TALs ``+onset[\x15duration]\x14text\x14
[text\x14 ...]\x00``. The first TAL of each record in the first annotation signal keeps
time: its onset is the start of that record (for record 0, the sub-second part of the
recording start) and its first, empty, text is not an annotation. :func:`read_tals` reads
them as edflib (pyedflib) does, onsets counted in 100-ns steps, and places the records in
time; it is used by :meth:`ingestors.edf_decode.EdfDecoder.read`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError
from ingestors.types import Event

__all__ = ["RecordTimes", "read_tals"]

_TAL: Final = re.compile(rb"([+-]\d+(?:\.\d+)?)(?:\x15(\d+(?:\.\d+)?))?\x14((?:[^\x14]*\x14)*)",
                         re.S)
_UNITS: Final = 10_000_000  # TAL times in 100-ns steps, as edflib counts them
_LISTED: Final = 5  # gaps and records named in a note before "... and N more"


class RecordTimes(NamedTuple):
    """When the data records of an EDF+ file start.

    Attributes
    ----------
    start_offset_s : float
        Start of record 0 after the header's start time (the sub-second part of the start).
    record_onsets_s : ndarray of float64 or None
        Start of each record in seconds since the recording start when the records are not
        contiguous (EDF+D with gaps); ``None`` when each starts where the one before ended.
    """

    start_offset_s: float
    record_onsets_s: NDArray[np.float64] | None


class _Tal(NamedTuple):
    onset: int
    duration_s: float
    texts: list[bytes]


def _time(text: bytes) -> int:
    """``b"+12.5"`` -> 125000000: 100-ns steps; digits past the 7th decimal are dropped."""
    sign = -1 if text[:1] == b"-" else 1
    whole, _, frac = text[1:].partition(b".")
    return sign * (int(whole) * _UNITS + int((frac + b"0000000")[:7]))


def _parse(raw: bytes) -> tuple[list[_Tal], int]:
    """The TALs in one annotation signal of one record, and how many were malformed."""
    tals, bad = [], 0
    for chunk in raw.split(b"\x00"):
        if not chunk:
            continue
        match = _TAL.fullmatch(chunk)
        if match is None:
            bad += 1
            continue
        duration = float(match[2]) if match[2] else 0.0
        tals.append(_Tal(_time(match[1]), duration, match[3].split(b"\x14")[:-1]))
    return tals, bad


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more


class _Collected(NamedTuple):
    keeping: list[int | None]
    events: list[tuple[int, float, bytes]]
    malformed: list[str]


def _collect(tals: list[list[bytes]]) -> _Collected:
    keeping: list[int | None] = []
    events: list[tuple[int, float, bytes]] = []
    malformed: list[str] = []
    for record, signals in enumerate(tals):
        for signal, raw in enumerate(signals):
            parsed, bad = _parse(raw)
            if bad:
                malformed.append(f"record {record}" + (f" (annotation signal {signal + 1})"
                                                       if signal else ""))
            if signal == 0:
                keeping.append(parsed[0].onset if parsed else None)
                if parsed:
                    parsed[0] = parsed[0]._replace(texts=parsed[0].texts[1:])
            events += [(tal.onset, tal.duration_s, text) for tal in parsed for text in tal.texts]
    return _Collected(keeping, events, malformed)


def _onsets(path: Path, keeping: list[int | None], offset: int, record_s: float,
            slack_s: float, notes: list[str]) -> NDArray[np.float64] | None:
    """Record starts in s after the start if there are gaps, else ``None``.

    A record that starts less than ``slack_s`` off the end of the one before follows it:
    rounding in a writer's record duration or TAL times is no gap.
    """
    step, slack = round(record_s * _UNITS), round(slack_s * _UNITS)
    onsets: list[int] = []
    missing = []
    for record, kept in enumerate(keeping):
        now = kept - offset if kept is not None else (onsets[-1] + step if onsets else 0)
        if kept is None:
            missing.append(str(record))
        if onsets and now < onsets[-1] + step - slack:
            raise DataFormatError(
                path, f"data record {record} starts at {now / _UNITS:g} s, before data record "
                f"{record - 1} ends at {(onsets[-1] + step) / _UNITS:g} s",
                field="EDF Annotations", expected=f"each record to start at least one record "
                f"duration ({record_s:g} s) after the one before", got=f"{now / _UNITS:g} s",
                fix="The record times in the file are damaged; re-export the recording.")
        onsets.append(now)
    if missing:
        notes.append(f"data records {_listed(missing)} have no time-keeping TAL; each was "
                     "taken to start where the one before ended")
    gaps = [f"{(a + step) / _UNITS:g} s to {b / _UNITS:g} s"
            for a, b in zip(onsets, onsets[1:], strict=False) if b > a + step + slack]
    if not gaps:
        return None
    notes.append(f"the record start times in the TALs leave {len(gaps)} gap(s) without data, "
                 f"{_listed(gaps)} after the start; the samples are placed at their true times "
                 "(record_onsets_s) and nothing is filled in")
    return np.asarray(onsets, dtype=np.float64) / _UNITS


def _text(raw: bytes, odd: list[str]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        odd.append(repr(text))
        return text


def read_tals(path: Path, tals: list[list[bytes]], record_s: float, *, slack_s: float | None,
              ) -> tuple[RecordTimes, list[Event], list[str]]:
    """Read the TALs of a whole EDF+ file.

    Parameters
    ----------
    path : pathlib.Path
        The file (for messages).
    tals : list of list of bytes
        Per data record, the bytes of each annotation signal, in file order.
    record_s : float
        Duration of a data record in seconds.
    slack_s : float or None
        How far (s) a record may start off the end of the one before and still follow it
        (half the shortest sample interval); ``None`` for a file without ordinary signals,
        whose records need no placing.

    Returns
    -------
    times : RecordTimes
        Start offset and, if the records are not contiguous, their start times.
    events : list of Event
        The annotations, onsets in seconds since the recording start, durations 0 when
        none is given, in file order.
    notes : list of str
        What was tolerated (malformed TALs skipped, non-UTF-8 text, a late first record,
        records without time keeping, gaps).

    Raises
    ------
    DataFormatError
        If a data record starts before the one before it ends.
    """
    found = _collect(tals)
    notes = []
    if found.malformed:
        notes.append(f"malformed TALs in {_listed(found.malformed)} were skipped (their "
                     "annotations are lost)")
    first = found.keeping[0] if found.keeping else None
    offset = first if first is not None else 0
    if not 0 <= offset < _UNITS:
        notes.append(f"the first data record starts {offset / _UNITS:g} s after the header's "
                     "start time (EDF+ allows 0 to 1 s); the start was moved there")
    onsets = None if slack_s is None else _onsets(path, found.keeping, offset, record_s,
                                                  slack_s, notes)
    odd: list[str] = []
    events = [Event((onset - offset) / _UNITS, duration, _text(text, odd))
              for onset, duration, text in found.events]
    if odd:
        notes.append(f"annotation texts that are not UTF-8 ({_listed(odd)}) were decoded as "
                     "Latin-1")
    return RecordTimes(offset / _UNITS, onsets), events, notes
