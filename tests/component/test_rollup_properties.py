"""Properties of the storage model on a real ClickHouse engine (in-memory chDB):
any split of a window's calls into the stream's rollup part and late-span parts sums to the
per-call costs; rebuilding from raw rows and repricing with the same catalog reconcile to 0."""

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.price_fixtures import handwritten_prices

from tokenpulse.loader import rows
from tokenpulse.loader.reprice import period_params, rebuild_rollups_statements, reprice_spans_sql
from tokenpulse.schemas.edge_profiles import load_edge_profiles
from tokenpulse.schemas.pricing import call_cost_usd

PRICES, EDGE = handwritten_prices(), load_edge_profiles()
BASE_MS = 1763900000000 - 1763900000000 % 60000  # a minute boundary in 2025
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"), ("openai", "nope")]


call = st.tuples(st.sampled_from(MODELS), st.integers(0, 5), st.integers(0, 59_999), st.integers(0, 20_000),
                 st.integers(0, 100), st.integers(0, 3_000), st.booleans(), st.sampled_from(["a", "b"]))


def span_doc(tenant, i, c):
    (provider, model), minute, offset, inp, cached_pct, out, _, team = c
    cached = inp * cached_pct // 100
    end_ms = BASE_MS + minute * 60_000 + offset
    price = PRICES.price_at(provider, model, end_ms, inp)
    cost = call_cost_usd(price, input_tokens=inp, cached_input_tokens=cached, cache_creation_input_tokens=0,
                         output_tokens=out) if price else Decimal(0)
    return {"tenant": tenant, "service": "svc", "team": team, "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
            "operation": "chat", "provider": provider, "model": model, "runtime_kind": "cloud",
            "runtime_id": provider, "start_ms": end_ms - 500, "end_ms": end_ms, "received_ms": end_ms,
            "input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out, "status": "ok",
            "priced": price is not None, "cost_usd": cost, "is_late": False}


def stream_rollup_row(docs):
    """What the Flink window emits for one group: the sums of its on-time calls."""
    d0 = docs[0]
    row = {k: d0[k] for k in ("tenant", "team", "service", "provider", "model", "runtime_kind", "runtime_id")}
    start = datetime.fromtimestamp(d0["end_ms"] // 60000 * 60, tz=UTC)
    row.update(window_start=start, part="", calls=len(docs), error_calls=0,
               unpriced_calls=sum(not d["priced"] for d in docs), cost_usd=sum(d["cost_usd"] for d in docs),
               edge_cost_usd=Decimal(0), cloud_equivalent_cost_usd=Decimal(0), semantic_cache_hits=0,
               api_key_id="", usage_missing_calls=0,
               **{f: sum(d.get(f, 0) for d in docs) for f in rows.USAGE_COUNTS})
    return [row[c] for c in rows.SPEND_1M_COLUMNS]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(call, min_size=1, max_size=30))
def test_any_split_into_parts_sums_to_the_calls_and_rebuild_reconciles(store, calls):
    tenant = f"t{uuid.uuid4().hex[:10]}"
    docs = [span_doc(tenant, i, c) for i, c in enumerate(calls)]
    store.insert("token_spans", [rows.priced_span_row(d) for d in docs], column_names=rows.TOKEN_SPAN_COLUMNS)

    groups, late = defaultdict(list), []
    for d, c in zip(docs, calls):
        if c[6]:  # this call missed its window: its own part
            late.append(rows.late_span_rollup_row(d))
        else:
            groups[(d["end_ms"] // 60000, d["team"], d["model"])].append(d)
    parts = late + [stream_rollup_row(g) for g in groups.values()]
    store.insert("spend_1m", parts, column_names=rows.SPEND_1M_COLUMNS)

    expected = defaultdict(Decimal)
    for d in docs:
        expected[d["end_ms"] // 60000 * 60] += d["cost_usd"]
    got = dict(store.query("SELECT toUnixTimestamp(window_start), sum(cost_usd) FROM spend_1m FINAL "
                           "WHERE tenant = {t:String} GROUP BY 1", parameters={"t": tenant}).result_rows)
    assert got == dict(expected)

    period = period_params(tenant, datetime.fromtimestamp(BASE_MS / 1000, tz=UTC),
                           datetime.fromtimestamp(BASE_MS / 1000, tz=UTC) + timedelta(minutes=10))
    store.command(reprice_spans_sql(PRICES, EDGE), parameters=period)
    for statement in rebuild_rollups_statements():
        store.command(statement, parameters=period)
    raw, rolled = store.query(
        "SELECT (SELECT sum(cost_usd) FROM token_spans FINAL WHERE tenant = {t:String}), "
        "(SELECT sum(cost_usd) FROM spend_1m FINAL WHERE tenant = {t:String})", parameters={"t": tenant}
    ).result_rows[0]
    assert raw == rolled == sum(expected.values())
