"""What the Faust worker does with its messages, free of Faust: sessions, chunks, epochs, nights.

:class:`Worker` takes batches of raw messages from the sessions and samples topics and
returns :class:`~stream.effects.Effects`: stage events, night summaries and dead letters
to publish, table writes that checkpoint each subject, and the messages whose effects
those writes make durable (the app acknowledges them only after the writes, so a crash
re-delivers every message whose effects could be lost, and de-duplication by
``(source, seq)`` absorbs the re-delivery).

Per subject it keeps one :class:`~stream.engine.SubjectProcessor` in memory and its
checkpoint in the subject table (:mod:`stream.checkpoint`): written at every epoch close,
session start and end, never per chunk. Each closed epoch's feature row goes to the
night-rows table so that the offline model can re-score the night at its end, on any
worker that owns the subject.

Ordering: chunks of a subject arrive in order (one key, one partition), but the sessions
and samples topics are read independently, so a chunk may arrive before its session's
start (it is held for ``unknown_session_wait_s``, then dead-lettered) and a session's end
before its last chunks (the night is finished once every source has reached the end's
``final_seq``, or after ``end_wait_s`` of silence).

Time: silence is measured on the quiet clock of the subject's partition and a live
subject's epochs close by the wall clock only up to when its input is known complete
(:mod:`stream.readability`), so a worker that cannot read its input closes nothing as
silent.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.checkpoint import (
    PendingChunk,
    SessionEnd,
    SubjectState,
    block_key,
    encode_row,
    night_rows,
)
from stream.codecs import DecodeFailure, decode
from stream.effects import Effects, Inbound, TopicKind, WorkerStats
from stream.engine import (
    EPOCH_S,
    ClosedEpoch,
    Outcome,
    Session,
    SubjectProcessor,
    split_rows,
)
from stream.readability import AlwaysReadable, InputClock
from stream.schemas import DeadLetter, SampleChunk, SessionEvent
from stream.settings import StreamSettings
from stream.staging import FamilyModels

__all__ = ["Effects", "Inbound", "TopicKind", "Worker", "WorkerStats", "block_key"]

log = logging.getLogger(__name__)


class Worker:
    """Sessions and chunks in, stage events, summaries, dead letters and checkpoints out.

    Parameters
    ----------
    settings : StreamSettings
        Grace period, waits and timeouts, model folder.
    state_lookup : callable
        ``subject_id -> checkpoint (JSON text) or None``: reads the subject table (after a
        restart or a rebalance the in-memory processors are rebuilt from it).
    rows_lookup : callable
        ``block_key -> {"first": int, "rows": [encoded row, ...]} or None``: reads the
        night-rows table.
    family_models : dict, optional
        Family -> :class:`~stream.staging.FamilyModels` (default: the shipped models,
        loaded on first use).
    clock : callable, optional
        Monotonic clock of checkpoint intervals (tests pass a fake one).
    inputs : InputClock, optional
        The quiet clock of each input partition (silence timeouts) and up to when a live
        subject's epochs may close by the wall clock
        (:class:`~stream.readability.InputGate`); default
        :class:`~stream.readability.AlwaysReadable` on ``clock``.
    """

    def __init__(
        self,
        settings: StreamSettings,
        state_lookup: Callable[[str], str | None],
        rows_lookup: Callable[[str], dict[str, Any] | None],
        *,
        family_models: dict[str, FamilyModels] | None = None,
        clock: Callable[[], float] = time.monotonic,
        inputs: InputClock | None = None,
    ) -> None:
        self.settings = settings
        self.state_lookup = state_lookup
        self.rows_lookup = rows_lookup
        self.family_models: dict[str, FamilyModels] = dict(family_models or {})
        self.clock = clock
        self.inputs: InputClock = inputs if inputs is not None else AlwaysReadable(clock)
        self.subjects: dict[str, SubjectState] = {}
        self.stats = WorkerStats()
        self._offline: list[tuple[Session, NDArray[np.float32], NDArray[np.float32] | None,
                                  list[bool]]] = []
        self._due: dict[str, SubjectState] = {}
        self._finished_now: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ public
    @property
    def active_subjects(self) -> int:
        """Subjects with an open session in memory."""
        return sum(1 for s in self.subjects.values() if s.proc is not None)

    def models_of(self, family: str) -> FamilyModels:
        """The family's models (loaded once)."""
        if family not in self.family_models:
            self.family_models[family] = FamilyModels(family, self.settings.weights_dir)
        return self.family_models[family]

    def handle(self, batch: Iterable[Inbound], now_utc: datetime | None = None) -> Effects:
        """Process one batch of consumed messages (in consumption order)."""
        fx = Effects()
        closed_at = now_utc or datetime.now(UTC)
        touched: dict[str, SubjectState] = {}
        for msg in batch:
            self.stats.messages += 1
            if msg.kind == "sessions":
                self._on_session(msg, fx, touched)
            else:
                self._on_chunk(msg, fx, touched)
        self._finish_batch(touched, fx, closed_at)
        return fx

    def tick(self, now_utc: datetime | None = None, *, release_held: bool = False) -> Effects:
        """Timer work: close silent live subjects and finish ended or abandoned nights.

        Also dead-letters chunks whose session start never arrived. Silence is measured
        on the quiet clock of each subject's partition, and a live subject's epochs close
        by the wall clock only up to when its input is known complete
        (:class:`~stream.readability.InputClock`).

        Parameters
        ----------
        now_utc : datetime, optional
            The wall time (default: now).
        release_held : bool
            Checkpoint every subject that holds messages, so that all are acknowledged
            (a rebalance waits for that before it hands partitions over); otherwise a
            subject's messages wait at most ``max_unacked_s``.
        """
        fx = Effects()
        wall = now_utc or datetime.now(UTC)
        now = self.clock()
        touched: dict[str, SubjectState] = {}
        for sub in list(self.subjects.values()):
            quiet = self.inputs.quiet_time(sub.partition)
            if self._expire_pending(sub, quiet, fx):
                touched[sub.subject_id] = sub
            if sub.proc is None:
                continue
            if self._tick_session(sub, quiet, wall, fx):
                touched[sub.subject_id] = sub
            if sub.held and (release_held or
                             now - sub.last_checkpoint >= self.settings.max_unacked_s):
                sub.dirty = True  # no message waits for ever for its acknowledgement
                touched[sub.subject_id] = sub
        self._finish_batch(touched, fx, wall)
        return fx

    def _expire_pending(self, sub: SubjectState, quiet: float, fx: Effects) -> bool:
        """Dead-letter the chunks whose session start never arrived; whether any did."""
        wait = self.settings.unknown_session_wait_s
        expired = [p for p in sub.pending if quiet - p.since >= wait]
        if not expired:
            return False
        sub.pending = [p for p in sub.pending if p not in expired]
        for p in expired:
            self._dead(fx, p.msg, "process", (
                f"chunk of session {p.chunk.session_id!r} of {p.chunk.subject_id!r}, "
                f"whose start never arrived within {wait} s; send the session start first"),
                "UnknownSession")
        return True

    def _tick_session(self, sub: SubjectState, quiet: float, wall: datetime,
                      fx: Effects) -> bool:
        """Finish a silent subject's night or close its live epochs; whether it changed."""
        proc = sub.proc
        assert proc is not None
        silent = quiet - sub.last_seen
        if sub.end is not None and not sub.end.final_seq \
                and silent >= self.settings.end_wait_s:
            self._finish_night(sub, sub.end.t_utc, fx)
            return True
        if silent >= self.settings.silence_timeout_s:
            log.info("subject %s silent for %.0f s: finishing its night",
                     sub.subject_id, silent)
            self._finish_night(sub, None, fx)
            return True
        if not proc.session.live:
            return False
        until = self.inputs.complete_until(sub.partition, wall)
        if until is None:  # the worker cannot tell silence from what it could not read
            return False
        n = proc.due((until - proc.session.start).total_seconds())
        if n:
            sub.closed += [(proc.session, e) for e in proc.close(n)]
        return bool(n)

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the subjects of revoked partitions; returns how many.

        Their unacknowledged messages are re-delivered to the new owner, which rebuilds
        the subjects from the tables.
        """
        gone = [k for k, s in self.subjects.items() if s.partition in partitions]
        for k in gone:
            del self.subjects[k]
        return len(gone)

    # ------------------------------------------------------------------ subjects
    def _subject(self, subject_id: str, partition: int) -> SubjectState:
        sub = self.subjects.get(subject_id)
        if sub is not None:
            sub.partition = partition
            return sub
        sub = SubjectState(subject_id, partition, self.inputs.quiet_time(partition),
                           jitter=0.5 + zlib.crc32(subject_id.encode()) / 2**32)
        sub.restore(self.state_lookup(subject_id), self.clock())
        self.subjects[subject_id] = sub
        return sub

    def _dead(self, fx: Effects, msg: Inbound, stage: str, reason: str, error_type: str,
              *, release: bool = True) -> None:
        self.stats.dead_letters[stage] += 1
        fx.dead_letters.append(DeadLetter.wrap(
            msg.value or b"", topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=None if msg.key is None else msg.key.decode("utf-8", "replace"),
            stage=stage, reason=reason, error_type=error_type,
            received_at_utc=datetime.now(UTC),
        ))
        if release:
            fx.release.append(msg.token)

    def _check_key(self, msg: Inbound, subject_id: str, fx: Effects) -> bool:
        if msg.key == subject_id.encode():
            return True
        self._dead(fx, msg, "validate", (
            f"message key {msg.key!r} is not the subject id {subject_id!r}; key every "
            "message by its subject_id so that a subject's messages stay in order"),
            "KeyMismatch")
        return False

    # ------------------------------------------------------------------ sessions
    def _on_session(self, msg: Inbound, fx: Effects, touched: dict[str, SubjectState]) -> None:
        ev = decode(msg.value, SessionEvent)
        if isinstance(ev, DecodeFailure):
            self._dead(fx, msg, ev.stage, ev.reason, ev.error_type)
            return
        if not self._check_key(msg, ev.subject_id, fx):
            return
        sub = self._subject(ev.subject_id, msg.partition)
        sub.last_seen = self.inputs.quiet_time(msg.partition)
        touched[sub.subject_id] = sub
        if ev.event == "start":
            self._on_start(sub, ev, msg, fx)
        else:
            self._on_end(sub, ev, msg, fx)

    def _on_start(self, sub: SubjectState, ev: SessionEvent, msg: Inbound, fx: Effects) -> None:
        if (sub.proc is not None and sub.proc.session.session_id == ev.session_id) or (
            sub.finished_session == ev.session_id
        ):
            self.stats.duplicates += 1
            fx.release.append(msg.token)
            return
        if sub.proc is not None:  # a new night replaces one that never ended
            log.info("subject %s: session %s starts while %s is open; finishing that one",
                     sub.subject_id, ev.session_id, sub.proc.session.session_id)
            self._finish_night(sub, None, fx)
        try:
            models = self.models_of(ev.family)
        except (OSError, ValueError) as err:  # no model files, or a card the stream refuses
            self._dead(fx, msg, "process", (
                f"session {ev.session_id!r} of {ev.subject_id!r} cannot be staged: no usable "
                f"{ev.family!r} models here ({err}). Install or point SLEEPSTREAM_WEIGHTS_DIR "
                "at models of that family; its chunks are dead-lettered too"), "NoModels")
            return
        session = Session.from_event(ev)
        try:
            models.check_channels(session.channels)
            models.check_inputs(ev.modalities)
            # the causal window is as long as the shipped causal model of the family reads
            proc = SubjectProcessor(session, grace_s=self.settings.grace_s,
                                    context_epochs=models.context_epochs)
        except ValueError as err:  # channels or inputs the family's models cannot take
            self._dead(fx, msg, "process", (
                f"session {ev.session_id!r} of {ev.subject_id!r} cannot be staged: {err}. "
                "Announce what the family's models read; its chunks are dead-lettered too"),
                "BadSession")
            return
        sub.proc = proc
        sub.end = None
        sub.row_blocks, sub.unsaved_rows = [], []
        sub.dirty = True
        sub.held.append(msg.token)
        waiting = [p for p in sub.pending if p.chunk.session_id == ev.session_id]
        sub.pending = [p for p in sub.pending if p.chunk.session_id != ev.session_id]
        for p in waiting:
            self._apply(sub, p.msg, p.chunk, fx)

    def _on_end(self, sub: SubjectState, ev: SessionEvent, msg: Inbound, fx: Effects) -> None:
        proc = sub.proc
        if proc is None or proc.session.session_id != ev.session_id:
            if sub.finished_session == ev.session_id:
                self.stats.duplicates += 1
                fx.release.append(msg.token)
                return
            self._dead(fx, msg, "process", (
                f"end of session {ev.session_id!r} of {ev.subject_id!r}, which is not open "
                "here; send its start first"), "UnknownSession")
            return
        sub.end = SessionEnd(ev.t_utc, dict(ev.final_seq))
        sub.dirty = True
        sub.held.append(msg.token)
        if sub.final_reached():
            self._finish_night(sub, ev.t_utc, fx)

    # ------------------------------------------------------------------ chunks
    def _on_chunk(self, msg: Inbound, fx: Effects, touched: dict[str, SubjectState]) -> None:
        chunk = decode(msg.value, SampleChunk)
        if isinstance(chunk, DecodeFailure):
            self._dead(fx, msg, chunk.stage, chunk.reason, chunk.error_type)
            return
        if not self._check_key(msg, chunk.subject_id, fx):
            return
        self.stats.chunks += 1
        sub = self._subject(chunk.subject_id, msg.partition)
        sub.last_seen = self.inputs.quiet_time(msg.partition)
        touched[sub.subject_id] = sub
        if sub.proc is not None and sub.proc.session.session_id == chunk.session_id:
            self._apply(sub, msg, chunk, fx)
        elif sub.finished_session == chunk.session_id:
            window = sub.finished_sources.get(chunk.source_id)
            if window is not None and window.seen(chunk.seq):
                self.stats.duplicates += 1
                fx.release.append(msg.token)
            else:
                self._dead(fx, msg, "process", (
                    f"chunk {chunk.source_id}#{chunk.seq} arrived after session "
                    f"{chunk.session_id!r} of {chunk.subject_id!r} was finished"), "LateChunk")
        else:
            self.stats.held_unknown_session += 1
            sub.pending.append(PendingChunk(msg, chunk,
                                            self.inputs.quiet_time(msg.partition)))

    def _apply(self, sub: SubjectState, msg: Inbound, chunk: SampleChunk, fx: Effects) -> None:
        proc = sub.proc
        assert proc is not None
        window = proc.sources.get(chunk.source_id)
        if window is not None and chunk.seq > window.highest + 1:
            self.stats.seq_gaps += 1
            log.warning("subject %s: source %s jumped from seq %d to %d (at %s[%d]@%d); "
                        "chunks in between never arrived", chunk.subject_id,
                        chunk.source_id, window.highest, chunk.seq, msg.topic,
                        msg.partition, msg.offset)
        outcome, reason = proc.apply(chunk)
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates += 1
            fx.release.append(msg.token)
            return
        if outcome is Outcome.REJECTED:
            # its sequence number counts as processed (final_seq, de-duplication), so the
            # message is held until that is checkpointed
            proc.remember(chunk)
            self._dead(fx, msg, "process", (
                f"chunk {chunk.source_id}#{chunk.seq} of {chunk.subject_id!r}: {reason}"),
                "RejectedChunk", release=False)
            sub.dirty = True
            sub.held.append(msg.token)
            if sub.end is not None and sub.final_reached():
                self._finish_night(sub, sub.end.t_utc, fx)
            return
        sub.held.append(msg.token)
        n = proc.due()
        if n:
            sub.closed += [(proc.session, e) for e in proc.close(n)]
        if sub.end is not None and sub.final_reached():
            self._finish_night(sub, sub.end.t_utc, fx)

    # ------------------------------------------------------------------ nights
    def _finish_night(self, sub: SubjectState, end: datetime | None, fx: Effects) -> None:
        """Close the remaining epochs, re-score the night offline, leave a finished marker."""
        proc = sub.proc
        assert proc is not None
        session = proc.session
        if end is None:  # no end event: the night ends with the last epoch that had data
            last = max(proc.watermark_s, proc.n_closed * EPOCH_S)
            n_total = max(proc.n_closed, math.ceil(last / EPOCH_S)) if math.isfinite(last) \
                else proc.n_closed
            end = session.start + timedelta(seconds=n_total * EPOCH_S)
        sub.closed += [(session, e) for e in proc.close_until(end)]
        rows, has_data, keys = night_rows(
            sub, session, (proc.n_closed, *proc.row_shape), self.rows_lookup)
        fx.rows += [(sub.partition, key, None) for key in keys]
        # the causal events of the epochs closed just now are staged with the batch; the
        # offline revision follows in the same batch
        x, valid = split_rows(rows, proc.channel_set)
        self._offline.append((session, x, valid if proc.channel_set else None,
                              [bool(v) for v in has_data]))
        sub.finished_session = session.session_id
        sub.finished_sources = dict(proc.sources)
        sub.proc = None
        sub.end = None
        sub.row_blocks, sub.unsaved_rows = [], []
        sub.dirty = True
        self._finished_now.add((sub.subject_id, session.session_id))
        self.stats.nights_finished += 1

    def _finish_batch(self, touched: dict[str, SubjectState], fx: Effects,
                      closed_at: datetime) -> None:
        """Stage every epoch closed in the batch in one call per family, then checkpoint."""
        self.stats.batches += 1
        by_family: dict[str, list[tuple[Session, ClosedEpoch]]] = {}
        for sub in touched.values():
            for session, epoch in sub.closed:
                by_family.setdefault(session.family, []).append((session, epoch))
        for family, closed in by_family.items():
            events = self.models_of(family).stage_causal(closed, closed_at)
            self.stats.epochs_closed += len(events)
            self.stats.causal_events += len(events)
            self.stats.latencies_s.extend(e.latency_s for e in events)
            fx.stage_events += events
        for session, rows, present, has_data in self._offline:
            events, summary = self.models_of(session.family).stage_night(
                session, rows, has_data, closed_at, present=present)
            self.stats.offline_events += len(events)
            fx.stage_events += events
            if summary is not None:
                fx.summaries.append(summary)
        self._offline.clear()
        now = self.clock()
        for sub in touched.values():
            closed_any = bool(sub.closed)
            for session, epoch in sub.closed:
                if (sub.subject_id, session.session_id) not in self._finished_now:
                    sub.unsaved_rows.append((epoch.index, encode_row(epoch.stored,
                                                                      epoch.has_data)))
            sub.closed = []
            # a checkpoint at a session start, end or finish, and after epochs closed (at
            # most every checkpoint_interval_s, jittered per subject so that subjects that
            # started together do not all write at once); the held messages are
            # acknowledged with it
            if sub.dirty or (closed_any and now - sub.last_checkpoint
                             >= self.settings.checkpoint_interval_s * sub.jitter):
                self._due[sub.subject_id] = sub
        self._finished_now.clear()

    def checkpoints(self) -> Effects:
        """Checkpoints of the subjects due after :meth:`handle` or :meth:`tick`.

        Called once the batch's outputs are published: staging latency does not wait for
        the checkpoints, and no checkpoint is durable before the outputs it covers.
        """
        fx = Effects()
        now = self.clock()
        for sub in self._due.values():
            if self.subjects.get(sub.subject_id) is sub:
                self._checkpoint(sub, fx, now)
        self._due.clear()
        return fx

    def _checkpoint(self, sub: SubjectState, fx: Effects, now: float) -> None:
        if sub.unsaved_rows and sub.proc is not None:
            first = sub.unsaved_rows[0][0]
            key = block_key(sub.subject_id, sub.proc.session.session_id, first)
            fx.rows.append((sub.partition, key,
                            {"first": first, "rows": [enc for _, enc in sub.unsaved_rows]}))
            sub.row_blocks.append(first)
            sub.unsaved_rows = []
        fx.state.append((sub.partition, sub.subject_id, sub.to_state()))
        fx.release += sub.held
        sub.held = []
        sub.dirty = False
        sub.last_checkpoint = now
        self.stats.checkpoints += 1
