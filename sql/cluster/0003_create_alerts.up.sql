-- GENERATED from sql/migrations/0003_create_alerts.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Alerts (runaway loops, budgets, growth) with an open -> resolved lifecycle.
-- One row per (tenant, dedupe_key, alert_id) state; the newest `updated_at` wins.
CREATE TABLE IF NOT EXISTS alerts_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY (tenant, dedupe_key, alert_id);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS alerts ON CLUSTER '{cluster}'
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
ENGINE = Distributed('{cluster}', currentDatabase(), alerts_local, cityHash64(tenant));
