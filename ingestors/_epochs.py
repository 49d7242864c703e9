"""Stage entries of any length expanded into fixed epochs; shared by the hypnogram readers.

The readers in :mod:`ingestors.hypnogram_io`, :mod:`ingestors.nsrr_xml` and
:mod:`ingestors.hypnogram_table` turn their files into ordered :class:`Segment` entries and
hand them to :func:`build_hypnogram`, which enforces the rules every reader shares:

* ``hypnogram.start`` is the source's time zero plus the onset of the first stage entry;
  other events are shifted to seconds since ``hypnogram.start`` with :func:`shift_events`.
* Durations and gaps must be whole multiples of ``epoch_s``; gaps between stage entries
  become :attr:`~models.stages.Stage.UNSCORED` epochs (with code ``""``) and a
  :class:`~ingestors.errors.DataQualityWarning`; overlapping entries are an error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError, DataQualityWarning, format_problem
from ingestors.types import Event, Hypnogram
from models.stages import Stage

__all__ = ["Scored", "Segment", "build_hypnogram", "check_epoch", "shift_events"]

_TOL_S: Final = 1e-3  # onsets written with millisecond precision still line up

#: What each reader's loader returns: the hypnogram and the file's non-stage events.
Scored: TypeAlias = tuple[Hypnogram, list[Event]]


class Segment(NamedTuple):
    """One stage entry of a scoring file, before expansion into epochs.

    Attributes
    ----------
    onset_s, duration_s : float
        Onset since the source's time zero and length, in seconds.
    code : str
        The stage as written in the file.
    stage : Stage
        The parsed stage.
    where : str
        How messages name the entry (``"ScoredEvent 3 ('Wake|0' at Start 0 s)"``).
    line : int, optional
        1-based line of the entry in a text file.
    """

    onset_s: float
    duration_s: float
    code: str
    stage: Stage
    where: str
    line: int | None = None


def _n_epochs(path: Path, seconds: float, epoch_s: float, seg: Segment, what: str) -> int:
    n = round(seconds / epoch_s)
    if n < 1 or abs(n * epoch_s - seconds) > _TOL_S:
        raise DataFormatError(
            path, f"{what} {seg.where} is not a positive multiple of the {epoch_s:g}-s epoch",
            line=seg.line, got=f"{seconds:g} s",
            fix="Fix the scoring file, or pass the epoch length it was scored with.",
        )
    return n


def _expand(
    path: Path, segments: Sequence[Segment], epoch_s: float
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
        # stacklevel 5: _expand, build_hypnogram, the loader, the public reader, its caller.
        warnings.warn(
            format_problem(path, f"{len(gaps)} gap(s) between stage entries filled with "
                           f"UNSCORED epochs ({'; '.join(gaps[:3])})",
                           fix="Check that the scoring export is complete."),
            DataQualityWarning, stacklevel=5,
        )
    return np.asarray(stages, dtype=np.int8), tuple(codes), segments[0].onset_s


def check_epoch(epoch_s: float) -> float:
    """Return ``epoch_s`` as a float, or raise if it is not a finite number > 0.

    Raises
    ------
    TypeError
        If ``epoch_s`` is not an int or float (``bool`` included).
    ValueError
        If it is not finite or not > 0.
    """
    if isinstance(epoch_s, bool) or not isinstance(epoch_s, (int, float)):
        msg = f"`epoch_s` must be a number of seconds; got {type(epoch_s).__name__}"
        raise TypeError(msg)
    if not (math.isfinite(epoch_s) and epoch_s > 0):
        msg = f"`epoch_s` must be a finite number of seconds > 0; got {epoch_s}. Use e.g. 30."
        raise ValueError(msg)
    return float(epoch_s)


def build_hypnogram(
    path: Path, segments: Sequence[Segment], epoch_s: float, start: datetime,
    subject: str, *, nominal: bool = False,
) -> tuple[Hypnogram, float]:
    """Expand ordered stage entries into a :class:`~ingestors.types.Hypnogram`.

    Parameters
    ----------
    path : pathlib.Path
        The file read, named in messages and stored as the hypnogram's source.
    segments : sequence of Segment
        Stage entries sorted by onset.
    epoch_s : float
        Epoch length in seconds.
    start : datetime
        Timezone-aware clock time of the source's time zero.
    subject : str
        Subject identifier stored in the hypnogram.
    nominal : bool
        Whether ``start`` is a placeholder rather than a real clock time.

    Returns
    -------
    hypnogram : Hypnogram
        Starting at ``start`` plus the first entry's onset.
    t0 : float
        That onset in seconds, to pass to :func:`shift_events`.

    Raises
    ------
    DataFormatError
        If there are no entries, they overlap, or a duration or gap is not a whole
        number of epochs. Gaps that are whole epochs give a ``DataQualityWarning``.
    """
    stages, codes, t0 = _expand(path, segments, epoch_s)
    hyp = Hypnogram(stages, start + timedelta(seconds=t0), epoch_s, codes, subject, str(path),
                    nominal)
    return hyp, t0


def shift_events(events: list[Event], t0: float) -> list[Event]:
    """Return ``events`` with onsets moved from the source's time zero to ``t0``."""
    return [Event(e.onset_s - t0, e.duration_s, e.label, e.description) for e in events]
