"""One session as every ingestor sends it: identity, events, source ids, seq, chunks.

A session is a start on the ``sessions`` topic, sample chunks on the ``samples`` topic and
an end carrying the last ``seq`` of every source; all keyed by the subject id.
:class:`SessionInfo` builds these messages (source ``<session_id>-<modality>``, and one
source per EEG channel, ``<session_id>-eeg-<channel>``; chunks with ``t0_utc`` = the session
start and ``offsets_s`` = the sample times, or for EEG compact raw samples placed by
``sample0`` at ``rate_hz``), :class:`SessionSender` numbers the chunks per source and appends
everything to an outbox, and :class:`LiveSession` cuts growing streams into chunks on the
grid (:class:`~ingestors.base.grid.GridChunker`,
:class:`~ingestors.base.regular.RegularChunker`) for the live ingestors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.base.grid import DEFAULT_MAX_SAMPLES, DEFAULT_SPANS, GridChunker, Piece
from ingestors.base.outbox import Outbox, Row
from ingestors.base.regular import RawSamples, RegularChunker, RegularPiece, RegularSpec
from stream.schemas.samples import UNITS, SampleChunk
from stream.schemas.session import Family, Modality, SessionEvent
from stream.settings import StreamSettings

__all__ = ["LiveSession", "SessionInfo", "SessionSender", "Topics"]

_META_SESSION: Final = "session"
_META_SEQS: Final = "seqs"
_META_ENDED: Final = "ended"
_META_PROGRESS: Final = "progress"
#: Characters a channel label keeps in its source id; any other byte becomes ``_xx`` (hex).
_KEPT: Final = re.compile(r"[A-Za-z0-9.:@-]")
_MAX_ID: Final = 128  # stream.schemas.base.ID_PATTERN


def _channel_key(channel: str) -> str:
    """A channel label as id characters, one-to-one: ``"EEG(sec)"`` -> ``"EEG_28sec_29"``."""
    return "".join(c if _KEPT.fullmatch(c) else "".join(f"_{b:02x}" for b in c.encode())
                   for c in channel)


@dataclass(frozen=True)
class SessionInfo:
    """Who and what one session is; builds its messages.

    Attributes
    ----------
    subject_id, session_id : str
        Message key and session (:data:`stream.schemas.base.ID_PATTERN`).
    device : str
        The session's ``device`` text.
    family : {"wearable", "cardio", "psg"}
        Which models stage it.
    modalities : tuple of str
        The streams it sends.
    time_zone : str
        IANA zone of the subject's clock.
    start : datetime
        Session start (timezone-aware); sample times are seconds after it.
    start_is_nominal : bool
        The start is not a real clock time.
    live : bool
        Event time follows the wall clock (see :class:`~stream.schemas.session.SessionEvent`).
    channels : tuple of str
        The EEG channel labels, when the session sends ``eeg`` (one source each).
    """

    subject_id: str
    session_id: str
    device: str
    family: Family
    modalities: tuple[Modality, ...]
    time_zone: str
    start: datetime
    start_is_nominal: bool = False
    live: bool = True
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.source_ids()  # ids that cannot be made fail here, before anything is sent

    def source_ids(self) -> tuple[str, ...]:
        """The source id of every stream the session sends (each EEG channel its own)."""
        return tuple(sid for m in self.modalities
                     for sid in ([self.source_id(m, c) for c in self.channels] if m == "eeg"
                                 else [self.source_id(m)]))

    @classmethod
    def from_event(cls, event: SessionEvent) -> SessionInfo:
        """The identity a session start announces."""
        return cls(event.subject_id, event.session_id, event.device, event.family,
                   event.modalities, event.time_zone, event.t_utc, event.start_is_nominal,
                   event.live, event.channels)

    def source_id(self, modality: Modality, channel: str | None = None) -> str:
        """Source id of a stream: the only place these ids are made.

        ``<session_id>-<modality>``; for EEG one source per channel,
        ``<session_id>-eeg-<channel>`` with the label's characters other than letters,
        digits and ``.:@-`` written as ``_xx`` per UTF-8 byte (``"EEG Fpz-Cz"`` ->
        ``"EEG_20Fpz-Cz"``), so that distinct labels never share an id. An id that would
        exceed 128 characters ends in a hash of the label instead.

        Raises
        ------
        ValueError
            If ``channel`` is missing for ``eeg`` (or given for another modality), or the
            session id is too long to leave room for any source suffix.
        """
        if (modality == "eeg") != (channel is not None):
            msg = (f"session {self.session_id}: a source id names a channel exactly for eeg; "
                   f"got modality {modality!r} with channel {channel!r}")
            raise ValueError(msg)
        if channel is None:
            return f"{self.session_id}-{modality}"
        sid = f"{self.session_id}-eeg-{_channel_key(channel)}"
        if len(sid) > _MAX_ID:
            sid = f"{self.session_id}-eeg-h{hashlib.sha256(channel.encode()).hexdigest()[:16]}"
        if len(sid) > _MAX_ID:
            msg = (f"session id {self.session_id!r} is too long for the source ids of its EEG "
                   f"channels (at most {_MAX_ID} characters in all); use a shorter session id")
            raise ValueError(msg)
        return sid

    def event(self, kind: Literal["start", "end"], when: datetime,
              final_seq: Mapping[str, int] | None = None) -> SessionEvent:
        """The session's start or end event at ``when``."""
        return SessionEvent(
            event=kind, subject_id=self.subject_id, session_id=self.session_id,
            device=self.device, family=self.family, modalities=self.modalities,
            time_zone=self.time_zone, t_utc=when, start_is_nominal=self.start_is_nominal,
            live=self.live, channels=self.channels, final_seq=dict(final_seq or {}),
        )

    def chunk(self, modality: Modality, seq: int, t_s: NDArray[np.float64],
              values: NDArray[np.float64],
              beat_types: Sequence[str] | None = None) -> SampleChunk:
        """A chunk of samples at ``t_s`` s after the start (acceleration: values (n, 3))."""
        return SampleChunk(
            subject_id=self.subject_id, session_id=self.session_id,
            source_id=self.source_id(modality), seq=seq, modality=modality,
            unit=UNITS[modality], t0_utc=self.start, offsets_s=tuple(t_s.tolist()),
            values=tuple(values.reshape(-1).tolist()),
            beat_types=None if beat_types is None else tuple(beat_types),
        )

    def regular_chunk(self, channel: str, seq: int, piece: RegularPiece,
                      spec: RegularSpec) -> SampleChunk:
        """A compact EEG chunk of one channel, with the channel's calibration.

        Its raw samples start at index ``piece.sample0`` of the channel's grid from the
        session start.
        """
        return SampleChunk.compact(
            piece.raw, scale=spec.scale, offset=spec.offset, subject_id=self.subject_id,
            session_id=self.session_id, source_id=self.source_id("eeg", channel), seq=seq,
            modality="eeg", unit=UNITS["eeg"], t0_utc=self.start, rate_hz=spec.rate_hz,
            sample0=piece.sample0, channel=channel,
        )


class Topics(NamedTuple):
    """Full names of the topics an ingestor writes."""

    sessions: str
    samples: str

    @classmethod
    def of(cls, settings: StreamSettings) -> Topics:
        """The topics of ``settings`` (with its prefix)."""
        return cls(settings.topic("sessions"), settings.topic("samples"))


class SessionSender:
    """Appends one session's messages to an outbox: start, chunks numbered per source, end.

    A spooled session is resumed: the start is not appended again, and the outbox's meta
    data give the last ``seq`` spooled per source. ``regenerates=False`` (a device: what
    was read before is gone) goes on numbering after it; ``regenerates=True`` (a file read
    again from its start, cut the same way) numbers from 0 again and drops the chunks up
    to it, which the spool holds or the broker has.

    Parameters
    ----------
    info : SessionInfo
        The session; a resumed one must be the one spooled.
    outbox : Outbox
        Where the messages go.
    topics : Topics
        Topic names.
    regenerates : bool
        See above.

    Raises
    ------
    ValueError
        If the outbox holds another session's identity (start time, family, ...).
    """

    def __init__(self, info: SessionInfo, outbox: Outbox, topics: Topics, *,
                 regenerates: bool = False) -> None:
        self.info, self.outbox, self.topics = info, outbox, topics
        meta = outbox.meta()
        if _META_SESSION in meta:
            _check_same(info, SessionEvent.model_validate_json(meta[_META_SESSION]), outbox)
        self.started = _META_SESSION in meta
        self.ended = _META_ENDED in meta
        self.spooled: dict[str, int] = json.loads(meta.get(_META_SEQS, "{}"))
        self._next = {} if regenerates else {s: n + 1 for s, n in self.spooled.items()}
        self._key = info.subject_id.encode()
        self.chunks = self.samples = 0  # appended by this sender

    @staticmethod
    def resumable(outbox: Outbox) -> SessionInfo | None:
        """The identity of the session an outbox holds, if its start was spooled."""
        spooled = outbox.meta().get(_META_SESSION)
        return None if spooled is None else SessionInfo.from_event(
            SessionEvent.model_validate_json(spooled))

    @staticmethod
    def progress(outbox: Outbox) -> dict[str, Any]:
        """The ingestor's progress spooled with the last chunks (empty if none)."""
        return dict(json.loads(outbox.meta().get(_META_PROGRESS, "{}")))

    def start(self) -> None:
        """Append the session start, unless it was spooled before."""
        if self.started:
            return
        event = self.info.event("start", self.info.start)
        self.outbox.append([self._row(event)], {_META_SESSION: event.model_dump_json()})
        self.started = True

    def take_seq(self, modality: Modality, channel: str | None = None) -> int | None:
        """Take the ``seq`` of the next chunk of a modality (and EEG channel).

        Returns None when regenerating a chunk that was spooled before (the caller need
        not build it).
        """
        source = self.info.source_id(modality, channel)
        seq = self._next.get(source, 0)
        self._next[source] = seq + 1
        return None if seq <= self.spooled.get(source, -1) else seq

    def put(self, chunks: Sequence[SampleChunk], progress: Mapping[str, Any] | None = None,
            ) -> None:
        """Append chunks in one step; each must be the next of its source in this session.

        Raises
        ------
        ValueError
            If a chunk is of another session, or its ``seq`` does not follow the last one
            appended for its source.
        """
        rows = []
        for chunk in chunks:
            source, seq = chunk.source_id, chunk.seq
            expected = self.spooled.get(source, -1) + 1
            mine = self.info.source_id(chunk.modality, chunk.channel)
            if (chunk.session_id, source, seq) != (self.info.session_id, mine, expected):
                msg = (f"chunk {source}#{seq} of session {chunk.session_id} is not the next "
                       f"chunk of session {self.info.session_id}: expected {mine}#{expected}")
                raise ValueError(msg)
            self.spooled[source] = seq
            self._next[source] = max(self._next.get(source, 0), seq + 1)
            rows.append(Row(self.topics.samples, self._key, chunk.model_dump_json().encode(),
                            self.info.session_id, source, seq))
            self.samples += len(chunk)
        self.chunks += len(rows)
        if rows:  # the progress is kept with the chunks it led to
            self.outbox.append(rows, self._meta(progress))

    def end(self, when: datetime, progress: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Append the session end with the last ``seq`` of every source; return those."""
        final = {s: max(n - 1, self.spooled.get(s, -1)) for s, n in self._next.items()}
        final |= {s: n for s, n in self.spooled.items() if s not in final}
        final = {s: n for s, n in final.items() if n >= 0}
        event = self.info.event("end", when, final)
        self.outbox.append([self._row(event)], {**self._meta(progress),
                                                _META_ENDED: event.model_dump_json()})
        self.ended = True
        return final

    def _row(self, event: SessionEvent) -> Row:
        return Row(self.topics.sessions, self._key, event.model_dump_json().encode(),
                   self.info.session_id)

    def _meta(self, progress: Mapping[str, Any] | None) -> dict[str, str]:
        if not self.outbox.durable:
            return {}
        meta = {_META_SEQS: json.dumps(self.spooled)}
        if progress is not None:
            meta[_META_PROGRESS] = json.dumps(dict(progress))
        return meta


def _check_same(info: SessionInfo, spooled: SessionEvent, outbox: Outbox) -> None:
    """Refuse to resume a spooled session as a different one."""
    before = SessionInfo.from_event(spooled)
    differ = [f.name for f in fields(SessionInfo)
              if getattr(before, f.name) != getattr(info, f.name)]
    if differ:
        where = getattr(outbox, "path", "the outbox")
        shown = "; ".join(f"{n}: spooled {getattr(before, n)!r}, now {getattr(info, n)!r}"
                          for n in differ)
        msg = (f"{where} holds session {before.session_id} of subject {before.subject_id!r} "
               f"as another session than this run would send ({shown}). Give this run "
               "another session id, or let the spooled one be sent first.")
        raise ValueError(msg)


#: A chunk to be: modality, EEG channel (or None), samples.
_Pending = tuple[Modality, str | None, Piece | RegularPiece]


class LiveSession:
    """A live session: growing streams cut on the grid, sent through a :class:`SessionSender`.

    The start is appended when the session is made. Add samples per modality
    (:meth:`add`) and raw samples per EEG channel (:meth:`add_regular`), then
    :meth:`advance` with each irregular stream's watermark (the earliest time a later sample
    may have; a regular channel's is the index of its next sample) to append the chunks of
    the cells nothing can fall into any more, in time order over all streams, and
    :meth:`finish` to append the rest and the end.

    Parameters
    ----------
    sender : SessionSender
        The session's sender.
    spans : mapping of str to float, optional
        Grid span in s per modality (default :data:`~ingestors.base.grid.DEFAULT_SPANS`).
    max_samples : int
        Most samples per chunk.
    regular : mapping of str to RegularSpec, optional
        Rate and calibration of each EEG channel of ``sender.info.channels``.

    Raises
    ------
    ValueError
        If ``regular`` does not give exactly the session's EEG channels.
    """

    def __init__(self, sender: SessionSender, spans: Mapping[Modality, float] | None = None,
                 max_samples: int = DEFAULT_MAX_SAMPLES,
                 regular: Mapping[str, RegularSpec] | None = None) -> None:
        spans = {**DEFAULT_SPANS, **(spans or {})}
        info = sender.info
        self.sender = sender
        self.chunkers: dict[Modality, GridChunker] = {
            m: GridChunker(spans[m], max_samples) for m in info.modalities if m != "eeg"}
        self.specs = dict(regular or {})
        if set(self.specs) != set(info.channels):
            msg = (f"session {info.session_id}: give the rate and calibration of exactly its "
                   f"EEG channels {list(info.channels)}; got {list(self.specs)}")
            raise ValueError(msg)
        self.regular = {ch: RegularChunker(spec.rate_hz, spans["eeg"], max_samples)
                        for ch, spec in self.specs.items()}
        sender.start()

    @property
    def info(self) -> SessionInfo:
        """The session."""
        return self.sender.info

    def add(self, modality: Modality, t_s: NDArray[np.float64], values: NDArray[np.float64],
            beat_types: tuple[str, ...] | None = None) -> None:
        """Add samples of one stream, in time order (acceleration values shape (n, 3))."""
        self.chunkers[modality].add(t_s, values, beat_types)

    def add_regular(self, channel: str, sample0: int, raw: RawSamples) -> None:
        """Add raw samples of an EEG channel from index ``sample0`` on.

        See :meth:`RegularChunker.add <ingestors.base.regular.RegularChunker.add>`.
        """
        self.regular[channel].add(sample0, raw)

    def advance(self, watermarks: Mapping[Modality, float],
                progress: Mapping[str, Any] | None = None) -> int:
        """Append the chunks of every cell before its stream's watermark; return how many."""
        pieces: list[_Pending] = [(m, None, p) for m, wm in watermarks.items()
                                  for p in self.chunkers[m].ready(wm)]
        pieces += [("eeg", ch, p) for ch, c in self.regular.items() for p in c.ready()]
        return self._put(pieces, progress)

    def finish(self, when: datetime, progress: Mapping[str, Any] | None = None,
               ) -> dict[str, int]:
        """Append every pending sample and the session end at ``when``; return final seqs."""
        pieces: list[_Pending] = [(m, None, p) for m, c in self.chunkers.items()
                                  for p in c.rest()]
        pieces += [("eeg", ch, p) for ch, c in self.regular.items() for p in c.rest()]
        self._put(pieces, None)
        return self.sender.end(when, progress)

    def _time(self, pending: _Pending) -> float:
        _, channel, piece = pending
        if isinstance(piece, RegularPiece):
            return piece.sample0 / self.specs[str(channel)].rate_hz
        return float(piece.t_s[0])

    def _put(self, pieces: list[_Pending], progress: Mapping[str, Any] | None) -> int:
        # in time order over all streams: the worker's event time is the newest sample of
        # any stream, so one stream's backlog sent ahead of another's would make that late
        pieces.sort(key=self._time)
        chunks = []
        for modality, channel, piece in pieces:
            seq = self.sender.take_seq(modality, channel)
            if seq is None:
                continue
            if isinstance(piece, RegularPiece):
                chunk = self.info.regular_chunk(str(channel), seq, piece,
                                                self.specs[str(channel)])
            else:
                chunk = self.info.chunk(modality, seq, *piece)
            chunks.append(chunk)
        self.sender.put(chunks, progress)
        return len(chunks)
