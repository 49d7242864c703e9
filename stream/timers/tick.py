"""Timer ``tick``: close silent live subjects, finish ended or abandoned nights.

Every ``SLEEPSTREAM_TICK_INTERVAL_S`` it runs :meth:`~stream.worker.Worker.tick` (which
also dead-letters chunks of sessions that never started, and checkpoints subjects whose
messages waited ``max_unacked_s``) and publishes its effects, under the same lock as the
stage agent. What the wall clock may close depends on the readability of the input
(:mod:`stream.readability`).
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
            await deps.process(deps.worker.tick())
