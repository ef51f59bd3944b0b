"""Write collector output to Kafka: validated spans, dead letters, and watermark heartbeats.

The producer is idempotent with acks=all, so a broker-side retry never duplicates a
record; `write()` blocks until every record is acknowledged, which is what lets the HTTP
receiver answer 200 only for spans that are durably in Kafka (and 503 otherwise, so the
sender retries; retried spans are deduplicated downstream by (tenant, trace_id, span_id)).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from tokenpulse.schemas import topics
from tokenpulse.schemas.events import DeadLetter, Heartbeat, TokenSpan
from tokenpulse.settings import KafkaSettings

log = logging.getLogger(__name__)


class WriteFailed(RuntimeError):
    """Kafka did not acknowledge every record in time; the caller should ask for a retry."""


class SpanWriter:
    def __init__(self, kafka: KafkaSettings, *, collector_id: str, timeout_s: float = 10.0) -> None:
        self._producer = KafkaProducer(
            **kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            compression_type="lz4",
            batch_size=kafka.producer_batch_bytes,
            max_request_size=8 * 1024 * 1024,
            client_id=f"tokenpulse-{collector_id}",
        )
        self._collector_id = collector_id
        self._timeout_s = timeout_s

    def write(self, spans: Iterable[TokenSpan], dead_letters: Iterable[DeadLetter] = ()) -> int:
        futures = [
            self._producer.send(topics.SPANS.name, key=s.kafka_key(), value=s.model_dump_json().encode())
            for s in spans
        ]
        futures += [
            self._producer.send(topics.DEAD_LETTERS.name, key=d.tenant.encode(), value=d.model_dump_json().encode())
            for d in dead_letters
        ]
        try:
            # flush() raises KafkaTimeoutError while the broker is away (found by the
            # broker_restart fault drill): outside this try it escaped the HTTP handler, which
            # dropped the connection instead of answering 503 (what OTLP exporters retry).
            self._producer.flush(timeout=self._timeout_s)
            for f in futures:
                f.get(timeout=0)
        except KafkaError as exc:
            raise WriteFailed(f"Kafka did not acknowledge the batch: {exc}") from exc
        return len(futures)

    def heartbeat(self, now_ms: int | None = None) -> None:
        """One heartbeat per partition so every partition's event time advances."""
        beat = Heartbeat(end_ms=now_ms if now_ms is not None else int(time.time() * 1000), collector_id=self._collector_id)
        value = beat.model_dump_json().encode()
        for p in sorted(self._producer.partitions_for(topics.SPANS.name) or ()):
            self._producer.send(topics.SPANS.name, value=value, partition=p)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


class HeartbeatThread(threading.Thread):
    """Sends heartbeats every interval until stopped; a failed beat is logged, not fatal."""

    def __init__(self, writer: SpanWriter, interval_ms: int) -> None:
        super().__init__(name="heartbeats", daemon=True)
        self._writer, self._interval_s = writer, interval_ms / 1000
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval_s):
            try:
                self._writer.heartbeat()
            except Exception:  # noqa: BLE001 - keep beating; the log says why it failed
                log.exception("heartbeat failed")

    def stop(self) -> None:
        self._stop_event.set()
