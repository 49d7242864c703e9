"""The ``stage`` agent: sessions and samples in, stage events, summaries, checkpoints out.

It runs the :class:`~stream.worker.Worker` logic in batches (``SLEEPSTREAM_BATCH_MAX``
messages or ``SLEEPSTREAM_BATCH_WITHIN_S``): epochs close in event time, every epoch
closed in a batch is staged in one onnxruntime call per model family, nights are
re-scored offline at their end. Each subject's processor is checkpointed in the
``subject-state`` table and each epoch's feature row in ``night-rows`` (both
changelog-backed). A message is acknowledged only once its effects are published and
checkpointed (:class:`~stream.publish.Publisher`), so a worker killed at any moment
resumes without losing or double-counting a sample. Messages Faust fetched but never
handed over are read back from the broker first (:mod:`stream.delivery`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import faust
from faust.types import EventT

from stream.effects import Inbound

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["register", "stage_batch"]


async def stage_batch(deps: Deps, events: Sequence[EventT]) -> None:
    """Run one batch of input events through the worker and make its effects durable."""
    now = time.time()
    delays = deps.worker.stats.ingest_delays
    kinds, hold = deps.topics.kinds, deps.acks.hold
    messages = await deps.gaps.complete(events)
    batch = []
    for message in messages:
        if message.timestamp:
            delays.append((now, now - message.timestamp))
        batch.append(Inbound(kinds[message.topic], message.topic, message.partition,
                             message.offset, message.key, message.value, hold(message)))
    async with deps.lock:
        await deps.process(deps.worker.handle(batch))
        # processed: what the readability monitor compares with the end offsets
        for message in messages:
            deps.offsets[message.tp] = message.offset


def register(app: faust.App, deps: Deps) -> None:
    """Add the ``stage`` agent to ``app``."""
    settings = deps.settings

    @app.agent(deps.topics.inputs, name="stage")  # type: ignore[arg-type]
    async def stage_messages(stream: faust.Stream) -> None:
        """Stage the input in batches until the worker stops."""
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            await stage_batch(deps, events)
