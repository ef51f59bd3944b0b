"""Inline SVG charts, drawn in Python: no JavaScript, no fonts or scripts fetched.

Three shapes cover the report: stacked bars over time, a bubble chart (x, y, area) with
each series' points joined in time order, and horizontal bars (stacked or grouped, with
optional range bands and reference lines). Every data mark carries class="mark" and a
<title> (the browser's tooltip, also read by screen readers) with the exact values; the
page adds the legend and a data table. Floats are used for geometry only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from . import fmt

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#17becf"]
OTHER = "#9aa0a6"
W = 880  # viewBox width; the SVG scales to the page width
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'


@dataclass
class Series:
    key: str
    label: str
    color: str


def colors(keys: list[str], other_key: str | None = None) -> list[Series]:
    return [Series(k, k, OTHER if k == other_key else PALETTE[i % len(PALETTE)]) for i, k in enumerate(keys)]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def money_tick(v: float) -> str:
    if v == 0:
        return "$0"
    digits = max(0, min(12, -math.floor(math.log10(abs(v))) + 1)) if abs(v) < 1 else (0 if v >= 10 else 2)
    return f"${v:,.{digits}f}"


def _text(x, y, s, anchor="start", cls="", extra="") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{extra}>{escape(s)}</text>'


def _svg(height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="100%" role="img" '
            f'{FONT} class="chart-svg"><title>{escape(title)}</title>' + "".join(body) + "</svg>")


# ------------------------------------------------------------------ stacked bars over time
@dataclass
class TimeBars:
    title: str
    buckets: list[datetime]          # every bucket of the range, in order (gaps included)
    bucket: timedelta
    series: list[Series]
    values: dict[tuple[datetime, str], float]  # (bucket, series key) -> value (float for geometry)
    tooltips: dict[tuple[datetime, str], str]  # the exact text per mark
    y_label: str = "USD per bucket"

    def render(self) -> str:
        h, left, right, top, bottom = 340, 78, 16, 14, 48
        pw, ph = W - left - right, h - top - bottom
        totals = [sum(self.values.get((b, s.key), 0.0) for s in self.series) for b in self.buckets]
        ticks = nice_ticks(0, max(totals) or 1)
        ymax = ticks[-1]
        y = lambda v: top + ph - v / ymax * ph  # noqa: E731
        out = _axes_y(ticks, y, left, W - right, money_tick)
        out.append(_text(14, top + ph / 2, self.y_label, "middle", "axis-label",
                         f' transform="rotate(-90 14 {top + ph / 2:.1f})"'))
        slot = pw / len(self.buckets)
        bw = max(1.0, min(slot * 0.8, 56.0))  # a few buckets must not become slabs
        for i, b in enumerate(self.buckets):
            x0, acc = left + i * slot + (slot - bw) / 2, 0.0
            for s in self.series:
                v = self.values.get((b, s.key), 0.0)
                if v <= 0:
                    continue
                y1, y0 = y(acc + v), y(acc)
                acc += v
                out.append(f'<rect class="mark" data-series="{escape(s.key)}" x="{x0:.2f}" y="{y1:.2f}" '
                           f'width="{bw:.2f}" height="{max(0.5, y0 - y1):.2f}" fill="{s.color}">'
                           f'<title>{escape(self.tooltips.get((b, s.key), ""))}</title></rect>')
        out += _time_axis(self.buckets, self.bucket, left, slot, top + ph)
        out.append(_text(left + pw / 2, h - 6, f"time (UTC), one bar per {span_label(self.bucket)}", "middle",
                         "axis-label"))
        return _svg(h, self.title, out)


def _axes_y(ticks, y, x0, x1, label: Callable[[float], str]) -> list[str]:
    out = []
    for t in ticks:
        out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e3e6ea"/>')
        out.append(_text(x0 - 6, y(t) + 4, label(t), "end", "tick"))
    out.append(f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y(ticks[-1]):.1f}" y2="{y(ticks[0]):.1f}" stroke="#555"/>')
    return out


def span_label(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s % n == 0:
            k = s // n
            return f"{unit}" if k == 1 else f"{k} {unit}s"
    return f"{s} s"


def _time_axis(buckets, bucket: timedelta, left, slot, y0) -> list[str]:
    out = [f'<line class="axis" x1="{left}" x2="{left + slot * len(buckets):.1f}" y1="{y0}" y2="{y0}" stroke="#555"/>']
    every = max(1, math.ceil(len(buckets) / 8))
    daily = bucket >= timedelta(days=1)
    last_day = None
    for i in range(0, len(buckets), every):
        b = buckets[i]
        label = b.strftime("%m-%d") if daily else b.strftime("%H:%M")
        if not daily and b.date() != last_day:
            label = b.strftime("%m-%d %H:%M")
            last_day = b.date()
        x = left + i * slot + slot / 2
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#555"/>')
        out.append(_text(x, y0 + 17, label, "middle", "tick"))
    return out


# ------------------------------------------------------------------ bubbles joined in time order
@dataclass
class Point:
    x: float
    y: float
    size: float
    tooltip: str


@dataclass
class Bubbles:
    title: str
    series: list[Series]
    points: dict[str, list[Point]]  # series key -> points in time order
    x_label: str
    y_label: str
    size_label: str

    def render(self) -> str:
        h, left, right, top, bottom = 380, 84, 24, 16, 50
        pw, ph = W - left - right, h - top - bottom
        allp = [p for ps in self.points.values() for p in ps]
        xs = [p.x for p in allp if p.x > 0] or [1.0]
        log = max(xs) / min(xs) >= 50  # volumes spanning orders of magnitude read better on a log axis
        if log:
            lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
            hi = hi if hi > lo else lo + 1
            xticks = [10.0 ** e for e in range(lo, hi + 1)]
            fx = lambda v: (math.log10(max(v, 10.0 ** lo)) - lo) / (hi - lo)  # noqa: E731
        else:
            xticks = nice_ticks(0, max(xs) * 1.05)
            fx = lambda v: v / xticks[-1]  # noqa: E731
        yticks = nice_ticks(0, max((p.y for p in allp), default=1) * 1.1 or 1)
        pad = 22  # keeps the outermost bubbles inside the plot
        X = lambda v: left + pad + fx(v) * (pw - 2 * pad)  # noqa: E731
        Y = lambda v: top + ph - v / yticks[-1] * ph  # noqa: E731
        out = _axes_y(yticks, Y, left, W - right, money_tick)
        y0 = top + ph
        out.append(f'<line class="axis" x1="{left}" x2="{W - right}" y1="{y0}" y2="{y0}" stroke="#555"/>')
        for t in xticks:
            out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#555"/>')
            out.append(_text(X(t), y0 + 17, fmt.compact(t), "middle", "tick"))
        out.append(_text(left + pw / 2, h - 8, self.x_label + (" (log scale)" if log else ""), "middle", "axis-label"))
        out.append(_text(14, top + ph / 2, self.y_label, "middle", "axis-label",
                         f' transform="rotate(-90 14 {top + ph / 2:.1f})"'))
        out.append(_text(W - right, top + 10, f"bubble area: {self.size_label}", "end", "note"))
        smax = max((p.size for p in allp), default=1) or 1
        for s in self.series:
            pts = self.points.get(s.key, [])
            if len(pts) > 1:
                path = " ".join(f"{X(p.x):.1f},{Y(p.y):.1f}" for p in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="1.5" '
                           f'stroke-opacity="0.7" marker-end="url(#arrow)"/>')
            for i, p in enumerate(pts):
                r = 3 + 19 * math.sqrt(max(p.size, 0) / smax)
                opacity = 0.35 + 0.5 * (i + 1) / len(pts)  # later periods darker: the direction of travel
                out.append(f'<circle class="mark" data-series="{escape(s.key)}" cx="{X(p.x):.1f}" cy="{Y(p.y):.1f}" '
                           f'r="{r:.1f}" fill="{s.color}" fill-opacity="{opacity:.2f}" stroke="{s.color}">'
                           f'<title>{escape(p.tooltip)}</title></circle>')
        defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
                'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>')
        return _svg(h, self.title, [defs] + out)


# ------------------------------------------------------------------ horizontal bars
@dataclass
class Bar:
    series: str
    value: float
    tooltip: str


@dataclass
class Row:
    label: str
    bars: list[Bar]
    band: tuple[float, float, str] | None = None   # (low, high, tooltip): e.g. a forecast P10-P90
    marker: tuple[float, str] | None = None        # (value, tooltip): e.g. the forecast P50
    note: str = ""                                 # text after the bars


@dataclass
class HBars:
    title: str
    series: list[Series]
    rows: list[Row]
    x_label: str
    stacked: bool = True
    tick: Callable[[float], str] = money_tick
    ref_lines: list[tuple[float, str]] = field(default_factory=list)  # (value, label)

    def render(self) -> str:
        per = 1 if self.stacked else max([1] + [len(r.bars) for r in self.rows])  # bars side by side
        row_h = 26 if per == 1 else 12 * per + 10
        left, right, top, bottom = 250, 120, 22, 46
        h = top + bottom + row_h * len(self.rows)
        pw = W - left - right
        ends = [sum(b.value for b in r.bars) if self.stacked else max((b.value for b in r.bars), default=0)
                for r in self.rows]
        ends += [r.band[1] for r in self.rows if r.band] + [r.marker[0] for r in self.rows if r.marker]
        ends += [v for v, _ in self.ref_lines]
        ticks = nice_ticks(0, max(ends, default=0) or 1)
        X = lambda v: left + v / ticks[-1] * pw  # noqa: E731
        y_end = top + row_h * len(self.rows)
        out = []
        for t in ticks:
            out.append(f'<line class="grid" x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top}" y2="{y_end}" stroke="#e3e6ea"/>')
            out.append(_text(X(t), y_end + 16, self.tick(t), "middle", "tick"))
        out.append(f'<line class="axis" x1="{left}" x2="{W - right}" y1="{y_end}" y2="{y_end}" stroke="#555"/>')
        out.append(_text(left + pw / 2, h - 8, self.x_label, "middle", "axis-label"))
        color = {s.key: s.color for s in self.series}
        for i, r in enumerate(self.rows):
            ry = top + i * row_h
            out.append(_text(left - 8, ry + row_h / 2 + 4, r.label[:34] + ("…" if len(r.label) > 34 else ""), "end",
                             "row-label", f' data-full="{escape(r.label)}"'))
            if r.band:
                lo, hi, tip = r.band
                out.append(f'<rect class="band" x="{X(lo):.2f}" y="{ry + 3:.1f}" width="{max(1.0, X(hi) - X(lo)):.2f}" '
                           f'height="{row_h - 6:.1f}" fill="#000" fill-opacity="0.08" stroke="#888" '
                           f'stroke-dasharray="3 2"><title>{escape(tip)}</title></rect>')
            acc, end = 0.0, left
            bh = (row_h - 8) / per
            for j, b in enumerate(r.bars):
                if b.value < 0:
                    continue
                if self.stacked:
                    x0, y0 = X(acc), ry + 4
                    acc += b.value
                else:
                    x0, y0 = X(0), ry + 4 + j * bh
                w = max(1.0, X(b.value) - X(0))
                end = max(end, x0 + w)
                out.append(f'<rect class="mark" data-series="{escape(b.series)}" x="{x0:.2f}" y="{y0:.2f}" '
                           f'width="{w:.2f}" height="{bh - (1 if per > 1 else 0):.2f}" fill="{color[b.series]}">'
                           f'<title>{escape(b.tooltip)}</title></rect>')
            if r.marker:
                v, tip = r.marker
                out.append(f'<line class="marker" x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{ry + 1}" y2="{ry + row_h - 1}" '
                           f'stroke="#111" stroke-width="2.5"><title>{escape(tip)}</title></line>')
            if r.note:
                end = max([end] + ([X(r.band[1])] if r.band else []) + ([X(r.marker[0])] if r.marker else []))
                x = min(end, W - right) + 6
                room = max(4, int((W - x) / 6.2))  # ~6 px per character at 11 px
                note = r.note if len(r.note) <= room else r.note[:room - 1] + "…"
                out.append(_text(x, ry + row_h / 2 + 4, note, "start", "note", f' data-full="{escape(r.note)}"'))
        for v, label in self.ref_lines:
            out.append(f'<line class="ref" x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{top - 4}" y2="{y_end}" '
                       'stroke="#c0392b" stroke-dasharray="4 3"/>')
            out.append(_text(X(v), top - 8, label, "middle", "note"))
        return _svg(h, self.title, out)
