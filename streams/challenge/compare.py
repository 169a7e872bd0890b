"""``slowleak compare``: the current comparison of a challenger with its champion, for a person.

The table is ``schemas/queries/challenger_comparison.sql``; under it, the always-valid
confidence interval on the success difference over the pairs in event-time order (the same
:class:`~slowleak.streams.core.stats.sequential.MeanConfidenceSequence` the detector runs), its
verdict, the same for cost and latency per call (the geometric-mean ratio of the pairs,
``_paired_ratio``), and the last ``challenger_verdict`` alert the worker published, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from slowleak.streams.core.detectors._paired_ratio import (
    MEASURES,
    Measure,
    describe_ratio,
    pair_scores,
    ratio_verdict,
)
from slowleak.streams.core.stats.sequential import MeanConfidenceSequence, verdict

__all__ = ["ComparisonView", "comparison_sql", "read_comparison"]

QUERY_NAME = "challenger_comparison"

#: The pairs with both outcomes, in event-time order: (challenger outcome, champion outcome).
PAIRS_SQL = """
SELECT toUInt8(coalesce(e.outcome, f.outcome)) AS challenger,
       toUInt8(e.attributes['champion_outcome'] = 'true') AS champion
FROM events AS e FINAL
LEFT JOIN (SELECT event_id, argMax(outcome, ts) AS outcome FROM feedback
           WHERE app = {app:String} GROUP BY event_id) AS f ON f.event_id = e.event_id
WHERE e.app = {app:String} AND e.env = 'test' AND e.variant = {challenger:String}
  AND e.attributes['replay_of'] != ''
  AND e.attributes['champion_outcome'] IN ('true', 'false')
  AND coalesce(e.outcome, f.outcome) IS NOT NULL
ORDER BY e.ts, e.event_id
LIMIT 1 BY e.attributes['replay_of']
SETTINGS join_use_nulls = 1
"""

#: Every pair's cost and latency, in event-time order: challenger's, champion's, and whether
#: the challenger's call succeeded (a failed call's latency is not an answer's).
RATIO_PAIRS_SQL = """
SELECT e.cost_usd, toFloat64OrNull(e.attributes['champion_cost_usd']),
       e.latency_ms, toFloat64OrNull(e.attributes['champion_latency_ms']), e.status = 'ok'
FROM events AS e FINAL
WHERE e.app = {app:String} AND e.env = 'test' AND e.variant = {challenger:String}
  AND e.attributes['replay_of'] != ''
ORDER BY e.ts, e.event_id
LIMIT 1 BY e.attributes['replay_of']
"""

LAST_VERDICT_SQL = """
SELECT summary, ts FROM alerts
WHERE app = {app:String} AND kind = 'challenger_verdict'
  AND labels['challenger'] = {challenger:String}
ORDER BY ts DESC, published_at DESC LIMIT 1
"""


def comparison_sql() -> str:
    """The text of ``schemas/queries/challenger_comparison.sql``."""
    path = resources.files("slowleak.schemas").joinpath("queries", f"{QUERY_NAME}.sql")
    return path.read_text(encoding="utf-8")


@dataclass(slots=True)
class ComparisonView:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    cs: MeanConfidenceSequence
    margin: float
    last_alert: str | None
    #: Cost and latency: the scores' confidence sequences, and the margin as a ratio.
    ratios: dict[Measure, MeanConfidenceSequence] = field(default_factory=dict)
    ratio_margin: float = 0.10

    def describe(self) -> str:
        from slowleak.streams.sqlcli import format_table

        level = f"{100 * (1 - self.cs.alpha):g}%"
        lines = [format_table(self.columns, self.rows).rstrip("\n")]
        if self.cs.n:
            found = verdict(self.cs.lower, self.cs.upper, margin=self.margin)
            lines.append(
                f"success difference {100 * self.cs.mean:+.1f} pts, {level} confidence sequence "
                f"[{100 * self.cs.lower:+.1f}, {100 * self.cs.upper:+.1f}] on {self.cs.n:,} "
                f"paired calls; verdict: {found} (margin {100 * self.margin:g} pts)"
            )
        else:
            lines.append("no paired calls with both outcomes yet: no verdict")
        for measure, cs in self.ratios.items():
            if cs.n:
                found = ratio_verdict(cs, margin=self.ratio_margin)
                lines.append(
                    f"{describe_ratio(measure, cs)}; verdict: {found} "
                    f"(margin {100 * self.ratio_margin:g}%)"
                )
        if self.last_alert:
            lines.append(f"last challenger_verdict alert: {self.last_alert}")
        return "\n".join(lines) + "\n"


def read_comparison(
    client: Any, *, app: str, challenger: str, alpha: float = 0.05, margin: float = 0.01,
    ratio_margin: float = 0.10,
) -> ComparisonView:  # fmt: skip
    """Run the queries with a clickhouse-connect ``client`` (its database holds the tables)."""
    params = {"app": app, "challenger": challenger}
    table = client.query(comparison_sql(), parameters=params)
    cs = MeanConfidenceSequence(alpha=alpha)
    for mine, theirs in client.query(PAIRS_SQL, parameters=params).result_rows:
        cs.update(float(mine) - float(theirs))
    ratios = {m: MeanConfidenceSequence(alpha=alpha) for m in MEASURES}
    for cost, champion_cost, latency, champion_latency, ok in client.query(
        RATIO_PAIRS_SQL, parameters=params
    ).result_rows:
        scores = pair_scores(cost, champion_cost, latency, champion_latency, ok=bool(ok))
        for measure, score in scores.items():
            if score is not None:
                ratios[measure].update(score)
    last = client.query(LAST_VERDICT_SQL, parameters=params).result_rows
    return ComparisonView(
        columns=list(table.column_names),
        rows=[tuple(r) for r in table.result_rows],
        cs=cs,
        margin=margin,
        last_alert=str(last[0][0]) if last else None,
        ratios=ratios,
        ratio_margin=ratio_margin,
    )
