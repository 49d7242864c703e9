"""Settings of the sleepstream services, read from the environment (pydantic-settings).

One class per concern, each with its own environment prefix under ``SLEEPSTREAM_``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SinkSettings", "StreamSettings", "kafka_bootstrap"]


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


def kafka_bootstrap(broker: str) -> str:
    """``host:port[,host:port]`` of a Faust broker URL (``kafka://host:port;host2:port``)."""
    hosts = broker.split("://", 1)[-1]
    return ",".join(h.strip() for h in hosts.replace(";", ",").split(",") if h.strip())


class StreamSettings(BaseSettings):
    """The worker and the replay tools (environment ``SLEEPSTREAM_*``).

    Example: ``SLEEPSTREAM_BROKER=kafka://10.0.0.5:9092 SLEEPSTREAM_PARTITIONS=16``.
    """

    model_config = SettingsConfigDict(env_prefix="SLEEPSTREAM_", extra="ignore")

    broker: str = Field(
        default="kafka://127.0.0.1:9092",
        pattern=r"^(kafka|aiokafka)://[^\s]+$",
        description="Kafka bootstrap servers as a Faust URL (kafka://host:port;host2:port).",
    )
    app_id: str = Field(default="sleepstream", pattern=r"^[A-Za-z0-9._-]+$",
                        description="Faust app id: consumer group and internal topic prefix.")
    topic_prefix: str = Field(default="sleep.", pattern=r"^[A-Za-z0-9._-]*$",
                              description="Prefix of the topic names (sleep.samples, ...).")
    partitions: int = Field(default=8, ge=1, le=1024,
                            description="Partitions of every topic: the unit of scale-out.")
    replication_factor: int = Field(default=1, ge=1, description="Replicas of each topic.")
    grace_s: float = Field(
        default=30.0, ge=0,
        description="Late samples are accepted until event time passes an epoch's end by "
        "this much; must be at least the longest chunk span a source sends.",
    )
    end_wait_s: float = Field(
        default=5.0, ge=0,
        description="After a session end without final_seq, the night is finished once "
        "the subject has been silent this long (with final_seq: once every source has "
        "reached it, or after silence_timeout_s).",
    )
    silence_timeout_s: float = Field(
        default=1800.0, gt=0,
        description="A session with no message for this long is finished as if it ended.",
    )
    unknown_session_wait_s: float = Field(
        default=30.0, ge=0,
        description="How long chunks of a session whose start has not arrived are held "
        "before they are dead-lettered.",
    )
    checkpoint_interval_s: float = Field(
        default=60.0, ge=0,
        description="Time in s between two checkpoints of one subject while its epochs "
        "close (jittered by 0.5-1.5x per subject). Shorter: less to re-process after a "
        "crash; longer: less written to the changelog.",
    )
    max_unacked_s: float = Field(
        default=120.0, gt=0,
        description="A subject's messages are checkpointed and acknowledged at the latest "
        "this long after its previous checkpoint.",
    )
    instance_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._-]+$",
        description="Static consumer-group membership (Kafka group.instance.id): a worker "
        "restarted with the same id takes its partitions back at once, without waiting "
        "for its old session to expire. Give each replica its own stable id.",
    )
    session_timeout_s: float = Field(
        default=10.0, ge=6.0, le=300.0,
        description="Kafka consumer-group session timeout: how soon the partitions of a "
        "worker that died are handed to the others (or to itself, restarted).",
    )
    batch_max: int = Field(default=2000, ge=1, description="Most messages per agent batch.")
    batch_within_s: float = Field(
        default=0.05, gt=0, description="Longest wait in s to fill an agent batch.")
    tick_interval_s: float = Field(
        default=1.0, gt=0, description="Period of the timer that closes silent subjects.")
    stats_interval_s: float = Field(
        default=10.0, gt=0, description="Period of the sleep_pipeline health points.")
    weights_dir: Path | None = Field(
        default=None, description="Folder of the ONNX models and cards (default: shipped).")
    data_dir: Path = Field(default=Path(".sleepstream"),
                           description="Faust's local data folder.")
    web_enabled: bool = Field(default=True, description="Run the worker's web server.")
    web_host: str = Field(default="127.0.0.1",
                          description="Address the web server binds (loopback by default).")
    web_port: int = Field(default=6066, ge=1, le=65535, description="Web server port.")
    live_enabled: bool = Field(
        default=True,
        description="Serve the live page (/live/) on the web server; the worker then also "
        "follows the stages, summaries and sessions topics for it. Needs web_enabled.")
    live_lookback_h: float = Field(
        default=24.0, gt=0, le=24 * 31,
        description="The live page shows outputs of the last this many hours: on start it "
        "reads the topics from then on, and drops subjects with nothing newer.")
    live_sessions_per_subject: int = Field(
        default=2, ge=1, le=50,
        description="Sessions the live page keeps per subject (the latest by start).")

    def topic(self, name: str) -> str:
        """Full name of topic ``name`` (``sessions``, ``samples``, ``stages``, ...)."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap(self) -> str:
        """``host:port`` list for aiokafka clients."""
        return kafka_bootstrap(self.broker)
