"""Checks against the public ``dev`` sets in ``../shared/data/guardrails`` (skipped without them).

Only ``dev`` rows: the holdout sets are for ``benchmarks/bench_guardrails.py``, never for tests.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from slowleak.streams.core.guardrails.injection import InjectionModel
from slowleak.streams.core.guardrails.pii import find_pii
from slowleak.streams.core.guardrails.secrets import find_secrets

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT.parent / "shared" / "data" / "guardrails" / "dev"

pytestmark = pytest.mark.skipif(
    not DEV.is_dir(), reason=f"no dev data at {DEV}: these checks need ../shared/data/guardrails"
)


def _jsonl(name: str) -> list[dict[str, object]]:
    with (DEV / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_presidio_tuning_templates_spans() -> None:
    kinds = {"EMAIL_ADDRESS": "email", "CREDIT_CARD": "card", "IBAN_CODE": "iban", "US_SSN": "ssn"}
    tp = fp = fn = 0
    for row in _jsonl("presidio_synth_dataset_v2.jsonl"):
        if int(str(row["template_id"])) % 2:
            continue
        spans = row["spans"]
        assert isinstance(spans, list)
        gold = {
            (kinds[s["entity_type"]], s["start_position"], s["end_position"])
            for s in spans
            if s["entity_type"] in kinds
        }
        found = {
            (m.kind, m.start, m.end)
            for m in find_pii(str(row["full_text"]))
            if m.kind in kinds.values()
        }
        tp, fp, fn = tp + len(gold & found), fp + len(found - gold), fn + len(gold - found)
    assert tp / (tp + fp) >= 0.99
    assert tp / (tp + fn) >= 0.99


def test_secrets_do_not_fire_on_benign_prompts() -> None:
    with (DEV / "deepset_prompt_injections_train.csv").open(encoding="utf-8") as f:
        benign = [r["text"] for r in csv.DictReader(f) if r["label"] == "0"]
    assert sum(bool(find_secrets(t)) for t in benign) <= len(benign) * 0.005


def test_injection_model_separates_dev_jailbreaks() -> None:
    model = InjectionModel.load()
    with (DEV / "jailbreak_classification_train_balanced.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    flagged = [model.score(r["prompt"]) >= model.threshold for r in rows]
    positives = [f for f, r in zip(flagged, rows, strict=True) if r["type"] == "jailbreak"]
    negatives = [f for f, r in zip(flagged, rows, strict=True) if r["type"] == "benign"]
    # In-sample (the model was fitted on these rows): a sanity check of the shipped artifact.
    assert sum(positives) / len(positives) >= 0.95
    assert sum(negatives) / len(negatives) <= 0.05


def test_the_shipped_injection_model_is_what_the_training_script_writes(tmp_path: Path) -> None:
    # A change to the features (or to the rows) without a refit would leave a model whose
    # weights and threshold were chosen for other features: the refit must give the same file.
    out = tmp_path / "model.json.gz"
    script = ROOT / "scripts" / "train_guardrails.py"
    args = [sys.executable, str(script), "--data", str(DEV.parent), "--out", str(out)]
    subprocess.run(args, check=True, capture_output=True)
    written = json.loads(gzip.decompress(out.read_bytes()))
    assert written["version"] == InjectionModel.load().version
