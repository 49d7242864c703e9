"""The per-subject core of the stream, free of Kafka and Faust: epochs from sample chunks.

A :class:`SubjectProcessor` holds one session of one subject. It drops duplicate chunks
(same source and sequence number), feeds samples to the same
:class:`~models.features.FeatureExtractor` the training code uses, tracks event time,
and closes 30-s epochs once event time has passed their end plus a grace period (or when
the session ends, or when a live timer finds the subject silent). Each closed epoch comes
with its feature row and the causal model's 25-epoch window, so staging is a single
batched model call for all subjects whose epochs closed together.

Its whole state round-trips through a JSON-able dict (:meth:`SubjectProcessor.to_state`),
which the Faust agent keeps in a changelog-backed table.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from models.features import FeatureExtractor
from stream.schemas import EpochInputStats, SampleChunk, SessionEvent

__all__ = [
    "ClosedEpoch",
    "Outcome",
    "SeqWindow",
    "Session",
    "SubjectProcessor",
]

EPOCH_S = 30.0
_STATE_VERSION = 1


@dataclass(frozen=True)
class Session:
    """One night of one subject, as announced on the sessions topic."""

    subject_id: str
    session_id: str
    start: datetime
    family: str = "wearable"
    time_zone: str = "UTC"
    start_is_nominal: bool = False
    modalities: tuple[str, ...] = ()
    live: bool = True

    @classmethod
    def from_event(cls, ev: SessionEvent) -> Session:
        """Build from a ``start`` session event (``t_utc`` is the session start)."""
        start = ev.t_utc.astimezone(ZoneInfo(ev.time_zone))
        return cls(ev.subject_id, ev.session_id, start, ev.family, ev.time_zone,
                   ev.start_is_nominal, tuple(ev.modalities), ev.live)

    def to_state(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "subject_id": self.subject_id, "session_id": self.session_id,
            "start_utc": self.start.astimezone(UTC).isoformat(), "family": self.family,
            "time_zone": self.time_zone, "start_is_nominal": self.start_is_nominal,
            "modalities": list(self.modalities), "live": self.live,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Session:
        """Inverse of :meth:`to_state`."""
        start = datetime.fromisoformat(d["start_utc"]).astimezone(ZoneInfo(d["time_zone"]))
        return cls(d["subject_id"], d["session_id"], start, d["family"], d["time_zone"],
                   bool(d["start_is_nominal"]), tuple(d["modalities"]), bool(d.get("live", True)))

    def epoch_start(self, index: int) -> datetime:
        """Start of epoch ``index`` (UTC)."""
        return (self.start + timedelta(seconds=index * EPOCH_S)).astimezone(UTC)


@dataclass(frozen=True, eq=False)
class ClosedEpoch:
    """A closed epoch: its feature row and the causal model's input window.

    Attributes
    ----------
    index : int
        Epoch number since the session start (its start is ``Session.epoch_start(index)``).
    row : ndarray of float32, shape (n_features,)
        Feature row (identical to the batch computation).
    window : ndarray of float32, shape (context_epochs, n_features)
        The last ``context_epochs`` rows ending with ``row``, oldest first, left-padded
        with zeros.
    valid : ndarray of float32, shape (context_epochs,)
        1 for real epochs in ``window``, 0 for padding.
    inputs : EpochInputStats
        Sample statistics of the epoch (carried on to its causal stage event).
    has_data : bool
        Whether any sample fell into the epoch.
    """

    index: int
    row: NDArray[np.float32]
    window: NDArray[np.float32]
    valid: NDArray[np.float32]
    inputs: EpochInputStats
    has_data: bool


class Outcome(Enum):
    """What :meth:`SubjectProcessor.apply` did with a chunk."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass
class SeqWindow:
    """Sequence numbers seen from one source, to drop duplicate chunks.

    Remembers every sequence number within ``size`` of the highest one; anything older is
    taken as already seen (a chunk that late could not be used anyway).
    """

    size: int = 4096
    highest: int = -1
    recent: set[int] = field(default_factory=set)

    def seen(self, seq: int) -> bool:
        """Whether ``seq`` was processed before (or is too old to tell)."""
        return seq in self.recent or seq <= self.highest - self.size

    def add(self, seq: int) -> None:
        """Record ``seq`` as processed."""
        self.recent.add(seq)
        if seq > self.highest:
            self.highest = seq
            if len(self.recent) > 2 * self.size:  # prune now and then, not on every add
                floor = seq - self.size
                self.recent = {s for s in self.recent if s > floor}

    def to_state(self) -> list[list[int]]:
        """Recent sequence numbers as sorted ``[first, last]`` runs.

        Runs keep the state small: a source's sequence numbers are mostly consecutive.
        """
        runs: list[list[int]] = []
        for seq in sorted(self.recent):
            if runs and seq == runs[-1][1] + 1:
                runs[-1][1] = seq
            else:
                runs.append([seq, seq])
        return runs

    @classmethod
    def from_state(cls, runs: list[list[int]], size: int) -> SeqWindow:
        """Inverse of :meth:`to_state`."""
        seqs = {s for first, last in runs for s in range(first, last + 1)}
        return cls(size, max(seqs, default=-1), seqs)


_ACC_KEYS = {"heart_rate": 0, "activity_counts": 2, "rr": 4}


def _b64(a: NDArray[np.float32]) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unb64(s: str) -> NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").copy()


class SubjectProcessor:
    """Epoch assembly, de-duplication and features for one subject's session.

    Parameters
    ----------
    session : Session
        The session being processed.
    grace_s : float
        Late samples are accepted until event time passes an epoch's end by this much.
    context_epochs : int
        Length of the causal window handed out with each closed epoch.
    dedupe_window : int
        How many recent sequence numbers per source are remembered.
    """

    def __init__(
        self,
        session: Session,
        *,
        grace_s: float = 30.0,
        context_epochs: int = 25,
        dedupe_window: int = 4096,
    ) -> None:
        if grace_s < 0 or not math.isfinite(grace_s):
            msg = f"grace_s must be a finite number of seconds >= 0; got {grace_s}"
            raise ValueError(msg)
        self.session = session
        self.grace_s = float(grace_s)
        self.context_epochs = int(context_epochs)
        self.dedupe_window = int(dedupe_window)
        self.extractor = FeatureExtractor(
            session.family, session.start, session.start_is_nominal, EPOCH_S
        )
        self.watermark_s = -math.inf
        self.sources: dict[str, SeqWindow] = {}
        self.context: deque[NDArray[np.float32]] = deque(maxlen=self.context_epochs)
        # per open epoch: [hr_sum, hr_n, act_sum, act_n, rr_sum, rr_n]
        self.accumulators: dict[int, list[float]] = {}
        self.ended = False

    @property
    def n_closed(self) -> int:
        """Epochs closed so far."""
        return self.extractor.n_closed

    # ------------------------------------------------------------------ input
    def apply(self, chunk: SampleChunk) -> tuple[Outcome, str]:
        """Take one chunk: drop it as a duplicate, reject it (with the reason) or use it.

        A rejected chunk changes nothing; the caller dead-letters it with the reason.
        """
        if (chunk.subject_id, chunk.session_id) != (
            self.session.subject_id, self.session.session_id
        ):
            return Outcome.REJECTED, (
                f"chunk for session {chunk.session_id!r} of {chunk.subject_id!r} while "
                f"session {self.session.session_id!r} is open"
            )
        window = self.sources.get(chunk.source_id)
        if window is not None and window.seen(chunk.seq):
            return Outcome.DUPLICATE, f"duplicate chunk {chunk.source_id}#{chunk.seq}"
        if self.ended:
            return Outcome.REJECTED, "chunk arrived after the session ended"
        if len(chunk) == 0:
            self._remember(chunk)
            return Outcome.ACCEPTED, "empty chunk"
        t = chunk.times_s(self.session.start)
        values = chunk.values_array()
        try:
            self.extractor.add_samples(chunk.modality, t, values, chunk.beat_types)
        except ValueError as err:
            return Outcome.REJECTED, str(err)
        self._remember(chunk)
        self._accumulate(chunk.modality, t, values)
        self.watermark_s = max(self.watermark_s, float(t[-1]))
        return Outcome.ACCEPTED, ""

    def remember(self, chunk: SampleChunk) -> None:
        """Record the chunk's sequence number as processed without using it.

        For a chunk that was rejected (and dead-lettered): a second delivery of it is then
        dropped as a duplicate, and the source's progress counts it.
        """
        self._remember(chunk)

    def _remember(self, chunk: SampleChunk) -> None:
        window = self.sources.setdefault(chunk.source_id, SeqWindow(self.dedupe_window))
        window.add(chunk.seq)

    def _accumulate(self, modality: str, t: NDArray[np.float64], v: NDArray[np.float64]) -> None:
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

    # ------------------------------------------------------------------ closing
    def due(self, now_s: float | None = None) -> int:
        """How many epochs can close now.

        Parameters
        ----------
        now_s : float, optional
            Event-time clock of a live session (seconds since the session start, from the
            wall clock); a silent subject's epochs close once it passes their end plus the
            grace period. Without it, only the samples' own event time counts.
        """
        clock = self.watermark_s if now_s is None else max(self.watermark_s, now_s)
        if not math.isfinite(clock):
            return 0
        closable = math.floor((clock - self.grace_s) / EPOCH_S)
        return max(0, closable - self.n_closed)

    def close(self, n: int) -> list[ClosedEpoch]:
        """Close the next ``n`` epochs in order."""
        return [self._close_one() for _ in range(max(0, n))]

    def close_until(self, end: datetime) -> list[ClosedEpoch]:
        """Close every epoch that starts before ``end`` (the session end)."""
        seconds = (end - self.session.start).total_seconds()
        n_total = max(0, math.ceil(seconds / EPOCH_S - 1e-9))
        return self.close(n_total - self.n_closed)

    def _close_one(self) -> ClosedEpoch:
        index = self.n_closed
        row = self.extractor.close_epoch()
        self.context.append(row)
        n_real = len(self.context)
        window = np.zeros((self.context_epochs, row.shape[0]), dtype=np.float32)
        window[self.context_epochs - n_real:] = np.stack(self.context)
        valid = np.zeros(self.context_epochs, dtype=np.float32)
        valid[self.context_epochs - n_real:] = 1.0
        acc = self.accumulators.pop(index, None)
        inputs, has_data = self._inputs(acc)
        return ClosedEpoch(index, row, window, valid, inputs, has_data)

    @staticmethod
    def _inputs(acc: list[float] | None) -> tuple[EpochInputStats, bool]:
        a = acc or [0.0] * 6

        def mean(s: float, n: float) -> float | None:
            return s / n if n else None

        inputs = EpochInputStats(
            hr_mean_bpm=mean(a[0], a[1]), hr_samples=int(a[1]),
            activity_counts=a[2] if a[3] else None, activity_samples=int(a[3]),
            rr_mean_s=mean(a[4], a[5]), beats=int(a[5]),
        )
        return inputs, acc is not None

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The whole processor as a JSON-able dict (for a changelog-backed table)."""
        return {
            "state_version": _STATE_VERSION,
            "session": self.session.to_state(),
            "grace_s": self.grace_s,
            "context_epochs": self.context_epochs,
            "dedupe_window": self.dedupe_window,
            "extractor": self.extractor.to_state(),
            "watermark_s": self.watermark_s if math.isfinite(self.watermark_s) else None,
            "sources": {k: w.to_state() for k, w in self.sources.items()},
            "context": [_b64(r) for r in self.context],
            "accumulators": {str(k): v for k, v in self.accumulators.items()},
            "ended": self.ended,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> SubjectProcessor:
        """Rebuild a processor from :meth:`to_state` output.

        Raises
        ------
        ValueError
            If the state was written by an incompatible version.
        """
        if d.get("state_version") != _STATE_VERSION:
            msg = (
                f"subject state version {d.get('state_version')!r} is not "
                f"{_STATE_VERSION}; the session must be restarted"
            )
            raise ValueError(msg)
        new = cls(Session.from_state(d["session"]), grace_s=d["grace_s"],
                  context_epochs=d["context_epochs"], dedupe_window=d["dedupe_window"])
        new.extractor = FeatureExtractor.from_state(d["extractor"])
        new.watermark_s = -math.inf if d["watermark_s"] is None else float(d["watermark_s"])
        new.sources = {k: SeqWindow.from_state(v, new.dedupe_window)
                       for k, v in d["sources"].items()}
        new.context = deque((_unb64(r) for r in d["context"]), maxlen=new.context_epochs)
        new.accumulators = {int(k): list(v) for k, v in d["accumulators"].items()}
        new.ended = bool(d["ended"])
        return new
