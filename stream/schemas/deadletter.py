"""``sleep.deadletter.v1``: a message the stream could not use, with the reason."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from stream.schemas.base import Payload, UtcDatetime

__all__ = ["DeadLetter"]


class DeadLetter(Payload):
    """A payload that failed decoding, validation or processing.

    The raw bytes are kept (base64) so that nothing is lost: fix the producer, then
    re-publish ``raw`` to ``topic``.
    """

    topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    raw_b64: str = Field(description="the message value, base64-encoded")
    stage: Literal["decode", "validate", "process"]
    reason: str
    error_type: str
    received_at_utc: UtcDatetime

    @classmethod
    def wrap(cls, raw: bytes, **fields: object) -> DeadLetter:
        """Build a dead letter around the raw bytes of a message."""
        return cls(raw_b64=base64.b64encode(raw).decode("ascii"), **fields)  # type: ignore[arg-type]

    @property
    def raw(self) -> bytes:
        """The original message value."""
        return base64.b64decode(self.raw_b64)
