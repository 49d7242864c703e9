"""Faust codecs for the topic payloads, and decoding that never raises into an agent.

Every payload travels as UTF-8 JSON. :func:`register_codecs` registers one codec per
payload type with Faust (``sleepstream.samples.v1`` ...), used by the output topics.
Input agents read raw bytes and call :func:`decode`, which returns either the payload or
a :class:`DecodeFailure` with a one-line reason, so a bad message becomes a dead letter
instead of a crashed agent.
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

from faust.serializers import codecs
from pydantic import ValidationError

from stream.schemas import (
    DeadLetter,
    NightSummary,
    Payload,
    SampleChunk,
    SessionEvent,
    StageEvent,
)

__all__ = ["CODECS", "DecodeFailure", "PydanticCodec", "decode", "register_codecs"]

P = TypeVar("P", bound=Payload)

#: Codec name -> payload type.
CODECS: dict[str, type[Payload]] = {
    "sleepstream.sessions.v1": SessionEvent,
    "sleepstream.samples.v1": SampleChunk,
    "sleepstream.stages.v1": StageEvent,
    "sleepstream.summaries.v1": NightSummary,
    "sleepstream.deadletter.v1": DeadLetter,
}


class DecodeFailure(NamedTuple):
    """Why a message could not be decoded: ``stage`` is ``decode`` or ``validate``."""

    stage: str
    reason: str
    error_type: str


class PydanticCodec(codecs.Codec, Generic[P]):
    """JSON codec for one payload type (validates on load)."""

    def __init__(self, model: type[P], **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        self.model = model

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, Payload):
            return obj.model_dump_json().encode()
        return self.model.model_validate(obj).model_dump_json().encode()

    def _loads(self, s: bytes) -> P:
        return self.model.model_validate_json(s)


def register_codecs() -> None:
    """Register one Faust codec per payload type (idempotent)."""
    for name, model in CODECS.items():
        codecs.register(name, PydanticCodec(model))


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "message"
        text = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {text}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode(raw: bytes | None, model: type[P]) -> P | DecodeFailure:
    """Parse and validate one message value; never raises for bad input.

    Returns
    -------
    payload or DecodeFailure
        The validated payload, or why it failed: ``decode`` for bytes that are not a
        JSON object, ``validate`` for JSON that does not fit the schema.
    """
    if not raw:
        return DecodeFailure("decode", "empty message value", "EmptyMessage")
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        json_error = any(e["type"] == "json_invalid" for e in err.errors())
        stage = "decode" if json_error else "validate"
        return DecodeFailure(stage, f"{model.__name__}: {_describe(err)}", "ValidationError")
