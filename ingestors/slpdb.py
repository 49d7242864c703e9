"""MIT-BIH Polysomnographic Database (SLPDB) text dumps: headers, RR intervals, stages, events.

A record ``<rec>`` is three text files in one folder:

* ``<rec>.hea``, the WFDB header (sampling rate, start, signals, ``# age sex weight ...``);
* ``<rec>.rr``, WFDB ``ann2rr`` output of the expert beat annotations, one beat per line;
* ``<rec>.an``, WFDB ``rdann`` output of the ``.st`` annotations: one line per 30-s epoch whose
  ``Aux`` text starts with the R&K stage and goes on with the events scored in that epoch.

:mod:`ingestors.wfdb_text` parses these formats; this module holds what is SLPDB's own: codes,
time zone, subjects and records. The header is required; a record without ``.rr`` or ``.an``
still reads, with that part ``None`` and a note in :attr:`SlpdbRecord.problems`, which also
lists what is odd but faithful to the source (late scoring, RR gaps of minutes, doubly
annotated beats); warnings are kept for what the reader repaired. Malformed files raise
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
from ingestors.types import EPOCH_S, NOMINAL_START, Event, Hypnogram, require_aware
from ingestors.wfdb_rdann import read_rdann_epochs
from ingestors.wfdb_text import (
    Beats,
    SignalSpec,
    WfdbSource,
    read_ann2rr,
    read_header_fields,
)
from models.stages import Stage, StageCodeError, parse_stage, parse_stages

__all__ = [
    "BEAT_CODES", "EVENT_CODES", "SLPDB_TIMEZONE", "STAGE_CODES", "Beats", "SignalSpec",
    "SlpdbAnnotations", "SlpdbHeader", "SlpdbRecord", "list_records", "read_annotations",
    "read_header", "read_record", "read_rr", "read_slpdb", "subject_of",
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

_LONG_RR_S: Final = 3.0  # longer: beats missing from the annotation (signal loss)
_SHORT_RR_S: Final = 0.2  # shorter (> 300 bpm): a beat annotated twice
_SUBJECT_INFO_RE: Final = re.compile(r"(\d+|x)\s+([MFx])\s+(\d+(?:\.\d+)?|x)\b.*")
_RECORD_RE: Final = re.compile(r"slp\d{2}[a-z]?")
_SPLIT_NIGHT_RE: Final = re.compile(r"(slp\d{2})[ab]")
_SLPDB: Final = WfdbSource("slpdb", SLPDB_TIMEZONE, tuple(BEAT_CODES))


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
        msg = (f"`record` must be an SLPDB record name like 'slp01a' or 'slp32'; got "
               f"{record!r}. Pass the file stem without extension.")
        raise ValueError(msg)
    split = _SPLIT_NIGHT_RE.fullmatch(record)
    return split.group(1) if split else record


def _subject_info(comments: tuple[str, ...]) -> tuple[int | None, str | None, float | None]:
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
    fields = read_header_fields(path, _SLPDB)
    age, sex, weight = _subject_info(fields.comments)
    return SlpdbHeader(**fields._asdict(), age=age, sex=sex, weight=weight, source=str(path))


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
    return read_ann2rr(Path(path), _SLPDB, start=start, record=record, stacklevel=3)


def _check_aux(path: Path, lineno: int, tokens: list[str]) -> None:
    try:
        parse_stage(tokens[0], "slpdb")
    except StageCodeError:
        raise DataFormatError(path, "unknown stage code", line=lineno, field="Aux",
                              expected=f"one of {', '.join(STAGE_CODES)} as the first Aux "
                              "token", got=tokens[0], fix="Correct the stage in the file; "
                              "SLPDB uses only these codes.") from None
    unknown = [t for t in tokens[1:] if t not in EVENT_CODES]
    if unknown:
        raise DataFormatError(path, "unknown event code", line=lineno, field="Aux",
                              expected=f"event codes among {', '.join(EVENT_CODES)} after the "
                              "stage", got=unknown[0], fix="Correct the event code in the file.")


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
    epochs, aux = read_rdann_epochs(path, fs_hz, _SLPDB, _check_aux)
    events = tuple(Event(i * EPOCH_S, EPOCH_S, t, EVENT_CODES[t])
                   for i, tokens in zip(epochs, aux, strict=True) for t in tokens[1:])
    return _build_annotations(path, np.asarray(epochs), [t[0] for t in aux], events, start,
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
    hea = _header_file(folder, record)
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


def _header_file(folder: Path, record: str) -> Path:
    """``<record>.hea`` in ``folder``; raise naming the records there when it is missing."""
    hea = folder / f"{record}.hea"
    if not hea.is_file():
        found = ", ".join(list_records(folder)) if folder.is_dir() else "folder missing"
        msg = (f"{hea}: SLPDB header not found; every record needs its {record}.hea "
               f"(records in that folder: {found or 'none'}). Check the folder and the record "
               "name, or copy the header from PhysioNet slpdb.")
        raise FileNotFoundError(msg)
    return hea


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
