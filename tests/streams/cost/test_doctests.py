"""The examples in the cost modules' docstrings run as written."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from slowleak.streams.core.cost import budget, prices, spike, windows


@pytest.mark.parametrize("module", [prices, windows, budget, spike], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)

    assert result.attempted > 0 and result.failed == 0
