"""The otelcol-kafka ingest with fakes (no Kafka): record decoding and mapping under the
configured tenant, dead letters for undecodable records, commits only after acked writes."""

import json
import time
from pathlib import Path

import pytest
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.kafka_otlp_ingest import (
    InputRecord,
    InputTopicMissing,
    KafkaOtlpIngest,
    check_inputs,
    translate,
)
from tokenpulse.core.kafka_writer import WriteFailed
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.settings import KafkaInput

GOLDEN = Path(__file__).parents[2] / "fixtures" / "otlp_genai.json"
PROTO_INPUT = KafkaInput(topic="otlp_spans", encoding="otlp_proto", tenant="acme")
JSON_INPUT = KafkaInput(topic="otlp_spans_json", encoding="otlp_json", tenant="globex")


class MemoryWriter:
    def __init__(self, failures: int = 0) -> None:
        self.spans, self.dead, self.failures = [], [], failures

    def write(self, spans, dead_letters=()):
        if self.failures:
            self.failures -= 1
            raise WriteFailed("broker down")
        self.spans += list(spans)
        self.dead += list(dead_letters)


class FakeConsumer:
    """Hands out queued batches; records commits and rewinds in order with the writes."""

    def __init__(self, batches, log=None) -> None:
        self.batches, self.log = list(batches), log if log is not None else []
        self.closed = False

    def poll(self, timeout_ms):
        return self.batches.pop(0) if self.batches else []

    def commit(self, next_offsets):
        self.log.append(("commit", next_offsets))

    def rewind(self, first_offsets):
        self.log.append(("rewind", first_offsets))

    def close(self):
        self.closed = True


def proto_record(span_factory, offset=0, partition=0, **attrs):
    span_factory.span(attributes={**LLM_ATTRS, **attrs})
    return InputRecord(partition, offset, span_factory.protobuf())


def test_protobuf_records_map_to_spans_under_the_configured_tenant(span_factory):
    record = proto_record(span_factory, tenant="globex", **{"tokenpulse.tenant": "globex"})
    out = translate([record], PROTO_INPUT, received_ms=1)
    assert [(s.tenant, s.model, s.input_tokens, s.output_tokens) for s in out.spans] == [("acme", "gpt-4o", 1000, 200)]
    assert out.dead == []


def test_otlp_json_records_map_to_spans():
    out = translate([InputRecord(0, 7, GOLDEN.read_bytes())], JSON_INPUT, received_ms=1)
    assert [(s.tenant, s.provider, s.response_model) for s in out.spans] == [
        ("globex", "anthropic", "claude-sonnet-4-20250514")]
    assert out.ignored == 1  # the fixture's GET /health span is not an LLM call


@pytest.mark.parametrize("source, value, why", [
    (PROTO_INPUT, b"\x0a\xff\xff\xff", "not a protobuf"),
    (JSON_INPUT, b"{not json", "not valid JSON"),
    (PROTO_INPUT, None, "no value"),
])
def test_undecodable_record_is_a_dead_letter_naming_where_it_came_from(source, value, why):
    out = translate([InputRecord(2, 41, value)], source, received_ms=5)
    [dead] = out.dead
    assert out.spans == []
    assert dead.tenant == source.tenant and dead.stage == "collector" and dead.received_ms == 5
    assert f"{source.topic}[2]@41" in dead.reason and why in dead.reason
    assert json.loads(dead.excerpt) == {"topic": source.topic, "partition": 2, "offset": 41,
                                        "encoding": source.encoding, "bytes": len(value or b"")}


def test_one_bad_record_does_not_spoil_its_batch(span_factory):
    good = proto_record(span_factory, offset=1)
    bad_span = proto_record(span_factory, offset=2, **{"gen_ai.usage.input_tokens": -1})
    out = translate([InputRecord(0, 0, b"\xff"), good, bad_span], PROTO_INPUT, received_ms=1)
    # `good` holds one valid span; `bad_span`'s record repeats it beside the negative one.
    assert len(out.spans) == 2
    assert out.dead[0].reason.startswith("undecodable otlp_proto record")
    assert "negative" in out.dead[1].reason


def test_offsets_are_committed_only_after_the_write_was_acknowledged(span_factory):
    records = [proto_record(span_factory, offset=10, partition=0), proto_record(span_factory, offset=3, partition=1),
               proto_record(span_factory, offset=11, partition=0)]
    writer, consumer = MemoryWriter(failures=1), FakeConsumer([])
    ingest = KafkaOtlpIngest(PROTO_INPUT, writer, lambda: consumer)
    assert ingest.handle(consumer, records) is False  # broker down: rewind, no commit
    assert consumer.log == [("rewind", {0: 10, 1: 3})] and writer.spans == []
    assert ingest.handle(consumer, records) is True
    assert consumer.log[-1] == ("commit", {0: 12, 1: 4})
    assert ingest.stats.records == 3 and ingest.stats.spans == len(writer.spans) > 0


def test_the_thread_waits_for_a_missing_topic_then_ingests(span_factory):
    log = []
    consumer = FakeConsumer([[proto_record(span_factory, offset=0)]], log)
    attempts = []

    def factory():
        attempts.append(1)
        if len(attempts) == 1:
            raise InputTopicMissing("input topic otlp_spans does not exist (yet)")
        return consumer

    writer = MemoryWriter()
    ingest = KafkaOtlpIngest(PROTO_INPUT, writer, factory, poll_timeout_ms=10, retry_s=0.05)
    ingest.start()
    deadline = time.monotonic() + 5
    while not log and time.monotonic() < deadline:
        time.sleep(0.02)
    ingest.stop()
    assert log == [("commit", {0: 1})] and [s.tenant for s in writer.spans] == ["acme"]
    assert consumer.closed and not ingest.is_alive()


def test_an_input_for_an_unknown_tenant_refuses_to_start():
    tenants = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k")])])
    check_inputs([PROTO_INPUT], tenants)
    with pytest.raises(SystemExit, match="'globex' is not in the tenants file"):
        check_inputs([JSON_INPUT], tenants)
