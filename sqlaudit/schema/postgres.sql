-- Violations found by the checkers. Upserts keyed by (event_id, checker) make
-- redelivery harmless.
CREATE TABLE IF NOT EXISTS violations
(
    event_id    uuid        NOT NULL,
    checker     text        NOT NULL,
    severity    text        NOT NULL,
    app         text        NOT NULL,
    database    text        NOT NULL,
    message     text        NOT NULL,
    produced_at timestamptz NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    replica     text        NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, checker)
);
CREATE INDEX IF NOT EXISTS violations_produced_at ON violations (produced_at);
