-- GENERATED from sql/migrations/0002_create_spend_1m.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Spend per minute by tenant, team, app (service), provider, model and runtime.
-- `part` = '' holds the stream job's rollup of the window's on-time spans; each span that
-- arrived after its window closed adds its own row with part = '<trace_id>:<span_id>'.
-- Sum over parts for the total. Re-delivered rows replace themselves (same sort key), so
-- the table tolerates at-least-once delivery. Rebuildable from token_spans (see
-- queries/rebuild_spend_1m.sql) because chDB inserts are not atomic across a materialized view.
CREATE TABLE IF NOT EXISTS spend_1m_local ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    team                        LowCardinality(String),
    service                     LowCardinality(String),
    provider                    LowCardinality(String),
    model                       LowCardinality(String),
    runtime_kind                Enum8('cloud' = 1, 'edge' = 2),
    runtime_id                  LowCardinality(String),
    window_start                DateTime('UTC'),
    part                        String,
    calls                       UInt64,
    error_calls                 UInt64,
    unpriced_calls              UInt64,
    input_tokens                UInt64,
    cached_input_tokens         UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_tokens            UInt64,
    cost_usd                    Decimal(38, 12),
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, team, service, provider, model, runtime_kind, runtime_id, part);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS spend_1m ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    team                        LowCardinality(String),
    service                     LowCardinality(String),
    provider                    LowCardinality(String),
    model                       LowCardinality(String),
    runtime_kind                Enum8('cloud' = 1, 'edge' = 2),
    runtime_id                  LowCardinality(String),
    window_start                DateTime('UTC'),
    part                        String,
    calls                       UInt64,
    error_calls                 UInt64,
    unpriced_calls              UInt64,
    input_tokens                UInt64,
    cached_input_tokens         UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_tokens            UInt64,
    cost_usd                    Decimal(38, 12),
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = Distributed('{cluster}', currentDatabase(), spend_1m_local, cityHash64(tenant));
