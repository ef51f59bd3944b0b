"""Decode an OTLP/HTTP trace export body into plain span views.

Both encodings of ExportTraceServiceRequest are accepted:
  * binary protobuf (`application/x-protobuf`), parsed with the official opentelemetry-proto;
  * OTLP/JSON (`application/json`), where trace and span ids are hex strings (not base64
    as protobuf's generic JSON mapping would have it) and 64-bit ints may be strings.

A body that cannot be read as a request at all raises MalformedRequest (-> HTTP 400).
Problems inside one span are left for the mapper, which rejects just that span.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

STATUS_CODE_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
# AnyValue nesting (arrays/kvlists) allowed in OTLP/JSON: the protobuf parser stops at 100
# levels too, and every later step (excerpt, fingerprint, str()) recurses over the value.
MAX_VALUE_DEPTH = 100
# A JSON \u escape of a UTF-16 surrogate: only these can smuggle a lone surrogate into a str.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

Scalar = str | int | float | bool | None


class MalformedRequest(ValueError):
    """The body is not an OTLP trace export request."""


@dataclass
class OtlpSpan:
    trace_id: str  # lowercase hex as received; validated by the event model
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    # The instrumentation scope that made the span (e.g. "opentelemetry.instrumentation.openai.v1",
    # "com.anthropic.sdk.python"): which sender conventions apply (schemas/senders.yaml).
    scope_name: str = ""
    scope_version: str = ""
    # Attributes the sender's SDK dropped at its limit (OTLP dropped_attributes_count). The
    # Python SDK keeps 128 and evicts the oldest: a long indexed prompt can push out
    # gen_ai.provider.name itself; rejections say so.
    dropped_attributes: int = 0


def decode(body: bytes, content_type: str) -> list[OtlpSpan]:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/x-protobuf":
        return _decode_protobuf(body)
    if media == "application/json":
        return _decode_json(body)
    raise MalformedRequest(
        f"unsupported Content-Type {content_type!r}: send application/x-protobuf or application/json"
    )


# --- protobuf ---------------------------------------------------------------------------


def _decode_protobuf(body: bytes) -> list[OtlpSpan]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise MalformedRequest(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    spans: list[OtlpSpan] = []
    for rs in request.resource_spans:
        resource = {kv.key: _pb_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    OtlpSpan(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None,
                        name=s.name,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        status_code=s.status.code,
                        attributes={kv.key: _pb_value(kv.value) for kv in s.attributes},
                        resource=resource,
                        scope_name=ss.scope.name,
                        scope_version=ss.scope.version,
                        dropped_attributes=s.dropped_attributes_count,
                    )
                )
    return spans


def _pb_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


# --- JSON ---------------------------------------------------------------------------------


def _decode_json(body: bytes) -> list[OtlpSpan]:
    try:
        # Strict UTF-8 first: json.loads(bytes) decodes with "surrogatepass", which lets
        # encoded surrogates (b"\xed\xa0\x80") through as str that Kafka's UTF-8 cannot carry.
        doc = json.loads(body.decode("utf-8"))
    # ValueError also covers invalid UTF-8 and integers over Python's 4300-digit limit;
    # RecursionError arrays/objects nested thousands deep: hostile bodies, not server errors.
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise MalformedRequest("OTLP/JSON body must be an object with 'resourceSpans'")
    if _SURROGATE_ESCAPE.search(body):
        _require_unicode(doc)
    spans: list[OtlpSpan] = []
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        resource = _attributes(_obj(rs, "resource").get("attributes", []))
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            scope = _obj(ss, "scope")
            scope_name, scope_version = _str(scope, "name"), _str(scope, "version")
            for s in _list(ss, "spans"):
                if not isinstance(s, dict):
                    raise MalformedRequest(f"each span must be an object, got {type(s).__name__}")
                spans.append(
                    OtlpSpan(
                        trace_id=_str(s, "traceId", "trace_id").lower(),
                        span_id=_str(s, "spanId", "span_id").lower(),
                        parent_span_id=_str(s, "parentSpanId", "parent_span_id").lower() or None,
                        name=_str(s, "name"),
                        start_ns=_int(s, "startTimeUnixNano", "start_time_unix_nano"),
                        end_ns=_int(s, "endTimeUnixNano", "end_time_unix_nano"),
                        status_code=_int(_obj(s, "status"), "code"),
                        attributes=_attributes(s.get("attributes", [])),
                        resource=resource,
                        scope_name=scope_name,
                        scope_version=scope_version,
                        dropped_attributes=_count_hint(s, "droppedAttributesCount", "dropped_attributes_count"),
                    )
                )
    return spans


def _require_unicode(doc: Any) -> None:
    """A lone surrogate (e.g. "\\ud800") parses as JSON but is not Unicode text: it cannot be
    encoded as UTF-8 for Kafka, so refuse the body like the protobuf parser refuses invalid
    UTF-8 (instead of failing later, mid-write)."""
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedRequest(f"body holds a string that is not valid Unicode (lone surrogate): {exc.reason}") from None
    except RecursionError:
        raise MalformedRequest("body is nested too deeply") from None


def _pick(d: dict, *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


def _list(d: Any, *names: str) -> list:
    if not isinstance(d, dict):
        raise MalformedRequest(f"expected an object holding {names[0]!r}, got {type(d).__name__}")
    v = _pick(d, *names)
    if v is None:
        return []
    if not isinstance(v, list):
        raise MalformedRequest(f"{names[0]!r} must be a list, got {type(v).__name__}")
    return v


def _obj(d: dict, name: str) -> dict:
    if not isinstance(d, dict):
        raise MalformedRequest(f"expected an object holding {name!r}, got {type(d).__name__}")
    v = d.get(name) or {}
    if not isinstance(v, dict):
        raise MalformedRequest(f"{name!r} must be an object, got {type(v).__name__}")
    return v


def _str(d: dict, *names: str) -> str:
    v = _pick(d, *names)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise MalformedRequest(f"{names[0]!r} must be a string, got {type(v).__name__}")
    return v


def _count_hint(d: dict, *names: str) -> int:
    """A count that only explains a rejection: a bad value is read as 0, never fails the request."""
    try:
        return max(0, _int(d, *names))
    except MalformedRequest:
        return 0


def _int(d: dict, *names: str) -> int:
    v = _pick(d, *names)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise MalformedRequest(f"{names[0]!r} must be an integer, got {v!r:.40}")
    try:
        return int(v)
    except ValueError:
        raise MalformedRequest(f"{names[0]!r} must be an integer, got {v!r:.40}") from None


def _attributes(items: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(items, list):
        raise MalformedRequest("'attributes' must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in items:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise MalformedRequest("each attribute must be an object with a string 'key'")
        out[kv["key"]] = _json_value(kv.get("value"), depth)
    return out


def _json_value(v: Any, depth: int = 0) -> Any:
    if not isinstance(v, dict) or not v:
        return None
    if depth >= MAX_VALUE_DEPTH:
        raise MalformedRequest(f"attribute value nested deeper than {MAX_VALUE_DEPTH} levels")
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        raw = v["intValue"]  # a JSON string for 64-bit safety, or a number
        try:
            return int(raw) if not isinstance(raw, bool) else raw
        except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
            return raw  # left for the mapper to reject with a reason
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        values = _values(v["arrayValue"])
        return [_json_value(x, depth + 1) for x in values] if isinstance(values, list) else None
    if "kvlistValue" in v:
        values = _values(v["kvlistValue"])
        return _attributes(values, depth + 1) if isinstance(values, list) else None
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _values(container: Any) -> Any:
    """The "values" of an arrayValue/kvlistValue; None when the container is not an object."""
    return container.get("values", []) if isinstance(container, dict) else None
