-- cost_per_success_by_prompt_version: what one successful outcome costs, per prompt version.
--
-- Per app and prompt version: spend divided by the calls whose outcome was success. Outcomes
-- are those sent with the calls; when only some calls report one, success_rate is over those
-- (outcomes) and cost_per_success_usd is spend over the successes seen, an upper bound.
-- NULL where no outcome is known.
-- Parameters: {start:DateTime} (inclusive), {end:DateTime} (exclusive), UTC, whole hours;
-- {app:String}: one app, or '' for all.
-- Columns: app, prompt_version, calls, spend_usd, outcomes, successes, success_rate,
-- cost_per_success_usd.
SELECT
    app,
    prompt_version,
    sum(calls) AS n_calls,
    sum(cost_usd) AS spend_usd,
    sum(outcomes) AS n_outcomes,
    sum(successes) AS n_successes,
    n_successes / nullIf(n_outcomes, 0) AS success_rate,
    if(n_outcomes = 0, NULL, spend_usd / nullIf(n_successes, 0)) AS cost_per_success_usd
FROM cost_windows_1h
WHERE hour >= {start:DateTime} AND hour < {end:DateTime}
    AND ({app:String} = '' OR app = {app:String})
GROUP BY app, prompt_version
ORDER BY app, prompt_version
