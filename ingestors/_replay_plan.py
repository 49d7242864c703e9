"""The messages of one replayed night and when to send them: :func:`plan_night`.

Each modality is cut on a fixed grid of ``span`` seconds from the session start
(:mod:`ingestors.base.grid`, which the live ingestors cut on too); every non-empty cell
becomes one chunk (more when it holds over ``max_samples``) sent at the cell's end, when a
live device would have its samples. Samples before the start form one
cell sent at the start; samples at or after the session end are dropped, as the batch
features ignore them. Every chunk has ``t0_utc`` = session start and ``offsets_s`` = the
original sample times, so ``chunk.times_s(start)`` gives back the original float64 times.
EEG channels are cut on the same grid by sample index (:mod:`ingestors.base.regular`) into
compact chunks of their raw samples, one source per channel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors._replay_nights import RegularStream, ReplayNight, ReplayStream
from ingestors.base.grid import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_SPANS,
    check_max_samples,
    check_span,
    grid_cells,
    split,
)
from ingestors.base.regular import RegularPiece, regular_pieces
from ingestors.base.session import SessionInfo
from ingestors.errors import DataQualityWarning
from ingestors.types import require_aware
from models.features.counts import MAX_ABS_G
from stream.schemas.samples import SampleChunk
from stream.schemas.session import Modality, SessionEvent

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_SPANS",
    "Anchor",
    "ChunkSlot",
    "NightPlan",
    "PlannedMessage",
    "plan_night",
]

Anchor = Literal["now", "original"]


class ChunkSlot(NamedTuple):
    """Where one chunk lies in its stream and when it is sent.

    Attributes
    ----------
    send_s : float
        Send time in s of event time since the session start.
    modality : str
        Which stream.
    seq : int
        Sequence number within the stream's source, from 0.
    i0, i1 : int
        The chunk holds samples ``i0:i1`` of the plan's stream (of the EEG channel's raw
        samples).
    channel : str or None
        The EEG channel (``eeg`` only).
    """

    send_s: float
    modality: Modality
    seq: int
    i0: int
    i1: int
    channel: str | None = None


class PlannedMessage(NamedTuple):
    """One message of a plan: when, to which topic (``sessions``/``samples``), what."""

    send_s: float
    topic: Literal["sessions", "samples"]
    payload: SessionEvent | SampleChunk


@dataclass(frozen=True, eq=False)
class NightPlan:
    """Everything one night sends, in send order; chunks are built on demand.

    Attributes
    ----------
    night : ReplayNight
        The night planned.
    info : SessionInfo
        The session as sent: its ``start`` (UTC; sample times are relative to it) and
        ``live`` flag.
    streams : mapping of str to ReplayStream
        The samples that are sent (the night's, less those at or after the end and those
        whose values are not finite).
    eeg : tuple of RegularStream
        The EEG channels' samples that are sent (those before the end).
    slots : tuple of ChunkSlot
        The chunks, sorted by ``(send_s, modality, seq)``.
    start_event, end_event : SessionEvent
        Sent at 0 and at ``end_s``.
    """

    night: ReplayNight
    info: SessionInfo
    streams: Mapping[Modality, ReplayStream]
    eeg: tuple[RegularStream, ...]
    slots: tuple[ChunkSlot, ...]
    start_event: SessionEvent
    end_event: SessionEvent

    @property
    def start(self) -> datetime:
        """Session start as sent (UTC); sample times are relative to it."""
        return self.info.start

    @property
    def live(self) -> bool:
        """The session's ``live`` flag."""
        return self.info.live

    @property
    def end_s(self) -> float:
        """Send time of the end event: the session length in s."""
        return self.night.duration_s

    @property
    def n_chunks(self) -> int:
        """Number of chunks."""
        return len(self.slots)

    @property
    def n_samples(self) -> int:
        """Samples sent over all chunks."""
        return sum(len(s.t_s) for s in self.streams.values()) + \
            sum(s.raw.size for s in self.eeg)

    def source_id(self, modality: Modality, channel: str | None = None) -> str:
        """Source id of a stream (:meth:`SessionInfo.source_id`)."""
        return self.info.source_id(modality, channel)

    def chunk(self, slot: ChunkSlot) -> SampleChunk:
        """Build the chunk of one slot."""
        if slot.channel is not None:
            ch = next(c for c in self.eeg if c.channel == slot.channel)
            piece = RegularPiece(ch.sample0 + slot.i0, ch.raw[slot.i0:slot.i1])
            return self.info.regular_chunk(ch.channel, slot.seq, piece, ch.spec)
        t, v, types = self.streams[slot.modality]
        i0, i1 = slot.i0, slot.i1
        return self.info.chunk(slot.modality, slot.seq, t[i0:i1], v[i0:i1],
                               None if types is None else types[i0:i1])

    def chunks(self) -> Iterator[tuple[float, SampleChunk]]:
        """``(send_s, chunk)`` in send order."""
        return ((slot.send_s, self.chunk(slot)) for slot in self.slots)

    def messages(self) -> Iterator[PlannedMessage]:
        """Start event, chunks and end event, in send order (send times non-decreasing)."""
        yield PlannedMessage(0.0, "sessions", self.start_event)
        for send_s, chunk in self.chunks():
            yield PlannedMessage(send_s, "samples", chunk)
        yield PlannedMessage(self.end_s, "sessions", self.end_event)


def plan_night(
    night: ReplayNight,
    *,
    anchor: Anchor = "now",
    now: datetime | None = None,
    spans: Mapping[str, float] | None = None,
    speed: float | None = None,
    live: bool | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> NightPlan:
    """Plan the messages of one night.

    Parameters
    ----------
    night : ReplayNight
        The night.
    anchor : {"now", "original"}
        ``"now"``: the session starts at ``now`` (whole seconds, UTC); ``"original"``: at
        the recorded (or nominal) start. Sample times relative to the start are unchanged
        either way, and so is ``start_is_nominal``: a night with a real clock replayed at
        ``"now"`` sees another time of day in its clock features than in training; use
        ``"original"`` where those must match.
    now : datetime, optional
        Timezone-aware "now" for ``anchor="now"``; default the current UTC time.
    spans : mapping of str to float, optional
        Chunk span in s per modality, overriding :data:`DEFAULT_SPANS`. Keep them below the
        worker's grace period, or chunks arrive after their epoch closed.
    speed : float, optional
        Speed the plan is replayed at (1 = real time, None = as fast as possible); it only
        decides the default of ``live``.
    live : bool, optional
        The start event's ``live`` flag; default True only for a real-time replay
        (``speed == 1``) anchored at now, the one case where event time follows the wall
        clock.
    max_samples : int
        Most samples per chunk (1 .. MAX_CHUNK_SAMPLES).

    Returns
    -------
    NightPlan

    Raises
    ------
    ValueError
        For an unknown anchor or modality, a span that is not a positive number, or a
        ``max_samples`` out of range.
    """
    start = _anchored_start(night, anchor, now)
    span_of = _spans(spans)
    check_max_samples(max_samples)
    if live is None:
        live = anchor == "now" and speed == 1.0
    end_s = night.duration_s
    streams = {m: _sendable(night.session_id, m, s, end_s) for m, s in night.streams.items()}
    eeg = tuple(_before_end(c, end_s) for c in night.eeg)
    slots = [slot for m, s in streams.items()
             for slot in _slots(m, s.t_s, span_of[m], end_s, max_samples)]
    slots += [slot for c in eeg for slot in _regular_slots(c, span_of["eeg"], end_s,
                                                             max_samples)]
    order = {m: i for i, m in enumerate(night.modalities)}
    channel_order = {c: i for i, c in enumerate(night.channels)}
    slots.sort(key=lambda s: (s.send_s, order[s.modality],
                              -1 if s.channel is None else channel_order[s.channel], s.seq))
    info = SessionInfo(night.subject_id, night.session_id, night.device, night.family,
                       night.modalities, night.time_zone, start, night.start_is_nominal, live,
                       night.channels)
    final: dict[str, int] = {}
    for slot in slots:
        source = info.source_id(slot.modality, slot.channel)
        final[source] = max(final.get(source, -1), slot.seq)
    return NightPlan(
        night, info, MappingProxyType(streams), eeg, tuple(slots), info.event("start", start),
        info.event("end", start + timedelta(seconds=end_s), final),
    )


def _anchored_start(night: ReplayNight, anchor: str, now: datetime | None) -> datetime:
    if anchor == "original":
        return night.start.astimezone(UTC)
    if anchor != "now":
        msg = f"`anchor` must be 'now' or 'original'; got {anchor!r}"
        raise ValueError(msg)
    when = datetime.now(UTC) if now is None else require_aware(now, "now")
    return when.astimezone(UTC).replace(microsecond=0)


def _spans(spans: Mapping[str, float] | None) -> dict[str, float]:
    merged: dict[str, float] = {str(m): s for m, s in DEFAULT_SPANS.items()}
    for modality, span in (spans or {}).items():
        if modality not in DEFAULT_SPANS:
            msg = f"`spans` names unknown modality {modality!r}; use one of {tuple(DEFAULT_SPANS)}"
            raise ValueError(msg)
        merged[modality] = check_span(f"spans[{modality!r}]", span)
    return merged


def _sendable(session: str, modality: Modality, stream: ReplayStream,
              end_s: float) -> ReplayStream:
    """Samples before the end with finite values (the only ones the batch features use)."""
    t, v, types = stream
    n = int(np.searchsorted(t, end_s, side="left"))
    t, v = t[:n], v[:n]
    finite = np.isfinite(v) if v.ndim == 1 else np.all(np.isfinite(v), axis=1)
    if not np.all(finite):
        if modality == "acceleration":
            used = np.isfinite(v[:, 2]) & (np.abs(v[:, 2]) <= MAX_ABS_G) & ~finite
            if np.any(used):
                warnings.warn(
                    f"replay {session}: {int(used.sum())} acceleration samples have a finite "
                    "z but a non-finite x or y; the schema cannot carry them, so the stream "
                    "misses samples the batch features use. Repair or drop them in the data.",
                    DataQualityWarning, stacklevel=3)
        t, v = t[finite], v[finite]
        types = None if types is None else tuple(np.asarray(types[:n])[finite].tolist())
    elif types is not None:
        types = types[:n]
    return ReplayStream(t, v, types)


def _slots(modality: Modality, t: NDArray[np.float64], span: float, end_s: float,
           max_samples: int) -> Iterator[ChunkSlot]:
    """The chunks of one stream on its grid, in time order, numbered from 0."""
    seq = 0
    for cell, a, b in grid_cells(t, span):
        grid_end = (cell + 1.0) * span
        # never before the last sample (rounding at a cell edge) nor after the session end
        send_s = min(max(grid_end, float(t[b - 1])), end_s)
        for i0, i1 in split(a, b, max_samples):
            yield ChunkSlot(send_s, modality, seq, i0, i1)
            seq += 1


def _before_end(channel: RegularStream, end_s: float) -> RegularStream:
    """The channel's samples before the session end (the batch features use no others)."""
    last = math.ceil(end_s * channel.spec.rate_hz)  # samples k < end_s * rate
    n = min(max(last - channel.sample0, 0), channel.raw.size)
    return channel._replace(raw=channel.raw[:n])


def _regular_slots(channel: RegularStream, span: float, end_s: float,
                   max_samples: int) -> Iterator[ChunkSlot]:
    """The chunks of one EEG channel on its grid by sample index, numbered from 0."""
    rate = channel.spec.rate_hz
    for seq, (cell, a, b) in enumerate(regular_pieces(channel.sample0, channel.raw.size, rate,
                                                      span, max_samples)):
        last_s = (channel.sample0 + b - 1) / rate
        yield ChunkSlot(min(max((cell + 1.0) * span, last_s), end_s), "eeg", seq, a, b,
                        channel.channel)
