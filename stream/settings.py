"""Settings of the sleepstream services, read from the environment (pydantic-settings).

One class per concern, each with its own environment prefix under ``SLEEPSTREAM_``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SinkSettings"]


class SinkSettings(BaseSettings):
    """Where and how the worker writes its points (environment ``SLEEPSTREAM_INFLUX_*``).

    Example: ``SLEEPSTREAM_INFLUX_KIND=v1 SLEEPSTREAM_INFLUX_URL=http://127.0.0.1:8086``.
    """

    model_config = SettingsConfigDict(env_prefix="SLEEPSTREAM_INFLUX_", extra="forbid")

    kind: Literal["v2", "v1", "none"] = Field(
        default="none",
        description="v2: /api/v2/write through influxdb-client (InfluxDB 2.x/3.x, "
        "VictoriaMetrics); v1: line protocol to /write (InfluxDB 1.x); none: no database.",
    )
    url: str = Field(
        default="http://127.0.0.1:8086",
        pattern=r"^https?://",
        description="Base URL of the database's HTTP API.",
    )
    token: SecretStr = Field(default=SecretStr(""), description="v2 API token.")
    org: str = Field(default="", description="v2 organisation (name or id).")
    bucket: str = Field(default="sleepstream", description="v2 bucket.")
    database: str = Field(
        default="sleepstream", description="v1 database; created on first use when missing."
    )
    retention_policy: str | None = Field(
        default=None, description="v1 retention policy; None: the database's default."
    )
    username: str | None = Field(default=None, description="v1 user (HTTP basic auth).")
    password: SecretStr | None = Field(default=None, description="v1 password.")
    batch_size: int = Field(default=5000, ge=1, description="Most points per request.")
    flush_interval_s: float = Field(
        default=1.0, gt=0, description="Longest wait in s of a point before it is sent."
    )
    max_retries: int | None = Field(
        default=10,
        ge=0,
        description="Retries of one batch while the database is down or answers 5xx/429 "
        "before the sink fails (points stay queued); None: retry for ever.",
    )
    min_backoff_s: float = Field(default=0.25, gt=0, description="First wait between retries.")
    max_backoff_s: float = Field(
        default=30.0, gt=0, description="Largest wait in s between retries (doubling, jittered)."
    )
    queue_limit: int = Field(
        default=100_000,
        ge=1,
        description="Most points queued; a full queue makes the producer wait (back-pressure).",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Time limit in s of one request.")

    @model_validator(mode="after")
    def _consistent(self) -> SinkSettings:
        if self.queue_limit < self.batch_size:
            msg = (
                f"queue_limit ({self.queue_limit}) must be >= batch_size ({self.batch_size}); "
                "raise SLEEPSTREAM_INFLUX_QUEUE_LIMIT"
            )
            raise ValueError(msg)
        if self.min_backoff_s > self.max_backoff_s:
            msg = (
                f"min_backoff_s ({self.min_backoff_s}) exceeds max_backoff_s "
                f"({self.max_backoff_s}); lower SLEEPSTREAM_INFLUX_MIN_BACKOFF_S"
            )
            raise ValueError(msg)
        if self.kind == "v2" and not self.bucket:
            msg = "kind v2 needs a bucket: set SLEEPSTREAM_INFLUX_BUCKET"
            raise ValueError(msg)
        if self.kind == "v1" and not self.database:
            msg = "kind v1 needs a database: set SLEEPSTREAM_INFLUX_DATABASE"
            raise ValueError(msg)
        return self
