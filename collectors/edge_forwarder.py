"""Drain the edge buffer to Kafka, in order, removing records only once Kafka acknowledged them.

Loop (one thread):
    peek the oldest `batch_max` records  ->  send them all (acks=all, idempotent producer)
    ->  wait until every one is acknowledged or failed  ->  advance the buffer by the
    acknowledged ones at once  ->  next batch; on any failure back off (doubling, jitter)
    and try the rest again.

Guarantees and their limits:

* Nothing leaves the buffer unacknowledged, so a Kafka outage of any length loses nothing
  (the receiver keeps accepting until the buffer is full; see edge_buffer.py).
* Order: batch N+1 is sent only after batch N is settled, and the idempotent producer keeps
  order within a partition, so records reach each partition in buffer order. After a
  partial failure the unacknowledged rest is re-sent after what was acknowledged.
* Duplicates: the producer is idempotent within its session, but a record can still reach
  Kafka twice when (a) the process dies between Kafka's ack and `advance` (the window is
  one batch: we advance right after each batch), or (b) a batch is acked by the broker but
  the ack is lost and the records are re-sent by a new producer. The Flink job deduplicates
  on (tenant, trace_id, span_id), which is what makes at-least-once enough here.
* After a failed batch the producer is closed and a fresh one made for the next attempt,
  so an old producer can never re-send behind a new one's back.
* No heartbeats. The main collector's watermark heartbeats say "event time is now" on every
  partition; sent from here they would run ahead of the buffered backlog and turn every
  replayed span late. Forwarded spans may still arrive behind the watermark that other
  collectors' heartbeats drive; the Flink job's late path counts them (they are not lost).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from tokenpulse.core.backoff import Backoff
from tokenpulse.settings import KafkaSettings

from .edge_buffer import BufferedRecord, EdgeBuffer
from .metrics import EdgeCounters

log = logging.getLogger(__name__)

# On stop, how long an in-flight batch may still be acknowledged (fewer re-sends later).
STOP_GRACE_S = 5.0
# How long making a producer may try to reach a broker before the attempt counts as failed.
CONNECT_TIMEOUT_MS = 5000
IDLE_WAIT_S = 1.0


@dataclass(frozen=True)
class Delivery:
    acked: list[int] = field(default_factory=list)  # seqs Kafka acknowledged
    error: str | None = None                         # why the rest was not (None: all acked)


class Sender(Protocol):
    def deliver(self, records: Sequence[BufferedRecord], stop: threading.Event) -> Delivery: ...
    def close(self) -> None: ...


class KafkaSender:
    """Sends a batch with a kafka-python producer and waits for every record's outcome."""

    def __init__(self, make_producer: Callable[[], KafkaProducer]) -> None:
        self._make_producer = make_producer
        self._producer: KafkaProducer | None = None

    @classmethod
    def for_kafka(cls, kafka: KafkaSettings, *, client_id: str, delivery_timeout_ms: int,
                  reconnect_backoff_max_ms: int) -> KafkaSender:
        request_timeout_ms = max(1000, delivery_timeout_ms // 2)
        return cls(lambda: KafkaProducer(
            **kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            compression_type="lz4",
            linger_ms=20,                     # a batch is sent at once; let it fill producer batches
            batch_size=kafka.producer_batch_bytes,
            max_request_size=8 * 1024 * 1024,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=request_timeout_ms,
            max_block_ms=request_timeout_ms,  # bounds send() waiting for metadata when Kafka is away
            bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
            reconnect_backoff_max_ms=reconnect_backoff_max_ms,
            client_id=client_id,
        ))

    def deliver(self, records: Sequence[BufferedRecord], stop: threading.Event) -> Delivery:
        try:
            if self._producer is None:
                self._producer = self._make_producer()
        except Exception as exc:  # noqa: BLE001 - no broker, bad config, ...: all mean "not now"
            return Delivery(error=f"cannot connect a producer: {exc!r}")
        sent, send_error = [], None
        for r in records:
            try:
                sent.append((r.seq, self._producer.send(r.topic, key=r.key, value=r.value)))
            except KafkaError as exc:  # metadata not available within max_block_ms, ...
                send_error = f"send failed: {exc!r}"
                break  # keep order: nothing after a record that was not sent
        self._wait(stop)
        acked = [seq for seq, future in sent if future.succeeded()]
        failed = next((f.exception for _, f in sent if not f.succeeded()), None)
        error = send_error or (f"not acknowledged: {failed!r}" if failed else None)
        if len(acked) < len(records) and error is None:
            error = "stopped before every record was acknowledged"
        if error:
            self.close()  # a fresh producer next time: nothing old can be re-sent behind it
        return Delivery(acked, error)

    def _wait(self, stop: threading.Event) -> None:
        """Until every sent record is acknowledged or failed (the producer's delivery timeout
        ends a wait for an absent broker); after stop(), for at most STOP_GRACE_S more."""
        grace_until = None
        while True:
            try:
                self._producer.flush(timeout=0.5)
                return
            except KafkaTimeoutError:
                pass
            if stop.is_set():
                grace_until = grace_until or time.monotonic() + STOP_GRACE_S
                if time.monotonic() > grace_until:
                    return

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout=0)  # pending records are still in the buffer: drop them here


class Forwarder(threading.Thread):
    def __init__(self, buffer: EdgeBuffer, sender: Sender, counters: EdgeCounters, *,
                 batch_max: int, backoff: Backoff) -> None:
        super().__init__(name="edge-forwarder", daemon=True)
        self._buffer, self._sender, self._counters = buffer, sender, counters
        self._batch_max, self._backoff = batch_max, backoff
        self._stop_event = threading.Event()
        self.kafka_reachable: bool | None = None  # None until the first attempt
        self.last_error: str | None = None

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                if not self.forward_once():
                    self._buffer.wait_for_append(IDLE_WAIT_S)
            except Exception:  # noqa: BLE001 - e.g. a disk error: keep the thread, retry later
                log.exception("forwarding failed; retrying")
                self._stop_event.wait(self._backoff.next_delay())

    def forward_once(self) -> bool:
        """Forward one batch; False when the buffer was empty. Backs off after a failure."""
        batch = self._buffer.peek(self._batch_max)
        if not batch:
            return False
        result = self._sender.deliver(batch, self._stop_event)
        if result.acked:
            # Right after the ack: the smaller this gap, the fewer re-sends after a crash.
            self._counters.add(forwarded=self._buffer.advance(result.acked))
        if result.error is None:
            if self.kafka_reachable is not True:
                log.info("forwarding to Kafka")
            self.kafka_reachable, self.last_error = True, None
            self._backoff.reset()
        else:
            if self.kafka_reachable is not False:  # once per outage; each retry at debug level
                log.warning("Kafka unreachable, buffering (%d record(s) acked of %d): %s",
                            len(result.acked), len(batch), result.error)
            else:
                log.debug("still unreachable: %s", result.error)
            self.kafka_reachable, self.last_error = False, result.error
            self._stop_event.wait(self._backoff.next_delay())
        return True

    def stop(self, timeout_s: float = STOP_GRACE_S + 5) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout_s)
        self._sender.close()
