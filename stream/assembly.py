"""Epoch assembly of one session: what a family makes of its chunks, epoch by epoch.

:class:`~stream.engine.SubjectProcessor` (de-duplication, event time, closing rules, the
causal window) leaves the family-specific part to an :class:`EpochAssembler`:

* :class:`SampleAssembler` (wearable, cardio): samples at event times go into the same
  :class:`~models.features.FeatureExtractor` the training code uses; per open epoch it
  sums the sample statistics of :class:`~stream.schemas.EpochInputStats`;
* :class:`~stream.eeg_assembly.EegAssembler` (psg): one raw-EEG front-end per channel and
  the per-channel psg features.

An assembler turns chunks into closed epochs (:class:`EpochRow`) and its whole state into
a JSON-able dict; the processor decides when an epoch closes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from models.features import FeatureExtractor
from stream.schemas import EpochInputStats, SampleChunk

__all__ = ["EPOCH_S", "EpochAssembler", "EpochRow", "SampleAssembler", "chunk_start_s"]

EPOCH_S = 30.0
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Accumulator slots of each modality: [hr_sum, hr_n, act_sum, act_n, rr_sum, rr_n].
_ACC_KEYS = {"heart_rate": 0, "activity_counts": 2, "rr": 4}


def chunk_start_s(chunk: SampleChunk, session_start: datetime) -> float:
    """Time of the chunk's first sample in s since ``session_start``.

    The same float operations as ``chunk.times_s(session_start)[0]``, without computing
    the other samples' times.
    """
    base = (chunk.t0_utc - session_start) / timedelta(seconds=1)
    if chunk.offsets_s is not None:
        return base + chunk.offsets_s[0]
    rate = chunk.rate_hz if chunk.rate_hz is not None else 1.0
    return base + chunk.sample0 / rate


class EpochRow(NamedTuple):
    """One closed epoch as an assembler gives it.

    Attributes
    ----------
    row : ndarray of float32, shape (n_features,) or (n_channels, n_features)
        The family's feature row; per channel for a channel-set family (psg).
    present : ndarray of bool, shape (n_channels,), or None
        Channel-set families: which channels had measures (the others are masked).
    inputs : EpochInputStats
        What arrived in the epoch (carried on its causal stage event).
    has_data : bool
        Whether the epoch had input: a sample (wearable, cardio) or a channel with
        measures (psg).
    """

    row: F32
    present: NDArray[np.bool_] | None
    inputs: EpochInputStats
    has_data: bool


class EpochAssembler(Protocol):
    """What :class:`~stream.engine.SubjectProcessor` needs of a family's assembly."""

    @property
    def n_closed(self) -> int:
        """Epochs closed so far."""

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of a stored row (:func:`stream.engine.stored_row`)."""

    @property
    def delay_s(self) -> float:
        """Input needed past an epoch's end before all of its samples can count (s)."""

    def add(self, chunk: SampleChunk) -> float:
        """Use a non-empty chunk; return its last sample's time (s since the start).

        Raises ``ValueError`` (the reason) for a chunk that cannot be used; it then changes
        nothing.
        """

    def complete(self) -> int:
        """Epochs from ``n_closed`` on whose inputs are all in (they may close now)."""

    def close_epoch(self) -> EpochRow:
        """Close epoch ``n_closed``."""

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""


class SampleAssembler:
    """Wearable and cardio sessions: the feature extractor and per-epoch sample statistics.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        The session's family.
    start : datetime
        Session start (timezone-aware).
    start_is_nominal : bool
        Whether the start is a real clock time.
    """

    delay_s = 0.0

    def __init__(self, family: str, start: datetime, start_is_nominal: bool) -> None:
        self.start = start
        self.extractor = FeatureExtractor(family, start, start_is_nominal, EPOCH_S)
        # per open epoch: [hr_sum, hr_n, act_sum, act_n, rr_sum, rr_n]
        self.accumulators: dict[int, list[float]] = {}

    @property
    def n_closed(self) -> int:
        """Epochs closed so far."""
        return self.extractor.n_closed

    @property
    def row_shape(self) -> tuple[int, ...]:
        """``(n_features,)``."""
        return (self.extractor.n_features,)

    def add(self, chunk: SampleChunk) -> float:
        """Feed the extractor and the epoch statistics (see :class:`EpochAssembler`)."""
        t = chunk.times_s(self.start)
        values = chunk.values_array()
        self.extractor.add_samples(chunk.modality, t, values, chunk.beat_types)
        self._accumulate(chunk.modality, t, values)
        return float(t[-1])

    def complete(self) -> int:
        """0: these samples come at any time, so only event time closes an epoch."""
        return 0

    def _accumulate(self, modality: str, t: F64, v: F64) -> None:
        slot = _ACC_KEYS.get(modality)
        if slot is None:  # acceleration: its counts are summarised through the extractor
            for k in np.unique(np.floor(t / EPOCH_S).astype(np.int64)):
                self.accumulators.setdefault(int(k), [0.0] * 6)
            return
        first, last = math.floor(t[0] / EPOCH_S), math.floor(t[-1] / EPOCH_S)
        if first == last:  # the usual case: the whole chunk inside one epoch
            acc = self.accumulators.setdefault(first, [0.0] * 6)
            acc[slot] += float(v.sum())
            acc[slot + 1] += float(len(v))
            return
        epochs = np.floor(t / EPOCH_S).astype(np.int64)
        for k in np.unique(epochs):
            sel = epochs == k
            acc = self.accumulators.setdefault(int(k), [0.0] * 6)
            acc[slot] += float(v[sel].sum())
            acc[slot + 1] += float(sel.sum())

    def close_epoch(self) -> EpochRow:
        """The extractor's row and the epoch's sample statistics."""
        index = self.n_closed
        row = self.extractor.close_epoch()
        acc = self.accumulators.pop(index, None)
        a = acc or [0.0] * 6

        def mean(s: float, n: float) -> float | None:
            return s / n if n else None

        inputs = EpochInputStats(
            hr_mean_bpm=mean(a[0], a[1]), hr_samples=int(a[1]),
            activity_counts=a[2] if a[3] else None, activity_samples=int(a[3]),
            rr_mean_s=mean(a[4], a[5]), beats=int(a[5]),
        )
        return EpochRow(row, None, inputs, acc is not None)

    def to_state(self) -> dict[str, Any]:
        """``extractor`` and ``accumulators`` (the processor's checkpoint fields)."""
        return {
            "extractor": self.extractor.to_state(),
            "accumulators": {str(k): v for k, v in self.accumulators.items()},
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> SampleAssembler:
        """Inverse of :meth:`to_state`."""
        extractor = FeatureExtractor.from_state(d["extractor"])
        new = cls(extractor.family, extractor.session_start, extractor.start_is_nominal)
        new.extractor = extractor
        new.accumulators = {int(k): list(v) for k, v in d["accumulators"].items()}
        return new
