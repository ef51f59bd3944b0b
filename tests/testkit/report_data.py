"""A real ClickHouse engine (chDB, in memory) with every migration applied, filled with two
weeks of LLM calls whose shape each chart of the report must show:

* acme/support on gpt-4o-mini (with prompt-cache hits), acme/research moving from
  claude-sonnet-4 (week 1) to claude-3-5-haiku at five times the volume (week 2): the unit
  price falls, tokens and spend rise (the Jevons pattern);
* acme/operations on an edge box (hardware + energy, with a cloud-equivalent cost);
* a runaway session with a loop alert in the middle of it;
* globex, another tenant, to check the tenant filter;
* budgets and savings computed by the real insights evaluators over those rows.

Calls are priced with the real catalog (schemas/prices.yaml) and rolled up into spend_1m by
the same grouping as sql/queries/rebuild_spend_1m.sql."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import clickhouse_connect

from tokenpulse.insights.budgets import BudgetEvaluator
from tokenpulse.insights.jevons import SavingsEvaluator
from tokenpulse.insights.runner import query_fn_for_client
from tokenpulse.loader.migrations import migrate_up
from tokenpulse.report import Period
from tokenpulse.schemas.budgets import BudgetConfig
from tokenpulse.schemas.growth import GrowthConfig
from tokenpulse.schemas.pricing import call_cost_usd, load_price_table

START = datetime(2025, 11, 3)            # a Monday
PERIOD = Period(START, START + timedelta(days=14))
NOW = PERIOD.end - timedelta(hours=1)    # when the evaluators "ran"
PRICES = load_price_table()
SPAN_COLUMNS = ["tenant", "service", "team", "agent_name", "session_id", "trace_id", "span_id", "operation",
                "provider", "request_model", "response_model", "model", "runtime_kind", "runtime_id", "start_time",
                "end_time", "received_at", "input_tokens", "output_tokens", "cached_input_tokens",
                "cache_creation_input_tokens", "reasoning_tokens", "status", "priced", "cost_usd", "edge_cost_usd",
                "cloud_equivalent_cost_usd", "is_late"]
ROLLUP_SQL = """
INSERT INTO spend_1m (tenant, team, service, provider, model, runtime_kind, runtime_id, window_start, part, calls,
    error_calls, unpriced_calls, input_tokens, cached_input_tokens, cache_creation_input_tokens, output_tokens,
    reasoning_tokens, cost_usd, edge_cost_usd, cloud_equivalent_cost_usd)
SELECT tenant, team, service, provider, model, runtime_kind, runtime_id, toStartOfMinute(end_time), '', count(),
    countIf(status = 'error'), countIf(NOT priced), sum(input_tokens), sum(cached_input_tokens),
    sum(cache_creation_input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost_usd), sum(edge_cost_usd),
    sum(cloud_equivalent_cost_usd)
FROM token_spans FINAL
GROUP BY tenant, team, service, provider, model, runtime_kind, runtime_id, toStartOfMinute(end_time)
"""
BUDGETS = {"budgets": [
    {"id": "acme-monthly", "scope": {"tenant": "acme"}, "period": "monthly", "amount_usd": "40.00"},
    {"id": "acme-research-monthly", "scope": {"tenant": "acme", "team": "research"}, "period": "monthly",
     "amount_usd": "12.00"},
]}


class Calls:
    def __init__(self) -> None:
        self.rows: list[list] = []
        self.n = 0

    def add(self, tenant, service, team, provider, model, at: datetime, inp, out, *, cached=0, session=None,
            edge_cost=None, cloud_equivalent="0", runtime_id=None):
        self.n += 1
        price = PRICES.price_at(provider, model, int(at.replace(tzinfo=UTC).timestamp() * 1000), inp)
        if edge_cost is not None:
            cost, kind = Decimal(edge_cost), "edge"
        else:
            cost, kind = call_cost_usd(price, input_tokens=inp, cached_input_tokens=cached,
                                       cache_creation_input_tokens=0, output_tokens=out), "cloud"
        doc = dict(tenant=tenant, service=service, team=team, agent_name=f"{service}-agent", session_id=session,
                   trace_id=f"{self.n:032x}", span_id=f"{self.n:016x}", operation="chat", provider=provider,
                   request_model=model, response_model=model, model=model, runtime_kind=kind,
                   runtime_id=runtime_id or provider, start_time=at - timedelta(seconds=2), end_time=at,
                   received_at=at, input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                   cache_creation_input_tokens=0, reasoning_tokens=0, status="ok", priced=True, cost_usd=cost,
                   edge_cost_usd=Decimal(edge_cost or 0), cloud_equivalent_cost_usd=Decimal(cloud_equivalent),
                   is_late=False)
        self.rows.append([doc[c] for c in SPAN_COLUMNS])


def workload() -> Calls:
    c = Calls()
    for day in range(14):
        d = START + timedelta(days=day)
        for i in range(12):  # acme/support: steady, half of the calls hit the prompt cache
            c.add("acme", "support-bot", "support", "openai", "gpt-4o-mini", d + timedelta(hours=8, minutes=37 * i),
                  4000, 300, cached=2000 if i % 2 else 0, session=f"sup-{day}-{i // 4}")
        week2 = day >= 7
        for i in range(25 if week2 else 5):  # acme/research: cheaper model, five times the volume
            c.add("acme", "research-agent", "research", "anthropic", "claude-3-5-haiku" if week2 else "claude-sonnet-4",
                  d + timedelta(hours=9, minutes=17 * i), 10_000, 1_000, session=f"res-{day}")
        for i in range(6):  # acme/operations at the edge: hardware + energy vs gpt-4o-mini prices
            c.add("acme", "plant-floor-assistant", "operations", "ollama", "llama3.1:8b",
                  d + timedelta(hours=10, minutes=41 * i), 3000, 400, edge_cost="0.00021", cloud_equivalent="0.00069",
                  runtime_id="edge-plant-01", session=f"ops-{day}")
        for i in range(4):  # globex, another tenant
            c.add("globex", "analytics-bot", "data", "openai", "gpt-4o", d + timedelta(hours=14, minutes=13 * i),
                  2000, 500, session=f"glx-{day}")
    runaway = START + timedelta(days=12, hours=15)
    for step in range(40):  # the runaway: same question, growing context
        c.add("acme", "support-bot", "support", "openai", "gpt-4o", runaway + timedelta(seconds=20 * step),
              2000 + 600 * step, 150, session="runaway-1")
    return c


def _alert(tenant, session, rule, opened: datetime, action="stop") -> list:
    return [tenant, uuid.uuid4().hex, f"{tenant}/runaway_loop/{rule}/{session}", "runaway_loop", rule, "critical",
            action, "support-bot", "support", "support-bot-agent", session, "open", opened, None,
            f"{rule} fired for {session}", "{}", "loop_detection", opened]


ALERT_COLUMNS = ["tenant", "alert_id", "dedupe_key", "kind", "rule", "severity", "action", "service", "team",
                 "agent_name", "session_id", "state", "opened_at", "resolved_at", "summary", "details", "source",
                 "updated_at"]


def seed(client) -> None:
    """Load the workload, its rollups, loop alerts, a dead letter, budgets and savings."""
    client.insert("token_spans", workload().rows, column_names=SPAN_COLUMNS)
    client.command(ROLLUP_SQL)
    runaway = START + timedelta(days=12, hours=15)
    client.insert("alerts", [_alert("acme", "runaway-1", "repetition", runaway + timedelta(seconds=110)),
                             _alert("acme", "runaway-1", "context_growth", runaway + timedelta(seconds=500))],
                  column_names=ALERT_COLUMNS)
    client.insert("dead_letters", [["globex", "collector", "input_tokens is negative", START + timedelta(days=3),
                                    None, None, "{}", "tokenpulse.spans.dead-letter.v1", 0, 7]],
                  column_names=["tenant", "stage", "reason", "received_at", "trace_id", "span_id", "excerpt",
                                "kafka_topic", "kafka_partition", "kafka_offset"])
    query = query_fn_for_client(client)
    now = NOW.replace(tzinfo=UTC)
    evaluated = [BudgetEvaluator(BudgetConfig.model_validate(BUDGETS), settle_s=0).evaluate(query, now),
                 SavingsEvaluator(GrowthConfig(), PRICES).evaluate(query, now)]
    for tables, _alerts in evaluated:
        for table, columns, rows in tables:
            if rows:
                client.insert(table, rows, column_names=columns)


def new_store(name: str):
    """(bootstrap client keeping the in-memory engine alive, client of a fresh migrated database)."""
    db = f"{name}_{uuid.uuid4().hex[:8]}"
    bootstrap = clickhouse_connect.get_client(dsn="chdb://:memory:")
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client = clickhouse_connect.get_client(dsn="chdb://:memory:", database=db)
    migrate_up(client)
    return bootstrap, client, db


# --- reading a written page ----------------------------------------------------------------

CHARTS = ["spend-over-time", "jevons", "runaway-sessions", "cloud-vs-edge", "budget-burn", "savings"]


class Page(HTMLParser):
    """Per chart section: marks drawn, legend items, data-table rows, the empty message."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.current: str | None = None
        self.depth = 0
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section" and "data-chart" in a:
            self.current, self.depth = a["data-chart"], 0
            self.sections[self.current] = {"marks": 0, "svg": 0, "legend": 0, "rows": 0, "empty": False,
                                           "text": []}
        if self.current is None:
            return
        if tag == "section":
            self.depth += 1
        s = self.sections[self.current]
        s["svg"] += tag == "svg"
        s["marks"] += "mark" in a.get("class", "").split()
        s["rows"] += tag == "tr"
        s["legend"] += tag == "li"
        s["empty"] |= a.get("class") == "empty"

    def handle_endtag(self, tag):
        if self.current is not None and tag == "section":
            self.depth -= 1
            if self.depth == 0:
                self.current = None

    def handle_data(self, data):
        self.text.append(data)
        if self.current is not None:
            self.sections[self.current]["text"].append(data)
