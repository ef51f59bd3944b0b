"""One function per chart: run its saved query, shape the rows into a chart, a legend and a
data table. Each returns a Section; an empty result gives a Section without a chart, which
the page shows as "no data for this period"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tokenpulse.sql_client import QueryResult, saved_query

from . import fmt, svg

QueryFn = Callable[[str, dict | None], QueryResult]
TOP_SERIES = 9          # team x model series drawn in the spend chart; the rest is "other"
MAX_TABLE_ROWS = 500    # rows in a data table (the page says how many were left out)
MAX_BUCKETS = 72        # bars in the spend-over-time chart
BUCKETS_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, naive datetimes as ClickHouse returns them."""

    start: datetime
    end: datetime

    @classmethod
    def last_days(cls, days: float, now: datetime | None = None) -> Period:
        now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
        return cls(now - timedelta(days=days), now)

    def params(self, tenant: str, **extra) -> dict:
        return {"from": f"{self.start:%Y-%m-%d %H:%M:%S}", "to": f"{self.end:%Y-%m-%d %H:%M:%S}",
                "tenant": tenant, **extra}

    def date_params(self) -> dict:
        """Whole UTC days covering the period, for the day-grained saved queries."""
        last = (self.end - timedelta(microseconds=1)).date()
        return {"from": self.start.date().isoformat(), "to": (last + timedelta(days=1)).isoformat()}

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


@dataclass
class Table:
    columns: list[str]
    rows: list[list]


@dataclass
class Section:
    id: str
    title: str
    question: str
    source: str                       # which saved query, with which parameters
    svg: str | None = None            # None: no data for this period
    legend: list[svg.Series] = field(default_factory=list)
    table: Table | None = None
    notes: list[str] = field(default_factory=list)


# Columns holding times; money columns end in _usd or _mtok (USD per 1M tokens).
TIME_COLUMNS = {"bucket_start", "first_minute", "last_minute", "first_call", "last_call", "first_alert_at",
                "period_start", "period_end", "as_of", "exhausts_at", "day"}


def _typed(column: str, value):
    """The loader's query endpoint answers in JSON, where Decimals and times are strings: give
    them back their type, so the page is the same whichever way the rows came."""
    if not isinstance(value, str):
        return value
    if column.endswith(("_usd", "_mtok")):
        return Decimal(value)
    if column in TIME_COLUMNS:
        if len(value) == 10:
            return date.fromisoformat(value)
        t = datetime.fromisoformat(value)
        return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
    return value


def run(query: QueryFn, name: str, params: dict) -> list[dict]:
    return [{c: _typed(c, v) for c, v in row.items()} for row in query(saved_query(name), params).as_dicts()]


def _source(name: str, params: dict) -> str:
    return f"sql/queries/{name}.sql " + " ".join(f"{k}={v!r}" for k, v in params.items())


def _table(rows: list[dict], columns: list[str] | None = None) -> Table:
    cols = columns or (list(rows[0]) if rows else [])
    return Table(cols, [[r.get(c) for c in cols] for r in rows])


def _f(d) -> float:
    return float(d or 0)


# ------------------------------------------------------------------ headline figures
def totals(query: QueryFn, period: Period, tenant: str) -> dict:
    rows = run(query, "report_totals", period.params(tenant))
    return rows[0] if rows else {}


def choose_bucket(first: datetime | None, last: datetime | None) -> int:
    """The smallest bucket that draws the data's extent in at most MAX_BUCKETS bars."""
    if first is None or last is None:
        return BUCKETS_S[0]
    extent = (last - first).total_seconds() + 60
    return next((b for b in BUCKETS_S if extent / b <= MAX_BUCKETS), BUCKETS_S[-1])


def _floor(t: datetime, seconds: int) -> datetime:
    epoch = datetime(1970, 1, 1)
    return epoch + timedelta(seconds=int((t - epoch).total_seconds()) // seconds * seconds)


# ------------------------------------------------------------------ 1. spend over time
def spend_over_time(query: QueryFn, period: Period, tenant: str, head: dict) -> Section:
    bucket_s = choose_bucket(head.get("first_minute"), head.get("last_minute"))
    params = period.params(tenant, bucket_s=bucket_s)
    s = Section("spend-over-time", "Spend over time by team and model",
                "Where did the money go, and when? Each bar is the spend of one time bucket, split by team and model.",
                _source("report_spend_over_time", params))
    rows = run(query, "report_spend_over_time", params)
    if not rows:
        return s
    multi = len({r["tenant"] for r in rows}) > 1
    key = lambda r: (f"{r['tenant']}/" if multi else "") + f"{r['team']} · {r['model']}"  # noqa: E731
    by_key: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        by_key[key(r)] += r["cost_usd"]
    ranked = sorted(by_key, key=lambda k: (-by_key[k], k))
    top = ranked if len(ranked) <= TOP_SERIES + 1 else ranked[:TOP_SERIES]
    other = "other" if len(ranked) > len(top) else None
    cost: dict[tuple[datetime, str], Decimal] = defaultdict(Decimal)
    calls: dict[tuple[datetime, str], int] = defaultdict(int)
    for r in rows:
        k = key(r) if key(r) in top else "other"
        cost[(r["bucket_start"], k)] += r["cost_usd"]
        calls[(r["bucket_start"], k)] += r["calls"]
    step = timedelta(seconds=bucket_s)
    first, last = min(r["bucket_start"] for r in rows), max(r["bucket_start"] for r in rows)
    buckets = [first + i * step for i in range(int((last - first) / step) + 1)]
    series = svg.colors(top + ([other] if other else []), other_key="other")
    chart = svg.TimeBars(
        s.title, buckets, step, series,
        values={k: _f(v) for k, v in cost.items()},
        tooltips={(b, k): f"{fmt.when(b)} UTC · {k}: {fmt.usd(v)} ({fmt.count(calls[(b, k)])} calls)"
                  for (b, k), v in cost.items()},
        y_label=f"USD per {svg.span_label(step)}")
    s.svg, s.legend = chart.render(), series
    s.table = _table(rows, ["bucket_start", "tenant", "team", "model", "calls", "tokens", "cost_usd"])
    if other:
        s.notes.append(f"{len(ranked) - len(top)} smaller team · model series are drawn together as \"other\".")
    return s


# ------------------------------------------------------------------ 2. the Jevons view
def jevons(query: QueryFn, period: Period, tenant: str) -> Section:
    grain = "day" if period.days <= 62 else "week" if period.days <= 366 else "month"
    params = {**period.date_params(), "grain": grain, "dimension": "team"}
    s = Section("jevons", "Unit price vs volume vs spend (the Jevons view)",
                "Did cheaper tokens make the bill smaller? Each bubble is one team in one "
                f"{grain}: tokens used (x), what a million tokens cost it (y) and its spend (area); a team's bubbles "
                "are joined in time order, the latest darkest. Down and to the right with growing bubbles is the "
                "Jevons pattern: the price fell, volume rose faster, spend went up.",
                _source("unit_price_series", params) + (f" (rows of tenant {tenant!r})" if tenant else ""))
    rows = [r for r in run(query, "unit_price_series", params) if not tenant or r["tenant"] == tenant]
    rows = [r for r in rows if r["tokens"] and r["usd_per_mtok"] is not None]
    if not rows:
        return s
    multi = len({r["tenant"] for r in rows}) > 1
    key = lambda r: (f"{r['tenant']}/" if multi else "") + (r["value"] or "(no team)")  # noqa: E731
    points: dict[str, list[svg.Point]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (key(r), r["period_start"])):
        change = ", ".join(f"{label} {r[c]:+.1f}%" for label, c in
                           (("price", "unit_price_change_pct"), ("tokens", "tokens_change_pct"),
                            ("spend", "spend_change_pct")) if r.get(c) is not None)
        tip = (f"{key(r)} · {grain} of {fmt.when(r['period_start'])}: {fmt.count(r['tokens'])} tokens, "
               f"{fmt.usd(r['cost_usd'])}, {fmt.usd(r['usd_per_mtok'])} per 1M tokens"
               + (f" ({change})" if change else ""))
        points[key(r)].append(svg.Point(float(r["tokens"]), _f(r["usd_per_mtok"]), _f(r["cost_usd"]), tip))
        r["pattern"] = ("Jevons: cheaper, more, dearer"
                        if (r.get("unit_price_change_pct") or 0) < 0 and (r.get("tokens_change_pct") or 0) > 0
                        and (r.get("spend_change_pct") or 0) > 0 else "")
    series = svg.colors(sorted(points))
    chart = svg.Bubbles(s.title, series, points, x_label=f"tokens per {grain} (input + output)",
                        y_label="USD per 1M tokens", size_label=f"spend per {grain} (USD)")
    s.svg, s.legend = chart.render(), series
    s.table = _table(rows, ["tenant", "value", "period_start", "calls", "tokens", "cost_usd", "usd_per_mtok",
                            "unit_price_change_pct", "tokens_change_pct", "spend_change_pct", "pattern"])
    s.table.columns[1] = "team"
    flagged = sum(1 for r in rows if r["pattern"])
    if flagged:
        s.notes.append(f"{flagged} team-{grain}(s) show the Jevons pattern against the {grain} before "
                       "(marked in the table); the insights service's detector judges complete weeks and months "
                       "with noise floors (docs/spend_intelligence.md).")
    return s


# ------------------------------------------------------------------ 3. runaway sessions
BEFORE, AFTER, PLAIN = "spent before the first loop alert", "spent after the first loop alert", "not flagged"


def sessions(query: QueryFn, period: Period, tenant: str, limit: int) -> Section:
    params = period.params(tenant, limit=limit)
    s = Section("runaway-sessions", "Top runaway sessions",
                "Which agent sessions ran away, and what did it cost? Sessions flagged by a loop detector come "
                "first, then the costliest others. The red part was spent after the first alert: what stopping "
                "the session at once would have saved.",
                _source("report_top_sessions", params))
    rows = run(query, "report_top_sessions", params)
    if not rows:
        return s
    multi = len({r["tenant"] for r in rows}) > 1
    series = [svg.Series(BEFORE, BEFORE, "#f28e2b"), svg.Series(AFTER, AFTER, "#c0392b"),
              svg.Series(PLAIN, PLAIN, "#4e79a7")]
    out = []
    for r in rows:
        label = (f"{r['tenant']}/" if multi else "") + f"{r['service']} · {r['session_id']}"
        cost, after = r["cost_usd"], r["cost_after_first_alert_usd"] or Decimal(0)
        head = f"{label}: {fmt.usd(cost)} over {fmt.count(r['calls'])} calls, {fmt.count(r['tokens'])} tokens"
        if r["flagged"]:
            bars = [svg.Bar(BEFORE, _f(cost - after), f"{head}; {fmt.usd(cost - after)} before the first alert "
                                                      f"({fmt.when(r['first_alert_at'])} UTC)"),
                    svg.Bar(AFTER, _f(after), f"{head}; {fmt.usd(after)} after the first alert")]
            note = ", ".join(r["rules"] or []) + (" · stopped" if r["breaker_tripped"] else "")
        else:
            bars, note = [svg.Bar(PLAIN, _f(cost), head)], ""
        out.append(svg.Row(label, bars, note=note))
    s.svg = svg.HBars(s.title, series, out, x_label="session cost (USD)").render()
    s.legend = series
    s.table = _table(rows, ["tenant", "service", "agent_name", "session_id", "calls", "tokens", "cost_usd",
                            "flagged", "rules", "worst_severity", "breaker_tripped", "first_alert_at",
                            "cost_after_first_alert_usd", "first_call", "last_call"])
    return s


# ------------------------------------------------------------------ 4. cloud vs edge
CLOUD, EDGE, EQUIV = "cloud API, paid", "edge hardware + energy, paid", "edge work priced at its cloud equivalent"


def cloud_vs_edge(query: QueryFn, period: Period, tenant: str) -> Section:
    params = period.params(tenant)
    s = Section("cloud-vs-edge", "Cloud vs edge: cost per million tokens",
                "What does a million tokens cost on cloud APIs and on our own hardware, and would the edge work "
                "have been cheaper in the cloud? Edge cost is hardware depreciation + energy by busy time "
                "(schemas/edge_profiles.yaml); its cloud equivalent prices the same tokens at the profile's "
                "cloud model.",
                _source("report_cloud_vs_edge", params))
    rows = run(query, "report_cloud_vs_edge", params)
    drawable = [r for r in rows if r["tokens"] and r["calls"] > r["unpriced_calls"]]
    if not drawable:
        if rows:
            s.table = _table(rows)
        return s
    series = [svg.Series(CLOUD, CLOUD, "#4e79a7"), svg.Series(EDGE, EDGE, "#59a14f"),
              svg.Series(EQUIV, EQUIV, "#b9c8d9")]
    out = []
    for r in drawable:
        edge = r["runtime_kind"] == "edge"
        label = (f"edge · {r['runtime_id']} · " if edge else "cloud · ") + f"{r['provider']}/{r['model']}"
        bars = [svg.Bar(EDGE if edge else CLOUD, _f(r["usd_per_mtok"]),
                        f"{label}: {fmt.usd(r['usd_per_mtok'])} per 1M tokens ({fmt.usd(r['cost_usd'])} for "
                        f"{fmt.count(r['tokens'])} tokens, {fmt.count(r['calls'])} calls)")]
        note = ""
        if edge and r["cloud_equivalent_usd_per_mtok"] is not None:
            bars.append(svg.Bar(EQUIV, _f(r["cloud_equivalent_usd_per_mtok"]),
                                f"{label}: the same tokens would cost {fmt.usd(r['cloud_equivalent_usd_per_mtok'])} "
                                f"per 1M in the cloud ({fmt.usd(r['cloud_equivalent_usd'])} in all)"))
            note = "keep local" if r["cost_usd"] <= r["cloud_equivalent_usd"] else "burst to cloud"
        if r["unpriced_calls"]:
            note = (note + " · " if note else "") + f"{r['unpriced_calls']} unpriced calls"
        out.append(svg.Row(label, bars, note=note))
    used = {b.series for row in out for b in row.bars}
    legend = [x for x in series if x.key in used]
    s.svg = svg.HBars(s.title, series, out, x_label="USD per 1M tokens (input + output)", stacked=False).render()
    s.legend = legend
    s.table = _table(rows)
    skipped = len(rows) - len(drawable)
    if skipped:
        s.notes.append(f"{skipped} row(s) with only unpriced calls (model missing from the price table) are in the "
                       "table but not drawn: their cost is 0 by construction.")
    return s


# ------------------------------------------------------------------ 5. budget burn
UNDER, NEAR, OVER = "spent: under 80 % of the amount", "spent: 80-100 %", "spent: over 100 %"
BAND, P50 = "forecast at period end, P10-P90 band", "forecast at period end, P50"


def budgets(query: QueryFn, period: Period, tenant: str) -> Section:
    params = period.params(tenant)
    s = Section("budget-burn", "Budget burn",
                "How far through each budget are we, and where will it end? The bar is spend so far as a percent of "
                "the budget's amount (newest evaluation in the period); the grey band is the period-end forecast "
                "P10-P90 and the black tick its P50; dashed lines are the 50 / 80 / 100 % thresholds.",
                _source("report_budget_status", params))
    rows = run(query, "report_budget_status", params)
    if not rows:
        s.notes.append("Budgets are evaluated by the insights service (schemas/budgets.yaml, docs/budgets.md).")
        return s
    series = [svg.Series(UNDER, UNDER, "#4e79a7"), svg.Series(NEAR, NEAR, "#f28e2b"),
              svg.Series(OVER, OVER, "#c0392b"), svg.Series(BAND, BAND, "#d9d9d9"), svg.Series(P50, P50, "#111111")]
    out = []
    for r in rows:
        amount = r["amount_usd"]
        if not amount:  # validation refuses a zero amount; an old row must not break the page
            continue
        share = lambda v, amount=amount: None if v is None else _f(v * 100 / amount)  # noqa: E731
        used = share(r["spend_usd"])
        kind = OVER if used >= 100 else NEAR if used >= 80 else UNDER
        label = f"{r['tenant']}/{r['budget_id']} ({r['period']})"
        tip = (f"{label}: {fmt.usd(r['spend_usd'])} of {fmt.usd(amount)} ({used:.2f}%) as of {fmt.when(r['as_of'])} "
               f"UTC; burn rate 1h {r['burn_1h']}x, 6h {r['burn_6h']}x (1 = on pace)")
        row = svg.Row(label, [svg.Bar(kind, used, tip)],
                      note=f"{fmt.usd(r['spend_usd'])} / {fmt.usd(amount)}")
        if r["forecast_p_low_usd"] is not None and r["forecast_p_high_usd"] is not None:
            row.band = (share(r["forecast_p_low_usd"]), share(r["forecast_p_high_usd"]),
                        f"{label}: period-end forecast P{r['forecast_low_pct']} {fmt.usd(r['forecast_p_low_usd'])} - "
                        f"P{r['forecast_high_pct']} {fmt.usd(r['forecast_p_high_usd'])}")
        if r["forecast_p50_usd"] is not None:
            row.marker = (share(r["forecast_p50_usd"]),
                          f"{label}: period-end forecast P50 {fmt.usd(r['forecast_p50_usd'])}")
        out.append(row)
    s.svg = svg.HBars(s.title, series, out, x_label="percent of the budget's amount", tick=lambda v: f"{v:g}%",
                      ref_lines=[(50, "50%"), (80, "80%"), (100, "100%")]).render()
    used_kinds = {b.series for row in out for b in row.bars}
    s.legend = [x for x in series if x.key in used_kinds or (x.key == BAND and any(r.band for r in out))
                or (x.key == P50 and any(r.marker for r in out))]
    s.table = _table(rows)
    return s


# ------------------------------------------------------------------ 6. savings
PAID, WITHOUT = "paid", "the same calls without the lever"
LEVERS = {"prompt_cache": "prompt caching", "routing": "routing to a cheaper model", "edge": "edge instead of cloud"}


def savings(query: QueryFn, period: Period, tenant: str) -> Section:
    params = period.date_params()
    s = Section("savings", "Measured savings",
                "What did prompt caching, model routing and edge serving actually save, measured on our own calls? "
                "Each lever's paid cost next to what the same calls would have cost without it (whole UTC days).",
                _source("savings_measured", params) + (f" (rows of tenant {tenant!r})" if tenant else ""))
    rows = [r for r in run(query, "savings_measured", params) if not tenant or r["tenant"] == tenant]
    if not rows:
        s.notes.append("Savings are measured by the insights service per complete day (docs/spend_intelligence.md).")
        return s
    agg: dict[str, dict] = {}
    for r in rows:
        a = agg.setdefault(r["lever"], {"paid": Decimal(0), "without": Decimal(0), "saving": Decimal(0),
                                         "calls": 0, "uncounted": 0})
        a["paid"] += r["paid_usd"]
        a["without"] += r["without_lever_usd"]
        a["saving"] += r["saving_usd"]
        a["calls"] += r["calls"]
        a["uncounted"] += r["uncounted_calls"]
    series = [svg.Series(PAID, PAID, "#4e79a7"), svg.Series(WITHOUT, WITHOUT, "#e15759")]
    out = []
    for lever, a in sorted(agg.items(), key=lambda kv: -kv[1]["saving"]):
        name = LEVERS.get(lever, lever)
        pct = f" ({a['saving'] * 100 / a['without']:.1f}%)" if a["without"] else ""
        out.append(svg.Row(name, [
            svg.Bar(PAID, _f(a["paid"]), f"{name}: paid {fmt.usd(a['paid'])} for {fmt.count(a['calls'])} calls"),
            svg.Bar(WITHOUT, _f(a["without"]), f"{name}: {fmt.usd(a['without'])} without the lever; "
                                               f"saved {fmt.usd(a['saving'])}{pct}")],
            note=f"saved {fmt.usd(a['saving'])}{pct}"))
    s.svg = svg.HBars(s.title, series, out, x_label="USD", stacked=False).render()
    s.legend = series
    s.table = _table(rows)
    if any(a["uncounted"] for a in agg.values()):
        s.notes.append("Calls without a counterfactual price (e.g. routed from a model the catalog does not know) are "
                       "counted in uncounted_calls and add no saving.")
    return s


__all__ = ["Period", "Section", "Table", "totals", "spend_over_time", "jevons", "sessions", "cloud_vs_edge",
           "budgets", "savings", "choose_bucket"]
