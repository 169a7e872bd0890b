from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "_grams",
    "configured",
    "findings",
    "injection",
    "mask",
    "off_task",
    "pii",
    "scanner",
    "secrets",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"slowleak.streams.core.guardrails.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
