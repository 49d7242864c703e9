"""Whether the worker can read its input, and up to when the wall clock may close epochs.

A live subject's epochs also close by the wall clock: once the subject has been silent
past an epoch's end plus the grace period (:meth:`stream.worker.Worker.tick`). That
silence means something only if the worker could have seen the samples. During a broker
outage the ingestors keep reading their devices into their outbox and send the backlog
when the broker is back, so silence seen by a worker that cannot read is no silence:
closing those epochs would turn the backlog into late, dead-lettered samples.

:class:`InputGate` keeps, per input partition (the partition number, shared by the
sessions and samples topics), what the readability checks found
(:mod:`stream.timers.readability` asks the broker for the end offsets of the assigned
input partitions every tick interval, with a short time limit, and compares them with
the offsets the stage agent has processed):

* **readable**: the last check succeeded;
* **complete until**: the wall time of the latest check whose end offsets the agent has
  processed since: every message that was on the broker then has been seen, so a
  subject silent up to then was silent. Under load this lags the wall clock by about
  the consumer lag, and it stands still while the worker cannot read;
* **back at**: when readability returned after an outage. For ``grace_s`` after it the
  wall clock closes nothing: the ingestors' outboxes retry every few seconds, so their
  backlog arrives within that time and closes its epochs in event time;
* a **quiet clock** that stands still while the partition is unreadable: the silence
  timeouts (``silence_timeout_s``, ``end_wait_s``, ``unknown_session_wait_s``) are
  measured on it, so they never count time the worker could not read.

Everything takes the time as an argument (or from an injectable clock), so the rules are
unit-tested with a fake clock. :class:`AlwaysReadable` is the gate of a worker without
checks (unit tests, benchmarks): its input is always complete up to now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["AlwaysReadable", "InputClock", "InputGate", "PartitionReadability"]


class InputClock(Protocol):
    """What :class:`~stream.worker.Worker` asks about its input partitions."""

    def quiet_time(self, partition: int) -> float:
        """Monotonic seconds that advance only while ``partition`` can be read."""

    def complete_until(self, partition: int, wall: datetime) -> datetime | None:
        """Up to when a silent live subject of ``partition`` is known silent; None: not now.

        ``wall`` is the current wall time (timezone-aware).
        """


@dataclass
class AlwaysReadable:
    """The gate of a worker without readability checks: its input is always complete."""

    clock: Callable[[], float] = time.monotonic

    def quiet_time(self, partition: int) -> float:
        """The clock itself."""
        return self.clock()

    def complete_until(self, partition: int, wall: datetime) -> datetime | None:
        """Now."""
        return wall


@dataclass
class PartitionReadability:
    """What the checks found about one input partition.

    Attributes
    ----------
    assigned : bool
        Assigned to this worker (checked since it last was revoked).
    readable : bool
        The last check succeeded.
    down_since : float or None
        Monotonic time the current outage began; None while readable.
    back_at : float
        Monotonic time readability last returned after an outage (-inf: never lost).
    blind_s : float
        Seconds of past outages.
    complete : datetime or None
        Wall time up to which every message of the partition has been processed.
    target : tuple or None
        ``(wall time, {topic: end offset})`` of the oldest check not yet processed up to.
    """

    assigned: bool = True
    readable: bool = False
    down_since: float | None = None
    back_at: float = -math.inf
    blind_s: float = 0.0
    complete: datetime | None = None
    target: tuple[datetime, dict[str, int]] | None = field(default=None, repr=False)

    def unreadable_s(self, now: float) -> float:
        """Seconds this partition could not be read, the current outage included."""
        return self.blind_s + (0.0 if self.down_since is None else now - self.down_since)


def _covered(ends: Mapping[str, int], positions: Mapping[str, int]) -> bool:
    """Whether every topic's next offset to process has reached its end offset."""
    return all(positions.get(topic, -1) >= end for topic, end in ends.items())


class InputGate:
    """Readability of the input partitions, and the wall-clock closing it allows.

    Parameters
    ----------
    grace_s : float
        The epochs' grace period: how long after an outage the wall clock closes nothing.
    clock : callable, optional
        Monotonic clock (tests pass a fake one).
    """

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(grace_s) and grace_s >= 0):
            msg = f"grace_s must be a finite number of seconds >= 0; got {grace_s}"
            raise ValueError(msg)
        self.grace_s = float(grace_s)
        self.clock = clock
        self.partitions: dict[int, PartitionReadability] = {}
        #: checks that found readable partitions unreadable
        self.outages = 0

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    # ------------------------------------------------------------------ checks
    def failed(self, partitions: Iterable[int], now: float | None = None) -> list[int]:
        """A check of ``partitions`` failed; returns those that were readable until now."""
        t = self._now(now)
        lost = []
        for p in partitions:
            st = self.partitions.setdefault(p, PartitionReadability())
            if st.down_since is None:
                st.down_since = t
                lost.append(p)
            st.readable, st.assigned = False, True
        if lost:
            self.outages += 1
        return sorted(lost)

    def checked(self, partition: int, ends: Mapping[str, int], positions: Mapping[str, int],
                wall: datetime, now: float | None = None) -> float | None:
        """A check at ``wall`` found ``ends``; the agent's next offsets are ``positions``.

        Parameters
        ----------
        ends, positions : mapping of str to int
            Per topic of the partition: the end offset (the next offset to be written)
            and the next offset the agent will process.

        Returns
        -------
        float or None
            The length in s of the outage this check ended; None if there was none.
        """
        t = self._now(now)
        st = self.partitions.setdefault(partition, PartitionReadability())
        outage = None
        if st.down_since is not None:
            outage = t - st.down_since
            st.blind_s += outage
            st.down_since = None
            st.back_at = t
        st.readable = st.assigned = True
        if st.target is not None and _covered(st.target[1], positions):
            st.complete, st.target = st.target[0], None
        if _covered(ends, positions):
            st.complete, st.target = wall, None
        elif st.target is None:
            st.target = (wall, dict(ends))
        return outage

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: what was processed is unknown, outages are remembered.

        A partition handed back during or after an outage (the usual rebalance when the
        broker returns) still waits ``grace_s`` from the outage's end. Until it is
        checked again it does not count in :meth:`readable` and :meth:`unreadable_s`.
        """
        for p in partitions:
            st = self.partitions.get(p)
            if st is not None:
                st.complete = st.target = None
                st.assigned = False

    # ------------------------------------------------------------------ questions
    def quiet_time(self, partition: int, now: float | None = None) -> float:
        """Monotonic seconds that stand still while ``partition`` cannot be read."""
        t = self._now(now)
        st = self.partitions.get(partition)
        return t if st is None else t - st.unreadable_s(t)

    def complete_until(self, partition: int, wall: datetime,
                       now: float | None = None) -> datetime | None:
        """Wall time up to which the wall clock may close ``partition``'s live epochs.

        None while the partition is unreadable, not yet checked, not yet processed up to
        any check, or within ``grace_s`` of the end of an outage.
        """
        st = self.partitions.get(partition)
        if st is None or not st.readable or st.complete is None:
            return None
        if self._now(now) - st.back_at < self.grace_s:
            return None
        return min(st.complete, wall)

    def readable(self) -> bool | None:
        """Whether every assigned partition is readable; None before the first check."""
        assigned = [st for st in self.partitions.values() if st.assigned]
        if not assigned:
            return None
        return all(st.readable for st in assigned)

    def unreadable_s(self, now: float | None = None) -> float:
        """The longest time an assigned partition could not be read, in s."""
        t = self._now(now)
        return max((st.unreadable_s(t) for st in self.partitions.values() if st.assigned),
                   default=0.0)
