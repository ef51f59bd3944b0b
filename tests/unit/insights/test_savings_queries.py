"""Measured savings and cost per outcome on a real ClickHouse engine (in-memory chDB), with
hand-made token_spans rows and numbers worked out by hand from schemas/prices.yaml:

  claude-sonnet-4  input $3.00  cache read $0.30  cache write $3.75  output $15.00 per 1M
  gpt-4o           input $2.50                                       output $10.00 per 1M
  gpt-4o-mini      input $0.15                                       output  $0.60 per 1M
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tokenpulse.insights.jevons import SavingsEvaluator
from tokenpulse.insights.runner import query_fn_for_client, sql_insert
from tokenpulse.loader import rows
from tokenpulse.schemas.growth import GrowthConfig
from tokenpulse.schemas.outcomes import OUTCOME_COLUMNS, OutcomeEvent, outcome_row
from tokenpulse.schemas.pricing import call_cost_usd, load_price_table
from tokenpulse.sql import QUERIES_DIR

PRICES = load_price_table()
DAY = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
NOW = DAY + timedelta(hours=8)


_n = iter(range(1, 10_000))


def span(tenant, *, provider, model, cost, request_model=None, response_model=None, inp=0, cached=0, cw=0, out=0,
         at=DAY, runtime_kind="cloud", runtime_id=None, edge_cost="0", cloud_equivalent="0", session_id=None,
         trace_id=None, team="t1", service="app", semantic_cache_hit=False):
    i = next(_n)
    end_ms = int(at.timestamp() * 1000)
    doc = dict(tenant=tenant, service=service, team=team, trace_id=trace_id or f"{i:032x}", span_id=f"{i:016x}",
               operation="chat", provider=provider, model=model, request_model=request_model,
               response_model=response_model, runtime_kind=runtime_kind, runtime_id=runtime_id or provider,
               start_ms=end_ms - 2000, end_ms=end_ms, received_ms=end_ms, input_tokens=inp,
               cached_input_tokens=cached, cache_creation_input_tokens=cw, output_tokens=out, status="ok",
               priced=True, cost_usd=Decimal(cost), edge_cost_usd=Decimal(edge_cost),
               cloud_equivalent_cost_usd=Decimal(cloud_equivalent), is_late=False, session_id=session_id,
               semantic_cache_hit=semantic_cache_hit)
    return rows.priced_span_row(doc)


def catalog_cost(provider, model, inp, cached=0, cw=0, out=0):
    price = PRICES.price_at(provider, model, int(DAY.timestamp() * 1000), inp)
    return call_cost_usd(price, input_tokens=inp, cached_input_tokens=cached, cache_creation_input_tokens=cw,
                         output_tokens=out)


@pytest.fixture(scope="module")
def tenant(store):
    t = f"savco{uuid.uuid4().hex[:6]}"
    # the hand numbers below are what the catalog says
    assert catalog_cost("anthropic", "claude-sonnet-4", 100_000, 80_000, 10_000, 1_000) == Decimal("0.1065")
    assert catalog_cost("openai", "gpt-4o-mini", 10_000, out=2_000) == Decimal("0.0027")
    spans = [
        # prompt cache: paid 10k x $3 + 80k x $0.30 + 10k x $3.75 + 1k x $15 (per 1M) = $0.1065;
        # without the cache all 100k input at $3: $0.30 + $0.015 = $0.315; saving $0.2085
        span(t, provider="anthropic", model="claude-sonnet-4", inp=100_000, cached=80_000, cw=10_000, out=1_000,
             cost="0.1065"),
        # the day before: 40k of 50k cached on gpt-4o: paid 10k x 2.5 + 40k x 1.25 = $0.075, saving 40k x 1.25 = $0.05
        span(t, provider="openai", model="gpt-4o", inp=50_000, cached=40_000, cost="0.075", at=DAY - timedelta(days=1)),
        # routed: asked for gpt-4o, served by gpt-4o-mini: paid $0.0027; at gpt-4o 10k x 2.5 + 2k x 10 = $0.045
        span(t, provider="openai", model="gpt-4o-mini", request_model="gpt-4o", response_model="gpt-4o-mini",
             inp=10_000, out=2_000, cost="0.0027"),
        # a dated version of the requested model is not routing (same price)
        span(t, provider="openai", model="gpt-4o-2024-08-06", request_model="gpt-4o",
             response_model="gpt-4o-2024-08-06", inp=1_000, out=100, cost="0.0035"),
        # routed from a model the catalog does not know: counted, no saving guessed
        span(t, provider="openai", model="gpt-4o-mini", request_model="gpt-9", response_model="gpt-4o-mini",
             inp=1_000, out=100, cost="0.00021"),
        # edge with a cloud equivalent: paid $0.0004 (hardware + energy) vs $0.0021 in the cloud
        span(t, provider="ollama", model="llama3.1:8b", runtime_kind="edge", runtime_id="edge-plant-01", inp=5_000,
             out=1_000, cost="0.0004", edge_cost="0.0004", cloud_equivalent="0.0021"),
        # edge without a cloud equivalent: counted as uncounted
        span(t, provider="ollama", model="llama3.1:8b", runtime_kind="edge", runtime_id="box-x", inp=10, out=10,
             cost="0.00001", edge_cost="0.00001"),
        # no lever at all, and a cached call outside the lookback: no rows
        span(t, provider="openai", model="gpt-4o", inp=1_000, out=1_000, cost="0.0125"),
        span(t, provider="openai", model="gpt-4o", inp=1_000, cached=1_000, cost="0.00125", at=DAY - timedelta(days=9)),
        # semantic-cache hit (paid 0): would have been 3k x 2.5 + 1k cached x 1.25 + 500 x 10 = $0.01375 on
        # gpt-4o; its cache reads and differing request model are not prompt-cache or routing savings
        span(t, provider="openai", model="gpt-4o", request_model="gpt-4.1", inp=4_000, cached=1_000, out=500,
             cost="0", semantic_cache_hit=True),
        # a hit naming a model the catalog does not know: counted, no saving guessed
        span(t, provider="openai", model="in-house-model", inp=100, out=10, cost="0", semantic_cache_hit=True),
    ]
    store.insert("token_spans", spans, column_names=rows.TOKEN_SPAN_COLUMNS)
    store.insert("token_spans", spans[:1], column_names=rows.TOKEN_SPAN_COLUMNS)  # re-delivered: counts once
    return t


def test_savings_rows_by_hand(store, tenant):
    got = [r for r in SavingsEvaluator(GrowthConfig(), PRICES).rows(query_fn_for_client(store), NOW)
           if r["tenant"] == tenant]
    by = {(r["day"], r["lever"], r["model"]): r for r in got}
    assert set(by) == {(date(2025, 11, 20), "prompt_cache", "claude-sonnet-4"),
                       (date(2025, 11, 19), "prompt_cache", "gpt-4o"),
                       (date(2025, 11, 20), "routing", "gpt-4o-mini"),
                       (date(2025, 11, 20), "edge", "llama3.1:8b"),
                       (date(2025, 11, 20), "semantic_cache", "gpt-4o"),
                       (date(2025, 11, 20), "semantic_cache", "in-house-model")}
    cache = by[(date(2025, 11, 20), "prompt_cache", "claude-sonnet-4")]
    assert (cache["calls"], cache["lever_tokens"]) == (1, 90_000)
    assert (cache["actual_cost_usd"], cache["counterfactual_cost_usd"], cache["saving_usd"]) == (
        Decimal("0.1065"), Decimal("0.315"), Decimal("0.2085"))
    assert by[(date(2025, 11, 19), "prompt_cache", "gpt-4o")]["saving_usd"] == Decimal("0.05")
    routing = by[(date(2025, 11, 20), "routing", "gpt-4o-mini")]
    assert (routing["calls"], routing["uncounted_calls"], routing["lever_tokens"]) == (1, 1, 12_000)
    assert (routing["actual_cost_usd"], routing["counterfactual_cost_usd"], routing["saving_usd"]) == (
        Decimal("0.0027"), Decimal("0.045"), Decimal("0.0423"))
    edge = by[(date(2025, 11, 20), "edge", "llama3.1:8b")]
    assert (edge["calls"], edge["uncounted_calls"], edge["saving_usd"]) == (1, 1, Decimal("0.0017"))
    hit = by[(date(2025, 11, 20), "semantic_cache", "gpt-4o")]
    assert (hit["calls"], hit["lever_tokens"], hit["uncounted_calls"]) == (1, 4_500, 0)
    assert (hit["actual_cost_usd"], hit["counterfactual_cost_usd"], hit["saving_usd"]) == (
        Decimal(0), Decimal("0.01375"), Decimal("0.01375"))
    unknown = by[(date(2025, 11, 20), "semantic_cache", "in-house-model")]
    assert (unknown["calls"], unknown["uncounted_calls"], unknown["saving_usd"]) == (0, 1, Decimal(0))


def test_saved_query_totals_by_lever(store, tenant):
    ev = SavingsEvaluator(GrowthConfig(), PRICES)
    query = query_fn_for_client(store)
    [(table, columns, data)], alerts = ev.evaluate(query, NOW)
    assert table == "savings_daily" and alerts == []
    sql_insert(query)(table, data, columns)  # the runner's JSON insert path: money stays exact
    assert ev.evaluate(query, NOW + timedelta(minutes=1)) == ([], [])  # throttled
    r = store.query((QUERIES_DIR / "savings_measured.sql").read_text(),
                    parameters={"from": "2025-11-01", "to": "2025-12-01"})
    got = {x[3]: dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == tenant}
    assert got["prompt_cache"]["saving_usd"] == Decimal("0.2585")  # 0.2085 + 0.05
    assert got["prompt_cache"]["without_lever_usd"] == Decimal("0.44")  # 0.315 + 0.125
    assert got["prompt_cache"]["saving_pct"] == pytest.approx(58.75)
    assert (got["routing"]["saving_usd"], got["routing"]["uncounted_calls"]) == (Decimal("0.0423"), 1)
    assert (got["edge"]["paid_usd"], got["edge"]["without_lever_usd"]) == (Decimal("0.0004"), Decimal("0.0021"))


def outcome(tenant, oid, status, *, session_id=None, trace_id=None, value=None, unit="", agent="closer"):
    ms = int(DAY.timestamp() * 1000)
    return OutcomeEvent(tenant=tenant, outcome_id=oid, service="helpdesk", team="support", agent_name=agent,
                        session_id=session_id, trace_id=trace_id, task="ticket", status=status,
                        value=None if value is None else Decimal(value), value_unit=unit, occurred_ms=ms,
                        received_ms=ms)


def test_cost_per_successful_outcome_and_value_per_dollar(store):
    t = f"outco{uuid.uuid4().hex[:6]}"
    store.insert("token_spans", [
        # session s1: $0.30 over two calls; s2: $0.10; trace tr: $0.05; s3 has no outcome
        span(t, provider="openai", model="gpt-4o", inp=1, cost="0.20", session_id="s1"),
        span(t, provider="openai", model="gpt-4o", inp=1, cost="0.10", session_id="s1"),
        span(t, provider="openai", model="gpt-4o", inp=1, cost="0.10", session_id="s2"),
        span(t, provider="openai", model="gpt-4o", inp=1, cost="0.05", trace_id="ab" * 16),
        span(t, provider="openai", model="gpt-4o", inp=1, cost="9.99", session_id="s3"),
    ], column_names=rows.TOKEN_SPAN_COLUMNS)
    events = [outcome(t, "o1", "success", session_id="s1", value="12.50", unit="USD"),
              outcome(t, "o2", "failure", session_id="s2"),
              outcome(t, "o3", "success", trace_id="ab" * 16, value="2.50", unit="USD")]
    store.insert("outcomes", [outcome_row(e) for e in events] + [outcome_row(events[0])],  # retried send
                 column_names=OUTCOME_COLUMNS)
    r = store.query((QUERIES_DIR / "cost_per_outcome.sql").read_text(),
                    parameters={"from": "2025-11-20", "to": "2025-11-21"})
    got = {x[4]: dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == t}
    usd, none = got["USD"], got[""]
    # two successes worth $15.00 for $0.35 of work; the failed ticket cost $0.10
    assert (usd["outcomes"], usd["successes"], usd["cost_usd"], usd["value"]) == (2, 2, Decimal("0.35"), Decimal(15))
    assert usd["cost_per_success_usd"] == Decimal("0.175")
    assert usd["value_per_usd"] == Decimal("42.857142857142")  # 15 / 0.35, truncated at 12 places
    assert (none["failures"], none["cost_usd"], none["cost_per_success_usd"]) == (1, Decimal("0.1"), None)


def test_outcome_event_validation():
    ok = outcome("acme", "task-1", "success", session_id="s", value="3", unit="tickets")
    assert OutcomeEvent.model_validate_json(ok.model_dump_json()) == ok
    for bad in (dict(session_id=None), dict(value=Decimal(1), value_unit=""), dict(value_unit="USD"),
                dict(outcome_id="has space"), dict(status="maybe")):
        with pytest.raises(ValidationError):
            OutcomeEvent.model_validate({**ok.model_dump(), "value": None, "value_unit": "", **bad})
