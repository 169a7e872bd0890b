-- One row per model call (InteractionEvent), written by the worker's ClickHouse sink.
--
-- Analysts slice by app, model and time: ORDER BY goes from app to low-cardinality dimensions to
-- time. ReplacingMergeTree collapses a call that a retrying producer sent twice (same app, env,
-- model, ts and event_id) when parts merge; for exact counts before a merge use FINAL or
-- count(DISTINCT event_id). Rows older than 90 days (event time) are dropped a day-part at a time;
-- change it with ALTER TABLE events MODIFY TTL.
CREATE TABLE IF NOT EXISTS events
(
    event_id            String,
    ts                  DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    app                 LowCardinality(String),
    env                 LowCardinality(String),
    model               LowCardinality(String),
    variant             LowCardinality(String),
    status              LowCardinality(String),
    input_tokens        UInt32,
    output_tokens       UInt32,
    cached_input_tokens Nullable(UInt32),
    reasoning_tokens    Nullable(UInt32),
    latency_ms          Float64,
    cost_usd            Nullable(Float64),
    outcome             Nullable(Bool),
    score               Nullable(Float32),
    tenant              LowCardinality(Nullable(String)),
    user_id             Nullable(String),
    session_id          Nullable(String),
    trace_id            Nullable(String),
    intent              LowCardinality(Nullable(String)),
    provider            LowCardinality(Nullable(String)),
    response_model      LowCardinality(Nullable(String)),
    system_fingerprint  LowCardinality(Nullable(String)),
    fallback_from       LowCardinality(Nullable(String)),
    prompt_id           LowCardinality(Nullable(String)),
    prompt_version      LowCardinality(Nullable(String)),
    finish_reason       LowCardinality(Nullable(String)),
    error_type          LowCardinality(Nullable(String)),
    input_chars         Nullable(UInt32),
    output_chars        Nullable(UInt32),
    input_text          Nullable(String) CODEC(ZSTD(3)),
    output_text         Nullable(String) CODEC(ZSTD(3)),
    attributes          Map(LowCardinality(String), String),
    schema_version      UInt8,
    kafka_partition     Int32 COMMENT 'source partition; -1 when not read from Kafka',
    kafka_offset        Int64 COMMENT 'source offset; -1 when not read from Kafka',
    ingested_at         DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (app, env, model, ts, event_id)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
