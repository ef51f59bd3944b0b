"""Hostile OTLP trace payloads for the collector fuzz test and bench (issue #8 "bad input at volume").

Every payload is built from one `random.Random` and a class name, so a run is reproducible
from its seed: `build(cls, rng)`. The unit test draws them through Hypothesis
(`hostile_payloads()`: the class and the Random come from Hypothesis, so its seed/database
reproduce a failure); the bench (bench/fuzz_collector.py) draws them from `random.Random(seed)`.

Each Payload says what the collector must do with it:
  * `statuses`: the HTTP answers allowed (e.g. {400} for a body that is not a request at all);
  * `spans`: one Expect per span in the body, when the body is well formed: the span's id and
    whether it must be accepted, rejected (dead-lettered with a reason), ignored (not an LLM
    span) or may go either way ("any", e.g. random junk in an attribute);
  * `spans is None`: the span count is unknown (bit-flipped/truncated protobuf). Callers count
    the spans with the official protobuf parser (`official_span_count`) when the collector says 200.
A 4xx reply must write nothing: a request refused as a whole writes no dead letter (the
sender gets the reason in the reply instead; see docs/collector_inputs.md).

Classes (CLASSES): see the one-line docstrings of the `_gen_*` functions.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

PROTOBUF, JSON = "application/x-protobuf", "application/json"
# Keys of the fuzz tenants (tests and bench build their TenantDirectory from these).
TENANT_KEYS = {"fuzz-a": "fuzz-key-a", "fuzz-b": "fuzz-key-b"}
KEY_A, KEY_B = TENANT_KEYS["fuzz-a"], TENANT_KEYS["fuzz-b"]
MAX_BODY_BYTES = 8 * 1024 * 1024  # the collector's default limit; tests and bench use it
NOW_NS = 1_764_000_000_000_000_000  # a fixed "now" (2025-11), so payloads do not depend on the clock
PROVIDERS = ["openai", "anthropic", "ollama", "vLLM", "gcp.gemini", "az.ai.openai"]
MODELS = ["gpt-4o", "claude-sonnet-4", "llama3.1:8b", "gemini-2.5-pro"]


@dataclass
class Expect:
    span_id: str | None  # lowercase hex as the collector will see it; None when not trackable
    outcome: str  # "accept" | "reject" | "ignore" | "any"


@dataclass
class Payload:
    cls: str
    sub: str  # the variant inside the class, for histograms
    body: bytes
    content_type: str = PROTOBUF
    content_encoding: str = ""
    api_key: str | None = KEY_A
    tenant: str = "fuzz-a"  # whose spans these become when accepted
    statuses: frozenset[int] = frozenset({200})
    spans: list[Expect] | None = field(default_factory=list)

    def span_count(self) -> int | None:
        return None if self.spans is None else len(self.spans)


# --- span specs: one description, two encodings ------------------------------------------


@dataclass
class SpanSpec:
    attributes: dict[str, Any]
    outcome: str
    trace_id: bytes = b""
    span_id: bytes = b""
    parent_span_id: bytes = b""
    name: str = "chat"
    start_ns: int = NOW_NS
    end_ns: int = NOW_NS + 1_500_000_000
    status_code: int = 0
    # JSON only: raw field values that protobuf cannot express (strings for ints, NaN, ...),
    # and replacements of attribute values by raw JSON (wrong types).
    json_fields: dict[str, Any] = field(default_factory=dict)
    json_attr_values: dict[str, Any] = field(default_factory=dict)

    def expect(self) -> Expect:
        ok_id = len(self.span_id) == 8 and "spanId" not in self.json_fields
        return Expect(self.span_id.hex() if ok_id else None, self.outcome)


def _ids(rng: random.Random, spec: SpanSpec) -> SpanSpec:
    spec.trace_id = spec.trace_id or rng.getrandbits(128).to_bytes(16, "big")
    spec.span_id = spec.span_id or rng.getrandbits(64).to_bytes(8, "big")
    if spec.trace_id == bytes(16):
        spec.trace_id = b"\x01" * 16
    return spec


def good_attributes(rng: random.Random) -> dict[str, Any]:
    inp = rng.randint(0, 200_000)
    cached = rng.randint(0, inp)
    out = rng.randint(0, 20_000)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": rng.choice(PROVIDERS),
        "gen_ai.request.model": rng.choice(MODELS),
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
    }
    if rng.random() < 0.3:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cached
    if rng.random() < 0.3:
        attrs["gen_ai.usage.reasoning.output_tokens"] = rng.randint(0, out)
    if rng.random() < 0.3:
        attrs["gen_ai.conversation.id"] = f"sess-{rng.randint(0, 999)}"
    if rng.random() < 0.2:
        attrs["gen_ai.prompt"] = f"retry step {rng.randint(0, 9)} of the task"
    return attrs


def good_span(rng: random.Random) -> SpanSpec:
    return _ids(rng, SpanSpec(good_attributes(rng), "accept"))


def non_llm_span(rng: random.Random) -> SpanSpec:
    return _ids(rng, SpanSpec({"db.system": "postgresql", "db.statement": "select 1"}, "ignore", name="db"))


# --- encoders ----------------------------------------------------------------------------


def _pb_any(v: Any, out: AnyValue) -> None:
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v  # callers keep ints within int64
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, bytes):
        out.bytes_value = v
    elif isinstance(v, list):
        out.array_value.SetInParent()
        for x in v:
            _pb_any(x, out.array_value.values.add())
    elif isinstance(v, dict):
        out.kvlist_value.SetInParent()
        for k, x in v.items():
            kv = out.kvlist_value.values.add(key=k)
            _pb_any(x, kv.value)
    # None: an empty AnyValue


def _pb_span(spec: SpanSpec) -> Span:
    s = Span(trace_id=spec.trace_id, span_id=spec.span_id, parent_span_id=spec.parent_span_id, name=spec.name,
             start_time_unix_nano=spec.start_ns, end_time_unix_nano=spec.end_ns,
             status=Status(code=spec.status_code))
    for k, v in spec.attributes.items():
        _pb_any(v, s.attributes.add(key=k).value)
    return s


def encode_protobuf(groups: list[tuple[dict[str, Any], list[SpanSpec]]]) -> bytes:
    """groups: (resource attributes, spans) per ResourceSpans."""
    req = ExportTraceServiceRequest()
    for resource, specs in groups:
        rs = req.resource_spans.add()
        for k, v in resource.items():
            _pb_any(v, rs.resource.attributes.add(key=k).value)
        ss = rs.scope_spans.add()
        ss.scope.name = "fuzz"
        for spec in specs:
            ss.spans.append(_pb_span(spec))
    return req.SerializeToString()


def _json_any(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": v.hex()}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_json_any(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _json_any(x)} for k, x in v.items()]}}
    return {}


def _json_span(spec: SpanSpec) -> dict:
    attrs = [{"key": k, "value": spec.json_attr_values[k] if k in spec.json_attr_values else _json_any(v)}
             for k, v in spec.attributes.items()]
    doc = {"traceId": spec.trace_id.hex(), "spanId": spec.span_id.hex(), "name": spec.name,
           "startTimeUnixNano": str(spec.start_ns), "endTimeUnixNano": str(spec.end_ns),
           "status": {"code": spec.status_code}, "attributes": attrs}
    if spec.parent_span_id:
        doc["parentSpanId"] = spec.parent_span_id.hex()
    doc.update(spec.json_fields)
    return doc


def json_doc(groups: list[tuple[dict[str, Any], list[SpanSpec]]]) -> dict:
    return {"resourceSpans": [
        {"resource": {"attributes": [{"key": k, "value": _json_any(v)} for k, v in resource.items()]},
         "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": [_json_span(s) for s in specs]}]}
        for resource, specs in groups]}


def encode_json(groups: list[tuple[dict[str, Any], list[SpanSpec]]]) -> bytes:
    return json.dumps(json_doc(groups)).encode()  # allow_nan: NaN/Infinity literals stay in


def _resource(rng: random.Random) -> dict[str, Any]:
    return {"service.name": f"fuzz-app-{rng.randint(0, 3)}"}


def _payload(cls: str, sub: str, rng: random.Random, specs: list[SpanSpec], *, fmt: str | None = None,
             statuses=frozenset({200}), **kw) -> Payload:
    """Encode specs (one or two ResourceSpans) as protobuf or JSON, gzip sometimes."""
    fmt = fmt or rng.choice(["pb", "json"])
    cut = rng.randint(0, len(specs)) if len(specs) > 1 and rng.random() < 0.3 else len(specs)
    groups = [(_resource(rng), specs[:cut]), (_resource(rng), specs[cut:])] if cut < len(specs) else [(_resource(rng), specs)]
    body = encode_protobuf(groups) if fmt == "pb" else encode_json(groups)
    encoding = ""
    if rng.random() < 0.25 and len(body) < (1 << 20):
        body, encoding = gzip.compress(body, compresslevel=1, mtime=0), "gzip"
    return Payload(cls, f"{sub}/{fmt}", body, PROTOBUF if fmt == "pb" else JSON, encoding,
                   statuses=frozenset(statuses), spans=[s.expect() for s in specs], **kw)


# --- the classes -------------------------------------------------------------------------


def _gen_valid(rng: random.Random) -> Payload:
    """Well-formed LLM spans (the control group: all accepted)."""
    return _payload("valid", "llm", rng, [good_span(rng) for _ in range(rng.randint(1, 8))])


def _gen_mixed(rng: random.Random) -> Payload:
    """Good, bad and non-LLM spans in one request: each gets its own outcome."""
    makers = [good_span, non_llm_span, lambda r: _bad_count_span(r)[1], lambda r: _bad_id_span(r)[1],
              lambda r: _missing_span(r)[1]]
    specs = [rng.choice(makers)(rng) for _ in range(rng.randint(2, 12))]
    return _payload("mixed", "good+bad+non_llm", rng, specs)


_BAD_NUMBERS_PB = [("negative", -1), ("negative_big", -(2**63)), ("float_fraction", 1.5), ("nan", math.nan),
                   ("inf", math.inf), ("neg_inf", -math.inf), ("huge_float", 1e30), ("over_int64_float", 2.0**64),
                   ("over_max_tokens", 100_000_001), ("int64_max", 2**63 - 1), ("bool", True), ("string", "1000"),
                   ("empty_string", ""), ("list", [1]), ("map", {"n": 1}), ("bytes", b"\x01")]
# (variant, raw JSON AnyValue, outcome): a null intValue is "no value" (a missing optional
# count is 0), a number in stringValue is read as that number: either may be accepted.
_BAD_NUMBERS_JSON = [("int_over_int64", {"intValue": str(2**64 + 5)}, "reject"),
                     ("int_string_junk", {"intValue": "12abc"}, "reject"),
                     ("int_float_string", {"intValue": "1e3"}, "reject"), ("int_null", {"intValue": None}, "any"),
                     ("int_list", {"intValue": [1]}, "reject"), ("int_nan", {"intValue": math.nan}, "reject"),
                     ("int_infinity", {"intValue": math.inf}, "reject"), ("int_bool", {"intValue": True}, "reject"),
                     ("double_nan", {"doubleValue": math.nan}, "reject"),
                     ("double_string", {"doubleValue": "12"}, "reject"),
                     ("string_number", {"stringValue": 12}, "any"),
                     ("int_negative_string", {"intValue": "-5"}, "reject"),
                     ("int_huge_digits", {"intValue": "9" * 5000}, "reject")]
_COUNT_KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
               "gen_ai.usage.reasoning.output_tokens", "tokenpulse.usage.input_images"]


def _bad_count_span(rng: random.Random, fmt: str = "pb") -> tuple[str, SpanSpec]:
    attrs = good_attributes(rng)
    key = rng.choice(_COUNT_KEYS)
    if fmt == "json" and rng.random() < 0.5:
        sub, raw, outcome = rng.choice(_BAD_NUMBERS_JSON)
        attrs[key] = 0  # placeholder, replaced by the raw JSON value
        return sub, _ids(rng, SpanSpec(attrs, outcome, json_attr_values={key: raw}))
    sub, value = rng.choice(_BAD_NUMBERS_PB)  # every one of them is invalid for every count key
    attrs[key] = value
    return sub, _ids(rng, SpanSpec(attrs, "reject"))


def _gen_bad_counts(rng: random.Random) -> Payload:
    """Negative, overflowing (> 2^63), fractional, NaN/inf, wrong-typed token counts."""
    fmt = rng.choice(["pb", "json"])
    sub, spec = _bad_count_span(rng, fmt)
    return _payload("bad_counts", sub, rng, [spec, good_span(rng)], fmt=fmt)


def _bad_id_span(rng: random.Random) -> tuple[str, SpanSpec]:
    spec = good_span(rng)
    which = rng.choice(["trace_short", "trace_long", "span_short", "span_long", "span_empty", "trace_zero_len",
                        "parent_short"])
    if which == "trace_short":
        spec.trace_id = rng.randbytes(rng.randint(1, 15))
    elif which == "trace_long":
        spec.trace_id = rng.randbytes(rng.randint(17, 64))
    elif which == "span_short":
        spec.span_id = rng.randbytes(rng.randint(1, 7))
    elif which == "span_long":
        spec.span_id = rng.randbytes(rng.randint(9, 40))
    elif which == "span_empty":
        spec.span_id = b""
    elif which == "trace_zero_len":
        spec.trace_id = b""
    else:
        spec.parent_span_id = rng.randbytes(rng.randint(1, 7))
    spec.outcome = "reject"
    return which, spec


def _gen_bad_ids(rng: random.Random) -> Payload:
    """Trace/span/parent ids of the wrong length; in JSON also non-hex and upper-case ids."""
    if rng.random() < 0.3:
        spec = good_span(rng)
        sub, value, outcome = rng.choice([("json_non_hex", "zz" * 16, "reject"), ("json_upper_hex", None, "accept"),
                                          ("json_id_number", 12345, None), ("json_id_list", [1, 2], None)])
        if outcome is None:  # not even a string: the request is not OTLP/JSON
            spec.json_fields["traceId"] = value
            return _payload("bad_ids", sub, rng, [spec], fmt="json", statuses={400})
        spec.json_fields["traceId"] = value if value is not None else spec.trace_id.hex().upper()
        spec.outcome = outcome
        return _payload("bad_ids", sub, rng, [spec], fmt="json")
    sub, spec = _bad_id_span(rng)
    return _payload("bad_ids", sub, rng, [spec, good_span(rng)])


def _missing_span(rng: random.Random) -> tuple[str, SpanSpec]:
    attrs = good_attributes(rng)
    sub = rng.choice(["no_provider", "no_model", "no_input_tokens", "no_output_tokens", "blank_provider",
                      "error_without_usage", "embeddings_without_output", "bad_runtime_kind", "end_before_start",
                      "cache_exceeds_input"])
    outcome, status = "reject", 0
    start, end = NOW_NS, NOW_NS + 1_000_000
    if sub == "no_provider":
        del attrs["gen_ai.provider.name"]
    elif sub == "no_model":
        del attrs["gen_ai.request.model"]
    elif sub == "no_input_tokens":
        # A successful call without usage is kept as a call flagged usage_missing (issue #17),
        # unless a cache count claims tokens out of an input count of 0.
        del attrs["gen_ai.usage.input_tokens"]
        outcome = "reject" if attrs.get("gen_ai.usage.cache_read.input_tokens") else "accept"
    elif sub == "no_output_tokens":
        del attrs["gen_ai.usage.output_tokens"]
        outcome = "reject" if attrs.get("gen_ai.usage.reasoning.output_tokens") else "accept"
    elif sub == "blank_provider":
        attrs["gen_ai.provider.name"] = "   "
    elif sub == "error_without_usage":
        del attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]
        attrs.pop("gen_ai.usage.cache_read.input_tokens", None)
        attrs.pop("gen_ai.usage.reasoning.output_tokens", None)
        outcome, status = "accept", 2  # a failed call may report no usage
    elif sub == "embeddings_without_output":
        attrs["gen_ai.operation.name"] = "embeddings"
        del attrs["gen_ai.usage.output_tokens"]
        attrs.pop("gen_ai.usage.reasoning.output_tokens", None)
        outcome = "accept"
    elif sub == "bad_runtime_kind":
        attrs["tokenpulse.runtime.kind"] = "moon"
    elif sub == "end_before_start":
        start, end = NOW_NS + 5_000_000_000, NOW_NS
    else:
        attrs["gen_ai.usage.cache_read.input_tokens"] = attrs["gen_ai.usage.input_tokens"] + 1
    return sub, _ids(rng, SpanSpec(attrs, outcome, status_code=status, start_ns=start, end_ns=end))


def _gen_missing_required(rng: random.Random) -> Payload:
    """Required attributes missing or blank, and spans that break TokenSpan's rules."""
    sub, spec = _missing_span(rng)
    return _payload("missing_required", sub, rng, [spec])


def _gen_bad_times(rng: random.Random) -> Payload:
    """Times past int64 (JSON: any size; protobuf: fixed64 max), negative (JSON), zero."""
    spec = good_span(rng)
    sub = rng.choice(["pb_fixed64_max", "json_huge", "json_negative", "zero_start", "json_float", "json_junk"])
    fmt = "pb" if sub.startswith("pb") else "json" if sub.startswith("json") else rng.choice(["pb", "json"])
    statuses = {200}
    if sub == "pb_fixed64_max":
        spec.end_ns, spec.outcome = 2**64 - 1, "reject"
    elif sub == "json_huge":
        spec.json_fields["endTimeUnixNano"] = str(10 ** rng.randint(19, 40))
        spec.outcome = "reject"
    elif sub == "json_negative":
        spec.json_fields["startTimeUnixNano"] = str(-rng.randint(1, 2**70))
        spec.outcome = "reject"
    elif sub == "zero_start":
        spec.start_ns = 0  # unset start: still a valid call (start 1970)
    elif sub == "json_float":
        spec.json_fields["endTimeUnixNano"] = 1.7e18
        statuses = {400}
    else:
        spec.json_fields["startTimeUnixNano"] = rng.choice(["soon", "", "0x10", "1_000"])
        statuses = {400, 200}
        spec.outcome = "any"
    return _payload("bad_times", sub, rng, [spec], fmt=fmt, statuses=statuses)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type."""
    choices = [lambda: None, lambda: True, lambda: rng.randint(-(2**70), 2**70), lambda: rng.random() * 1e300,
               lambda: math.nan, lambda: "", lambda: "x" * rng.randint(1, 50),
               lambda: [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))],
               lambda: {str(rng.randint(0, 9)): _junk(rng, depth + 1) for _ in range(rng.randint(0, 3))},
               lambda: {"stringValue": _junk(rng, depth + 1)}]
    return choices[rng.randint(0, 9 if depth < 3 else 6)]()


def _gen_json_wrong_types(rng: random.Random) -> Payload:
    """OTLP/JSON with the wrong type at a random place: strings for ints, arrays for maps, null."""
    specs = [good_span(rng) for _ in range(rng.randint(1, 4))]
    doc = json_doc([(_resource(rng), specs)])
    where = rng.choice(["attr_value", "attr_value_kind", "span_field", "status", "container", "resource", "attr_list",
                        "attr_entry", "top"])
    statuses: set[int] = {200, 400}
    expects = [s.expect() for s in specs]
    span_doc = rng.choice(doc["resourceSpans"][0]["scopeSpans"][0]["spans"])
    i = doc["resourceSpans"][0]["scopeSpans"][0]["spans"].index(span_doc)
    if where == "attr_value":  # the value object replaced by anything
        rng.choice(span_doc["attributes"])["value"] = _junk(rng)
        expects[i].outcome = "any"
    elif where == "attr_value_kind":  # {"intValue": <junk>}, {"arrayValue": <junk>}, ...
        kind = rng.choice(["intValue", "stringValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue",
                           "bytesValue"])
        rng.choice(span_doc["attributes"])["value"] = {kind: _junk(rng)}
        expects[i].outcome = "any"
    elif where == "span_field":
        span_doc[rng.choice(["traceId", "spanId", "name", "startTimeUnixNano", "endTimeUnixNano",
                             "parentSpanId", "attributes"])] = _junk(rng)
        expects[i] = Expect(None, "any")
    elif where == "status":
        span_doc["status"] = _junk(rng)
        expects[i].outcome = "any"
    elif where == "container":  # resourceSpans / scopeSpans / spans of the wrong type
        target = rng.choice(["resourceSpans", "scopeSpans", "spans"])
        value = _junk(rng)
        if target == "resourceSpans":
            doc["resourceSpans"] = value
        elif target == "scopeSpans":
            doc["resourceSpans"][0]["scopeSpans"] = value
        else:
            doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = value
        # The original spans are gone; junk may decode as empty, non-LLM spans (200) or not at
        # all (400). Unknown count (None): callers check that no LLM span came out of it.
        expects = None
    elif where == "resource":
        doc["resourceSpans"][0]["resource"] = _junk(rng)
        expects = [Expect(e.span_id, "any") for e in expects]
    elif where == "attr_list":
        span_doc["attributes"] = _junk(rng)
        expects[i].outcome = "any"
    elif where == "attr_entry":
        span_doc["attributes"].append(_junk(rng))
        expects[i].outcome = "any"
    else:  # the whole body is not an object, or an object of junk
        doc, expects = _junk(rng), None
    body = json.dumps(doc).encode()
    return Payload("json_wrong_types", where, body, JSON, statuses=frozenset(statuses), spans=expects)


def _gen_huge(rng: random.Random) -> Payload:
    """Huge attribute values and keys (up to MBs), very many attributes, over-long labels."""
    spec = good_span(rng)
    sub = rng.choice(["big_prompt", "big_key", "many_attrs", "long_model", "long_team", "big_array", "over_limit"])
    size = rng.choice([10_000, 100_000, 400_000]) if rng.random() < 0.97 else rng.choice([1_500_000, 3_000_000])
    statuses = {200}
    if sub == "big_prompt":  # content: fingerprinted, then dropped
        spec.attributes["gen_ai.prompt"] = rng.choice("ab1- \n") * size
    elif sub == "big_key":
        spec.attributes["k" * size] = "v"
    elif sub == "many_attrs":
        for j in range(size // 40):
            spec.attributes[f"custom.attr.{j}"] = j
    elif sub == "long_model":
        spec.attributes["gen_ai.request.model"] = "m" * size
        spec.outcome = "reject"
    elif sub == "long_team":
        spec.attributes["tokenpulse.team"] = "t" * size
        spec.outcome = "reject"
    elif sub == "big_array":
        spec.attributes["custom.list"] = list(range(size // 10))
    else:  # past max_body_bytes, sent raw: 413 before any decoding
        spec.attributes["gen_ai.prompt"] = "x" * (MAX_BODY_BYTES + 10)
        statuses = {413}
    return _payload("huge", sub, rng, [spec, good_span(rng)], statuses=statuses)


def _deep_value_pb(depth: int, kind: str) -> bytes:
    """A serialized AnyValue nested `depth` levels deep, built by hand (the protobuf runtime
    refuses to build messages deeper than its own limit)."""
    inner = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(depth):
        if kind == "array":  # AnyValue.array_value(5) -> ArrayValue.values(1)
            inner = _len_field(5, _len_field(1, inner))
        else:  # AnyValue.kvlist_value(6) -> KeyValueList.values(1) -> KeyValue{key(1), value(2)}
            inner = _len_field(6, _len_field(1, _len_field(1, b"k") + _len_field(2, inner)))
    return inner


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _wrap_spans_pb(span_bytes: list[bytes]) -> bytes:
    """ExportTraceServiceRequest{resource_spans(1){scope_spans(2){spans(2)...}}} by hand."""
    scope = b"".join(_len_field(2, s) for s in span_bytes)
    return _len_field(1, _len_field(2, scope))


def _gen_deep(rng: random.Random) -> Payload:
    """AnyValue arrays/kvlists nested 10 to 5,000 levels deep (protobuf and JSON)."""
    depth = rng.choice([rng.randint(1, 25), rng.randint(26, 120), rng.randint(200, 5000)])
    kind = rng.choice(["array", "kvlist"])
    spec, other = good_span(rng), good_span(rng)
    fmt = rng.choice(["pb", "json"])
    # protobuf: the official parser refuses messages nested past 100 levels (request,
    # resource, scope, span, key-value, then 2 per array level or 3 per kvlist level). JSON:
    # the decoder refuses AnyValues nested past MAX_VALUE_DEPTH (100). Near a limit: either.
    levels = 6 + depth * (2 if kind == "array" else 3) if fmt == "pb" else depth
    statuses = {200} if levels <= 90 else {400} if levels >= 110 else {200, 400}
    if fmt == "pb":
        kv = _len_field(1, b"custom.deep") + _len_field(2, _deep_value_pb(depth, kind))
        span_bytes = _pb_span(spec).SerializeToString() + _len_field(9, kv)  # appends one attribute
        body = _wrap_spans_pb([span_bytes, _pb_span(other).SerializeToString()])
        return Payload("deep_nesting", f"{kind}/pb", body, PROTOBUF, statuses=frozenset(statuses),
                       spans=[spec.expect(), other.expect()])
    value: Any = {"stringValue": "leaf"}
    for _ in range(depth):
        value = ({"arrayValue": {"values": [value]}} if kind == "array"
                 else {"kvlistValue": {"values": [{"key": "k", "value": value}]}})
    doc = json_doc([(_resource(rng), [spec, other])])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "custom.deep", "value": value})
    # json.dumps itself recurses: build very deep documents as text.
    try:
        body = json.dumps(doc).encode()
    except RecursionError:
        marker = '"__DEEP__"'
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][-1]["value"] = "__DEEP__"
        opener = '{"arrayValue": {"values": [' if kind == "array" else '{"kvlistValue": {"values": [{"key": "k", "value": '
        closer = "]}}" if kind == "array" else "}]}}"
        body = json.dumps(doc).replace(marker, opener * depth + '{"stringValue": "leaf"}' + closer * depth).encode()
    return Payload("deep_nesting", f"{kind}/json", body, JSON, statuses=frozenset(statuses),
                   spans=[spec.expect(), other.expect()])


_INVALID_UTF8 = [b"\xff\xfe\xfd\xfc", b"\xc3\x28\xa0\xa1", b"\xe2\x28\xa1\x20", b"\xed\xa0\x80\x41",
                 b"\xf0\x28\x8c\x28", b"\xc0\xaf\x41\x41"]


def _gen_invalid_utf8(rng: random.Random) -> Payload:
    """Invalid UTF-8 in protobuf strings (names, keys, values) and JSON bodies, lone surrogates."""
    spec = good_span(rng)
    bad = rng.choice(_INVALID_UTF8)
    where = rng.choice(["model", "key", "name", "service", "json_raw", "json_surrogate", "json_surrogate_key"])
    if where.startswith("json"):
        marker = "ZQZQ"
        if where == "json_raw":
            spec.attributes["gen_ai.request.model"] = marker
            body = encode_json([(_resource(rng), [spec, good_span(rng)])]).replace(marker.encode(), bad)
        elif where == "json_surrogate":
            spec.attributes["gen_ai.request.model"] = marker
            body = encode_json([(_resource(rng), [spec, good_span(rng)])]).replace(marker.encode(), rb"\ud83d")
        else:
            spec.attributes[marker] = "v"
            body = encode_json([(_resource(rng), [spec, good_span(rng)])]).replace(marker.encode(), rb"\udfff")
        return Payload("invalid_utf8", where, body, JSON, statuses=frozenset({400}), spans=None)
    marker = "ZQZQ"  # same length as the bad bytes: the protobuf framing stays valid
    resource = _resource(rng)
    if where == "model":
        spec.attributes["gen_ai.request.model"] = marker
    elif where == "key":
        spec.attributes[marker] = "v"
    elif where == "name":
        spec.name = marker
    else:
        resource["service.name"] = marker
    body = encode_protobuf([(resource, [spec, good_span(rng)])]).replace(marker.encode(), bad)
    # proto3 string fields must be UTF-8: the official parser refuses the whole message.
    return Payload("invalid_utf8", where, body, PROTOBUF, statuses=frozenset({400}), spans=None)


def _gen_pb_corrupt(rng: random.Random) -> Payload:
    """Truncated, bit-flipped, byte-inserted and random-byte protobuf bodies."""
    body = encode_protobuf([(_resource(rng), [good_span(rng) for _ in range(rng.randint(1, 5))])])
    sub = rng.choice(["truncated", "bitflip", "insert", "random", "empty", "zeros"])
    if sub == "truncated":
        body = body[:rng.randint(0, len(body) - 1)]
    elif sub == "bitflip":
        b = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        body = bytes(b)
    elif sub == "insert":
        at = rng.randrange(len(body))
        body = body[:at] + rng.randbytes(rng.randint(1, 16)) + body[at:]
    elif sub == "random":
        body = rng.randbytes(rng.randint(1, 4096))
    elif sub == "empty":
        body = b""
    else:
        body = bytes(rng.randint(1, 64))
    # Unknown: the damage may leave a parseable request. The caller counts its spans with
    # the official parser and holds the collector to that count.
    return Payload("pb_corrupt", sub, body, PROTOBUF, statuses=frozenset({200, 400}), spans=None)


def _gen_pb_wrong_message(rng: random.Random) -> Payload:
    """A protobuf message of another type: a metrics export, a response, a bare span, a Status."""
    sub = rng.choice(["metrics_request", "trace_response", "bare_span", "rpc_status", "resource_spans", "any_value"])
    spec = good_span(rng)
    if sub == "metrics_request":
        msg = ExportMetricsServiceRequest()
        msg.resource_metrics.add().scope_metrics.add().metrics.add(name="gen_ai.client.token.usage")
    elif sub == "trace_response":
        msg = ExportTraceServiceResponse()
        msg.partial_success.rejected_spans = 3
        msg.partial_success.error_message = "x"
    elif sub == "bare_span":
        msg = _pb_span(spec)
    elif sub == "rpc_status":
        msg = status_pb2.Status(code=3, message="hello")
    elif sub == "resource_spans":
        msg = ResourceSpans()
        msg.scope_spans.add().spans.append(_pb_span(spec))
    else:
        msg = AnyValue(string_value="gen_ai.provider.name")
    return Payload("pb_wrong_message", sub, msg.SerializeToString(), PROTOBUF, statuses=frozenset({200, 400}), spans=None)


def _gen_bad_tenant(rng: random.Random) -> Payload:
    """Missing, unknown, blank and oversized keys; tenant-looking attributes in the payload."""
    sub = rng.choice(["missing", "unknown", "blank", "huge", "other_tenant", "payload_claims_tenant", "key_with_spaces"])
    spec = good_span(rng)
    if sub == "payload_claims_tenant":  # the key decides: fuzz-b's key, spans claiming fuzz-a
        spec.attributes.update({"tenant": "fuzz-a", "tokenpulse.tenant": "fuzz-a"})
        return _payload("bad_tenant", sub, rng, [spec], api_key=KEY_B, tenant="fuzz-b")
    if sub == "other_tenant":
        return _payload("bad_tenant", sub, rng, [spec], api_key=KEY_B, tenant="fuzz-b")
    key = {"missing": None, "unknown": "fuzz-key-z", "blank": "", "huge": "k" * 100_000,
           "key_with_spaces": " fuzz-key-a x"}[sub]
    return _payload("bad_tenant", sub, rng, [spec], api_key=key, statuses={401})


def _gen_encoding(rng: random.Random) -> Payload:
    """gzip bombs (declared vs real size), truncated / multi-member / fake gzip, wrong media types."""
    specs = [good_span(rng) for _ in range(rng.randint(1, 3))]
    body = encode_protobuf([(_resource(rng), specs)])
    expects = [s.expect() for s in specs]
    sub = rng.choice(["bomb", "bomb_fake_isize", "not_gzip", "truncated_gzip", "multi_member", "trailing_junk",
                      "deflate", "wrong_media", "media_params"])
    if sub == "bomb":  # ~8 KiB that inflates past the 8 MiB limit
        return Payload("encoding", sub, gzip.compress(b"\0" * (MAX_BODY_BYTES + rng.randint(1, 1 << 20)), 9, mtime=0),
                       PROTOBUF, "gzip", statuses=frozenset({413}), spans=None)
    if sub == "bomb_fake_isize":  # the gzip trailer claims 100 bytes; the data says otherwise
        z = bytearray(gzip.compress(b"\0" * (MAX_BODY_BYTES + 1024), 9, mtime=0))
        z[-4:] = struct.pack("<I", 100)
        return Payload("encoding", sub, bytes(z), PROTOBUF, "gzip", statuses=frozenset({413}), spans=None)
    if sub == "not_gzip":
        return Payload("encoding", sub, body, PROTOBUF, "gzip", statuses=frozenset({400}), spans=None)
    if sub == "truncated_gzip":
        z = gzip.compress(body, mtime=0)
        return Payload("encoding", sub, z[:rng.randint(10, len(z) - 1)], PROTOBUF, "gzip", statuses=frozenset({400}),
                       spans=None)
    if sub == "multi_member":  # two gzip members: the first holds the request, the second nothing
        cut = rng.randint(0, len(body))
        z = gzip.compress(body[:cut], mtime=0) + gzip.compress(body[cut:], mtime=0)
        return Payload("encoding", sub, z, PROTOBUF, "gzip", statuses=frozenset({200}), spans=expects)
    if sub == "trailing_junk":
        return Payload("encoding", sub, gzip.compress(body, mtime=0) + rng.randbytes(rng.randint(1, 30)), PROTOBUF, "gzip",
                       statuses=frozenset({400}), spans=None)
    if sub == "deflate":
        return Payload("encoding", sub, body, PROTOBUF, rng.choice(["deflate", "br", "zstd", "gzip, gzip"]),
                       statuses=frozenset({400}), spans=None)
    if sub == "wrong_media":
        return Payload("encoding", sub, body, rng.choice(["text/plain", "", "application/protobuf", "multipart/x"]),
                       statuses=frozenset({415}), spans=None)
    return Payload("encoding", sub, body, "Application/X-Protobuf; charset=binary", statuses=frozenset({200}),
                   spans=expects)


def _gen_non_llm(rng: random.Random) -> Payload:
    """Ordinary (non-LLM) spans, and attributes that only look like gen_ai ones: ignored."""
    specs = [non_llm_span(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.5:
        specs.append(_ids(rng, SpanSpec({"gen_ai.foo": 1, "GEN_AI.PROVIDER.NAME": "openai"}, "ignore")))
    return _payload("non_llm", "plain", rng, specs)


GENERATORS: dict[str, Callable[[random.Random], Payload]] = {
    "valid": _gen_valid, "mixed": _gen_mixed, "bad_counts": _gen_bad_counts, "bad_ids": _gen_bad_ids,
    "missing_required": _gen_missing_required, "bad_times": _gen_bad_times, "json_wrong_types": _gen_json_wrong_types,
    "huge": _gen_huge, "deep_nesting": _gen_deep, "invalid_utf8": _gen_invalid_utf8, "pb_corrupt": _gen_pb_corrupt,
    "pb_wrong_message": _gen_pb_wrong_message, "bad_tenant": _gen_bad_tenant, "encoding": _gen_encoding,
    "non_llm": _gen_non_llm,
}
CLASSES = tuple(GENERATORS)
# Expensive classes (MB bodies) are drawn less often so a 10k run stays fast.
WEIGHTS = {c: 1 for c in CLASSES} | {"huge": 0.25, "encoding": 0.5, "valid": 0.5}


def build(cls: str, rng: random.Random) -> Payload:
    return GENERATORS[cls](rng)


def payload_stream(seed: int, count: int):
    """`count` payloads from one seed (the bench's source): classes drawn by WEIGHTS."""
    rng = random.Random(seed)
    classes, weights = list(CLASSES), [WEIGHTS[c] for c in CLASSES]
    for _ in range(count):
        cls = rng.choices(classes, weights)[0]
        yield build(cls, random.Random(rng.getrandbits(64)))


def hostile_payloads(classes=CLASSES):
    """The Hypothesis strategy: (class, seed) drawn by Hypothesis, then `build(cls,
    random.Random(seed))`. A failure prints both, so it replays exactly; Hypothesis's own
    seed (--hypothesis-seed) replays the whole run."""
    from hypothesis import strategies as st

    return st.tuples(st.sampled_from(tuple(classes)), st.integers(0, 2**64 - 1)).map(
        lambda cs: build(cs[0], random.Random(cs[1])))


def official_span_count(body: bytes) -> int | None:
    """Spans in a protobuf body per the official parser; None when it refuses the body."""
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeWarning):
        return None
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
