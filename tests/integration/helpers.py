"""Helpers for integration tests."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import yaml

from tokenpulse.settings import REPO_ROOT, Settings
from tokenpulse.sql_client import run_sql


def wait_for(settings: Settings, sql: str, params: dict, done, timeout_s: float = 150.0):
    """Poll a query until `done(rows)` holds; return the rows (the last ones on timeout)."""
    deadline = time.monotonic() + timeout_s
    rows = run_sql(settings, sql, params).rows
    while not done(rows) and time.monotonic() < deadline:
        time.sleep(1.0)
        rows = run_sql(settings, sql, params).rows
    return rows


# A price that changes in the middle of a minute, about two minutes after the stack starts.
PRICE_CHANGE_MODEL = "tokenpulse-test-price-change"
PRICE_CHANGE_MS = (int(time.time()) // 60 + 3) * 60_000 + 30_000


def write_test_prices(path) -> None:
    doc = yaml.safe_load((REPO_ROOT / "schemas" / "prices.yaml").read_text())
    change = datetime.fromtimestamp(PRICE_CHANGE_MS / 1000, tz=timezone.utc).isoformat()
    common = {"provider": "openai", "model": PRICE_CHANGE_MODEL, "source": "integration test fixture"}
    doc["prices"] += [
        {**common, "input_usd_per_mtok": "1.00", "output_usd_per_mtok": "2.00",
         "effective_from": "2025-01-01", "effective_to": change},
        {**common, "input_usd_per_mtok": "0.50", "output_usd_per_mtok": "1.00", "effective_from": change},
    ]
    path.write_text(yaml.safe_dump(doc))
