from __future__ import annotations

import re

import pytest

from slowleak.streams.core.guardrails import off_task
from slowleak.streams.core.guardrails._text import fold, words
from slowleak.streams.core.guardrails.off_task import OffTaskDetector
from slowleak.streams.core.guardrails.profile import AppProfile

PIZZA = AppProfile(
    description="Takes food orders for Pizza Rapido: menu, pizzas, prices, delivery times.",
    allowed_intents=("order", "menu"),
    code_expected=False,
    topic_terms=("margherita", "pepperoni", "salad", "drink"),
)
PROGRAM = """Here you go:
```python
import os

def list_files(path):
    for name in os.listdir(path):
        print(name)
```"""


def test_food_bot_writing_python_is_off_task() -> None:
    findings = OffTaskDetector(PIZZA).scan(PROGRAM, intent="order")

    assert [f.kind for f in findings] == ["code"]
    assert findings[0].detector == "off_task"
    assert findings[0].score >= 0.5


def test_code_is_fine_where_expected() -> None:
    codegen = AppProfile(description="Code generation for data teams", code_expected=True)
    assert OffTaskDetector(codegen).scan(PROGRAM, intent=None) == []


def test_intent_outside_the_profile() -> None:
    (finding,) = OffTaskDetector(PIZZA).scan("Sure.", intent="tax_advice")
    assert (finding.kind, finding.score) == ("intent", 1.0)


#: A long answer about something else entirely (no word of the pizza profile).
ESSAY = (
    "The French Revolution began in 1789 when economic crisis, Enlightenment philosophy and "
    "resentment of aristocratic privilege converged. The Estates-General convened at "
    "Versailles; the Third Estate declared itself a National Assembly, and soon the Bastille "
    "fell. Over the following decade the monarchy was abolished, Louis XVI was executed, and "
    "the Terror consumed revolutionaries and royalists alike before Napoleon seized power."
)


def test_unrelated_topic() -> None:
    findings = OffTaskDetector(PIZZA).scan(ESSAY, intent="order")
    assert [f.kind for f in findings] == ["topic"]
    on_topic = "Your order: one margherita and one pepperoni pizza, delivery in 30 minutes. " * 3
    assert OffTaskDetector(PIZZA).scan(on_topic, intent="order") == []


def test_validation() -> None:
    with pytest.raises(ValueError, match="min_code_cues must be at least 1"):
        OffTaskDetector(PIZZA, min_code_cues=0)
    with pytest.raises(ValueError, match="at least 3 non-blank characters"):
        AppProfile(secrets=("ab",))


def _many_words(n: int) -> str:
    """``n`` distinct made-up content words."""
    return " ".join(f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(n))


def test_one_topic_word_among_very_many_is_still_off_task() -> None:
    # The stems are skipped when the topic words alone make 1% of them; one topic word among
    # more than 100 others is below 1%: still off task.
    assert [
        f.kind for f in OffTaskDetector(PIZZA).scan(_many_words(150) + " pizzas", intent=None)
    ] == ["topic"]
    assert OffTaskDetector(PIZZA).scan(_many_words(60) + " pizzas", intent=None) == []
    assert OffTaskDetector(PIZZA).scan(_many_words(150) + " pizza delivery", intent=None) == []


def test_topic_forms_are_every_word_with_a_topic_stem() -> None:
    detector = OffTaskDetector(PIZZA)

    assert {"pizza", "pizzas", "orders", "ordering", "ordered", "times"} <= detector._topic_forms
    assert all(off_task._stem(w) in detector._topic for w in detector._topic_forms)


@pytest.mark.parametrize(
    "text",
    [
        "don't 'quoted' words'' a'b'c rock'n'roll 'x y' '",
        "Caf\u00e9 \u201cnaïve\u201d co\u00f6perate \u2014 it\u2019s",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0e2a\u0e27\u0e31\u0e2a",
        "UPPER and lower_case x_1 ² \u00bd \u0660\u0661",
        "",
    ],
)
def test_words_without_the_pattern_match_the_pattern(text: str) -> None:
    pattern = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
    for folded in (fold(text), text):
        expected = (
            re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?") if folded.isascii() else pattern
        ).findall(folded)
        assert words(folded) == expected


# Answers written for these tests: code a food-ordering bot may be talked into writing, without a
# fence or a keyword at the start of every line.
UNFENCED_CODE = [
    "Sure!\ntotal = 0\nfor price in prices:\n    total += price\nprint(total)",
    "Run this:\ncd ~/orders\ngit pull --rebase\nnpm install && npm run build",
    'int main(void) {\n    printf("%d\\n", 42);\n    return 0;\n}',
    "#include <stdio.h>\n#define SIZE 3\nstatic int count;",
    "items.forEach(item => {\n  cart.add(item);\n});",
    "<ul>\n<li>Margherita</li>\n<li>Pepperoni</li>\n</ul>",
    "$order->add($pizza);\n$total += $pizza->price\n$order->save()",
    "SIZES = [\n    'small',  # 25 cm\n    'large',  # 32 cm\n]",
]
# What the bot should write: lists, prices, totals, tables, hours, a sentence ending in a colon.
ORDER_ANSWERS = [
    "Here is our menu:\n- Margherita: $9.99\n- Pepperoni: $11.49\n- Veggie (vegan): $10.99",
    "Your order:\n1 x Margherita (large)\n2 x Cola\nTotal: $14.97\nDelivery in 30 minutes.",
    "| Pizza | Price |\n|---|---|\n| Margherita | $9.99 |\n| Pepperoni | $11.49 |",
    "Opening hours:\nMonday to Friday: 11:00-22:00\nSaturday: 12:00-23:00\nSunday: closed",
    "From Monday to Friday we deliver until 10 pm.\nSelect your size:\nReturn policy: full "
    "refund if the pizza is late (more than 45 minutes).\nPrint your receipt at the counter.",
    "For delivery:\nIf you are not home, we call you;\nWhile you wait, try our garlic bread.",
]


@pytest.mark.parametrize("answer", UNFENCED_CODE)
def test_code_without_a_fence_is_off_task(answer: str) -> None:
    assert [f.kind for f in OffTaskDetector(PIZZA).scan(answer, intent="order")] == ["code"]


@pytest.mark.parametrize("answer", ORDER_ANSWERS)
def test_ordinary_order_answers_are_not_code(answer: str) -> None:
    assert off_task.code_cues(answer) == [] or len(off_task.code_cues(answer)) < 3
    assert OffTaskDetector(PIZZA).scan(answer, intent="order") == []
