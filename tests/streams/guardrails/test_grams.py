from __future__ import annotations

import random

import pytest

from slowleak.streams.core.guardrails._grams import GramTable, gram_codes
from slowleak.streams.core.guardrails.injection import CHAR_GRAM_CHARS, InjectionModel


def string_total(weights: dict[str, float], text: str) -> tuple[float, int]:
    grams = {text[i : i + 4] for i in range(len(text) - 3)}
    return sum(weights.get(g, 0.0) for g in grams), len(grams)


def test_codes_are_the_distinct_grams_in_order() -> None:
    codes = gram_codes("abcabc")

    assert codes is not None
    assert [bytes(int(c).to_bytes(8, "big")).decode("utf-16-be") for c in codes] == [
        "abca",
        "bcab",
        "cabc",
    ]


@pytest.mark.parametrize("text", ["", "abc", "😀bc", "🙂 x"])
def test_short_texts_have_no_grams(text: str) -> None:
    assert GramTable({"abcd": 1.0}).total(text) == (0.0, 0)


def test_a_character_beyond_u_ffff_is_read_the_string_way() -> None:
    table = GramTable({"a😀bc": 2.0, "😀bcd": 1.0, "bcde": 0.5})

    assert gram_codes("a😀bcde") is None
    assert table.total("a😀bcde") == (3.5, 3)


def test_the_highest_code_point_and_lone_surrogates() -> None:
    table = GramTable({"\uffff" * 4: 1.0, "a\ud800bc": 2.0})

    assert table.total("\uffff" * 6) == (1.0, 1)
    assert table.total("a\ud800bc") == (2.0, 1)


def test_the_shipped_weights_sum_as_the_string_grams_do() -> None:
    weights = {k[1:]: v for k, v in InjectionModel.load().weights.items() if k.startswith("~")}
    table = GramTable(weights)
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz    éßж中'\u2019\ud83d😀\uffff0123"
    grams = sorted(weights)
    for _ in range(500):
        # Text made of the model's own 4-grams and random characters, so that many are found.
        parts = [
            rng.choice(grams) if rng.random() < 0.6 else rng.choice(alphabet) for _ in range(80)
        ]
        text = "".join(parts)[:CHAR_GRAM_CHARS]
        total, n = table.total(text)
        expected, n_expected = string_total(weights, text)

        assert n == n_expected
        assert total == pytest.approx(expected, abs=1e-9)
