"""The one settings class. Read from ``SLOWLEAK_*`` environment variables and, optionally, a TOML
file (``SLOWLEAK_CONFIG`` or ``--config``). Everything else receives settings as arguments.

A wrong value fails at start with a message that names the setting and says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = [
    "AlertmanagerReceiver",
    "ClickHouseTarget",
    "Receiver",
    "Settings",
    "SlackReceiver",
    "StdoutReceiver",
    "WebhookReceiver",
]

TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
#: A receiver's name is part of its Kafka consumer group id (``{app_id}.deliver.{name}``).
ReceiverName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/slowleak/slowleak/blob/main/docs/runbooks"


def _check_http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{what} {value!r}: expected an http:// or https:// URL with a host")
    return value


class _ReceiverBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ReceiverName = Field(description="Unique; names the receiver's consumer group.")
    timeout_s: float = Field(default=5.0, gt=0, le=300, description="Per HTTP request.")
    max_backoff_s: float = Field(
        default=60.0, gt=0, le=3600, description="Longest wait between retries (full jitter)."
    )


class _HttpReceiver(_ReceiverBase):
    url: str

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_http_url(value, "url")


class AlertmanagerReceiver(_HttpReceiver):
    """Prometheus Alertmanager: ``url`` is its base (``POST {url}/api/v2/alerts``)."""

    type: Literal["alertmanager"]
    generator_url: str | None = Field(
        default=None, description="Link shown as the alert's source in Alertmanager."
    )


class WebhookReceiver(_HttpReceiver):
    """Any HTTP endpoint: a JSON body, signed with HMAC-SHA256 when ``secret`` is set."""

    type: Literal["webhook"]
    secret: SecretStr | None = Field(
        default=None, description="Shared secret for the X-Slowleak-Signature header."
    )


class SlackReceiver(_HttpReceiver):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)."""

    type: Literal["slack"]


class StdoutReceiver(_ReceiverBase):
    """One line per alert on standard output (demos, or a log shipper reading stdout)."""

    type: Literal["stdout"]


Receiver = Annotated[
    AlertmanagerReceiver | WebhookReceiver | SlackReceiver | StdoutReceiver,
    Field(discriminator="type"),
]


class ClickHouseTarget:
    """Where rows go, parsed from ``clickhouse_url``.

    ``http://host:8123`` and ``https://host:8443`` reach a ClickHouse server;
    ``chdb://PATH`` runs ClickHouse embedded in this process with its data in ``PATH``.
    """

    __slots__ = ("host", "interface", "path", "port")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https", "chdb"}:
            raise ValueError(
                f"clickhouse_url {url!r}: use http://HOST:PORT or https://HOST:PORT for a "
                "ClickHouse server, or chdb://PATH for embedded ClickHouse"
            )
        self.interface = parts.scheme
        if parts.scheme == "chdb":
            path = (parts.netloc + parts.path) or ".slowleak/clickhouse"
            self.path: Path | None = Path(path)
            self.host = ""
            self.port = 0
        else:
            if not parts.hostname:
                raise ValueError(f"clickhouse_url {url!r} has no host")
            self.path = None
            self.host = parts.hostname
            self.port = parts.port or (8443 if parts.scheme == "https" else 8123)

    @property
    def embedded(self) -> bool:
        return self.interface == "chdb"


class Settings(BaseSettings):
    """slowleak's configuration. Every field can be set as ``SLOWLEAK_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SLOWLEAK_", extra="forbid", validate_default=True, frozen=True
    )

    # Kafka.
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    app_id: Identifier = Field(
        default="slowleak", description="faust app id: consumer group and changelog prefix."
    )
    events_topic: TopicName = "slowleak.events"
    feedback_topic: TopicName = "slowleak.feedback"
    alerts_topic: TopicName = "slowleak.alerts"
    dlq_topic: TopicName = "slowleak.dlq"
    topic_partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions when the worker creates its topics."
    )
    topic_replication_factor: int = Field(default=1, ge=1, le=16)
    max_message_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger messages go to the DLQ."
    )
    dlq_max_raw_bytes: int = Field(
        default=262_144, ge=0, description="Raw bytes kept per dead letter; the rest is cut."
    )

    # ClickHouse.
    clickhouse_url: str = Field(
        default="chdb://.slowleak/clickhouse",
        description="http(s)://HOST:PORT for a server, chdb://PATH for embedded ClickHouse.",
    )
    clickhouse_database: Identifier = "slowleak"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")

    # Sink.
    sink_batch_rows: int = Field(
        default=20_000, ge=1, description="Flush when this many rows are buffered..."
    )
    sink_idle_flush_ms: int = Field(
        default=200,
        ge=10,
        description="...or when no input arrived for this long (the stream caught up).",
    )
    sink_max_inflight: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Concurrent inserts to a ClickHouse server (embedded ClickHouse uses 1).",
    )
    sink_flush_interval_ms: int = Field(
        default=1_000, ge=10, description="...or when the oldest buffered row is this old."
    )

    # Worker.
    data_dir: Path = Field(default=Path(".slowleak"), description="faust table state.")
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_host: str = "127.0.0.1"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    consumer_max_poll_records: int = Field(default=5_000, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    faust_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra faust settings (JSON object in the environment), applied last.",
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        le=300_000,
        description="A worker silent this long leaves the group; its partitions move.",
    )

    # Detectors and the alert lifecycle (event time).
    availability_target: float = Field(
        default=0.995,
        gt=0.5,
        lt=1.0,
        description="The success-rate objective the availability burn rates are judged against.",
    )
    alert_repeat_interval_s: float = Field(
        default=14_400.0, gt=0, description="An alert still firing is sent again this often."
    )
    alert_hold_down_s: float = Field(
        default=600.0,
        gt=0,
        description="A resolved condition is announced only after it stayed clear this long.",
    )
    alert_auto_resolve_s: float = Field(
        default=3_600.0, gt=0, description="One-off alerts (a model change) close after this."
    )

    # Alert delivery.
    receivers: list[Receiver] = Field(
        default_factory=list,
        description="Where alerts go (a JSON list in the environment); each gets every alert.",
    )
    runbook_base_url: str = Field(
        default=DEFAULT_RUNBOOK_BASE_URL,
        description="Alerts link to {runbook_base_url}/{kind}.md.",
    )
    delivery_fetch_max_wait_ms: int = Field(
        default=25,
        ge=1,
        le=1_000,
        description="How long a delivery consumer's fetch waits for new alerts (latency).",
    )
    delivery_audit: bool = Field(
        default=True, description="Record each delivery in ClickHouse table alert_deliveries."
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(
                    f"kafka_bootstrap_servers {value!r}: expected host:port[,host:port...]"
                )
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _check_clickhouse_url(cls, value: str) -> str:
        ClickHouseTarget(value)
        return value

    @model_validator(mode="after")
    def _check_topics_distinct(self) -> Settings:
        topics = [self.events_topic, self.feedback_topic, self.alerts_topic, self.dlq_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"events, feedback, alerts and dlq topics must differ: {topics}")
        return self

    @field_validator("runbook_base_url")
    @classmethod
    def _check_runbook_base_url(cls, value: str) -> str:
        return _check_http_url(value, "runbook_base_url").rstrip("/")

    @field_validator("receivers")
    @classmethod
    def _check_receiver_names(cls, value: list[Receiver]) -> list[Receiver]:
        names = [r.name for r in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"receiver names must be unique, {', '.join(map(repr, repeated))} is used more "
                "than once; give each receiver its own name"
            )
        return value

    def receiver(self, name: str) -> Receiver:
        """The receiver called ``name``; ``KeyError`` naming the known ones otherwise."""
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        known = ", ".join(r.name for r in self.receivers) or "none configured"
        raise KeyError(f"no receiver named {name!r} (receivers: {known})")

    @property
    def clickhouse(self) -> ClickHouseTarget:
        return ClickHouseTarget(self.clickhouse_url)

    @property
    def kafka_broker_url(self) -> str:
        """The bootstrap servers in faust's ``kafka://`` form."""
        return ";".join(f"kafka://{s.strip()}" for s in self.kafka_bootstrap_servers.split(","))

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from (highest first) ``overrides``, the environment, then ``config_file``."""
        if config_file is None:
            return cls(**overrides)
        if not config_file.is_file():
            raise FileNotFoundError(f"config file {config_file} does not exist")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            model_config = SettingsConfigDict(toml_file=config_file)

        return _FromFile(**overrides)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
