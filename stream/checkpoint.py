"""A subject as the worker holds it, and its checkpoint in the two tables.

The ``subject-state`` table holds one JSON checkpoint per subject
(:meth:`SubjectState.to_state`, read back by :meth:`SubjectState.restore`): the open
session's processor, its end if one arrived, the finished session's sources (for
de-duplication) and the first epochs of the night's saved row blocks. The
``night-rows`` table holds those blocks (:func:`block_key`), each a run of feature rows
encoded by :func:`encode_row`, so that the offline model can re-score a night at its end
on any worker that owns the subject (:func:`night_rows`).
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.effects import Inbound
from stream.engine import ClosedEpoch, SeqWindow, Session, SubjectProcessor
from stream.schemas import SampleChunk

__all__ = [
    "PendingChunk",
    "SessionEnd",
    "SubjectState",
    "block_key",
    "decode_row",
    "encode_row",
    "night_rows",
]

log = logging.getLogger(__name__)

STATE_VERSION = 1


def block_key(subject_id: str, session_id: str, first: int) -> str:
    """Key of the night-rows block whose first feature row is epoch ``first``."""
    return f"{subject_id}|{session_id}|{first}"


def encode_row(row: NDArray[np.float32], has_data: bool) -> str:
    """A stored feature row and its has-data flag as text (little-endian float32, base64).

    ``row`` is :attr:`stream.engine.ClosedEpoch.stored`: a psg row is per channel with the
    channel mask as its last column; :func:`night_rows` gives it its shape back.
    """
    data = base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii")
    return f"{int(has_data)}:{data}"


def decode_row(value: str) -> tuple[NDArray[np.float32], bool]:
    """Inverse of :func:`encode_row`."""
    flag, data = value.split(":", 1)
    return np.frombuffer(base64.b64decode(data), dtype="<f4").copy(), flag == "1"


@dataclass
class SessionEnd:
    """A session's end event, kept until the night is finished."""

    t_utc: datetime
    final_seq: dict[str, int]

    def to_state(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"t_utc": self.t_utc.isoformat(), "final_seq": self.final_seq}


@dataclass
class PendingChunk:
    """A chunk of a session whose start has not arrived, held since ``since``."""

    msg: Inbound
    chunk: SampleChunk
    since: float  # the partition's quiet time


@dataclass
class SubjectState:
    """One subject on this worker: its open session, what waits, what is not saved yet.

    ``last_seen`` and ``last_checkpoint`` are on the clocks of
    :class:`~stream.worker.Worker` (the quiet time of the subject's partition, and the
    monotonic clock).
    """

    subject_id: str
    partition: int
    last_seen: float
    proc: SubjectProcessor | None = None
    end: SessionEnd | None = None
    finished_session: str | None = None
    finished_sources: dict[str, SeqWindow] = field(default_factory=dict)
    held: list[object] = field(default_factory=list)
    pending: list[PendingChunk] = field(default_factory=list)
    closed: list[tuple[Session, ClosedEpoch]] = field(default_factory=list)
    dirty: bool = False
    # feature rows of the open session: saved blocks (first epoch of each) and the rows
    # closed since the last checkpoint
    row_blocks: list[int] = field(default_factory=list)
    unsaved_rows: list[tuple[int, str]] = field(default_factory=list)
    last_checkpoint: float = -math.inf
    jitter: float = 1.0  # this subject's factor on checkpoint_interval_s, in [0.5, 1.5)

    def final_reached(self) -> bool:
        """Whether the session's end came with ``final_seq`` and every source reached it."""
        if self.proc is None or self.end is None or not self.end.final_seq:
            return False
        sources = self.proc.sources
        return all(src in sources and sources[src].highest >= seq
                   for src, seq in self.end.final_seq.items())

    def to_state(self) -> str:
        """The checkpoint: JSON text for the subject table."""
        return json.dumps({
            "v": STATE_VERSION,
            "proc": None if self.proc is None else self.proc.to_state(),
            "end": None if self.end is None else self.end.to_state(),
            "finished_session": self.finished_session,
            "finished_sources": {k: w.to_state() for k, w in self.finished_sources.items()},
            "row_blocks": self.row_blocks,
        }, separators=(",", ":"))

    def restore(self, text: str | None, now: float) -> None:
        """Take over the checkpoint ``text`` (None: none saved), written at ``now``.

        A checkpoint of an unknown version is logged and ignored (the subject starts
        afresh).
        """
        state = None if text is None else json.loads(text)
        if state is None:
            return
        if state.get("v") != STATE_VERSION:
            log.error("subject %s: checkpoint version %r unknown; starting afresh",
                      self.subject_id, state.get("v"))
            return
        if state["proc"] is not None:
            self.proc = SubjectProcessor.from_state(state["proc"])
        if state["end"] is not None:
            self.end = SessionEnd(datetime.fromisoformat(state["end"]["t_utc"]),
                                  dict(state["end"]["final_seq"]))
        self.finished_session = state["finished_session"]
        self.row_blocks = list(state["row_blocks"])
        self.last_checkpoint = now
        if self.proc is not None:
            log.info("subject %s: resumed session %s from its checkpoint (%d epochs "
                     "closed, last seq %s)", self.subject_id, self.proc.session.session_id,
                     self.proc.n_closed, {k: w.highest for k, w in self.proc.sources.items()})
        self.finished_sources = {k: SeqWindow.from_state(v, 4096)
                                 for k, v in state["finished_sources"].items()}


def night_rows(
    sub: SubjectState,
    session: Session,
    shape: tuple[int, ...],
    rows_lookup: Callable[[str], dict[str, Any] | None],
) -> tuple[NDArray[np.float32], NDArray[np.bool_], list[str]]:
    """A finished night's feature rows, from the saved blocks and what is in memory.

    Parameters
    ----------
    sub : SubjectState
        The subject, its epochs closed up to the night's end.
    session : Session
        The night.
    shape : tuple of int
        Epochs of the night, then the shape of a stored row
        (:attr:`stream.engine.SubjectProcessor.row_shape`).
    rows_lookup : callable
        Reads the night-rows table.

    Returns
    -------
    rows : ndarray of float32, shape ``shape``
    has_data : ndarray of bool, shape (n_epochs,)
    keys : list of str
        The night's blocks in the table (to delete once the night is re-scored).
    """
    n = shape[0]
    rows = np.zeros(shape, np.float32)
    has_data = np.zeros(n, bool)
    known = np.zeros(n, bool)

    def put(k: int, row: NDArray[np.float32], flag: bool) -> None:
        if 0 <= k < n:
            rows[k], has_data[k], known[k] = row.reshape(shape[1:]), flag, True

    keys = [block_key(sub.subject_id, session.session_id, first) for first in sub.row_blocks]
    for first, key in zip(sub.row_blocks, keys, strict=True):
        block = rows_lookup(key)
        if block is not None:
            for j, enc in enumerate(block["rows"]):
                put(first + j, *decode_row(enc))
    for k, enc in sub.unsaved_rows:
        put(k, *decode_row(enc))
    for s, e in sub.closed:
        if s.session_id == session.session_id:
            put(e.index, e.stored, e.has_data)
    if not known.all():
        log.error("subject %s session %s: %d of %d feature rows missing from the "
                  "night-rows table; they are scored as empty epochs",
                  sub.subject_id, session.session_id, int((~known).sum()), n)
    return rows, has_data, keys
