from __future__ import annotations

import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from slowleak.streams.core.guardrails.mask import mask_text


def test_placeholders() -> None:
    text = (
        "Mail jo@example.org or call 212-555-0143; card 4539 1488 0343 6467; "
        "key AKIAZ7Q3LM2XN4KP5WTR; db postgres://app:S3cr3t-pw@db:5432/x"
    )
    assert mask_text(text) == (
        "Mail <EMAIL> or call <PHONE>; card <CARD>; key <SECRET:aws_access_key>; "
        "db postgres://app:<SECRET:connection_string>@db:5432/x"
    )


def test_configured_secret_is_masked() -> None:
    assert (
        mask_text("the code is a-v-o-c-a-d-o", secrets=("avocado",))
        == "the code is <SECRET:configured>"
    )


def test_text_without_anything_sensitive_is_unchanged() -> None:
    text = "Two margheritas and a salad, delivered at 7 pm."
    assert mask_text(text) == text
    assert mask_text("") == ""


def _token(rng: random.Random, prefix: str, n: int) -> str:
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    before=st.text(alphabet=string.ascii_letters + " .,:\n", max_size=40),
    after=st.text(alphabet=string.ascii_letters + " .,:\n", max_size=40),
)
def test_masking_never_leaks_the_raw_secret(seed: int, before: str, after: str) -> None:
    rng = random.Random(seed)
    secrets = [
        _token(rng, "ghp_", 36),
        "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        _token(rng, "sk_live_", 24),
        _token(rng, "xoxb-1234567890-", 24),
    ]
    for secret in secrets:
        masked = mask_text(f"{before} {secret} {after}")
        assert secret not in masked
        assert secret[-12:] not in masked
