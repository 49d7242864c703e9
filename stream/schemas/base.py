"""Common base of every topic payload: frozen, strict about unknown fields, versioned."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

__all__ = ["ID_PATTERN", "FiniteFloat", "Identifier", "Payload", "UtcDatetime", "finite"]

#: Subject, session and source ids: printable, no spaces or slashes (they become keys,
#: InfluxDB tag values and URL parts).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
UtcDatetime = AwareDatetime


def finite(value: float) -> float:
    """Reject NaN and infinities with a message that says so."""
    if not math.isfinite(value):
        msg = f"must be a finite number; got {value}"
        raise ValueError(msg)
    return value


FiniteFloat = Annotated[float, AfterValidator(finite)]


class Payload(BaseModel):
    """Base of every message on a sleepstream topic.

    Messages are immutable, reject fields they do not define (a typo is an error, not a
    silently ignored field) and carry ``schema_version``; a consumer refuses versions it
    does not know, and the stream dead-letters them with that reason.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    #: Version of this payload's schema; bump on any incompatible change.
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = Field(default=1, description="payload schema version")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int, info: ValidationInfo) -> int:
        if value != cls.SCHEMA_VERSION:
            msg = (
                f"{cls.__name__} schema_version {value} is not supported; this worker reads "
                f"version {cls.SCHEMA_VERSION}. Upgrade the worker or the producer so that "
                "they agree."
            )
            raise ValueError(msg)
        return value
