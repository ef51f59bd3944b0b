"""sql/queries/daily_spend_by_team.sql on a real ClickHouse engine (chDB): each call once even
when delivered twice, exact Decimal sums per day, tenant and team, unpriced calls counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tokenpulse.sql import QUERIES_DIR

COLUMNS = ["tenant", "service", "team", "trace_id", "span_id", "operation", "provider", "model", "runtime_kind",
           "runtime_id", "start_time", "end_time", "received_at", "input_tokens", "output_tokens",
           "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens", "status", "priced", "cost_usd",
           "is_late", "ingested_at"]


def span(team: str, span_id: str, end: datetime, cost: str, *, priced=True, tokens=(100, 10), ingested=0) -> list:
    at = end.replace(tzinfo=UTC)
    return ["acme", "app", team, "t1", span_id, "chat", "openai", "gpt-4o", "cloud", "openai-api", at, at, at,
            tokens[0], tokens[1], 0, 0, 0, "ok", priced, Decimal(cost), False, at.replace(second=ingested)]


def test_daily_spend_by_team_counts_each_call_once(store):
    rows = [
        span("research", "s1", datetime(2026, 8, 1, 10), "0.000000000001"),
        span("research", "s1", datetime(2026, 8, 1, 10), "0.000000000001", ingested=30),  # re-delivered
        span("research", "s2", datetime(2026, 8, 1, 23, 59), "1.5"),
        span("support", "s3", datetime(2026, 8, 1, 12), "0", priced=False),
        span("research", "s4", datetime(2026, 8, 2, 0, 0), "2"),
        span("research", "s5", datetime(2026, 8, 3, 0, 0), "9"),  # outside [from, to)
    ]
    store.insert("token_spans", rows, column_names=COLUMNS)
    result = store.query((QUERIES_DIR / "daily_spend_by_team.sql").read_text(),
                         parameters={"from": "2026-08-01", "to": "2026-08-03"})
    got = [(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in result.result_rows]
    assert got == [
        ("2026-08-01", "acme", "research", 2, 0, 200, 20, Decimal("1.500000000001")),
        ("2026-08-01", "acme", "support", 1, 1, 100, 10, Decimal("0")),
        ("2026-08-02", "acme", "research", 1, 0, 100, 10, Decimal("2")),
    ]
