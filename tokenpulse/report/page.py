"""Assemble the sections into one self-contained HTML page: inline CSS, inline SVG, no
scripts, no external fonts, images or links to fetch, so it opens offline and prints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html import escape

from . import fmt
from .sections import MAX_TABLE_ROWS, Period, Section

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2329;
       background: #f6f7f9; }
main { max-width: 980px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
.meta { color: #5b6470; margin: 0 0 16px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin: 0 0 18px; }
.kpi { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 10px 12px; }
.kpi b { display: block; font-size: 18px; margin-top: 2px; word-break: break-all; }
.kpi span { color: #5b6470; font-size: 12px; }
nav ol { columns: 2; margin: 0 0 8px; padding-left: 20px; }
section.chart { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 16px 18px; margin: 16px 0; }
section.chart h2 { font-size: 18px; margin: 0 0 4px; }
.question { color: #3d4650; margin: 0 0 10px; }
.empty { padding: 28px; text-align: center; color: #5b6470; background: #f3f4f6; border-radius: 6px;
         font-style: italic; }
ul.legend { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 4px 16px;
            font-size: 13px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
ul.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
svg text.tick { fill: #5b6470; font-size: 11px; }
svg text.axis-label { fill: #3d4650; font-size: 12px; }
svg text.note { fill: #5b6470; font-size: 11px; }
svg text.row-label { fill: #1d2329; font-size: 12px; }
svg .mark:hover { stroke: #111; stroke-width: 1.5; }
details { margin-top: 8px; }
summary { cursor: pointer; color: #2b5c8a; }
.table-wrap { overflow-x: auto; max-height: 420px; overflow-y: auto; }
table { border-collapse: collapse; font-size: 12px; margin-top: 6px; }
th, td { border-bottom: 1px solid #eceef1; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f3f4f6; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.source, .notes { color: #5b6470; font-size: 12px; margin: 6px 0 0; }
code { font-size: 12px; }
footer { color: #5b6470; font-size: 12px; margin-top: 24px; }
@media print { body { background: #fff; } section.chart { break-inside: avoid; } details { display: none; } }
"""


def _legend(section: Section) -> str:
    items = "".join(f'<li><i style="background:{s.color}"></i>{escape(s.label)}</li>' for s in section.legend)
    return f'<ul class="legend" aria-label="legend">{items}</ul>'


def _table(section: Section) -> str:
    t = section.table
    if t is None or not t.rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = []
    for row in t.rows[:MAX_TABLE_ROWS]:
        cells = "".join(
            f'<td class="num">{fmt.cell(v)}</td>' if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
            else f"<td>{fmt.cell(v)}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = (f'<p class="notes">{len(t.rows) - MAX_TABLE_ROWS} more rows not shown; run the query with '
            "<code>tokenpulse sql</code> for all of them.</p>") if len(t.rows) > MAX_TABLE_ROWS else ""
    return (f"<details><summary>Data table ({len(t.rows)} rows, exact values)</summary>"
            f'<div class="table-wrap"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{more}</details>")


def _section(s: Section) -> str:
    if s.svg is None:
        chart = '<p class="empty">no data for this period</p>'
    else:
        chart = f'<figure class="plot" style="margin:0">{s.svg}</figure>{_legend(s)}'
    notes = "".join(f'<p class="notes">{escape(n)}</p>' for n in s.notes)
    return (f'<section class="chart" id="{s.id}" data-chart="{s.id}" data-empty="{str(s.svg is None).lower()}">'
            f"<h2>{escape(s.title)}</h2><p class=\"question\">{escape(s.question)}</p>{chart}{notes}{_table(s)}"
            f'<p class="source">Source: <code>{escape(s.source)}</code></p></section>')


def _kpis(head: dict) -> str:
    tokens, cost = head.get("tokens") or 0, head.get("cost_usd")
    # a derived ratio, not a stored amount: rounded to a millionth of a dollar
    per_m = fmt.usd((cost * 1000000 / tokens).quantize(Decimal("0.000001"))) if tokens and cost is not None else "n/a"
    cards = [("spend", fmt.usd(cost) if cost is not None else "$0.00"),
             ("LLM calls", fmt.count(head.get("calls") or 0)),
             ("tokens (input + output)", fmt.count(tokens)), ("average per 1M tokens", per_m),
             ("unpriced calls", fmt.count(head.get("unpriced_calls") or 0)),
             ("failed calls", fmt.count(head.get("error_calls") or 0)),
             # succeeded but no token counts on the span (an older sender's streams): spend unknown
             ("calls without usage", fmt.count(head.get("usage_missing_calls") or 0)),
             ("rejected (dead letters)", fmt.count(head.get("dead_letters") or 0)),
             ("incidents opened", fmt.count(head.get("incidents") or 0))]
    return '<div class="kpis">' + "".join(f'<div class="kpi"><span>{escape(k)}</span><b>{escape(v)}</b></div>'
                                          for k, v in cards) + "</div>"


def render(sections: list[Section], head: dict, period: Period, tenant: str, generated: datetime, store: str) -> str:
    scope = f"tenant {tenant}" if tenant else "all tenants"
    nav = "".join(f'<li><a href="#{s.id}">{escape(s.title)}</a>{"" if s.svg else " (no data)"}</li>' for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokenpulse spend report: {escape(fmt.when(period.start))} to {escape(fmt.when(period.end))} UTC</title>
<style>{CSS}</style></head>
<body><main>
<h1>LLM spend report</h1>
<p class="meta">{escape(scope)} · {escape(fmt.when(period.start))} to {escape(fmt.when(period.end))} UTC
 · generated {escape(fmt.when(generated))} UTC from {escape(store)}</p>
{_kpis(head)}
<nav aria-label="charts"><ol>{nav}</ol></nav>
{''.join(_section(s) for s in sections)}
<footer>Money is exact: amounts are ClickHouse Decimal(38, 12) USD shown with every significant digit (chart
geometry alone uses floating point). Hover a bar or bubble for its numbers, or open its data table.
Made by <code>tokenpulse report</code>; every chart names the saved query under <code>sql/queries/</code> it came from,
so <code>tokenpulse sql --saved NAME --param k=v</code> reproduces it.</footer>
</main></body></html>
"""
