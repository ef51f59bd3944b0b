"""infra/grafana/tokenpulse-dashboard.json: well-formed for the ClickHouse data source plugin,
and every panel's SQL (and the tenant variable's) runs on a real ClickHouse engine with the
project's migrations and returns rows for the seeded two weeks, once the plugin's macros are
replaced by the expressions the plugin generates (as documented for grafana-clickhouse-datasource)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from testkit.report_data import PERIOD

from tokenpulse.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "infra" / "grafana" / "tokenpulse-dashboard.json"
PLUGIN = "grafana-clickhouse-datasource"
FROM_S = int(PERIOD.start.replace(tzinfo=UTC).timestamp())
TO_S = int(PERIOD.end.replace(tzinfo=UTC).timestamp())
INTERVAL_S = 3600


def _call_args(sql: str, macro: str) -> tuple[int, int, list[str]]:
    """(start, end, top-level arguments) of the first `macro(...)` in sql."""
    start = sql.index(macro + "(")
    depth, args, arg_start = 0, [], start + len(macro) + 1
    for i in range(arg_start - 1, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[arg_start:i].strip())
                return start, i + 1, args
        elif ch == "," and depth == 1:
            args.append(sql[arg_start:i].strip())
            arg_start = i + 1
    raise AssertionError(f"unbalanced {macro}( in {sql}")


def expand(sql: str, tenants: list[str] | None) -> str:
    """Grafana's variables and the plugin's macros, for [PERIOD) and tenants (None = All)."""
    while "$__conditionalAll(" in sql:
        a, b, (cond, _var) = _call_args(sql, "$__conditionalAll")
        sql = sql[:a] + ("1=1" if tenants is None else f"({cond})") + sql[b:]
    sql = sql.replace("${tenant:singlequote}", ",".join(f"'{t}'" for t in tenants or []))
    for macro, make in (
            ("$__timeFilter", lambda c: f"{c} >= toDateTime({FROM_S}) AND {c} <= toDateTime({TO_S})"),
            ("$__timeInterval", lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {INTERVAL_S} second)")):
        while macro + "(" in sql:
            a, b, (col,) = _call_args(sql, macro)
            sql = sql[:a] + make(col) + sql[b:]
    sql = sql.replace("$__fromTime", f"toDateTime({FROM_S})").replace("$__toTime", f"toDateTime({TO_S})")
    leftover = re.findall(r"\$\{?\w+", sql)
    assert not leftover, f"unexpanded macro or variable {leftover} in:\n{sql}"
    return sql


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def targets(dashboard):
    return [(p["title"], t) for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_is_importable_for_the_clickhouse_plugin(dashboard):
    (ds_input,) = dashboard["__inputs"]
    assert ds_input["type"] == "datasource" and ds_input["pluginId"] == PLUGIN
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["datasource"] == {"type": PLUGIN, "uid": "${DS_CLICKHOUSE}"}, p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["editorType"] == "sql" and t["format"] in (0, 1) and t["rawSql"].strip(), p["title"]
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("spend over time by team and model", "unit price vs volume", "open alerts", "budget burn",
                   "cloud vs edge", "dead letters"):
        assert needed in titles


@pytest.mark.parametrize("tenants", [None, ["acme"]], ids=["all-tenants", "acme"])
def test_every_panel_query_runs_on_clickhouse(dashboard, report_store, tenants):
    for title, t in targets(dashboard):
        result = report_store.query(expand(t["rawSql"], tenants))
        if tenants is None:  # the seeded store has data for every panel
            assert result.result_rows, f"{title}: no rows"


def test_tenant_variable_query_runs(dashboard, report_store):
    (var,) = dashboard["templating"]["list"]
    rows = report_store.query(var["query"]).result_rows
    assert [r[0] for r in rows] == ["acme", "globex"]


def test_spend_panel_matches_the_rollups(dashboard, report_store):
    """The dashboard's spend equals the exact sum of the rollups (Decimal, not float)."""
    (sql,) = [t["rawSql"] for title, t in targets(dashboard) if title == "Spend in range"]
    got = report_store.query(expand(sql, None)).result_rows[0][0]
    want = report_store.query("SELECT sum(cost_usd) FROM token_spans FINAL WHERE end_time >= {a:DateTime} "
                              "AND end_time < {b:DateTime}", parameters={"a": PERIOD.start, "b": PERIOD.end}
                              ).result_rows[0][0]
    assert got == want and got > 0


def test_expand_handles_nested_macros():
    sql = "SELECT 1 WHERE $__conditionalAll(tenant IN (${tenant:singlequote}), $tenant) AND $__timeFilter(t)"
    assert expand(sql, None) == f"SELECT 1 WHERE 1=1 AND t >= toDateTime({FROM_S}) AND t <= toDateTime({TO_S})"
    assert "(tenant IN ('a','b'))" in expand(sql, ["a", "b"])
    assert datetime.fromtimestamp(FROM_S, UTC).replace(tzinfo=None) == PERIOD.start
