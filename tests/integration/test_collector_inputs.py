"""The collector's other inputs on the real stack: OTLP/gRPC from the OTel SDK exporter, and
an OpenTelemetry Collector's kafka exporter topic (otlp_proto) mapped to a tenant by
configuration (TEST_ENV in conftest.py: port 24317, topic it-otelcol-acme -> acme)."""

from __future__ import annotations

import uuid

import pytest
from helpers import wait_for
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.integration
INPUT_TOPIC = "it-otelcol-acme"  # configured in conftest.TEST_ENV as tenant acme


def record_llm_spans(service: str, session: str, count: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("integration")
    for i in range(count):
        tracer.start_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 10,
            "gen_ai.conversation.id": session, "tenant": "globex"}).end()  # a payload tenant is ignored
    return list(memory.get_finished_spans())


def test_grpc_export_lands_under_the_keys_tenant(stack_settings):
    run = uuid.uuid4().hex[:8]
    spans = record_llm_spans(f"it-grpc-{run}", f"grpc-{run}", 5)
    cfg = stack_settings.collector
    exporter = OTLPSpanExporter(endpoint=f"{cfg.host}:{cfg.grpc_port}", insecure=True,
                                headers={"authorization": "Bearer demo-acme-key"})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()

    rows = wait_for(stack_settings, "SELECT tenant, count(), sum(input_tokens) FROM token_spans FINAL "
                    "WHERE session_id = {s:String} GROUP BY tenant", {"s": f"grpc-{run}"},
                    lambda r: sum(x[1] for x in r) >= 5, timeout_s=120)
    assert [(r[0], r[1], r[2]) for r in rows] == [("acme", 5, sum(100 + i for i in range(5)))]


def test_otelcol_kafka_records_land_once_even_when_produced_twice(stack_settings):
    run = uuid.uuid4().hex[:8]
    service, session = f"it-otelcol-{run}", f"otelcol-{run}"
    record = encode_spans(record_llm_spans(service, session, 4)).SerializeToString()
    options = stack_settings.kafka.client_options()
    admin = KafkaAdminClient(**options, client_id="it-admin")
    try:
        admin.create_topics([NewTopic(INPUT_TOPIC, 2, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    producer = KafkaProducer(**options, acks="all")
    for value in (record, record, b"\x0a\xff\xff\xff"):  # a redelivered record, then garbage
        producer.send(INPUT_TOPIC, value=value, key=run.encode()).get(timeout=30)
    producer.close()

    expected = (4, sum(100 + i for i in range(4)))
    rows = wait_for(stack_settings, "SELECT tenant, count(), sum(input_tokens) FROM token_spans FINAL "
                    "WHERE session_id = {s:String} GROUP BY tenant", {"s": session},
                    lambda r: sum(x[1] for x in r) >= 4, timeout_s=150)
    assert [(r[0], r[1], r[2]) for r in rows] == [("acme", *expected)]
    # The rollups count each call once: the Flink job dropped the second copy (both copies
    # fall in the same 1-minute window, so a leak would show as 8 calls in its one rollup).
    rollup = wait_for(stack_settings, "SELECT sum(calls), sum(input_tokens) FROM spend_1m FINAL "
                      "WHERE service = {svc:String}", {"svc": service},
                      lambda r: (r[0][0] or 0) >= 4, timeout_s=150)
    assert (rollup[0][0], rollup[0][1]) == expected

    dead = wait_for(stack_settings, "SELECT tenant, reason FROM dead_letters FINAL "
                    "WHERE reason LIKE {r:String}", {"r": f"undecodable otlp_proto record at {INPUT_TOPIC}[%"},
                    lambda r: len(r) >= 1, timeout_s=60)
    assert dead and dead[0][0] == "acme" and "not a protobuf" in dead[0][1]
