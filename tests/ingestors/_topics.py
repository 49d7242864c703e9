"""Read a live ingestor's session back from the broker (BLE and live-EDF tests)."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer

from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent
from stream.settings import StreamSettings


async def consume(settings: StreamSettings,
                  timeout_s: float = 30.0) -> tuple[list[SessionEvent], list[SampleChunk]]:
    """Session events and chunks from the topics, until the end and all its chunks are in.

    Every message must be keyed by its subject id.
    """
    consumer = AIOKafkaConsumer(settings.topic("sessions"), settings.topic("samples"),
                                bootstrap_servers=settings.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    events: list[SessionEvent] = []
    chunks: list[SampleChunk] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                for r in records:
                    msg: SessionEvent | SampleChunk
                    if tp.topic == settings.topic("sessions"):
                        msg = SessionEvent.model_validate_json(r.value)
                        events.append(msg)
                    else:
                        msg = SampleChunk.model_validate_json(r.value)
                        chunks.append(msg)
                    assert r.key is not None and r.key.decode() == msg.subject_id
            ends = [e for e in events if e.event == "end"]
            if ends and len(chunks) >= sum(v + 1 for v in ends[0].final_seq.values()):
                break
    finally:
        await consumer.stop()
    return events, chunks
