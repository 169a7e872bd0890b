-- Messages the worker rejected, beside the slowleak.dlq topic, so that on-call can ask with SQL
-- what is being rejected and why. raw_prefix keeps at most the first 4 KiB of the message.
CREATE TABLE IF NOT EXISTS dead_letters
(
    received_at     DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    topic           LowCardinality(String),
    kafka_partition Int32,
    kafka_offset    Int64,
    reason          String,
    errors          String COMMENT 'JSON list of {type, loc, msg}',
    raw_bytes       UInt64,
    raw_prefix      String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(received_at)
ORDER BY (topic, kafka_partition, kafka_offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
