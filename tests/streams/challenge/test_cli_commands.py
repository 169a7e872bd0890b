"""``slowleak challenge`` and ``slowleak compare``: options and the errors a person sees."""

from __future__ import annotations

from click.testing import CliRunner

from slowleak.streams.cli import main


def test_challenge_needs_a_spend_cap() -> None:
    result = CliRunner().invoke(
        main, ["challenge", "--app", "bot", "--name", "v15", "--challenger", "fake"]
    )
    assert result.exit_code == 2 and "Missing option '--spend-cap'" in result.output


def test_challenge_names_a_bad_challenger_before_touching_anything() -> None:
    result = CliRunner().invoke(
        main,
        ["challenge", "--app", "bot", "--name", "v15", "--challenger", "mypkg.call_v15",
         "--spend-cap", "1"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "name a callable as module:function, e.g. mypkg.bots:call_v15" in result.output


def test_challenge_names_a_bad_evaluator() -> None:
    result = CliRunner().invoke(
        main,
        ["challenge", "--app", "bot", "--name", "v15", "--challenger", "fake", "--spend-cap", "1",
         "--evaluator", "regex:("],
    )  # fmt: skip
    assert result.exit_code == 1 and "regex evaluator: '(' is not a valid pattern" in result.output


def test_compare_help_names_the_query() -> None:
    result = CliRunner().invoke(main, ["compare", "--help"])
    assert result.exit_code == 0 and "challenger_comparison.sql" in result.output
