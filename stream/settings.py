"""Settings of the sleepstream services, read from the environment (pydantic-settings).

One class per concern, each with its own environment prefix under ``SLEEPSTREAM_``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    import faust

__all__ = ["SinkSettings", "StreamSettings", "kafka_bootstrap"]

_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


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

    # hide_input_in_errors: a validation error would otherwise print the SASL password
    model_config = SettingsConfigDict(env_prefix="SLEEPSTREAM_", extra="ignore",
                                      hide_input_in_errors=True)

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
        default=1.0, gt=0,
        description="Period of the timer that closes silent subjects, and of the check "
        "that the worker can read its input partitions.")
    readability_timeout_s: float = Field(
        default=5.0, gt=0,
        description="Time limit of the check that asks the broker for the end offsets of "
        "the worker's input partitions. A check that fails or runs out of time is an "
        "outage: until a check succeeds no live epoch closes by the wall clock and silence "
        "timeouts stand still, and for grace_s after it the ingestors' backlog (their "
        "outbox) is awaited before the wall clock closes epochs again.")
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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client (the Faust worker, its own consumers, the "
        "ingestors) talks to the brokers: SSL is TLS, SASL_* authenticate with a user name "
        "and password (SASL_SSL over TLS).")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN",
        description="SASL mechanism of SASL_PLAINTEXT and SASL_SSL. PLAIN sends the password "
        "itself, so use it only over SASL_SSL.")
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user name; needed by the SASL_* protocols.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        description="SASL password; needed by the SASL_* protocols. Never logged; the "
        "worker image also reads it from the Docker secret sleepstream_kafka_sasl_password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates (SSL, "
        "SASL_SSL); None: the system's CAs.")
    kafka_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate for mutual TLS (with kafka_ssl_keyfile).")
    kafka_ssl_keyfile: Path | None = Field(
        default=None,
        description="PEM private key (not encrypted) of kafka_ssl_certfile, for mutual TLS.")
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Check that a broker's certificate names the host connected to. The "
        "certificate chain is checked either way.")
    # -- the ingestors' outbox (ingestors/base): what waits for the broker's acknowledgement
    spool_dir: Path | None = Field(
        default=None,
        description="Folder of the live ingestors' spools, one SQLite file per session "
        "holding what the broker has not acknowledged yet (kept across broker outages and "
        "ingestor restarts). None: $XDG_STATE_HOME/sleepstream/spool, else "
        "~/.local/state/sleepstream/spool.")
    spool_max_mb: float = Field(
        default=512.0, gt=0,
        description="Most MB of messages one session's spool holds before the ingestor stops "
        "with an error. The default holds 24 h of the largest live session: a PSG with 6 EEG "
        "channels at 256 Hz sends per channel and 5-s cell one compact chunk of 1,280 int16 "
        "samples, 3.4 kB in base64 plus 0.4 kB of JSON, so 6 * 17,280 chunks a day * 3.83 kB "
        "= 397 MB, plus a quarter for longer ids and rates. (3-axis acceleration at 32 Hz as "
        "JSON, about 72 bytes per sample, is 199 MB a day.)")
    send_window: int = Field(
        default=500, ge=1, le=100_000,
        description="Most messages an ingestor has sent and not yet seen acknowledged.")
    send_timeout_s: float = Field(
        default=10.0, gt=0,
        description="Messages in flight and no acknowledgement for this long: the producer "
        "is replaced and the oldest unacknowledged message sent again.")
    send_retry_max_s: float = Field(
        default=4.0, gt=0, le=60.0,
        description="Longest wait in s between attempts to reach an unreachable broker "
        "(doubling from 0.25 s): after the broker returns, the backlog flows within about "
        "this long, well within the worker's grace_s.")

    @field_validator("kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile",
                     "kafka_ssl_certfile", "kafka_ssl_keyfile", "spool_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose passes unset variables as "" (${VAR:-}); Path("") would be "."
        if isinstance(value, SecretStr):
            return value if value.get_secret_value() else None
        return None if value == "" else value

    @model_validator(mode="after")
    def _kafka_security(self) -> StreamSettings:
        protocol, env = self.kafka_security_protocol, self._env
        sasl = {"kafka_sasl_username": self.kafka_sasl_username,
                "kafka_sasl_password": self.kafka_sasl_password}
        tls = {"kafka_ssl_cafile": self.kafka_ssl_cafile,
               "kafka_ssl_certfile": self.kafka_ssl_certfile,
               "kafka_ssl_keyfile": self.kafka_ssl_keyfile}
        if protocol in _SASL_PROTOCOLS:
            missing = [env(k) for k, v in sasl.items() if v is None]
            if missing:
                msg = (f"{env('kafka_security_protocol')}={protocol} needs a SASL user name "
                       f"and password; set {' and '.join(missing)}")
                raise ValueError(msg)
        self._unused(sasl, _SASL_PROTOCOLS, "SASL_SSL or SASL_PLAINTEXT")
        self._unused(tls, _TLS_PROTOCOLS, "SSL or SASL_SSL")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            given, other = ("kafka_ssl_certfile", "kafka_ssl_keyfile") if \
                self.kafka_ssl_keyfile is None else ("kafka_ssl_keyfile", "kafka_ssl_certfile")
            msg = (f"mutual TLS needs both the client certificate and its key: {env(given)} is "
                   f"set, {env(other)} is not (for one PEM file holding both, give it as both)")
            raise ValueError(msg)
        for name, path in tls.items():
            if path is not None and not path.is_file():
                msg = (f"{env(name)}={path}: no such file (relative paths start from "
                       f"{Path.cwd()}). Give the path of the PEM file as the worker sees it; "
                       "in a container, the path inside the container.")
                raise ValueError(msg)
        return self

    def _unused(
        self, values: Mapping[str, object], protocols: tuple[str, ...], wanted: str
    ) -> None:
        """Refuse settings the protocol would silently ignore."""
        given = [self._env(k) for k, v in values.items() if v is not None]
        if given and self.kafka_security_protocol not in protocols:
            msg = (f"{', '.join(given)} set, but {self._env('kafka_security_protocol')} is "
                   f"{self.kafka_security_protocol}, which does not use them; set it to "
                   f"{wanted}, or unset them")
            raise ValueError(msg)

    @classmethod
    def _env(cls, name: str) -> str:
        """The environment variable of field ``name``."""
        return f"{cls.model_config.get('env_prefix', '')}{name}".upper()

    def spool_folder(self) -> Path:
        """The live ingestors' spool folder (``spool_dir``, or the user's state folder)."""
        if self.spool_dir is not None:
            return self.spool_dir.expanduser()
        state = os.environ.get("XDG_STATE_HOME")
        base = Path(state) if state else Path.home() / ".local" / "state"
        return base / "sleepstream" / "spool"

    def topic(self, name: str) -> str:
        """Full name of topic ``name`` (``sessions``, ``samples``, ``stages``, ...)."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap(self) -> str:
        """``host:port`` list for aiokafka clients."""
        return kafka_bootstrap(self.broker)

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the Kafka clients; None unless the protocol is SSL or SASL_SSL.

        Built with :func:`aiokafka.helpers.create_ssl_context`: the brokers' certificates
        are verified against ``kafka_ssl_cafile`` (else the system's CAs), and the client
        certificate is loaded when one is set (mutual TLS).

        Raises
        ------
        ValueError
            If a PEM file cannot be loaded (naming the setting and the file).
        """
        if self.kafka_security_protocol not in _TLS_PROTOCOLS:
            return None
        from aiokafka.helpers import create_ssl_context

        cafile, certfile, keyfile = (self.kafka_ssl_cafile, self.kafka_ssl_certfile,
                                     self.kafka_ssl_keyfile)
        try:
            context = create_ssl_context(cafile=cafile)
        except (ssl.SSLError, OSError) as err:
            msg = (f"cannot load the Kafka CA file {self._env('kafka_ssl_cafile')}={cafile}: "
                   f"{err}. It must hold PEM certificates (-----BEGIN CERTIFICATE-----).")
            raise ValueError(msg) from err
        def no_key_password() -> str:  # else OpenSSL prompts on the terminal
            msg = (f"{self._env('kafka_ssl_keyfile')}={keyfile} is an encrypted key; give an "
                   "unencrypted one (openssl pkey -in key.pem -out key-plain.pem)")
            raise ValueError(msg)

        if certfile is not None and keyfile is not None:
            try:
                context.load_cert_chain(certfile, keyfile, password=no_key_password)
            except (ssl.SSLError, OSError) as err:
                msg = (f"cannot load the Kafka client certificate "
                       f"{self._env('kafka_ssl_certfile')}={certfile} with its key "
                       f"{self._env('kafka_ssl_keyfile')}={keyfile}: {err}. Both must be PEM, "
                       "the key unencrypted and belonging to the certificate.")
                raise ValueError(msg) from err
        context.check_hostname = self.kafka_ssl_check_hostname
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """Security keyword arguments of the aiokafka clients.

        For ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``:
        ``security_protocol``, and as the protocol needs them ``ssl_context`` and
        ``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``.

        Returns
        -------
        dict
            ``{}`` for PLAINTEXT (the clients' defaults), else the arguments above. The
            password is in clear text here: never log this mapping.
        """
        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": protocol}
        context = self.kafka_ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if protocol in _SASL_PROTOCOLS:
            username, password = self._sasl_login()
            options.update(sasl_mechanism=self.kafka_sasl_mechanism,
                           sasl_plain_username=username, sasl_plain_password=password)
        return options

    def faust_credentials(self) -> faust.SSLCredentials | faust.SASLCredentials | None:
        """The ``broker_credentials`` of the Faust app.

        Returns
        -------
        faust.SSLCredentials or faust.SASLCredentials or None
            None for PLAINTEXT; ``SSLCredentials(context)`` for SSL; ``SASLCredentials``
            with the mechanism, user name and password for SASL_PLAINTEXT, and with the
            TLS context as well for SASL_SSL (Faust derives the protocol from it).
        """
        import faust

        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return None
        context = self.kafka_ssl_context()
        if protocol == "SSL":
            return faust.SSLCredentials(context)
        username, password = self._sasl_login()
        return faust.SASLCredentials(username=username, password=password,
                                     ssl_context=context, mechanism=self.kafka_sasl_mechanism)

    def _sasl_login(self) -> tuple[str, str]:
        """User name and password (the validator made sure SASL protocols have both)."""
        if self.kafka_sasl_username is None or self.kafka_sasl_password is None:
            msg = (f"{self._env('kafka_security_protocol')}={self.kafka_security_protocol} "
                   f"needs {self._env('kafka_sasl_username')} and "
                   f"{self._env('kafka_sasl_password')}")
            raise ValueError(msg)
        return self.kafka_sasl_username, self.kafka_sasl_password.get_secret_value()
