"""ClickHouse schema on a real engine: migrations up -> down -> up, and the HTTP transport."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tokenpulse.loader.migrations import discover

N = len(discover())
pytestmark = pytest.mark.integration


def tokenpulse(state_dir, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENPULSE_PATHS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "tokenpulse.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_migrations_up_down_up_on_embedded_clickhouse(tmp_path):
    up = tokenpulse(tmp_path, "migrate", "up")
    assert up.returncode == 0, up.stderr
    assert f"{N} migration(s) applied" in up.stdout
    tables = tokenpulse(tmp_path, "sql", "SELECT name FROM system.tables WHERE database = 'tokenpulse' ORDER BY name")
    assert all(t in tables.stdout for t in ("token_spans", "spend_1m", "alerts", "dead_letters", "focus_spend"))

    down = tokenpulse(tmp_path, "migrate", "down", "--steps", str(N))
    assert down.returncode == 0 and f"{N} migration(s) reverted" in down.stdout, down.stderr
    gone = tokenpulse(tmp_path, "sql", "SELECT count() FROM system.tables WHERE database = 'tokenpulse' "
                                       "AND name != 'schema_migrations'")
    assert gone.stdout.split()[-1] == "0"

    again = tokenpulse(tmp_path, "migrate", "up")
    assert f"{N} migration(s) applied" in again.stdout
    assert "0 migration(s) applied" in tokenpulse(tmp_path, "migrate", "up").stdout  # idempotent


def test_saved_queries_run_on_an_empty_store(tmp_path):
    assert tokenpulse(tmp_path, "migrate", "up").returncode == 0
    for name, params in (("spend_by_team_model", ["hours=1"]), ("reconcile_raw_vs_rollups", ["days=1"]),
                         ("unpriced_calls", ["hours=1"]), ("top_sessions", ["hours=1", "limit=5"]),
                         ("cloud_vs_edge_hourly", ["hours=1"]), ("dead_letters_recent", ["hours=1"]),
                         ("cloud_vs_edge_comparison", ["hours=1"]), ("focus_monthly_by_service", [])):
        args = ["sql", "--saved", name] + [a for p in params for a in ("--param", p)]
        result = tokenpulse(tmp_path, *args)
        assert result.returncode == 0, f"{name}: {result.stderr}"


@pytest.mark.skipif(not os.environ.get("CLICKHOUSE_URL"),
                    reason="CLICKHOUSE_URL not set: no ClickHouse server to test the HTTP transport against")
def test_same_migrations_on_a_clickhouse_server(tmp_path):
    env_dsn = os.environ["CLICKHOUSE_URL"]
    env = {**os.environ, "TOKENPULSE_CLICKHOUSE_DSN": env_dsn, "TOKENPULSE_CLICKHOUSE_DATABASE": "tokenpulse_test"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "tokenpulse.cli", *a], env=env, capture_output=True,
                                    text=True, timeout=120)
    assert run("migrate", "up").returncode == 0
    assert run("migrate", "down", "--steps", str(N)).returncode == 0
    assert run("migrate", "up").returncode == 0
