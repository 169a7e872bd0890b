-- top_cost_drivers: what the money went on, and what changed, over a period.
--
-- The app x model x tenant x prompt version combinations that spent the most between {start}
-- and {end}, with their share of all spend, the spend of the period of the same length just
-- before, and the tokens and cost per call that explain it.
-- Parameters: {start:DateTime} (inclusive), {end:DateTime} (exclusive), UTC, whole hours;
-- {top:UInt32}: how many rows.
-- Columns: app, model, tenant, prompt_version, calls, spend_usd, share_of_spend,
-- previous_spend_usd, change_usd, input_tokens_per_call, output_tokens_per_call,
-- cost_per_call_usd.
SELECT
    app,
    model,
    tenant,
    prompt_version,
    sumIf(calls, hour >= {start:DateTime}) AS n_calls,
    sumIf(cost_usd, hour >= {start:DateTime}) AS spend_usd,
    spend_usd / sum(spend_usd) OVER () AS share_of_spend,
    sumIf(cost_usd, hour < {start:DateTime}) AS previous_spend_usd,
    spend_usd - previous_spend_usd AS change_usd,
    sumIf(input_tokens, hour >= {start:DateTime}) / nullIf(n_calls, 0) AS input_tokens_per_call,
    sumIf(output_tokens, hour >= {start:DateTime}) / nullIf(n_calls, 0) AS output_tokens_per_call,
    spend_usd / nullIf(n_calls, 0) AS cost_per_call_usd
FROM cost_windows_1h
WHERE hour >= {start:DateTime}
        - toIntervalSecond(dateDiff('second', {start:DateTime}, {end:DateTime}))
    AND hour < {end:DateTime}
GROUP BY app, model, tenant, prompt_version
HAVING n_calls > 0
ORDER BY spend_usd DESC, app, model, tenant, prompt_version
LIMIT {top:UInt32}
