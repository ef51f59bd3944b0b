"""Turn Kafka JSON records into ClickHouse rows.

Numbers are parsed as Decimal (never float) so cost stays exact from Flink to ClickHouse.
A record that does not fit raises BadRecord with a reason; the loader stores that as a
dead letter instead of stopping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

TOKEN_SPAN_COLUMNS = [
    "tenant", "service", "team", "agent_id", "agent_name", "session_id", "tool_name",
    "trace_id", "span_id", "parent_span_id", "operation", "provider", "request_model", "response_model",
    "model", "runtime_kind", "runtime_id", "start_time", "end_time", "received_at",
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens",
    "status", "error_type", "priced", "cost_usd", "edge_cost_usd", "cloud_equivalent_cost_usd", "is_late",
    "service_tier", "call_fingerprint",
    *("input_audio_tokens", "output_audio_tokens", "input_images", "output_images", "input_audio_seconds"),  # 0014
    "semantic_cache_hit", "api_key_id",  # 0014
    "response_id", "sender", "usage_missing", "catalog_model", "revision", "ingested_at",  # 0015
]
SPEND_1M_COLUMNS = [
    "tenant", "team", "service", "provider", "model", "runtime_kind", "runtime_id", "window_start", "part",
    "calls", "error_calls", "unpriced_calls", "input_tokens", "cached_input_tokens",
    "cache_creation_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd",
    "edge_cost_usd", "cloud_equivalent_cost_usd",
    *("input_audio_tokens", "output_audio_tokens", "input_images", "output_images", "input_audio_seconds"),  # 0014
    "semantic_cache_hits", "api_key_id",  # 0014
    "usage_missing_calls",  # 0015
]
TOOL_CALL_COLUMNS = [
    "tenant", "api_key_id", "service", "team", "trace_id", "span_id", "parent_span_id", "session_id", "agent_id",
    "agent_name", "tool_name", "tool_call_id", "tool_type", "call_fingerprint", "start_time", "end_time",
    "duration_ms", "status", "error_type", "sender", "revision", "ingested_at",
]
# What an attribution record may change on a stored row (token_spans or tool_calls).
ATTRIBUTED_COLUMNS = ("session_id", "agent_id", "agent_name")
ALERT_COLUMNS = [
    "tenant", "alert_id", "dedupe_key", "kind", "rule", "severity", "action", "service", "team", "agent_name",
    "session_id", "state", "opened_at", "resolved_at", "summary", "details", "source", "updated_at",
]
DISPATCH_COLUMNS = [
    "tenant", "alert_id", "dedupe_key", "state", "hook", "hook_kind", "outcome", "attempts", "http_status",
    "error", "first_attempt_at", "finished_at",
]
DEAD_LETTER_COLUMNS = [
    "tenant", "stage", "reason", "received_at", "trace_id", "span_id", "excerpt",
    "kafka_topic", "kafka_partition", "kafka_offset",
]
_EXTRA_MONEY_FIELDS = ("edge_cost_usd", "cloud_equivalent_cost_usd")  # absent before migration 0005
# Usage counts, summed by the rollups (absent in records written before a count existed: 0).
USAGE_COUNTS = _TOKEN_FIELDS = (
    "input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens", "input_images", "output_images", "input_audio_seconds")


class BadRecord(ValueError):
    pass


def parse(value: bytes) -> dict:
    try:
        doc = json.loads(value, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRecord("record is not a JSON object")
    return doc


def _ms(value, field: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRecord(f"{field} must be epoch milliseconds, got {value!r:.40}")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _money(value, field: str = "cost_usd") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise BadRecord(f"{field} must be a decimal number, got {value!r:.40}")
    return Decimal(value)


def _require(doc: dict, fields: list[str]) -> None:
    missing = [f for f in fields if doc.get(f) is None]
    if missing:
        raise BadRecord(f"missing field(s): {', '.join(missing)}")


def record_kind(doc: dict) -> str:
    """What a record of the priced topic is: 'span' (an LLM call; also records written before
    trace assembly existed), 'context' (a tool call) or 'attribution' (an amendment)."""
    return doc.get("record") or "span"


def priced_span_row(doc: dict) -> list:
    _require(doc, ["tenant", "trace_id", "span_id", "model", "end_ms", "cost_usd", "priced", "is_late"])
    row = dict(doc)
    row["start_time"] = _ms(doc.get("start_ms"), "start_ms")
    row["end_time"] = _ms(doc["end_ms"], "end_ms")
    row["received_at"] = _ms(doc.get("received_ms"), "received_ms")
    # The row's version: when the collector received the span, not when this loader stored it,
    # so a re-delivered copy never outranks an attribution amendment (version + 1 ms) of it.
    row["ingested_at"] = row["received_at"]
    row["catalog_model"] = doc.get("catalog_model") or doc["model"]
    row["sender"] = doc.get("sender") or ""
    row["usage_missing"] = doc.get("usage_missing") is True
    row["revision"] = int(doc.get("revision") or 0)
    row["cost_usd"] = _money(doc["cost_usd"])
    row["service_tier"] = doc.get("service_tier") or "standard"  # absent in records before it existed
    row["semantic_cache_hit"] = doc.get("semantic_cache_hit") is True
    row["api_key_id"] = doc.get("api_key_id") or ""  # keyless inputs, and records before it existed
    _extra_money(doc, row)
    for f in _TOKEN_FIELDS:
        row[f] = int(doc.get(f) or 0)
    return [row.get(c) for c in TOKEN_SPAN_COLUMNS]


# The fast path (sql/migrations/0016): a priced span whose fields have the types
# priced_span_row accepts is stored as its own JSON bytes; ClickHouse converts it.
JSON_INTAKE_TABLE = "token_spans_json"
JSON_INTAKE_SETTINGS = {"input_format_skip_unknown_fields": 1}
_INTAKE_TEXT = ("tenant", "service", "team", "trace_id", "span_id", "operation", "provider", "model", "runtime_id")
_INTAKE_MS = ("start_ms", "end_ms", "received_ms")
_INTAKE_ENUMS = {"runtime_kind": ("cloud", "edge"), "status": ("ok", "error")}
_INTAKE_COUNTS = (*_TOKEN_FIELDS, "revision")
_INTAKE_MONEY = ("cost_usd", *_EXTRA_MONEY_FIELDS)


def json_intake_ok(doc: dict) -> bool:
    """True when this priced-topic record (parsed by a fast parser, floats and all: only types
    are read here) is an on-time LLM call whose JSON ClickHouse can store as it is, and would
    store exactly as priced_span_row does. Anything else takes the Python path, which converts
    it or dead-letters it with a reason; a late span also needs its rollup part, built there."""
    if doc.get("record", "span") != "span" or doc.get("is_late") is not False or type(doc.get("priced")) is not bool:
        return False
    for f in _INTAKE_TEXT:
        if type(doc.get(f)) is not str:
            return False
    for f in _INTAKE_MS:
        v = doc.get(f)
        if type(v) is not int or not 0 <= v < 2**53:
            return False
    for f, allowed in _INTAKE_ENUMS.items():
        if doc.get(f) not in allowed:
            return False
    for f in _INTAKE_COUNTS:
        v = doc.get(f)
        if v is not None and (type(v) is not int or not 0 <= v < 2**63):
            return False
    for f in _INTAKE_MONEY:
        v = doc.get(f)
        if type(v) not in (int, float) and not (v is None and f != "cost_usd"):
            return False
    return True


def _extra_money(doc: dict, row: dict) -> None:
    for f in _EXTRA_MONEY_FIELDS:
        row[f] = _money(doc.get(f) or 0, f)


def late_span_rollup_row(doc: dict) -> list:
    """A span that missed its window becomes its own one-call part of that minute (summed as
    the stream job's window does: a semantic-cache hit's usage was not billed)."""
    end = _ms(doc["end_ms"], "end_ms")
    hit = doc.get("semantic_cache_hit") is True
    row = {c: doc.get(c) for c in ("tenant", "team", "service", "provider", "runtime_kind", "runtime_id")}
    row["model"] = doc.get("catalog_model") or doc.get("model")  # the window groups by the catalog model
    row["api_key_id"] = doc.get("api_key_id") or ""
    row.update(
        window_start=end.replace(second=0, microsecond=0),
        part=f"{doc['trace_id']}:{doc['span_id']}",
        calls=1,
        error_calls=int(doc.get("status") == "error"),
        unpriced_calls=int(not doc["priced"]),
        cost_usd=_money(doc["cost_usd"]),
        semantic_cache_hits=int(hit),
        usage_missing_calls=int(doc.get("usage_missing") is True),
        **{f: 0 if hit else int(doc.get(f) or 0) for f in _TOKEN_FIELDS},
    )
    _extra_money(doc, row)
    return [row[c] for c in SPEND_1M_COLUMNS]


def rollup_row(doc: dict) -> list:
    _require(doc, ["tenant", "window_start", "calls", "cost_usd"])
    try:
        start = datetime.fromisoformat(str(doc["window_start"])).replace(tzinfo=UTC)  # job runs in UTC
    except ValueError:
        raise BadRecord(f"window_start {doc['window_start']!r:.40} is not a timestamp") from None
    row = dict(doc)
    row.update(window_start=start, part="", cost_usd=_money(doc["cost_usd"]), api_key_id=doc.get("api_key_id") or "")
    _extra_money(doc, row)
    for f in ("calls", "error_calls", "unpriced_calls", "semantic_cache_hits", "usage_missing_calls", *_TOKEN_FIELDS):
        row[f] = int(doc.get(f) or 0)
    return [row.get(c) for c in SPEND_1M_COLUMNS]


def tool_call_row(doc: dict) -> list:
    """An execute_tool span (record 'context') for tool_calls."""
    _require(doc, ["tenant", "trace_id", "span_id", "start_ms", "end_ms"])
    row = dict(doc)
    row["start_time"] = _ms(doc["start_ms"], "start_ms")
    row["end_time"] = _ms(doc["end_ms"], "end_ms")
    row["ingested_at"] = _ms(doc.get("received_ms"), "received_ms")
    row["duration_ms"] = max(0, doc["end_ms"] - doc["start_ms"])
    row["tool_name"] = doc.get("tool_name") or ""
    row["status"] = doc.get("status") or "ok"
    row["api_key_id"] = doc.get("api_key_id") or ""
    row["sender"] = doc.get("sender") or ""
    row["revision"] = int(doc.get("revision") or 0)
    return [row.get(c) for c in TOOL_CALL_COLUMNS]


@dataclass(frozen=True)
class Attribution:
    """A later-learned conversation / agent for a stored row (stream_jobs/.../TraceAssembler.java)."""

    table: str  # token_spans | tool_calls
    tenant: str
    trace_id: str
    span_id: str
    end_ms: int
    revision: int
    session_id: str | None
    agent_id: str | None
    agent_name: str | None


def attribution(doc: dict) -> Attribution:
    _require(doc, ["tenant", "trace_id", "span_id", "end_ms", "revision"])
    table = {"span": "token_spans", "context": "tool_calls"}.get(doc.get("operation"))
    if table is None:
        raise BadRecord(f"attribution record for an unknown row kind {doc.get('operation')!r:.40}")
    return Attribution(table, doc["tenant"], doc["trace_id"], doc["span_id"], int(doc["end_ms"]), int(doc["revision"]),
                       doc.get("session_id"), doc.get("agent_id"), doc.get("agent_name"))


def attribution_statement(table: str, columns: list[str], amendments: list[Attribution]) -> tuple[str, dict]:
    """One INSERT ... SELECT that stores amended copies of the rows `amendments` name: the newest
    revision per row, applied only over an older stored revision, one millisecond above the
    stored row's version (ReplacingMergeTree keeps it whatever arrives later of the original)."""
    newest: dict[tuple, Attribution] = {}
    for a in amendments:
        key = (a.tenant, a.trace_id, a.span_id)
        if key not in newest or a.revision > newest[key].revision:
            newest[key] = a
    params: dict = {}
    values = []
    for i, a in enumerate(newest.values()):
        names = [f"t{i}", f"r{i}", f"s{i}", f"v{i}", f"c{i}", f"ai{i}", f"an{i}"]
        params.update(zip(names, (a.tenant, a.trace_id, a.span_id, a.revision, a.session_id, a.agent_id, a.agent_name)))
        values.append(f"({{t{i}:String}}, {{r{i}:String}}, {{s{i}:String}}, {{v{i}:UInt32}}, "
                      f"{{c{i}:Nullable(String)}}, {{ai{i}:Nullable(String)}}, {{an{i}:Nullable(String)}})")
    params["from_ms"] = min(a.end_ms for a in newest.values())
    params["to_ms"] = max(a.end_ms for a in newest.values())
    select = []
    for c in columns:
        if c in ATTRIBUTED_COLUMNS or c == "revision":
            select.append(f"a.{c}")
        elif c == "ingested_at":
            select.append("t.ingested_at + toIntervalMillisecond(1)")
        else:
            select.append(f"t.{c}")
    sql = f"""
INSERT INTO {table} ({", ".join(columns)})
SELECT {", ".join(select)}
FROM {table} AS t FINAL
INNER JOIN (
  SELECT tenant, trace_id, span_id, revision, session_id, agent_id, agent_name FROM (
    SELECT tupleElement(x, 1) AS tenant, tupleElement(x, 2) AS trace_id, tupleElement(x, 3) AS span_id,
      tupleElement(x, 4) AS revision, tupleElement(x, 5) AS session_id, tupleElement(x, 6) AS agent_id,
      tupleElement(x, 7) AS agent_name
    FROM (SELECT arrayJoin([{", ".join(values)}]) AS x))
) AS a ON t.tenant = a.tenant AND t.trace_id = a.trace_id AND t.span_id = a.span_id
WHERE t.end_time >= fromUnixTimestamp64Milli(toInt64({{from_ms:Int64}}), 'UTC')
  AND t.end_time <= fromUnixTimestamp64Milli(toInt64({{to_ms:Int64}}), 'UTC')
  AND t.revision < a.revision"""
    return sql, params


def alert_row(doc: dict) -> list:
    """An Alert (schemas/alerts.py) state; the evidence is kept as JSON in `details`."""
    from tokenpulse.schemas.alerts import Alert  # validated: the alerts table is what on-call reads

    try:
        alert = Alert.model_validate(doc)
    except ValueError as exc:
        raise BadRecord(f"not an Alert v1: {exc}") from None
    row = alert.model_dump(mode="json")
    row.update(opened_at=_ms(alert.opened_ms, "opened_ms"), updated_at=_ms(alert.emitted_ms, "emitted_ms"),
               resolved_at=_ms(alert.resolved_ms, "resolved_ms") if alert.resolved_ms is not None else None,
               details=json.dumps(row["evidence"], sort_keys=True))
    return [row.get(c) for c in ALERT_COLUMNS]


def dispatch_row(doc: dict) -> list:
    from tokenpulse.schemas.alerts import DispatchOutcome

    try:
        outcome = DispatchOutcome.model_validate(doc)
    except ValueError as exc:
        raise BadRecord(f"not a DispatchOutcome v1: {exc}") from None
    row = outcome.model_dump(mode="json")
    row.update(first_attempt_at=_ms(outcome.first_attempt_ms, "first_attempt_ms"),
               finished_at=_ms(outcome.finished_ms, "finished_ms"))
    return [row.get(c) for c in DISPATCH_COLUMNS]


def dead_letter_row(doc: dict, topic: str, partition: int, offset: int) -> list:
    row = dict(doc)
    row["received_at"] = _ms(doc.get("received_ms"), "received_ms")
    row.update(kafka_topic=topic, kafka_partition=partition, kafka_offset=offset)
    row.setdefault("excerpt", "")
    return [row.get(c) for c in DEAD_LETTER_COLUMNS]


def loader_dead_letter_row(reason: str, value: bytes, topic: str, partition: int, offset: int, now_ms: int) -> list:
    """A record the loader itself could not use (bad JSON, missing fields)."""
    excerpt = value[:500].decode("utf-8", errors="replace")
    return ["unknown", "loader", reason[:2000], _ms(now_ms, "now"), None, None, excerpt, topic, partition, offset]
