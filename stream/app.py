"""The Faust app: ``faust -A stream.app worker -l info``.

Configured by the environment (:class:`~stream.settings.StreamSettings`, ``SLEEPSTREAM_*``;
the sink by :class:`~stream.settings.SinkSettings`, ``SLEEPSTREAM_INFLUX_*``).
:func:`create_app` declares the topics (:mod:`stream.topics`) and tables
(:mod:`stream.tables`), builds what the parts share once (:class:`~stream.deps.Deps`),
and adds each part from its own module:

agent ``stage`` (:mod:`stream.agents.stage`)
    Sessions and samples in; stage events, summaries, dead letters and checkpoints out,
    made durable in order (:mod:`stream.publish`) before the messages are acknowledged.
agent ``sink`` (:mod:`stream.agents.sink`)
    Stage events, their inputs and night summaries to InfluxDB.
timer ``tick`` (:mod:`stream.timers.tick`)
    Closes silent live subjects, finishes ended or abandoned nights, expires chunks of
    sessions that never started.
timer ``health`` (:mod:`stream.timers.health`)
    Logs and writes the ``sleep_pipeline`` point (events/s, dead letters, lag, latency).
task ``watch_input_readability`` (:mod:`stream.timers.readability`)
    Checks that the worker can read its input partitions; while it cannot, nothing
    closes as silent (:mod:`stream.readability`).
pages ``/sleepstream/stats/`` (:mod:`stream.web.stats`) and ``/live/`` (:mod:`stream.live`)
    Counters as JSON, and the live page.
handlers (:mod:`stream.handlers`)
    Partitions revoked, worker stopping.
"""

from __future__ import annotations

import faust

from stream import handlers
from stream.agents import sink, stage
from stream.codecs import register_codecs
from stream.deps import Deps, build_deps
from stream.live import install_live
from stream.settings import SinkSettings, StreamSettings
from stream.tables import SubjectTable
from stream.timers import health, readability, tick
from stream.web import stats
from stream.worker import Worker

__all__ = ["SubjectTable", "app", "create_app", "deps_of", "worker_of"]

_DEPS: dict[int, Deps] = {}


def deps_of(app: faust.App) -> Deps:
    """What the parts of an app made by :func:`create_app` share."""
    return _DEPS[id(app)]


def worker_of(app: faust.App) -> Worker:
    """The :class:`~stream.worker.Worker` behind an app made by :func:`create_app`."""
    return deps_of(app).worker


def _faust_app(settings: StreamSettings) -> faust.App:
    """The bare Faust app with the worker's broker, consumer and web settings."""
    return faust.App(
        settings.app_id,
        broker=settings.broker,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        datadir=str(settings.data_dir),
        store="memory://",
        Table=SubjectTable,
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_s,
        consumer_group_instance_id=settings.instance_id,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        producer_acks=-1,
        broker_credentials=settings.faust_credentials(),
        # Faust reads ~80 unprefixed variables (WEB_PORT, BROKER, ...) that would override
        # the settings above; only SLEEPSTREAM_FAUST_* ones reach it
        env_prefix="SLEEPSTREAM_FAUST_",
    )


def create_app(
    settings: StreamSettings | None = None, sink_settings: SinkSettings | None = None
) -> faust.App:
    """Build the app: topics, tables, agents, timers, pages and handlers.

    Parameters
    ----------
    settings : StreamSettings, optional
        The worker's settings (default: from the environment).
    sink_settings : SinkSettings, optional
        The database's settings (default: from the environment).
    """
    settings = settings or StreamSettings()
    sink_settings = sink_settings or SinkSettings()
    register_codecs()
    app = _faust_app(settings)
    deps = build_deps(app, settings, sink_settings)
    _DEPS[id(app)] = deps
    for part in (stage, tick, sink, health, readability, stats, handlers):
        part.register(app, deps)
    install_live(app, settings)  # the live page, /live/ (stream/live/)
    return app


app = create_app()
