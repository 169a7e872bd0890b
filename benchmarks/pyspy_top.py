"""Top frames of a py-spy profile in raw (collapsed stack) format, per thread.

    py-spy record --pid PID --format raw --threads [--idle] -o profile.txt
    .venv/bin/python benchmarks/pyspy_top.py profile.txt [--thread MainThread] [--top 25]

Prints samples per thread, then the frames that hold the most samples: "self" (the frame was
on top of the stack) and "inclusive" (anywhere on the stack, counted once per sample).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_LINENO = re.compile(r":\d+\)$")


def parse(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread, frames root first, samples) per line."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        thread, *frames = match["stack"].split(";")
        out.append((thread, frames, int(match["count"])))
    return out


def frame_name(frame: str, *, lines: bool) -> str:
    return frame if lines else _LINENO.sub(")", frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--lines", action="store_true", help="keep line numbers in frames")
    args = parser.parse_args(argv)

    stacks = parse(args.profile)
    threads: Counter[str] = Counter()
    for thread, _, count in stacks:
        threads[thread] += count
    total = sum(threads.values())
    print(f"{total} samples")
    for thread, count in threads.most_common():
        print(f"  {count:>7} {100 * count / total:5.1f}%  {thread}")
    if args.thread:
        stacks = [s for s in stacks if args.thread in s[0]]
    selected = sum(c for _, _, c in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for _, frames, count in stacks:
        names = [frame_name(f, lines=args.lines) for f in frames]
        if names:
            own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    scope = f"threads matching {args.thread!r}" if args.thread else "all threads"
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\ntop {args.top} frames by {title} samples, {scope} ({selected} samples)")
        for name, count in counter.most_common(args.top):
            print(f"  {100 * count / selected:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
