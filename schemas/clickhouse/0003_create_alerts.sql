-- Every alert decision (firing, resolved) the detectors publish to slowleak.alerts.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id     String,
    kind         LowCardinality(String),
    severity     LowCardinality(String),
    status       LowCardinality(String),
    ts           DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id     String,
    app          LowCardinality(String),
    model        LowCardinality(Nullable(String)),
    labels       Map(LowCardinality(String), String),
    summary      String,
    details      String COMMENT 'JSON object',
    published_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_alert_id alert_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, kind, ts)
TTL toDateTime(ts) + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
