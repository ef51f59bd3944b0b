"""Issue #7 acceptance on the real pipeline: weeks of generated history in compressed time.

Generated LLM calls with event times spread over weeks go through the collector (OTLP/HTTP)
-> Kafka -> Flink pricing + rollup -> loader -> chDB; then one insights cycle per scenario
(insights/runner.py, with an injected `now`) judges them, writes its tables and publishes
its alerts to Kafka -> dispatcher -> the test's webhook / PagerDuty receivers.

  * Jevons: team `jev-*` pays half per token in its third week (gpt-4o moves to the batch
    tier: $1.25 / $5.00 instead of $2.50 / $10.00 per 1M) while its volume triples. It is
    flagged with the arc elasticity that the test computes from the calls it sent and the
    raw price YAML; the week before (flat) is not flagged, and neither is the flat team `flat-*`.
  * Budget: $3,000 a month for team `bud-*`; 40 % spent by day 5 of a 30-day month, the
    last hour accelerating. burn_rate_fast opens (critical) and pages the webhook and
    PagerDuty; no threshold (50 %) opens.

History lies two or more months back, so the stack's own insights service (judging the
current week and month) never sees it, and names carry a run id. The collector's heartbeats
keep event time at "now", so every historical call is late for Flink's windows: it takes the
late path (its own spend_1m part), counted once, which is exactly what the evaluators read.
"""

from __future__ import annotations

import calendar
import functools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import yaml
from helpers import wait_for
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from testkit import price_fixtures

from tokenpulse.insights.budgets import BudgetEvaluator
from tokenpulse.insights.jevons import JevonsEvaluator
from tokenpulse.insights.runner import InsightsRunner, KafkaAlertPublisher, query_fn_for_settings, sql_insert
from tokenpulse.schemas.budgets import load_budget_config
from tokenpulse.schemas.growth import load_growth_config
from tokenpulse.sql_client import run_sql

pytestmark = pytest.mark.integration
KEY, TENANT = "demo-acme-key", "acme"
MTOK = Decimal(1_000_000)


@functools.cache
def yaml_price(provider: str, model: str, at_ms: int, tier: str = "standard") -> tuple[Decimal, Decimal]:
    """(input, output) USD per 1M tokens straight from the raw YAML files (not the project's
    pricing code: tests/testkit/price_fixtures.py reads them on its own)."""
    p = price_fixtures.independent_entry(provider, model, at_ms, 0, tier)
    return Decimal(str(p["input_usd_per_mtok"])), Decimal(str(p["output_usd_per_mtok"]))


class Call:
    def __init__(self, end: datetime, team: str, provider: str, model: str, inp: int, out: int, batch: bool = False):
        self.end, self.team, self.provider, self.model, self.inp, self.out, self.batch = (
            end, team, provider, model, inp, out, batch)
        p_in, p_out = yaml_price(provider, model, int(end.timestamp() * 1000), "batch" if batch else "standard")
        self.cost = (inp * p_in + out * p_out) / MTOK
        self.tokens = inp + out


def send(settings, calls: list[Call], service: str) -> None:
    """OTLP/HTTP to the collector in event-time order, 50 spans per request, as a real
    OpenTelemetry SDK encodes them (each call its own session, so no loop rule links them)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scenario")
    for i, c in enumerate(sorted(calls, key=lambda c: c.end)):
        end_ns = int(c.end.timestamp()) * 10**9
        span = tracer.start_span(f"chat {c.model}", start_time=end_ns - 20 * 10**9, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": c.provider, "gen_ai.request.model": c.model,
            "gen_ai.usage.input_tokens": c.inp, "gen_ai.usage.output_tokens": c.out,
            "gen_ai.conversation.id": f"{c.team}-{i}", "tokenpulse.team": c.team,
            **({"tokenpulse.request.batch": True} if c.batch else {})})
        span.end(end_time=end_ns)
    spans = list(memory.get_finished_spans())
    exporter = OTLPSpanExporter(endpoint=f"http://{settings.collector.host}:{settings.collector.port}/v1/traces",
                                headers={"Authorization": f"Bearer {KEY}"})
    for i in range(0, len(spans), 50):
        assert exporter.export(spans[i:i + 50]) == SpanExportResult.SUCCESS
    exporter.shutdown()


def wait_loaded(settings, teams: list[str], calls: list[Call]) -> None:
    """Until every call is a raw row and counted in the minute rollups, with the exact spend."""
    want = [len(calls), len(calls), sum((c.cost for c in calls), Decimal(0))]
    rows = wait_for(settings, "SELECT (SELECT count() FROM token_spans FINAL WHERE tenant = {t:String} "
                    "AND team IN {teams:Array(String)}), (SELECT sum(calls) FROM spend_1m FINAL "
                    "WHERE tenant = {t:String} AND team IN {teams:Array(String)}), "
                    "(SELECT toString(sum(cost_usd)) FROM spend_1m FINAL "
                    "WHERE tenant = {t:String} AND team IN {teams:Array(String)})", {"t": TENANT, "teams": teams},
                    lambda r: r and [int(r[0][0]), int(r[0][1] or 0), Decimal(str(r[0][2]))] == want, timeout_s=180)
    assert [int(rows[0][0]), int(rows[0][1] or 0), Decimal(str(rows[0][2]))] == want, rows


def history_month(today: date) -> date:
    """First day of a 30-day month at least two months before today (the budget scenario)."""
    y, m = (today.year, today.month - 2) if today.month > 2 else (today.year - 1, today.month + 10)
    while calendar.monthrange(y, m)[1] != 30:
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return date(y, m, 1)


def runner(settings, evaluators) -> tuple[InsightsRunner, KafkaAlertPublisher]:
    query = query_fn_for_settings(settings)
    publisher = KafkaAlertPublisher(settings.kafka, client_id="it-scenarios")
    return InsightsRunner(evaluators, query=query, insert=sql_insert(query), publish=publisher), publisher


def arc_elasticity(q1: Decimal, q2: Decimal, s1: Decimal, s2: Decimal) -> Decimal:
    p1, p2 = s1 / q1, s2 / q2
    return ((q2 - q1) / ((q1 + q2) / 2)) / ((p2 - p1) / ((p1 + p2) / 2))


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_jevons_team_is_flagged_with_its_elasticity_and_the_flat_team_is_not(stack_settings, hook_receivers):
    run = uuid.uuid4().hex[:6]
    jev, flat = f"jev-{run}", f"flat-{run}"
    month = history_month(datetime.now(UTC).date())
    w0 = month - timedelta(days=month.weekday() + 21)  # three complete ISO weeks before the budget month
    weeks = [w0, w0 + timedelta(days=7), w0 + timedelta(days=14)]
    # One call a day per team; identical workloads vary day to day (the weekly totals are what count).
    daily_in = [900_000, 1_100_000, 1_000_000, 950_000, 1_050_000, 1_000_000, 1_000_000]
    calls = []
    for w, monday in enumerate(weeks):
        for d, inp in enumerate(daily_in):
            day = monday + timedelta(days=d)
            calls.append(Call(at(day, 10 + d), flat, "openai", "gpt-4o", inp, inp // 4))
            if w < 2:
                calls.append(Call(at(day, 11 + d), jev, "openai", "gpt-4o", inp, inp // 4))
            else:  # the batch tier halves the unit price; volume triples
                calls.append(Call(at(day, 11 + d), jev, "openai", "gpt-4o", 3 * inp, 3 * inp // 4, batch=True))
    send(stack_settings, calls, f"it-scenario-{run}")
    wait_loaded(stack_settings, [jev, flat], calls)

    def week_totals(team: str, monday: date) -> tuple[Decimal, Decimal]:
        week = [c for c in calls if c.team == team and monday <= c.end.date() < monday + timedelta(days=7)]
        return Decimal(sum(c.tokens for c in week)), sum((c.cost for c in week), Decimal(0))

    (q1, s1), (q2, s2) = week_totals(jev, weeks[1]), week_totals(jev, weeks[2])
    expected_e = arc_elasticity(q1, q2, s1, s2).quantize(Decimal("0.000001"))
    assert expected_e == Decimal("-1.5")  # what this history was built to show: price x0.5, volume x3

    evaluator = JevonsEvaluator(load_growth_config())
    jevons_runner, publisher = runner(stack_settings, [evaluator])
    try:
        # Judged on Monday after week 1 (week 1 vs week 0: flat) and after week 2 (the price drop).
        for monday in (weeks[2], weeks[2] + timedelta(days=7)):
            report = jevons_runner.run_once(now=at(monday, 6))
            assert not report.errors, report.errors
    finally:
        publisher.close()

    found = run_sql(stack_settings, """
        SELECT value, toString(period_start), flagged, toString(elasticity), toString(expected_saving_usd),
               toString(actual_change_usd), tokens_previous, tokens_current
        FROM growth_findings FINAL
        WHERE tenant = {t:String} AND rule = 'jevons' AND dimension = 'team' AND value IN {teams:Array(String)}
        ORDER BY value, period_start""", {"t": TENANT, "teams": [jev, flat]}).rows
    by = {(r[0], r[1]): r for r in found}
    judged, before = str(weeks[2]), str(weeks[1])
    assert set(by) == {(jev, before), (jev, judged), (flat, before), (flat, judged)}, found
    jev_row = by[(jev, judged)]
    assert jev_row[2] in (True, 1, "true") and Decimal(jev_row[3]) == expected_e
    assert (int(jev_row[6]), int(jev_row[7])) == (int(q1), int(q2))
    # expected saving = Q1 x (P1 - P2) = S1 - Q1 x P2; actual change = S2 - S1
    assert Decimal(jev_row[4]) == s1 - q1 * s2 / q2 and Decimal(jev_row[5]) == s2 - s1
    assert by[(jev, before)][2] in (False, 0, "false")  # the flat weeks before the drop
    for period in (before, judged):
        assert by[(flat, period)][2] in (False, 0, "false") and by[(flat, period)][3] is None  # price unchanged

    # The alert goes the way loop alerts go: Kafka -> dispatcher -> signed webhook.
    key = f"{TENANT}/jevons/jevons/team={jev}/"
    hits = hook_receivers["webhook"].wait_for(lambda r: r.json().get("dedupe_key", "").startswith(key), timeout_s=90)
    assert hits and hits[0].json()["state"] == "open"
    assert Decimal(str(hits[0].json()["evidence"]["elasticity"])) == expected_e
    assert not hook_receivers["webhook"].matching(lambda r: f"team={flat}/" in r.json().get("dedupe_key", ""))


def test_budget_at_40_percent_on_day_5_with_accelerating_burn_pages_on_the_fast_window(
        stack_settings, hook_receivers, tmp_path):
    run = uuid.uuid4().hex[:6]
    team, budget_id = f"bud-{run}", f"scen-{run}-monthly"
    month = history_month(datetime.now(UTC).date())
    amount = Decimal("3000.00")
    # claude-opus-4 input at $15 per 1M: 1,000 tokens = $0.015.
    calls = [Call(at(month) + timedelta(hours=h, minutes=30), team, "anthropic", "claude-opus-4", 1_348_000, 0)
             for h in range(0, 107, 2)]                       # days 1-5 until 11:00: 54 calls, ~2.4x pace
    day5 = at(month + timedelta(days=4))
    calls += [Call(day5 + timedelta(hours=11, minutes=2 + 5 * i), team, "anthropic", "claude-opus-4", 548_000, 0)
              for i in range(11)]                              # 11:00-11:55: faster
    calls += [Call(day5 + timedelta(hours=11, minutes=56 + i), team, "anthropic", "claude-opus-4", 400_000, 0)
              for i in range(3)]                               # 11:55-12:00: faster still
    send(stack_settings, calls, f"it-scenario-{run}")
    wait_loaded(stack_settings, [team], calls)

    now = day5 + timedelta(hours=12, minutes=1)               # judged up to 12:00 (settle 30 s)
    as_of = day5 + timedelta(hours=12)
    period_s = Decimal(30 * 86400)
    spend = sum((c.cost for c in calls), Decimal(0))

    def burn(window_s: int) -> Decimal:
        in_window = sum((c.cost for c in calls if as_of - timedelta(seconds=window_s) <= c.end < as_of), Decimal(0))
        return (in_window / window_s) / (amount / period_s)

    assert Decimal("0.39") < spend / amount < Decimal("0.41")
    fast_long, fast_short = burn(3600), burn(300)
    assert fast_long > Decimal("14.4") and fast_short > Decimal("14.4")  # the history pages by construction
    before = sum((c.cost for c in calls if c.end < as_of - timedelta(hours=1)), Decimal(0))
    pace_before = (before / Decimal(107 * 3600)) / (amount / period_s)  # days 1-5 until 11:00
    assert pace_before < Decimal(3) < Decimal("14.4") < fast_long < fast_short  # accelerating

    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({"budgets": [
        {"id": budget_id, "scope": {"tenant": TENANT, "team": team}, "period": "monthly", "amount_usd": str(amount)}]}))
    budget_runner, publisher = runner(stack_settings, [BudgetEvaluator(load_budget_config(budgets), settle_s=30)])
    try:
        report = budget_runner.run_once(now=now)
    finally:
        publisher.close()
    assert not report.errors, report.errors

    status = run_sql(stack_settings, """
        SELECT toString(spend_usd), burn_fast_long, burn_fast_short, open_rules FROM budget_status FINAL
        WHERE budget_id = {b:String}""", {"b": budget_id}).rows
    assert len(status) == 1, status
    assert Decimal(status[0][0]) == spend
    assert float(status[0][1]) == pytest.approx(float(fast_long), rel=1e-6)
    assert float(status[0][2]) == pytest.approx(float(fast_short), rel=1e-6)

    key = f"{TENANT}/budget/{budget_id}/{month:%Y-%m-%d}/burn_rate_fast"
    pages = hook_receivers["pagerduty"].wait_for(
        lambda r: r.json().get("dedup_key") == key and r.json().get("event_action") == "trigger", timeout_s=90)
    assert pages, "burn_rate_fast did not reach PagerDuty"
    [hook] = hook_receivers["webhook"].wait_for(lambda r: r.json().get("dedupe_key") == key, timeout_s=30)
    body = hook.json()
    assert (body["state"], body["severity"], body["rule"]) == ("open", "critical", "burn_rate_fast")
    assert body["evidence"]["burn_long"] == pytest.approx(float(fast_long), abs=1e-3)
    assert body["evidence"]["burn_short"] == pytest.approx(float(fast_short), abs=1e-3)
    # 40 % is below every threshold: none of them opened for this budget.
    assert not hook_receivers["webhook"].matching(
        lambda r: r.json().get("dedupe_key", "").startswith(f"{TENANT}/budget/{budget_id}/")
        and "threshold" in r.json().get("rule", ""))
