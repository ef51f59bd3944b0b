"""The period-end forecast: the band reflects the observed variance (same mean daily spend,
noisier days -> wider band), narrows as days accumulate, never goes below what is already
spent, and runs end to end on a real ClickHouse engine (in-memory chDB) over minute rows."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tokenpulse.insights.budgets import BudgetEvaluator
from tokenpulse.insights.forecast import forecast_period_end, t_quantile
from tokenpulse.insights.runner import query_fn_for_client
from tokenpulse.loader import rows
from tokenpulse.schemas.budgets import BudgetConfig

UTC = UTC
D = Decimal


def spend_row(tenant, at, cost):
    d = dict(tenant=tenant, team="t", service="svc", provider="openai", model="gpt-4o", runtime_kind="cloud",
             runtime_id="openai", window_start=at, part="", calls=1, error_calls=0, unpriced_calls=0,
             input_tokens=100, cached_input_tokens=0, cache_creation_input_tokens=0, output_tokens=10,
             reasoning_tokens=0, cost_usd=D(cost), edge_cost_usd=D(0), cloud_equivalent_cost_usd=D(0))
    return [d.get(c, 0) for c in rows.SPEND_1M_COLUMNS]  # usage counts added later (0014) default to 0


def band(f):
    return f.p_high - f.p_low


@pytest.mark.parametrize("dof, exact", [(2, 1.885618), (3, 1.637744), (5, 1.475884), (10, 1.372184), (30, 1.310415)])
def test_t_quantile_matches_the_table(dof, exact):
    assert t_quantile(0.9, dof) == pytest.approx(exact, rel=3e-3)
    assert t_quantile(0.1, dof) == pytest.approx(-exact, rel=3e-3)


def test_same_mean_more_variance_gives_a_wider_band():
    common = dict(spend_so_far=D(400), elapsed_buckets=D(4), remaining_buckets=D(26))
    steady = forecast_period_end(observed=[D(100), D(101), D(99), D(100)], **common)
    noisy = forecast_period_end(observed=[D(40), D(160), D(70), D(130)], **common)
    assert steady.p50 == noisy.p50 == D(400) + 26 * D(100)
    assert band(noisy) > 10 * band(steady) > 0
    assert steady.p_low < steady.p50 < steady.p_high


def test_band_includes_the_uncertainty_of_the_mean_itself():
    """4 days of 90/110 (mean 100, s = 11.547): the 26 remaining days' sd is
    s x sqrt(26 + 26^2 / 4) = 161.25, not s x sqrt(26) = 58.9; P90 = 3000 + t(0.9, 3) x 161.25."""
    f = forecast_period_end(spend_so_far=D(400), observed=[D(90), D(110), D(90), D(110)], elapsed_buckets=D(4),
                            remaining_buckets=D(26))
    assert float(f.sd_per_bucket) == pytest.approx(11.547, abs=1e-3)
    assert float(f.p_high) == pytest.approx(3000 + 1.6377 * 161.25, abs=0.5)
    assert float(f.p50 - f.p_low) == pytest.approx(float(f.p_high - f.p50))


def test_band_narrows_as_days_accumulate_and_never_goes_below_spend_so_far():
    days = [D(50), D(150)] * 10
    early = forecast_period_end(spend_so_far=D(400), observed=days[:4], elapsed_buckets=D(4), remaining_buckets=D(26))
    late = forecast_period_end(spend_so_far=D(2000), observed=days, elapsed_buckets=D(20), remaining_buckets=D(10))
    assert band(late) < band(early)
    wild = forecast_period_end(spend_so_far=D(300), observed=[D(0), D(0), D(300)], elapsed_buckets=D(3),
                               remaining_buckets=D(27))
    assert wild.p_low >= D(300)
    done = forecast_period_end(spend_so_far=D(3000), observed=days[:30], elapsed_buckets=D(30), remaining_buckets=D(0))
    assert done.p_low == done.p50 == done.p_high == D(3000)


def test_too_few_days_gives_the_linear_pace_without_a_band():
    f = forecast_period_end(spend_so_far=D(150), observed=[D(100)], elapsed_buckets=D("1.5"),
                            remaining_buckets=D("28.5"), min_buckets=3)
    assert f.p50 == D(3000) and not f.has_band and f.p_low is None and f.buckets == 1


def test_forecast_band_from_chdb_minute_rows_widens_with_variance(store):
    """Two tenants, same mean daily spend ($100) over Nov 1-6, one steady and one noisy;
    evaluated on Nov 7 at noon: same P50, wider P10-P90 for the noisy one."""
    steady, noisy = f"s{uuid.uuid4().hex[:8]}", f"n{uuid.uuid4().hex[:8]}"
    daily = {steady: ["100", "100", "100", "100", "100", "100"], noisy: ["20", "180", "60", "140", "100", "100"]}
    data = []
    for tenant, spends in daily.items():
        for day, spend in enumerate(spends):
            per_hour = D(spend) / 24
            start = datetime(2025, 11, 1 + day, tzinfo=UTC)
            hourly = [per_hour.quantize(D("0.000001"))] * 23
            hourly.append(D(spend) - sum(hourly))  # the day sums exactly to its spend
            data += [spend_row(tenant, start + timedelta(hours=h), c) for h, c in enumerate(hourly)]
        data.append(spend_row(tenant, datetime(2025, 11, 7, 6, tzinfo=UTC), "50"))  # today so far
    store.insert("spend_1m", data, column_names=rows.SPEND_1M_COLUMNS)
    cfg = BudgetConfig.model_validate({"budgets": [
        {"id": f"{t}-m", "scope": {"tenant": t}, "period": "monthly", "amount_usd": "5000"} for t in daily]})
    now = datetime(2025, 11, 7, 12, 0, 30, tzinfo=UTC)  # as_of 12:00 (30 s settle): 23.5 days left
    tables, _ = BudgetEvaluator(cfg).evaluate(query_fn_for_client(store), now)
    st = {r[1]: dict(zip(tables[0].columns, r)) for r in tables[0].rows}
    s, n = st[f"{steady}-m"], st[f"{noisy}-m"]
    assert s["spend_usd"] == n["spend_usd"] == D(650)
    assert s["forecast_buckets"] == n["forecast_buckets"] == 6
    assert s["forecast_p50_usd"] == n["forecast_p50_usd"] == D(650) + D("23.5") * 100  # 23.5 days left
    assert s["forecast_p_low_usd"] == s["forecast_p_high_usd"] == s["forecast_p50_usd"]  # no variance, no band
    assert n["forecast_p_low_usd"] < n["forecast_p50_usd"] < n["forecast_p_high_usd"]
    assert n["forecast_p_high_usd"] - n["forecast_p_low_usd"] > D(500)
    assert (s["forecast_low_pct"], s["forecast_high_pct"]) == (10, 90)
