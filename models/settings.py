"""The one settings class. Read from ``SLOWLEAK_*`` environment variables and, optionally, a TOML
file (``SLOWLEAK_CONFIG`` or ``--config``). Everything else receives settings as arguments.

A wrong value fails at start with a message that names the setting and says what to fix.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = [
    "AlertmanagerReceiver",
    "AppPolicy",
    "Budget",
    "ClickHouseTarget",
    "PriceOverride",
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


class PriceOverride(BaseModel):
    """The price of one model, in LiteLLM's fields (USD per token), for negotiated prices and
    self-hosted models (``cost_per_second`` of latency, or everything 0 for free)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_cost_per_token: float = Field(default=0.0, ge=0)
    output_cost_per_token: float = Field(default=0.0, ge=0)
    cache_read_input_token_cost: float | None = Field(
        default=None, ge=0, description="Cached input tokens; the input price when unset."
    )
    output_cost_per_reasoning_token: float | None = Field(
        default=None, ge=0, description="Reasoning tokens; the output price when unset."
    )
    cost_per_second: float = Field(default=0.0, ge=0, description="Per second of latency_ms.")


TextPolicy = Literal["full", "masked", "hash", "none"]


#: A ``prompt_injection`` threshold: a probability strictly between 0 and 1.
InjectionThreshold = Annotated[float, Field(gt=0.0, lt=1.0)]


class AppPolicy(BaseModel):
    """What slowleak knows of one app: how its prompt and completion texts are stored, and its
    guardrail profile (what it is for, what must never leave it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TextPolicy = Field(
        default="masked",
        description="Stored texts: full, masked (PII and secrets replaced by typed "
        "placeholders), hash (a SHA-256 and the lengths only) or none. Detectors always see the "
        "full text in memory; the dead-letter topic keeps raw bytes only for full.",
    )
    description: str = Field(default="", max_length=2000, description="What the app does.")
    allowed_intents: list[str] = Field(default_factory=list)
    code_expected: bool = Field(default=True, description="Program code is a normal answer.")
    secrets: list[SecretStr] = Field(
        default_factory=list, description="Canary strings that must never appear in an output."
    )
    system_prompt: SecretStr | None = Field(
        default=None, description="The app's instructions; verbatim runs in an output leak it."
    )
    topic_terms: list[str] = Field(default_factory=list)
    injection_threshold: InjectionThreshold | None = Field(
        default=None,
        description="This app's prompt_injection threshold, in place of the global "
        "injection_threshold: higher for an app whose users write about attacks (a security "
        "course), lower for one that holds secrets.",
    )

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            if len(secret.get_secret_value().strip()) < 3:
                raise ValueError(
                    "each of secrets must have at least 3 characters (a shorter canary would "
                    "match ordinary text)"
                )
        return value


class Budget(BaseModel):
    """A spending budget: ``cost_budget`` alerts when the spend burns it too fast."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Literal["app", "tenant"]
    name: str = Field(min_length=1, max_length=256, description="The app's or tenant's name.")
    period: Literal["day", "month"]
    amount_usd: float = Field(gt=0)
    app: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Tenant budgets only: count the tenant's calls of this app only.",
    )

    @model_validator(mode="after")
    def _check_app(self) -> Budget:
        if self.app is not None and self.scope != "tenant":
            raise ValueError(
                f"budget {self.name!r}: 'app' narrows a tenant budget to one app; an app "
                "budget names its app in 'name': remove 'app'"
            )
        return self


def _unique_budgets(budgets: list[Budget]) -> list[Budget]:
    seen: set[tuple[str, str, str, str | None]] = set()
    for b in budgets:
        key = (b.scope, b.name, b.period, b.app)
        if key in seen:
            raise ValueError(
                f"two {b.period} budgets for {b.scope} {b.name!r}"
                + (f" in app {b.app!r}" if b.app else "")
                + ": keep one (amounts do not add up)"
            )
        seen.add(key)
    return budgets


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
    future_tolerance_s: float = Field(
        default=300.0,
        ge=0,
        description="Events whose ts is further ahead of the worker's clock go to the DLQ.",
    )

    # Kafka security: TLS and SASL (SCRAM or PLAIN). Secrets have no defaults.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="SASL_SSL for SCRAM over TLS (Apache Kafka, MSK, ...)."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA certificates (PEM); the system's when unset."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="Client private key (PEM) of kafka_ssl_certfile."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that the broker's certificate names its host."
    )

    # ClickHouse.
    clickhouse_url: str = Field(
        default="chdb://.slowleak/clickhouse",
        description="http(s)://HOST:PORT for a server, chdb://PATH for embedded ClickHouse.",
    )
    clickhouse_database: Identifier = "slowleak"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr | None = Field(
        default=None, description="Unset: no password (a local server's default user)."
    )
    clickhouse_ca_file: Path | None = Field(
        default=None, description="CA certificates (PEM) for https://; the system's when unset."
    )
    clickhouse_verify: bool = Field(
        default=True, description="Verify the server's TLS certificate (https:// only)."
    )

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

    # Apps: stored text and guardrail profiles.
    apps: dict[Annotated[str, Field(min_length=1, max_length=256)], AppPolicy] = Field(
        default_factory=dict,
        description="Per app name: text storage policy and guardrail profile.",
    )
    guardrails: bool = Field(
        default=True,
        description="Scan every call with text for prompt injection, PII, secrets and off-task "
        "answers (table guardrail_findings, alerts guardrail and guardrail_rate).",
    )
    injection_threshold: InjectionThreshold | None = Field(
        default=None,
        description="prompt_injection flags an input whose probability is at least this; unset: "
        "the operating point shipped with the model (chosen on development data). Higher means "
        "fewer benign prompts flagged and fewer attacks caught.",
    )
    default_text: TextPolicy = Field(
        default="masked", description="Text storage policy of apps not listed in apps."
    )

    def text_policy(self, app: str) -> TextPolicy:
        policy = self.apps.get(app)
        return self.default_text if policy is None else policy.text

    # Cost: prices, windows and budgets.
    prices_file: Path | None = Field(
        default=None,
        description="A price table in LiteLLM's model_prices_and_context_window.json format, "
        "instead of the snapshot shipped with slowleak.",
    )
    price_overrides: dict[Annotated[str, Field(min_length=1)], PriceOverride] = Field(
        default_factory=dict,
        description="Model name (or provider/model) -> price; wins over the price table.",
    )
    budgets: Annotated[list[Budget], AfterValidator(_unique_budgets)] = Field(
        default_factory=list, description="Spending budgets per app or tenant, per day or month."
    )
    window_grace_s: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="Cost windows close this long (event time) after their minute ends; later "
        "calls are counted as late.",
    )

    @field_validator("prices_file")
    @classmethod
    def _check_prices_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(
                f"prices_file {value} is not a file: give the path of a JSON price table in "
                "LiteLLM's model_prices_and_context_window.json format, or unset it to use the "
                "shipped snapshot"
            )
        return value

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

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        """Kafka SASL/TLS and ClickHouse TLS settings that agree; every problem in one message."""
        protocol = self.kafka_security_protocol
        problems: list[str] = []
        sasl = {
            "kafka_sasl_username": self.kafka_sasl_username or None,
            "kafka_sasl_password": (
                self.kafka_sasl_password.get_secret_value() or None
                if self.kafka_sasl_password is not None
                else None
            ),
        }
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if value is None]
            if missing:
                problems.append(
                    f"kafka_security_protocol {protocol} needs {' and '.join(missing)}: set "
                    + " and ".join(f"SLOWLEAK_{name.upper()}" for name in missing)
                )
        elif any(value is not None for value in sasl.values()):
            problems.append(
                f"kafka_sasl_username/kafka_sasl_password are set but kafka_security_protocol is "
                f"{protocol}, which sends no credentials: set kafka_security_protocol to SASL_SSL "
                "(or SASL_PLAINTEXT), or remove them"
            )
        tls_files = {
            "kafka_ssl_cafile": self.kafka_ssl_cafile,
            "kafka_ssl_certfile": self.kafka_ssl_certfile,
            "kafka_ssl_keyfile": self.kafka_ssl_keyfile,
            "clickhouse_ca_file": self.clickhouse_ca_file,
        }
        kafka_files = [n for n, p in tls_files.items() if p is not None and n.startswith("kafka")]
        if kafka_files and not protocol.endswith("SSL"):
            problems.append(
                f"{', '.join(kafka_files)} set but kafka_security_protocol is {protocol}, "
                "which does not use TLS: set it to SSL or SASL_SSL, or remove them"
            )
        for name, path in tls_files.items():
            if path is not None and not path.is_file():
                problems.append(f"{name} {path} is not a file: give the path of a PEM file")
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            problems.append(
                "kafka_ssl_keyfile is set without kafka_ssl_certfile: set both (the client "
                "certificate and its key) or neither"
            )
        if not problems and protocol.endswith("SSL"):
            try:
                self.kafka_ssl_context()
            except (OSError, ssl.SSLError) as exc:
                problems.append(
                    f"cannot load the Kafka TLS files ({exc}): check that kafka_ssl_cafile, "
                    "kafka_ssl_certfile and kafka_ssl_keyfile are PEM and the key matches the "
                    "certificate"
                )
        if ClickHouseTarget(self.clickhouse_url).interface != "https" and (
            self.clickhouse_ca_file is not None or not self.clickhouse_verify
        ):
            problems.append(
                "clickhouse_ca_file and clickhouse_verify apply to TLS only: use an https:// "
                "clickhouse_url (port 8443 by default), or remove them"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for Kafka, or None when ``kafka_security_protocol`` has no TLS."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        )
        context.check_hostname = self.kafka_ssl_check_hostname
        if self.kafka_ssl_certfile is not None:
            context.load_cert_chain(
                str(self.kafka_ssl_certfile),
                str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
            )
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options for a Kafka client: aiokafka and kafka-python take these names."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        context = self.kafka_ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL_"):
            assert self.kafka_sasl_password is not None  # checked by _check_security
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

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
