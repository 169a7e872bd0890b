"""The ``off_task`` code check: program code in answers, and prose that is not code.

    .venv/bin/python benchmarks/bench_off_task.py [--seed 0] [--per-cell 150]

Code: snippets of 3, 5 and 10 lines cut at random from source files on this machine (the Python
standard library, C headers, Node.js packages, Perl modules, shell scripts; a language whose
files are absent is skipped and said so), each set in an answer the way a chatbot writes one
(with or without a Markdown fence, with or without a sentence around it). The files of each
language are split in two by a hash of their path: the rules were written looking at the
snippets of the "tuning" half only; the "evaluation" half was scored once they were fixed.
Not every snippet is code (a license header, a docstring, a table of data are in source files
too), so no recall reaches 1.

Prose: the benign prompts of the dev sets, Presidio's sentences five at a time, and the Debian
copyright and changelog files of this machine (structured prose with paths, versions and
parentheses). The rules were tuned while looking at the false positives of these sets: their
rates are tuning figures, not held out.

A text is flagged as the detector flags it: ``min_code_cues`` (3) lines that look like code.
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import hashlib
import json
import random
import sysconfig
from collections.abc import Callable
from pathlib import Path

from slowleak.streams.core.guardrails.off_task import code_cues

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "guardrails" / "dev"
MIN_CODE_CUES = 3
LINES = (3, 5, 10)
FRAMES = (
    "Sure! Here is the {lang} code:\n\n{code}\n\nLet me know if you need anything else.",
    "{code}",
    "Of course. ```{lang}\n{code}\n```\nThis should do it.",
    "Here you go:\n```\n{code}\n```",
)


def _sources() -> dict[str, list[str]]:
    stdlib = sysconfig.get_paths()["stdlib"]
    found = {
        "python": glob.glob(f"{stdlib}/*.py") + glob.glob(f"{stdlib}/*/*.py"),
        "c": glob.glob("/usr/include/*.h"),
        "js": [
            p
            for p in glob.glob("/usr/lib/node_modules/**/*.js", recursive=True)
            if ".min." not in p
        ],
        "perl": glob.glob("/usr/share/perl/*/**/*.pm", recursive=True),
        "shell": glob.glob("/usr/share/**/*.sh", recursive=True) + glob.glob("/etc/init.d/*"),
    }
    return {lang: sorted(paths) for lang, paths in found.items()}


def _half(path: str) -> int:
    """0 for the tuning half of the files, 1 for the evaluation half."""
    return int(hashlib.md5(path.encode()).hexdigest(), 16) % 2


def _snippets(paths: list[str], lines: int, n: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    for _ in range(n * 30):
        if len(out) == n or not paths:
            break
        try:
            text = Path(rng.choice(paths)).read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        rows = text.splitlines()
        if len(rows) < lines + 5:
            continue
        at = rng.randrange(len(rows) - lines)
        block = rows[at : at + lines]
        if sum(bool(r.strip()) for r in block) >= 0.7 * lines:  # mostly non-empty lines
            out.append("\n".join(block))
    return out


def _prose(rng: random.Random) -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    if DATA.is_dir():
        with (DATA / "jailbreak_classification_train_balanced.csv").open(encoding="utf-8") as f:
            benign = [r["prompt"] for r in csv.DictReader(f) if r["type"] == "benign"]
        with (DATA / "deepset_prompt_injections_train.csv").open(encoding="utf-8") as f:
            benign += [r["text"] for r in csv.DictReader(f) if r["label"] == "0"]
        sets["dev benign prompts"] = benign
        with (DATA / "presidio_synth_dataset_v2.jsonl").open(encoding="utf-8") as f:
            sentences = [json.loads(line)["full_text"] for line in f]
        sets["Presidio sentences, five at a time"] = [
            "\n".join(rng.sample(sentences, 5)) for _ in range(500)
        ]
    else:
        print(f"  ({DATA} absent: no dev prose)")
    docs = sorted(glob.glob("/usr/share/doc/*/copyright"))
    sets["Debian copyright files"] = [
        Path(p).read_text(encoding="utf-8", errors="ignore")[:3000] for p in docs
    ]
    logs = sorted(glob.glob("/usr/share/doc/*/changelog.Debian.gz"))[:500]
    sets["Debian changelogs"] = [
        gzip.decompress(Path(p).read_bytes()).decode("utf-8", "ignore")[:3000] for p in logs
    ]
    return {name: texts for name, texts in sets.items() if texts}


def flagged(text: str, cues: Callable[[str], list[tuple[int, int]]] = code_cues) -> bool:
    return len(cues(text)) >= MIN_CODE_CUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-cell", type=int, default=150, help="snippets per language and size")
    args = parser.parse_args()
    sources = _sources()
    print(f"off_task code check, seed {args.seed}, flagged at {MIN_CODE_CUES} code lines or more")
    print("  source files: " + ", ".join(f"{k} {len(v)}" for k, v in sources.items()))
    for half, name in ((0, "tuning"), (1, "evaluation")):
        rng = random.Random(args.seed)
        by_size: dict[int, list[bool]] = {k: [] for k in LINES}
        by_lang: dict[str, list[bool]] = {}
        for lang, paths in sources.items():
            mine = [p for p in paths if _half(p) == half]
            if not mine:
                print(f"  {lang}: no source files here, skipped")
                continue
            for lines in LINES:
                for snippet in _snippets(mine, lines, args.per_cell, rng):
                    hit = flagged(rng.choice(FRAMES).format(lang=lang, code=snippet))
                    by_size[lines].append(hit)
                    by_lang.setdefault(lang, []).append(hit)
        sizes = "  ".join(
            f"{k} lines {sum(v) / len(v):.3f} (n={len(v)})" for k, v in by_size.items() if v
        )
        langs = "  ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in by_lang.items())
        print(f" code in answers, {name} half of the files: recall by snippet size: {sizes}")
        print(f"   by language (all sizes): {langs}")
    rng = random.Random(args.seed)
    for name, texts in _prose(rng).items():
        hits = sum(map(flagged, texts))
        print(f" prose, {name}: {hits} of {len(texts)} flagged ({hits / len(texts):.2%})")


if __name__ == "__main__":
    main()
