"""The receiver core with an in-memory writer (no network): auth, limits, partial success."""

import gzip
import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from testkit.collector_fakes import MemoryWriter
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")]),
                                   Tenant(id="globex", api_key_sha256=[hash_key("k-globex")])])




def receiver(writer=None, limit=1 << 20):
    return TraceReceiver(TENANTS, writer or MemoryWriter(), max_body_bytes=limit)


def test_unknown_or_missing_key_is_401_and_writes_nothing(span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    w = MemoryWriter()
    for key in (None, "wrong"):
        reply = receiver(w).export(span_factory.protobuf(), content_type="application/x-protobuf",
                                   content_encoding="", api_key=key)
        assert reply.status == 401
    assert w.spans == [] and w.dead == []


def test_tenant_comes_from_the_key_not_the_payload(span_factory):
    span_factory.span(attributes={**LLM_ATTRS, "tenant": "acme", "tokenpulse.tenant": "acme"})
    w = MemoryWriter()
    reply = receiver(w).export(span_factory.protobuf(), content_type="application/x-protobuf",
                               content_encoding="", api_key="k-globex")
    assert reply.status == 200
    assert [s.tenant for s in w.spans] == ["globex"]


def test_partial_success_counts_rejected_spans(span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    span_factory.span(attributes={**LLM_ATTRS, "gen_ai.usage.output_tokens": -3})
    span_factory.span(name="db query", attributes={"db.system": "postgresql"})
    w = MemoryWriter()
    reply = receiver(w).export(span_factory.protobuf(), content_type="application/x-protobuf",
                               content_encoding="", api_key="k-acme")
    resp = ExportTraceServiceResponse.FromString(reply.body)
    assert reply.status == 200 and resp.partial_success.rejected_spans == 1
    assert "negative" in resp.partial_success.error_message
    assert len(w.spans) == 1 and len(w.dead) == 1 and w.dead[0].tenant == "acme"


def test_malformed_json_is_400_with_message():
    reply = receiver().export(b"{oops", content_type="application/json", content_encoding="", api_key="k-acme")
    assert reply.status == 400
    assert "not valid JSON" in json.loads(reply.body)["message"]


def test_gzip_bodies_are_accepted_and_bombs_refused(span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    w = MemoryWriter()
    ok = receiver(w).export(gzip.compress(span_factory.protobuf()), content_type="application/x-protobuf",
                            content_encoding="gzip", api_key="k-acme")
    assert ok.status == 200 and len(w.spans) == 1
    bomb = gzip.compress(b"\0" * (4 << 20))
    reply = receiver(limit=1 << 20).export(bomb, content_type="application/x-protobuf",
                                           content_encoding="gzip", api_key="k-acme")
    assert reply.status == 413


def test_kafka_down_is_503_so_senders_retry(span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    reply = receiver(MemoryWriter(fail=True)).export(span_factory.protobuf(), content_type="application/x-protobuf",
                                                     content_encoding="", api_key="k-acme")
    assert reply.status == 503
