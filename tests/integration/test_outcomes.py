"""Outcome events end to end on the real stack: an app records LLM calls with the SDK (OTLP/HTTP
to the collector) and the outcomes of its sessions and of one trace with sdk.record_outcome
(POST /v1/outcomes) -> Kafka -> loader -> chDB `outcomes`; cost_per_outcome.sql joins them to
the priced calls. Expected numbers are worked out in the test from gpt-4o's price in the
raw price YAML files (tests/testkit/price_fixtures.py); a retried outcome counts once and an invalid one is a dead letter."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from helpers import wait_for
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from testkit import price_fixtures

from tokenpulse.sdk import record_llm_call, record_outcome
from tokenpulse.sql_client import run_sql, saved_query

pytestmark = pytest.mark.integration
KEY = "demo-acme-key"  # tenant acme in schemas/tenants.demo.yaml


def gpt4o_cost(inp: int, out: int) -> Decimal:
    return price_fixtures.independent_cost("openai", "gpt-4o", inp, 0, 0, out)


def test_cost_per_outcome_from_spans_and_outcomes_sent_through_the_collector(stack_settings):
    run = uuid.uuid4().hex[:8]
    endpoint = f"http://{stack_settings.collector.host}:{stack_settings.collector.port}"
    team, service = f"outc-{run}", f"it-outcomes-{run}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {KEY}"})))

    # (session, agent, input, output); the last call is its own trace, judged by trace id
    calls = [(f"{run}-a", "closer", 1000, 200), (f"{run}-a", "closer", 1000, 200),
             (f"{run}-b", "closer", 3000, 500), (None, "researcher", 10_000, 1000)]
    trace_id = None
    for session, agent, inp, out in calls:
        with record_llm_call(provider="openai", model="gpt-4o", session_id=session, agent_name=agent, team=team,
                             tracer_provider=provider) as call:
            call.set_usage(input_tokens=inp, output_tokens=out)
            trace_id = format(call.span.get_span_context().trace_id, "032x")
    provider.shutdown()

    common = dict(endpoint=endpoint, api_key=KEY, service=service, team=team)
    record_outcome(f"{run}-o1", "success", session_id=f"{run}-a", agent_name="closer", value="12.50",
                   value_unit="USD", **common)
    record_outcome(f"{run}-o1", "success", session_id=f"{run}-a", agent_name="closer", value="12.50",
                   value_unit="USD", **common)  # a retried send: replaces itself
    record_outcome(f"{run}-o2", "failure", session_id=f"{run}-b", agent_name="closer", value="0", value_unit="USD",
                   **common)
    record_outcome(f"{run}-o3", "success", trace_id=trace_id, agent_name="researcher", value="7", value_unit="USD",
                   **common)
    # A record with no work named is dead-lettered with the reason; the request still answers 200.
    req = urllib.request.Request(f"{endpoint}/v1/outcomes", method="POST", data=json.dumps(
        {"outcome_id": f"{run}-bad", "status": "success", "service": service, "team": team}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["rejected"] == 1

    rows = wait_for(stack_settings, "SELECT (SELECT count() FROM token_spans FINAL WHERE team = {t:String}), "
                    "(SELECT count() FROM outcomes FINAL WHERE team = {t:String}), "
                    "(SELECT count() FROM dead_letters WHERE position(excerpt, {bad:String}) > 0)",
                    {"t": team, "bad": f"{run}-bad"}, lambda r: r and [int(x) for x in r[0]] == [4, 3, 1])
    assert [int(x) for x in rows[0]] == [4, 3, 1], rows
    reason = run_sql(stack_settings, "SELECT stage, reason FROM dead_letters WHERE position(excerpt, {bad:String}) > 0",
                     {"bad": f"{run}-bad"}).rows[0]
    assert reason[0] == "collector" and "session_id or trace_id" in reason[1]
    assert run_sql(stack_settings, "SELECT count() FROM outcomes WHERE tenant = 'acme' AND outcome_id = {o:String}",
                   {"o": f"{run}-o1"}).rows[0][0] >= 1

    today = datetime.now(UTC).date()
    result = run_sql(stack_settings, saved_query("cost_per_outcome"),
                     {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}).as_dicts()
    money = ("cost_usd", "cost_per_success_usd", "value", "value_per_usd")  # decimal strings via the loader
    got = {r["agent_name"]: {**r, **{k: Decimal(str(r[k])) for k in money if r[k] is not None}}
           for r in result if r["team"] == team}
    assert set(got) == {"closer", "researcher"}

    closer_cost = 2 * gpt4o_cost(1000, 200) + gpt4o_cost(3000, 500)  # sessions a and b
    closer = got["closer"]
    assert (closer["tenant"], closer["service"], closer["value_unit"]) == ("acme", service, "USD")
    assert [int(closer[k]) for k in ("outcomes", "successes", "failures", "without_spans")] == [2, 1, 1, 0]
    assert int(closer["tokens"]) == 2 * 1200 + 3500
    assert closer["cost_usd"] == closer_cost == Decimal("0.0215")
    assert closer["cost_per_success_usd"] == closer_cost  # the failed session's spend counts
    assert closer["value"] == Decimal("12.5")
    assert closer["value_per_usd"] == (Decimal("12.5") / closer_cost).quantize(Decimal("1e-12"), rounding="ROUND_DOWN")

    researcher_cost = gpt4o_cost(10_000, 1000)
    r = got["researcher"]
    assert (int(r["outcomes"]), int(r["successes"]), int(r["tokens"]), r["cost_usd"]) == (1, 1, 11_000, researcher_cost)
    assert r["value_per_usd"] == Decimal(7) / researcher_cost == 200
