-- GENERATED from sql/migrations/0011_create_alert_dispatches.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- What each hook did with each alert state (schemas/alerts.py DispatchOutcome v1).
-- One row per (alert, state, hook); a redelivered outcome replaces itself.
CREATE TABLE IF NOT EXISTS alert_dispatches_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', finished_at)
ORDER BY (tenant, alert_id, state, hook);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS alert_dispatches ON CLUSTER '{cluster}'
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
ENGINE = Distributed('{cluster}', currentDatabase(), alert_dispatches_local, cityHash64(tenant));
