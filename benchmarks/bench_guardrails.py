"""Guardrail detectors against the public sets in ``../shared/data/guardrails``, and their speed.

    .venv/bin/python benchmarks/bench_guardrails.py [--data ../shared/data/guardrails] [--seed 0]

Prints, per set, precision / recall / false-positive rate at the one operating point shipped in
the package (chosen on ``dev`` by ``scripts/train_guardrails.py``; nothing here is tuned), overall
and with near-duplicates of ``dev`` rows removed. Near-duplicate: the two texts, lower-cased with
everything but letters and digits turned into single spaces, have word-3-shingle sets (the whole
text for shorter ones) with Jaccard similarity >= 0.8.

Sets: ``holdout/`` for injection, PII (small set), configured secrets (Tensor Trust); ``dev/``
for Presidio (only the templates with odd ``template_id``: the even ones were used to write the
patterns), Nosey Parker (the score threshold is chosen per fold on the other rules' rows, 5 folds
grouped by rule) and for the prose false-positive rate of ``secret_leak``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from slowleak.models import InteractionEvent
from slowleak.streams.core.guardrails import AppProfile, Scanner
from slowleak.streams.core.guardrails.configured import find_configured_leaks
from slowleak.streams.core.guardrails.injection import InjectionModel
from slowleak.streams.core.guardrails.pii import find_pii
from slowleak.streams.core.guardrails.secrets import find_secrets

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "guardrails"
JACCARD = 0.8
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip_address",
}

csv.field_size_limit(10**9)


# --- loading ------------------------------------------------------------------------------
def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _dev_benign_prompts(data: Path) -> list[str]:
    """The benign prompts of dev (deepset and jailbreak-classification): ordinary prose."""
    prose = [
        r["text"]
        for r in read_csv(data / "dev" / "deepset_prompt_injections_train.csv")
        if r["label"] == "0"
    ]
    prose += [
        r["prompt"]
        for r in read_csv(data / "dev" / "jailbreak_classification_train_balanced.csv")
        if r["type"] == "benign"
    ]
    return prose


def read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --- near-duplicates ----------------------------------------------------------------------
_NON_ALNUM = re.compile(r"[\W_]+")


def shingles(text: str) -> frozenset[str]:
    toks = _NON_ALNUM.sub(" ", text.lower()).split()
    if len(toks) < 3:
        return frozenset([" ".join(toks)])
    return frozenset(" ".join(toks[i : i + 3]) for i in range(len(toks) - 2))


class DevIndex:
    """Answers "is this text a near-duplicate of a dev row" through an inverted shingle index."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.sets = [shingles(t) for t in texts]
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(self.sets):
            for sh in s:
                self.index[sh].append(i)

    def is_near_duplicate(self, text: str) -> bool:
        s = shingles(text)
        shared: Counter[int] = Counter()
        for sh in s:
            shared.update(self.index.get(sh, ()))
        for i, inter in shared.items():
            if inter / (len(s) + len(self.sets[i]) - inter) >= JACCARD:
                return True
        return False


# --- metrics ------------------------------------------------------------------------------
def prf(pred: list[bool], gold: list[bool]) -> tuple[float, float, float, int]:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    neg = sum(not g for g in gold)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    fpr = fp / neg if neg else float("nan")
    return precision, recall, fpr, len(gold)


def line(name: str, pred: list[bool], gold: list[bool], bar: str) -> str:
    p, r, fpr, n = prf(pred, gold)
    return f"  {name:<44} n={n:<6} P={p:.4f} R={r:.4f} FPR={fpr:.4f}   bar: {bar}"


# --- sections -----------------------------------------------------------------------------
def bench_injection(data: Path) -> None:
    model = InjectionModel.load()
    print(
        f"\n== prompt_injection (model {model.version}, threshold {model.threshold}, "
        f"norm {model.norm})"
    )
    dev_texts = [r["text"] for r in read_csv(data / "dev" / "deepset_prompt_injections_train.csv")]
    dev_texts += [
        r["prompt"] for r in read_csv(data / "dev" / "jailbreak_classification_train_balanced.csv")
    ]
    dev = DevIndex(dev_texts)
    hold = data / "holdout"
    sets: list[tuple[str, list[tuple[str, bool]], str, str]] = [
        (
            "jailbreak-classification test",
            [
                (r["prompt"], r["type"] == "jailbreak")
                for r in read_csv(hold / "jailbreak_classification_test_balanced.csv")
            ],
            "P>=0.98 R>=0.97",
            "P>=0.97 R>=0.95",
        ),
        (
            "in-the-wild jailbreaks (Shen et al.)",
            [
                (r["prompt"], r["jailbreak"] == "True")
                for r in read_csv(hold / "jailbreak_prompts_2023_12_25.csv")
            ],
            "R>=0.95",
            "R>=0.92",
        ),
        (
            "NotInject (benign hard negatives)",
            [
                (str(r["prompt"]), bool(r["label"]))
                for r in read_jsonl(hold / "NotInject_benign_hard_negatives.jsonl")
            ],
            "FPR<=0.05 (stretch 0.03)",
            "FPR<=0.05",
        ),
        (
            "InjecGuard validation",
            [
                (str(r["prompt"]), bool(r["label"]))
                for r in read_jsonl(hold / "injecguard_valid.jsonl")
            ],
            "P>=0.85 R>=0.70",
            "P>=0.85 R>=0.70",
        ),
        (
            "deepset test",
            [
                (r["text"], r["label"] == "1")
                for r in read_csv(hold / "deepset_prompt_injections_test.csv")
            ],
            "P>=0.92 R>=0.85",
            "P>=0.92 R>=0.85",
        ),
    ]
    for name, rows, bar, bar_dedup in sets:
        scores = [model.score(text) for text, _ in rows]
        pred = [s >= model.threshold for s in scores]
        gold = [g for _, g in rows]
        dup = [dev.is_near_duplicate(text) for text, _ in rows]
        keep = [i for i, d in enumerate(dup) if not d]
        print(f" {name}: {sum(dup)} of {len(rows)} rows are near-duplicates of dev")
        print(line("overall", pred, gold, bar))
        print(
            line(
                "dev near-duplicates removed",
                [pred[i] for i in keep],
                [gold[i] for i in keep],
                bar_dedup,
            )
        )


def bench_pii(data: Path) -> None:
    print("\n== pii_leak")
    rows = json.loads((data / "holdout" / "pii_syn_nano_en.json").read_text(encoding="utf-8"))
    pred = [bool(find_pii(str(r["text"]))) for r in rows]
    gold = [bool(r["has_pii"]) for r in rows]
    p, r, _fpr, n = prf(pred, gold)
    fp_rows = sum(p_ and not g for p_, g in zip(pred, gold, strict=True))
    print(
        f" PII holdout (row flagged if any PII found): n={n} P={p:.4f} R={r:.4f} "
        f"PII-free rows flagged={fp_rows} of {sum(not g for g in gold)}   bar: R>=0.95, <=1 flagged"
    )
    covered = {
        "EMAIL": "email",
        "PHONE": "phone",
        "CREDIT_CARD": "card",
        "IBAN": "iban",
        "SSN": "ssn",
    }
    tp = fn = 0
    for row in rows:
        text = str(row["text"])
        found = {text[m.start : m.end] for m in find_pii(text)}
        for ent in row["NER"]:
            if ent["label"] in covered:
                hit = any(
                    str(ent.get("entity", "")) in f or f in str(ent.get("entity", ""))
                    for f in found
                )
                tp += hit
                fn += not hit
    print(
        f" PII holdout, entities of the types detected ({', '.join(covered)}): "
        f"recall {tp / max(1, tp + fn):.4f} ({tp}/{tp + fn})"
    )
    labels = Counter(e["label"] for row in rows for e in row["NER"])
    uncovered = sum(v for k, v in labels.items() if k not in covered)
    print(
        f" PII holdout entities of other types (PERSON, ORG, IDs...): {uncovered} of "
        f"{sum(labels.values())}"
    )

    # Ordinary prose: the benign dev prompts (requests, role-plays, articles). Names in them are
    # names (often of fictional characters), so ``person`` is counted apart from the rest.
    prose = _dev_benign_prompts(data)
    kinds_per_text = [{m.kind for m in find_pii(t)} for t in prose]
    other = sum(bool(k - {"person"}) for k in kinds_per_text)
    named = sum("person" in k for k in kinds_per_text)
    by_kind = Counter(kind for k in kinds_per_text for kind in k - {"person"})
    print(
        f" ordinary prose (dev benign prompts, n={len(prose)}): flagged with a kind other than "
        f"person {other} ({other / len(prose):.2%}) {dict(by_kind)}; with a person {named} "
        f"({named / len(prose):.2%})   bar: ~0 other than person"
    )

    presidio = read_jsonl(data / "dev" / "presidio_synth_dataset_v2.jsonl")
    six = set(PRESIDIO_TYPES.values())
    for split, parity in (
        ("evaluation templates (odd template_id)", 1),
        ("tuning templates (even)", 0),
    ):
        person = [0, 0, 0]  # exact matches, predicted, gold
        tp_c: Counter[str] = Counter()
        fp_c: Counter[str] = Counter()
        fn_c: Counter[str] = Counter()
        for row in presidio:
            if int(row["template_id"]) % 2 != parity:  # type: ignore[call-overload]
                continue
            spans = row["spans"]
            assert isinstance(spans, list)
            gold = {
                (PRESIDIO_TYPES[s["entity_type"]], s["start_position"], s["end_position"])
                for s in spans
                if s["entity_type"] in PRESIDIO_TYPES
            }
            matches = find_pii(str(row["full_text"]))
            found = {(m.kind, m.start, m.end) for m in matches if m.kind in six}
            gold_person = {
                (s["start_position"], s["end_position"])
                for s in spans
                if s["entity_type"] == "PERSON"
            }
            found_person = {(m.start, m.end) for m in matches if m.kind == "person"}
            person[0] += len(gold_person & found_person)
            person[1] += len(found_person)
            person[2] += len(gold_person)
            for f in found:
                (tp_c if f in gold else fp_c)[f[0]] += 1
            for g in gold - found:
                fn_c[g[0]] += 1
        print(f" Presidio synth, {split}, exact span match   bar: P>=0.99 R>=0.97 each")
        for kind in PRESIDIO_TYPES.values():
            t, f_, n_ = tp_c[kind], fp_c[kind], fn_c[kind]
            print(
                f"  {kind:<12} gold={t + n_:<4} P={t / max(1, t + f_):.4f} "
                f"R={t / max(1, t + n_):.4f}"
            )
        t, f_, n_ = sum(tp_c.values()), sum(fp_c.values()), sum(fn_c.values())
        print(
            f"  {'all six':<12} gold={t + n_:<4} P={t / max(1, t + f_):.4f} "
            f"R={t / max(1, t + n_):.4f}"
        )
        tp_p, pred_p, gold_p = person
        prec, rec = tp_p / max(1, pred_p), tp_p / max(1, gold_p)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        print(f"  PERSON (exact span; cue-based heuristic): P={prec:.4f} R={rec:.4f} F1={f1:.4f}")


def bench_secrets(data: Path, seed: int) -> None:
    print("\n== secret_leak")
    rows = read_jsonl(data / "dev" / "noseyparker_rule_examples.jsonl")
    positives = {str(r["text"]).strip() for r in rows if r["label"]}

    def scored(text: str) -> float:
        return max((m.score for m in find_secrets(text, min_score=0.0)), default=0.0)

    score = [scored(str(r["text"])) for r in rows]
    gold = [bool(r["label"]) for r in rows]
    print(
        line(
            "Nosey Parker, all rows as labelled", [s >= 0.5 for s in score], gold, "P>=0.90 R>=0.90"
        )
    )
    # A rule's negative example is often another rule's positive (an xoxp token is a negative
    # for the bot-token rule): those are secrets, not false positives.
    clean = [i for i, r in enumerate(rows) if r["label"] or str(r["text"]).strip() not in positives]
    print(
        line(
            "  negatives that are no other rule's positive",
            [score[i] >= 0.5 for i in clean],
            [gold[i] for i in clean],
            "",
        )
    )
    secret_cat = [
        i
        for i in clean
        if not rows[i]["label"] or "secret" in (rows[i]["categories"] or [])  # type: ignore[operator]
    ]
    print(
        line(
            "  and positives in category 'secret' only",
            [score[i] >= 0.5 for i in secret_cat],
            [gold[i] for i in secret_cat],
            "",
        )
    )
    # Grouped cross-validation: the score threshold is the one parameter; choose it on four
    # folds of rules, apply it to the fifth.
    rules = sorted({str(r["rule_id"]) for r in rows})
    rng = random.Random(seed)
    rng.shuffle(rules)
    fold_of = {rule: k % 5 for k, rule in enumerate(rules)}
    grid = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0)
    pred_cv = [False] * len(rows)
    chosen = []
    for k in range(5):
        train = [i for i in clean if fold_of[str(rows[i]["rule_id"])] != k]

        def f1(t: float, train: list[int] = train) -> float:
            p, r, _, _ = prf([score[i] >= t for i in train], [gold[i] for i in train])
            return 0.0 if p != p or r != r or p + r == 0 else 2 * p * r / (p + r)

        t = max(grid, key=f1)
        chosen.append(t)
        for i in clean:
            if fold_of[str(rows[i]["rule_id"])] == k:
                pred_cv[i] = score[i] >= t
    print(
        line(
            f"  5-fold CV grouped by rule (seed {seed}, thresholds {chosen})",
            [pred_cv[i] for i in clean],
            [gold[i] for i in clean],
            "P>=0.90 R>=0.90",
        )
    )

    def cats(i: int) -> list[str]:
        return list(rows[i]["categories"] or [])  # type: ignore[call-overload]

    # Provider key formats: API credentials with a recognisable format. Not "identifier" rules
    # (bucket names, ARNs: not secrets), not "fuzzy" or generic ones.
    provider = [
        i
        for i, r in enumerate(rows)
        if r["label"]
        and "api" in cats(i)
        and not {"fuzzy", "identifier"} & set(cats(i))
        and not str(r["rule_id"]).startswith("np.generic")
    ]
    hit = sum(score[i] >= 0.5 for i in provider)
    print(
        f"  provider key formats (category api; not identifier, fuzzy, generic): recall "
        f"{hit / len(provider):.4f} ({hit}/{len(provider)})   bar: R>=0.97"
    )

    prose = _dev_benign_prompts(data)
    prose += [
        str(r["full_text"]) for r in read_jsonl(data / "dev" / "presidio_synth_dataset_v2.jsonl")
    ]
    flagged = sum(bool(find_secrets(t)) for t in prose)
    print(
        f"  ordinary prose flagged (dev benign prompts + Presidio sentences): "
        f"{flagged}/{len(prose)} = {flagged / len(prose):.4%}   bar: <=0.5%"
    )
    # The same prose as answers of an app with a configured secret: three made-up access codes
    # per text (words, phrases, numbers, mixed), none of them in these texts on purpose.
    codes = (
        *("avocado", "juxtaposition", "specter", "quagmire", "kumquat", "platypus", "marmalade"),
        *("lighthouse", "quixotic", "obsidian", "chartreuse", "zucchini", "iridescent", "walrus"),
        *("nebula", "sunflower"),
        *("open sesame", "blue moon rising", "paper tiger", "velvet thunder", "silent night"),
        *("tram=32", "hunter2", "wombat42", "gr8password", "Kx9mP2q", "7391", "8675309"),
        "Zebra-Crossing-77",
    )
    code_rng = random.Random(seed)
    hows_prose: Counter[str] = Counter()
    for t in prose:
        for code in code_rng.sample(codes, 3):
            hows_prose.update(leak.how for leak in find_configured_leaks(t, secrets=(code,)))
    pairs = 3 * len(prose)
    print(
        f"  configured secret on the same prose ({len(codes)} made-up codes, 3 per text): "
        f"{sum(hows_prose.values())}/{pairs} = {sum(hows_prose.values()) / pairs:.4%} "
        f"flagged {dict(hows_prose)}"
    )

    tt = read_jsonl(data / "holdout" / "prompt_extraction_detection.jsonl")
    pred = [
        bool(find_configured_leaks(str(r["llm_output"]), secrets=(str(r["access_code"]),)))
        for r in tt
    ]
    gold_tt = [bool(r["is_prompt_extraction"]) for r in tt]
    exact = [str(r["access_code"]).lower() in str(r["llm_output"]).lower() for r in tt]
    print(
        line("Tensor Trust prompt extraction (configured secret)", pred, gold_tt, "P>=0.95 R>=0.75")
    )
    print(line("  exact case-insensitive substring, for reference", exact, gold_tt, ""))
    hows = Counter(
        leak.how
        for r in tt
        for leak in find_configured_leaks(str(r["llm_output"]), secrets=(str(r["access_code"]),))
    )
    print(f"  how the leaks were found: {dict(hows)}")


def bench_speed(data: Path, seed: int) -> None:
    print(f"\n== speed (seed {seed}): one core")
    rng = random.Random(seed)
    jailbreak = read_csv(data / "dev" / "jailbreak_classification_train_balanced.csv")
    presidio = [
        str(r["full_text"]) for r in read_jsonl(data / "dev" / "presidio_synth_dataset_v2.jsonl")
    ]
    deepset = read_csv(data / "dev" / "deepset_prompt_injections_train.csv")
    # Dense: half jailbreak prompts, half Presidio's PII sentences (every detector busy).
    dense = [r["prompt"] for r in jailbreak] + presidio
    # Ordinary: benign requests in, benign role-play and request texts out.
    ordinary = [r["prompt"] for r in jailbreak if r["type"] == "benign"]
    ordinary += [r["text"] for r in deepset if r["label"] == "0"]

    def text(pool: list[str], size: int) -> str:
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(pool))
        return " ".join(parts)[:size]

    def events(pool: list[str], size: int) -> list[InteractionEvent]:
        return [
            InteractionEvent(
                event_id=f"e{i}",
                ts=datetime(2026, 1, 1, tzinfo=UTC),
                app="bot",
                model="m",
                input_tokens=1,
                output_tokens=1,
                latency_ms=1.0,
                status="ok",
                input_text=text(pool, size),
                output_text=text(pool, size),
                intent="order",
            )
            for i in range(2000)
        ]

    profile = AppProfile(
        description="Takes food orders: menu, prices, delivery times",
        allowed_intents=("order",),
        code_expected=False,
        secrets=("tram=32",),
        system_prompt="You are the order bot of Pizza Rapido. " * 5,
    )
    # The bar is for "events with 1 KB of text each": 1 KB in each field is the stricter
    # reading (the figures quoted against the bar), 1 KB in all the other.
    sizes = ((1024, "1 KB input + 1 KB output"), (512, "512 B input + 512 B output"))
    pools = (("dense (jailbreaks + PII sentences)", dense), ("ordinary", ordinary))
    for size, described in sizes:
        print(f"  events with {described}:")
        for traffic, pool in pools:
            batch = events(pool, size)
            for label, scanner in (
                ("no profile", Scanner()),
                ("with a profile (secret, system prompt, off-task)", Scanner({"bot": profile})),
            ):
                for e in batch[:100]:
                    scanner.scan(e)
                start, cpu_start = time.perf_counter(), time.process_time()
                findings = sum(len(scanner.scan(e)) for e in batch)
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - cpu_start
                print(
                    f"    {traffic}, {label}: {len(batch) / cpu:,.0f} events per CPU-second, "
                    f"{len(batch) / elapsed:,.0f} events/s wall ({findings} findings)"
                    "   bar: >=2,000/s"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("injection", "pii", "secrets", "speed"))
    args = parser.parse_args()
    if not (args.data / "dev").is_dir():
        sys.exit(f"no data at {args.data}: pass --data pointing at shared/data/guardrails")
    print(f"data={args.data} seed={args.seed} near-duplicate: word-3-shingle Jaccard >= {JACCARD}")
    if args.only in (None, "injection"):
        bench_injection(args.data)
    if args.only in (None, "pii"):
        bench_pii(args.data)
    if args.only in (None, "secrets"):
        bench_secrets(args.data, args.seed)
    if args.only in (None, "speed"):
        bench_speed(args.data, args.seed)


if __name__ == "__main__":
    main()
