"""The app's signal handlers: partitions revoked, worker stopping.

On revocation the subjects of the revoked input partitions are dropped (their
unacknowledged messages go to the new owner, which rebuilds them from the tables), and
the acknowledgement queues, gap reader positions and processed offsets of the revoked
partitions are forgotten. Before shutdown the gap reader's broker connections close.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import faust
from faust.types import TP

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: faust.App, deps: Deps) -> None:
    """Connect the handlers to ``app``'s signals."""

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def hand_over_subjects(sender: faust.App, revoked: set[TP],
                                 **kwargs: object) -> None:
        deps.acks.forget(revoked)
        deps.gaps.forget(revoked)
        for tp in revoked:
            deps.offsets.pop(tp, None)
        mine = {tp.partition for tp in revoked if tp.topic in deps.topics.kinds}
        if mine:
            async with deps.lock:
                dropped = deps.worker.drop_partitions(mine)
            log.info("sleepstream: partitions %s revoked; %d subjects handed over",
                     sorted(mine), dropped)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_gap_reader(sender: faust.App, **kwargs: object) -> None:
        await deps.gaps.stop()
