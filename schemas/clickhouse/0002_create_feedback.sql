-- Outcomes that arrive after the call (FeedbackEvent), joined to events by event_id.
-- A judgement re-sent by a retrying producer collapses on merge, as in events.
CREATE TABLE IF NOT EXISTS feedback
(
    event_id        String,
    ts              DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    app             LowCardinality(String),
    outcome         Bool,
    score           Nullable(Float32),
    source          LowCardinality(Nullable(String)),
    schema_version  UInt8,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (app, ts, event_id)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
