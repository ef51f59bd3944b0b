import json
from pathlib import Path

import pytest
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.core.otlp_decode import MalformedRequest, decode

GOLDEN = Path(__file__).parents[2] / "fixtures" / "otlp_genai.json"


def test_protobuf_from_the_real_sdk_encoder(span_factory):
    span_factory.span(attributes=LLM_ATTRS, start_ns=1_000_000_000, end_ns=3_000_000_000)
    [span] = decode(span_factory.protobuf(), "application/x-protobuf")
    assert span.attributes["gen_ai.usage.input_tokens"] == 1000
    assert span.resource["service.name"] == "test-app"
    assert len(span.trace_id) == 32 and len(span.span_id) == 16
    assert (span.start_ns, span.end_ns) == (1_000_000_000, 3_000_000_000)


def test_otlp_json_uses_hex_ids_and_string_ints():
    spans = decode(GOLDEN.read_bytes(), "application/json; charset=utf-8")
    assert [s.name for s in spans] == ["chat claude-sonnet-4", "GET /health"]
    first = spans[0]
    assert first.trace_id == "5b8efff798038103d269b633813fc60c"
    assert first.attributes["gen_ai.usage.input_tokens"] == 12000
    assert first.attributes["gen_ai.usage.cache_creation.input_tokens"] == 1000
    assert first.end_ns == 1763900002500000000


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"\x0a\xff\xff\xff", "application/x-protobuf", "not a protobuf"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be an object"),
        (json.dumps({"resourceSpans": {"a": 1}}).encode(), "application/json", "must be a list"),
        (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}).encode(),
         "application/json", "must be an integer"),
        (b"hello", "text/plain", "unsupported Content-Type"),
    ],
)
def test_malformed_bodies_raise_with_a_clear_message(body, content_type, message):
    with pytest.raises(MalformedRequest, match=message):
        decode(body, content_type)
