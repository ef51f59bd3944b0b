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

A producer can wedge: once, after the one local broker was stopped and restarted, a
librdkafka producer never reconnected (no more log lines, metadata requests failing with
"Broker transport failure" for 15 minutes, while the Flink job and the loader reconnected to
the same broker). So the writer watches itself: when a broker accepts TCP connections but
this producer has acknowledged nothing for `stuck_after_s`, it builds a new producer and
abandons the old one (never destroyed: destroying a wedged handle can block). Records the old
one still holds were answered 503, so their senders resend them; if the old one delivers them
after all, the raw topic's duplicates are dropped by (tenant, trace_id, span_id) downstream.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import KafkaException, Producer

from tokenpulse.schemas import topics
from tokenpulse.schemas.events import DeadLetter, Heartbeat, TokenSpan
from tokenpulse.settings import KafkaSettings

log = logging.getLogger(__name__)
PARTITIONS_REFRESH_S = 60.0  # how long the heartbeat's partition list is reused
STUCK_AFTER_S = 20.0  # broker reachable, nothing acknowledged: a healthy producer reconnects in ~1 s


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


def any_broker_accepts(kafka: KafkaSettings, timeout_s: float = 0.5) -> bool:
    """Whether some bootstrap server accepts a TCP connection (the broker is up, whatever our
    producer thinks)."""
    for address in kafka.bootstrap_addresses():
        try:
            with socket.create_connection(address, timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


class SpanWriter:
    def __init__(self, kafka: KafkaSettings, *, collector_id: str, timeout_s: float = 10.0,
                 stuck_after_s: float = STUCK_AFTER_S,
                 new_producer: Callable[[dict], Producer] = Producer,
                 broker_reachable: Callable[[], bool] | None = None) -> None:
        self._config = producer_config(kafka, f"tokenpulse-{collector_id}")
        self._new_producer = new_producer
        self._broker_reachable = broker_reachable or (lambda: any_broker_accepts(kafka))
        self._collector_id = collector_id
        self._timeout_s = timeout_s
        self._stuck_after_s = stuck_after_s
        self._partitions: tuple[list[int], float] = ([], 0.0)
        self._closing = threading.Event()  # the writer is closing: every poller stops
        self._health = threading.Lock()
        self._stuck_since: float | None = None  # first failure seen while a broker was reachable
        self._reachable = (False, float("-inf"))  # the last probe's answer and when it was asked
        self.rebuilds = 0
        self._abandoned: list[Producer] = []  # wedged producers, kept so they are never destroyed
        self._producer, self._poller_done = self._start_producer()

    def _start_producer(self) -> tuple[Producer, threading.Event]:
        producer, done = self._new_producer(self._config), threading.Event()
        self._poller = threading.Thread(target=self._serve_callbacks, args=(producer, done), name="kafka-acks", daemon=True)
        self._poller.start()
        return producer, done

    def _serve_callbacks(self, producer: Producer, done: threading.Event) -> None:
        while not (self._closing.is_set() or done.is_set()):
            try:
                producer.poll(0.1)
            except Exception:  # noqa: BLE001 - a raising callback must not end every later ack
                log.exception("serving Kafka callbacks failed; serving on")

    # --- is the producer wedged? -------------------------------------------------------
    def _delivered(self) -> None:
        self._stuck_since = None

    def _failed(self, why: str) -> None:
        """A write or metadata request failed: rebuild the producer if a broker has been
        reachable all along for `stuck_after_s` while this producer got nothing through."""
        with self._health:  # one probe at a time: 64 failing requests need not open 64 connections
            now = time.monotonic()
            reachable, probed_at = self._reachable
            if now - probed_at >= 1.0:
                self._reachable = reachable, probed_at = self._broker_reachable(), now
            if not reachable:
                self._stuck_since = None  # the broker is away: waiting is right, a new producer would not help
                return
            if self._stuck_since is None:
                self._stuck_since = now
            elif now - self._stuck_since >= self._stuck_after_s:
                log.warning("Kafka producer wedged: a broker accepts connections but nothing was acknowledged "
                            "for %.0f s (last: %s); building a new producer", now - self._stuck_since, why)
                old, old_done = self._producer, self._poller_done
                old_done.set()
                self._abandoned.append(old)
                self._producer, self._poller_done = self._start_producer()
                self._partitions = ([], 0.0)
                self._stuck_since, self.rebuilds = None, self.rebuilds + 1

    def write(self, spans: Iterable[TokenSpan], dead_letters: Iterable[DeadLetter] = ()) -> int:
        return self.write_records([*map(span_record, spans), *map(dead_letter_record, dead_letters)])

    def write_records(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> int:
        """Write (topic, key, value) records and wait for their acknowledgements."""
        if not records:
            return 0
        acks, producer = _Acks(len(records)), self._producer
        try:
            for topic, key, value in records:
                producer.produce(topic, value=value, key=key, on_delivery=acks)
        except BufferError as exc:  # the local queue is full: the broker has been away a while
            self._failed("local queue full")
            raise WriteFailed(f"Kafka's local queue is full ({exc}); the broker is not taking records") from exc
        except KafkaException as exc:
            raise WriteFailed(f"Kafka refused the batch: {exc}") from exc
        all_acked = acks.wait(self._timeout_s)
        if len(acks.errors) < len(records) - acks.pending:  # some record got through: the producer works
            self._delivered()
        if not all_acked:
            # the queued records may still land later: the sender's retry is deduplicated downstream
            failure = f"Kafka did not acknowledge {acks.pending} of {len(records)} records in {self._timeout_s:.1f} s"
            self._failed(failure)
            raise WriteFailed(failure)
        if acks.errors:
            raise WriteFailed(f"Kafka did not acknowledge the batch: {acks.errors[0]}")
        return len(records)

    def _span_partitions(self) -> list[int]:
        partitions, fetched_at = self._partitions
        if not partitions or time.monotonic() - fetched_at > PARTITIONS_REFRESH_S:
            try:
                meta = self._producer.list_topics(topics.SPANS.name, timeout=self._timeout_s).topics[topics.SPANS.name]
            except KafkaException as exc:
                self._failed(f"metadata: {exc}")
                raise WriteFailed(f"no metadata for {topics.SPANS.name}: {exc}") from exc
            if meta.error is not None:
                raise WriteFailed(f"no metadata for {topics.SPANS.name}: {meta.error}")
            self._partitions = (sorted(meta.partitions), time.monotonic())
        return self._partitions[0]

    def heartbeat(self, now_ms: int | None = None) -> None:
        """One heartbeat per partition so every partition's event time advances."""
        beat = Heartbeat(end_ms=now_ms if now_ms is not None else int(time.time() * 1000), collector_id=self._collector_id)
        value = beat.model_dump_json().encode()
        for p in self._span_partitions():
            self._producer.produce(topics.SPANS.name, value=value, partition=p, on_delivery=self._heartbeat_acked)

    def _heartbeat_acked(self, err: object, _msg: object) -> None:
        if err is None:  # a delivered heartbeat is progress too (an idle collector sends only these)
            self._delivered()

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
