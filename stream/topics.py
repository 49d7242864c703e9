"""The worker's topics (prefix ``sleep.`` by default, ``SLEEPSTREAM_PARTITIONS`` each).

``sessions`` and ``samples`` (in)
    :class:`~stream.schemas.SessionEvent` and :class:`~stream.schemas.SampleChunk` as
    JSON; read as raw bytes so that a bad message becomes a dead letter, not a crash.
``stages``, ``summaries`` (out)
    :class:`~stream.schemas.StageEvent` and :class:`~stream.schemas.NightSummary`;
    written with the raw producer (the payloads are JSON already) and read back by the
    sink agent.
``deadletter`` (out)
    :class:`~stream.schemas.DeadLetter`: raw bytes, topic, offset and reason.

Every topic is keyed by subject id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust

from stream.delivery import InputTopic
from stream.effects import TopicKind
from stream.settings import StreamSettings

__all__ = ["Topics", "declare_topics"]


@dataclass(frozen=True)
class Topics:
    """The topics of one app.

    Attributes
    ----------
    kinds : mapping of str to {"sessions", "samples"}
        Input topic name -> what it carries.
    inputs : InputTopic
        Sessions and samples, read by the stage agent.
    outputs : InputTopic
        Stages and summaries, read by the sink agent.
    stages, summaries, deadletter : str
        Output topic names.
    dead_letters : faust.TopicT
        The dead-letter topic with its codec (the sink agent's dead letters).
    """

    kinds: Mapping[str, TopicKind]
    inputs: InputTopic
    outputs: InputTopic
    stages: str
    summaries: str
    deadletter: str
    dead_letters: Any


def declare_topics(app: faust.App, settings: StreamSettings) -> Topics:
    """Declare the topics on ``app``; a task creates the output topics at start."""
    n = settings.partitions

    def topic(name: str, value_serializer: str = "raw") -> Any:
        return app.topic(settings.topic(name), partitions=n, internal=True,
                         key_serializer="raw", value_serializer=value_serializer)

    def readers(*names: str) -> InputTopic:
        return InputTopic(app, topics=[settings.topic(x) for x in names], partitions=n,
                          internal=True, key_serializer="raw", value_serializer="raw")

    kinds: dict[str, TopicKind] = {
        settings.topic("sessions"): "sessions", settings.topic("samples"): "samples",
    }
    # declared here so that the worker creates them with the configured partitions
    outputs = [topic(name) for name in ("stages", "summaries", "deadletter")]

    @app.task
    async def declare_outputs() -> None:
        """Create the output topics (with the configured partitions) at start."""
        for t in outputs:
            await t.maybe_declare()

    stages, summaries, deadletter = (t.get_topic_name() for t in outputs)
    return Topics(kinds, readers("sessions", "samples"), readers("stages", "summaries"),
                  stages, summaries, deadletter,
                  topic("deadletter", "sleepstream.deadletter.v1"))
