"""What goes into the worker and what comes out: messages, effects and counters.

:class:`~stream.worker.Worker` takes :class:`Inbound` messages and returns
:class:`Effects`, which :class:`~stream.publish.Publisher` makes durable in order.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from stream.schemas import DeadLetter, NightSummary, StageEvent

__all__ = ["Effects", "Inbound", "TopicKind", "WorkerStats"]

TopicKind = Literal["sessions", "samples"]


@dataclass
class Inbound:
    """One consumed message: where it came from, its raw key and value, and an ack token."""

    kind: TopicKind
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    token: object = None


@dataclass
class Effects:
    """What the app must do after a batch, in this order.

    :meth:`Worker.handle <stream.worker.Worker.handle>` and :meth:`Worker.tick
    <stream.worker.Worker.tick>` give the outputs (and the messages that need no
    checkpoint), :meth:`Worker.checkpoints <stream.worker.Worker.checkpoints>` then gives
    the checkpoints:

    1. publish ``stage_events``, ``summaries`` and ``dead_letters`` and wait until the
       broker has them;
    2. write ``rows`` (blocks of encoded rows) and ``state`` (JSON text), each given as
       ``(partition, key, value)``: new row blocks first, then the checkpoints, then the
       deletions (value None), each step durable before the next;
    3. acknowledge the ``release`` tokens.
    """

    stage_events: list[StageEvent] = field(default_factory=list)
    summaries: list[NightSummary] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    state: list[tuple[int, str, str | None]] = field(default_factory=list)
    rows: list[tuple[int, str, dict[str, Any] | None]] = field(default_factory=list)
    release: list[object] = field(default_factory=list)

    @property
    def publishes(self) -> bool:
        """Whether anything is to be published."""
        return bool(self.stage_events or self.summaries or self.dead_letters)


@dataclass
class WorkerStats:
    """Counters since the worker started."""

    messages: int = 0
    batches: int = 0
    checkpoints: int = 0
    chunks: int = 0
    duplicates: int = 0
    seq_gaps: int = 0
    held_unknown_session: int = 0
    epochs_closed: int = 0
    causal_events: int = 0
    offline_events: int = 0
    nights_finished: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    #: (wall time, seconds from a message's broker timestamp to its processing)
    ingest_delays: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=500_000))

    @property
    def dead_letter_total(self) -> int:
        """All dead letters."""
        return sum(self.dead_letters.values())
