"""Budgets as data and their evaluation on a real ClickHouse engine (in-memory chDB with the
migrations applied, generated spend_1m rows): config validation, nesting (a call counts
against every budget containing it, the alert names the one that broke), thresholds opening
once each and resolving at the period's end, restart without duplicate incidents, exact
Decimal sums, and the runner (SQL insert into budget_status, alerts retried until published)."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tokenpulse.insights import runner as runner_mod
from tokenpulse.insights.budgets import BUDGET_STATUS_COLUMNS, BudgetEvaluator
from tokenpulse.insights.runner import (
    InsightsRunner,
    InsightsSettings,
    build_evaluators,
    query_fn_for_client,
    sql_insert,
)
from tokenpulse.loader import rows
from tokenpulse.schemas.alerts import AlertState, Severity
from tokenpulse.schemas.budgets import BudgetConfig, load_budget_config

UTC = UTC
NOV = datetime(2025, 11, 1, tzinfo=UTC)


@pytest.fixture
def query(store):
    return query_fn_for_client(store)


@pytest.fixture
def tenant():
    return f"t{uuid.uuid4().hex[:10]}"


def spend_row(tenant, at, cost, team="search", model="gpt-4o", part="", api_key_id=""):
    d = dict(tenant=tenant, team=team, api_key_id=api_key_id, service="svc", provider="openai", model=model, runtime_kind="cloud",
             runtime_id="openai", window_start=at, part=part, calls=1, error_calls=0, unpriced_calls=0,
             input_tokens=100, cached_input_tokens=0, cache_creation_input_tokens=0, output_tokens=10,
             reasoning_tokens=0, cost_usd=Decimal(cost), edge_cost_usd=Decimal(0), cloud_equivalent_cost_usd=Decimal(0))
    return [d.get(c, 0) for c in rows.SPEND_1M_COLUMNS]  # usage counts added later (0014) default to 0


def insert(store, *spend_rows):
    store.insert("spend_1m", list(spend_rows), column_names=rows.SPEND_1M_COLUMNS)


def config(*budgets, **defaults):
    return BudgetConfig.model_validate({"defaults": defaults, "budgets": list(budgets)})


def budget(id, scope, amount, period="monthly", **kw):
    return {"id": id, "scope": scope, "period": period, "amount_usd": amount, **kw}


def status(tables):
    (t,) = tables
    assert t.table == "budget_status" and t.columns == BUDGET_STATUS_COLUMNS
    return {r[1]: dict(zip(t.columns, r)) for r in t.rows}


QUIET = {"burn_rate": {"fast": {"enabled": False}, "slow": {"enabled": False}}}  # thresholds only


# ---------------------------------------------------------------- config


def test_shipped_budgets_file_validates_and_derives_the_nesting():
    cfg = load_budget_config()
    by_id = {b.id: b for b in cfg.resolved()}
    assert by_id["acme-research-monthly"].parents == ("acme-monthly",)
    assert by_id["acme-research-monthly"].chain() == "acme-research-monthly < acme-monthly"
    assert by_id["acme-monthly"].parents == ()
    assert by_id["globex-monthly"].burn_rate.fast.factor == 10  # per-budget override
    assert by_id["globex-monthly"].burn_rate.fast.long_window == 3600  # merged over the default


@pytest.mark.parametrize("scope, message", [
    ({"tenant": "acme", "api_key": "not a key id!"}, "api_key"),
    ({"tenant": "acme", "agent": "x"}, "unknown scope field"),
    ({"tenant": "Acme!"}, "tenant"),
])
def test_scope_fields_are_validated(scope, message):
    with pytest.raises(ValidationError, match=message):
        config(budget("b", scope, "10"))


@pytest.mark.parametrize("budgets, message", [
    ([budget("a", {"tenant": "acme"}, "1.0000001")], "decimal places"),
    ([budget("a", {"tenant": "acme"}, "0")], "greater than 0"),
    ([budget("a", {"tenant": "acme"}, "10"), budget("a", {"tenant": "acme", "team": "x"}, "5")], "duplicate budget id"),
    ([budget("a", {"tenant": "acme"}, "10"), budget("b", {"tenant": "acme"}, "5")], "same scope and period"),
    ([budget("a", {"tenant": "acme"}, "10"), budget("b", {"tenant": "acme", "app": "bot"}, "50")],
     "larger than the budget containing it"),
    ([budget("a", {"tenant": "acme"}, "10", burn_rate={"fast": {"short_window": "2h"}})], "shorter than long_window"),
    ([budget("a", {"tenant": "acme"}, "10", burn_rate={"medium": {"factor": 3}})], "unknown burn_rate pair"),
    ([budget("a", {"tenant": "acme"}, "10", thresholds=[{"percent": 50, "action": "stop"}])], "must be notify"),
    ([budget("a", {"tenant": "acme"}, "10", thresholds=[{"percent": 50}, {"percent": "50.0"}])], "duplicate threshold"),
])
def test_budget_config_errors_are_explained(budgets, message):
    with pytest.raises(ValidationError, match=message):
        config(*budgets)


def test_nesting_chain_is_nearest_first_and_per_period():
    cfg = config(budget("t", {"tenant": "acme"}, "1000"),
                 budget("team", {"tenant": "acme", "team": "search"}, "500"),
                 budget("model", {"tenant": "acme", "team": "search", "model": "gpt-4o"}, "100"),
                 budget("other-team", {"tenant": "acme", "team": "ops"}, "100"),
                 budget("daily", {"tenant": "acme"}, "50", period="daily"),
                 budget("g", {"tenant": "globex"}, "1000"))
    by_id = {b.id: b for b in cfg.resolved()}
    assert by_id["model"].parents == ("team", "t")
    assert by_id["other-team"].parents == ("t",)
    assert by_id["daily"].parents == () and by_id["g"].parents == ()


# ---------------------------------------------------------------- nesting


def test_a_call_counts_against_every_containing_budget_and_the_alert_names_the_one_that_broke(store, query, tenant):
    at = datetime(2025, 11, 10, 9, tzinfo=UTC)
    insert(store, spend_row(tenant, at, "300.00", team="search"), spend_row(tenant, at, "100.00", team="ops"),
           spend_row(tenant, at, "20.00", team="search", model="gpt-4o-mini"))
    cfg = config(budget(f"{tenant}-all", {"tenant": tenant}, "3000", **QUIET),
                 budget(f"{tenant}-search", {"tenant": tenant, "team": "search"}, "500", **QUIET),
                 budget(f"{tenant}-search-4o", {"tenant": tenant, "team": "search", "model": "gpt-4o"}, "400", **QUIET))
    tables, alerts = BudgetEvaluator(cfg).evaluate(query, at + timedelta(hours=1))
    st = status(tables)
    # the $300 gpt-4o call of team search is in all three budgets
    assert st[f"{tenant}-all"]["spend_usd"] == Decimal("420.00")
    assert st[f"{tenant}-search"]["spend_usd"] == Decimal("320.00")
    assert st[f"{tenant}-search-4o"]["spend_usd"] == Decimal("300.00")
    assert st[f"{tenant}-search-4o"]["parents"] == [f"{tenant}-search", f"{tenant}-all"]
    # 75 % of the model budget, 64 % of the team budget, 14 % of the tenant's
    opened = sorted((a.evidence["budget_id"], a.rule) for a in alerts)
    assert opened == [(f"{tenant}-search", "threshold_50"), (f"{tenant}-search-4o", "threshold_50")]
    team_alert = next(a for a in alerts if a.evidence["budget_id"] == f"{tenant}-search")
    assert team_alert.evidence["budget_chain"] == f"{tenant}-search < {tenant}-all"
    assert team_alert.team == "search" and team_alert.kind == "budget"
    assert f"budget {tenant}-search " in team_alert.summary and f"counts toward {tenant}-all" in team_alert.summary
    assert team_alert.dedupe_key == f"{tenant}/budget/{tenant}-search/2025-11-01/threshold_50"


def test_an_api_key_budget_counts_only_that_keys_calls_and_nests_in_the_tenant(store, query, tenant):
    at = datetime(2025, 11, 10, 9, tzinfo=UTC)
    # one minute, one team and model, three keys: the rows must stay apart (api_key_id is in the key)
    insert(store, spend_row(tenant, at, "60.00", api_key_id="ci-bot"),
           spend_row(tenant, at, "25.00", api_key_id="sha256:a2fb8545fcd4"), spend_row(tenant, at, "5.00"))
    insert(store, spend_row(tenant, at, "60.00", api_key_id="ci-bot"))  # re-delivered: replaces itself
    cfg = config(budget(f"{tenant}-all", {"tenant": tenant}, "1000", **QUIET),
                 budget(f"{tenant}-ci", {"tenant": tenant, "api_key": "ci-bot"}, "100", **QUIET),
                 budget(f"{tenant}-ci-search", {"tenant": tenant, "team": "search", "api_key": "ci-bot"}, "80", **QUIET))
    tables, alerts = BudgetEvaluator(cfg).evaluate(query, at + timedelta(hours=1))
    st = status(tables)
    assert st[f"{tenant}-all"]["spend_usd"] == Decimal("90.00")
    assert st[f"{tenant}-ci"]["spend_usd"] == Decimal("60.00")
    assert st[f"{tenant}-ci-search"]["spend_usd"] == Decimal("60.00")
    assert st[f"{tenant}-ci"]["scope"] == f"{tenant}/api_key=ci-bot"
    assert st[f"{tenant}-ci-search"]["parents"] == [f"{tenant}-ci", f"{tenant}-all"]
    # 60 % of the key's $100, 75 % of its team slice's $80; 9 % of the tenant's
    assert sorted((a.evidence["budget_id"], a.rule) for a in alerts) == [
        (f"{tenant}-ci", "threshold_50"), (f"{tenant}-ci-search", "threshold_50")]


# ---------------------------------------------------------------- thresholds and incidents


def test_thresholds_open_once_each_and_resolve_when_the_period_ends(store, query, tenant):
    ev = BudgetEvaluator(config(budget("b", {"tenant": tenant}, "100.00", **QUIET)))
    day = datetime(2025, 11, 3, tzinfo=UTC)

    insert(store, spend_row(tenant, day, "55.00"))
    _, a1 = ev.evaluate(query, day + timedelta(hours=1))
    assert [(a.rule, a.state) for a in a1] == [("threshold_50", AlertState.open)]
    assert a1[0].severity is Severity.warning
    _, again = ev.evaluate(query, day + timedelta(hours=1, minutes=1))
    assert again == []  # no duplicate incident

    insert(store, spend_row(tenant, day + timedelta(hours=2), "30.00"))
    _, a2 = ev.evaluate(query, day + timedelta(hours=3))
    assert [(a.rule, a.state) for a in a2] == [("threshold_80", AlertState.open)]

    insert(store, spend_row(tenant, day + timedelta(hours=4), "15.00"))  # exactly 100 %
    tables, a3 = ev.evaluate(query, day + timedelta(hours=5))
    assert [(a.rule, a.state, a.severity) for a in a3] == [("threshold_100", AlertState.open, Severity.critical)]
    assert status(tables)["b"]["open_rules"] == ["threshold_100", "threshold_50", "threshold_80"]
    assert ev.evaluate(query, day + timedelta(hours=6))[1] == []

    # December: a new period, nothing spent; November's incidents resolve with their own ids
    opened_ids = {a.rule: a.alert_id for a in a1 + a2 + a3}
    tables, dec = ev.evaluate(query, datetime(2025, 12, 1, 0, 5, tzinfo=UTC))
    assert sorted((a.rule, a.state) for a in dec) == [
        ("threshold_100", AlertState.resolved), ("threshold_50", AlertState.resolved),
        ("threshold_80", AlertState.resolved)]
    assert {a.rule: a.alert_id for a in dec} == opened_ids
    assert all("period 2025-11-01 ended" in a.summary for a in dec)
    assert status(tables)["b"]["spend_usd"] == 0 and status(tables)["b"]["open_rules"] == []


def test_removed_budget_resolves_its_incidents(store, query, tenant):
    insert(store, spend_row(tenant, datetime(2025, 11, 3, tzinfo=UTC), "60"))
    ev = BudgetEvaluator(config(budget("b", {"tenant": tenant}, "100", **QUIET)))
    now = datetime(2025, 11, 3, 2, tzinfo=UTC)
    (opened,) = ev.evaluate(query, now)[1]
    ev.config = config(budget("other", {"tenant": tenant}, "1000", **QUIET))
    (resolved,) = ev.evaluate(query, now + timedelta(minutes=1))[1]
    assert resolved.state is AlertState.resolved and resolved.alert_id == opened.alert_id
    assert "removed" in resolved.summary


def test_restart_restores_open_incidents_from_the_alerts_table(store, query, tenant):
    insert(store, spend_row(tenant, datetime(2025, 11, 3, tzinfo=UTC), "85"))
    cfg = config(budget("b", {"tenant": tenant}, "100", **QUIET))
    now = datetime(2025, 11, 3, 2, tzinfo=UTC)
    opened = BudgetEvaluator(cfg).evaluate(query, now)[1]
    assert [a.rule for a in opened] == ["threshold_50", "threshold_80"]
    # what the loader does with the alerts topic
    store.insert("alerts", [rows.alert_row(json.loads(a.model_dump_json())) for a in opened],
                 column_names=rows.ALERT_COLUMNS)

    restarted = BudgetEvaluator(cfg)
    assert restarted.restore(query) >= 2
    assert restarted.evaluate(query, now + timedelta(minutes=5))[1] == []  # nothing opens twice
    (dec50, dec80) = sorted(restarted.evaluate(query, datetime(2025, 12, 1, 1, tzinfo=UTC))[1], key=lambda a: a.rule)
    assert (dec50.state, dec50.alert_id) == (AlertState.resolved, opened[0].alert_id)
    assert (dec80.state, dec80.alert_id) == (AlertState.resolved, opened[1].alert_id)


# ---------------------------------------------------------------- exact money


def test_spend_sums_are_exact_decimals_across_parts_and_redeliveries(store, query, tenant):
    at = datetime(2025, 11, 7, 8, 30, tzinfo=UTC)
    # 0.1 + 0.7 is 0.7999999999999999 in floats: a float sum would miss the 100 % threshold
    insert(store, spend_row(tenant, at, "0.1"), spend_row(tenant, at, "0.7", part="trace:span"))
    insert(store, spend_row(tenant, at, "0.1"))  # re-delivered rollup: replaces itself (FINAL)
    insert(store, *[spend_row(tenant, at + timedelta(minutes=1), "0.000000000001", part=f"late:{i}")
                    for i in range(7)])
    ev = BudgetEvaluator(config(budget("b", {"tenant": tenant}, "0.800000", **QUIET)))
    tables, alerts = ev.evaluate(query, at + timedelta(minutes=5))
    row = status(tables)["b"]
    assert row["spend_usd"] == Decimal("0.800000000007")
    assert {a.rule for a in alerts} == {"threshold_50", "threshold_80", "threshold_100"}
    assert alerts[0].evidence["spend_usd"] == "0.800000000007"

    q = query_fn_for_client(store)
    sql_insert(q)("budget_status", tables[0].rows, tables[0].columns)
    stored = store.query("SELECT spend_usd, amount_usd FROM budget_status FINAL WHERE tenant = {t:String}",
                         parameters={"t": tenant}).result_rows
    assert stored == [(Decimal("0.800000000007"), Decimal("0.8"))]


# ---------------------------------------------------------------- runner


def test_runner_writes_budget_status_and_retries_alerts_until_published(store, query, tenant):
    insert(store, spend_row(tenant, datetime(2025, 11, 3, tzinfo=UTC), "60"))
    ev = BudgetEvaluator(config(budget("b", {"tenant": tenant}, "100", **QUIET)))
    published, down = [], [True]

    def publish(alerts):
        if down[0]:
            raise RuntimeError("broker down")
        published.extend(alerts)

    run = InsightsRunner([ev], query=query, insert=sql_insert(query, chunk_bytes=4096), publish=publish)
    assert "budgets" in run.restore()  # (the shared test store holds other tests' incidents)
    now = datetime(2025, 11, 3, 1, tzinfo=UTC)
    report = run.run_once(now)
    assert report.alerts_published == 0 and report.alerts_pending >= 1 and report.rows == {"budget_status": 1}
    down[0] = False
    report = run.run_once(now + timedelta(minutes=1))
    assert report.alerts_pending == 0
    mine = [(a.rule, a.state) for a in published if a.tenant == tenant]
    assert mine == [("threshold_50", AlertState.open)]  # queued once, published once
    got = store.query("SELECT budget_id, spend_usd, open_rules, evaluated_at FROM budget_status FINAL "
                      "WHERE tenant = {t:String}", parameters={"t": tenant}).result_rows
    assert [(r[0], r[1], r[2]) for r in got] == [("b", Decimal("60"), ["threshold_50"])]
    assert got[0][3].replace(tzinfo=UTC) == now + timedelta(minutes=1)  # the newer evaluation replaced the older


def test_one_failing_evaluator_does_not_stop_the_others(query):
    class Broken:
        name = "broken"

        def evaluate(self, query, now):
            raise RuntimeError("boom")

    class Fine:
        name = "fine"

        def evaluate(self, query, now):
            return [("budget_status", BUDGET_STATUS_COLUMNS, [])], []

    report = InsightsRunner([Broken(), Fine()], query=query, insert=lambda *a: None,
                            publish=lambda a: None).run_once(datetime(2025, 11, 3, tzinfo=UTC))
    assert report.errors == ["broken: boom"] and report.rows == {"budget_status": 0}


def test_evaluators_come_from_the_registry_or_a_module_path(tmp_path):
    f = tmp_path / "budgets.yaml"
    f.write_text("budgets: [{id: x, scope: {tenant: acme}, period: daily, amount_usd: '5'}]\n")
    ev, *others = build_evaluators(InsightsSettings(budgets_file=f))
    assert ev.name == "budgets" and [b.id for b in ev.config.resolved()] == ["x"]
    assert [o.name for o in others] == ["growth", "jevons", "savings"]  # the default list
    by_path = InsightsSettings(budgets_file=f, evaluators=["tokenpulse.insights.budgets:make_evaluator"])
    (ev2,) = build_evaluators(by_path)
    assert ev2.name == "budgets"
    with pytest.raises(ValueError, match="not in"):
        build_evaluators(InsightsSettings(evaluators=["nope"]))
    with pytest.raises(ValueError, match="share a name"):
        build_evaluators(InsightsSettings(budgets_file=f, evaluators=["budgets", "budgets"]))
    assert "budgets" in runner_mod.REGISTRY


def test_settings_read_the_insights_env_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKENPULSE_INSIGHTS_INTERVAL_S", "120")
    monkeypatch.setenv("TOKENPULSE_INSIGHTS_EVALUATORS", '["budgets", "pkg.mod:factory"]')
    s = InsightsSettings()
    assert s.interval_s == 120 and s.evaluators == ["budgets", "pkg.mod:factory"]


def test_saved_queries_answer_from_budget_status(store, query, tenant):
    from tokenpulse.sql_client import saved_query

    late_oct = datetime(2025, 10, 31, 23, 0, tzinfo=UTC)  # the old period: must not show
    day = datetime(2025, 11, 5, 11, 0, tzinfo=UTC)
    insert(store, spend_row(tenant, late_oct, "900"),
           *[spend_row(tenant, NOV + timedelta(days=d, hours=3), "200") for d in range(4)],
           *[spend_row(tenant, day + timedelta(minutes=i), "2.00") for i in range(60)],  # $120 in the last hour
           spend_row(tenant, NOV + timedelta(days=1), "50", team="ops"))  # the tenant's days vary, the team's do not
    cfg = config(budget("all", {"tenant": tenant}, "3000"),
                 budget("team", {"tenant": tenant, "team": "search"}, "2000"))
    run = InsightsRunner([BudgetEvaluator(cfg)], query=query, insert=sql_insert(query), publish=lambda a: None)
    run.run_once(datetime(2025, 10, 31, 23, 30, 30, tzinfo=UTC))
    run.run_once(datetime(2025, 11, 5, 12, 0, 30, tzinfo=UTC))

    burn = query(saved_query("budget_burn"), {"tenant": tenant}).as_dicts()
    assert [(r["budget_id"], r["period_start"].month) for r in burn] == [("team", 11), ("all", 11)]
    team = burn[0]
    assert team["budget_chain"] == "team < all" and team["spend_usd"] == Decimal("920")
    assert team["burn_1h"] == pytest.approx(120 * 720 / 2000) and "burn_rate_fast" in team["open_rules"]
    assert team["days_early"] == 25.1  # $1080 left at $120/h: gone Nov 5 21:00, 25.1 days early

    fc = {r["budget_id"]: r for r in query(saved_query("budget_forecast"), {"tenant": tenant}).as_dicts()}
    assert set(fc) == {"all", "team"} and fc["all"]["basis"] == 4
    assert fc["all"]["p_low_usd"] < fc["all"]["p50_usd"] < fc["all"]["p_high_usd"]
    assert fc["team"]["verdict"] == "over"  # $200/day for 26 more days on a $2000 budget


# ---------------------------------------------------------------- config reload


def test_a_changed_budgets_file_takes_effect_next_cycle_and_a_broken_one_is_ignored(tmp_path, query, caplog):
    import os
    import threading

    from tokenpulse.insights.runner import ConfigWatch

    path = tmp_path / "budgets.yaml"
    path.write_text(json.dumps({"budgets": [budget("first", {"tenant": "acme"}, "100")]}))
    settings = InsightsSettings(budgets_file=path, evaluators=["budgets"])
    watch = ConfigWatch(settings)
    assert watch() is None  # nothing changed since it started

    def bump(text):  # a new mtime even within the file system's timestamp granularity
        path.write_text(text)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    bump(json.dumps({"budgets": [budget("first", {"tenant": "acme"}, "100"),
                                 budget("second", {"tenant": "acme", "team": "x"}, "50")]}))
    (fresh,) = watch()
    assert [b.id for b in fresh.config.budgets] == ["first", "second"]
    assert watch() is None

    bump("budgets: [{id: broken, scope: {tenant: acme}, period: fortnightly, amount_usd: '-1'}]")
    with caplog.at_level("ERROR", logger="tokenpulse.insights"):
        assert watch() is None
    assert "still running the previous config" in caplog.text

    # the runner swaps the evaluators in before its next cycle
    stop, seen = threading.Event(), []

    class Probe:
        name = "budgets"

        def evaluate(self, query, now):
            seen.append(self)
            stop.set()
            return [], []

    probe = Probe()
    reloads = iter([[probe]])
    run = InsightsRunner([BudgetEvaluator(config())], query=query, insert=lambda *a: None, publish=lambda a: None)
    run.run_forever(stop, 5, reload=lambda: next(reloads, None))
    assert seen == [probe] and run.evaluators == [probe]
