"""The OTLP/gRPC receiver on a free port with an in-memory writer, driven by the real
OpenTelemetry SDK gRPC exporter (and a plain gRPC channel for the error codes)."""

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult
from testkit.collector_fakes import MemoryWriter
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.otlp_grpc import EXPORT_METHOD, SERVICE_NAME, make_grpc_server
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")]),
                                   Tenant(id="globex", api_key_sha256=[hash_key("k-globex")])])
LIMIT = 1 << 20




@pytest.fixture
def serve():
    """serve(writer) -> the port of a running gRPC receiver writing to `writer`."""
    servers = []

    def start(writer):
        server, port = make_grpc_server(TraceReceiver(TENANTS, writer, max_body_bytes=LIMIT),
                                        host="127.0.0.1", port=0, max_message_bytes=LIMIT)
        server.start()
        servers.append(server)
        return port

    yield start
    for s in servers:
        s.stop(grace=None)


def sdk_export(port, spans, headers, compression=None):
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, headers=headers,
                                compression=compression, timeout=5)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def raw_export(port, body: bytes, metadata=(("authorization", "Bearer k-acme"),)) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{SERVICE_NAME}/{EXPORT_METHOD}")  # bytes in, bytes out
        return call(body, metadata=metadata, timeout=5)


def test_sdk_exporter_spans_land_under_the_keys_tenant_not_the_payloads(serve, span_factory):
    span_factory.span(attributes={**LLM_ATTRS, "tenant": "globex", "tokenpulse.tenant": "globex"})
    writer = MemoryWriter()
    port = serve(writer)
    result = sdk_export(port, span_factory.exporter.get_finished_spans(), {"authorization": "Bearer k-acme"})
    assert result == SpanExportResult.SUCCESS
    assert [(s.tenant, s.model, s.input_tokens) for s in writer.spans] == [("acme", "gpt-4o", 1000)]


def test_x_tokenpulse_key_metadata_is_accepted_too(serve, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    port = serve(writer)
    result = sdk_export(port, span_factory.exporter.get_finished_spans(), {"x-tokenpulse-key": "k-globex"})
    assert result == SpanExportResult.SUCCESS
    assert [s.tenant for s in writer.spans] == ["globex"]


def test_gzip_compressed_exports_are_accepted(serve, span_factory):
    for _ in range(20):
        span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    port = serve(writer)
    result = sdk_export(port, span_factory.exporter.get_finished_spans(), {"authorization": "Bearer k-acme"},
                        compression=Compression.Gzip)
    assert result == SpanExportResult.SUCCESS and len(writer.spans) == 20


def test_wrong_or_missing_key_is_unauthenticated_and_writes_nothing(serve, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    port = serve(writer)
    # UNAUTHENTICATED is not retryable, so the exporter gives up at once.
    assert sdk_export(port, span_factory.exporter.get_finished_spans(),
                      {"authorization": "Bearer stolen"}) == SpanExportResult.FAILURE
    for metadata, why in (((("authorization", "Bearer stolen"),), "unknown API key"), ((), "missing API key")):
        with pytest.raises(grpc.RpcError) as err:
            raw_export(port, span_factory.protobuf(), metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert why in err.value.details() and "Bearer <key>" in err.value.details()
    assert writer.spans == [] and writer.dead == []


def test_malformed_request_is_invalid_argument(serve):
    port = serve(MemoryWriter())
    with pytest.raises(grpc.RpcError) as err:
        raw_export(port, b"\x0a\xff\xff\xff")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a protobuf" in err.value.details()


def test_kafka_down_is_unavailable_so_exporters_retry(serve, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    port = serve(MemoryWriter(fail=True))
    with pytest.raises(grpc.RpcError) as err:
        raw_export(port, span_factory.protobuf())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_rejected_spans_come_back_as_partial_success(serve, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    span_factory.span(attributes={**LLM_ATTRS, "gen_ai.usage.output_tokens": -3})
    writer = MemoryWriter()
    port = serve(writer)
    resp = ExportTraceServiceResponse.FromString(raw_export(port, span_factory.protobuf()))
    assert resp.partial_success.rejected_spans == 1
    assert "negative" in resp.partial_success.error_message
    assert len(writer.spans) == 1 and len(writer.dead) == 1


def test_message_over_the_limit_is_refused_even_when_gzip_makes_it_small(serve):
    port = serve(MemoryWriter())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{SERVICE_NAME}/{EXPORT_METHOD}")
        with pytest.raises(grpc.RpcError) as err:
            call(b"\0" * (2 * LIMIT), metadata=(("authorization", "Bearer k-acme"),),
                 compression=grpc.Compression.Gzip, timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_taken_port_fails_loudly(serve):
    port = serve(MemoryWriter())
    with pytest.raises(RuntimeError, match="in use"):
        make_grpc_server(TraceReceiver(TENANTS, MemoryWriter(), max_body_bytes=LIMIT),
                         host="127.0.0.1", port=port, max_message_bytes=LIMIT)
