"""Typed results shared by every reader: time series, hypnograms, events, recordings.

Times inside arrays are float seconds relative to a timezone-aware ``start``; absolute
times follow as ``start + t_s``. Where a source does not publish its clock time (the
Sleep-Accel release gives only seconds from PSG start), readers use :data:`NOMINAL_START`
and set ``start_is_nominal=True`` so that nothing downstream mistakes it for a real clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from models.stages import Stage

__all__ = [
    "EPOCH_S",
    "NOMINAL_START",
    "Event",
    "Hypnogram",
    "TimeSeries",
    "require_aware",
]

#: Length of one scoring epoch in seconds.
EPOCH_S: float = 30.0

#: Anchor used when a source gives only relative times (documented, never a real clock).
NOMINAL_START: datetime = datetime(2000, 1, 1, tzinfo=UTC)


def require_aware(when: datetime, name: str = "start") -> datetime:
    """Return ``when`` if it is timezone-aware, else raise a ``ValueError`` naming it."""
    if not isinstance(when, datetime):
        msg = f"`{name}` must be a datetime; got {type(when).__name__}"
        raise TypeError(msg)
    if when.tzinfo is None or when.utcoffset() is None:
        msg = (
            f"`{name}` must be timezone-aware; got naive {when.isoformat()}. "
            "Attach the recording's time zone, e.g. "
            "`when.replace(tzinfo=ZoneInfo('Europe/Amsterdam'))`."
        )
        raise ValueError(msg)
    return when


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """Samples at (possibly irregular) times.

    Attributes
    ----------
    name : str
        What is measured (``"heart_rate"``, ``"activity_counts"``, ``"acceleration"``, ``"rr"``).
    t_s : ndarray of float64, shape (n_samples,)
        Sample times in seconds since ``start``, strictly increasing.
    values : ndarray of float64, shape (n_samples,) or (n_samples, n_axes)
        Sample values in ``unit``.
    unit : str
        Physical unit of ``values`` (``"bpm"``, ``"count"``, ``"g"``, ``"s"``).
    start : datetime
        Timezone-aware time of ``t_s == 0``.
    start_is_nominal : bool
        True when the source gave no clock time and ``start`` is :data:`NOMINAL_START`.
    """

    name: str
    t_s: NDArray[np.float64]
    values: NDArray[np.float64]
    unit: str
    start: datetime
    start_is_nominal: bool = False

    def __post_init__(self) -> None:
        require_aware(self.start)
        if self.t_s.ndim != 1 or self.values.shape[0] != self.t_s.shape[0]:
            msg = (
                f"TimeSeries {self.name!r}: t_s must be 1-D and values must have as many rows; "
                f"got t_s {self.t_s.shape} and values {self.values.shape}"
            )
            raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last sample (0 for fewer than two samples)."""
        return float(self.t_s[-1] - self.t_s[0]) if len(self) > 1 else 0.0

    def between(self, t0_s: float, t1_s: float) -> TimeSeries:
        """Samples with ``t0_s <= t < t1_s``, as a new series with the same start."""
        keep = (self.t_s >= t0_s) & (self.t_s < t1_s)
        return TimeSeries(
            self.name, self.t_s[keep], self.values[keep], self.unit, self.start,
            self.start_is_nominal,
        )


@dataclass(frozen=True, eq=False)
class Hypnogram:
    """A sequence of 30-s stages (or another fixed epoch length).

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        Canonical :class:`models.stages.Stage` values.
    start : datetime
        Timezone-aware start of epoch 0.
    epoch_s : float
        Epoch length in seconds.
    codes : tuple of str, length n_epochs
        The code each epoch had in the source file (``"4"``, ``"Sleep stage 4"`` ...), kept
        so that counts can be compared with the source's own documentation.
    subject : str
        Subject or record id.
    source : str
        File the hypnogram was read from ("" when built in memory).
    start_is_nominal : bool
        True when the source gave no clock time.
    """

    stages: NDArray[np.int8]
    start: datetime
    epoch_s: float = EPOCH_S
    codes: tuple[str, ...] = ()
    subject: str = ""
    source: str = ""
    start_is_nominal: bool = False

    def __post_init__(self) -> None:
        require_aware(self.start)
        if self.epoch_s <= 0:
            msg = f"Hypnogram epoch_s must be > 0 s; got {self.epoch_s}"
            raise ValueError(msg)
        if self.codes and len(self.codes) != len(self.stages):
            msg = (
                f"Hypnogram codes must have one entry per epoch; got {len(self.codes)} codes "
                f"for {len(self.stages)} epochs"
            )
            raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.stages.shape[0])

    @property
    def duration_s(self) -> float:
        """Total length in seconds."""
        return len(self) * self.epoch_s

    @property
    def end(self) -> datetime:
        """Timezone-aware end of the last epoch."""
        return self.start + timedelta(seconds=self.duration_s)

    def stage_counts(self) -> dict[Stage, int]:
        """Number of epochs per canonical stage (stages with no epoch are included as 0)."""
        found = Counter(int(s) for s in self.stages)
        return {stage: found.get(int(stage), 0) for stage in Stage}

    def code_counts(self) -> dict[str, int]:
        """Number of epochs per source code, in order of first appearance."""
        return dict(Counter(self.codes))


@dataclass(frozen=True)
class Event:
    """A scored event (apnea, arousal, leg movement ...) or free annotation.

    Attributes
    ----------
    onset_s : float
        Seconds since the recording start.
    duration_s : float
        Length in seconds (0 when the source gives none).
    label : str
        The code as written in the source (``"OA"``, ``"HA"``, ``"Arousal"``).
    description : str
        Human-readable meaning of ``label`` where known.
    """

    onset_s: float
    duration_s: float
    label: str
    description: str = field(default="")
