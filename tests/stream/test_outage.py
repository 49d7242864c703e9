"""A broker outage in the middle of a live session: the worker survives it, closes nothing as
silent while it cannot read, and stages the night exactly as the batch computation does.

Real components: the embedded broker (noida-db), stopped with SIGTERM for 62 s and started
again on the same port and data folder, and the real worker (``faust -A stream.app
worker``). The test plays a live device and its ingestor's outbox: the device reads on
during the outage, its chunks wait in the outbox, and a few seconds after the broker is
back the outbox sends them in order (as an outbox retrying every few seconds would).
Then the rest of the night follows as fast as possible, and its end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ingestors.replay import (
    NightPlan,
    PlannedMessage,
    ReplayNight,
    plan_night,
    sleep_accel_nights,
)
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from stream.collect import OutputCollector
from stream.replay_eval import batch_rows
from stream.settings import StreamSettings
from stream.stack import EmbeddedBroker, WorkerProcess, free_port
from stream.staging import FamilyModels

pytestmark = pytest.mark.timeout(420)

OUTAGE_S = 62.0
#: how long the device was already on when the test starts (its backlog goes at once)
HEAD_START_S = 60.0


class Device:
    """A live device that has been on since ``plan.start``, and its ingestor's outbox."""

    def __init__(self, plan: NightPlan, settings: StreamSettings) -> None:
        self.plan, self.settings = plan, settings
        self.planned = deque(plan.messages())
        self.outbox: deque[PlannedMessage] = deque()
        self.sent = 0

    def read(self, everything: bool = False) -> None:
        """Move what the device has measured by now (or the whole night) to the outbox."""
        now_s = (datetime.now(UTC) - self.plan.start).total_seconds()
        while self.planned and (everything or self.planned[0].send_s <= now_s):
            self.outbox.append(self.planned.popleft())

    async def send(self) -> None:
        """Send the outbox in order, each message acknowledged before it leaves the outbox."""
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap,
                                    enable_idempotence=True, acks="all", linger_ms=5)
        await producer.start()
        try:
            while self.outbox:
                m = self.outbox[0]
                await producer.send_and_wait(self.settings.topic(m.topic),
                                             m.payload.model_dump_json().encode(),
                                             key=m.payload.subject_id.encode())
                self.outbox.popleft()
                self.sent += 1
        finally:
            await producer.stop()


def _stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sleepstream/stats/",
                                timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


async def _until(what: str, ok: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def _live_night_with_outage(broker: EmbeddedBroker, device: Device,
                                  port: int) -> dict[str, dict[str, Any]]:
    """Real time for a while, the outage, the outbox's backlog, then the rest at once."""
    snapshots: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    while time.monotonic() - t0 < 12.0:  # live, chunk by chunk
        device.read()
        await device.send()
        await asyncio.sleep(1.0)
    await _until("the first stage event", lambda: _stats(port)["causal_events"] >= 1, 60)
    snapshots["before"] = _stats(port)
    broker.stop()
    down = time.monotonic()
    # the worker notices within a check or two; from then on nothing may close
    await _until("the worker to notice the outage",
                 lambda: _stats(port)["input_readable"] is False, 15)
    snapshots["noticed"] = _stats(port)
    while time.monotonic() - down < OUTAGE_S:
        device.read()  # the device goes on; its chunks wait in the outbox
        await asyncio.sleep(2.0)
    snapshots["outage"] = _stats(port)
    assert device.outbox, "the device measured nothing during the outage"
    broker.start()
    await asyncio.sleep(3.0)  # the outbox's next retry
    device.read()
    await device.send()
    device.read(everything=True)
    await device.send()
    return snapshots


def test_embedded_broker_restarts_on_its_port_with_its_data(broker: EmbeddedBroker) -> None:
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait("kept", b"v%d" % i, partition=0)
        finally:
            await producer.stop()

    async def end() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition("kept", 0)
            return int((await consumer.end_offsets([tp]))[tp])
        finally:
            await consumer.stop()

    asyncio.run(produce())
    port, started = broker.port, time.monotonic()
    broker.restart(down_s=1.0)
    assert time.monotonic() - started >= 1.0 and broker.port == port
    assert asyncio.run(end()) == 3
    with pytest.raises(ValueError, match="down_s must be >= 0"):
        broker.restart(down_s=-1.0)


@pytest.fixture(scope="module")
def night() -> ReplayNight:
    return sleep_accel_nights(sleep_accel_sample(), (SAMPLE_NIGHT,))[0]


def test_worker_survives_a_broker_outage_and_closes_no_live_epoch_as_silent(
        broker: EmbeddedBroker, night: ReplayNight, tmp_path: Path) -> None:
    name, port = "outage", free_port()
    settings = StreamSettings(broker=broker.url, partitions=2, app_id=name,
                              topic_prefix=f"{name}.")
    worker = WorkerProcess({
        "SLEEPSTREAM_BROKER": broker.url, "SLEEPSTREAM_APP_ID": name,
        "SLEEPSTREAM_TOPIC_PREFIX": f"{name}.", "SLEEPSTREAM_PARTITIONS": "2",
        "SLEEPSTREAM_DATA_DIR": str(tmp_path / "data"), "SLEEPSTREAM_WEB_PORT": str(port),
        "SLEEPSTREAM_INSTANCE_ID": f"{name}-0", "SLEEPSTREAM_END_WAIT_S": "2",
    }, tmp_path / "worker.log")
    with worker:
        plan = plan_night(night, anchor="now", live=True,
                          now=datetime.now(UTC) - timedelta(seconds=HEAD_START_S))
        device = Device(plan, settings)
        snapshots = asyncio.run(_live_night_with_outage(broker, device, port))
        collector = OutputCollector(settings)

        async def collect() -> bool:
            await collector.start()
            try:
                return await collector.wait_complete(
                    {(night.subject_id, night.session_id): night.n_epochs}, 180)
            finally:
                await collector.stop()

        complete = asyncio.run(collect())
        final = _stats(port)
        assert worker.alive, "the worker died"
    log = worker.log_path.read_text(errors="replace")
    assert worker.starts == 1
    # the worker saw the outage and its end, and closed nothing while it could not read
    assert "cannot read input partitions" in log and "readable again after" in log
    noticed, outage = snapshots["noticed"], snapshots["outage"]
    assert outage["epochs_closed"] == noticed["epochs_closed"]
    assert outage["nights_finished"] == 0
    assert final["outages"] >= 1 and final["input_readable"] is True
    # and after it consumed and produced again: the whole night, nothing late
    assert complete, "not every epoch was staged after the outage"
    assert final["dead_letters"] == {}, final["dead_letters"]
    assert collector.conflicts == 0
    assert final["nights_finished"] == 1
    # exactly what the batch computation gives on the same samples
    causal, offline = FamilyModels("wearable").predict_night(
        batch_rows(dataclasses.replace(night, start=plan.start)))
    for kind, ref in (("causal", causal), ("offline", offline)):
        got = collector.events[(night.subject_id, night.session_id, kind)]
        assert sorted(got) == list(range(night.n_epochs))
        p = np.array([list(got[k].probabilities.values()) for k in range(night.n_epochs)])
        np.testing.assert_allclose(p, ref, atol=1e-5, err_msg=kind)
