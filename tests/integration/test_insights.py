"""The insights runner against the running stack: one evaluation cycle reads spend through
the loader's query endpoint, writes budget_status rows back the same way, and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tokenpulse.sql_client import run_sql

pytestmark = pytest.mark.integration


def test_one_insights_cycle_writes_budget_status(stack_settings):
    before = run_sql(stack_settings, "SELECT count() FROM budget_status").rows[0][0]
    out = subprocess.run([sys.executable, "-m", "tokenpulse.insights", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    after = run_sql(stack_settings, "SELECT count() FROM budget_status").rows[0][0]
    assert after > before  # one row per budget per evaluation
