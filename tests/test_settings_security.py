"""Kafka SASL/TLS and ClickHouse TLS settings: validation that says what to fix, and the
credentials reaching every client built from the settings."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiokafka  # type: ignore[import-untyped]
import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import ValidationError

import slowleak.streams.clickhouse as clickhouse
from slowleak.models import Settings
from slowleak.streams.app import create_app, faust_credentials


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate (also its own CA) and its key, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("pem")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=kafka",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    garbage = folder / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {"cert": cert, "key": key, "garbage": garbage}


def _errors(**kwargs: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as exc_info:
        Settings(**kwargs)
    return exc_info.value.errors(include_url=False, include_input=False, include_context=False)


def _value_error(msg: str) -> list[dict[str, Any]]:
    return [{"type": "value_error", "loc": (), "msg": f"Value error, {msg}"}]


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_are_plaintext_without_secrets() -> None:
    settings = Settings()

    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_password is None and settings.kafka_sasl_username is None
    assert settings.clickhouse_password is None
    assert settings.kafka_client_options() == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert settings.future_tolerance_s == 300.0


# --- validation -------------------------------------------------------------------------------


def test_sasl_without_username_and_password() -> None:
    assert _errors(kafka_security_protocol="SASL_SSL") == _value_error(
        "kafka_security_protocol SASL_SSL needs kafka_sasl_username and kafka_sasl_password: "
        "set SLOWLEAK_KAFKA_SASL_USERNAME and SLOWLEAK_KAFKA_SASL_PASSWORD"
    )


def test_sasl_with_an_empty_password() -> None:
    errors = _errors(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password=""
    )
    assert errors == _value_error(
        "kafka_security_protocol SASL_PLAINTEXT needs kafka_sasl_password: "
        "set SLOWLEAK_KAFKA_SASL_PASSWORD"
    )


def test_credentials_that_the_protocol_would_not_send() -> None:
    assert _errors(kafka_sasl_username="u", kafka_sasl_password="p") == _value_error(
        "kafka_sasl_username/kafka_sasl_password are set but kafka_security_protocol is "
        "PLAINTEXT, which sends no credentials: set kafka_security_protocol to SASL_SSL (or "
        "SASL_PLAINTEXT), or remove them"
    )


def test_unknown_protocol_and_mechanism() -> None:
    errors = _errors(kafka_security_protocol="TLS", kafka_sasl_mechanism="SCRAM-SHA-1")
    assert errors == [
        {
            "type": "literal_error",
            "loc": ("kafka_security_protocol",),
            "msg": "Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'",
        },
        {
            "type": "literal_error",
            "loc": ("kafka_sasl_mechanism",),
            "msg": "Input should be 'SCRAM-SHA-256', 'SCRAM-SHA-512' or 'PLAIN'",
        },
    ]


def test_tls_files_that_do_not_exist_all_named(tmp_path: Path) -> None:
    ca, cert = tmp_path / "ca.pem", tmp_path / "cert.pem"
    errors = _errors(kafka_security_protocol="SSL", kafka_ssl_cafile=ca, kafka_ssl_certfile=cert)
    assert errors == _value_error(
        f"kafka_ssl_cafile {ca} is not a file: give the path of a PEM file; "
        f"kafka_ssl_certfile {cert} is not a file: give the path of a PEM file"
    )


def test_tls_files_without_a_tls_protocol(pem: dict[str, Path]) -> None:
    errors = _errors(kafka_ssl_cafile=pem["cert"])
    assert errors == _value_error(
        "kafka_ssl_cafile set but kafka_security_protocol is PLAINTEXT, which does not use "
        "TLS: set it to SSL or SASL_SSL, or remove them"
    )


def test_key_without_its_certificate(pem: dict[str, Path]) -> None:
    errors = _errors(kafka_security_protocol="SSL", kafka_ssl_keyfile=pem["key"])
    assert errors == _value_error(
        "kafka_ssl_keyfile is set without kafka_ssl_certfile: set both (the client "
        "certificate and its key) or neither"
    )


def test_tls_file_that_is_not_pem(pem: dict[str, Path]) -> None:
    [error] = _errors(kafka_security_protocol="SSL", kafka_ssl_cafile=pem["garbage"])
    assert error["loc"] == () and error["msg"].startswith(
        "Value error, cannot load the Kafka TLS files ("
    )
    assert error["msg"].endswith(
        "check that kafka_ssl_cafile, kafka_ssl_certfile and kafka_ssl_keyfile are PEM and the "
        "key matches the certificate"
    )


def test_clickhouse_tls_settings_need_https(pem: dict[str, Path]) -> None:
    expected = _value_error(
        "clickhouse_ca_file and clickhouse_verify apply to TLS only: use an https:// "
        "clickhouse_url (port 8443 by default), or remove them"
    )
    assert _errors(clickhouse_url="http://ch:8123", clickhouse_ca_file=pem["cert"]) == expected
    assert _errors(clickhouse_verify=False) == expected


def test_clickhouse_ca_file_that_does_not_exist(tmp_path: Path) -> None:
    errors = _errors(clickhouse_url="https://ch", clickhouse_ca_file=tmp_path / "ca.pem")
    assert errors == _value_error(
        f"clickhouse_ca_file {tmp_path / 'ca.pem'} is not a file: give the path of a PEM file"
    )


def test_secrets_from_the_environment_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOWLEAK_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SLOWLEAK_KAFKA_SASL_USERNAME", "worker")
    monkeypatch.setenv("SLOWLEAK_KAFKA_SASL_PASSWORD", "kafka-s3cret")
    monkeypatch.setenv("SLOWLEAK_CLICKHOUSE_PASSWORD", "ch-s3cret")

    settings = Settings.load()

    assert settings.kafka_sasl_password is not None and settings.clickhouse_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "kafka-s3cret"
    assert settings.clickhouse_password.get_secret_value() == "ch-s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


def test_security_from_a_config_file(tmp_path: Path, pem: dict[str, Path]) -> None:
    config = tmp_path / "slowleak.toml"
    config.write_text(
        'kafka_security_protocol = "SASL_SSL"\n'
        'kafka_sasl_mechanism = "SCRAM-SHA-256"\n'
        'kafka_sasl_username = "worker"\n'
        f'kafka_ssl_cafile = "{pem["cert"]}"\n'
        'clickhouse_url = "https://ch.example.com"\n'
        f'clickhouse_ca_file = "{pem["cert"]}"\n'
    )

    with pytest.raises(ValidationError, match="needs kafka_sasl_password"):
        Settings.load(config)
    settings = Settings.load(config, kafka_sasl_password="from-env")

    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_ssl_cafile == pem["cert"]


# --- the clients ------------------------------------------------------------------------------


def _sasl_ssl(pem: dict[str, Path], **overrides: Any) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="worker",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=pem["cert"],
        kafka_ssl_certfile=pem["cert"],
        kafka_ssl_keyfile=pem["key"],
        **overrides,
    )


def test_kafka_client_options_carry_the_credentials(pem: dict[str, Path]) -> None:
    options = _sasl_ssl(pem).kafka_client_options()

    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafka"),),)]


def test_kafka_client_options_for_tls_and_sasl_alone(pem: dict[str, Path]) -> None:
    tls = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=pem["cert"], kafka_ssl_check_hostname=False
    ).kafka_client_options()
    sasl = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    ).kafka_client_options()

    assert sorted(tls) == ["security_protocol", "ssl_context"]
    assert tls["ssl_context"].check_hostname is False
    assert sasl == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


def test_every_kafka_client_takes_the_options(pem: dict[str, Path]) -> None:
    names = set(_sasl_ssl(pem).kafka_client_options())
    aiokafka_names = set(aiokafka.AIOKafkaConsumer.__init__.__code__.co_varnames)

    assert names <= aiokafka_names
    for client in (KafkaAdminClient, KafkaConsumer, KafkaProducer):
        assert names <= set(client.DEFAULT_CONFIG), client


def test_faust_app_gets_the_credentials(pem: dict[str, Path], tmp_path: Path) -> None:
    settings = _sasl_ssl(pem, data_dir=tmp_path, kafka_sasl_mechanism="SCRAM-SHA-256")

    app = create_app(settings)

    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert isinstance(auth.pop("ssl_context"), ssl.SSLContext)
    assert auth == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret",
    }
    assert app.runtime.processor.future_tolerance_s == 300.0


def test_faust_credentials_for_tls_and_sasl_alone(pem: dict[str, Path]) -> None:
    tls = faust_credentials(Settings(kafka_security_protocol="SSL"))
    sasl = faust_credentials(
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )
    )

    assert credentials_to_aiokafka_auth(tls)["security_protocol"] == "SSL"
    assert credentials_to_aiokafka_auth(sasl) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
        "ssl_context": None,
    }


def _captured_client(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def get_client(**kwargs: Any) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(clickhouse.clickhouse_connect, "get_client", get_client)
    return seen


def test_clickhouse_client_gets_user_password_and_tls(
    monkeypatch: pytest.MonkeyPatch, pem: dict[str, Path]
) -> None:
    seen = _captured_client(monkeypatch)
    settings = Settings(
        clickhouse_url="https://ch.example.com",
        clickhouse_user="slowleak_writer",
        clickhouse_password="s3cret",
        clickhouse_ca_file=pem["cert"],
    )

    clickhouse.connect(settings, database="slowleak")

    assert seen == {
        "interface": "https",
        "host": "ch.example.com",
        "port": 8443,
        "username": "slowleak_writer",
        "password": "s3cret",
        "database": "slowleak",
        "verify": True,
        "ca_cert": str(pem["cert"]),
    }


def test_clickhouse_client_without_password_or_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured_client(monkeypatch)

    clickhouse.connect(Settings(clickhouse_url="http://127.0.0.1:8123"))

    assert seen == {
        "interface": "http",
        "host": "127.0.0.1",
        "port": 8123,
        "username": "default",
        "password": "",
        "database": None,
    }
    assert clickhouse.clickhouse_tls_options(
        Settings(clickhouse_url="https://ch", clickhouse_verify=False)
    ) == {"verify": False}


def test_delivery_consumers_get_the_credentials() -> None:
    from slowleak.streams.delivery.runner import DeliveryRunner

    settings = Settings(
        receivers=[{"type": "stdout", "name": "out"}],
        delivery_audit=False,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="deliver",
        kafka_sasl_password="s3cret",
    )

    async def client_settings() -> tuple[Any, ...]:
        consumer = DeliveryRunner(settings)._consumer_factory("out")()
        try:
            client = consumer._client
            return (
                client._security_protocol,
                client._sasl_mechanism,
                client._sasl_plain_username,
                client._sasl_plain_password,
            )
        finally:
            await consumer.stop()

    assert asyncio.run(client_settings()) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
        "deliver",
        "s3cret",
    )
