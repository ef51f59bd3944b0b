"""Growth-rate alerts on a real ClickHouse engine (in-memory chDB, migrations applied):
week over week, month over month (per-day rates: February is shorter), the annualized pace,
the noise floor, and planned rollouts (`expected_growth`) that record without paging."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
import yaml
from pydantic import ValidationError

from tokenpulse.insights.growth import GrowthEvaluator, annualize, growth, last_complete
from tokenpulse.insights.runner import InsightsRunner, query_fn_for_client, sql_insert
from tokenpulse.loader import rows
from tokenpulse.schemas.alerts import Severity
from tokenpulse.schemas.growth import (
    DEFAULT_GROWTH_FILE,
    GrowthConfig,
    GrowthRule,
    Period,
    load_growth_config,
)
from tokenpulse.sql import QUERIES_DIR

WEEK_NOW = datetime(2025, 11, 24, 6, 0, tzinfo=UTC)  # Monday: judges 2025-W47 vs W46
MONTH_NOW = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)  # judges 2025-02 (28 days) vs 2025-01 (31)


def day_row(tenant, team, app, day, tokens, cost):
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC)
    row = dict(tenant=tenant, team=team, service=app, provider="openai", model=f"model-{team}", runtime_kind="cloud",
               runtime_id="openai", window_start=start, part="", calls=1, error_calls=0, unpriced_calls=0,
               input_tokens=tokens, cached_input_tokens=0, cache_creation_input_tokens=0, output_tokens=0,
               reasoning_tokens=0, cost_usd=Decimal(cost), edge_cost_usd=Decimal(0),
               cloud_equivalent_cost_usd=Decimal(0))
    return [row.get(c, 0) for c in rows.SPEND_1M_COLUMNS]  # usage counts added later (0014) default to 0


def days(first, n):
    return [first + timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def weekly(store):
    return weekly_tenant(store)


def weekly_tenant(store):
    """search: spend and tokens double week over week; ops: flat; tiny: x10 from a $0.70 base."""
    t = f"globex{uuid.uuid4().hex[:6]}"
    data = []
    for d in days(date(2025, 11, 10), 7):
        data += [day_row(t, "search", "support-bot", d, 2_000_000, "10"), day_row(t, "ops", "pager", d, 1_000_000, "5"),
                 day_row(t, "tiny", "toy", d, 200_000, "0.10")]
    for d in days(date(2025, 11, 17), 7):
        data += [day_row(t, "search", "support-bot", d, 4_000_000, "20"), day_row(t, "ops", "pager", d, 1_000_000, "5"),
                 day_row(t, "tiny", "toy", d, 2_000_000, "1.00")]
    store.insert("spend_1m", data, column_names=rows.SPEND_1M_COLUMNS)
    return t


@pytest.fixture(scope="module")
def monthly(store):
    """feb: $10/day in January, $21/day in February (+110% a day, +89.7% in total);
    steady: $10/day both months (-9.7% in total, 0% a day); pace: tokens +25% a day."""
    t = f"initech{uuid.uuid4().hex[:6]}"
    data = []
    for d in days(date(2025, 1, 1), 31):
        data += [day_row(t, "feb", "a", d, 1_000_000, "10"), day_row(t, "steady", "b", d, 1_000_000, "10"),
                 day_row(t, "pace", "c", d, 1_000_000, "10"), day_row(t, "slow", "d", d, 1_000_000, "10")]
    for d in days(date(2025, 2, 1), 28):
        data += [day_row(t, "feb", "a", d, 1_000_000, "21"), day_row(t, "steady", "b", d, 1_000_000, "10"),
                 day_row(t, "pace", "c", d, 1_250_000, "10"), day_row(t, "slow", "d", d, 1_150_000, "10")]
    store.insert("spend_1m", data, column_names=rows.SPEND_1M_COLUMNS)
    return t


def query_fn(store):
    return query_fn_for_client(store)  # what insights/runner.py passes: QueryResult(columns, rows)


def only(rule_name, rule):
    return GrowthConfig(growth={rule_name: rule})


WOW = GrowthRule(period=Period.week, threshold_pct=Decimal(50))


def find(found, tenant, rule, value, dimension="team"):
    [r] = [r for r in found if (r["tenant"], r["rule"], r["dimension"], r["value"]) == (tenant, rule, dimension, value)]
    return r


def test_week_over_week_surge_pages_flat_and_tiny_do_not(store, weekly):
    found, alerts, *_ = GrowthEvaluator(only("growth_wow", WOW)).findings(query_fn(store), WEEK_NOW)
    search = find(found, weekly, "growth_wow", "search")
    assert search["flagged"] and search["severity"] == "warning"
    assert (search["spend_growth_pct"], search["tokens_growth_pct"]) == (Decimal(100), Decimal(100))
    assert (search["cost_previous_usd"], search["cost_current_usd"]) == (Decimal(70), Decimal(140))
    assert not find(found, weekly, "growth_wow", "ops")["flagged"]
    tiny = find(found, weekly, "growth_wow", "tiny")
    assert tiny["spend_growth_pct"] == Decimal(900) and not tiny["flagged"]  # $0.70 is below the $10 base

    mine = {(a.team, a.service) for a in alerts if a.tenant == weekly}
    # the team, its app and model, and the tenant total (+88% spend: 70+35+0.7 -> 140+35+7) all grew
    assert (("search", None) in mine and (None, "support-bot") in mine and ("ops", None) not in mine
            and ("tiny", None) not in mine)
    [a] = [a for a in alerts if a.tenant == weekly and a.team == "search"]
    assert (a.kind, a.rule, a.severity) == ("growth", "growth_wow", Severity.warning)
    assert a.dedupe_key == f"{weekly}/growth/growth_wow/team=search/2025-W47"
    assert a.evidence["spend_previous_usd"] == "70.000000000000" and a.evidence["spend_growth_pct"] == "100.000000"
    assert a.evidence["metrics_over"] == "spend,tokens" and "expected_reason" not in a.evidence
    assert "spend +100.0% ($70.00 -> $140.00)" in a.summary and "week over week" in a.summary


def test_expected_growth_records_but_does_not_page(store, weekly):
    entry = {"match": {"tenant": weekly, "team": "search"}, "until": "2025-11-30",
             "reason": "search rollout to all customers (CHG-7)"}
    config = GrowthConfig.model_validate({"growth": {"growth_wow": WOW.model_dump()}, "expected_growth": [entry]})
    found, alerts, *_ = GrowthEvaluator(config).findings(query_fn(store), WEEK_NOW)
    search = find(found, weekly, "growth_wow", "search")
    assert search["flagged"] and search["severity"] == "info"
    assert search["expected_reason"] == "search rollout to all customers (CHG-7) (expected until 2025-11-30)"
    [a] = [a for a in alerts if a.tenant == weekly and a.team == "search"]
    assert a.severity is Severity.info and a.evidence["expected_reason"].startswith("search rollout")
    assert "expected: search rollout" in a.summary
    # the entry names one series: the app and the tenant total still page
    assert {a.severity for a in alerts if a.tenant == weekly and a.team is None} == {Severity.warning}

    # an entry that ended before the period, or for another rule, does not suppress
    for other in ({**entry, "until": "2025-11-16"}, {**entry, "rules": ["growth_mom"]}):
        config = GrowthConfig.model_validate({"growth": {"growth_wow": WOW.model_dump(),
                                                         "growth_mom": {"period": "month", "threshold_pct": "100"}},
                                              "expected_growth": [other]})
        found, *_ = GrowthEvaluator(config).findings(query_fn(store), WEEK_NOW)
        assert find(found, weekly, "growth_wow", "search")["severity"] == "warning"
    # a tenant-wide entry covers every series of the tenant, the total included
    config = GrowthConfig.model_validate({"growth": {"growth_wow": WOW.model_dump()},
                                          "expected_growth": [{**entry, "match": {"tenant": weekly}}]})
    _, alerts, _ = GrowthEvaluator(config).findings(query_fn(store), WEEK_NOW)
    assert {a.severity for a in alerts if a.tenant == weekly} == {Severity.info}


def test_month_over_month_compares_per_day_rates(store, monthly):
    w = last_complete(Period.month, MONTH_NOW)
    assert (w.previous_start, w.start, w.end, w.previous_days, w.days, w.label) == (
        date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), 31, 28, "2025-02")
    mom = GrowthRule(period=Period.month, threshold_pct=Decimal(100), metrics=("spend",))
    found, alerts, *_ = GrowthEvaluator(only("growth_mom", mom)).findings(query_fn(store), MONTH_NOW)
    feb = find(found, monthly, "growth_mom", "feb")
    # $310 in January, $588 in February: +89.7% in total but +110% a day
    assert (feb["cost_previous_usd"], feb["cost_current_usd"]) == (Decimal(310), Decimal(588))
    assert feb["spend_growth_pct"] == Decimal(110) and feb["flagged"]
    steady = find(found, monthly, "growth_mom", "steady")
    assert steady["spend_growth_pct"] == Decimal(0) and not steady["flagged"]
    assert any(a.team == "feb" and a.dedupe_key.endswith("/team=feb/2025-02") for a in alerts)


def test_annualized_pace_900_pct_yoy(store, monthly):
    # +25% a month compounds to 1.25^12 = 14.55x a year (+1355%); +15% to 5.35x (+435%)
    assert annualize(Fraction(1, 4), Period.month) == pytest.approx(1355.19, abs=0.01)
    assert annualize(Fraction(15, 100), Period.month) == pytest.approx(435.03, abs=0.01)
    assert growth(100, 125) == Fraction(1, 4) and growth(0, 5) is None
    pace = GrowthRule(period=Period.month, threshold_pct=Decimal(900), annualized=True, metrics=("tokens",))
    found, alerts, *_ = GrowthEvaluator(only("growth_pace", pace)).findings(query_fn(store), MONTH_NOW)
    fast, slow = find(found, monthly, "growth_pace", "pace"), find(found, monthly, "growth_pace", "slow")
    assert fast["flagged"] and fast["annualized_growth_pct"] == pytest.approx(1355.19, abs=0.01)
    assert not slow["flagged"] and slow["annualized_growth_pct"] == pytest.approx(435.03, abs=0.01)
    [a] = [a for a in alerts if a.tenant == monthly and a.team is not None]
    assert a.team == "pace" and a.evidence["annualized_tokens_growth_pct"] == "1355.2"


def test_through_the_runner_rows_land_and_incidents_open_once_then_resolve(store, weekly):
    """The real runner path: QueryResult queries, SQL inserts via JSONEachRow, published alerts."""
    published = []
    config = GrowthConfig(growth={"growth_wow": WOW}, evaluate_every_s=600)
    query = query_fn_for_client(store)
    runner = InsightsRunner([GrowthEvaluator(config)], query=query, insert=sql_insert(query),
                            publish=published.extend)
    report = runner.run_once(WEEK_NOW)
    assert not report.errors and report.rows["growth_findings"] > 0
    opened = [a for a in published if a.tenant == weekly]
    assert {a.state.value for a in opened} == {"open"} and any(a.team == "search" for a in opened)
    got = store.query("SELECT value, flagged, severity, spend_growth_pct, cost_current_usd FROM growth_findings FINAL "
                      "WHERE tenant = {t:String} AND dimension = 'team' ORDER BY value", parameters={"t": weekly})
    assert got.result_rows == [("ops", False, "none", Decimal(0), Decimal(35)),
                               ("search", True, "warning", Decimal(100), Decimal(140)),
                               ("tiny", False, "none", Decimal(900), Decimal(7))]

    assert runner.run_once(WEEK_NOW + timedelta(minutes=1)).rows == {}  # throttled: complete weeks barely change
    published.clear()
    runner.run_once(WEEK_NOW + timedelta(hours=1))
    assert [a for a in published if a.tenant == weekly] == []  # still open: not re-sent

    # a restarted evaluator restores its open incidents from the alerts table instead of re-paging
    store.insert("alerts", [rows.alert_row(a.model_dump(mode="json")) for a in opened], column_names=rows.ALERT_COLUMNS)
    restarted = GrowthEvaluator(config)
    assert restarted.restore(query) >= len(opened)
    _, again = restarted.evaluate(query, WEEK_NOW + timedelta(hours=2))
    assert [a for a in again if a.tenant == weekly] == []

    # a week later 2025-W48 is judged (no surge): every W47 incident resolves, same alert ids
    _, later = restarted.evaluate(query, WEEK_NOW + timedelta(days=7))
    resolved = [a for a in later if a.tenant == weekly]
    assert {a.alert_id for a in resolved} == {a.alert_id for a in opened}
    assert {a.state.value for a in resolved} == {"resolved"}
    assert resolved[0].evidence["resolved_because"] == "period 2025-W47 is over (2025-W48 is judged now)"


def test_saved_query_growth_week_over_week_shows_numbers_and_verdicts(store):
    weekly = weekly_tenant(store)
    entry = {"match": {"tenant": weekly, "team": "search"}, "until": "2025-11-30", "reason": "planned (CHG-7)"}
    ev = GrowthEvaluator(GrowthConfig.model_validate({"growth": {"growth_wow": WOW.model_dump()},
                                                       "expected_growth": [entry]}))
    found = [r for r in ev.findings(query_fn(store), WEEK_NOW)[0] if r["tenant"] == weekly]
    store.insert(ev.table, [[r[c] for c in ev.columns] for r in found], column_names=list(ev.columns))
    r = store.query((QUERIES_DIR / "growth_week_over_week.sql").read_text(),
                    parameters={"week_start": "2025-11-17", "dimension": "team"})
    got = {x[2]: dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == weekly}
    search, ops = got["search"], got["ops"]
    assert (search["cost_previous_usd"], search["cost_current_usd"], search["spend_growth_pct"]) == (
        Decimal(70), Decimal(140), 100.0)
    assert search["usd_per_mtok_current"] == Decimal(5)  # $140 over 28M tokens
    assert (search["flagged"], search["severity"], search["expected_reason"]) == (
        True, "info", "planned (CHG-7) (expected until 2025-11-30)")
    assert (ops["spend_growth_pct"], ops["flagged"], ops["severity"]) == (0.0, False, "none")


def test_shipped_config_loads_and_bad_config_fails():
    config = load_growth_config()
    assert set(config.growth) == {"growth_wow", "growth_mom", "growth_pace"}
    assert config.growth["growth_pace"].annualized and config.jevons.period is Period.week
    doc = yaml.safe_load(DEFAULT_GROWTH_FILE.read_text())
    for bad in ({"growth": {"wow": {"threshold_pct": "50"}}},  # not named growth_*
                {"growth": {"growth_x": {"period": "day", "threshold_pct": "5"}}},
                {"jevons": {"period": "month"}},
                {"jevons": {"min_price_drop": "1.5"}},
                {"expected_growth": [{"match": {"tenant": "a", "team": "x", "app": "y"}, "until": "2026-01-01",
                                      "reason": "two series"}]},
                {"expected_growth": [{"match": {"tenant": "a"}, "until": "2026-01-01", "reason": "typo",
                                      "rules": ["growth_wwo"]}]}):
        with pytest.raises(ValidationError):
            GrowthConfig.model_validate({**doc, **bad})
