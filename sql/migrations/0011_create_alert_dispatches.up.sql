-- What each hook did with each alert state (schemas/alerts.py DispatchOutcome v1).
-- One row per (alert, state, hook); a redelivered outcome replaces itself.
CREATE TABLE IF NOT EXISTS alert_dispatches
(
    tenant           LowCardinality(String),
    alert_id         String,
    dedupe_key       String,
    state            Enum8('open' = 1, 'resolved' = 2),
    hook             LowCardinality(String),
    hook_kind        LowCardinality(String),
    outcome          Enum8('delivered' = 1, 'failed' = 2),
    attempts         UInt16,
    http_status      Nullable(UInt16),
    error            Nullable(String),
    first_attempt_at DateTime64(3, 'UTC'),
    finished_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(finished_at)
ORDER BY (tenant, alert_id, state, hook)
