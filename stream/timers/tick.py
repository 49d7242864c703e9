"""Timer ``tick``: close silent live subjects, finish ended or abandoned nights.

Every ``SLEEPSTREAM_TICK_INTERVAL_S`` it runs :meth:`~stream.worker.Worker.tick` (which
also dead-letters chunks of sessions that never started, and checkpoints subjects whose
messages waited ``max_unacked_s``) and publishes its effects, under the same lock as the
stage agent. What the wall clock may close depends on the readability of the input
(:mod:`stream.readability`). During a rebalance every subject that holds unacknowledged
messages is checkpointed at once, so that Faust, which waits for them, hands the
partitions over without delay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["register"]


def register(app: faust.App, deps: Deps) -> None:
    """Add the ``tick`` timer to ``app``."""

    @app.timer(deps.settings.tick_interval_s, name="tick")
    async def close_silent_subjects() -> None:
        """One tick of the worker, published."""
        async with deps.lock:
            # in a rebalance Faust hands partitions over only once every message it
            # delivered is acknowledged: checkpoint the subjects that hold some now,
            # rather than after max_unacked_s
            await deps.process(deps.worker.tick(release_held=app.rebalancing))
