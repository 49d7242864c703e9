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
:class:`~ingestors.errors.DataQualityWarning`. The table parser, :mod:`ingestors._text_table`,
is shared with the per-epoch feature files (:mod:`ingestors.sleep_accel_features`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Final, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors._text_table import (
    StageCoding,
    Table,
    check_epoch_times,
    check_max_gap,
    files_by_subject,
    read_series,
    read_table,
    stage_codes,
    subject_key,
    time_gaps,
)
from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.types import EPOCH_S, NOMINAL_START, Hypnogram, TimeSeries

__all__ = [
    "MAX_GAP_S", "Layout", "SleepAccelNight", "detect_layout", "hr_samples_in_night",
    "list_subjects", "read_cropped_counts", "read_cropped_hr", "read_cropped_motion",
    "read_cropped_psg", "read_heart_rate", "read_labels", "read_motion", "read_sleep_accel",
    "read_steps", "read_subject",
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
_subject_key = subject_key  # importable here for ingestors.sleep_accel_features
_ORIGIN: Final[str] = "Sleep-Accel"  # the data set as remedies name it
# Why a raw file's time can restart: the watch export appended to it more than once.
_RESTART_CAUSE: Final[str] = "the watch export was written repeatedly"
_STAGES: Final = StageCoding("sleep-accel", "-1, 0, 1, 2, 3, 4, 5",
                             "-1 (unscored), 0 W, 1 N1, 2 N2, 3 N3, 4 N4, 5 REM", _ORIGIN)
# Remedies stated in the warning, after the repairs and after the gaps.
_REPAIRED: Final[str] = ("The reader sorted by time and kept the first sample of each time "
                         "stamp, as the authors' pipeline does; nothing to do unless the "
                         "dropped copies matter.")
_GAPS_LEFT: Final[str] = ("Gaps are left as they are: exclude the affected epochs or the "
                          "subject from HR-based evaluation.")


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
            msg = (f"Sleep-Accel subject {self.subject}: no labels were read, so the night is "
                   "unknown. Add the label file (labels/<id>_labeled_sleep.txt or "
                   "<id>_cleaned_psg.out) to the folder.")
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
        msg = (f"Sleep-Accel subject {night.subject} has no heart rate; expected "
               "heart_rate/<id>_heartrate.txt or <id>_cleaned_hr.out in the folder.")
        raise ValueError(msg)
    return night.heart_rate.between(*night.night_s)


# --- single-file readers ------------------------------------------------------------------


def _read_table(path: PathArg, columns: tuple[str, ...], delimiter: str | None) -> Table:
    """Read a Sleep-Accel number table; see :func:`ingestors._text_table.read_table`."""
    return read_table(path, columns, delimiter, origin=_ORIGIN)


def _stage_codes(path: Path, table: Table, column: int,
                 field: str = "stage") -> tuple[NDArray[np.int8], tuple[str, ...]]:
    """Validate Sleep-Accel stage codes and map them to canonical stages."""
    return stage_codes(path, table, column, field, _STAGES)


def _series(path: PathArg, spec: _Spec) -> tuple[TimeSeries, list[str]]:
    return read_series(Path(path), spec.columns, spec.delimiter, spec.name, spec.unit,
                       origin=_ORIGIN, restart_cause=_RESTART_CAUSE)


def _warn(what: str, repairs: list[str], gaps: list[str], stacklevel: int) -> None:
    """One warning for a file or subject: the repairs made and the gaps left."""
    remedy = [text for found, text in ((repairs, _REPAIRED), (gaps, _GAPS_LEFT)) if found]
    if remedy:
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
    check_epoch_times(path, table, EPOCH_S)
    stages, codes = _stage_codes(path, table, 1)
    t0 = float(table.values[0, 0])
    return Hypnogram(stages, NOMINAL_START + timedelta(seconds=t0), EPOCH_S, codes,
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


def _subject_files(path: Path, layout: Layout) -> dict[str, dict[str, Path]]:
    """Map subject -> kind -> file for every file of the layout found in ``path``."""
    specs = _LAYOUTS[layout].items()
    return files_by_subject(path, ((kind, s.subfolder, s.suffix) for kind, s in specs))


def list_subjects(folder: PathArg) -> tuple[str, ...]:
    """Subjects with at least one file in ``folder``, sorted numerically."""
    path = _folder(folder)
    return tuple(sorted(_subject_files(path, detect_layout(path)), key=subject_key))


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
    check_max_gap(max_gap_s, MAX_GAP_S)
    night, repairs, gaps = _read_night(_folder(folder), str(subject), float(max_gap_s))
    _warn(f"Sleep-Accel subject {night.subject}", repairs, gaps, stacklevel=2)
    return night


def _read_night(path: Path, subject: str,
                max_gap_s: float) -> tuple[SleepAccelNight, list[str], list[str]]:
    """Read one subject; also return the repairs and the gap summaries for the warning."""
    layout = detect_layout(path)
    files = _files_of(path, layout, subject)
    labels = read_labels(files["labels"]) if "labels" in files else None
    streams: dict[str, TimeSeries] = {}
    repairs: list[str] = []
    for kind, file in files.items():
        if kind != "labels":
            streams[kind], found = _series(file, _LAYOUTS[layout][kind])
            repairs += found
    checked = [time_gaps(kind, series.t_s, *_window(labels), max_gap_s)
               for kind, series in streams.items() if labels is not None and kind != "steps"]
    gaps = [line for each, _ in checked for line in each]
    summaries = [summary for _, summary in checked if summary]
    night = SleepAccelNight(subject, layout, streams.get("heart_rate"), streams.get("motion"),
                            streams.get("steps"), streams.get("counts"), labels,
                            tuple(repairs + gaps + summaries))
    return night, repairs, summaries


def _files_of(path: Path, layout: Layout, subject: str) -> dict[str, Path]:
    """Kind -> file of one subject; raise naming the subjects present when it has none."""
    files = _subject_files(path, layout).get(subject)
    if not files:
        known = sorted(_subject_files(path, layout), key=subject_key)
        raise DataFormatError(path, f"subject {subject!r} not found", expected="one of "
                              + ", ".join(known[:40]), fix="Check the subject id.")
    return files


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
    check_max_gap(max_gap_s, MAX_GAP_S)
    subjects = list_subjects(folder)
    return (read_subject(folder, subject, max_gap_s=max_gap_s) for subject in subjects)
