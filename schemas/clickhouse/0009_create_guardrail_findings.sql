-- One row per guardrail finding (slowleak.streams.core.guardrails): prompt injection in an
-- input; PII, a credential, a configured secret or the system prompt, or an off-task answer in
-- an output. spans are [start, end) character offsets into the event's field (input_text or
-- output_text), so stored text can be highlighted; evidence is a short excerpt with every PII
-- value and secret replaced by a typed placeholder (<EMAIL>, <SECRET:aws_access_key>), never
-- the raw value.
--
-- ORDER BY goes from app to the detector and kind analysts filter on, to time. A re-sent event
-- yields the same findings, and ReplacingMergeTree collapses each onto its key (app, env,
-- detector, kind, field, ts, event_id) when parts merge; use FINAL for exact counts before.
-- Rows are kept 90 days of event time, as events, dropped a day-part at a time.
CREATE TABLE IF NOT EXISTS guardrail_findings
(
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id    String,
    app         LowCardinality(String),
    env         LowCardinality(String),
    model       LowCardinality(String),
    variant     LowCardinality(String),
    detector    LowCardinality(String) COMMENT 'prompt_injection, pii_leak, secret_leak, off_task',
    field       LowCardinality(String) COMMENT 'input_text or output_text: what spans index into',
    kind        LowCardinality(String) COMMENT 'email, card, aws_access_key, jailbreak, code...',
    score       Float32 COMMENT 'in [0, 1]',
    severity    LowCardinality(String) COMMENT 'low, medium, high, critical',
    spans       Array(Tuple(UInt32, UInt32)) COMMENT '[start, end) character offsets into field',
    evidence    String COMMENT 'masked excerpt; never a raw secret' CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (app, env, detector, kind, field, ts, event_id)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
