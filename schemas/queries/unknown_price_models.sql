-- unknown_price_models: models whose calls had no price (cost counted as $0).
--
-- Calls without cost_usd whose model matched no entry of the price table nor of the
-- overrides: add them to price_overrides (or the prices_file) to count their cost.
-- Parameters: {start:DateTime} (inclusive), {end:DateTime} (exclusive), UTC, whole hours.
-- Columns: app, env, model, calls, first_hour, last_hour, share_of_app_calls.
SELECT app, env, model, n_calls, first_hour, last_hour, share_of_app_calls
FROM
(
    SELECT
        app,
        env,
        model,
        sumIf(calls, price_source = 'unknown') AS n_calls,
        minIf(hour, price_source = 'unknown') AS first_hour,
        maxIf(hour, price_source = 'unknown') AS last_hour,
        n_calls / sum(sum(calls)) OVER (PARTITION BY app, env) AS share_of_app_calls
    FROM cost_windows_1h
    WHERE hour >= {start:DateTime} AND hour < {end:DateTime}
    GROUP BY app, env, model
)
WHERE n_calls > 0
ORDER BY n_calls DESC, app, env, model
