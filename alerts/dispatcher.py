"""The alert dispatcher: Kafka alerts topic -> durable outbox -> hooks -> outcomes topic.

Flow of one poll:
  1. poll a batch of records from topics.ALERTS (manual offset commits);
  2. parse each as an `Alert`; a record that does not parse is logged with its
     partition/offset and skipped (it can never become valid by retrying);
  3. enqueue each alert into the sqlite outbox (`Deliveries.submit`; each enqueue is its
     own committed transaction) — this wakes the hook workers;
  4. commit the Kafka offsets.

Commit order is outbox first, then Kafka: a crash between the two makes Kafka redeliver
alerts the outbox already holds, and the outbox's UNIQUE(hook, alert_id, state) drops
them. The reverse order could lose an alert. If the outbox cannot be written, the
exception stops the dispatcher without committing, so nothing is skipped.

Delivery runs on the hook workers (alerts/delivery.py), never on this loop, so a slow
hook cannot stall consumption or the consumer group's heartbeats. Each final outcome is
published as a `DispatchOutcome` to topics.ALERT_DISPATCHES.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from tokenpulse.processes import announce_ready
from tokenpulse.schemas import topics
from tokenpulse.schemas.alerts import Alert, DispatchOutcome
from tokenpulse.settings import AlertSettings, KafkaSettings

from .config import HooksConfig
from .delivery import Deliveries, Publish, Send
from .hooks import send as http_send
from .outbox import Outbox

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
MAX_POLL_RECORDS = 500
PRUNE_EVERY_S = 3600


class KafkaOutcomePublisher:
    """Publishes each DispatchOutcome to topics.ALERT_DISPATCHES (acks=all, idempotent)."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
        self._producer = KafkaProducer(
            **kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            # A hook worker calls this; never let a missing broker hold it for a minute.
            max_block_ms=5000,
            client_id="tokenpulse-alert-dispatcher",
        )
        self._timeout_s = timeout_s

    def __call__(self, outcome: DispatchOutcome) -> None:
        future = self._producer.send(topics.ALERT_DISPATCHES.name, key=outcome.dedupe_key.encode(),
                                     value=outcome.model_dump_json().encode())
        future.add_errback(lambda exc: log.warning("dispatch outcome of alert %s (hook %s) not published: %s",
                                                   outcome.alert_id, outcome.hook, exc))

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


class AlertDispatcher:
    def __init__(self, kafka: KafkaSettings, settings: AlertSettings, hooks: HooksConfig, outbox_path: Path | str,
                 *, publish: Publish | None = None, consumer: Any = None, send: Send = http_send) -> None:
        """`publish` and `consumer` are injectable for tests; by default both talk to Kafka."""
        self._kafka, self._settings, self._hooks = kafka, settings, hooks
        self._outbox = Outbox(outbox_path)
        self._own_publisher = KafkaOutcomePublisher(kafka) if publish is None else None
        self.deliveries = Deliveries(hooks, self._outbox, publish or self._own_publisher, send=send)
        self._consumer = consumer
        self._stopping = threading.Event()
        self._closed = False

    def run(self) -> None:
        """Consume until `stop()` (or an exception such as SystemExit); then shut down cleanly."""
        try:
            if self._consumer is None:
                self._consumer = self._make_consumer()
            self._consumer.subscribe([topics.ALERTS.name])
            self.deliveries.start()
            log.info("alert dispatcher running: %d hooks (%s), outbox %s, consuming %s as group %s",
                     len(self._hooks.hooks), ", ".join(self._hooks.names()) or "none", self._outbox.path,
                     topics.ALERTS.name, self._settings.consumer_group)
            announce_ready()
            next_prune = 0.0
            while not self._stopping.is_set():
                self.poll_once()
                if time.monotonic() >= next_prune:
                    self.prune_outbox()
                    next_prune = time.monotonic() + PRUNE_EVERY_S
        finally:
            self.close()

    def poll_once(self) -> int:
        """One poll: parse, enqueue, then commit offsets. Returns the records read."""
        batches = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
        records = [r for partition_records in batches.values() for r in partition_records]
        for record in records:
            self._handle(record)
        if records:
            try:
                self._consumer.commit()
            except Exception as exc:  # noqa: BLE001 - e.g. a rebalance; redelivery is deduplicated
                log.warning("offset commit failed (%s); the records will be read again and deduplicated", exc)
        return len(records)

    def prune_outbox(self, now_ms: int | None = None) -> int:
        """Forget incidents resolved longer ago than the retention (the outbox would grow forever)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        deleted = self._outbox.prune(now_ms - self._settings.outbox_retention_days * 86_400_000)
        if deleted:
            log.info("outbox: forgot %d delivery rows of incidents resolved over %d days ago",
                     deleted, self._settings.outbox_retention_days)
        return deleted

    def stop(self) -> None:
        """Ask `run()` to return after the current poll; safe from any thread."""
        self._stopping.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._consumer is not None:
            # autocommit=False: offsets are committed only after the outbox holds the records.
            self._consumer.close(autocommit=False)
        self.deliveries.stop()
        if self._own_publisher is not None:
            self._own_publisher.close()
        self._outbox.close()
        log.info("alert dispatcher stopped")

    def _handle(self, record: Any) -> None:
        if record.value is None:
            return  # a tombstone from compaction of the alerts topic: nothing to deliver
        try:
            alert = Alert.model_validate_json(record.value)
        except ValueError as exc:  # pydantic's ValidationError included
            log.warning("skipping unreadable alert record %s partition %d offset %d: %s",
                        record.topic, record.partition, record.offset, _first_line(exc))
            return
        added = self.deliveries.submit(alert)
        log.debug("alert %s %s (%s): %d deliveries queued", alert.alert_id, alert.state.value, alert.dedupe_key, added)

    def _make_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            **self._kafka.client_options(),
            group_id=self._settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="tokenpulse-alert-dispatcher",
        )


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return " ".join(text.splitlines()[:3])[:300]
