"""What can go wrong in a sink, and how an HTTP answer is classified."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

__all__ = [
    "RejectedBatch",
    "RejectedWriteError",
    "RetryableWriteError",
    "SinkClosedError",
    "SinkConfigurationError",
    "SinkError",
    "SinkStats",
    "SinkUnavailableError",
    "check_status",
    "error_text",
]


class SinkError(RuntimeError):
    """The sink cannot take or deliver points; :attr:`pending` points are still queued."""

    def __init__(self, message: str, pending: int = 0) -> None:
        super().__init__(message)
        self.pending = pending


class SinkUnavailableError(SinkError):
    """The database stayed unreachable (or answered 5xx/429) through every retry."""


class SinkConfigurationError(SinkError):
    """The database refused the sink itself (401/403/404/413): fix the settings."""


class SinkClosedError(SinkError):
    """``write_batch`` or ``flush`` was called after ``close``."""


class RetryableWriteError(Exception):
    """A transient failure: the same batch should be sent again later."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RejectedWriteError(Exception):
    """The database answered a client error about the batch (or about the sink)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message




@dataclass(frozen=True, slots=True)
class RejectedBatch:
    """A batch the database refused, with its own explanation."""

    status: int
    message: str
    n_points: int
    first_line: str
    at_utc: datetime


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of a sink since it was created (points unless named otherwise).

    ``points_rejected`` counts the points of batches the database refused; InfluxDB may
    still have stored the valid ones among them (a "partial write": its message, kept in
    :attr:`RejectedBatch.message`, ends with ``dropped=<n>``).
    """

    points_queued: int
    points_written: int
    points_rejected: int
    pending: int
    batches_written: int
    batches_rejected: int
    retries: int
    backpressure_waits: int
    last_error: str | None


def error_text(body: bytes | str | None, limit: int = 1000) -> str:
    """The database's message from an error body (InfluxDB JSON ``error``/``message``)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "message"):
            if isinstance(doc.get(key), str):
                return str(doc[key])[:limit]
    return text.strip()[:limit]


def _retry_after_s(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the back-off applies
        return None


def check_status(status: int, message: str, retry_after: str | None = None) -> None:
    """Raise the right error for an HTTP status; return quietly for 2xx."""
    if 200 <= status < 300:
        return
    if not message:
        with contextlib.suppress(ValueError):
            message = HTTPStatus(status).phrase
    if status == 429 or status >= 500:
        msg = f"HTTP {status}: {message}"
        raise RetryableWriteError(msg, _retry_after_s(retry_after))
    raise RejectedWriteError(status, message)
