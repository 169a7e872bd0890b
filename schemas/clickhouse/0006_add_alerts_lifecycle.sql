-- Alert lifecycle: each row is one transition of an alert_id (first firing, repeat, resolve),
-- numbered by sequence, with when the condition started and, once resolved, ended.
ALTER TABLE alerts
    ADD COLUMN IF NOT EXISTS sequence  UInt32 DEFAULT 0 AFTER labels,
    ADD COLUMN IF NOT EXISTS starts_at Nullable(DateTime64(3, 'UTC')) AFTER sequence,
    ADD COLUMN IF NOT EXISTS ends_at   Nullable(DateTime64(3, 'UTC')) AFTER starts_at;
