"""How numbers read in the report: money exactly as stored, counts and times plainly.

Money arrives from ClickHouse as Decimal(38, 12). It is shown with every significant digit
(no rounding: $0.000123 stays $0.000123), at least cents, with thousands separators. Floats
appear only for geometry and for ratios that are floats in the store (burn rates, percents).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from html import escape

MINUS = "\u2212"


def usd(value) -> str:
    """$1,234.50, $0.0001234, −$0.05; '' for NULL. Exact: trailing zeros only are dropped."""
    if value is None:
        return ""
    d = Decimal(value) if not isinstance(value, Decimal) else value
    sign = MINUS if d < 0 else ""
    d = abs(d).normalize()
    if d.as_tuple().exponent > -2:
        d = d.quantize(Decimal("0.01"))
    return f"{sign}${d:,f}"


def count(value) -> str:
    return "" if value is None else f"{int(value):,}"


def compact(value: float) -> str:
    """Axis labels for counts: 950, 12k, 3.4M, 1.2B."""
    v = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


def pct(value, digits: int = 1) -> str:
    return "" if value is None else f"{float(value):.{digits}f}%"


def when(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def cell(value) -> str:
    """A table cell from any query value (Decimals exact, lists joined), HTML-escaped."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value != 0 else "0"
    elif isinstance(value, (datetime, date)):
        text = when(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return escape(text)
