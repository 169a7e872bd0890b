"""The one settings class. Read from ``SLOWLEAK_*`` environment variables and, optionally, a TOML
file (``SLOWLEAK_CONFIG`` or ``--config``). Everything else receives settings as arguments.

A wrong value fails at start with a message that names the setting and says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["ClickHouseTarget", "Settings"]

TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


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
