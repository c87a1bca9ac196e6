-- Audit events, one row per consumed event. ReplacingMergeTree on event_id makes
-- redelivery (at-least-once) harmless: count with uniqExact(event_id) or FINAL.
-- ClickHouse 18.16 has no DateTime64: times are UInt64 milliseconds since the epoch,
-- plus a DateTime for partitioning.
CREATE DATABASE IF NOT EXISTS sqlaudit;
CREATE TABLE IF NOT EXISTS sqlaudit.audit_events
(
    event_id       UUID,
    app            String,
    database       String,
    sql            String,
    sql_type       String,
    duration_ms    UInt32,
    rows_affected  Int64,
    error_code     String,
    produced_at_ms UInt64,
    stored_at_ms   UInt64,
    produced_date  DateTime,
    kafka_partition UInt16,
    kafka_offset   UInt64,
    replica        String
)
ENGINE = ReplacingMergeTree(stored_at_ms)
PARTITION BY toYYYYMMDD(produced_date)
ORDER BY event_id;
