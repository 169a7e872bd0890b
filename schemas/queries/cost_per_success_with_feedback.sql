-- cost_per_success_with_feedback: what one successful outcome costs, per prompt version,
-- counting the judgements that arrive after the call (FeedbackEvent) as well.
--
-- Per app and prompt version: spend (the cost windows) divided by the calls of the hours whose
-- outcome was success. A call's outcome is its latest judgement in `feedback` when there is one
-- (a user's rating or an evaluator's verdict made later), else the outcome sent with the call.
-- Feedback is read from {start} on, whenever it came; feedback on calls before {start} does not
-- count. When only some calls are judged, success_rate is over those (outcomes) and
-- cost_per_success_usd is spend over the successes seen, an upper bound. NULL where no outcome
-- is known. Reads `events` and `feedback` rows of the hours (FINAL: a re-sent call or judgement
-- counts once), so keep the range to what you need.
-- Parameters: {start:DateTime} (inclusive), {end:DateTime} (exclusive), UTC, whole hours;
-- {app:String}: one app, or '' for all.
-- Columns: app, prompt_version, calls, spend_usd, outcomes, successes, success_rate,
-- cost_per_success_usd.
WITH
    spend AS (
        SELECT app, prompt_version, sum(calls) AS n_calls, sum(cost_usd) AS spend_usd
        FROM cost_windows_1h
        WHERE hour >= {start:DateTime} AND hour < {end:DateTime}
            AND ({app:String} = '' OR app = {app:String})
        GROUP BY app, prompt_version
    ),
    judged AS (
        SELECT
            e.app AS app,
            ifNull(e.prompt_version, '') AS prompt_version,
            if(f.judgements > 0, f.latest, e.outcome) AS outcome
        FROM
        (
            SELECT app, event_id, prompt_version, outcome
            FROM events FINAL
            WHERE ts >= {start:DateTime} AND ts < {end:DateTime}
                AND ({app:String} = '' OR app = {app:String})
        ) AS e
        LEFT JOIN
        (
            SELECT app, event_id, argMax(outcome, ts) AS latest, count() AS judgements
            FROM feedback FINAL
            WHERE ts >= {start:DateTime} AND ({app:String} = '' OR app = {app:String})
            GROUP BY app, event_id
        ) AS f ON e.app = f.app AND e.event_id = f.event_id
    ),
    judged_counts AS (
        SELECT
            app,
            prompt_version,
            countIf(outcome IS NOT NULL) AS n_outcomes,
            countIf(outcome) AS n_successes
        FROM judged
        GROUP BY app, prompt_version
    )
SELECT
    s.app AS app,
    s.prompt_version AS prompt_version,
    s.n_calls AS calls,
    s.spend_usd AS spend_usd,
    o.n_outcomes AS outcomes,
    o.n_successes AS successes,
    successes / nullIf(outcomes, 0) AS success_rate,
    if(outcomes = 0, NULL, spend_usd / nullIf(successes, 0)) AS cost_per_success_usd
FROM spend AS s
LEFT JOIN judged_counts AS o ON s.app = o.app AND s.prompt_version = o.prompt_version
ORDER BY app, prompt_version
