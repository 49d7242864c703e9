"""Read an ingestor's sessions back from the broker (ingestor tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from stream.schemas.samples import SampleChunk
from stream.schemas.session import SessionEvent
from stream.settings import StreamSettings


@dataclass(frozen=True)
class Record:
    """One message as the broker holds it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes
    message: SessionEvent | SampleChunk


async def read_topics(settings: StreamSettings, sessions: int = 1,
                      timeout_s: float = 30.0) -> list[Record]:
    """Every message of the sessions and samples topics, until ``sessions`` session ends and
    all the chunks they announce are in (or the time is up).

    Every message must be keyed by its subject id.
    """
    consumer = AIOKafkaConsumer(settings.topic("sessions"), settings.topic("samples"),
                                bootstrap_servers=settings.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                for r in batch:
                    msg: SessionEvent | SampleChunk
                    if tp.topic == settings.topic("sessions"):
                        msg = SessionEvent.model_validate_json(r.value)
                    else:
                        msg = SampleChunk.model_validate_json(r.value)
                    assert r.key is not None and r.key.decode() == msg.subject_id
                    records.append(Record(tp.topic, tp.partition, r.offset, r.timestamp,
                                          r.value, msg))
            if _complete(records, sessions):
                break
    finally:
        await consumer.stop()
    return records


def _complete(records: list[Record], sessions: int) -> bool:
    ends = {(r.message.session_id): r.message for r in records
            if isinstance(r.message, SessionEvent) and r.message.event == "end"}
    if len(ends) < sessions:
        return False
    have = {(r.message.source_id, r.message.seq) for r in records
            if isinstance(r.message, SampleChunk)}
    return all((source, seq) in have for end in ends.values()
               for source, last in end.final_seq.items() for seq in range(last + 1))


async def consume(settings: StreamSettings,
                  timeout_s: float = 30.0) -> tuple[list[SessionEvent], list[SampleChunk]]:
    """Session events and chunks from the topics, until the end and all its chunks are in."""
    records = await read_topics(settings, 1, timeout_s)
    events = [r.message for r in records if isinstance(r.message, SessionEvent)]
    chunks = [r.message for r in records if isinstance(r.message, SampleChunk)]
    return events, chunks
