"""Write to the raw Kafka topics: validated spans, dead letters, and watermark heartbeats.

The producer is idempotent with acks=all, so a broker-side retry never duplicates a
record; `write()` blocks until every record is acknowledged, which is what lets the HTTP
receiver answer 200 only for spans that are durably in Kafka (and 503 otherwise, so the
sender retries; retried spans are deduplicated downstream by (tenant, trace_id, span_id)).

The client is librdkafka (confluent-kafka): ~3x less CPU per record than kafka-python here
(bench/README.md, issue #15). Its partitioner is murmur2_random, the Java client's (and
kafka-python's) placement of keyed records, so a trace lands on the same partition whichever
client wrote it. Acknowledgements arrive as callbacks served by one poller thread; each
write waits only for its own records, not for everything other threads queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from confluent_kafka import KafkaException, Producer

from tokenpulse.schemas import topics
from tokenpulse.schemas.events import DeadLetter, Heartbeat, TokenSpan
from tokenpulse.settings import KafkaSettings

log = logging.getLogger(__name__)
PARTITIONS_REFRESH_S = 60.0  # how long the heartbeat's partition list is reused


def span_record(span: TokenSpan) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of a raw span: keyed so a trace stays in one partition."""
    return topics.SPANS.name, span.kafka_key(), span.model_dump_json().encode()


def dead_letter_record(dead: DeadLetter) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of a dead letter, keyed by tenant; every writer sends it this way."""
    return topics.DEAD_LETTERS.name, dead.tenant.encode(), dead.model_dump_json().encode()


class WriteFailed(RuntimeError):
    """Kafka did not acknowledge every record in time; the caller should ask for a retry."""


class _Acks:
    """One write's outstanding records; librdkafka calls it once per record from the poller."""

    def __init__(self, expected: int) -> None:
        self.pending, self.errors = expected, list[str]()
        self.done = threading.Condition()

    def __call__(self, err: object, _msg: object) -> None:
        with self.done:
            self.pending -= 1
            if err is not None:
                self.errors.append(str(err))
            if self.pending <= 0:
                self.done.notify_all()

    def wait(self, timeout_s: float) -> bool:
        with self.done:
            return self.done.wait_for(lambda: self.pending <= 0, timeout_s)


def producer_config(kafka: KafkaSettings, client_id: str) -> dict:
    """The collector's durability settings, for librdkafka."""
    return {
        **kafka.librdkafka_options(),
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        "batch.size": kafka.producer_batch_bytes,
        "message.max.bytes": 8 * 1024 * 1024,
        "partitioner": "murmur2_random",
        # a record not acknowledged in 2 minutes fails (kafka-python's delivery timeout); the
        # sender has long been told 503 by then and retries
        "message.timeout.ms": 120_000,
        "logger": logging.getLogger("librdkafka"),  # its own log lines through ours (served by poll)
    }


class SpanWriter:
    def __init__(self, kafka: KafkaSettings, *, collector_id: str, timeout_s: float = 10.0) -> None:
        self._producer = Producer(producer_config(kafka, f"tokenpulse-{collector_id}"))
        self._collector_id = collector_id
        self._timeout_s = timeout_s
        self._partitions: tuple[list[int], float] = ([], 0.0)
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve_callbacks, name="kafka-acks", daemon=True)
        self._poller.start()

    def _serve_callbacks(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    def write(self, spans: Iterable[TokenSpan], dead_letters: Iterable[DeadLetter] = ()) -> int:
        return self.write_records([*map(span_record, spans), *map(dead_letter_record, dead_letters)])

    def write_records(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> int:
        """Write (topic, key, value) records and wait for their acknowledgements."""
        if not records:
            return 0
        acks = _Acks(len(records))
        try:
            for topic, key, value in records:
                self._producer.produce(topic, value=value, key=key, on_delivery=acks)
        except BufferError as exc:  # the local queue is full: the broker has been away a while
            raise WriteFailed(f"Kafka's local queue is full ({exc}); the broker is not taking records") from exc
        except KafkaException as exc:
            raise WriteFailed(f"Kafka refused the batch: {exc}") from exc
        if not acks.wait(self._timeout_s):
            # the queued records may still land later: the sender's retry is deduplicated downstream
            raise WriteFailed(f"Kafka did not acknowledge {acks.pending} of {len(records)} records "
                              f"in {self._timeout_s:.1f} s")
        if acks.errors:
            raise WriteFailed(f"Kafka did not acknowledge the batch: {acks.errors[0]}")
        return len(records)

    def _span_partitions(self) -> list[int]:
        partitions, fetched_at = self._partitions
        if not partitions or time.monotonic() - fetched_at > PARTITIONS_REFRESH_S:
            meta = self._producer.list_topics(topics.SPANS.name, timeout=self._timeout_s).topics[topics.SPANS.name]
            if meta.error is not None:
                raise WriteFailed(f"no metadata for {topics.SPANS.name}: {meta.error}")
            self._partitions = (sorted(meta.partitions), time.monotonic())
        return self._partitions[0]

    def heartbeat(self, now_ms: int | None = None) -> None:
        """One heartbeat per partition so every partition's event time advances."""
        beat = Heartbeat(end_ms=now_ms if now_ms is not None else int(time.time() * 1000), collector_id=self._collector_id)
        value = beat.model_dump_json().encode()
        for p in self._span_partitions():
            self._producer.produce(topics.SPANS.name, value=value, partition=p)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
        self._closing.set()
        self._poller.join(timeout=1.0)


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
