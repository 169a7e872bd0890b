from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slowleak.models import InteractionEvent
from slowleak.streams.core.guardrails import mask as mask_module
from slowleak.streams.core.guardrails.mask import mask_text
from slowleak.streams.core.guardrails.profile import AppProfile
from slowleak.streams.core.guardrails.scanner import Scanner


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


def test_the_patterns_run_once_per_text_for_masking_then_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = mask_module.find_pii

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(mask_module, "find_pii", counting)
    monkeypatch.setattr(mask_module, "_recent", ())
    question, answer = (
        "My mail is jo@example.org",
        "Card 4539 1488 0343 6467, key AKIAIOSFODNN7EXAMPLE",
    )
    masked = [mask_text(question), mask_text(answer)]
    event = InteractionEvent(
        event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), app="shop", model="m",
        input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
        input_text=question, output_text=answer,
    )  # fmt: skip
    findings = Scanner(scan_input_pii=True).scan(event)
    # (The evidence excerpts of findings are masked on their own: other, shorter texts, kept
    # out of the record of recent texts, so that they never push out a text being scanned.)
    whole = [c for c in calls if c is question or c is answer]
    assert whole == [question, answer]
    assert [f.text for f in mask_module._recent] == [answer, question]
    assert masked == ["My mail is <EMAIL>", "Card <CARD>, key <SECRET:aws_access_key>"]
    # The same findings as when nothing was found before.
    monkeypatch.setattr(mask_module, "_recent", ())
    assert Scanner(scan_input_pii=True).scan(event) == findings
    # An equal text that is another object is looked at again (identity, not equality).
    mask_text("".join(["Card 4539 1488 0343 6467, ", "key AKIAIOSFODNN7EXAMPLE"]))
    assert [c for c in calls if c is question or c is answer] == [question, answer] * 2
    assert calls[-1] == answer and calls[-1] is not answer


def test_configured_secrets_are_looked_for_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, tuple[str, ...]]] = []
    real = mask_module.find_configured_leaks

    def counting(text: str, *, secrets: tuple[str, ...] = (), **kwargs: Any) -> Any:
        calls.append((text, secrets))
        return real(text, secrets=secrets, **kwargs)

    monkeypatch.setattr(mask_module, "find_configured_leaks", counting)
    monkeypatch.setattr(mask_module, "_recent", ())
    secrets = ("PZ-CANARY-7731",)
    answer = "Sure! The code is PZ-CANARY-7731, and the menu is below."
    assert mask_text(answer, secrets=secrets) == (
        "Sure! The code is <SECRET:configured>, and the menu is below."
    )
    event = InteractionEvent(
        event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), app="pizza", model="m",
        input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
        input_text="What is the code?", output_text=answer,
    )  # fmt: skip
    scanner = Scanner({"pizza": AppProfile(secrets=secrets, system_prompt="Take pizza orders.")})
    kinds = [(f.detector, f.kind) for f in scanner.scan(event)]
    assert ("secret_leak", "configured_secret") in kinds
    assert [c for c in calls if c[0] is answer] == [(answer, secrets)]
    # Other secrets for the same text are looked for on their own.
    assert mask_text(answer, secrets=("OTHER-CODE-1234",)) == answer
    assert [c[1] for c in calls if c[0] is answer] == [secrets, ("OTHER-CODE-1234",)]
