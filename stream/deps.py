"""What the agents, timers, pages and handlers of one app share, built once per app."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import faust
from faust.types import TP

from stream.delivery import GapFiller, InOrderAcks
from stream.effects import Effects
from stream.publish import Publisher
from stream.readability import InputGate
from stream.settings import SinkSettings, StreamSettings
from stream.sinks import Sink, make_sink
from stream.topics import Topics, declare_topics
from stream.worker import Worker

__all__ = ["Deps", "build_deps"]

log = logging.getLogger(__name__)


async def _no_app(err: BaseException) -> None:
    """Without an app to stop (unit tests): the error goes on up."""
    raise err


@dataclass
class Deps:
    """The shared parts of one app (see :func:`build_deps`).

    Attributes
    ----------
    settings, sink_settings : StreamSettings, SinkSettings
        The worker's and the sink's settings.
    topics : Topics
        Topic names and the agents' channels.
    worker : Worker
        The stream logic, free of Faust.
    publisher : Publisher
        Makes the worker's effects durable, in order, and acknowledges.
    lock : asyncio.Lock
        Held while the worker runs and its effects are published (stage agent, tick
        timer, rebalance handler): one batch or tick at a time.
    acks : InOrderAcks
        Acknowledges input messages in offset order.
    gaps : GapFiller
        Reads back messages Faust never handed over; its clients also ask the broker
        for end offsets and committed offsets.
    gate : InputGate
        Readability of the input partitions (fed by the readability monitor).
    offsets : dict
        ``TP -> offset`` of the last message the stage agent processed.
    worker_name : str
        Host name and process id, for health points and the stats page.
    make_sink : callable
        Builds a sink from the sink settings (tests pass a fake).
    crash : callable
        Stops the worker with an error (``app.crash``).
    """

    settings: StreamSettings
    sink_settings: SinkSettings
    topics: Topics
    worker: Worker
    publisher: Publisher
    lock: asyncio.Lock
    acks: InOrderAcks
    gaps: GapFiller
    gate: InputGate
    offsets: dict[TP, int] = field(default_factory=dict)
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    make_sink: Callable[[SinkSettings], Sink] = make_sink
    crash: Callable[[BaseException], Awaitable[None]] = field(default=_no_app, repr=False)

    async def process(self, fx: Effects) -> None:
        """Publish the outputs of a batch or tick, then its checkpoints; acknowledge.

        If they cannot be made durable the worker stops (``crash``, exit code 1): its
        memory is then ahead of its checkpoints, and only a restart, which resumes from
        them and is re-sent the unacknowledged messages, is right again.
        """
        try:
            await self.publisher.publish(fx)
            await self.publisher.publish(self.worker.checkpoints())
        except Exception as err:
            log.critical("sleepstream: a batch's effects could not be made durable (%s); "
                         "stopping the worker so that a restart resumes from its "
                         "checkpoints", err)
            await self.crash(err)


def build_deps(app: faust.App, settings: StreamSettings, sink_settings: SinkSettings) -> Deps:
    """Declare the topics and tables on ``app`` and build what its parts share."""
    topics = declare_topics(app, settings)
    state_table = app.Table("subject-state", default=None, partitions=settings.partitions)
    rows_table = app.Table("night-rows", default=None, partitions=settings.partitions)
    gate = InputGate(settings.grace_s)
    worker = Worker(settings, state_table.get, rows_table.get, inputs=gate)
    acks = InOrderAcks(app)
    publisher = Publisher(lambda: app.producer, state_table, rows_table, acks,
                          stages=topics.stages, summaries=topics.summaries,
                          deadletter=topics.deadletter)
    gaps = GapFiller(settings.bootstrap, settings.app_id, settings.kafka_client_options())
    return Deps(settings, sink_settings, topics, worker, publisher, asyncio.Lock(), acks,
                gaps, gate, crash=app.crash)
