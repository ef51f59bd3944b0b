-- GENERATED from sql/migrations/0015_add_call_identity_attribution_and_tool_calls.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Real-world fidelity (issue #17).
-- token_spans:
--   response_id    the provider's response id (gen_ai.response.id): one provider call, one row,
--                  even when two senders (an instrumentation and the provider's SDK) described it
--   sender         which sender conventions read the span (schemas/senders.yaml) and its version
--   usage_missing  the call succeeded but its span carried no usage (a stream from an older
--                  instrumentation): counted as a call with 0 tokens, never silently absent
--   catalog_model  the price catalog's model the reported one folds to (gpt-4o-2024-08-06 ->
--                  gpt-4o); rollups and reports group by it, `model` keeps what was reported.
--                  Rows stored before this migration read their own model.
--   revision       0 as first stored; n after n attribution amendments: the stream job learned the
--                  call's conversation / agent from ancestor spans that arrived later. The loader
--                  writes the amended copy with a later version (ingested_at), so it replaces the
--                  first row whatever the order of re-deliveries.
-- spend_1m.usage_missing_calls: calls in the row that carried no usage. spend_1m.model is the
-- catalog model from now on.
-- tool_calls: `execute_tool` spans (tool name, duration, status): the loop signal that needs no
-- prompt content. Same identity and versioning rules as token_spans.
ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS response_id Nullable(String),
    ADD COLUMN IF NOT EXISTS sender LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS usage_missing Bool DEFAULT false,
    ADD COLUMN IF NOT EXISTS catalog_model LowCardinality(String) DEFAULT model,
    ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT 0;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS response_id Nullable(String),
    ADD COLUMN IF NOT EXISTS sender LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS usage_missing Bool DEFAULT false,
    ADD COLUMN IF NOT EXISTS catalog_model LowCardinality(String) DEFAULT model,
    ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT 0;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS usage_missing_calls UInt64 DEFAULT 0;

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS usage_missing_calls UInt64 DEFAULT 0;

CREATE TABLE IF NOT EXISTS tool_calls_local ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    api_key_id                  LowCardinality(String) DEFAULT '',
    service                     LowCardinality(String),
    team                        LowCardinality(String),
    trace_id                    String,
    span_id                     String,
    parent_span_id              Nullable(String),
    session_id                  Nullable(String),
    agent_id                    Nullable(String),
    agent_name                  Nullable(String),
    tool_name                   LowCardinality(String),
    tool_call_id                Nullable(String),
    tool_type                   Nullable(String),
    call_fingerprint            Nullable(String),
    start_time                  DateTime64(3, 'UTC'),
    end_time                    DateTime64(3, 'UTC'),
    duration_ms                 UInt64,
    status                      Enum8('ok' = 1, 'error' = 2),
    error_type                  Nullable(String),
    sender                      LowCardinality(String) DEFAULT '',
    revision                    UInt32 DEFAULT 0,
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)
PARTITION BY toYYYYMM(end_time)
ORDER BY (tenant, toStartOfHour(end_time), trace_id, span_id);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS tool_calls ON CLUSTER '{cluster}'
(
    tenant                      LowCardinality(String),
    api_key_id                  LowCardinality(String) DEFAULT '',
    service                     LowCardinality(String),
    team                        LowCardinality(String),
    trace_id                    String,
    span_id                     String,
    parent_span_id              Nullable(String),
    session_id                  Nullable(String),
    agent_id                    Nullable(String),
    agent_name                  Nullable(String),
    tool_name                   LowCardinality(String),
    tool_call_id                Nullable(String),
    tool_type                   Nullable(String),
    call_fingerprint            Nullable(String),
    start_time                  DateTime64(3, 'UTC'),
    end_time                    DateTime64(3, 'UTC'),
    duration_ms                 UInt64,
    status                      Enum8('ok' = 1, 'error' = 2),
    error_type                  Nullable(String),
    sender                      LowCardinality(String) DEFAULT '',
    revision                    UInt32 DEFAULT 0,
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = Distributed('{cluster}', currentDatabase(), tool_calls_local, cityHash64(tenant));
