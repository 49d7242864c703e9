"""Hypnogram files: Sleep-EDF EDF+ annotations, NSRR XML and CSV/TSV tables.

Every reader returns a :class:`ingestors.types.Hypnogram` of fixed epochs: stage entries of
any length (a Sleep-EDF annotation of 30630 s, a BIDS row of 90 s) are expanded into
``epoch_s`` epochs, each keeping the code it had in the source. Two rules hold everywhere:

* ``hypnogram.start`` is the source's time zero plus the onset of the first stage entry;
  the events of :class:`Scoring` are in seconds since ``hypnogram.start``.
* Durations and gaps must be whole multiples of ``epoch_s``; gaps between stage entries
  become :attr:`~models.stages.Stage.UNSCORED` epochs (with code ``""``) and a
  :class:`~ingestors.errors.DataQualityWarning`; overlapping entries are an error.

This module holds the EDF+ reader and the dispatch (:func:`read_scoring`,
:func:`read_hypnogram`). The NSRR XML reader lives in :mod:`ingestors.nsrr_xml`, the CSV/TSV
reader in :mod:`ingestors.hypnogram_table`, the epoch expansion they share in
:mod:`ingestors._epochs` and the writers in :mod:`ingestors.hypnogram_writers`; their public
names are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import tzinfo
from os import PathLike
from pathlib import Path
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from ingestors._epochs import Scored, Segment, build_hypnogram, check_epoch, shift_events
from ingestors.edf import read_edf
from ingestors.errors import DataFormatError
from ingestors.hypnogram_table import load_hypnogram_table, read_hypnogram_table
from ingestors.hypnogram_writers import (
    SLEEP_EDF_NAMES,
    STAGE_NAMES,
    write_bids_tsv,
    write_csv,
    write_edf_annotations,
)
from ingestors.nsrr_xml import load_nsrr_xml, read_nsrr_xml
from ingestors.types import EPOCH_S, Event, Hypnogram
from models.stages import StageCodeError, parse_stage

__all__ = [
    "SLEEP_EDF_NAMES",
    "SLEEP_EDF_TZ",
    "STAGE_NAMES",
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


# -- EDF+ (Sleep-EDF) ---------------------------------------------------------------------


def _load_edf(
    path: str | PathLike[str], *, tz: tzinfo | str = SLEEP_EDF_TZ, epoch_s: float = EPOCH_S
) -> Scoring:
    epoch_s = check_epoch(epoch_s)
    rec = read_edf(path, channels=[], tz=tz)
    segments: list[Segment] = []
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
        segments.append(Segment(ann.onset_s, ann.duration_s, ann.label, stage, where))
    segments.sort(key=lambda s: s.onset_s)
    subject = rec.patient["code"] or re.sub(r"-hypnogram$", "", rec.path.stem, flags=re.I)
    hyp, t0 = build_hypnogram(rec.path, segments, epoch_s, rec.start, subject)
    return Scoring(hyp, shift_events(events, t0))


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


# -- dispatch -----------------------------------------------------------------------------

_LOADERS: Final[dict[str, Callable[..., Scored]]] = {
    ".edf": _load_edf, ".xml": load_nsrr_xml, ".csv": load_hypnogram_table,
    ".tsv": load_hypnogram_table, ".txt": load_hypnogram_table,
}

# What each reader is called in messages, and the keyword options it takes.
_KINDS: Final[dict[Callable[..., Scored], tuple[str, tuple[str, ...]]]] = {
    _load_edf: ("EDF+ annotations", ("tz", "epoch_s")),
    load_nsrr_xml: ("NSRR XML", ("start",)),
    load_hypnogram_table: ("a CSV/TSV table", ("start", "epoch_s")),
}


def _loader(path: Path) -> Callable[..., Scored]:
    suffix = path.suffix.lower()
    if suffix in _LOADERS:
        return _LOADERS[suffix]
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == b"0       ":
        return _load_edf
    return load_nsrr_xml if head.lstrip().startswith(b"<") else load_hypnogram_table


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
    hypnogram, events = loader(path, **kwargs)
    return Scoring(hypnogram, events)


def read_hypnogram(path: str | PathLike[str], **kwargs: Any) -> Hypnogram:
    """Read any supported hypnogram file; see :func:`read_scoring` for the dispatch."""
    return read_scoring(path, **kwargs).hypnogram
