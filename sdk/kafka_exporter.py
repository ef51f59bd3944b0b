"""An OpenTelemetry span exporter that writes LLM calls straight to tokenpulse's Kafka topics.

For apps running inside the cluster, next to Kafka: no collector hop, the same events.

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from tokenpulse.sdk.kafka_exporter import KafkaSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(KafkaSpanExporter(tenant="acme")))

Each finished span goes through the collector's own path: it is encoded as OTLP, decoded
with core/otlp_decode.py and mapped with core/genai_mapping.py under the tenant
given here. LLM calls go to the raw spans topic, rejected spans to the dead-letter topic with
their reason, other spans are dropped. Prompts and completions are never written.

Tenant boundary: there is no API key on this path, so the tenant is configuration, as for
the collector's Kafka inputs. Kafka ACLs are the boundary: only the tenant's apps should hold
credentials that may WRITE the spans and dead-letter topics.

Watermark heartbeats stay the collector's job (a running collector or Kafka-input reader
sends them to every partition); this exporter only writes spans.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tokenpulse.core.genai_mapping import MappingRules
from tokenpulse.core.kafka_writer import SpanWriter
from tokenpulse.core.otlp_decode import decode
from tokenpulse.core.span_mapping import map_spans
from tokenpulse.schemas.events import MAX_LABEL_CHARS, DeadLetter, TokenSpan
from tokenpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

OTLP_PROTOBUF = "application/x-protobuf"


class EventWriter(Protocol):
    """What the exporter needs from core.kafka_writer.SpanWriter (fakes in tests)."""

    def write(self, spans: Iterable[TokenSpan], dead_letters: Iterable[DeadLetter] = ()) -> int: ...
    def close(self) -> None: ...


class KafkaSpanExporter(SpanExporter):
    """Maps finished spans to TokenSpans under `tenant` and writes them to Kafka.

    Contract (OTel SpanExporter): export() returns SUCCESS once Kafka acknowledged every
    accepted span and dead letter (or there was nothing to write), FAILURE otherwise,
    including after shutdown; it never raises. The batch span processor does not retry a
    FAILURE, so those spans are lost and logged. Writes are synchronous (acks=all), so
    force_flush has nothing pending. shutdown() closes the writer when the exporter made it;
    a writer passed in stays the caller's to close.

    `kafka` defaults to KafkaSettings() (the TOKENPULSE_KAFKA_* environment); `rules` as the
    collector's (the shipped sender conventions, no service -> team map)."""

    def __init__(self, tenant: str, *, kafka: KafkaSettings | None = None, writer: EventWriter | None = None,
                 rules: MappingRules | None = None, client_id: str = "sdk-exporter",
                 timeout_s: float = 10.0) -> None:
        if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > MAX_LABEL_CHARS:
            raise ValueError(f"tenant must be a non-empty id of at most {MAX_LABEL_CHARS} characters, got {tenant!r}")
        self.tenant = tenant.strip()
        self._rules = rules or MappingRules()
        self._owns_writer = writer is None
        self._writer: EventWriter = writer if writer is not None else SpanWriter(
            kafka or KafkaSettings(), collector_id=client_id, timeout_s=timeout_s)
        self._closed = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed.is_set():
            log.warning("tokenpulse Kafka exporter is shut down; dropping %d span(s)", len(spans))
            return SpanExportResult.FAILURE
        try:
            # Through OTLP and the collector's decoder, so a span maps exactly as if it came
            # over HTTP (attribute types, ids, resource) without a second conversion to maintain.
            decoded = decode(encode_spans(spans).SerializeToString(), OTLP_PROTOBUF)
            mapped = map_spans(decoded, tenant=self.tenant, received_ms=int(time.time() * 1000),
                               rules=self._rules)
            if mapped.accepted or mapped.dead:
                self._writer.write(mapped.accepted, mapped.dead)
        except Exception as exc:  # noqa: BLE001 - an exporter must never raise into the SDK
            log.warning("tokenpulse Kafka exporter: %d span(s) not written: %s", len(spans), exc)
            return SpanExportResult.FAILURE
        if mapped.dead:
            log.info("tokenpulse Kafka exporter: %d span(s) dead-lettered; first reason: %s",
                     len(mapped.dead), mapped.dead[0].reason)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # export() returns only after Kafka acknowledged: nothing is buffered here

    def shutdown(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._owns_writer:
            try:
                self._writer.close()
            except Exception as exc:  # noqa: BLE001 - shutdown runs at exit; report, don't raise
                log.warning("tokenpulse Kafka exporter: closing the producer failed: %s", exc)
