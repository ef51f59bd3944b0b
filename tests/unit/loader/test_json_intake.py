"""The loader's fast path stores a priced span exactly as the Python path does.

The oracle is loader/rows.py `priced_span_row` (Decimal parsing, defaults for fields older
records lack); the fast path hands the same record's JSON bytes to ClickHouse
(token_spans_json -> token_spans_json_mv -> token_spans, sql/migrations/0016). Both write into
one real chDB engine and every column of the two rows is compared.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenpulse.loader import rows
from tokenpulse.loader.kafka_to_clickhouse import Batch, KafkaToClickHouse, LoaderStats
from tokenpulse.schemas import topics
from tokenpulse.settings import LoaderSettings

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
maybe_text = st.none() | text
counts = st.none() | st.integers(0, 2**40)
money = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("10000000"), places=12,
                    allow_nan=False, allow_infinity=False)
ms = st.integers(1_600_000_000_000, 1_900_000_000_000)
# Fields a record may lack (written before they existed, or optional): absent vs present.
OPTIONAL = {
    "agent_id": maybe_text, "agent_name": maybe_text, "session_id": maybe_text, "tool_name": maybe_text,
    "call_fingerprint": maybe_text, "parent_span_id": maybe_text, "request_model": maybe_text,
    "response_model": maybe_text, "error_type": maybe_text, "service_tier": st.sampled_from([None, "", "flex", "priority"]),
    "semantic_cache_hit": st.none() | st.booleans(), "api_key_id": maybe_text, "response_id": maybe_text,
    "sender": st.sampled_from([None, "", "openllmetry/0.62"]), "usage_missing": st.none() | st.booleans(),
    "revision": st.none() | st.integers(0, 5), "catalog_model": st.sampled_from([None, "", "gpt-4o"]),
    "collector_id": maybe_text, "tool_call_id": maybe_text,  # not stored: skipped by the intake
    **{f: counts for f in rows.USAGE_COUNTS},
}


@st.composite
def priced_records(draw) -> tuple[dict, dict]:
    """(fields, money): a priced-topic record as Flink writes it, decimals kept aside so they
    can be written as plain JSON numbers with their exact digits."""
    start = draw(ms)
    doc = {
        "tenant": "acme", "service": draw(text), "team": draw(text), "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16], "operation": draw(st.sampled_from(["chat", "text_completion", "embeddings"])),
        "provider": draw(text), "model": draw(st.sampled_from(["gpt-4o-2024-08-06", "claude-sonnet-4-5", "m"])),
        "runtime_kind": draw(st.sampled_from(["cloud", "edge"])), "runtime_id": draw(text),
        "start_ms": start, "end_ms": start + draw(st.integers(0, 600_000)), "received_ms": start + draw(st.integers(0, 10**7)),
        "status": draw(st.sampled_from(["ok", "error"])), "priced": draw(st.booleans()), "is_late": False,
        "record": draw(st.sampled_from([None, "span"])),
    }
    if doc["record"] is None:
        del doc["record"]  # records from before trace assembly carry no `record`
    for name, strategy in OPTIONAL.items():
        if draw(st.booleans()):
            doc[name] = draw(strategy)
    cost = {"cost_usd": draw(money)}
    for name in ("edge_cost_usd", "cloud_equivalent_cost_usd"):
        if draw(st.booleans()):
            cost[name] = draw(money)
    return doc, cost


def encode(doc: dict, cost: dict) -> bytes:
    tail = "".join(f', "{k}": {v}' for k, v in cost.items())  # Flink: decimal-as-plain-number
    return (json.dumps(doc, ensure_ascii=False)[:-1] + tail + "}").encode()


def stored(store, tenant: str) -> dict:
    result = store.query(f"SELECT {', '.join(rows.TOKEN_SPAN_COLUMNS)} FROM token_spans FINAL WHERE tenant = {{t:String}}",
                         parameters={"t": tenant})
    assert len(result.result_rows) == 1, result.result_rows
    return dict(zip(rows.TOKEN_SPAN_COLUMNS, result.result_rows[0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=priced_records())
def test_json_intake_stores_what_the_python_path_stores(store, record):
    doc, cost = record
    run = uuid.uuid4().hex[:8]
    python_value = encode({**doc, "tenant": f"py-{run}"}, cost)
    json_value = encode({**doc, "tenant": f"js-{run}"}, cost)

    batch = Batch()
    batch.add(topics.PRICED_SPANS.name, 0, 1, python_value)
    assert len(batch.token_span_json) == 1, "a well-typed on-time span takes the fast path"
    batch.json_intake_failed()  # the oracle: the same record through the Python conversion
    assert len(batch.token_spans) == 1 and not batch.dead_letters
    store.insert("token_spans", batch.token_spans, column_names=rows.TOKEN_SPAN_COLUMNS)
    store.raw_insert(rows.JSON_INTAKE_TABLE, None, json_value, fmt="JSONEachRow", settings=rows.JSON_INTAKE_SETTINGS)

    by_python, by_clickhouse = stored(store, f"py-{run}"), stored(store, f"js-{run}")
    by_python.pop("tenant"), by_clickhouse.pop("tenant")
    assert by_clickhouse == by_python
    assert by_clickhouse["cost_usd"] == cost["cost_usd"]  # exact digits, no float on the way


def test_the_view_produces_every_column_the_loader_writes(store):
    produced = {name for name, *_ in store.query("DESCRIBE TABLE token_spans_json_mv").result_rows}
    assert set(rows.TOKEN_SPAN_COLUMNS) <= produced, set(rows.TOKEN_SPAN_COLUMNS) - produced


GOOD = {"tenant": "acme", "service": "app", "team": "t", "trace_id": "a" * 32, "span_id": "b" * 16,
        "operation": "chat", "provider": "openai", "model": "gpt-4o", "runtime_kind": "cloud", "runtime_id": "openai",
        "start_ms": 1763900000000, "end_ms": 1763900061234, "received_ms": 1763900062000, "input_tokens": 100,
        "output_tokens": 10, "status": "ok", "priced": True, "is_late": False, "record": "span"}


def test_what_the_fast_path_leaves_to_python():
    cases = {
        "late span (needs its rollup part)": {**GOOD, "is_late": True},
        "tool call": {**GOOD, "record": "context"},
        "attribution": {**GOOD, "record": "attribution"},
        "negative count": {**GOOD, "input_tokens": -1},
        "count as text": {**GOOD, "output_tokens": "10"},
        "missing end": {k: v for k, v in GOOD.items() if k != "end_ms"},
        "unknown status": {**GOOD, "status": "cancelled"},
        "model missing": {**GOOD, "model": None},
    }
    for name, doc in cases.items():
        assert not rows.json_intake_ok({**doc, "cost_usd": 0.5}), name
    assert not rows.json_intake_ok({**GOOD, "cost_usd": "0.5"}), "money as text"
    assert rows.json_intake_ok({**GOOD, "cost_usd": 0.5})

    batch = Batch()
    batch.add(topics.PRICED_SPANS.name, 0, 1, encode({**GOOD, "is_late": True}, {"cost_usd": "0.5"}))
    batch.add(topics.PRICED_SPANS.name, 0, 2, encode({**GOOD, "output_tokens": "ten"}, {"cost_usd": "0.5"}))
    batch.add(topics.PRICED_SPANS.name, 0, 3, b"{not json")
    batch.add(topics.PRICED_SPANS.name, 0, 4, b"[1, 2]")
    assert not batch.token_span_json
    assert len(batch.token_spans) == 1 and len(batch.spend_1m) == 1  # the late span, with its rollup part
    reasons = [dict(zip(rows.DEAD_LETTER_COLUMNS, r))["reason"] for r in batch.dead_letters]
    assert len(reasons) == 3 and "ten" in reasons[0] and "not JSON" in reasons[1] and "not a JSON object" in reasons[2]


class RefusingStore:
    """A store whose JSON insert fails (e.g. a record ClickHouse will not parse)."""

    def __init__(self) -> None:
        self.inserted: list[tuple[str, int]] = []

    def raw_insert(self, *args, **kwargs) -> None:
        raise RuntimeError("Cannot parse input: expected ',' before: 'x'")

    def insert(self, table: str, data: list, columns: list[str]) -> None:
        self.inserted.append((table, len(data)))

    def command(self, *args, **kwargs) -> None:
        pass


class Consumer:
    def commit(self) -> None:
        pass


def test_a_refused_json_insert_is_stored_by_the_python_path_not_lost():
    loader = KafkaToClickHouse.__new__(KafkaToClickHouse)  # no Kafka: only the flush
    loader.cfg, loader.store, loader.consumer, loader.stats = LoaderSettings(), RefusingStore(), Consumer(), LoaderStats()
    batch = Batch()
    for i in range(3):
        batch.add(topics.PRICED_SPANS.name, 0, i, encode({**GOOD, "span_id": f"{i:016x}"}, {"cost_usd": "0.25"}))
    assert len(batch.token_span_json) == 3
    loader._flush(batch)
    assert loader.store.inserted == [("token_spans", 3)]
    assert loader.stats.token_spans == 3 and loader.stats.json_intake_fallbacks == 1 and loader.stats.token_spans_json == 0
