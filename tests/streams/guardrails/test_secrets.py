from __future__ import annotations

import pytest

from slowleak.streams.core.guardrails import secrets
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


# Credentials whose format alone is too plain, recognised by the provider's name or label next to
# them (values made up for these tests).
@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (
            'variable "corp_okta_api_token" {\n'
            '  default = "004EWTpRQT_HJtG_nL-agxacgzYHjxPcF99kJsFzWg"\n}',
            "okta_token",
            "004EWTpRQT_HJtG_nL-agxacgzYHjxPcF99kJsFzWg",
        ),
        (
            "mvn sonar:sonar -Dsonar.login=5524bf449ca45fcace54698371466398321f3a82",
            "sonarqube_token",
            "5524bf449ca45fcace54698371466398321f3a82",
        ),
        (
            '$sonarLogin = "4924be8f51f3e738c97db2c4ace51db7e938f28b"',
            "sonarqube_token",
            "4924be8f51f3e738c97db2c4ace51db7e938f28b",
        ),
        (
            "run it with -vaultToken s.CAESIP2jTxc9S3K7Z6CtcFWQv7-044m_oSsxnPE0H3nF89l3",
            "hashicorp_token",
            "s.CAESIP2jTxc9S3K7Z6CtcFWQv7-044m_oSsxnPE0H3nF89l3",
        ),
        (
            "Unseal Key 2: 0tZn+7QQCxphpHwTm7/dC3LpP5JGIbYl3PK8Sy81R+P2",
            "hashicorp_token",
            "0tZn+7QQCxphpHwTm7/dC3LpP5JGIbYl3PK8Sy81R+P2",
        ),
        (
            "CC_TEST_REPORTER_ID: 945dfb58a832d233a3caeb84e3e6d3be212e8c7abcb48117fce63b9adcb43647",
            "codeclimate_token",
            "945dfb58a832d233a3caeb84e3e6d3be212e8c7abcb48117fce63b9adcb43647",
        ),
        (
            'postmark: "f59dffd2-83ea-47c7-ba8f-95e053a6d0ae",',
            "postmark_token",
            "f59dffd2-83ea-47c7-ba8f-95e053a6d0ae",
        ),
        (
            "curl -H 'Jenkins-Crumb:440561953171ba44ace9740562d172bb' https://ci/job/x/build",
            "jenkins_token",
            "440561953171ba44ace9740562d172bb",
        ),
        (
            "Please use the following password to proceed to installation:\n\n"
            "bd9627decc6346d780b3b6ab6ea8fe1f\n",
            "password_in_prose",
            "bd9627decc6346d780b3b6ab6ea8fe1f",
        ),
        (
            "[Peer]\nPresharedKey = uRsfsZ2Ts1rach4Zv3hhwcx6wa5fuIo2u3w7sa+7j81=\n",
            "wireguard_key",
            "uRsfsZ2Ts1rach4Zv3hhwcx6wa5fuIo2u3w7sa+7j81=",
        ),
        (
            '<add value="Server=db;User ID=b2b;Password=#gets0m3;Trusted_Connection=False" />',
            "connection_string",
            "#gets0m3",
        ),
        # A name and a value as a call's arguments; the value inside its own quotes.
        (
            "buildConfigField 'String', 'API_KEY', '\"951bc382db9cfee29c68634761dd6e19\"'",
            "generic_secret",
            "951bc382db9cfee29c68634761dd6e19",
        ),
        # Quotes escaped inside a string.
        ('$user = \\"mg1021\\"; $password = \\"goodspec\\";', "generic_secret", "goodspec"),
    ],
)
def test_credentials_by_label_and_form(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _found(text)


@pytest.mark.parametrize(
    "text",
    [
        # Names, not values: a list of field names, a label, a string continued by a variable.
        'fields = ["password", "username", "email"]',
        'usernameLabel:"Username or email:",passwordLabel:"Password:",rememberLabel:"Stay"',
        "echo 'password = '.$p['config']['daemon_password'];",
        '_password = "+new Buffer("feast").toString("base64")',
        # References to other variables, quoted or followed by a path.
        "export DATABASE_PASSWORD=\"'$PRECOMPILE_PASSWORD'\"",
        "FORGOT_PASSWORD=$BASE_URL/classroom/#/forgot_password",
        'text << "Password=#{password}, "',
        # Prose around the new labels.
        "The vault is open: s.t. the unseal ceremony can start tomorrow.",
        "Your password: it must have at least twelve characters and one digit.",
        "Sonar login works again, the token page is fixed.",
        "Okta, the identity provider, rotates the 00 keys every quarter.",
    ],
)
def test_ignores_names_references_and_prose_near_new_labels(text: str) -> None:
    assert _found(text) == []


# The secret-name words are found with ``bytes.find`` (ASCII letters lower-cased), not the
# case-insensitive pattern, unless the text holds a character that pattern reads as an ASCII
# letter; the credential runs are split out without their pattern.
@pytest.mark.parametrize(
    "before",
    ["", "Grüße — “ok”, ça va. ", "Der Kelvin-Wert \u212a ist gro\u00df. ", "\u0131\u0130\u017f. "],
)
def test_assignments_after_non_ascii_prose(before: str) -> None:
    text = before + 'Config: DB_PASSWORD = "hunter2!x" and TOKEN=' + GITHUB

    assert _found(text) == [("generic_secret", "hunter2!x"), ("github_token", GITHUB)]


def test_secret_word_starts_match_the_pattern() -> None:
    text = (
        "Paté pat PAT_x keyKEY passpwd Secret: tokens, bearer auth-credential cookie pat\u00e9 pat"
    )
    expected = sorted({m.start() for m in secrets._SECRET_WORD.finditer(text)})

    starts = secrets._secret_word_starts(text)
    assert starts is not None and set(expected) <= set(starts)
    assert secrets._secret_word_starts("\u212aey = 1") is None  # the Kelvin sign: the pattern


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short words only",
        f"x {AWS}y é {GITHUB} ünïcode-run-of-sixteen+/=.~$!:@",
        "a\u00e9" * 20,
    ],
)
def test_credential_runs_match_the_pattern(text: str) -> None:
    assert secrets._credential_runs(text) == " ".join(secrets._CREDENTIAL_RUN.findall(text))
