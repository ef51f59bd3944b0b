"""Flink job: assemble each trace, price every LLM call once, roll spend up into 1-minute windows.

    source    tokenpulse.spans.raw.v1       TokenSpan + ContextSpan JSON and heartbeats, event time = end_ms
    operation assemble per (tenant, trace)  -> TraceAssembler (a Java process table function):
              each span once, one row per provider call (twin spans of two senders collapse),
              conversation and agent handed down from ancestor spans; later ancestors amend
              calls already emitted (attribution records)
              price (the Java catalog lookup, or a generated SQL CASE for a small hand-written
              table; busy time x rate from the edge runtime profiles, and the cloud-equivalent
              counterfactual); fold the model to its catalog model
              split on the watermark        -> on time: 1-minute tumbling window
                                            -> late:    flagged, rolled up by the loader
    sinks     tokenpulse.spans.priced.v1    every call with cost_usd and is_late (record 'span'),
                                            tool calls (record 'context', execute_tool spans) and
                                            attribution amendments (record 'attribution'), keyed by
                                            trace and written by one operator chain from the
                                            assembler, so a trace's records stay in order
              tokenpulse.spend.rollup-1m.v1 closed windows per tenant/team/app/provider/catalog model/runtime

Why these choices:
  * Everything is Flink SQL or Java functions, so it runs in the JVM (no Python workers) and the
    same job can be submitted to a standalone cluster with `flink run -py`.
  * The assembler keeps the first copy of a span (collector retries, replays); its state
    expires after `dedup_ttl_ms` (table.exec.state.ttl). It emits every call at once, never
    waiting for a parent: OTel SDKs export children first and an agent's invoke_agent span
    ends last, so waiting would delay alerts by the whole agent run; the parent's
    conversation and agent reach the stored row as an attribution record instead.
  * A span is "late" if its event time is at or behind the watermark when it reaches the
    split. Late spans bypass the window (which would drop them silently) and are counted
    by the loader as their own rollup rows, so nothing is lost or counted twice. The split
    runs after the dedup exchange, in the same task as the window's first stage, so both
    see the same watermark. Source idleness is disabled on purpose: an idle partition that
    wakes up would otherwise feed rows behind the window's watermark. Collectors' heartbeats
    keep every partition's event time moving instead.

Run locally (MiniCluster):  python -m tokenpulse.stream_jobs.cost_rollup
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from tokenpulse.core.pricing_sql import (
    check_stream_catalog_size,
    cloud_equivalent_cost_case,
    cost_columns,
    edge_rate_case,
    needs_lookup,
    priced_columns,
)
from tokenpulse.jars import udf_jar
from tokenpulse.schemas import topics
from tokenpulse.schemas.edge_profiles import EdgeProfiles, load_edge_profiles
from tokenpulse.schemas.pricing import PriceTable, load_price_table
from tokenpulse.settings import Settings

from . import price_lookup
from .job_runtime import kafka_options, recovery_path, run_to_end

log = logging.getLogger("tokenpulse.stream_jobs.cost_rollup")

JOB_NAME = "tokenpulse-cost-rollup"
# Bump when the job's state changes shape (columns carried through dedup, aggregates, keys):
# checkpoints live under checkpoints/state-v<N>, and a job only resumes from its own layout.
# Price or profile changes alter literals only and keep the layout (and the running windows).
# v5: audio tokens, images, audio seconds, the semantic-cache flag and the API key id carried
# through dedup; the key id is a window dimension.
# v6: the trace assembler replaces the ROW_NUMBER dedup; the window groups by catalog model.
# v7: one operator chain from the assembler to the priced-spans sink (the window's operators
# got new generated ids: a v6 checkpoint no longer maps onto the plan).
STATE_LAYOUT_VERSION = 7
ASSEMBLER_FUNCTION = "trace_assembler"
ASSEMBLER_CLASS = "dev.tokenpulse.flink.trace.TraceAssembler"
# Where the assembler sees a record: its trace, or for a root LLM call with a response id that id
# (two senders' root spans of one call are in two traces); TokenSpan.kafka_key keys Kafka alike.
ASSEMBLY_KEY = ("CASE WHEN kind = 'span' AND parent_span_id IS NULL AND response_id IS NOT NULL "
                "THEN CONCAT('r:', response_id) ELSE CONCAT('t:', trace_id) END")
# api_key_id: which of the tenant's keys sent the calls ('' for keyless inputs), for per-key budgets.
# The window's model is the catalog model: dated snapshots (gpt-4o-2024-08-06) fold into one series.
DIMENSIONS = "tenant, team, service, provider, catalog_model, runtime_kind, runtime_id, api_key_id"

SPAN_COLUMNS = """
  kind STRING, schema_version INT,
  tenant STRING, service STRING, team STRING,
  agent_id STRING, agent_name STRING, session_id STRING, tool_name STRING, call_fingerprint STRING,
  trace_id STRING, span_id STRING, parent_span_id STRING,
  operation STRING, provider STRING, request_model STRING, response_model STRING, model STRING,
  runtime_kind STRING, runtime_id STRING,
  start_ms BIGINT, end_ms BIGINT, received_ms BIGINT,
  input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
  cache_creation_input_tokens BIGINT, reasoning_tokens BIGINT,
  status STRING, error_type STRING, service_tier STRING, collector_id STRING,
  input_audio_tokens BIGINT, output_audio_tokens BIGINT, input_images BIGINT, output_images BIGINT,
  input_audio_seconds BIGINT, semantic_cache_hit BOOLEAN, api_key_id STRING,
  response_id STRING, sender STRING, usage_missing BOOLEAN, tool_call_id STRING, tool_type STRING"""
# Fields added after v1 (optional on the wire) and their value when a record predates them.
ADDED_COLUMNS = {"input_audio_tokens": "0", "output_audio_tokens": "0", "input_images": "0", "output_images": "0",
                 "input_audio_seconds": "0", "semantic_cache_hit": "FALSE", "api_key_id": "''",
                 "response_id": "CAST(NULL AS STRING)", "sender": "CAST(NULL AS STRING)", "usage_missing": "FALSE",
                 "tool_call_id": "CAST(NULL AS STRING)", "tool_type": "CAST(NULL AS STRING)"}

_V1_COLUMNS = """tenant, service, team, agent_id, agent_name, session_id, tool_name, call_fingerprint,
  trace_id, span_id, parent_span_id, operation, provider, request_model, response_model, model,
  runtime_kind, runtime_id, start_ms, end_ms, received_ms,
  input_tokens, output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens,
  status, error_type, service_tier"""
PASS_THROUGH = _V1_COLUMNS + ",\n  " + ", ".join(ADDED_COLUMNS)
SOURCE_COLUMNS = _V1_COLUMNS + ",\n  " + ", ".join(f"COALESCE({c}, {d}) AS {c}" for c, d in ADDED_COLUMNS.items())


def billed_sum(column: str) -> str:
    """Window sum of a usage count over calls that reached a provider: a semantic-cache hit's
    usage is its counterfactual (token_spans keeps it), not usage anyone billed."""
    return f"SUM(CASE WHEN semantic_cache_hit THEN 0 ELSE {column} END)"



def configure(t_env: TableEnvironment, settings: Settings, *, checkpoint_dir: Path | None) -> None:
    cfg = t_env.get_config()
    s = settings.stream
    cfg.set("pipeline.name", JOB_NAME)
    cfg.set("parallelism.default", str(s.parallelism))
    cfg.set("pipeline.object-reuse", "true" if s.object_reuse else "false")
    cfg.set("table.local-time-zone", "UTC")
    cfg.set("table.exec.source.idle-timeout", "0 ms")  # see module docstring
    # Optimise the shared view (dedup + late flag) once for both sinks, so one operator
    # decides "late" for a span and both the window and the priced-spans sink obey it.
    cfg.set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    cfg.set("table.exec.state.ttl", f"{s.dedup_ttl_ms} ms")
    cfg.set("execution.checkpointing.interval", f"{s.checkpoint_interval_ms} ms")
    cfg.set("execution.checkpointing.mode", "EXACTLY_ONCE")
    # Fail visibly instead of restarting forever (e.g. a checkpoint that no longer fits).
    cfg.set("restart-strategy.type", "exponential-delay")
    cfg.set("restart-strategy.exponential-delay.attempts-before-reset-backoff", "8")
    if checkpoint_dir is not None:
        cfg.set("execution.checkpointing.dir", checkpoint_dir.resolve().as_uri())
        cfg.set("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
        cfg.set("execution.checkpointing.num-retained", "2")


def uses_lookup(settings: Settings, prices: PriceTable) -> bool:
    """Whether the catalog is priced by the Java lookup function instead of the generated CASE
    (always for the shipped catalog; the CASE is for a small hand-written table alone)."""
    mode = settings.stream.price_lookup
    return mode == "lookup" or (mode == "auto" and needs_lookup(prices))


def load_prices(settings: Settings) -> PriceTable:
    """The local price file over the comprehensive catalog (none when stream.catalog_file is unset)."""
    return load_price_table(settings.stream.prices_file, settings.stream.catalog_file)


def build(t_env: TableEnvironment, settings: Settings, prices: PriceTable, edge: EdgeProfiles) -> StatementSet:
    """Declare source, views and sinks; return the statement set to execute (the UDF jar with
    the trace assembler and the price lookup must be in pipeline.jars)."""
    if uses_lookup(settings, prices):
        price_lookup.register(t_env, prices)
        price_columns = price_lookup.priced_columns()
    else:
        check_stream_catalog_size(prices)
        price_columns = priced_columns(prices)
    source, sink = kafka_options(settings, "source"), kafka_options(settings, "sink")
    s = settings.stream
    delay_s = s.watermark_delay_ms / 1000

    # --- source -------------------------------------------------------------------------
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE spans_in ({SPAN_COLUMNS},
  event_time AS TO_TIMESTAMP_LTZ(end_ms, 3),
  WATERMARK FOR event_time AS event_time - INTERVAL '{delay_s:.3f}' SECOND
) WITH ({source}, 'topic' = '{topics.SPANS.name}',
  'properties.group.id' = '{s.consumer_group}',
  'scan.startup.mode' = 'group-offsets', 'properties.auto.offset.reset' = 'earliest',
  'format' = 'json', 'json.fail-on-missing-field' = 'false', 'json.ignore-parse-errors' = 'false')""")

    # --- operations ---------------------------------------------------------------------
    # One trace in one place (the collector keys the raw topic by trace): spans once, calls once,
    # attribution from ancestors (stream_jobs/jvm/.../trace/TraceAssembler.java).
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {ASSEMBLER_FUNCTION} AS '{ASSEMBLER_CLASS}' LANGUAGE JAVA")
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW raw_records AS
SELECT kind, {SOURCE_COLUMNS}, {ASSEMBLY_KEY} AS assembly_key, event_time
FROM spans_in WHERE kind IN ('span', 'context')""")
    # A Table API view: a SQL view's text is re-validated where it is used, and Flink 2.3's
    # validator fails on a process table function call read back from a view's text.
    t_env.create_temporary_view("assembled", t_env.sql_query(f"""
SELECT * FROM {ASSEMBLER_FUNCTION}(input => TABLE raw_records PARTITION BY (tenant, assembly_key),
  on_time => DESCRIPTOR(event_time), pending_ms => CAST({s.attribution_pending_ms} AS BIGINT),
  max_per_trace => {s.max_spans_per_trace}, uid => 'trace-assembler')"""))
    # Calls, tool calls (execute_tool spans) and attribution records take ONE chain from the
    # assembler to the priced-spans sink: an operator with two inputs (a UNION, or two INSERTs
    # into one topic) breaks Flink's operator chain, its inputs arrive through separate network
    # buffers, and an amendment could overtake its call and find nothing to amend in the loader
    # (seen in the conformance suite: a call never attributed). Only calls are priced.
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW priced AS
SELECT {PASS_THROUGH}, record, revision, rowtime AS event_time,
  {price_columns},
  {edge_rate_case(edge)} AS p_edge,
  {cloud_equivalent_cost_case(edge, prices)} AS cloud_equivalent_cost
FROM assembled
WHERE record = 'span' OR record = 'attribution' OR (record = 'context' AND operation = 'execute_tool')""")
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW costed AS
SELECT {PASS_THROUGH}, record, revision, catalog_model, event_time,
  {cost_columns()}
FROM priced""")
    late = "(CURRENT_WATERMARK(event_time) IS NOT NULL AND event_time <= CURRENT_WATERMARK(event_time))"
    t_env.execute_sql(f"CREATE TEMPORARY VIEW classified AS SELECT *, record = 'span' AND {late} AS is_late FROM costed")
    t_env.execute_sql("CREATE TEMPORARY VIEW on_time_spans AS SELECT * FROM classified WHERE record = 'span' AND NOT is_late")

    # --- sinks --------------------------------------------------------------------------
    # Keyed by trace: a call, its tool spans and its later attribution record reach one
    # partition in order, so the loader stores the row before it amends it.
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE priced_spans_out ({SPAN_COLUMNS.replace('kind STRING, schema_version INT,', '')},
  record STRING, revision INT, catalog_model STRING,
  priced BOOLEAN, cost_usd DECIMAL(38, 12), edge_cost_usd DECIMAL(38, 12),
  cloud_equivalent_cost_usd DECIMAL(38, 12), is_late BOOLEAN
) WITH ({sink}, 'topic' = '{topics.PRICED_SPANS.name}', 'sink.delivery-guarantee' = 'at-least-once',
  'key.format' = 'json', 'key.fields' = 'tenant;trace_id', 'value.fields-include' = 'ALL',
  'value.format' = 'json', 'value.json.encode.decimal-as-plain-number' = 'true')""")
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE rollups_out (
  tenant STRING, team STRING, service STRING, provider STRING, model STRING,
  runtime_kind STRING, runtime_id STRING, api_key_id STRING,
  window_start TIMESTAMP(3), window_end TIMESTAMP(3),
  calls BIGINT, error_calls BIGINT, unpriced_calls BIGINT,
  input_tokens BIGINT, cached_input_tokens BIGINT, cache_creation_input_tokens BIGINT,
  output_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DECIMAL(38, 12),
  edge_cost_usd DECIMAL(38, 12), cloud_equivalent_cost_usd DECIMAL(38, 12),
  input_audio_tokens BIGINT, output_audio_tokens BIGINT, input_images BIGINT, output_images BIGINT,
  input_audio_seconds BIGINT, semantic_cache_hits BIGINT, usage_missing_calls BIGINT
) WITH ({sink}, 'topic' = '{topics.ROLLUPS_1M.name}', 'sink.delivery-guarantee' = 'at-least-once',
  'format' = 'json', 'json.encode.decimal-as-plain-number' = 'true')""")

    statements = t_env.create_statement_set()
    zero = "CAST(0 AS DECIMAL(38, 12))"
    statements.add_insert_sql(f"""
INSERT INTO priced_spans_out
SELECT {PASS_THROUGH.replace('service_tier', 'service_tier, CAST(NULL AS STRING)')},
  record, revision, CASE WHEN record = 'span' THEN catalog_model END, record = 'span' AND priced,
  CASE WHEN record = 'span' THEN cost_usd ELSE {zero} END, CASE WHEN record = 'span' THEN edge_cost_usd ELSE {zero} END,
  CASE WHEN record = 'span' THEN cloud_equivalent_cost_usd ELSE {zero} END, is_late
FROM classified""")
    statements.add_insert_sql(f"""
INSERT INTO rollups_out
SELECT {DIMENSIONS}, window_start, window_end,
  COUNT(*), COUNT(*) FILTER (WHERE status = 'error'), COUNT(*) FILTER (WHERE NOT priced),
  {billed_sum('input_tokens')}, {billed_sum('cached_input_tokens')}, {billed_sum('cache_creation_input_tokens')},
  {billed_sum('output_tokens')}, {billed_sum('reasoning_tokens')}, SUM(cost_usd),
  SUM(edge_cost_usd), SUM(cloud_equivalent_cost_usd),
  {billed_sum('input_audio_tokens')}, {billed_sum('output_audio_tokens')}, {billed_sum('input_images')},
  {billed_sum('output_images')}, {billed_sum('input_audio_seconds')}, COUNT(*) FILTER (WHERE semantic_cache_hit),
  COUNT(*) FILTER (WHERE usage_missing)
FROM TABLE(TUMBLE(TABLE on_time_spans, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY {DIMENSIONS}, window_start, window_end""")
    return statements


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tokenpulse.stream_jobs.cost_rollup",
        description="Price LLM calls and emit 1-minute spend rollups (PyFlink, local MiniCluster by default).",
    )
    parser.add_argument("--connector-jar", type=Path, help="flink-sql-connector-kafka jar (default: the cached one)")
    parser.add_argument("--no-resume", action="store_true", help="ignore retained checkpoints and start fresh")
    parser.add_argument("--explain", action="store_true", help="print the optimized plan and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    settings = Settings()
    prices = load_prices(settings)
    edge = load_edge_profiles(settings.stream.edge_profiles_file)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    checkpoint_root = (settings.paths.state_dir / "flink" / "checkpoints" / f"state-v{STATE_LAYOUT_VERSION}"
                       if settings.stream.checkpoints == "local" else None)  # None: the cluster's storage
    configure(t_env, settings, checkpoint_dir=checkpoint_root)
    jar = args.connector_jar or next(iter(sorted(settings.paths.flink_jars.glob("flink-sql-connector-kafka-*.jar"))), None)
    jars = [jar] if jar is not None else []  # on a cluster the jar may come from `flink run -j` instead
    jars.append(udf_jar(settings.paths))  # the trace assembler and the price lookup
    if jars:
        t_env.get_config().set("pipeline.jars", ";".join(j.resolve().as_uri() for j in jars))
    recovery = recovery_path(checkpoint_root, settings.stream.resume and not args.no_resume)
    if recovery is not None:
        t_env.get_config().set("execution.state-recovery.path", recovery)

    statements = build(t_env, settings, prices, edge)
    if args.explain:
        print(statements.explain())
        return
    log.info("submitting %s: %d priced models, watermark delay %d ms, parallelism %d",
             JOB_NAME, len(prices.prices), settings.stream.watermark_delay_ms, settings.stream.parallelism)
    run_to_end(statements, JOB_NAME, t_env)


if __name__ == "__main__":
    main()
