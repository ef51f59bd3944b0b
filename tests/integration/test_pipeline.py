"""End to end on the real components: OTel SDK -> OTLP/HTTP -> collector -> Kafka ->
PyFlink job -> Kafka -> loader -> chDB. Totals are computed independently in the test."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC
from decimal import Decimal

import pytest
import yaml
from helpers import wait_for
from kafka import KafkaConsumer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from testkit import price_fixtures

from tokenpulse.schemas import topics
from tokenpulse.settings import REPO_ROOT
from tokenpulse.sql_client import run_sql

pytestmark = pytest.mark.integration
KEYS = {"acme": "demo-acme-key", "globex": "demo-globex-key"}

# (tenant, team, provider, model, input, cache_read, cache_creation, output, reasoning)
CALL_SHAPES = [
    ("acme", "support", "openai", "gpt-4o", 1200, 400, 0, 300, 0),
    ("acme", "research", "anthropic", "claude-sonnet-4-20250514", 20000, 15000, 2000, 900, 0),
    ("acme", "platform", "openai", "o4-mini", 3000, 0, 0, 2500, 1800),
    ("acme", "operations", "ollama", "llama3.1:8b", 800, 0, 0, 200, 0),  # edge-plant-01: hardware + energy
    ("globex", "data", "openai", "gpt-5-experimental", 500, 0, 0, 100, 0),  # unknown: unpriced, counted
    ("globex", "sales", "anthropic", "claude-3-5-haiku", 4000, 1000, 500, 700, 0),
    ("globex", "batch-jobs", "openai", "gpt-4o", 9000, 0, 0, 1500, 0, "batch"),  # batch API prices
]


def independent_cost(provider: str, model: str, inp: int, cr: int, cc: int, out: int, tier: str = "standard") -> Decimal:
    """Re-derives the price from the raw YAML files (local over catalog), without the project's pricing code."""
    return price_fixtures.independent_cost(provider, model, inp, cr, cc, out, tier)


def independent_edge_rate(runtime_id: str) -> Decimal:
    """USD per busy ms from the raw profile YAML: (hardware + energy) as the model documents it."""
    doc = yaml.safe_load((REPO_ROOT / "schemas" / "edge_profiles.yaml").read_text())
    p = next(x for x in doc["profiles"] if x["runtime_id"] == runtime_id)
    d = lambda k: Decimal(str(p[k]))  # noqa: E731
    u = d("expected_utilization")
    lifetime_ms = p["depreciation_months"] * Decimal(30.4375 * 24 * 3600 * 1000)
    hardware = (d("hardware_price_usd") / (lifetime_ms * u)).quantize(Decimal("1e-12"))
    energy = ((d("load_watts") + d("idle_watts") * (1 - u) / u) * d("pue") * d("energy_usd_per_kwh")
              / Decimal(3_600_000_000)).quantize(Decimal("1e-12"))
    return hardware + energy


EDGE_RUNTIME = "edge-plant-01"


def busy_ms(end_ns: int, i: int) -> int:
    """The collector's busy time for the i-th span record_spans makes (ms floors of its times)."""
    return (end_ns + i) // 1_000_000 - (end_ns - 10**9) // 1_000_000


def record_spans(tenant: str, run: str, calls: list[tuple], end_ns: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"it-{tenant}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("integration")
    for i, (_, team, prov, model, inp, cr, cc, out, rsn, *tier) in enumerate(calls):
        span = tracer.start_span(f"chat {model}", start_time=end_ns - 10**9, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": prov, "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.cache_read.input_tokens": cr,
            "gen_ai.usage.cache_creation.input_tokens": cc, "gen_ai.usage.output_tokens": out,
            "gen_ai.usage.reasoning.output_tokens": rsn, "gen_ai.conversation.id": f"{run}-{team}",
            "tokenpulse.team": team, **({"tokenpulse.runtime.id": EDGE_RUNTIME} if prov == "ollama" else {}),
            **({"tokenpulse.request.batch": True} if tier == ["batch"] else {})})
        span.end(end_time=end_ns + i)
    return list(memory.get_finished_spans())


def export(settings, tenant: str, spans: list) -> None:
    url = f"http://{settings.collector.host}:{settings.collector.port}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": f"Bearer {KEYS[tenant]}"})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def test_rollups_equal_independent_totals_and_duplicates_count_once(stack_settings):
    run = uuid.uuid4().hex[:8]
    repeats = 10
    expected = defaultdict(lambda: [0, 0, 0, Decimal(0)])  # calls, input, output, cost
    now_ns = time.time_ns()
    for tenant in KEYS:
        calls = [c for c in CALL_SHAPES if c[0] == tenant] * repeats
        spans = record_spans(tenant, run, calls, now_ns)
        export(stack_settings, tenant, spans)
        export(stack_settings, tenant, spans[:5])  # a retrying exporter re-sends: must not double count
        for i, (_, team, prov, model, inp, cr, cc, out, _, *tier) in enumerate(calls):
            g = expected[(tenant, team, model)]
            g[0] += 1
            g[1] += inp
            g[2] += out
            g[3] += independent_cost(prov, model, inp, cr, cc, out, *tier)
            if prov == "ollama":
                g[3] += busy_ms(now_ns, i) * independent_edge_rate(EDGE_RUNTIME)
    total_calls = sum(g[0] for g in expected.values())

    params = {"run": f"{run}-%", "since": (now_ns // 10**9) - 120}
    raw = wait_for(stack_settings, """
        SELECT tenant, team, model, count(), sum(input_tokens), sum(output_tokens), sum(cost_usd)
        FROM token_spans FINAL WHERE session_id LIKE {run:String}
        GROUP BY tenant, team, model ORDER BY tenant, team, model""", params,
        lambda rows: sum(r[3] for r in rows) >= total_calls)
    got_raw = {(r[0], r[1], r[2]): [r[3], r[4], r[5], Decimal(r[6])] for r in raw}
    assert got_raw == {k: v for k, v in expected.items()}

    # Rollups: the run's spans all ended in the minute of now_ns (this tenant set is the test's own).
    rollups = wait_for(stack_settings, """
        SELECT tenant, team, model, sum(calls), sum(input_tokens), sum(output_tokens), sum(cost_usd)
        FROM spend_1m FINAL
        WHERE window_start = toStartOfMinute(toDateTime({since:UInt64} + 120, 'UTC'))
          AND service IN ('it-acme', 'it-globex')
        GROUP BY tenant, team, model ORDER BY tenant, team, model""", params,
        lambda rows: sum(r[3] for r in rows) >= total_calls, timeout_s=150)
    got = {(r[0], r[1], r[2]): [r[3], r[4], r[5], Decimal(r[6])] for r in rollups}
    # rollups group by the catalog model: dated snapshots fold into their model's series
    folded = {}
    for (tenant, team, model), v in expected.items():
        prov = next(c[2] for c in CALL_SHAPES if c[3] == model)
        entry = price_fixtures.independent_entry(prov, model, now_ns // 10**6)
        folded[(tenant, team, entry["model"] if entry else model)] = v
    assert ("acme", "research", "claude-sonnet-4-0") in folded  # claude-sonnet-4-20250514, folded
    assert got == folded

    unpriced = run_sql(stack_settings, "SELECT count() FROM token_spans FINAL WHERE NOT priced "
                       "AND model = 'gpt-5-experimental' AND session_id LIKE {run:String}", params).rows[0][0]
    assert unpriced == repeats
    edge = run_sql(stack_settings, "SELECT sum(edge_cost_usd), sum(cloud_equivalent_cost_usd), sum(cost_usd) "
                   "FROM token_spans FINAL WHERE runtime_id = {r:String} AND session_id LIKE {run:String}",
                   {**params, "r": EDGE_RUNTIME}).rows[0]
    assert Decimal(edge[0]) == Decimal(edge[2]) > 0  # an edge call's whole cost is hardware + energy
    # the counterfactual: the same tokens at the profile's cloud equivalent (gpt-4o-mini)
    assert Decimal(edge[1]) == repeats * independent_cost("openai", "gpt-4o-mini", 800, 0, 0, 200)

    # The FOCUS view: EffectiveCost is everything, BilledCost leaves out the edge's own hardware.
    focus = run_sql(stack_settings, """
        SELECT sum(EffectiveCost), sum(BilledCost) FROM focus_spend
        WHERE ResourceName IN ('it-acme', 'it-globex')
          AND ChargePeriodStart = toStartOfMinute(toDateTime({since:UInt64} + 120, 'UTC'))""", params).rows[0]
    total = sum(g[3] for g in expected.values())
    assert Decimal(focus[0]) == total
    assert Decimal(focus[1]) == total - Decimal(edge[0])


def test_late_span_is_counted_once_through_the_late_path(stack_settings):
    run = uuid.uuid4().hex[:8]
    ten_minutes_ago = time.time_ns() - 600 * 10**9
    shape = ("acme", "late-team", "openai", "gpt-4o", 1000, 0, 0, 100, 0)
    export(stack_settings, "acme", record_spans("acme", run, [shape], ten_minutes_ago))
    params = {"team": "late-team"}
    rows = wait_for(stack_settings, "SELECT count(), sum(calls), sum(cost_usd), any(part) FROM spend_1m FINAL "
                    "WHERE team = {team:String}", params, lambda r: r[0][0] >= 1, timeout_s=60)
    count, calls, cost, part = rows[0]
    assert (count, calls) == (1, 1)
    assert part != ""  # a late part, not a window rollup
    assert Decimal(cost) == independent_cost("openai", "gpt-4o", 1000, 0, 0, 100)
    late_flag = run_sql(stack_settings, "SELECT is_late FROM token_spans FINAL WHERE team = {team:String}", params).rows
    assert late_flag == [[True]] or late_flag == [[1]]


def _post(settings, body: bytes, content_type: str, key: str | None = "demo-acme-key"):
    url = f"http://{settings.collector.host}:{settings.collector.port}/v1/traces"
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_bad_input_gets_clear_errors_and_dead_letters(stack_settings):
    status, body = _post(stack_settings, b"{definitely not otlp", "application/json")
    assert status == 400 and "not valid JSON" in json.loads(body)["message"]
    status, body = _post(stack_settings, b"{}", "application/json", key="stolen-key")
    assert status == 401 and "unknown API key" in json.loads(body)["message"]

    marker = uuid.uuid4().hex
    trace = marker[:32]
    bad = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad"}}]},
           "scopeSpans": [{"spans": [
               {"traceId": trace, "spanId": "0000000000000001", "name": "neg", "startTimeUnixNano": "1",
                "endTimeUnixNano": "2", "attributes": [
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-10"}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}]},
               {"traceId": trace, "spanId": "0000000000000002", "name": "missing", "startTimeUnixNano": "1",
                "endTimeUnixNano": "2", "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "workflow"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
               # a successful chat call whose sender wrote no usage (a stream): kept, flagged
               {"traceId": trace, "spanId": "0000000000000003", "name": "chat gpt-4o", "startTimeUnixNano": "1",
                "endTimeUnixNano": "2", "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]}]}]}]}
    status, body = _post(stack_settings, json.dumps(bad).encode(), "application/json")
    assert status == 200 and json.loads(body)["partialSuccess"]["rejectedSpans"] == "2"

    consumer = KafkaConsumer(topics.DEAD_LETTERS.name, **stack_settings.kafka.client_options(),
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000, group_id=None)
    reasons = {}
    for record in consumer:
        doc = json.loads(record.value)
        if doc.get("trace_id") == trace:
            reasons[doc["span_id"]] = doc["reason"]
        if len(reasons) == 2:
            break
    consumer.close()
    assert "negative" in reasons["0000000000000001"]
    assert "missing token count gen_ai.usage.input_tokens" in reasons["0000000000000002"]
    assert "0000000000000003" not in reasons
    flagged = wait_for(stack_settings, "SELECT usage_missing, input_tokens, cost_usd FROM token_spans FINAL "
                       "WHERE trace_id = {t:String}", {"t": trace}, lambda r: len(r) >= 1, timeout_s=60)
    assert [(bool(r[0]), r[1], Decimal(r[2])) for r in flagged] == [(True, 0, Decimal(0))]

    # ... and they reach the dead_letters table; the collector is still healthy.
    rows = wait_for(stack_settings, "SELECT count() FROM dead_letters FINAL WHERE trace_id = {t:String}",
                    {"t": trace}, lambda r: r[0][0] >= 2, timeout_s=30)
    assert rows[0][0] == 2
    with urllib.request.urlopen(f"http://{stack_settings.collector.host}:{stack_settings.collector.port}/health") as r:
        assert json.loads(r.read())["status"] == "ok"


def test_reprice_in_clickhouse_matches_flink_and_applies_corrections(stack_settings):
    """ClickHouse re-evaluates the same generated pricing SQL: with the same catalog it must
    reproduce Flink's cost to the last digit; with a corrected price it moves by exactly the
    hand-computed difference, and raw spans and rollups reconcile afterwards."""
    from datetime import datetime, timedelta

    from tokenpulse.loader.reprice import (
        distinct_models_sql,
        period_params,
        rebuild_rollups_statements,
        reprice_spans_sql,
    )
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.pricing import PriceTable, load_price_table
    from tokenpulse.sql_client import saved_query

    run = uuid.uuid4().hex[:8]
    now_ns = time.time_ns()
    shapes = [c for c in CALL_SHAPES if c[0] == "acme"] * 3
    export(stack_settings, "acme", record_spans("acme", run, shapes, now_ns))
    q = ("SELECT span_id, cost_usd, edge_cost_usd, cloud_equivalent_cost_usd FROM token_spans FINAL "
         "WHERE session_id LIKE {run:String} ORDER BY span_id")
    params = {"run": f"{run}-%"}
    flink = wait_for(stack_settings, q, params, lambda r: len(r) >= len(shapes))
    assert len(flink) == len(shapes)

    minute = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).replace(second=0, microsecond=0)
    # Reprice only closed windows (as the CLI insists): wait until the stream has rolled this minute up.
    m = {"m": minute.strftime("%Y-%m-%d %H:%M:%S")}
    wait_for(stack_settings, """
        SELECT (SELECT count() FROM token_spans FINAL WHERE tenant = 'acme' AND toStartOfMinute(end_time) = {m:DateTime})
             = (SELECT sum(calls) FROM spend_1m FINAL WHERE tenant = 'acme' AND window_start = {m:DateTime})""",
             m, lambda r: bool(r[0][0]))
    period = period_params("acme", minute - timedelta(minutes=1), minute + timedelta(minutes=2))
    prices, edge = load_price_table(), load_edge_profiles()

    models = [(r[0], r[1]) for r in run_sql(stack_settings, distinct_models_sql(), period).rows]

    def reprice(table: PriceTable) -> None:
        run_sql(stack_settings, reprice_spans_sql(table, edge, models), period)
        for statement in rebuild_rollups_statements():
            run_sql(stack_settings, statement, period)

    reprice(prices)
    assert run_sql(stack_settings, q, params).rows == flink

    corrected = PriceTable.model_validate({**prices.model_dump(), "prices": [
        {**p.model_dump(), "input_usd_per_mtok": p.input_usd_per_mtok * 2} if p.model == "gpt-4o" else p.model_dump()
        for p in prices.prices]})
    before = Decimal(run_sql(stack_settings, "SELECT sum(cost_usd) FROM token_spans FINAL WHERE session_id LIKE "
                             "{run:String}", params).rows[0][0])
    reprice(corrected)
    after = Decimal(run_sql(stack_settings, "SELECT sum(cost_usd) FROM token_spans FINAL WHERE session_id LIKE "
                            "{run:String}", params).rows[0][0])
    gpt4o_calls = sum(1 for c in shapes if c[3] == "gpt-4o")
    assert after - before == gpt4o_calls * (1200 - 400) * Decimal("2.50") / 10**6  # uncached input, 2.50/M more
    diffs = [Decimal(r[6]) for r in run_sql(stack_settings, saved_query("reconcile_raw_vs_rollups"), {"days": 1}).rows]
    assert diffs and all(d == 0 for d in diffs)
    reprice(prices)  # leave the store as the stream priced it
