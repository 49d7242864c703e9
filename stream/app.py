"""The Faust app: ``faust -A stream.app worker -l info``.

Configured by the environment (:class:`~stream.settings.StreamSettings`, ``SLEEPSTREAM_*``;
the sink by :class:`~stream.settings.SinkSettings`, ``SLEEPSTREAM_INFLUX_*``).

Topics (prefix ``sleep.`` by default, all with ``SLEEPSTREAM_PARTITIONS`` partitions and
keyed by subject id):

``sessions`` and ``samples`` (in)
    :class:`~stream.schemas.SessionEvent` and :class:`~stream.schemas.SampleChunk` as
    JSON; read as raw bytes so that a bad message becomes a dead letter, not a crash.
``stages``, ``summaries`` (out)
    :class:`~stream.schemas.StageEvent` and :class:`~stream.schemas.NightSummary`.
``deadletter`` (out)
    :class:`~stream.schemas.DeadLetter`: raw bytes, topic, offset and reason.

Agents and tables:

``stage`` (sessions + samples)
    The :class:`~stream.worker.Worker` logic in batches (``SLEEPSTREAM_BATCH_MAX`` messages
    or ``SLEEPSTREAM_BATCH_WITHIN_S``): epochs close in event time, every epoch closed in a
    batch is staged in one onnxruntime call per model family, nights are re-scored offline
    at their end. Each subject's processor is checkpointed in the ``subject-state`` table
    and each epoch's feature row in ``night-rows`` (both changelog-backed). A message is
    acknowledged only once its effects are published and checkpointed, so a worker killed
    at any moment resumes without losing or double-counting a sample. Messages Faust
    fetched but never handed over (it clears stream buffers at the end of a recovery) are
    read back from the broker (:mod:`stream.delivery`).
``sink`` (stages + summaries)
    Writes stage events, the inputs they carry and night summaries to InfluxDB, and
    acknowledges them once the database has them.
timer ``tick``
    Closes silent live subjects, finishes ended or abandoned nights, expires chunks of
    sessions that never started.
timer ``health``
    Writes the ``sleep_pipeline`` point (events/s, dead letters, lag, latency).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, cast

import faust
import numpy as np
from faust.types import TP

from stream.codecs import DecodeFailure, decode, register_codecs
from stream.delivery import GapFiller, InOrderAcks, InputTopic
from stream.live import install_live
from stream.schemas import DeadLetter, NightSummary, StageEvent
from stream.settings import SinkSettings, StreamSettings
from stream.sinks import PipelineStats, SinkItem, make_sink
from stream.worker import Effects, Inbound, TopicKind, Worker

__all__ = ["SubjectTable", "app", "create_app", "worker_of"]

log = logging.getLogger(__name__)

_partition: ContextVar[int | None] = ContextVar("sleepstream_partition", default=None)


@contextmanager
def _in_partition(partition: int) -> Iterator[None]:
    token = _partition.set(partition)
    try:
        yield
    finally:
        _partition.reset(token)


class SubjectTable(faust.Table):
    """A table whose changelog partition is the subject's input partition.

    Faust takes the partition of "the current event"; the stage agent writes many
    subjects' checkpoints after a batch (and the timer writes outside any event), so the
    partition is given explicitly instead, which keeps every subject's state on the
    worker that owns its input partition.
    """

    def partition_for_key(self, key: Any) -> int | None:
        """The partition set by the writer, else Faust's rule."""
        partition = _partition.get()
        if partition is not None:
            return partition
        return super().partition_for_key(key)


_WORKERS: dict[int, Worker] = {}


def worker_of(app: faust.App) -> Worker:
    """The :class:`~stream.worker.Worker` behind an app made by :func:`create_app`."""
    return _WORKERS[id(app)]


def _worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def create_app(
    settings: StreamSettings | None = None, sink_settings: SinkSettings | None = None
) -> faust.App:
    """Build the app, its topics, tables, agents and timers."""
    settings = settings or StreamSettings()
    sink_settings = sink_settings or SinkSettings()
    register_codecs()
    app = faust.App(
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
    names: dict[str, TopicKind] = {
        settings.topic("sessions"): "sessions", settings.topic("samples"): "samples",
    }
    n = settings.partitions

    def topic(name: str, value_serializer: str = "raw") -> Any:
        return app.topic(settings.topic(name), partitions=n, internal=True,
                         key_serializer="raw", value_serializer=value_serializer)

    inputs = InputTopic(app, topics=list(names), partitions=n, internal=True,
                        key_serializer="raw", value_serializer="raw")
    # declared here (so the worker creates them with the right partitions); written with
    # the raw producer, payloads already JSON
    out_topics = [topic(n) for n in ("stages", "summaries", "deadletter")]
    stages_name, summaries_name, dead_name = (t.get_topic_name() for t in out_topics)
    dead_topic = topic("deadletter", "sleepstream.deadletter.v1")

    @app.task
    async def declare_outputs() -> None:
        """Create the output topics (with the configured partitions) at start."""
        for t in out_topics:
            await t.maybe_declare()
    outputs = InputTopic(app, topics=[settings.topic("stages"), settings.topic("summaries")],
                         partitions=n, internal=True, key_serializer="raw",
                         value_serializer="raw")
    state_table = app.Table("subject-state", default=None, partitions=n)
    rows_table = app.Table("night-rows", default=None, partitions=n)
    worker = Worker(settings, state_table.get, rows_table.get)
    lock = asyncio.Lock()
    acks = InOrderAcks(app)
    gaps = GapFiller(settings.bootstrap, settings.app_id, settings.kafka_client_options())
    offsets: dict[TP, int] = {}
    worker_name = _worker_name()
    _WORKERS[id(app)] = worker

    async def process(fx: Effects) -> None:
        """Publish a batch's outputs, then write the checkpoints and acknowledge."""
        await publish(fx)
        await publish(worker.checkpoints())

    async def publish(fx: Effects) -> None:
        producer = app.producer
        sends = [
            (stages_name, e.subject_id, e) for e in fx.stage_events
        ] + [(summaries_name, s.subject_id, s) for s in fx.summaries] + [
            (dead_name, d.key, d) for d in fx.dead_letters]
        for name, key, payload in sends:
            await producer.send(name, key.encode() if key else None,
                                payload.model_dump_json().encode(), None, None, None)
        if sends:
            await producer.flush()
        # a checkpoint must never point at rows that are not durable yet, and rows must
        # never be deleted before the checkpoint that stops pointing at them is: new row
        # blocks, flush, checkpoints, flush, deletions
        puts = [(p, k, b) for p, k, b in fx.rows if b is not None]
        for partition, key, new in puts:
            with _in_partition(partition):
                rows_table[key] = new
        if puts:
            await producer.flush()
        for partition, key, value in fx.state:
            with _in_partition(partition):
                if value is None:
                    if key in state_table:
                        del state_table[key]
                else:
                    state_table[key] = value
        if fx.state:
            await producer.flush()
        for partition, key, old in fx.rows:
            if old is None and key in rows_table:
                with _in_partition(partition):
                    del rows_table[key]
        acks.release(fx.release)

    @app.agent(inputs, name="stage")  # type: ignore[arg-type]
    async def stage(stream: faust.Stream) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            batch = []
            now = time.time()
            delays = worker.stats.ingest_delays
            for message in await gaps.complete(events):
                offsets[message.tp] = message.offset
                if message.timestamp:
                    delays.append((now, now - message.timestamp))
                batch.append(Inbound(names[message.topic], message.topic, message.partition,
                                     message.offset, message.key, message.value,
                                     acks.hold(message)))
            async with lock:
                await process(worker.handle(batch))

    @app.timer(settings.tick_interval_s, name="tick")
    async def tick() -> None:
        async with lock:
            await process(worker.tick())

    async def sink_agent(stream: faust.Stream) -> None:
        sink = make_sink(sink_settings)
        try:
            # batches as long as a point may wait anyway (the sink's flush interval): a
            # database round trip per small batch would make the sink lag behind
            async for events in stream.take_events(settings.batch_max,
                                                   sink_settings.flush_interval_s):
                items: list[SinkItem] = []
                messages = await gaps.complete(events)
                for message in messages:
                    model = StageEvent if message.topic == settings.topic("stages") \
                        else NightSummary
                    payload = decode(message.value, model)
                    if isinstance(payload, DecodeFailure):
                        worker.stats.dead_letters[payload.stage] += 1
                        await dead_topic.send(key=message.key, value=DeadLetter.wrap(
                            message.value or b"", topic=message.topic,
                            partition=message.partition, offset=message.offset,
                            key=None if message.key is None else message.key.decode(
                                "utf-8", "replace"),
                            stage=payload.stage, reason=payload.reason,
                            error_type=payload.error_type,
                            received_at_utc=datetime.now(UTC)))
                        continue
                    items.append(cast(StageEvent | NightSummary, payload))
                await sink.write_batch(items)
                await sink.flush()
                # acknowledged once the database has them, in offset order
                acks.release([acks.hold(m) for m in messages])
        finally:
            await sink.close()

    if sink_settings.kind != "none":  # without a database nothing reads the outputs
        app.agent(outputs, name="sink")(sink_agent)  # type: ignore[arg-type]

    last: dict[str, float] = {"t": time.monotonic(), "events": 0.0}

    @app.timer(settings.stats_interval_s, name="health")
    async def health() -> None:
        now = time.monotonic()
        stats = worker.stats
        events = stats.causal_events + stats.offline_events
        rate = (events - last["events"]) / max(now - last["t"], 1e-9)
        last.update(t=now, events=float(events))
        lat = np.asarray(stats.latencies_s, dtype=np.float64)
        stats.latencies_s.clear()
        lag = 0
        for tp, offset in offsets.items():
            high = app.consumer.highwater(tp)
            if high is not None:
                lag += max(0, int(high) - offset - 1)
        point = PipelineStats(
            worker_name, float(rate), events, stats.dead_letter_total, lag,
            float(np.percentile(lat, 50)) if lat.size else None,
            float(np.percentile(lat, 99)) if lat.size else None,
            worker.active_subjects,
        )
        log.info("sleepstream: %d subjects, %d stage events (%.1f/s), %d dead letters, "
                 "lag %d", point.active_subjects, events, rate, point.dead_letters, lag)
        if sink_settings.kind != "none":
            sink = make_sink(sink_settings)
            try:
                await sink.write_batch([point])
                await sink.flush()
            except Exception as err:  # health must never stop the worker
                log.warning("sleepstream: health point not written: %s", err)
            finally:
                await sink.close()

    install_live(app, settings)  # the live page, /live/ (stream/live/)

    @app.page("/sleepstream/stats/")
    async def stats_page(web: Any, request: Any) -> Any:
        """Counters of this worker as JSON (``GET /sleepstream/stats/?window=60``).

        ``ingest_delay_*_s``: broker timestamp -> processing, over the last ``window`` s.
        """
        s = worker.stats
        window = float(request.query.get("window", 60))
        since = time.time() - window
        recent = np.asarray([d for t, d in s.ingest_delays if t >= since])
        return web.json({
            "worker": worker_name, "messages": s.messages, "chunks": s.chunks,
            "duplicates": s.duplicates, "seq_gaps": s.seq_gaps,
            "delivery_gaps": gaps.gaps, "redelivered": gaps.filled,
            "epochs_closed": s.epochs_closed,
            "causal_events": s.causal_events, "offline_events": s.offline_events,
            "nights_finished": s.nights_finished, "dead_letters": dict(s.dead_letters),
            "held_unknown_session": s.held_unknown_session,
            "active_subjects": worker.active_subjects, "batches": s.batches,
            "checkpoints": s.checkpoints, "window_s": window,
            "ingest_delay_p50_s": float(np.percentile(recent, 50)) if recent.size else None,
            "ingest_delay_p99_s": float(np.percentile(recent, 99)) if recent.size else None,
            "ingest_delay_max_s": float(recent.max()) if recent.size else None,
        })

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        acks.forget(revoked)
        gaps.forget(revoked)
        mine = {tp.partition for tp in revoked if tp.topic in names}
        if mine:
            async with lock:
                dropped = worker.drop_partitions(mine)
            log.info("sleepstream: partitions %s revoked; %d subjects handed over",
                     sorted(mine), dropped)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_gap_reader(sender: Any, **kwargs: Any) -> None:
        await gaps.stop()

    return app


app = create_app()
