"""Helpers for integration tests."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import yaml

from tokenpulse.settings import REPO_ROOT, Settings
from tokenpulse.sql_client import run_sql

# Every fixed test port shifts by this much, so two runs (a CI checkout and a working tree)
# can share one machine: TOKENPULSE_IT_PORT_OFFSET=1000 make test.
PORT_OFFSET = int(os.environ.get("TOKENPULSE_IT_PORT_OFFSET", "0"))


def port(base: int) -> int:
    return base + PORT_OFFSET


# What a test's own stack may inherit from this process's environment; every other TOKENPULSE_*
# variable belongs to the session stack (e.g. its Kafka inputs for tenant acme).
INHERITED = ("TOKENPULSE_PATHS_CACHE_DIR", "TOKENPULSE_IT_PORT_OFFSET")


def without_session_settings(environ: dict[str, str]) -> dict[str, str]:
    """`environ` minus the session stack's TOKENPULSE_* settings, for a stack of the test's own."""
    return {k: v for k, v in environ.items() if not k.startswith("TOKENPULSE_") or k in INHERITED}


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
    change = datetime.fromtimestamp(PRICE_CHANGE_MS / 1000, tz=UTC).isoformat()
    common = {"provider": "openai", "model": PRICE_CHANGE_MODEL, "source": "integration test fixture"}
    doc["prices"] += [
        {**common, "input_usd_per_mtok": "1.00", "output_usd_per_mtok": "2.00",
         "effective_from": "2025-01-01", "effective_to": change},
        {**common, "input_usd_per_mtok": "0.50", "output_usd_per_mtok": "1.00", "effective_from": change},
    ]
    path.write_text(yaml.safe_dump(doc))


# --- loop detection and alert hooks -------------------------------------------------------
HOOK_SECRET = "integration-hook-secret"
PAGERDUTY_ROUTING_KEY = "integration-routing-key"
# Short windows and a short quiet period, so incidents open and resolve within a test.
TEST_DETECTORS = {
    "timing": {"out_of_order_ms": 1000, "max_evidence_age_s": 600, "resolve_after_quiet_s": 8,
               "session_ttl_s": 600, "max_calls_per_session": 256},
    "rules": {
        "repetition": {"min_repeats": 5, "window_s": 60, "severity": "critical", "action": "stop"},
        "token_velocity": {"window_s": 60, "max_tokens": 5_000_000, "severity": "warning", "action": "notify"},
        "context_growth": {"min_consecutive_steps": 6, "severity": "warning", "action": "stop"},
        "ping_pong": {"min_cycles": 4, "severity": "critical", "action": "stop"},
        "tool_failures": {"min_consecutive": 4, "severity": "critical", "action": "stop"},
        "step_count": {"max_steps": 150, "severity": "warning", "action": "notify"},
        "session_cost": {"max_usd": "50", "severity": "critical", "action": "stop"},
    },
}


def write_test_detectors(path) -> None:
    path.write_text(yaml.safe_dump(TEST_DETECTORS))


def write_test_hooks(path, urls: dict[str, str]) -> None:
    fast = {"max_attempts": 4, "initial_backoff_ms": 50, "max_backoff_ms": 200, "timeout_s": 3}
    path.write_text(yaml.safe_dump({"hooks": [
        {"name": "it-webhook", "kind": "webhook", "url": urls["webhook"], "secret_env": "TOKENPULSE_IT_HOOK_SECRET",
         "min_severity": "warning", "retry": fast},
        {"name": "it-slack", "kind": "slack", "url": urls["slack"], "min_severity": "warning", "retry": fast},
        {"name": "it-pagerduty", "kind": "pagerduty", "url": urls["pagerduty"],
         "routing_key_env": "TOKENPULSE_IT_PAGERDUTY_KEY", "min_severity": "critical", "retry": fast},
    ]}))
