"""Growth of spend and tokens per series, and the growth-rate alerts (rules: schemas/growth.yaml).

A *series* is one tenant's total, or one of its teams, apps (OTel service) or models. Every
evaluation compares the last complete UTC period (ISO week, calendar month or day) with the
one before, from `spend_1m FINAL` summed over parts: one ClickHouse query per period kind
that first sums minutes to days per (tenant, team, app, model) and then fans each day row
out to the four dimensions. Daily series move slowly and are cheap to recompute from the
minute rollups (docs/spend_intelligence.md has the measurement), so there is no Flink state
for them: an evaluator runs on a schedule (insights/runner.py) and is deterministic for a
given `now`, so a re-run replaces its findings and re-emits the same alert ids.

Evaluators follow insights/runner.py: `name`, `restore(query)`, and `evaluate(query, now)`
returning `([(table, columns, rows)], alerts)`. `query(sql, params)` returns a QueryResult
(or plain rows in SELECT order); parameters are plain strings, so the loader's JSON query
endpoint can carry them, and money cells may come back as Decimal or as digit strings.
Each finding is an incident: its alert opens once (dedupe key
`{tenant}/{kind}/{rule}/{series}/{period}`) and resolves when the series is no longer
flagged, normally because the next period is the one judged. `findings(query, now)` gives
the rows as dicts and the candidate alerts without that bookkeeping (tests, ad-hoc runs).

Money stays exact: sums are `Decimal(38, 12)`, ratios are computed as fractions and only
rounded for display (growth and elasticity to 6 places, unit prices truncated at 12 places,
as ClickHouse's decimal division does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

from tokenpulse.schemas.alerts import Alert, AlertState, Severity, alert_id_for
from tokenpulse.schemas.growth import (
    DEFAULT_GROWTH_FILE,
    Dimension,
    GrowthConfig,
    GrowthRule,
    Metric,
    Period,
    load_growth_config,
)

QueryFn = Callable[[str, dict], Any]  # -> QueryResult(columns, rows) or a list of rows
FINDINGS_TABLE = "growth_findings"
FINDING_COLUMNS = (
    "tenant", "kind", "rule", "dimension", "value", "period", "period_label", "period_start", "period_end",
    "previous_start", "tokens_previous", "tokens_current", "cost_previous_usd", "cost_current_usd",
    "unpriced_calls", "usd_per_mtok_previous", "usd_per_mtok_current", "tokens_growth_pct", "spend_growth_pct",
    "unit_price_change_pct", "annualized_growth_pct", "elasticity", "expected_spend_usd", "expected_saving_usd",
    "actual_change_usd", "flagged", "severity", "expected_reason", "dedupe_key", "evaluated_at",
)
SOURCE = "insights"
PERIODS_PER_YEAR = {Period.week: 52, Period.month: 12}
_SCALE = 10 ** 12


# --- periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The last complete period before `now` ([start, end)) and the one before it."""

    period: Period
    previous_start: date
    start: date
    end: date  # exclusive

    @property
    def label(self) -> str:
        return period_label(self.period, self.start)

    @property
    def previous_label(self) -> str:
        return period_label(self.period, self.previous_start)

    @property
    def previous_days(self) -> int:
        return (self.start - self.previous_start).days

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def end_ms(self) -> int:
        return int(datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC).timestamp() * 1000)

    def params(self) -> dict:
        return {"previous_start": self.previous_start.isoformat(), "start": self.start.isoformat(),
                "end": self.end.isoformat()}


def period_label(period: Period, start: date) -> str:
    if period is Period.week:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.month:
        return f"{start.year}-{start.month:02d}"
    return start.isoformat()


def _month_start(d: date) -> date:
    return d.replace(day=1)


def last_complete(period: Period, now: datetime) -> Window:
    today = as_utc(now).date()
    if period is Period.day:
        end = today
        return Window(period, end - timedelta(days=2), end - timedelta(days=1), end)
    if period is Period.week:
        end = today - timedelta(days=today.weekday())  # this week's Monday
        return Window(period, end - timedelta(days=14), end - timedelta(days=7), end)
    end = _month_start(today)
    start = _month_start(end - timedelta(days=1))
    return Window(period, _month_start(start - timedelta(days=1)), start, end)


def as_utc(now: datetime | int | float) -> datetime:
    """`now` as an aware UTC datetime (epoch milliseconds accepted)."""
    if isinstance(now, (int, float)):
        return datetime.fromtimestamp(now / 1000, tz=UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def epoch_ms(now: datetime) -> int:
    return int(as_utc(now).timestamp() * 1000)


# --- series from ClickHouse --------------------------------------------------------------

_DIMENSION_EXPR = {Dimension.tenant: "''", Dimension.team: "toString(team)", Dimension.app: "toString(service)",
                   Dimension.model: "toString(model)"}
SERIES_COLUMNS = ("tenant", "dimension", "value", "tokens_previous", "tokens_current", "cost_previous_usd",
                  "cost_current_usd", "unpriced_calls")


def series_sql(dimensions: Iterable[Dimension]) -> str:
    """Both periods' totals per series. Params: previous_start, start, end (YYYY-MM-DD)."""
    fan_out = ", ".join(f"('{d.value}', {_DIMENSION_EXPR[d]})" for d in Dimension if d in set(dimensions))
    return f"""
SELECT tenant, dv.1 AS dimension, dv.2 AS value,
       sumIf(tokens, day < toDate({{start:String}}))   AS tokens_previous,
       sumIf(tokens, day >= toDate({{start:String}}))  AS tokens_current,
       sumIf(cost, day < toDate({{start:String}}))     AS cost_previous_usd,
       sumIf(cost, day >= toDate({{start:String}}))    AS cost_current_usd,
       sum(unpriced)                                   AS unpriced_calls
FROM (
    SELECT tenant, team, service, model, toDate(window_start) AS day,
           sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost, sum(unpriced_calls) AS unpriced
    FROM spend_1m FINAL
    WHERE window_start >= toDateTime(toDate({{previous_start:String}}), 'UTC')
      AND window_start <  toDateTime(toDate({{end:String}}), 'UTC')
    GROUP BY tenant, team, service, model, day
)
ARRAY JOIN [{fan_out}] AS dv
GROUP BY tenant, dimension, value
ORDER BY tenant, dimension, value"""


@dataclass(frozen=True)
class Series:
    tenant: str
    dimension: Dimension
    value: str
    tokens_previous: int
    tokens_current: int
    cost_previous_usd: Decimal
    cost_current_usd: Decimal
    unpriced_calls: int = 0

    @property
    def key(self) -> str:
        """The series part of a dedupe key: `tenant`, `team=search`, `app=chat`, `model=gpt-4o`."""
        return "tenant" if self.dimension is Dimension.tenant else f"{self.dimension.value}={self.value}"

    @property
    def title(self) -> str:
        return self.tenant if self.dimension is Dimension.tenant else f"{self.tenant} {self.dimension.value} {self.value}"


def as_dicts(result: Any, columns: Sequence[str]) -> list[dict]:
    """Rows of a QueryResult (its own column names), or plain rows in SELECT order, as dicts."""
    if hasattr(result, "columns") and hasattr(result, "rows"):
        columns, result = result.columns, result.rows
    return [dict(r) if isinstance(r, dict) else dict(zip(columns, r)) for r in result]


def fetch_series(query_fn: QueryFn, window: Window, dimensions: Iterable[Dimension]) -> list[Series]:
    out = []
    for r in as_dicts(query_fn(series_sql(dimensions), window.params()), SERIES_COLUMNS):
        out.append(Series(str(r["tenant"]), Dimension(r["dimension"]), str(r["value"]),
                          int(r["tokens_previous"]), int(r["tokens_current"]), money(r["cost_previous_usd"]),
                          money(r["cost_current_usd"]), int(r["unpriced_calls"] or 0)))
    return out


# --- exact arithmetic helpers ------------------------------------------------------------


def money(value) -> Decimal:
    """A money cell from ClickHouse (Decimal) or the loader's JSON endpoint (a digit string)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def frac(value: Decimal | int) -> Fraction:
    return Fraction(value)


def trunc12(x: Fraction) -> Decimal:
    """Truncate toward zero at 12 decimals: what ClickHouse's Decimal(38, 12) division returns."""
    q = abs(x.numerator) * _SCALE // x.denominator
    return Decimal(-q if x < 0 else q).scaleb(-12)


def round6(x: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def usd_per_mtok(cost: Decimal, tokens: int) -> Decimal | None:
    return trunc12(frac(cost) * 1_000_000 / tokens) if tokens else None


def growth(previous: Decimal | int, current: Decimal | int, previous_days: int = 1, days: int = 1) -> Fraction | None:
    """Growth of the per-day rate as a fraction (0.5 = +50%); None without a base."""
    if not previous:
        return None
    return (frac(current) / days) / (frac(previous) / previous_days) - 1


def pct(x: Fraction | None) -> Decimal | None:
    return None if x is None else round6(x * 100)


def usd(value: Decimal | None) -> str:
    """Money for a summary sentence: cents, thousands separators."""
    return "n/a" if value is None else f"${value.quantize(Decimal('0.01'), ROUND_HALF_EVEN):,}"


def signed_pct(x: Fraction | None) -> str:
    return "n/a" if x is None else f"{round6(x * 100).quantize(Decimal('0.1'), ROUND_HALF_EVEN):+}%"


# --- findings and alerts -----------------------------------------------------------------


def base_row(series: Series, window: Window, kind: str, rule: str, now: datetime) -> dict:
    """A findings row with the series' numbers; the evaluator fills the verdict."""
    w = window
    return {
        "tenant": series.tenant, "kind": kind, "rule": rule, "dimension": series.dimension.value,
        "value": series.value, "period": w.period.value, "period_label": w.label, "period_start": w.start,
        "period_end": w.end, "previous_start": w.previous_start, "tokens_previous": series.tokens_previous,
        "tokens_current": series.tokens_current, "cost_previous_usd": series.cost_previous_usd,
        "cost_current_usd": series.cost_current_usd, "unpriced_calls": series.unpriced_calls,
        "usd_per_mtok_previous": usd_per_mtok(series.cost_previous_usd, series.tokens_previous),
        "usd_per_mtok_current": usd_per_mtok(series.cost_current_usd, series.tokens_current),
        "tokens_growth_pct": pct(growth(series.tokens_previous, series.tokens_current, w.previous_days, w.days)),
        "spend_growth_pct": pct(growth(series.cost_previous_usd, series.cost_current_usd, w.previous_days, w.days)),
        "unit_price_change_pct": None, "annualized_growth_pct": None, "elasticity": None,
        "expected_spend_usd": None, "expected_saving_usd": None,
        "actual_change_usd": series.cost_current_usd - series.cost_previous_usd,
        "flagged": False, "severity": "none", "expected_reason": None,
        "dedupe_key": f"{series.tenant}/{kind}/{rule}/{series.key}/{w.label}",
        "evaluated_at": as_utc(now),
    }


def make_alert(row: dict, series: Series, window: Window, now: datetime, summary: str,
               evidence: dict) -> Alert:
    """An open alert for a flagged finding; its id depends only on the series and period."""
    opened_ms = window.end_ms  # the evidence was complete when the period closed
    return Alert(
        alert_id=alert_id_for(row["dedupe_key"], opened_ms), dedupe_key=row["dedupe_key"], state=AlertState.open,
        kind=row["kind"], rule=row["rule"], severity=Severity(row["severity"]), tenant=series.tenant,
        team=series.value if series.dimension is Dimension.team else None,
        service=series.value if series.dimension is Dimension.app else None,
        summary=summary[:1000], evidence=evidence, opened_ms=opened_ms, emitted_ms=max(epoch_ms(now), opened_ms),
        source=SOURCE,
    )


def common_evidence(row: dict, window: Window) -> dict:
    ev = {
        "dimension": row["dimension"], "value": row["value"], "period": row["period"],
        "period_label": window.label, "previous_label": window.previous_label,
        "period_start": window.start.isoformat(), "period_end": window.end.isoformat(),
        "tokens_previous": row["tokens_previous"], "tokens_current": row["tokens_current"],
        "spend_previous_usd": str(row["cost_previous_usd"]), "spend_current_usd": str(row["cost_current_usd"]),
        "tokens_growth_pct": _s(row["tokens_growth_pct"]), "spend_growth_pct": _s(row["spend_growth_pct"]),
        "unpriced_calls": row["unpriced_calls"],
    }
    if row["expected_reason"]:
        ev["expected_reason"] = row["expected_reason"]
    return ev


def _s(value) -> str | None:
    return None if value is None else str(value)


def apply_expected(config: GrowthConfig, row: dict, series: Series, rule: str, severity: Severity) -> None:
    """Mark a flagged row; a planned rollout turns its severity to info (recorded, not paged)."""
    expected = config.expected_for(series.tenant, series.dimension, series.value, rule, row["period_start"])
    row["flagged"] = True
    if expected is not None:
        row["severity"] = Severity.info.value
        row["expected_reason"] = f"{expected.reason} (expected until {expected.until.isoformat()})"
    else:
        row["severity"] = severity.value


# --- incidents: open once, resolve when no longer flagged ---------------------------------

RESTORE_SQL = """
SELECT dedupe_key, alert_id, tenant, rule, toString(severity) AS severity, toString(action) AS action,
       toInt64(toUnixTimestamp64Milli(opened_at)) AS opened_ms, team, service, summary
FROM alerts FINAL
WHERE kind = {kind:String} AND source = {source:String} AND state = 'open'
ORDER BY opened_at"""


class Incidents:
    """Open incidents of one alert kind, keyed by dedupe key (what hooks have been told)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.open: dict[str, Alert] = {}

    def restore(self, query_fn: QueryFn) -> int:
        self.open.clear()
        for r in as_dicts(query_fn(RESTORE_SQL, {"kind": self.kind, "source": SOURCE}), ()):
            self.open[r["dedupe_key"]] = Alert(
                alert_id=r["alert_id"], dedupe_key=r["dedupe_key"], state=AlertState.open, kind=self.kind,
                rule=r["rule"], severity=Severity(r["severity"]), action=r["action"], tenant=r["tenant"],
                team=r["team"], service=r["service"], summary=r["summary"] or self.kind,
                opened_ms=int(r["opened_ms"]), emitted_ms=int(r["opened_ms"]), source=SOURCE)
        return len(self.open)

    def transitions(self, flagged: Sequence[Alert], now: datetime, labels: dict[str, str]) -> list[Alert]:
        """Open states for new incidents, resolved states for incidents no longer flagged.
        `labels`: rule -> the period label judged now (explains a resolution)."""
        now_ms = epoch_ms(now)
        current = {a.dedupe_key: a for a in flagged}
        out = []
        for key in sorted(set(self.open) - set(current)):
            inc = self.open.pop(key)
            period = key.rsplit("/", 1)[-1]
            judged = labels.get(inc.rule)
            reason = (f"period {period} is over ({judged} is judged now)" if judged and judged != period
                      else "no longer flagged (late data or a changed rule)")
            out.append(inc.model_copy(update={
                "state": AlertState.resolved, "resolved_ms": max(now_ms, inc.opened_ms), "emitted_ms": now_ms,
                "summary": f"resolved: {inc.summary}"[:1000], "evidence": {**inc.evidence, "resolved_because": reason}}))
        for key in sorted(set(current) - set(self.open)):
            self.open[key] = current[key]
            out.append(current[key])
        return out


class ScheduledEvaluator:
    """What Jevons and growth evaluators share: throttling, incidents, the runner's shapes."""

    name = "scheduled"
    kind = "growth"
    table = FINDINGS_TABLE
    columns = FINDING_COLUMNS

    def __init__(self, config: GrowthConfig | None = None):
        self.config = config or load_growth_config()
        self.incidents = Incidents(self.kind)
        self._last_ms: int | None = None

    def restore(self, query_fn: QueryFn) -> int:
        return self.incidents.restore(query_fn)

    def findings(self, query_fn: QueryFn, now: datetime | int) -> tuple[list[dict], list[Alert], dict[str, str]]:
        raise NotImplementedError

    def evaluate(self, query_fn: QueryFn, now: datetime | int) -> tuple[list[tuple], list[Alert]]:
        now = as_utc(now)
        now_ms = epoch_ms(now)
        if self._last_ms is not None and now_ms - self._last_ms < self.config.evaluate_every_s * 1000:
            return [], []  # complete periods change only with late data: no need to re-read every minute
        rows, flagged, labels = self.findings(query_fn, now)
        self._last_ms = now_ms
        alerts = self.incidents.transitions(flagged, now, labels)
        return [(self.table, list(self.columns), [[r[c] for c in self.columns] for r in rows])], alerts


# --- growth-rate evaluator ---------------------------------------------------------------


class GrowthEvaluator(ScheduledEvaluator):
    """Growth-rate rules (`growth_wow`, `growth_mom`, `growth_pace`, ...) per series."""

    name = "growth"
    kind = "growth"

    def findings(self, query_fn: QueryFn, now: datetime | int) -> tuple[list[dict], list[Alert], dict[str, str]]:
        now = as_utc(now)
        rows, alerts, labels = [], [], {}
        fetched: dict[tuple, list[Series]] = {}
        for rule_name, rule in self.config.growth.items():
            if not rule.enabled:
                continue
            window = last_complete(rule.period, now)
            labels[rule_name] = window.label
            dims = tuple(sorted(set(rule.dimensions), key=lambda d: d.value))
            key = (window, dims)
            if key not in fetched:
                fetched[key] = fetch_series(query_fn, window, dims)
            for series in fetched[key]:
                row, alert = self.judge(rule_name, rule, series, window, now)
                rows.append(row)
                if alert is not None:
                    alerts.append(alert)
        return rows, alerts, labels

    def judge(self, rule_name: str, rule: GrowthRule, series: Series, window: Window,
              now: datetime) -> tuple[dict, Alert | None]:
        row = base_row(series, window, "growth", rule_name, now)
        values = {Metric.spend: (series.cost_previous_usd, series.cost_current_usd),
                  Metric.tokens: (series.tokens_previous, series.tokens_current)}
        based = series.cost_previous_usd >= rule.min_base_spend_usd and series.tokens_previous >= rule.min_base_tokens
        over, measured = [], {}
        for metric in rule.metrics:
            g = growth(*values[metric], window.previous_days, window.days)
            if g is None:
                continue
            # exact for plain growth; the compounded pace is a float (x^52 has no use for 12 places)
            measured[metric] = Fraction(annualize(g, rule.period)) if rule.annualized else g * 100
            if based and measured[metric] > Fraction(rule.threshold_pct):
                over.append(metric)
        if rule.annualized and measured:
            row["annualized_growth_pct"] = float(max(measured.values()))
        if not over:
            return row, None
        apply_expected(self.config, row, series, rule_name, rule.severity)
        return row, make_alert(row, series, window, now, self._summary(rule, row, series, window, over),
                               self._evidence(rule, row, window, over, measured))

    @staticmethod
    def _summary(rule: GrowthRule, row: dict, series: Series, window: Window, over: list[Metric]) -> str:
        word = {Period.week: "week over week", Period.month: "month over month"}[rule.period]
        pace = " at an annualized pace" if rule.annualized else ""
        parts = []
        if Metric.spend in over:
            parts.append(f"spend {_fmt_pct(row['spend_growth_pct'])} ({usd(series.cost_previous_usd)} -> "
                         f"{usd(series.cost_current_usd)})")
        if Metric.tokens in over:
            parts.append(f"tokens {_fmt_pct(row['tokens_growth_pct'])} ({series.tokens_previous:,} -> "
                         f"{series.tokens_current:,})")
        text = (f"{series.title}: {' and '.join(parts)} {word} ({window.label} vs {window.previous_label})"
                f"{pace}, above the {rule.threshold_pct}% threshold")
        if rule.annualized:
            text += f" (annualized {row['annualized_growth_pct']:,.0f}%)"
        if row["expected_reason"]:
            text += f"; expected: {row['expected_reason']}"
        return text

    @staticmethod
    def _evidence(rule: GrowthRule, row: dict, window: Window, over: list[Metric], measured: dict) -> dict:
        ev = common_evidence(row, window)
        ev.update(threshold_pct=str(rule.threshold_pct), annualized=rule.annualized,
                  metrics_over=",".join(m.value for m in over))
        if rule.annualized:
            ev.update({f"annualized_{m.value}_growth_pct": f"{float(v):.1f}" for m, v in measured.items()})
        return ev


def annualize(g: Fraction, period: Period) -> float:
    """Growth per period compounded over a year, in percent: ((1 + g)^n - 1) x 100.
    Capped at 1e15% (a ratio this large only says "explosive"; keeps the value finite)."""
    try:
        return min(((1 + float(g)) ** PERIODS_PER_YEAR[period] - 1) * 100, 1e15)
    except OverflowError:
        return 1e15


def _fmt_pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value.quantize(Decimal('0.1'), ROUND_HALF_EVEN):+}%"


def make_evaluator(settings=None) -> GrowthEvaluator:
    """Factory for the runner's registry ("tokenpulse.insights.growth:make_evaluator")."""
    return GrowthEvaluator(load_growth_config(getattr(settings, "growth_file", None) or DEFAULT_GROWTH_FILE))
