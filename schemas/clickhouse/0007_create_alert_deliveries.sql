-- One row per alert per receiver once its delivery ended (delivered, or failed for good), so
-- on-call can ask with SQL whether and when a page went out, and after how many attempts.
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id     String,
    sequence     UInt32,
    status       LowCardinality(String),
    kind         LowCardinality(String),
    app          LowCardinality(String),
    receiver     LowCardinality(String),
    delivered_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    attempts     UInt32,
    outcome      LowCardinality(String) COMMENT 'delivered or failed',
    error        String COMMENT 'last error, empty when delivered' CODEC(ZSTD(3)),
    ts           DateTime64(3, 'UTC') COMMENT 'event time of the alert' CODEC(Delta, ZSTD(1)),
    INDEX idx_alert_id alert_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(delivered_at)
ORDER BY (app, receiver, kind, delivered_at)
TTL toDateTime(delivered_at) + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;
