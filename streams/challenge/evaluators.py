"""Evaluators: did a challenger call get what we wanted? ``True``, ``False`` or ``None``.

An evaluator is a callable ``(call, result) -> bool | None``; ``None`` means it cannot tell, and
the outcome may come later as a feedback event, as for any call. Named in configuration as:

- ``exact`` / ``exact:ATTRIBUTE``: the output equals the recorded call's attribute (default
  ``expected``), ignoring surrounding white space;
- ``regex:PATTERN``: the pattern is found in the output (``re.search``);
- ``json-schema:PATH``: the output is JSON valid against the schema in file PATH (needs the
  ``jsonschema`` package);
- ``feedback``: no evaluator, outcomes come from feedback events;
- ``module:function``: a team's own scorer.

A call that failed (``status`` not ``ok``) is unsuccessful whatever the evaluator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from slowleak.streams.challenge.challengers import ChallengerResult, load_callable
from slowleak.streams.challenge.sampling import ChampionCall

__all__ = ["Evaluator", "ExactMatch", "JsonSchemaCheck", "RegexMatch", "resolve_evaluator"]

Evaluator: TypeAlias = Callable[[ChampionCall, ChallengerResult], "bool | None"]


class ExactMatch:
    """The output equals ``call.attributes[attribute]`` (stripped); None without that attribute."""

    def __init__(self, attribute: str = "expected") -> None:
        self.attribute = attribute

    def __call__(self, call: ChampionCall, result: ChallengerResult) -> bool | None:
        expected = call.attributes.get(self.attribute)
        if expected is None:
            return None
        return result.output_text is not None and result.output_text.strip() == expected.strip()


class RegexMatch:
    """The pattern is found in the output."""

    def __init__(self, pattern: str) -> None:
        try:
            self.pattern = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"regex evaluator: {pattern!r} is not a valid pattern ({exc})"
            ) from None

    def __call__(self, call: ChampionCall, result: ChallengerResult) -> bool:
        return (
            result.output_text is not None and self.pattern.search(result.output_text) is not None
        )


class JsonSchemaCheck:
    """The output parses as JSON and validates against ``schema`` (JSON Schema, any draft the
    ``jsonschema`` package knows, chosen by ``$schema``)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        try:
            import jsonschema  # type: ignore[import-untyped]
        except ImportError:
            raise ValueError(
                "the json-schema evaluator needs the jsonschema package: pip install jsonschema"
            ) from None
        validator = jsonschema.validators.validator_for(schema)
        try:
            validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"json-schema evaluator: invalid schema: {exc.message}") from None
        self._validator = validator(schema)

    def __call__(self, call: ChampionCall, result: ChallengerResult) -> bool:
        if result.output_text is None:
            return False
        try:
            document = json.loads(result.output_text)
        except ValueError:
            return False
        return bool(self._validator.is_valid(document))


def resolve_evaluator(spec: str) -> Evaluator | None:
    """The evaluator named ``spec`` (see the module's documentation); None for ``feedback``."""
    kind, _, argument = spec.partition(":")
    if spec == "feedback":
        return None
    if kind == "exact":
        return ExactMatch(argument or "expected")
    if kind == "regex":
        return RegexMatch(argument)
    if kind == "json-schema":
        path = Path(argument)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"json-schema evaluator: cannot read {path}: {exc}") from None
        return JsonSchemaCheck(schema)
    return load_callable(spec)
