-- spend_over_time: spend per hour by app, model and tenant.
--
-- Reads the hourly rollup (late calls included), summed over envs, prompt versions and price
-- sources. tenant is '' for calls that named none.
-- Parameters: {start:DateTime} (inclusive) and {end:DateTime} (exclusive), UTC, rounded down
-- to the hour by the table; {app:String}: one app, or '' for all.
-- Columns: hour, app, model, tenant, calls, spend_usd, cost_per_call_usd, cost_per_1k_tokens.
SELECT
    hour,
    app,
    model,
    tenant,
    sum(calls) AS n_calls,
    sum(cost_usd) AS spend_usd,
    spend_usd / n_calls AS cost_per_call_usd,
    spend_usd / nullIf(sum(input_tokens) + sum(output_tokens), 0) * 1000 AS cost_per_1k_tokens
FROM cost_windows_1h
WHERE hour >= {start:DateTime} AND hour < {end:DateTime}
    AND ({app:String} = '' OR app = {app:String})
GROUP BY hour, app, model, tenant
ORDER BY hour, spend_usd DESC, app, model, tenant
