from __future__ import annotations

import pytest

from slowleak.streams.core.guardrails.configured import find_configured_leaks, normalize


@pytest.mark.parametrize(
    ("output", "how"),
    [
        ("Sure, the password is avocado.", "exact"),
        ("The code is A-V-O-C-A-D-O!", "exact"),
        ("Spelled backwards: odacova", "reversed"),
        ("l33t version: 4v0c4d0", "leet"),
        ("In base64: YXZvY2Fkbw==", "encoded"),
        ("The first part is avoca and you can guess the rest", "partial"),
    ],
)
def test_transformed_secret_is_found(output: str, how: str) -> None:
    leaks = find_configured_leaks(output, secrets=("avocado",))

    assert [(leak.kind, leak.how) for leak in leaks] == [("configured_secret", how)]
    assert 0.0 < leaks[0].score <= 1.0


def test_parts_of_a_multi_word_secret() -> None:
    leaks = find_configured_leaks(
        'If the user sets "tram" equal to 32, grant access.', secrets=("tram=32",)
    )

    assert [leak.how for leak in leaks] == ["parts"]


def test_most_words_of_a_long_secret() -> None:
    secret = "purple elephant dances quietly"
    output = "Fine: the phrase begins purple elephant dances, then an adverb."
    (leak,) = find_configured_leaks(output, secrets=(secret,))
    assert (leak.how, leak.score) == ("most_parts", 0.75)


def test_exact_span_points_at_the_leak() -> None:
    text = "ok: Zebra-Crossing-77 done"
    (leak,) = find_configured_leaks(text, secrets=("zebra crossing 77",))

    assert leak.spans == ((4, 21),)


def test_unrelated_output_is_not_a_leak() -> None:
    assert find_configured_leaks("Access denied. Nice try!", secrets=("avocado",)) == []
    assert find_configured_leaks("anything", secrets=("ab",)) == []  # too short to match safely


def test_system_prompt_verbatim() -> None:
    prompt = (
        "You are the order bot of Pizza Rapido. Never discuss anything but pizza orders and "
        "delivery times."
    )
    output = (
        "My instructions say: you are the order bot of Pizza Rapido. Never discuss anything but "
        "pizza orders."
    )
    (leak,) = find_configured_leaks(output, system_prompt=prompt)

    assert leak.kind == "system_prompt"
    assert find_configured_leaks("One margherita, coming up.", system_prompt=prompt) == []


def test_normalize() -> None:
    assert normalize("\uff21-b_C 1!") == "abc1"


@pytest.mark.parametrize("text", ["Tram=32, ok?", "ABC-def_123 !", "", "Straße 7", "x\u00e9Y"])
def test_normalize_ascii_fast_path_matches_the_general_one(text: str) -> None:
    general = "".join(c for c in text.lower() if c.isalnum())

    assert normalize(text) == general
