"""``prompt_injection`` on technical prose: sentences of this machine's manual pages that hold a
word attacks use too ("ignore", "override", "instruction", "forget", "previous"...).

    .venv/bin/python benchmarks/bench_injection_docs.py [--seed 0] [--show 10]

An app whose users paste documentation sends such text all day; none of it is an attack. The
sentences are taken from ``/usr/share/man/man1`` and ``man8`` (troff markup dropped), 40 to 300
characters and seven words or more, near-duplicates removed (same first 60 letters and digits);
the share flagged at the shipped operating point is printed, with the highest-scoring ones.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import random
import re

from slowleak.streams.core.guardrails.injection import InjectionModel

TRIGGER = re.compile(
    r"\b(?:ignor\w*|disregard\w*|bypass\w*|overrid\w*|forget\w*|pretend\w*|act as|jailbreak\w*"
    r"|instructions?|system prompt|unrestricted|no restrictions|previous|reveal\w*"
    r"|developer mode)\b",
    re.IGNORECASE,
)
_TROFF = re.compile(r"\\f[BIRP]|\\f\(..|\\\(..|\\&|\\e|\\[a-z]")


def sentences() -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    paths = sorted(glob.glob("/usr/share/man/man1/*.gz") + glob.glob("/usr/share/man/man8/*.gz"))
    for path in paths:
        try:
            with open(path, "rb") as f:
                page = gzip.decompress(f.read()).decode("utf-8", "ignore")
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        text = " ".join(line for line in page.splitlines() if not line.startswith((".", "'")))
        text = _TROFF.sub("", text.replace("\\-", "-"))
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            sentence = sentence.strip()
            if not 40 <= len(sentence) <= 300 or sentence.count(" ") < 6:
                continue
            if TRIGGER.search(sentence) is None:
                continue
            key = re.sub(r"\W+", " ", sentence.lower())[:60]
            if key not in seen:
                seen.add(key)
                out.append(sentence)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0, help="order of the examples shown")
    parser.add_argument("--show", type=int, default=10)
    args = parser.parse_args()
    texts = sentences()
    if not texts:
        print("no manual pages under /usr/share/man: nothing to measure")
        return
    model = InjectionModel.load()
    scored = [(model.score(t), t) for t in texts]
    flagged = [(p, t) for p, t in scored if p >= model.threshold]
    print(
        f"prompt_injection on manual-page sentences with a trigger word ({model.version}, "
        f"threshold {model.threshold:.3f}): {len(flagged)} of {len(texts)} flagged "
        f"({len(flagged) / len(texts):.2%})"
    )
    random.Random(args.seed).shuffle(flagged)
    for p, t in sorted(flagged[: args.show], reverse=True):
        print(f"  {p:.3f}  {t[:140]}")


if __name__ == "__main__":
    main()
