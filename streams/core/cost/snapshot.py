"""Build the price snapshot shipped in ``data/``: ``python -m slowleak.streams.core.cost.snapshot
SOURCE [--version V]`` reads LiteLLM's ``model_prices_and_context_window.json`` and writes
``data/model_prices.json``, trimmed to the models priced per token and the fields
:class:`~slowleak.streams.core.cost.prices.PriceBook` reads, with a ``_snapshot`` header entry
that names the source and its version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["FIELDS", "MODES", "SNAPSHOT", "trim"]

#: The fields a price entry keeps (USD per token, or per second for self-hosted models).
FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "output_cost_per_reasoning_token",
    "input_cost_per_second",
    "output_cost_per_second",
)
#: Entries of these modes are kept: the calls an LLM app makes and slowleak sees.
MODES = frozenset({"chat", "completion", "responses", "embedding"})
SNAPSHOT = Path(__file__).parent / "data" / "model_prices.json"


def trim(prices: dict[str, Any], *, source: str, version: str) -> dict[str, Any]:
    """The entries of ``prices`` worth shipping, each with only :data:`FIELDS`, sorted by key."""
    out: dict[str, Any] = {"_snapshot": {"source": source, "version": version}}
    for key in sorted(prices):
        entry = prices[key]
        if key == "sample_spec" or not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        kept = {f: entry[f] for f in FIELDS if isinstance(entry.get(f), int | float)}
        if "input_cost_per_token" in kept or "output_cost_per_token" in kept:
            out[key] = kept
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="LiteLLM's model_prices_and_context_window.json")
    parser.add_argument("--version", required=True, help="the LiteLLM release it comes from")
    parser.add_argument("--out", type=Path, default=SNAPSHOT)
    args = parser.parse_args(argv)
    trimmed = trim(
        json.loads(args.source.read_text()),
        source="LiteLLM model_prices_and_context_window.json",
        version=args.version,
    )
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in trimmed.items()]
    args.out.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {args.out}: {len(trimmed) - 1} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
