"""The insights runner against the running stack: one evaluation cycle reads spend through
the loader's query endpoint, writes budget_status rows back the same way, and exits 0."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tokenpulse.sql_client import run_sql

pytestmark = pytest.mark.integration


def test_one_insights_cycle_writes_budget_status(stack_settings):
    started_ms = int(time.time() * 1000)
    out = subprocess.run([sys.executable, "-m", "tokenpulse.insights", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    # budget_status is a ReplacingMergeTree (one row per budget and period once merged, and the
    # stack's own insights service writes too), so count the states evaluated since we started.
    reported = re.search(r"'budget_status': (\d+)", out.stdout)
    assert reported and int(reported.group(1)) > 0, out.stdout
    fresh = run_sql(stack_settings, "SELECT count() FROM budget_status FINAL "
                    "WHERE toUnixTimestamp64Milli(evaluated_at) >= {t:Int64}", {"t": started_ms}).rows[0][0]
    assert fresh >= int(reported.group(1))
