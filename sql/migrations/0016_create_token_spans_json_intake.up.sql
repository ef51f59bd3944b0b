-- The loader's fast path for priced spans (issue #15): it hands ClickHouse the Kafka records'
-- own JSON bytes (INSERT INTO token_spans_json FORMAT JSONEachRow), and ClickHouse's C++ parser
-- and this view do the conversions that loader/rows.py `priced_span_row` does in Python (which
-- stays the fallback and the test oracle: tests/unit/loader/test_json_intake.py stores the same
-- records both ways and compares every column).
-- token_spans_json holds nothing (ENGINE = Null): each insert only feeds the view.
-- Columns are named as the priced topic's fields (stream_jobs/cost_rollup.py priced_spans_out).
-- Fields it does not list are skipped (input_format_skip_unknown_fields), absent ones read NULL/0.
-- Money stays exact: the JSON number's digits are parsed straight into Decimal(38, 12).
-- A new token_spans column: add its field here and re-create the view in the same migration.
CREATE TABLE IF NOT EXISTS token_spans_json
(
    tenant                      String,
    service                     String,
    team                        String,
    agent_id                    Nullable(String),
    agent_name                  Nullable(String),
    session_id                  Nullable(String),
    tool_name                   Nullable(String),
    call_fingerprint            Nullable(String),
    trace_id                    String,
    span_id                     String,
    parent_span_id              Nullable(String),
    operation                   String,
    provider                    String,
    request_model               Nullable(String),
    response_model              Nullable(String),
    model                       String,
    runtime_kind                String,
    runtime_id                  String,
    start_ms                    Int64,
    end_ms                      Int64,
    received_ms                 Int64,
    input_tokens                Nullable(UInt64),
    output_tokens               Nullable(UInt64),
    cached_input_tokens         Nullable(UInt64),
    cache_creation_input_tokens Nullable(UInt64),
    reasoning_tokens            Nullable(UInt64),
    input_audio_tokens          Nullable(UInt64),
    output_audio_tokens         Nullable(UInt64),
    input_images                Nullable(UInt64),
    output_images               Nullable(UInt64),
    input_audio_seconds         Nullable(UInt64),
    status                      String,
    error_type                  Nullable(String),
    service_tier                Nullable(String),
    semantic_cache_hit          Nullable(Bool),
    api_key_id                  Nullable(String),
    response_id                 Nullable(String),
    sender                      Nullable(String),
    usage_missing               Nullable(Bool),
    revision                    Nullable(UInt32),
    catalog_model               Nullable(String),
    priced                      Bool,
    cost_usd                    Decimal(38, 12),
    edge_cost_usd               Nullable(Decimal(38, 12)),
    cloud_equivalent_cost_usd   Nullable(Decimal(38, 12)),
    is_late                     Bool
)
ENGINE = Null;
-- The row priced_span_row builds, column for column (defaults as there: a record written before
-- a field existed stores what the Python path stores).
CREATE MATERIALIZED VIEW IF NOT EXISTS token_spans_json_mv TO token_spans AS
SELECT
    tenant, service, team, agent_id, agent_name, session_id, tool_name,
    trace_id, span_id, parent_span_id, operation, provider, request_model, response_model,
    model, runtime_kind, runtime_id,
    fromUnixTimestamp64Milli(start_ms, 'UTC')                AS start_time,
    fromUnixTimestamp64Milli(end_ms, 'UTC')                  AS end_time,
    fromUnixTimestamp64Milli(received_ms, 'UTC')             AS received_at,
    ifNull(input_tokens, 0)                                  AS input_tokens,
    ifNull(output_tokens, 0)                                 AS output_tokens,
    ifNull(cached_input_tokens, 0)                           AS cached_input_tokens,
    ifNull(cache_creation_input_tokens, 0)                   AS cache_creation_input_tokens,
    ifNull(reasoning_tokens, 0)                              AS reasoning_tokens,
    status, error_type, priced, cost_usd,
    ifNull(edge_cost_usd, toDecimal128(0, 12))               AS edge_cost_usd,
    ifNull(cloud_equivalent_cost_usd, toDecimal128(0, 12))   AS cloud_equivalent_cost_usd,
    is_late,
    if(ifNull(service_tier, '') = '', 'standard', service_tier) AS service_tier,
    call_fingerprint,
    ifNull(input_audio_tokens, 0)                            AS input_audio_tokens,
    ifNull(output_audio_tokens, 0)                           AS output_audio_tokens,
    ifNull(input_images, 0)                                  AS input_images,
    ifNull(output_images, 0)                                 AS output_images,
    ifNull(input_audio_seconds, 0)                           AS input_audio_seconds,
    ifNull(semantic_cache_hit, false)                        AS semantic_cache_hit,
    ifNull(api_key_id, '')                                   AS api_key_id,
    response_id,
    ifNull(sender, '')                                       AS sender,
    ifNull(usage_missing, false)                             AS usage_missing,
    if(ifNull(catalog_model, '') = '', model, catalog_model) AS catalog_model,
    ifNull(revision, 0)                                      AS revision,
    -- the row's version is when the collector received the span (see priced_span_row)
    fromUnixTimestamp64Milli(received_ms, 'UTC')             AS ingested_at
FROM token_spans_json
