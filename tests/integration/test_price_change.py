"""A price change in the middle of a 1-minute window: each call is priced at the price in
force when it was made (event time), and the window's rollup is the sum of both."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from helpers import PRICE_CHANGE_MODEL, PRICE_CHANGE_MS, wait_for
from test_pipeline import export, record_spans

pytestmark = pytest.mark.integration


def test_calls_either_side_of_a_mid_window_price_change(stack_settings):
    wait_s = (PRICE_CHANGE_MS + 600) / 1000 - time.time()
    if wait_s > 0:
        time.sleep(wait_s)  # both calls end up on time, in the same window
    run = uuid.uuid4().hex[:8]
    shape = ("acme", "price-change", "openai", PRICE_CHANGE_MODEL, 1_000_000, 0, 0, 1_000_000, 0)
    before = record_spans("acme", run, [shape], (PRICE_CHANGE_MS - 500) * 10**6)
    after = record_spans("acme", run, [shape], (PRICE_CHANGE_MS + 500) * 10**6)
    export(stack_settings, "acme", before + after)

    rows = wait_for(stack_settings, "SELECT end_time, cost_usd FROM token_spans FINAL WHERE session_id LIKE "
                    "{run:String} ORDER BY end_time", {"run": f"{run}-%"}, lambda r: len(r) == 2)
    # 1M input + 1M output tokens: $1.00 + $2.00 before the change, $0.50 + $1.00 after it
    assert [Decimal(r[1]) for r in rows] == [Decimal(3), Decimal("1.5")]

    window = {"m": time.strftime("%Y-%m-%d %H:%M:00", time.gmtime(PRICE_CHANGE_MS / 1000)), "team": "price-change"}
    rolled = wait_for(stack_settings, "SELECT sum(calls), sum(cost_usd) FROM spend_1m FINAL WHERE team = {team:String} "
                      "AND window_start = {m:DateTime}", window, lambda r: (r[0][0] or 0) >= 2)
    assert (rolled[0][0], Decimal(rolled[0][1])) == (2, Decimal("4.5"))
