"""Multi-window burn-rate alerts on a real ClickHouse engine (in-memory chDB, migrations
applied) over generated spend_1m minute rows: the issue's acceptance scenario (40 % of a
monthly budget on day 5 with accelerating burn pages on the fast pair), the flat budgets
that must not page, and the incident resolving when the burst stops."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tokenpulse.insights.budgets import BudgetEvaluator, as_of_for, judge, measure
from tokenpulse.insights.burn_rate import budget_share, burn_rate, exhaustion_time
from tokenpulse.insights.runner import query_fn_for_client
from tokenpulse.loader import rows
from tokenpulse.schemas.alerts import AlertState, Severity
from tokenpulse.schemas.budgets import BudgetConfig

UTC = UTC
NOV = datetime(2025, 11, 1, tzinfo=UTC)  # a 30-day month
MONTH_S = 30 * 86_400


@pytest.fixture
def tenant():
    return f"t{uuid.uuid4().hex[:10]}"


def spend_row(tenant, at, cost, team="search", model="gpt-4o"):
    d = dict(tenant=tenant, team=team, service="svc", provider="openai", model=model, runtime_kind="cloud",
             runtime_id="openai", window_start=at, part="", calls=1, error_calls=0, unpriced_calls=0,
             input_tokens=100, cached_input_tokens=0, cache_creation_input_tokens=0, output_tokens=10,
             reasoning_tokens=0, cost_usd=Decimal(cost), edge_cost_usd=Decimal(0), cloud_equivalent_cost_usd=Decimal(0))
    return [d.get(c, 0) for c in rows.SPEND_1M_COLUMNS]  # usage counts added later (0014) default to 0


def every(start, end, step_min, cost, tenant, **kw):
    out, t = [], start
    while t < end:
        out.append(spend_row(tenant, t, cost, **kw))
        t += timedelta(minutes=step_min)
    return out


def monthly(tenant, amount="3000", **burn):
    doc = {"id": f"{tenant}-monthly", "scope": {"tenant": tenant}, "period": "monthly", "amount_usd": amount}
    if burn:
        doc["burn_rate"] = burn
    return BudgetConfig.model_validate({"budgets": [doc]})


def accelerating_day5(store, tenant):
    """$1,200.00 of $3,000 by 2025-11-05 12:00 (day 5): a steady $10.20/h since the 1st, then
    the last hour ramps up minute by minute (0.04 + 0.06 i dollars in minute i)."""
    last_hour = datetime(2025, 11, 5, 11, 0, tzinfo=UTC)
    data = every(NOV, last_hour, 10, "1.70", tenant)  # 642 rows x $1.70 = $1,091.40
    data += [spend_row(tenant, last_hour + timedelta(minutes=i), Decimal("0.04") + Decimal("0.06") * i)
             for i in range(60)]  # $108.60, the last 5 minutes $17.30
    store.insert("spend_1m", data, column_names=rows.SPEND_1M_COLUMNS)


def test_burn_rate_math_and_factor_meaning():
    amount = Decimal(3000)
    # 2 % of a 30-day budget in one hour is burn rate 14.4; the factor's meaning, both ways
    assert burn_rate(amount * Decimal("0.02"), 3600, amount, MONTH_S) == Decimal("14.4")
    assert budget_share(Decimal("14.4"), 3600, MONTH_S) == Decimal("0.02")
    assert budget_share(Decimal(6), 6 * 3600, MONTH_S) == Decimal("0.05")
    # on pace: spending amount/period per second is burn rate 1
    assert burn_rate(Decimal(100), 86_400, amount, MONTH_S) == 1
    as_of = datetime(2025, 11, 5, 12, tzinfo=UTC)
    assert exhaustion_time(Decimal(1800), Decimal(100), 3600, as_of) == as_of + timedelta(hours=18)
    assert exhaustion_time(Decimal(1800), Decimal(0), 3600, as_of) is None
    assert exhaustion_time(Decimal(-1), Decimal(5), 3600, as_of) == as_of


def test_acceptance_40_percent_on_day_5_with_accelerating_burn_pages_on_the_fast_window(store, tenant):
    accelerating_day5(store, tenant)
    cfg = monthly(tenant)
    now = datetime(2025, 11, 5, 12, 0, 30, tzinfo=UTC)
    query = query_fn_for_client(store)

    j = judge(measure(query, cfg.resolved()[0], as_of_for(now, 30)))
    assert j.m.spend == Decimal("1200.00")  # 40 %, exact
    assert j.burn["fast_long"] == Decimal("108.60") * 720 / 3000  # 26.064 > 14.4
    assert j.burn["fast_short"] == Decimal("17.30") * 12 * 720 / 3000  # 49.824 > 14.4

    tables, alerts = BudgetEvaluator(cfg).evaluate(query, now)
    fast = [a for a in alerts if a.rule == "burn_rate_fast"]
    assert len(fast) == 1 and fast[0].state is AlertState.open
    a = fast[0]
    assert a.kind == "budget" and a.severity is Severity.critical and a.tenant == tenant
    assert a.dedupe_key == f"{tenant}/budget/{tenant}-monthly/2025-11-01/burn_rate_fast"
    assert a.evidence["consumed_pct"] == "40.00" and a.evidence["factor"] == "14.4"
    assert a.evidence["burn_long"] > 14.4 and a.evidence["burn_short"] > 14.4
    # "will be exhausted early": the projection at the 1-hour rate lands long before Nov 30
    assert datetime.fromisoformat(a.evidence["exhausts_at"]) < datetime(2025, 11, 30, tzinfo=UTC)
    assert "days before the period ends" in a.summary
    assert not any(al.rule.startswith("threshold_") for al in alerts)  # 40 %: no threshold yet
    (status,) = tables[0].rows
    row = dict(zip(tables[0].columns, status))
    assert row["spend_usd"] == Decimal("1200.00") and row["burn_fast_long"] == pytest.approx(26.064)
    assert "burn_rate_fast" in row["open_rules"]


def test_a_flat_budget_at_40_percent_on_day_12_does_not_page_on_the_fast_pair(store, tenant):
    end = datetime(2025, 11, 13, tzinfo=UTC)
    store.insert("spend_1m", every(NOV, end, 10, "0.69", tenant), column_names=rows.SPEND_1M_COLUMNS)
    cfg = monthly(tenant)
    now = end + timedelta(seconds=30)
    j = judge(measure(query_fn_for_client(store), cfg.resolved()[0], as_of_for(now, 30)))
    assert Decimal("0.39") < j.m.spend / 3000 < Decimal("0.41")
    assert j.burn["fast_long"] < 2
    _, alerts = BudgetEvaluator(cfg).evaluate(query_fn_for_client(store), now)
    assert not [a for a in alerts if a.rule.startswith("burn_rate")]


def test_steady_40_percent_on_day_5_is_over_pace_but_not_a_fast_page(store, tenant):
    """Same consumption as the acceptance case without the acceleration: burn rate ~2.4,
    no burn page; the forecast is what says it will end far over budget."""
    end = datetime(2025, 11, 5, 12, tzinfo=UTC)
    store.insert("spend_1m", every(NOV, end, 10, "1.8518", tenant), column_names=rows.SPEND_1M_COLUMNS)
    cfg = monthly(tenant)
    tables, alerts = BudgetEvaluator(cfg).evaluate(query_fn_for_client(store), end + timedelta(seconds=30))
    assert not [a for a in alerts if a.rule.startswith("burn_rate")]
    row = dict(zip(tables[0].columns, tables[0].rows[0]))
    assert 2 < row["burn_fast_long"] < 3
    assert row["forecast_p50_usd"] > Decimal(6000)


def test_fast_incident_resolves_once_the_burst_stops_and_does_not_reopen(store, tenant):
    accelerating_day5(store, tenant)
    ev = BudgetEvaluator(monthly(tenant))
    query = query_fn_for_client(store)
    now = datetime(2025, 11, 5, 12, 0, 30, tzinfo=UTC)
    _, opened = ev.evaluate(query, now)
    opened = {a.rule: a for a in opened}
    assert {"burn_rate_fast", "burn_rate_slow"} <= set(opened)

    _, again = ev.evaluate(query, now + timedelta(minutes=1))  # still burning: nothing new
    assert again == []
    # ten minutes without spend: the 5-minute window is empty, the pair no longer holds
    _, later = ev.evaluate(query, now + timedelta(minutes=10))
    resolved = [a for a in later if a.rule == "burn_rate_fast"]
    assert len(resolved) == 1 and resolved[0].state is AlertState.resolved
    assert resolved[0].alert_id == opened["burn_rate_fast"].alert_id
    assert resolved[0].dedupe_key == opened["burn_rate_fast"].dedupe_key
    assert resolved[0].resolved_ms >= resolved[0].opened_ms
    _, quiet = ev.evaluate(query, now + timedelta(minutes=11))
    assert not [a for a in quiet if a.rule == "burn_rate_fast"]


def test_a_pair_needs_both_windows(store, tenant):
    """A 5-minute spike with a quiet hour before it: the short window burns, the long one
    does not reach the factor, so no page (the long window is what makes a page significant)."""
    spike_start = datetime(2025, 11, 5, 11, 55, tzinfo=UTC)
    store.insert("spend_1m", [spend_row(tenant, spike_start + timedelta(minutes=i), "3.00") for i in range(5)],
                 column_names=rows.SPEND_1M_COLUMNS)
    cfg = monthly(tenant)
    now = datetime(2025, 11, 5, 12, 0, 30, tzinfo=UTC)
    j = judge(measure(query_fn_for_client(store), cfg.resolved()[0], as_of_for(now, 30)))
    assert j.burn["fast_short"] > Decimal("14.4") >= j.burn["fast_long"]
    _, alerts = BudgetEvaluator(cfg).evaluate(query_fn_for_client(store), now)
    assert not [a for a in alerts if a.rule == "burn_rate_fast"]
    # lowering the factor per budget (config override) makes the same data page
    _, alerts = BudgetEvaluator(monthly(tenant, fast={"factor": "3"})).evaluate(query_fn_for_client(store), now)
    assert [a.rule for a in alerts if a.rule == "burn_rate_fast"] == ["burn_rate_fast"]
