-- The running statistics of the drift detectors, one row per key and signal about once a minute
-- (event time), so an analyst can plot a detector's statistic against its threshold and the
-- estimate against the reference. reference and estimate are in the signal's own units (ms,
-- tokens, a share of calls); statistic and threshold are the CUSUM bank's lead member's.
-- A row is written when a key has calls in a new minute; a replay of the same traffic writes the
-- same minutes (values can differ slightly with how the calls were chunked).
CREATE TABLE IF NOT EXISTS detector_stats
(
    ts        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    app       LowCardinality(String),
    env       LowCardinality(String),
    variant   LowCardinality(String),
    model     LowCardinality(String),
    signal    LowCardinality(String),
    kind      LowCardinality(String),
    phase     LowCardinality(String) COMMENT 'warmup: measuring the reference; monitoring',
    n         UInt64 COMMENT 'values since the detector (re)started, warm-up included',
    reference Nullable(Float64),
    estimate  Nullable(Float64) COMMENT 'since the estimated change point, when one is open',
    statistic Float64,
    threshold Nullable(Float64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, variant, model, signal, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
