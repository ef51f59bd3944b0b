import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tokenpulse.loader import rows
from tokenpulse.loader.kafka_to_clickhouse import Batch
from tokenpulse.loader.migrations import discover, split_statements
from tokenpulse.schemas import topics

PRICED = {"tenant": "acme", "service": "app", "team": "t", "trace_id": "a" * 32, "span_id": "b" * 16,
          "provider": "openai", "model": "gpt-4o", "runtime_kind": "cloud", "runtime_id": "openai",
          "start_ms": 1763900000000, "end_ms": 1763900061234, "received_ms": 1763900062000,
          "input_tokens": 100, "output_tokens": 10, "status": "ok", "priced": True, "is_late": False}


def encoded(doc: dict, cost: str) -> bytes:
    # Flink writes decimals as plain JSON numbers; keep the digits exactly as a number literal.
    return json.dumps(doc)[:-1].encode() + f', "cost_usd": {cost}}}'.encode()


def test_cost_is_parsed_as_an_exact_decimal():
    doc = rows.parse(encoded(PRICED, "0.000012345678"))
    row = dict(zip(rows.TOKEN_SPAN_COLUMNS, rows.priced_span_row(doc)))
    assert row["cost_usd"] == Decimal("0.000012345678") and isinstance(row["cost_usd"], Decimal)
    assert row["end_time"] == datetime(2025, 11, 23, 12, 14, 21, 234000, tzinfo=UTC)


def test_late_span_becomes_its_own_rollup_part_of_its_minute():
    doc = rows.parse(encoded({**PRICED, "is_late": True}, "0.5"))
    row = dict(zip(rows.SPEND_1M_COLUMNS, rows.late_span_rollup_row(doc)))
    assert row["window_start"] == datetime(2025, 11, 23, 12, 14, tzinfo=UTC)
    assert row["part"] == f"{'a' * 32}:{'b' * 16}" and row["calls"] == 1 and row["cost_usd"] == Decimal("0.5")


def test_media_counts_and_a_late_semantic_cache_hit_roll_up_like_the_stream_window():
    media = {"input_audio_tokens": 60, "output_audio_tokens": 5, "output_images": 2, "input_audio_seconds": 9}
    doc = rows.parse(encoded({**PRICED, **media, "is_late": True}, "0.5"))
    span = dict(zip(rows.TOKEN_SPAN_COLUMNS, rows.priced_span_row(doc)))
    assert {k: span[k] for k in media} == media and span["input_images"] == 0 and span["semantic_cache_hit"] is False
    late = dict(zip(rows.SPEND_1M_COLUMNS, rows.late_span_rollup_row(doc)))
    assert {k: late[k] for k in media} == media and late["semantic_cache_hits"] == 0
    # a hit: counted as a call, cost 0, its (counterfactual) usage left out of the billed sums
    hit = rows.parse(encoded({**PRICED, **media, "is_late": True, "semantic_cache_hit": True}, "0"))
    assert dict(zip(rows.TOKEN_SPAN_COLUMNS, rows.priced_span_row(hit)))["semantic_cache_hit"] is True
    late = dict(zip(rows.SPEND_1M_COLUMNS, rows.late_span_rollup_row(hit)))
    assert (late["calls"], late["semantic_cache_hits"], late["input_tokens"], late["output_images"]) == (1, 1, 0, 0)


def test_rollup_window_start_is_read_as_utc():
    doc = rows.parse(b'{"tenant":"acme","window_start":"2026-11-23 15:24:00","calls":3,"cost_usd":1.000000000001}')
    row = dict(zip(rows.SPEND_1M_COLUMNS, rows.rollup_row(doc)))
    assert row["window_start"] == datetime(2026, 11, 23, 15, 24, tzinfo=UTC)
    assert row["part"] == "" and row["cost_usd"] == Decimal("1.000000000001")


def test_unusable_records_become_dead_letters_not_crashes():
    batch = Batch()
    batch.add(topics.PRICED_SPANS.name, 0, 7, b"not json")
    batch.add(topics.ROLLUPS_1M.name, 1, 8, b'{"tenant": "acme"}')
    batch.add(topics.PRICED_SPANS.name, 0, 9, encoded(PRICED, "1"))
    assert len(batch.token_spans) == 1 and len(batch.dead_letters) == 2
    reasons = [dict(zip(rows.DEAD_LETTER_COLUMNS, r))["reason"] for r in batch.dead_letters]
    assert "not JSON" in reasons[0] and "missing field(s): window_start" in reasons[1]


def test_float_costs_are_refused():
    with pytest.raises(rows.BadRecord):
        rows.priced_span_row({**PRICED, "cost_usd": "0.1"})


def test_migrations_are_numbered_pairs_and_split_cleanly():
    found = discover()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert split_statements("-- c\nSELECT 1;\n\n-- only a comment;\nSELECT 2") == ["-- c\nSELECT 1", "SELECT 2"]
