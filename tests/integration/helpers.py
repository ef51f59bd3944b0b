"""Helpers for integration tests."""

from __future__ import annotations

import time

from tokenpulse.settings import Settings
from tokenpulse.sql_client import run_sql


def wait_for(settings: Settings, sql: str, params: dict, done, timeout_s: float = 150.0):
    """Poll a query until `done(rows)` holds; return the rows (the last ones on timeout)."""
    deadline = time.monotonic() + timeout_s
    rows = run_sql(settings, sql, params).rows
    while not done(rows) and time.monotonic() < deadline:
        time.sleep(1.0)
        rows = run_sql(settings, sql, params).rows
    return rows
