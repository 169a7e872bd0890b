from __future__ import annotations

import pytest

from slowleak.streams.core.guardrails.secrets import entropy_bits, find_secrets

AWS = "AKIAZ7Q3LM2XN4KP5WTR"
GITHUB = "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"


def _found(text: str) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start : m.end]) for m in find_secrets(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"aws_access_key_id = {AWS}", [("aws_access_key", AWS)]),
        (f"export GH_TOKEN={GITHUB}", [("github_token", GITHUB)]),
        (
            "slack: xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            [("slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")],
        ),
        (
            "key sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            [("stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc")],
        ),
        ("postgresql://app:S3cr3t-pw@db.internal:5432/prod", [("connection_string", "S3cr3t-pw")]),
        (
            "Authorization: Bearer abcDEF123456ghiJKL789",
            [("authorization_header", "abcDEF123456ghiJKL789")],
        ),
        ('DB_PASSWORD = "hunter2!x"', [("generic_secret", "hunter2!x")]),
        (
            'api_key: "9f8e7d6c5b4a39281706f5e4d3c2b1a0"',
            [("generic_secret", "9f8e7d6c5b4a39281706f5e4d3c2b1a0")],
        ),
    ],
)
def test_finds_credentials(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


def test_private_key_block() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
    assert _found(f"here:\n{block}\n") == [("private_key", block)]


@pytest.mark.parametrize(
    "text",
    [
        'password = "<your-password>"',
        "api_key = os.environ['API_KEY']",
        "token: ${GITHUB_TOKEN}",
        "password = xxxxxxxx",
        "Please reset your password and choose a strong passphrase.",
        "The key to success is persistence.",
        "The secret: keep practising every day.",
        "Use max_tokens = 256 and temperature = 0.2.",
    ],
)
def test_ignores_placeholders_and_prose(text: str) -> None:
    assert _found(text) == []


def test_entropy() -> None:
    assert entropy_bits("aaaa") == 0.0
    assert entropy_bits("abcd") == 2.0
    assert entropy_bits("") == 0.0
