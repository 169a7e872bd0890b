"""The worker's per-event text path: the row with masked text (the default policy) and the
guardrail scan, with the PII and credential patterns found once per text (as the worker does)
against once for masking and again for the scan (the cache emptied in between).

    .venv/bin/python benchmarks/bench_text_path.py [--events 1000] [--repeats 5] [--seed 0]

Run for an app without a profile and for one with configured secrets and a system prompt.
Events carry ~1 KB of input (prompts of the dev jailbreak-classification set, or generated text
when the data is absent) and ~1 KB of output with an e-mail address and a phone number. Both
variants run alternately in this process; medians of CPU time per event are printed.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from slowleak.models import InteractionEvent
from slowleak.streams.core.guardrails import mask
from slowleak.streams.core.guardrails.profile import AppProfile
from slowleak.streams.core.guardrails.scanner import Scanner
from slowleak.streams.core.rows import event_row

DEV = Path(__file__).resolve().parents[2] / "shared/data/guardrails/dev"
PROMPTS = DEV / "jailbreak_classification_train_balanced.csv"
TEXT_BYTES = 1000
PROFILE = {
    "shop": AppProfile(
        secrets=("PZ-CANARY-7731", "tangerine42"),
        system_prompt="You take orders for Tony's Pizza and nothing else. Never reveal the code.",
    )
}


def _prompts(rng: random.Random) -> list[str]:
    if PROMPTS.exists():
        with PROMPTS.open(newline="", encoding="utf-8") as f:
            return [row["prompt"] for row in csv.DictReader(f) if row.get("prompt")]
    words = ["order", "pizza", "large", "pepperoni", "delivery", "address", "please", "thanks"]
    return [" ".join(rng.choice(words) for _ in range(200)) for _ in range(200)]


def _events(n: int, seed: int) -> list[InteractionEvent]:
    rng = random.Random(seed)
    prompts = _prompts(rng)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        question = (rng.choice(prompts) + " ") * 8
        answer = "Sure. Reach me at jo.doe@example.org or +1 415 555 0100. " + question
        event = InteractionEvent(
            event_id=f"e{i}", ts=ts, app="shop", model="m", input_tokens=250,
            output_tokens=250, latency_ms=900.0, status="ok",
            input_text=question[:TEXT_BYTES], output_text=answer[:TEXT_BYTES],
        )  # fmt: skip
        out.append(event)
    return out


def _run(
    events: list[InteractionEvent], scanner: Scanner, secrets: tuple[str, ...], *, shared: bool
) -> float:
    """Events per CPU-second through row building (masked) and the scan."""
    started = time.process_time()
    for event in events:
        event_row(event, partition=0, offset=0, text="masked", secrets=secrets)
        if not shared:
            mask._recent = ()  # what masking found is forgotten: the scan finds it again
        scanner.scan(event)
    return len(events) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    events = _events(args.events, args.seed)
    print(
        f"bench_text_path: {args.events:,} events of ~1 KB in + ~1 KB out, seed {args.seed}, "
        f"median of {args.repeats}, events per CPU-second"
    )
    for label, profiles in (("no app profile", {}), ("app profile with secrets", PROFILE)):
        scanner = Scanner(profiles)
        secrets = profiles["shop"].secrets if profiles else ()
        _run(events[:100], scanner, secrets, shared=True)  # warm-up
        figures: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for shared in (False, True):
                figures[shared].append(_run(events, scanner, secrets, shared=shared))
        before, after = (statistics.median(figures[s]) for s in (False, True))
        print(
            f"  {label:<26} found twice per text {before:>7,.0f}   once {after:>7,.0f}"
            f"   ratio {after / before:.2f}"
        )


if __name__ == "__main__":
    main()
