"""KafkaSpanExporter with a fake writer: spans map as the collector maps them, under the
configured tenant; the SpanExporter contract (SUCCESS / FAILURE, never raises) holds."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.core.kafka_writer import WriteFailed
from tokenpulse.sdk import KafkaSpanExporter, record_llm_call, set_anthropic_usage
from tokenpulse.sdk import kafka_exporter as module


class FakeWriter:
    def __init__(self, fail: Exception | None = None) -> None:
        self.spans, self.dead, self.writes, self.closed, self.fail = [], [], 0, False, fail

    def write(self, spans, dead_letters=()):
        if self.fail is not None:
            raise self.fail
        self.writes += 1
        self.spans += list(spans)
        self.dead += list(dead_letters)
        return len(self.spans) + len(self.dead)

    def close(self):
        self.closed = True


def finished_spans(*attribute_sets: dict, resource: dict | None = None):
    """Real SDK ReadableSpans with the given attributes."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot", **(resource or {})}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for attrs in attribute_sets:
        tracer.start_span("chat gpt-4o", attributes=attrs).end()
    return memory.get_finished_spans()


def test_llm_spans_are_written_under_the_configured_tenant_bad_ones_dead_lettered_others_dropped():
    writer = FakeWriter()
    exporter = KafkaSpanExporter("acme", writer=writer)
    spans = finished_spans({**LLM_ATTRS, "tokenpulse.team": "support"},
                           {"http.method": "GET"},
                           {**LLM_ATTRS, "gen_ai.usage.input_tokens": -3, "gen_ai.input.messages": "secret prompt"})
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    (event,) = writer.spans
    assert (event.tenant, event.service, event.team, event.provider, event.model) == \
        ("acme", "support-bot", "support", "openai", "gpt-4o")
    assert (event.input_tokens, event.output_tokens) == (1000, 200)
    assert event.trace_id == format(spans[0].context.trace_id, "032x")
    (dead,) = writer.dead
    assert dead.tenant == "acme" and "negative" in dead.reason and "secret prompt" not in dead.excerpt


def test_spans_recorded_with_the_sdk_reach_kafka_priced_once():
    writer = FakeWriter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(KafkaSpanExporter("globex", writer=writer)))
    message = {"model": "claude-sonnet-4-20250514",
               "usage": {"input_tokens": 3000, "cache_read_input_tokens": 8000,
                         "cache_creation_input_tokens": 1000, "output_tokens": 900}}
    with record_llm_call(provider="anthropic", model="claude-sonnet-4", session_id="s-1",
                         tracer_provider=provider) as call:
        set_anthropic_usage(call, message)
    (event,) = writer.spans
    assert (event.tenant, event.session_id, event.model) == ("globex", "s-1", "claude-sonnet-4-20250514")
    assert (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == (12000, 8000, 1000)


def test_mapping_rules_apply_as_in_the_collector():
    from tokenpulse.core.genai_mapping import MappingRules

    writer = FakeWriter()
    exporter = KafkaSpanExporter("acme", writer=writer, rules=MappingRules(service_teams={"support-bot": "ml"}))
    assert exporter.export(finished_spans(LLM_ATTRS)) is SpanExportResult.SUCCESS
    assert writer.spans[0].team == "ml"


def test_nothing_to_write_is_a_success_without_a_write():
    writer = FakeWriter()
    assert KafkaSpanExporter("acme", writer=writer).export(finished_spans({"db.system": "postgresql"})) \
        is SpanExportResult.SUCCESS
    assert KafkaSpanExporter("acme", writer=writer).export([]) is SpanExportResult.SUCCESS
    assert writer.writes == 0


@pytest.mark.parametrize("error", [WriteFailed("no acks"), RuntimeError("broker gone")])
def test_a_failed_write_is_a_failure_not_an_exception(error, caplog):
    exporter = KafkaSpanExporter("acme", writer=FakeWriter(fail=error))
    assert exporter.export(finished_spans(LLM_ATTRS)) is SpanExportResult.FAILURE
    assert "not written" in caplog.text


def test_unencodable_input_is_a_failure_not_an_exception():
    assert KafkaSpanExporter("acme", writer=FakeWriter()).export([object()]) is SpanExportResult.FAILURE


def test_shutdown_refuses_later_exports_and_leaves_a_given_writer_open():
    writer = FakeWriter()
    exporter = KafkaSpanExporter("acme", writer=writer)
    assert exporter.force_flush() is True
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    assert exporter.export(finished_spans(LLM_ATTRS)) is SpanExportResult.FAILURE
    assert writer.writes == 0 and not writer.closed


def test_the_exporter_closes_the_writer_it_made(monkeypatch):
    made = []

    def fake_span_writer(kafka, *, collector_id, timeout_s):
        made.append((kafka.bootstrap_servers, collector_id, timeout_s))
        return FakeWriter()

    monkeypatch.setattr(module, "SpanWriter", fake_span_writer)
    exporter = KafkaSpanExporter("acme", kafka=module.KafkaSettings(bootstrap_servers="kafka-1:9092"),
                                 client_id="billing-app", timeout_s=3)
    assert made == [("kafka-1:9092", "billing-app", 3)]
    writer = exporter._writer
    exporter.shutdown()
    assert writer.closed


@pytest.mark.parametrize("tenant", ["", "   ", "t" * 300, None])
def test_tenant_is_required(tenant):
    with pytest.raises(ValueError, match="tenant"):
        KafkaSpanExporter(tenant, writer=FakeWriter())
