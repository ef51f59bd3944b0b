"""The Jevons detector on a real ClickHouse engine (in-memory chDB, migrations applied).

Acceptance: a team whose unit price halves while its volume triples week over week is flagged
with arc elasticity -1.5 (by hand: ((3-1)/2) / ((0.5-1)/0.75) = 1 / -0.6667 = -1.5) and the
expected saving vs actual change; a flat team is not; an inelastic team (price halves,
volume x1.5: spend falls, E = -0.6) is not either.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from tokenpulse.insights.growth import last_complete, trunc12, usd_per_mtok
from tokenpulse.insights.jevons import JevonsEvaluator, JevonsNumbers, arc_elasticity
from tokenpulse.insights.runner import query_fn_for_client
from tokenpulse.loader import rows
from tokenpulse.schemas.alerts import Alert
from tokenpulse.schemas.growth import GrowthConfig, JevonsRule, Period
from tokenpulse.sql import QUERIES_DIR

NOW = datetime(2025, 11, 24, 6, 0, tzinfo=UTC)  # a Monday: weeks 2025-W46 and W47 are complete
PREV_MONDAY, CUR_MONDAY = date(2025, 11, 10), date(2025, 11, 17)


def minute_row(tenant, team, app, model, day, tokens, cost, part="", minute=12 * 60):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)
    row = dict(tenant=tenant, team=team, service=app, provider="openai", model=model, runtime_kind="cloud",
               runtime_id="openai", window_start=start, part=part, calls=10, error_calls=0, unpriced_calls=0,
               input_tokens=tokens * 4 // 5, cached_input_tokens=0, cache_creation_input_tokens=0,
               output_tokens=tokens - tokens * 4 // 5, reasoning_tokens=0, cost_usd=Decimal(cost),
               edge_cost_usd=Decimal(0), cloud_equivalent_cost_usd=Decimal(0))
    return [row.get(c, 0) for c in rows.SPEND_1M_COLUMNS]  # usage counts added later (0014) default to 0


def week(tenant, team, app, model, monday, tokens_per_day, cost_per_day):
    return [minute_row(tenant, team, app, model, monday + timedelta(days=i), tokens_per_day, cost_per_day)
            for i in range(7)]


@pytest.fixture(scope="module")
def acme(store):
    """Team A: $2.50 -> $1.25 per 1M tokens, 1M -> 3M tokens a day. Team B flat. Team C inelastic."""
    t = f"acme{uuid.uuid4().hex[:6]}"
    data = (week(t, "A", "search", "o3", PREV_MONDAY, 1_000_000, "2.50")
            + week(t, "A", "search", "o3", CUR_MONDAY, 3_000_000, "3.75")[:-1]
            # the last day of A's current week arrives as the stream's part plus one late call
            + [minute_row(t, "A", "search", "o3", CUR_MONDAY + timedelta(days=6), 2_000_000, "2.50"),
               minute_row(t, "A", "search", "o3", CUR_MONDAY + timedelta(days=6), 1_000_000, "1.25",
                          part="0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331")]
            + week(t, "B", "billing", "gpt-4o", PREV_MONDAY, 1_000_000, "2.50")
            + week(t, "B", "billing", "gpt-4o", CUR_MONDAY, 1_000_000, "2.50")
            + week(t, "C", "triage", "gpt-4.1", PREV_MONDAY, 2_000_000, "4.00")
            + week(t, "C", "triage", "gpt-4.1", CUR_MONDAY, 3_000_000, "3.00")
            # outside both weeks: must not count
            + [minute_row(t, "B", "billing", "gpt-4o", CUR_MONDAY + timedelta(days=7), 50_000_000, "900")])
    store.insert("spend_1m", data, column_names=rows.SPEND_1M_COLUMNS)
    # a re-delivered copy of a window replaces itself (FINAL), it does not double the week
    store.insert("spend_1m", data[:1], column_names=rows.SPEND_1M_COLUMNS)
    return t


def query_fn(store):
    return query_fn_for_client(store)  # what insights/runner.py passes: QueryResult(columns, rows)


def by_series(found, dimension, value):
    return [r for r in found if r["dimension"] == dimension and r["value"] == value]


def test_acceptance_numbers_by_hand():
    # price halves, volume triples: E = ((3-1)/((1+3)/2)) / ((0.5-1)/((1+0.5)/2)) = 1 / (-2/3) = -1.5
    assert arc_elasticity(Fraction(1), Fraction(3), Fraction(1), Fraction(1, 2)) == Fraction(-3, 2)
    n = JevonsNumbers(q1=7_000_000, q2=21_000_000, s1=Decimal("17.50"), s2=Decimal("26.25"))
    assert n.elasticity == Fraction(-3, 2)
    assert n.price_change == Fraction(-1, 2)
    assert n.expected_spend == Fraction("8.75")  # last week's 7M tokens at $1.25/M
    assert n.expected_saving == Fraction("8.75")  # the price cut alone would have halved the bill
    assert n.actual_change == Fraction("8.75")  # ... instead it rose by half
    assert n.is_jevons(Decimal("0.10")) and n.is_jevons(Decimal("0.50"))
    assert not n.is_jevons(Decimal("0.51"))  # a 50% drop is not a 51% drop
    # E < -1 <=> spend rises when the price falls: an inelastic response saves money
    inelastic = JevonsNumbers(q1=2, q2=3, s1=Decimal(4), s2=Decimal(3))
    assert inelastic.elasticity == Fraction(-3, 5) and not inelastic.is_jevons(Decimal("0.1"))
    flat = JevonsNumbers(q1=5, q2=5, s1=Decimal(2), s2=Decimal(2))
    assert flat.elasticity is None and not flat.is_jevons(Decimal("0.1"))


def test_week_windows_are_complete_iso_weeks():
    w = last_complete(Period.week, NOW)
    assert (w.previous_start, w.start, w.end, w.label, w.previous_label) == (
        PREV_MONDAY, CUR_MONDAY, date(2025, 11, 24), "2025-W47", "2025-W46")
    # mid-week, the current (incomplete) week is not judged
    assert last_complete(Period.week, NOW + timedelta(days=3)) == w


def test_team_a_flagged_with_elasticity_and_savings_team_b_and_c_not(store, acme):
    found, alerts, *_ = JevonsEvaluator(GrowthConfig()).findings(query_fn(store), NOW)
    [a] = by_series(found, "team", "A")
    assert a["flagged"] and a["severity"] == "warning"
    assert (a["tokens_previous"], a["tokens_current"]) == (7_000_000, 21_000_000)
    assert (a["cost_previous_usd"], a["cost_current_usd"]) == (Decimal("17.5"), Decimal("26.25"))
    assert a["usd_per_mtok_previous"] == Decimal("2.5") and a["usd_per_mtok_current"] == Decimal("1.25")
    assert a["elasticity"] == Decimal("-1.5")
    assert a["unit_price_change_pct"] == Decimal("-50") and a["tokens_growth_pct"] == Decimal("200")
    assert a["spend_growth_pct"] == Decimal("50")
    assert a["expected_spend_usd"] == Decimal("8.75") and a["expected_saving_usd"] == Decimal("8.75")
    assert a["actual_change_usd"] == Decimal("8.75")

    [b] = by_series(found, "team", "B")
    assert not b["flagged"] and b["severity"] == "none" and b["elasticity"] is None
    assert b["tokens_current"] == 7_000_000  # the 50M tokens after the week are not in it
    [c] = by_series(found, "team", "C")
    assert not c["flagged"] and c["elasticity"] == Decimal("-0.6")

    mine = [al for al in alerts if al.tenant == acme]
    team_alerts = [al for al in mine if al.team is not None]
    assert [al.team for al in team_alerts] == ["A"]
    al = team_alerts[0]
    assert isinstance(al, Alert) and (al.kind, al.rule, al.state.value) == ("jevons", "jevons", "open")
    assert al.dedupe_key == f"{acme}/jevons/jevons/team=A/2025-W47"
    assert al.evidence["elasticity"] == "-1.500000" and al.evidence["expected_saving_usd"] == "8.750000000000"
    assert al.evidence["actual_change_usd"] == "8.750000000000"
    assert "arc elasticity -1.5" in al.summary and "$2.50 -> $1.25" in al.summary
    assert al.opened_ms == int(datetime(2025, 11, 24, tzinfo=UTC).timestamp() * 1000)
    # deterministic: a re-run for the same period re-emits the same alert id
    again = JevonsEvaluator(GrowthConfig()).findings(query_fn(store), NOW + timedelta(hours=5))[1]
    assert al.alert_id in {x.alert_id for x in again}
    Alert.model_validate_json(al.model_dump_json())  # what goes on tokenpulse.alerts.v1


def test_tenant_total_and_rows_fit_the_findings_table(store, acme):
    found, *_ = JevonsEvaluator(GrowthConfig()).findings(query_fn(store), NOW)
    [total] = by_series(found, "tenant", "")
    # A + B + C: Q 7M+7M+14M = 28M -> 21M+7M+21M = 49M; S 17.5+17.5+28 = 63 -> 26.25+17.5+21 = 64.75
    n = JevonsNumbers(28_000_000, 49_000_000, Decimal("63"), Decimal("64.75"))
    assert (total["tokens_current"], total["cost_current_usd"]) == (49_000_000, Decimal("64.75"))
    assert total["elasticity"] == Decimal(round(n.elasticity.numerator / n.elasticity.denominator, 6)).quantize(
        Decimal("0.000001"))
    assert total["flagged"]  # price -41%, volume +75%, spend +2.8%
    mine = [r for r in found if r["tenant"] == acme]
    store.insert("growth_findings", [[r[c] for c in JevonsEvaluator.columns] for r in mine],
                 column_names=list(JevonsEvaluator.columns))
    # expected saving = Q1 x (P1 - P2): A 7M x ($2.50 - $1.25)/M, B 0, C 14M x ($2 - $1)/M
    got = store.query("SELECT value, elasticity, expected_saving_usd FROM growth_findings FINAL "
                      "WHERE tenant = {t:String} AND dimension = 'team' ORDER BY value", parameters={"t": acme})
    assert got.result_rows == [("A", Decimal("-1.5"), Decimal("8.75")), ("B", None, Decimal("0")),
                               ("C", Decimal("-0.6"), Decimal("14"))]


def test_noise_floor_and_threshold_are_config(store, acme):
    strict = GrowthConfig(jevons=JevonsRule(min_price_drop=Decimal("0.6")))
    found, alerts, *_ = JevonsEvaluator(strict).findings(query_fn(store), NOW)
    assert not by_series(found, "team", "A")[0]["flagged"] and not [a for a in alerts if a.tenant == acme]
    floor = GrowthConfig(jevons=JevonsRule(min_tokens=8_000_000))  # A had 7M tokens last week
    found, *_ = JevonsEvaluator(floor).findings(query_fn(store), NOW)
    assert not by_series(found, "team", "A")[0]["flagged"]


def test_saved_query_agrees_with_the_detector(store, acme):
    sql = (QUERIES_DIR / "jevons_by_team.sql").read_text()
    r = store.query(sql, parameters={"current_start": "2025-11-17", "days": 7, "min_price_drop": 0.1})
    got = {row["team"]: row for row in (dict(zip(r.column_names, x)) for x in r.result_rows) if row["tenant"] == acme}
    assert got["A"]["jevons"] and not got["B"]["jevons"] and not got["C"]["jevons"]
    assert got["A"]["elasticity"] == pytest.approx(-1.5, abs=1e-9)
    assert got["C"]["elasticity"] == pytest.approx(-0.6, abs=1e-9)
    assert (got["A"]["usd_per_mtok_previous"], got["A"]["usd_per_mtok_current"]) == (Decimal("2.5"), Decimal("1.25"))
    assert (got["A"]["expected_saving_usd"], got["A"]["actual_change_usd"]) == (Decimal("8.75"), Decimal("8.75"))
    assert got["B"]["tokens_current"] == 7_000_000


def test_unit_price_is_exact_decimal_in_clickhouse_and_python(store):
    """$1 over 3 tokens is 333333.333333333333 $/Mtok truncated at 12 places in both engines;
    dividing first and multiplying after (or going through Float64) would lose digits."""
    cost, tokens = Decimal("1.000000000001"), 3
    expected = Decimal("333333.333333666666")  # 1.000000000001e6 / 3, truncated
    assert usd_per_mtok(cost, tokens) == expected == trunc12(Fraction(cost) * 10**6 / tokens)
    got = store.query("SELECT toDecimal128({c:String}, 12) * 1000000 / nullIf(toUInt64({q:UInt64}), 0), "
                      "toDecimal128({c:String}, 12) / {q:UInt64} * 1000000, "
                      "toDecimal128({c:String}, 12) * 1000000 / nullIf(toUInt64(0), 0)",
                      parameters={"c": str(cost), "q": tokens}).result_rows[0]
    assert got[0] == expected
    assert got[1] != expected  # the wrong order: scale 12 is applied before scaling up
    assert got[2] is None  # no tokens: no price (not a division error)
    assert Decimal(float(cost) * 1e6 / tokens).quantize(Decimal("1e-12")) != expected  # why not Float64
    # and what unit_price_series.sql returns for a stored day
    t = f"exact{uuid.uuid4().hex[:6]}"
    store.insert("spend_1m", [minute_row(t, "X", "app", "m", date(2025, 11, 3), tokens, str(cost))],
                 column_names=rows.SPEND_1M_COLUMNS)
    sql = (QUERIES_DIR / "unit_price_series.sql").read_text()
    r = store.query(sql, parameters={"from": "2025-11-01", "to": "2025-11-05", "grain": "day", "dimension": "team"})
    [row] = [dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == t]
    assert row["usd_per_mtok"] == expected and row["tokens"] == 3


def test_unit_price_series_weekly_for_team_a(store, acme):
    sql = (QUERIES_DIR / "unit_price_series.sql").read_text()
    r = store.query(sql, parameters={"from": "2025-11-10", "to": "2025-11-24", "grain": "week", "dimension": "team"})
    series = [dict(zip(r.column_names, x)) for x in r.result_rows if x[0] == acme and x[2] == "A"]
    assert [(s["period_start"], s["tokens"], s["cost_usd"], s["usd_per_mtok"]) for s in series] == [
        (PREV_MONDAY, 7_000_000, Decimal("17.5"), Decimal("2.5")),
        (CUR_MONDAY, 21_000_000, Decimal("26.25"), Decimal("1.25"))]
    assert series[0]["tokens_change_pct"] is None
    assert (series[1]["tokens_change_pct"], series[1]["spend_change_pct"], series[1]["unit_price_change_pct"]) == (
        200.0, 50.0, -50.0)
