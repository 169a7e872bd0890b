-- challenger_comparison: a challenger against its champion on the production calls it replayed.
--
-- `slowleak challenge` publishes each challenger call as an event with env = 'test', variant =
-- the challenger's name and attributes['replay_of'] = the champion call it replays, carrying the
-- champion's measurements (attributes champion_outcome, champion_cost_usd, champion_latency_ms,
-- champion_refusal, champion_guardrail_violation), so every pair is exact. A champion call
-- counts once (its latest replay). A challenger outcome is the event's own, else its latest
-- feedback. Success rows are over the pairs with both outcomes known, the others over every
-- replayed call. `slowleak compare` prints this table with the always-valid confidence interval
-- and the verdict.
-- Parameters: {app:String}, {challenger:String} (the challenger's variant name).
-- Columns: metric, champion, challenger, difference (challenger - champion, in the metric's
-- unit), change_pct (challenger / champion - 1, in %); the last two are NULL on the counts.
WITH replays AS
(
    SELECT
        e.attributes['replay_of'] AS replay_of,
        coalesce(e.outcome, f.outcome) AS outcome,
        multiIf(e.attributes['champion_outcome'] = 'true', true,
                e.attributes['champion_outcome'] = 'false', false, NULL) AS champion_outcome,
        e.cost_usd AS cost_usd,
        toFloat64OrNull(e.attributes['champion_cost_usd']) AS champion_cost_usd,
        e.latency_ms AS latency_ms,
        toFloat64OrNull(e.attributes['champion_latency_ms']) AS champion_latency_ms,
        e.attributes['refusal'] = 'true' AS refusal,
        e.attributes['champion_refusal'] = 'true' AS champion_refusal,
        e.attributes['guardrail_violation'] = 'true' AS guardrail,
        e.attributes['champion_guardrail_violation'] = 'true' AS champion_guardrail
    FROM events AS e FINAL
    LEFT JOIN
    (
        SELECT event_id, argMax(outcome, ts) AS outcome
        FROM feedback
        WHERE app = {app:String}
        GROUP BY event_id
    ) AS f ON f.event_id = e.event_id
    WHERE e.app = {app:String} AND e.env = 'test' AND e.variant = {challenger:String}
        AND e.attributes['replay_of'] != ''
    ORDER BY e.ts DESC, e.event_id DESC
    LIMIT 1 BY e.attributes['replay_of']
),
totals AS
(
    SELECT
        toFloat64(count()) AS calls,
        toFloat64(countIf(outcome IS NOT NULL AND champion_outcome IS NOT NULL)) AS pairs,
        avgIf(toFloat64(champion_outcome), outcome IS NOT NULL AND champion_outcome IS NOT NULL)
            AS champion_success,
        avgIf(toFloat64(outcome), outcome IS NOT NULL AND champion_outcome IS NOT NULL)
            AS challenger_success,
        avg(champion_cost_usd) AS champion_cost,
        avg(cost_usd) AS challenger_cost,
        quantile(0.5)(champion_latency_ms) AS champion_p50,
        quantile(0.5)(latency_ms) AS challenger_p50,
        quantile(0.95)(champion_latency_ms) AS champion_p95,
        quantile(0.95)(latency_ms) AS challenger_p95,
        avg(toFloat64(champion_refusal)) AS champion_refusals,
        avg(toFloat64(refusal)) AS challenger_refusals,
        avg(toFloat64(champion_guardrail)) AS champion_guardrail_rate,
        avg(toFloat64(guardrail)) AS challenger_guardrail_rate
    FROM replays
)
SELECT
    row.1 AS metric,
    round(row.2, 6) AS champion,
    round(row.3, 6) AS challenger,
    if(row.4, round(row.3 - row.2, 6), NULL) AS difference,
    if(row.4, round(100 * (row.3 / nullIf(row.2, 0) - 1), 1), NULL) AS change_pct
FROM totals
ARRAY JOIN [
    ('replayed calls', calls, calls, false),
    ('paired calls (both outcomes known)', pairs, pairs, false),
    ('success rate (%)', 100 * champion_success, 100 * challenger_success, true),
    ('cost per call (USD)', champion_cost, challenger_cost, true),
    ('cost per success (USD)', champion_cost / nullIf(champion_success, 0),
        challenger_cost / nullIf(challenger_success, 0), true),
    ('latency p50 (ms)', champion_p50, challenger_p50, true),
    ('latency p95 (ms)', champion_p95, challenger_p95, true),
    ('refusal rate (%)', 100 * champion_refusals, 100 * challenger_refusals, true),
    ('guardrail violation rate (%)', 100 * champion_guardrail_rate,
        100 * challenger_guardrail_rate, true)
] AS row
SETTINGS join_use_nulls = 1
