"""Burn rates in the style of SRE error budgets (Google SRE workbook, "Alerting on SLOs").

    burn rate of a window w = (spend in w / length of w) / (budget amount / period length)

1.0 means the scope spends at exactly the pace that uses the amount by the period's end;
14.4 means fourteen times that pace. A rule pages when BOTH windows of a pair burn faster
than the pair's factor:

* factor f over the long window L consumes f x L / P of the amount (P = period length):
  monthly (30 d = 720 h): fast 14.4 over 1 h = 2 %, slow 6 over 6 h = 5 %; at rate f the
  whole amount lasts P / f (50 h, 5 days), which is "exhausted early" in plain words;
* the long window makes the alert significant (a 30-second spike does not page), the short
  one (L / 12) makes it stop once the burst stops, instead of an hour later;
* fast pairs catch sudden runaways (page, critical), slow pairs catch a sustained overspend
  that a fast pair would miss (warning).

Burn rates are Decimal ratios computed from exact Decimal spend; they are stored as Float64
rate multiples (not money). The comparison with the factor is done in Decimal.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal


def burn_rate(spend_in_window: Decimal, window_s: int, amount: Decimal, period_s: int) -> Decimal:
    """(spend / window) / (amount / period), exact Decimal (context precision)."""
    if window_s <= 0 or period_s <= 0 or amount <= 0:
        raise ValueError("window, period and amount must be positive")
    return (spend_in_window * period_s) / (amount * window_s)


def budget_share(factor: Decimal, window_s: int, period_s: int) -> Decimal:
    """Fraction of the amount spent in `window_s` at burn rate `factor` (14.4, 1 h, 30 d -> 0.02)."""
    return factor * window_s / period_s


def exhaustion_time(remaining: Decimal, spend_in_window: Decimal, window_s: int, as_of: datetime) -> datetime | None:
    """When the remaining amount runs out at the window's spend rate; None when nothing is
    being spent, `as_of` when nothing remains."""
    if remaining <= 0:
        return as_of
    if spend_in_window <= 0:
        return None
    seconds = remaining * window_s / spend_in_window
    if seconds > 100 * 365 * 86_400:
        return None  # effectively never
    return as_of + timedelta(seconds=float(seconds))
