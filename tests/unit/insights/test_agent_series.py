"""sql/queries/agent_spend_series.sql on a real ClickHouse engine (in-memory chDB) with
hand-made token_spans rows: per-agent daily and weekly series, exact unit price, changes
against the previous period, and a re-delivered call counted once."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tokenpulse.loader import rows
from tokenpulse.sql import QUERIES_DIR

QUERY = (QUERIES_DIR / "agent_spend_series.sql").read_text()
MONDAY = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)  # a Monday
_n = iter(range(1, 10_000))


def call(tenant, agent, at, inp, out, cost, *, team="t1", span_id=None):
    i = next(_n)
    end_ms = int(at.timestamp() * 1000)
    return rows.priced_span_row(dict(
        tenant=tenant, service="app", team=team, agent_name=agent, trace_id=f"{i:032x}", span_id=span_id or f"{i:016x}",
        operation="chat", provider="openai", model="gpt-4o", runtime_kind="cloud", runtime_id="openai",
        start_ms=end_ms - 1000, end_ms=end_ms, received_ms=end_ms, input_tokens=inp, output_tokens=out,
        status="ok", priced=True, cost_usd=Decimal(cost), is_late=False))


def series(store, tenant, grain, frm="2026-10-05", to="2026-10-19"):
    r = store.query(QUERY, parameters={"from": frm, "to": to, "grain": grain})
    return [dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == tenant]


def test_per_agent_daily_and_weekly_series_by_hand(store):
    t = f"agents{uuid.uuid4().hex[:6]}"
    triage = [call(t, "triage", MONDAY, 1000, 200, "0.0045"),
              call(t, "triage", MONDAY + timedelta(hours=3), 2000, 0, "0.005"),
              call(t, "triage", MONDAY + timedelta(days=1), 1000, 0, "0.0025"),
              # week 2: half the price per token, three times the tokens
              call(t, "triage", MONDAY + timedelta(days=7), 9000, 0, "0.01125")]
    duplicate = list(triage[0])  # the same call re-delivered in another batch: counted once
    store.insert("token_spans", [duplicate], column_names=rows.TOKEN_SPAN_COLUMNS)  # a later batch
    store.insert("token_spans", triage + [
        call(t, None, MONDAY, 3, 0, "1"),  # no agent name: its own series ''
        call(t, "triage", MONDAY, 1000, 0, "0.0025", team="t2"),  # same agent, other team: other series
    ], column_names=rows.TOKEN_SPAN_COLUMNS)

    daily = series(store, t, "day")
    key = lambda r: (r["team"], r["agent_name"], str(r["period_start"]))  # noqa: E731
    got = {key(r): r for r in daily}
    assert set(got) == {("t1", "triage", "2026-10-05"), ("t1", "triage", "2026-10-06"), ("t1", "triage", "2026-10-12"),
                        ("t1", "", "2026-10-05"), ("t2", "triage", "2026-10-05")}
    d1, d2 = got[("t1", "triage", "2026-10-05")], got[("t1", "triage", "2026-10-06")]
    assert (d1["calls"], d1["tokens"], d1["cost_usd"]) == (2, 3200, Decimal("0.0095"))
    assert d1["usd_per_mtok"] == Decimal("2.96875")  # 0.0095 x 1e6 / 3200
    assert d1["tokens_change_pct"] is None  # no previous day
    assert (d2["tokens"], d2["usd_per_mtok"]) == (1000, Decimal("2.5"))
    assert d2["tokens_change_pct"] == round(100 * (1000 / 3200 - 1), 2)
    # Oct 12 follows Oct 6 only after a gap: no change against a day without rows
    assert got[("t1", "triage", "2026-10-12")]["tokens_change_pct"] is None
    # exact at 12 places, multiply before dividing: $1 over 3 tokens
    assert got[("t1", "", "2026-10-05")]["usd_per_mtok"] == Decimal("333333.333333333333")

    weekly = {key(r): r for r in series(store, t, "week")}
    w1, w2 = weekly[("t1", "triage", "2026-10-05")], weekly[("t1", "triage", "2026-10-12")]
    assert (w1["calls"], w1["tokens"], w1["cost_usd"], w1["usd_per_mtok"]) == (3, 4200, Decimal("0.012"),
                                                                               Decimal("2.857142857142"))
    assert (w2["tokens"], w2["cost_usd"], w2["usd_per_mtok"]) == (9000, Decimal("0.01125"), Decimal("1.25"))
    assert w2["tokens_change_pct"] == round(100 * (9000 / 4200 - 1), 2)
    assert w2["spend_change_pct"] == round(100 * (0.01125 / 0.012 - 1), 2)
    assert w2["unit_price_change_pct"] == round(100 * (1.25 / 2.857142857142 - 1), 2)


def test_period_bounds_are_half_open(store):
    t = f"bounds{uuid.uuid4().hex[:6]}"
    store.insert("token_spans", [call(t, "a", datetime(2026, 10, 18, 23, 59, 59, tzinfo=UTC), 10, 0, "1"),
                                 call(t, "a", datetime(2026, 10, 19, 0, 0, tzinfo=UTC), 10, 0, "1")],
                 column_names=rows.TOKEN_SPAN_COLUMNS)
    assert [str(r["period_start"]) for r in series(store, t, "day")] == ["2026-10-18"]
