"""Which recorded calls a challenge replays: a seeded sample of ClickHouse ``events``, stratified
by intent so that rare intents are present.

:func:`allocate` splits the sample size over the intents (each gets at least ``min_per_intent``
calls, or all it has; the rest in proportion to their traffic); :func:`sample_query` ranks each
intent's calls by a seeded hash of ``event_id`` and keeps each intent's quota, in one query with
server-side parameters. The same seed gives the same sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from slowleak.models import InteractionEvent
from slowleak.streams.core.detectors.signals import is_refusal

__all__ = [
    "ChampionCall",
    "SampleSpec",
    "allocate",
    "count_query",
    "read_sample",
    "refused",
    "sample_query",
]

#: ``NULL`` intents form one stratum, named by the empty string (an intent is never empty).
NO_INTENT = ""
_COLUMNS = (
    "event_id", "ts", "app", "model", "intent", "input_text", "output_text", "status",
    "latency_ms", "cost_usd", "finish_reason", "variant", "prompt_version", "attributes",
    "champion_outcome",
)  # fmt: skip


def refused(status: str, finish_reason: str | None, output_text: str | None) -> bool:
    """Whether a call declined, as the drift detector's refusal rate counts it."""
    # is_refusal reads these two fields only.
    probe = SimpleNamespace(finish_reason=finish_reason, output_text=output_text)
    return status == "ok" and is_refusal(cast(InteractionEvent, probe))


@dataclass(frozen=True, slots=True)
class ChampionCall:
    """One recorded production call: what a challenger is given, and what it is compared to."""

    event_id: str
    ts: datetime
    app: str
    model: str
    input_text: str
    intent: str | None = None
    output_text: str | None = None
    status: str = "ok"
    latency_ms: float = 0.0
    cost_usd: float | None = None
    finish_reason: str | None = None
    variant: str = "champion"
    prompt_version: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: The call's outcome, from the event or its feedback; None when never judged.
    outcome: bool | None = None

    @property
    def refusal(self) -> bool:
        return refused(self.status, self.finish_reason, self.output_text)

    @property
    def guardrail_violation(self) -> bool | None:
        return {"true": True, "false": False}.get(self.attributes.get("guardrail_violation", ""))


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """What to sample: one app's calls in ``[start, end)``, ``size`` of them at most.

    ``intents`` limits the sample to those intents (all when empty). ``exclude_replayed_by``
    leaves out calls that challenger already replayed, so a second run continues the first.
    """

    app: str
    start: datetime
    end: datetime
    size: int
    seed: int = 0
    intents: tuple[str, ...] = ()
    env: str = "prod"
    variant: str = "champion"
    min_per_intent: int = 50
    require_outcome: bool = True
    exclude_replayed_by: str | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("size must be at least 1")
        if not self.end > self.start:
            raise ValueError("end must be after start")
        if self.min_per_intent < 0:
            raise ValueError("min_per_intent must be 0 or more")


def allocate(counts: Mapping[str, int], size: int, *, min_per_intent: int) -> dict[str, int]:
    """Calls to take per stratum: ``min(count, min_per_intent)`` each first (fewer, evenly, if
    that exceeds ``size``), then the rest in proportion to what is left of each, by largest
    remainder; never more than a stratum has, and ``min(size, total)`` in all."""
    names = sorted(counts)
    total = sum(counts.values())
    if total <= size:
        return {name: counts[name] for name in names}
    floor = min(min_per_intent, size // max(len(names), 1))
    quota = {name: min(counts[name], floor) for name in names}
    left = size - sum(quota.values())
    spare = {name: counts[name] - quota[name] for name in names}
    spare_total = sum(spare.values())
    shares = {name: left * spare[name] / spare_total for name in names} if spare_total else {}
    for name, share in shares.items():
        quota[name] += int(share)
    left = size - sum(quota.values())
    by_remainder = sorted(shares, key=lambda n: (-(shares[n] - int(shares[n])), n))
    for name in by_remainder:
        if left == 0:
            break
        if quota[name] < counts[name]:
            quota[name] += 1
            left -= 1
    return quota


def _filtered(spec: SampleSpec) -> tuple[str, dict[str, Any]]:
    """The FROM/WHERE of the candidate calls (events joined to their latest feedback)."""
    params: dict[str, Any] = {
        "app": spec.app, "env": spec.env, "variant": spec.variant, "start": spec.start,
        "end": spec.end,
    }  # fmt: skip
    where = [
        "e.app = {app:String}", "e.env = {env:String}", "e.variant = {variant:String}",
        "e.ts >= {start:DateTime64(3, 'UTC')}", "e.ts < {end:DateTime64(3, 'UTC')}",
        "e.input_text IS NOT NULL",
    ]  # fmt: skip
    if spec.intents:
        where.append("ifNull(e.intent, '') IN {intents:Array(String)}")
        params["intents"] = list(spec.intents)
    if spec.require_outcome:
        where.append("coalesce(e.outcome, f.outcome) IS NOT NULL")
    if spec.exclude_replayed_by is not None:
        where.append(
            "e.event_id NOT IN (SELECT attributes['replay_of'] FROM events WHERE app = {app:String}"
            " AND env = 'test' AND variant = {challenger:String})"
        )
        params["challenger"] = spec.exclude_replayed_by
    sql = (
        "FROM events AS e FINAL\n"
        "LEFT JOIN (SELECT event_id, argMax(outcome, ts) AS outcome FROM feedback\n"
        "           WHERE app = {app:String} GROUP BY event_id) AS f ON f.event_id = e.event_id\n"
        "WHERE " + "\n  AND ".join(where)
    )
    return sql, params


def count_query(spec: SampleSpec) -> tuple[str, dict[str, Any]]:
    """Calls per intent stratum that match ``spec``: rows (stratum, calls)."""
    body, params = _filtered(spec)
    sql = (
        f"SELECT ifNull(e.intent, '') AS stratum, count() AS calls\n{body}\n"
        "GROUP BY stratum ORDER BY stratum\nSETTINGS join_use_nulls = 1"
    )
    return sql, params


def sample_query(spec: SampleSpec, quotas: Mapping[str, int]) -> tuple[str, dict[str, Any]]:
    """The sample: each stratum's first ``quotas[stratum]`` calls by a seeded hash of their id,
    in event time order. Columns as :data:`_COLUMNS`."""
    body, params = _filtered(spec)
    names = sorted(quotas)
    params |= {"seed": spec.seed, "strata": names, "quotas": [quotas[n] for n in names]}
    columns = ", ".join(f"e.{c} AS {c}" for c in _COLUMNS[:-1])
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM (\n"
        f"SELECT {columns}, coalesce(e.outcome, f.outcome) AS champion_outcome,\n"
        "  row_number() OVER (PARTITION BY ifNull(e.intent, '')\n"
        "                     ORDER BY cityHash64(e.event_id, {seed:UInt64}), e.event_id) AS rank\n"
        f"{body}\n"
        ")\nWHERE rank <= transform(ifNull(intent, ''), {strata:Array(String)},\n"
        "                         {quotas:Array(UInt64)}, toUInt64(0))\n"
        "ORDER BY ts, event_id\nSETTINGS join_use_nulls = 1"
    )
    return sql, params


def read_sample(client: Any, spec: SampleSpec) -> list[ChampionCall]:
    """Run both queries with a clickhouse-connect ``client`` (its database holds ``events``)."""
    sql, params = count_query(spec)
    counts = {str(s): int(n) for s, n in client.query(sql, parameters=params).result_rows}
    quotas = allocate(counts, spec.size, min_per_intent=spec.min_per_intent)
    if not any(quotas.values()):
        return []
    sql, params = sample_query(spec, quotas)
    rows = client.query(sql, parameters=params).result_rows
    calls = []
    for row in rows:
        values = dict(zip(_COLUMNS, row, strict=True))
        outcome = values.pop("champion_outcome")
        calls.append(
            ChampionCall(
                **{k: v for k, v in values.items() if k != "attributes"},
                attributes=dict(values["attributes"] or {}),
                outcome=None if outcome is None else bool(outcome),
            )
        )
    return calls
