"""Background check ``watch_input_readability``: whether the worker can read its input.

Every ``SLEEPSTREAM_TICK_INTERVAL_S`` it asks the broker, through the gap reader's
client (:meth:`~stream.delivery.GapFiller.end_offsets`), for the end offsets of the
sessions and samples partitions assigned to this worker, with a time limit of
``SLEEPSTREAM_READABILITY_TIMEOUT_S``, and hands the answer, with the offsets the stage
agent has processed, to the :class:`~stream.readability.InputGate`. A partition nothing
was processed of since its assignment counts from where its delivery starts (its
committed offset). A failed or late answer is an outage of every assigned partition:
logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import faust
from aiokafka.errors import KafkaError
from faust.types import TP

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["ReadabilityMonitor", "register"]

log = logging.getLogger(__name__)


class ReadabilityMonitor:
    """Check the assigned input partitions against the broker and feed the gate.

    Parameters
    ----------
    deps : Deps
        The gate, the gap reader (its clients ask the broker), the processed offsets and
        the input topic names.
    assignment : callable
        The partitions currently assigned to this worker (all topics).
    """

    def __init__(self, deps: Deps, assignment: Callable[[], Collection[TP]]) -> None:
        self.deps, self.assignment = deps, assignment
        #: where delivery started, for partitions nothing was processed of yet
        self.starts: dict[TP, int] = {}

    def inputs(self) -> list[TP]:
        """The assigned input partitions."""
        kinds = self.deps.topics.kinds
        return sorted(tp for tp in self.assignment() if tp.topic in kinds)

    async def check(self) -> None:
        """One check: end offsets from the broker, compared with what was processed."""
        tps = self.inputs()
        if not tps:
            return
        gate, wall = self.deps.gate, datetime.now(UTC)
        try:
            ends = await self.deps.gaps.end_offsets(tps, self.deps.settings.readability_timeout_s)
        except (KafkaError, TimeoutError, OSError) as err:
            lost = gate.failed({tp.partition for tp in tps})
            if lost:
                log.warning(
                    "sleepstream: cannot read input partitions %s (%s: %s); until they are "
                    "readable again no live epoch closes by the wall clock and no silence "
                    "is counted", lost, type(err).__name__,
                    str(err) or f"no answer within {self.deps.settings.readability_timeout_s} s")
            return
        positions = await self._positions(tps)
        back: dict[int, float] = {}
        for p in sorted({tp.partition for tp in tps}):
            mine = [tp for tp in tps if tp.partition == p]
            outage = gate.checked(p, {tp.topic: ends[tp] for tp in mine if tp in ends},
                                  {tp.topic: positions[tp] for tp in mine if tp in positions},
                                  wall)
            if outage is not None:
                back[p] = outage
        if back:
            log.warning("sleepstream: input partitions %s readable again after %.0f s; live "
                        "epochs close by the wall clock again in %.0f s, once the ingestors' "
                        "backlog is in", sorted(back), max(back.values()), gate.grace_s)

    async def _positions(self, tps: list[TP]) -> dict[TP, int]:
        """The next offset the stage agent will process, per partition (where known)."""
        processed = self.deps.offsets
        positions = {tp: processed[tp] + 1 for tp in tps if tp in processed}
        for tp in tps:
            if tp in positions or tp in self.starts:
                continue
            try:
                self.starts[tp] = await asyncio.wait_for(
                    self.deps.gaps.delivery_start(tp), self.deps.settings.readability_timeout_s)
            except (KafkaError, TimeoutError, OSError) as err:  # known at the next check
                log.debug("sleepstream: no committed offset of %s yet: %s", tp, err)
        for tp in tps:
            if tp in self.starts:
                positions[tp] = max(positions.get(tp, 0), self.starts[tp])
        return positions

    def forget(self, tps: Collection[TP]) -> None:
        """Partitions revoked: their delivery starts anew when they come back."""
        for tp in tps:
            self.starts.pop(tp, None)
        self.deps.gate.forget({tp.partition for tp in tps if tp.topic in self.deps.topics.kinds})


def register(app: faust.App, deps: Deps) -> ReadabilityMonitor:
    """Add the readability check to ``app`` (a task looping until the worker stops)."""
    monitor = ReadabilityMonitor(deps, lambda: app.consumer.assignment())

    @app.task
    async def watch_input_readability() -> None:
        """Check the input's readability every tick interval."""
        while True:
            await monitor.check()
            await asyncio.sleep(deps.settings.tick_interval_s)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked_inputs(sender: faust.App, revoked: set[TP],
                                    **kwargs: object) -> None:
        monitor.forget(revoked)

    return monitor
