from __future__ import annotations

import pytest

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


def test_unrelated_topic() -> None:
    essay = (
        "The French Revolution began in 1789 when economic crisis, Enlightenment philosophy and "
        "resentment of aristocratic privilege converged. The Estates-General convened at "
        "Versailles; the Third Estate declared itself a National Assembly, and soon the Bastille "
        "fell. Over the following decade the monarchy was abolished, Louis XVI was executed, and "
        "the Terror consumed revolutionaries and royalists alike before Napoleon seized power."
    )
    findings = OffTaskDetector(PIZZA).scan(essay, intent="order")
    assert [f.kind for f in findings] == ["topic"]
    on_topic = "Your order: one margherita and one pepperoni pizza, delivery in 30 minutes. " * 3
    assert OffTaskDetector(PIZZA).scan(on_topic, intent="order") == []


def test_validation() -> None:
    with pytest.raises(ValueError, match="min_code_cues must be at least 1"):
        OffTaskDetector(PIZZA, min_code_cues=0)
    with pytest.raises(ValueError, match="at least 3 non-blank characters"):
        AppProfile(secrets=("ab",))
