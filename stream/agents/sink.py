"""The ``sink`` agent: stage events (with the inputs they carry) and summaries to the database.

It reads the stages and summaries topics in batches as long as a point may wait anyway
(the sink's flush interval: a database round trip per small batch would make the sink
lag behind), writes them through one sink (:func:`~stream.sinks.make_sink`), and
acknowledges them once the database has them, in offset order. An output that does not
decode becomes a dead letter. Without a database (``SLEEPSTREAM_INFLUX_KIND=none``)
nothing reads the outputs and the agent is not added.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import faust
from faust.types import EventT, Message

from stream.codecs import DecodeFailure, decode
from stream.schemas import DeadLetter, NightSummary, StageEvent
from stream.sinks import Sink, SinkItem

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["register", "write_batch"]


async def _dead_letter(deps: Deps, message: Message, failure: DecodeFailure) -> None:
    deps.worker.stats.dead_letters[failure.stage] += 1
    key = None if message.key is None else message.key.decode("utf-8", "replace")
    await deps.topics.dead_letters.send(key=message.key, value=DeadLetter.wrap(
        message.value or b"", topic=message.topic, partition=message.partition,
        offset=message.offset, key=key, stage=failure.stage, reason=failure.reason,
        error_type=failure.error_type, received_at_utc=datetime.now(UTC)))


async def write_batch(deps: Deps, sink: Sink, events: Sequence[EventT]) -> None:
    """Write one batch of output events, then acknowledge them."""
    items: list[SinkItem] = []
    messages = await deps.gaps.complete(events)
    for message in messages:
        model = StageEvent if message.topic == deps.topics.stages else NightSummary
        payload = decode(message.value, model)
        if isinstance(payload, DecodeFailure):
            await _dead_letter(deps, message, payload)
            continue
        # a causal event's sample statistics become their own point in the sink
        items.append(cast(StageEvent | NightSummary, payload))
    await sink.write_batch(items)
    await sink.flush()
    # acknowledged once the database has them, in offset order
    deps.acks.release([deps.acks.hold(m) for m in messages])


def register(app: faust.App, deps: Deps) -> None:
    """Add the ``sink`` agent to ``app``, unless no database is configured."""
    if deps.sink_settings.kind == "none":
        return

    @app.agent(deps.topics.outputs, name="sink")  # type: ignore[arg-type]
    async def write_outputs(stream: faust.Stream) -> None:
        """Write the outputs until the worker stops; the sink is closed then."""
        sink = deps.make_sink(deps.sink_settings)
        try:
            async for events in stream.take_events(deps.settings.batch_max,
                                                   deps.sink_settings.flush_interval_s):
                await write_batch(deps, sink, events)
        finally:
            await sink.close()
