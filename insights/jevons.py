"""Efficiency vs spend: the Jevons detector and the measured savings of efficiency levers.

**Jevons pattern.** Per series (tenant total, team, app, model), the last complete period
(ISO week by default) against the one before: effective unit price P = spend / tokens fell
by at least `min_price_drop`, volume Q rose, and total spend rose. With the arc (midpoint)
elasticity

    E = ((Q2 - Q1) / ((Q1 + Q2) / 2)) / ((P2 - P1) / ((P1 + P2) / 2))

and P falling, spend rises exactly when |E| > 1 (E < -1 <=> P2 Q2 > P1 Q1). Each finding
reports E, the spend the price drop was expected to save at the old volume
(Q1 P1 - Q1 P2) and what actually happened (Q2 P2 - Q1 P1). Example (the acceptance
case): price halves, volume triples: E = (2 / 2) / (-0.5 / 0.75) = -1.5, spend x1.5; the
drop was expected to save half of last week's spend and spend rose by half instead.

**Measured savings** (`SavingsEvaluator` -> table `savings_daily`, read by
sql/queries/savings_measured.sql): per day and lever, the counterfactual cost of the same
calls without the lever vs what was paid. Counterfactual prices come from the stream job's
own generated catalog SQL (core/pricing_sql.py, evaluated by ClickHouse as
`tokenpulse reprice` does), at the call's event time, tier and service tier:

* prompt_cache: cloud calls with cache reads/writes. Without the cache every input token is
  billed at the input price: counterfactual = paid + cached x (p_input - p_cached)
  - cache_writes x (p_cache_write - p_input) (cache writes cost extra: a net saving).
* routing: cloud calls whose served model differs from `request_model` at a different
  price: the same tokens priced at the requested model. Negative when routed up.
* edge: edge calls with a cloud-equivalent model in their runtime profile:
  counterfactual = cloud_equivalent_cost_usd, paid = cost_usd (hardware + energy).
* semantic_cache: spans the app answered from its own semantic cache (flagged, cost 0): the
  usage they carry priced at their model. Hits are left out of the other levers.
Calls where a lever applies but no counterfactual price exists are counted
(`uncounted_calls`), never guessed. Levers are measured one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from tokenpulse.core.pricing_sql import clickhouse_null, cost_expression, priced_columns
from tokenpulse.schemas.alerts import Alert
from tokenpulse.schemas.growth import DEFAULT_GROWTH_FILE, JEVONS_RULE, GrowthConfig, JevonsRule, load_growth_config
from tokenpulse.schemas.pricing import PriceTable, load_price_table

from .growth import (
    QueryFn,
    ScheduledEvaluator,
    Series,
    Window,
    apply_expected,
    as_dicts,
    as_utc,
    base_row,
    common_evidence,
    fetch_series,
    frac,
    last_complete,
    make_alert,
    money,
    round6,
    signed_pct,
    trunc12,
    usd,
)

# --- the numbers -------------------------------------------------------------------------


def arc_elasticity(q1: Fraction, q2: Fraction, p1: Fraction, p2: Fraction) -> Fraction | None:
    """Arc (midpoint) elasticity of demand between two periods; None if undefined."""
    if p1 == p2 or q1 + q2 == 0 or p1 + p2 == 0:
        return None
    return ((q2 - q1) / ((q1 + q2) / 2)) / ((p2 - p1) / ((p1 + p2) / 2))


@dataclass(frozen=True)
class JevonsNumbers:
    """Exact numbers for one series: Q in tokens, P in USD per token, S = P Q in USD."""

    q1: int
    q2: int
    s1: Decimal
    s2: Decimal

    @property
    def p1(self) -> Fraction | None:
        return frac(self.s1) / self.q1 if self.q1 else None

    @property
    def p2(self) -> Fraction | None:
        return frac(self.s2) / self.q2 if self.q2 else None

    @property
    def priced(self) -> bool:
        return self.p1 is not None and self.p2 is not None and self.p1 > 0

    @property
    def price_change(self) -> Fraction | None:
        return self.p2 / self.p1 - 1 if self.priced else None

    @property
    def elasticity(self) -> Fraction | None:
        return arc_elasticity(Fraction(self.q1), Fraction(self.q2), self.p1, self.p2) if self.priced else None

    @property
    def expected_spend(self) -> Fraction | None:
        """Q1 x P2: last period's volume at this period's price."""
        return self.q1 * self.p2 if self.priced else None

    @property
    def expected_saving(self) -> Fraction | None:
        """Q1 P1 - Q1 P2: what the price drop alone would have saved."""
        return frac(self.s1) - self.expected_spend if self.priced else None

    @property
    def actual_change(self) -> Fraction:
        """Q2 P2 - Q1 P1: what spend actually did."""
        return frac(self.s2) - frac(self.s1)

    def is_jevons(self, min_price_drop: Decimal) -> bool:
        return (self.priced and self.p2 <= self.p1 * (1 - frac(min_price_drop))
                and self.q2 > self.q1 and self.s2 > self.s1)


# --- the detector ------------------------------------------------------------------------


class JevonsEvaluator(ScheduledEvaluator):
    """Flags series whose cheaper tokens made the bill bigger (schemas/growth.yaml `jevons`)."""

    name = "jevons"
    kind = "jevons"

    def findings(self, query_fn: QueryFn, now: datetime | int) -> tuple[list[dict], list[Alert], dict[str, str]]:
        rule = self.config.jevons
        if not rule.enabled:
            return [], [], {}
        now = as_utc(now)
        window = last_complete(rule.period, now)
        rows, alerts = [], []
        for series in fetch_series(query_fn, window, rule.dimensions):
            row, alert = self.judge(rule, series, window, now)
            rows.append(row)
            if alert is not None:
                alerts.append(alert)
        return rows, alerts, {JEVONS_RULE: window.label}

    def judge(self, rule: JevonsRule, series: Series, window: Window, now: datetime) -> tuple[dict, Alert | None]:
        row = base_row(series, window, "jevons", JEVONS_RULE, now)
        n = JevonsNumbers(series.tokens_previous, series.tokens_current, series.cost_previous_usd,
                          series.cost_current_usd)
        if n.priced:
            row["unit_price_change_pct"] = round6(n.price_change * 100)
            row["expected_spend_usd"] = trunc12(n.expected_spend)
            row["expected_saving_usd"] = series.cost_previous_usd - row["expected_spend_usd"]
            if n.elasticity is not None:
                row["elasticity"] = round6(n.elasticity)
        floors = (min(n.q1, n.q2) >= rule.min_tokens and min(n.s1, n.s2) >= rule.min_spend_usd)
        if not (floors and n.is_jevons(rule.min_price_drop)):
            return row, None
        apply_expected(self.config, row, series, JEVONS_RULE, rule.severity)
        return row, self._alert(row, series, window, n, now)

    @staticmethod
    def _alert(row: dict, series: Series, window: Window, n: JevonsNumbers, now: datetime) -> Alert:
        summary = (
            f"{series.title}: unit price {signed_pct(n.price_change)} ({usd(row['usd_per_mtok_previous'])} -> "
            f"{usd(row['usd_per_mtok_current'])} per 1M tokens) while tokens rose "
            f"{signed_pct(Fraction(n.q2, n.q1) - 1)}, so spend rose {signed_pct(frac(n.s2) / frac(n.s1) - 1)} "
            f"({usd(n.s1)} -> {usd(n.s2)}), arc elasticity {row['elasticity'].normalize():f} "
            f"({window.label} vs {window.previous_label}). The price drop was expected to save "
            f"{usd(row['expected_saving_usd'])} at last period's volume; spend changed by "
            f"{'+' if n.actual_change >= 0 else '-'}{usd(abs(row['actual_change_usd']))} instead."
        )
        if row["expected_reason"]:
            summary += f" Expected: {row['expected_reason']}."
        ev = common_evidence(row, window)
        ev.update(
            usd_per_mtok_previous=str(row["usd_per_mtok_previous"]), usd_per_mtok_current=str(row["usd_per_mtok_current"]),
            unit_price_change_pct=str(row["unit_price_change_pct"]), elasticity=str(row["elasticity"]),
            expected_spend_usd=str(row["expected_spend_usd"]), expected_saving_usd=str(row["expected_saving_usd"]),
            actual_change_usd=str(row["actual_change_usd"]),
            rebound_usd=str(series.cost_current_usd - row["expected_spend_usd"]),  # extra volume x new price
        )
        return make_alert(row, series, window, now, summary, ev)


# --- measured savings --------------------------------------------------------------------

SAVINGS_TABLE = "savings_daily"
SAVINGS_COLUMNS = ("day", "tenant", "team", "service", "model", "lever", "calls", "lever_tokens", "actual_cost_usd",
                   "counterfactual_cost_usd", "saving_usd", "uncounted_calls", "evaluated_at")
_MONEY = "Decimal(38, 12)"
_COUNT = "Decimal(38, 0)"  # wide operands: cached tokens x price never nears precision 38


# The (provider, model) pairs savings_sql must price in a period: served and requested models.
SAVINGS_MODELS_SQL = """
SELECT DISTINCT provider, m FROM (
    SELECT provider, toString(model) AS m FROM token_spans WHERE end_time >= toDateTime64({from:String}, 3, 'UTC')
      AND end_time < toDateTime64({to:String}, 3, 'UTC')
    UNION ALL
    SELECT provider, assumeNotNull(request_model) AS m FROM token_spans WHERE request_model IS NOT NULL
      AND end_time >= toDateTime64({from:String}, 3, 'UTC') AND end_time < toDateTime64({to:String}, 3, 'UTC'))"""


def savings_sql(prices: PriceTable, models: list[tuple[str, str]] | None = None) -> str:
    """Per day x tenant x team x app x model x lever: counterfactual vs paid, from token_spans.

    Params: from, to ('YYYY-MM-DD HH:MM:SS', UTC; end_time in [from, to)). The catalog is
    inlined as the stream job's generated CASE expressions, so prices match event time,
    context tier and service tier exactly as when the calls were priced; with `models` (the
    period's pairs, SAVINGS_MODELS_SQL) narrowed to what prices them (PriceTable.resolved_for),
    so the comprehensive catalog stays a small CASE.
    """
    if models is not None:
        prices, _ = prices.resolved_for(models)
    priced = priced_columns(prices, null=clickhouse_null)
    paid = f"CAST(cost_usd - edge_cost_usd AS {_MONEY})"  # the API fee (cloud calls)

    def per_span(lever: str, tokens: str, actual: str, counterfactual: str, source: str) -> str:
        return (f"SELECT toDate(end_time) AS day, tenant, team, service, toString(model) AS model, '{lever}' AS lever, "
                f"toUInt64({tokens}) AS lever_tokens, {actual} AS actual, "
                f"CAST({counterfactual} AS Nullable({_MONEY})) AS counterfactual FROM {source}")

    cache = per_span(
        "prompt_cache", "cached_input_tokens + cache_creation_input_tokens", paid,
        f"if(p_input IS NULL OR NOT priced, NULL, {paid}"
        f" + CAST(cached_input_tokens AS {_COUNT}) * (p_input - p_cached)"
        f" - CAST(cache_creation_input_tokens AS {_COUNT}) * (p_cache_creation - p_input))",
        f"(SELECT *, {priced} FROM spans WHERE runtime_kind = 'cloud' AND NOT semantic_cache_hit"
        " AND (cached_input_tokens > 0 OR cache_creation_input_tokens > 0))")
    routing = per_span(
        "routing", "input_tokens + output_tokens", paid,
        f"if(p_input IS NULL OR NOT priced, NULL, {cost_expression()})",
        f"(SELECT * REPLACE (served_model AS model) FROM (SELECT *, {priced} FROM ("
        "SELECT * REPLACE (assumeNotNull(request_model) AS model) FROM ("
        "SELECT *, toString(model) AS served_model FROM spans WHERE runtime_kind = 'cloud' AND NOT semantic_cache_hit"
        " AND request_model IS NOT NULL AND request_model != toString(model)))))")
    edge = per_span(
        "edge", "input_tokens + output_tokens", f"CAST(cost_usd AS {_MONEY})",
        "if(cloud_equivalent_cost_usd > 0, cloud_equivalent_cost_usd, NULL)",
        "spans WHERE runtime_kind = 'edge' AND NOT semantic_cache_hit")
    # The app answered from its own semantic cache: paid the hit's cost (0), and would have paid
    # the usage the span carries at its model, priced as the stream job prices a call.
    semantic = per_span(
        "semantic_cache", "input_tokens + output_tokens", f"CAST(cost_usd AS {_MONEY})",
        f"if(p_input IS NULL OR NOT priced, NULL, {cost_expression()})",
        f"(SELECT *, {priced} FROM spans WHERE semantic_cache_hit)")
    return f"""
WITH spans AS (
    SELECT *, toUnixTimestamp64Milli(end_time) AS end_ms
    FROM token_spans FINAL
    WHERE end_time >= toDateTime64({{from:String}}, 3, 'UTC') AND end_time < toDateTime64({{to:String}}, 3, 'UTC')
)
SELECT day, tenant, team, service, model, lever,
       countIf(counterfactual IS NOT NULL)                           AS calls,
       sumIf(lever_tokens, counterfactual IS NOT NULL)               AS lever_tokens,
       sumIf(actual, counterfactual IS NOT NULL)                     AS actual_cost_usd,
       CAST(sumIf(assumeNotNull(counterfactual), counterfactual IS NOT NULL) AS {_MONEY}) AS counterfactual_cost_usd,
       counterfactual_cost_usd - actual_cost_usd                     AS saving_usd,
       countIf(counterfactual IS NULL)                               AS uncounted_calls
FROM (
    {cache}
    UNION ALL
    {routing}
    UNION ALL
    {edge}
    UNION ALL
    {semantic}
)
-- a requested model at the served model's price (an alias, a dated version) is not routing
WHERE NOT (lever = 'routing' AND counterfactual IS NOT NULL AND counterfactual = actual)
GROUP BY day, tenant, team, service, model, lever
ORDER BY day, tenant, team, service, model, lever
SETTINGS cast_keep_nullable = 1"""


class SavingsEvaluator:
    """Re-computes `savings_daily` for today and `savings.lookback_days` before it. No alerts."""

    name = "savings"
    table = SAVINGS_TABLE
    columns = SAVINGS_COLUMNS

    def __init__(self, config: GrowthConfig | None = None, prices: PriceTable | None = None):
        self.config = config or load_growth_config()
        self.prices = prices or load_price_table()
        self._sql: dict[frozenset, str] = {}  # by the period's model pairs
        self._last_ms: int | None = None

    def evaluate(self, query_fn: QueryFn, now: datetime | int) -> tuple[list[tuple], list[Alert]]:
        now = as_utc(now)
        now_ms = int(now.timestamp() * 1000)
        if not self.config.savings.enabled or (
                self._last_ms is not None and now_ms - self._last_ms < self.config.evaluate_every_s * 1000):
            return [], []
        rows = self.rows(query_fn, now)
        self._last_ms = now_ms
        return [(self.table, list(self.columns), [[r[c] for c in self.columns] for r in rows])], []

    def rows(self, query_fn: QueryFn, now: datetime | int) -> list[dict]:
        """savings_daily rows (dicts) for today and the lookback days."""
        now = as_utc(now)
        today = now.date()
        start = today - timedelta(days=self.config.savings.lookback_days)
        params = {"from": f"{start.isoformat()} 00:00:00", "to": f"{(today + timedelta(days=1)).isoformat()} 00:00:00"}
        models = frozenset((str(r["provider"]), str(r["m"]))
                           for r in as_dicts(query_fn(SAVINGS_MODELS_SQL, params), ("provider", "m")))
        if models not in self._sql:
            self._sql = {models: savings_sql(self.prices, sorted(models))}  # keep only the newest
        rows = []
        for r in as_dicts(query_fn(self._sql[models], params), SAVINGS_COLUMNS[:-1]):
            for k in ("actual_cost_usd", "counterfactual_cost_usd", "saving_usd"):
                r[k] = money(r[k])
            for k in ("calls", "lever_tokens", "uncounted_calls"):
                r[k] = int(r[k])
            r["day"] = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
            r["evaluated_at"] = now
            rows.append(r)
        return rows


def make_evaluator(settings=None) -> JevonsEvaluator:
    """Factory for the runner's registry ("tokenpulse.insights.jevons:make_evaluator")."""
    return JevonsEvaluator(_config(settings))


def make_savings_evaluator(settings=None) -> SavingsEvaluator:
    """Factory for the runner's registry ("tokenpulse.insights.jevons:make_savings_evaluator")."""
    return SavingsEvaluator(_config(settings))


def _config(settings) -> GrowthConfig:
    return load_growth_config(getattr(settings, "growth_file", None) or DEFAULT_GROWTH_FILE)


__all__ = ["make_evaluator", "make_savings_evaluator", "JevonsEvaluator", "JevonsNumbers", "SavingsEvaluator", "arc_elasticity", "savings_sql"]
