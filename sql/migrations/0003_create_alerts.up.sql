-- Alerts (runaway loops, budgets, growth) with an open -> resolved lifecycle.
-- One row per (tenant, dedupe_key, alert_id) state; the newest `updated_at` wins.
CREATE TABLE IF NOT EXISTS alerts
(
    tenant      LowCardinality(String),
    alert_id    String,
    dedupe_key  String,
    kind        LowCardinality(String),
    severity    Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    state       Enum8('open' = 1, 'resolved' = 2),
    opened_at   DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    summary     String,
    details     String,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, dedupe_key, alert_id)
