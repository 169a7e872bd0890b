-- Cost per event-time minute, per app x env x model x tenant x prompt version x price source,
-- written by the worker's CostWindows (slowleak.streams.core.cost.windows, WINDOW_COLUMNS).
-- tenant and prompt_version are '' when the calls had none. price_source says which price was
-- used: 'caller' (the event's cost_usd), 'table:<key>', 'override:<key>' or 'unknown' (no price:
-- cost 0, counted in unknown_price_calls).
--
-- Late calls (after the window closed, past the grace period) come as delta rows, late = 1,
-- emitted_at = the minute they were emitted: sum the rows of a window for its totals (the views
-- below do). Every row is deterministic given each app's events in order, and its key (ORDER BY)
-- names it: a row emitted again after a crash or by a replay has the same key and values, so
-- ReplacingMergeTree collapses it instead of counting it twice (read with FINAL before merges).
-- The materialized views below see every insert, so a re-sent row would be added twice to the
-- hours and days. So the sink inserts the rows in the blocks CostWindows.window_blocks gives
-- (the rows of one close of one app: the same whatever the chunking and restarts), one block
-- per insert, with insert_deduplication_token = the block's token (a hash of its rows) and
-- deduplicate_blocks_in_dependent_materialized_views = 1 (set it: older servers default to 0);
-- non_replicated_deduplication_window on the three tables makes ClickHouse drop a block it has
-- seen, here and in the rollups. Not caught: a replay's last block (flush_open) inserted next
-- to the live run's rows of the same minutes; hours and days can then be rebuilt from the
-- minutes (kept 90 days).
--
-- latency_hist: calls per latency bucket, 161 buckets: 0 is below 1 ms, bucket k >= 1 holds
-- [2^((k-1)/8), 2^(k/8)) ms, the last one everything from 2^20 ms up. Histograms add up
-- (sumForEach), so the hourly and daily p50/p95 are those of all their calls (within +-4.4%).
CREATE TABLE IF NOT EXISTS cost_windows_1m
(
    window_start        DateTime('UTC') CODEC(Delta, ZSTD(1)),
    app                 LowCardinality(String),
    env                 LowCardinality(String),
    model               LowCardinality(String),
    tenant              LowCardinality(String) COMMENT 'empty when the calls named no tenant',
    prompt_version      LowCardinality(String) COMMENT 'empty when the calls named none',
    price_source        LowCardinality(String),
    late                UInt16 COMMENT '0: on time; n > 0: the n-th delta row of calls that came after the window closed, emitted at emitted_at',
    emitted_at          DateTime('UTC') COMMENT 'window end; for late rows, the minute emitted',
    calls               UInt32,
    errors              UInt32 COMMENT 'calls whose status is not ok',
    input_tokens        UInt64,
    output_tokens       UInt64,
    cached_input_tokens UInt64,
    reasoning_tokens    UInt64,
    cost_usd            Float64,
    unknown_price_calls UInt32,
    outcomes            UInt32 COMMENT 'calls with a known outcome',
    successes           UInt32 COMMENT 'calls whose outcome was success',
    latency_hist        Array(UInt32) CODEC(ZSTD(3)),
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (app, env, model, tenant, prompt_version, price_source, window_start, late, emitted_at)
TTL window_start + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Hourly sums of cost_windows_1m, so that queries over days and weeks read hours, not minutes
-- (late rows included; late_calls says how many came late).
CREATE TABLE IF NOT EXISTS cost_windows_1h
(
    hour                DateTime('UTC') CODEC(Delta, ZSTD(1)),
    app                 LowCardinality(String),
    env                 LowCardinality(String),
    model               LowCardinality(String),
    tenant              LowCardinality(String),
    prompt_version      LowCardinality(String),
    price_source        LowCardinality(String),
    calls               SimpleAggregateFunction(sum, UInt64),
    errors              SimpleAggregateFunction(sum, UInt64),
    late_calls          SimpleAggregateFunction(sum, UInt64),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens    SimpleAggregateFunction(sum, UInt64),
    cost_usd            SimpleAggregateFunction(sum, Float64),
    unknown_price_calls SimpleAggregateFunction(sum, UInt64),
    outcomes            SimpleAggregateFunction(sum, UInt64),
    successes           SimpleAggregateFunction(sum, UInt64),
    latency_hist        AggregateFunction(sumForEach, Array(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (app, env, model, tenant, prompt_version, price_source, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Rolls every insert into cost_windows_1m up into its hour (exact: sums and histograms).
CREATE MATERIALIZED VIEW IF NOT EXISTS cost_windows_1h_mv TO cost_windows_1h AS
SELECT
    toStartOfHour(window_start) AS hour,
    app, env, model, tenant, prompt_version, price_source,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sumIf(cost_windows_1m.calls, cost_windows_1m.late > 0) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachState(latency_hist) AS latency_hist
FROM cost_windows_1m
GROUP BY hour, app, env, model, tenant, prompt_version, price_source;

-- Daily sums of cost_windows_1m, kept for years, for budgets and month-over-month spend.
CREATE TABLE IF NOT EXISTS cost_windows_1d
(
    day                 Date,
    app                 LowCardinality(String),
    env                 LowCardinality(String),
    model               LowCardinality(String),
    tenant              LowCardinality(String),
    prompt_version      LowCardinality(String),
    price_source        LowCardinality(String),
    calls               SimpleAggregateFunction(sum, UInt64),
    errors              SimpleAggregateFunction(sum, UInt64),
    late_calls          SimpleAggregateFunction(sum, UInt64),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens    SimpleAggregateFunction(sum, UInt64),
    cost_usd            SimpleAggregateFunction(sum, Float64),
    unknown_price_calls SimpleAggregateFunction(sum, UInt64),
    outcomes            SimpleAggregateFunction(sum, UInt64),
    successes           SimpleAggregateFunction(sum, UInt64),
    latency_hist        AggregateFunction(sumForEach, Array(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (app, env, model, tenant, prompt_version, price_source, day)
TTL day + INTERVAL 5 YEAR
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Rolls every insert into cost_windows_1m up into its UTC day (exact, as the hourly view).
CREATE MATERIALIZED VIEW IF NOT EXISTS cost_windows_1d_mv TO cost_windows_1d AS
SELECT
    toDate(window_start) AS day,
    app, env, model, tenant, prompt_version, price_source,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sumIf(cost_windows_1m.calls, cost_windows_1m.late > 0) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachState(latency_hist) AS latency_hist
FROM cost_windows_1m
GROUP BY day, app, env, model, tenant, prompt_version, price_source;

-- The views below are what analysts read: the windows' sums (late rows added in) and what
-- follows from them: cost per 1k tokens, cost per successful outcome (NULL without a known
-- success), and p50/p95 latency in ms from the summed histogram (the geometric middle of the
-- bucket holding the quantile, 0.5 ms for bucket 0; NULL without calls), as
-- slowleak.streams.core.cost.windows.latency_quantile_ms computes it. cost_minutely reads minutes (FINAL: re-sent rows counted once),
-- cost_hourly and cost_daily read the rollups; the *_by_app ones sum each app overall.

-- Minutes of each key, with the derived figures described above.
CREATE VIEW IF NOT EXISTS cost_minutely AS
SELECT
    window_start,
    app, env, model, tenant, prompt_version, price_source,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sumIf(cost_windows_1m.calls, cost_windows_1m.late > 0) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEach(latency_hist) AS latency_hist,
    cost_usd / nullIf(input_tokens + output_tokens, 0) * 1000 AS cost_per_1k_tokens,
    cost_usd / nullIf(successes, 0) AS cost_per_success_usd,
    arraySum(latency_hist) AS latency_n,
    arrayCumSum(latency_hist) AS latency_cum,
    arrayFirstIndex(x -> x >= 0.5 * latency_n, latency_cum) AS latency_i50,
    if(latency_n = 0, NULL, if(latency_i50 = 1, 0.5, pow(2, (latency_i50 - 1.5) / 8)))
        AS p50_latency_ms,
    arrayFirstIndex(x -> x >= 0.95 * latency_n, latency_cum) AS latency_i95,
    if(latency_n = 0, NULL, if(latency_i95 = 1, 0.5, pow(2, (latency_i95 - 1.5) / 8)))
        AS p95_latency_ms
FROM cost_windows_1m FINAL
GROUP BY window_start, app, env, model, tenant, prompt_version, price_source;

-- Hours of each key, with the derived figures described above.
CREATE VIEW IF NOT EXISTS cost_hourly AS
SELECT
    hour,
    app, env, model, tenant, prompt_version, price_source,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sum(late_calls) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachMerge(latency_hist) AS latency_hist,
    cost_usd / nullIf(input_tokens + output_tokens, 0) * 1000 AS cost_per_1k_tokens,
    cost_usd / nullIf(successes, 0) AS cost_per_success_usd,
    arraySum(latency_hist) AS latency_n,
    arrayCumSum(latency_hist) AS latency_cum,
    arrayFirstIndex(x -> x >= 0.5 * latency_n, latency_cum) AS latency_i50,
    if(latency_n = 0, NULL, if(latency_i50 = 1, 0.5, pow(2, (latency_i50 - 1.5) / 8)))
        AS p50_latency_ms,
    arrayFirstIndex(x -> x >= 0.95 * latency_n, latency_cum) AS latency_i95,
    if(latency_n = 0, NULL, if(latency_i95 = 1, 0.5, pow(2, (latency_i95 - 1.5) / 8)))
        AS p95_latency_ms
FROM cost_windows_1h
GROUP BY hour, app, env, model, tenant, prompt_version, price_source;

-- Days of each key, with the derived figures described above.
CREATE VIEW IF NOT EXISTS cost_daily AS
SELECT
    day,
    app, env, model, tenant, prompt_version, price_source,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sum(late_calls) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachMerge(latency_hist) AS latency_hist,
    cost_usd / nullIf(input_tokens + output_tokens, 0) * 1000 AS cost_per_1k_tokens,
    cost_usd / nullIf(successes, 0) AS cost_per_success_usd,
    arraySum(latency_hist) AS latency_n,
    arrayCumSum(latency_hist) AS latency_cum,
    arrayFirstIndex(x -> x >= 0.5 * latency_n, latency_cum) AS latency_i50,
    if(latency_n = 0, NULL, if(latency_i50 = 1, 0.5, pow(2, (latency_i50 - 1.5) / 8)))
        AS p50_latency_ms,
    arrayFirstIndex(x -> x >= 0.95 * latency_n, latency_cum) AS latency_i95,
    if(latency_n = 0, NULL, if(latency_i95 = 1, 0.5, pow(2, (latency_i95 - 1.5) / 8)))
        AS p95_latency_ms
FROM cost_windows_1d
GROUP BY day, app, env, model, tenant, prompt_version, price_source;

-- Hours of each app overall, with the derived figures described above.
CREATE VIEW IF NOT EXISTS cost_hourly_by_app AS
SELECT
    hour,
    app, env,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sum(late_calls) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachMerge(latency_hist) AS latency_hist,
    cost_usd / nullIf(input_tokens + output_tokens, 0) * 1000 AS cost_per_1k_tokens,
    cost_usd / nullIf(successes, 0) AS cost_per_success_usd,
    arraySum(latency_hist) AS latency_n,
    arrayCumSum(latency_hist) AS latency_cum,
    arrayFirstIndex(x -> x >= 0.5 * latency_n, latency_cum) AS latency_i50,
    if(latency_n = 0, NULL, if(latency_i50 = 1, 0.5, pow(2, (latency_i50 - 1.5) / 8)))
        AS p50_latency_ms,
    arrayFirstIndex(x -> x >= 0.95 * latency_n, latency_cum) AS latency_i95,
    if(latency_n = 0, NULL, if(latency_i95 = 1, 0.5, pow(2, (latency_i95 - 1.5) / 8)))
        AS p95_latency_ms
FROM cost_windows_1h
GROUP BY hour, app, env;

-- Days of each app overall, with the derived figures described above.
CREATE VIEW IF NOT EXISTS cost_daily_by_app AS
SELECT
    day,
    app, env,
    sum(calls) AS calls,
    sum(errors) AS errors,
    sum(late_calls) AS late_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unknown_price_calls) AS unknown_price_calls,
    sum(outcomes) AS outcomes,
    sum(successes) AS successes,
    sumForEachMerge(latency_hist) AS latency_hist,
    cost_usd / nullIf(input_tokens + output_tokens, 0) * 1000 AS cost_per_1k_tokens,
    cost_usd / nullIf(successes, 0) AS cost_per_success_usd,
    arraySum(latency_hist) AS latency_n,
    arrayCumSum(latency_hist) AS latency_cum,
    arrayFirstIndex(x -> x >= 0.5 * latency_n, latency_cum) AS latency_i50,
    if(latency_n = 0, NULL, if(latency_i50 = 1, 0.5, pow(2, (latency_i50 - 1.5) / 8)))
        AS p50_latency_ms,
    arrayFirstIndex(x -> x >= 0.95 * latency_n, latency_cum) AS latency_i95,
    if(latency_n = 0, NULL, if(latency_i95 = 1, 0.5, pow(2, (latency_i95 - 1.5) / 8)))
        AS p95_latency_ms
FROM cost_windows_1d
GROUP BY day, app, env;
