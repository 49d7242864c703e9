"""The per-subject core of the stream, free of Kafka and Faust: epochs from sample chunks.

A :class:`SubjectProcessor` holds one session of one subject. It drops duplicate chunks
(same source and sequence number), feeds samples to its family's epoch assembly
(:mod:`stream.assembly`: the same :class:`~models.features.FeatureExtractor` the training
code uses; for psg sessions one raw-EEG front-end per channel and the per-channel
features, :mod:`stream.eeg_assembly`), tracks event time, and closes 30-s epochs once
event time has passed their end plus a grace period, or as soon as all of an epoch's inputs
are in (psg: every EEG channel made it final), or when the session ends, or when a live
timer finds the subject silent. Each closed epoch comes with its feature row and the causal
model's 25-epoch window, so staging is a single batched model call for all subjects whose
epochs closed together.

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

from models.features.registry import PER_CHANNEL_FAMILIES
from stream.assembly import EPOCH_S, EpochAssembler, SampleAssembler
from stream.eeg_assembly import EegAssembler
from stream.schemas import EpochInputStats, SampleChunk, SessionEvent

__all__ = [
    "EPOCH_S",
    "ClosedEpoch",
    "Outcome",
    "SeqWindow",
    "Session",
    "SubjectProcessor",
    "new_assembler",
    "split_rows",
    "stored_row",
]

_STATE_VERSION = 1


@dataclass(frozen=True)
class Session:
    """One night of one subject, as announced on the sessions topic.

    ``channels`` are the EEG channel labels of a psg session (empty otherwise).
    """

    subject_id: str
    session_id: str
    start: datetime
    family: str = "wearable"
    time_zone: str = "UTC"
    start_is_nominal: bool = False
    modalities: tuple[str, ...] = ()
    live: bool = True
    channels: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, ev: SessionEvent) -> Session:
        """Build from a ``start`` session event (``t_utc`` is the session start)."""
        start = ev.t_utc.astimezone(ZoneInfo(ev.time_zone))
        return cls(ev.subject_id, ev.session_id, start, ev.family, ev.time_zone,
                   ev.start_is_nominal, tuple(ev.modalities), ev.live, tuple(ev.channels))

    def to_state(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "subject_id": self.subject_id, "session_id": self.session_id,
            "start_utc": self.start.astimezone(UTC).isoformat(), "family": self.family,
            "time_zone": self.time_zone, "start_is_nominal": self.start_is_nominal,
            "modalities": list(self.modalities), "live": self.live,
            "channels": list(self.channels),
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Session:
        """Inverse of :meth:`to_state`."""
        start = datetime.fromisoformat(d["start_utc"]).astimezone(ZoneInfo(d["time_zone"]))
        return cls(d["subject_id"], d["session_id"], start, d["family"], d["time_zone"],
                   bool(d["start_is_nominal"]), tuple(d["modalities"]), bool(d.get("live", True)),
                   tuple(d.get("channels", ())))

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
    row : ndarray of float32, shape (n_features,) or (n_channels, n_features)
        Feature row (identical to the batch computation); per EEG channel for psg.
    window : ndarray of float32, shape (context_epochs, *row.shape)
        The last ``context_epochs`` rows ending with ``row``, oldest first, left-padded
        with zeros.
    valid : ndarray of float32, shape (context_epochs,) or (context_epochs, n_channels)
        1 for real epochs in ``window`` (psg: for the channels with measures), 0 for
        padding and masked channels.
    inputs : EpochInputStats
        Sample statistics of the epoch (carried on to its causal stage event).
    has_data : bool
        Whether the epoch had input: a sample, or for psg a channel with measures.
    present : ndarray of bool, shape (n_channels,), or None
        psg: the channels with measures in the epoch.
    """

    index: int
    row: NDArray[np.float32]
    window: NDArray[np.float32]
    valid: NDArray[np.float32]
    inputs: EpochInputStats
    has_data: bool
    present: NDArray[np.bool_] | None = None

    @property
    def stored(self) -> NDArray[np.float32]:
        """The row as the night-rows table keeps it (:func:`stored_row`)."""
        return stored_row(self.row, self.present)


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


def _b64(a: NDArray[np.float32]) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unb64(s: str) -> NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").copy()


def new_assembler(session: Session) -> EpochAssembler:
    """The epoch assembly of a session's family."""
    if session.family in PER_CHANNEL_FAMILIES:
        return EegAssembler(session.start, session.channels)
    return SampleAssembler(session.family, session.start, session.start_is_nominal)


def stored_row(row: NDArray[np.float32], present: NDArray[np.bool_] | None) -> NDArray[np.float32]:
    """A closed epoch's row as the checkpoint and the night-rows table keep it.

    A channel-set row (n_channels, n_features) gets its channel mask as one more column,
    ``(n_channels, n_features + 1)``; other rows are kept as they are.
    """
    if present is None:
        return row
    return np.column_stack([row, present.astype(np.float32)])


def split_rows(
    stored: NDArray[np.float32], channel_set: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Model input and mask of stored rows (inverse of :func:`stored_row`).

    Parameters
    ----------
    stored : ndarray of float32, shape (..., n_features) or (..., n_channels, n_features + 1)
        Stored rows.
    channel_set : bool
        Whether they are channel-set rows.

    Returns
    -------
    x : ndarray of float32, shape (..., n_features) or (..., n_channels, n_features)
    valid : ndarray of float32, shape (...) or (..., n_channels)
        All ones, or the channel mask.
    """
    if not channel_set:
        return stored, np.ones(stored.shape[:-1], np.float32)
    return np.ascontiguousarray(stored[..., :-1]), np.ascontiguousarray(stored[..., -1])


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
        self.assembler = new_assembler(session)
        self.watermark_s = -math.inf
        self.sources: dict[str, SeqWindow] = {}
        # stored rows (stored_row) of the last context_epochs closed epochs
        self.context: deque[NDArray[np.float32]] = deque(maxlen=self.context_epochs)
        self.ended = False

    @property
    def n_closed(self) -> int:
        """Epochs closed so far."""
        return self.assembler.n_closed

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of a stored row of this session (:func:`stored_row`)."""
        return self.assembler.row_shape

    @property
    def channel_set(self) -> bool:
        """Whether the session's rows are per channel (the psg family)."""
        return self.session.family in PER_CHANNEL_FAMILIES

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
        try:
            last_s = self.assembler.add(chunk)
        except ValueError as err:
            return Outcome.REJECTED, str(err)
        self._remember(chunk)
        self.watermark_s = max(self.watermark_s, last_s)
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

    # ------------------------------------------------------------------ closing
    def due(self, now_s: float | None = None) -> int:
        """How many epochs can close now.

        An epoch closes once event time has passed its end plus the grace period (plus
        the EEG front-ends' delay, :attr:`~stream.assembly.EpochAssembler.delay_s`), or
        earlier when all of its inputs are in (psg: every channel made it final).

        Parameters
        ----------
        now_s : float, optional
            Event-time clock of a live session (seconds since the session start, from the
            wall clock); a silent subject's epochs close once it passes their end plus the
            grace period. Without it, only the samples' own event time counts.
        """
        clock = self.watermark_s if now_s is None else max(self.watermark_s, now_s)
        complete = self.assembler.complete()
        if not math.isfinite(clock):
            return complete
        closable = math.floor((clock - self.grace_s - self.assembler.delay_s) / EPOCH_S)
        return max(0, closable - self.n_closed, complete)

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
        epoch = self.assembler.close_epoch()
        self.context.append(stored_row(epoch.row, epoch.present))
        n_real = len(self.context)
        window = np.zeros((self.context_epochs, *self.row_shape), dtype=np.float32)
        window[self.context_epochs - n_real:] = np.stack(self.context)
        x, valid = split_rows(window, self.channel_set)
        if not self.channel_set:  # the padding epochs are not real
            valid[: self.context_epochs - n_real] = 0.0
        return ClosedEpoch(index, epoch.row, x, valid, epoch.inputs, epoch.has_data,
                           epoch.present)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The whole processor as a JSON-able dict (for a changelog-backed table)."""
        assembly = self.assembler.to_state()
        return {
            "state_version": _STATE_VERSION,
            "session": self.session.to_state(),
            "grace_s": self.grace_s,
            "context_epochs": self.context_epochs,
            "dedupe_window": self.dedupe_window,
            **(assembly if isinstance(self.assembler, SampleAssembler) else {"eeg": assembly}),
            "watermark_s": self.watermark_s if math.isfinite(self.watermark_s) else None,
            "sources": {k: w.to_state() for k, w in self.sources.items()},
            "context": [_b64(r) for r in self.context],
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
        session = new.session
        new.assembler = (EegAssembler.from_state(d["eeg"], session.start) if "eeg" in d
                         else SampleAssembler.from_state(d))
        new.watermark_s = -math.inf if d["watermark_s"] is None else float(d["watermark_s"])
        new.sources = {k: SeqWindow.from_state(v, new.dedupe_window)
                       for k, v in d["sources"].items()}
        shape = new.row_shape
        new.context = deque((_unb64(r).reshape(shape) for r in d["context"]),
                            maxlen=new.context_epochs)
        new.ended = bool(d["ended"])
        return new
