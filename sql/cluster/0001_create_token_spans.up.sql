-- GENERATED from sql/migrations/0001_create_token_spans.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Raw LLM calls: one row per unique (tenant, trace_id, span_id), priced by the stream job.
-- ReplacingMergeTree collapses re-deliveries of the same span; read with FINAL for exact counts.
-- Money: Decimal(38, 12) USD, exact (see schemas/pricing.py). Prompts/completions are never stored.
CREATE TABLE IF NOT EXISTS token_spans_local ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    service                     LowCardinality(String),
    team                        LowCardinality(String),
    agent_id                    Nullable(String),
    agent_name                  Nullable(String),
    session_id                  Nullable(String),
    tool_name                   Nullable(String),
    trace_id                    String,
    span_id                     String,
    parent_span_id              Nullable(String),
    operation                   LowCardinality(String),
    provider                    LowCardinality(String),
    request_model               Nullable(String),
    response_model              Nullable(String),
    model                       LowCardinality(String),
    runtime_kind                Enum8('cloud' = 1, 'edge' = 2),
    runtime_id                  LowCardinality(String),
    start_time                  DateTime64(3, 'UTC'),
    end_time                    DateTime64(3, 'UTC'),
    received_at                 DateTime64(3, 'UTC'),
    input_tokens                UInt64,
    output_tokens               UInt64,
    cached_input_tokens         UInt64,
    cache_creation_input_tokens UInt64,
    reasoning_tokens            UInt64,
    status                      Enum8('ok' = 1, 'error' = 2),
    error_type                  Nullable(String),
    priced                      Bool,
    cost_usd                    Decimal(38, 12),
    is_late                     Bool,
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)
PARTITION BY toYYYYMM(end_time)
ORDER BY (tenant, toStartOfHour(end_time), trace_id, span_id);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS token_spans ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    service                     LowCardinality(String),
    team                        LowCardinality(String),
    agent_id                    Nullable(String),
    agent_name                  Nullable(String),
    session_id                  Nullable(String),
    tool_name                   Nullable(String),
    trace_id                    String,
    span_id                     String,
    parent_span_id              Nullable(String),
    operation                   LowCardinality(String),
    provider                    LowCardinality(String),
    request_model               Nullable(String),
    response_model              Nullable(String),
    model                       LowCardinality(String),
    runtime_kind                Enum8('cloud' = 1, 'edge' = 2),
    runtime_id                  LowCardinality(String),
    start_time                  DateTime64(3, 'UTC'),
    end_time                    DateTime64(3, 'UTC'),
    received_at                 DateTime64(3, 'UTC'),
    input_tokens                UInt64,
    output_tokens               UInt64,
    cached_input_tokens         UInt64,
    cache_creation_input_tokens UInt64,
    reasoning_tokens            UInt64,
    status                      Enum8('ok' = 1, 'error' = 2),
    error_type                  Nullable(String),
    priced                      Bool,
    cost_usd                    Decimal(38, 12),
    is_late                     Bool,
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = Distributed('{cluster}', currentDatabase(), token_spans_local, cityHash64(tenant));
