"""OTLP payload builders for tests, using the real OpenTelemetry SDK encoders."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class SpanFactory:
    """Records real SDK spans in memory and encodes them as OTLP protobuf bytes."""

    def __init__(self, service: str = "test-app", resource_attrs: dict | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service, **(resource_attrs or {})}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def span(self, name: str = "chat gpt-4o", attributes: dict | None = None, start_ns=None, end_ns=None):
        s = self.tracer.start_span(name, attributes=attributes or {}, start_time=start_ns)
        s.end(end_time=end_ns)
        return s

    def protobuf(self) -> bytes:
        return encode_spans(self.exporter.get_finished_spans()).SerializeToString()


LLM_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 200,
}


