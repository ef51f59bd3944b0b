"""Ingest the traces an OpenTelemetry Collector's kafka exporter writes to Kafka.

Run alone with  python -m tokenpulse.collectors.kafka_otlp_ingest, or let the collector
start it (both read TOKENPULSE_COLLECTOR_KAFKA_INPUTS). One thread per configured input:

  wait for the input topic  ->  poll records  ->  decode each (otlp_proto | otlp_json)
  -> map its spans under the input's configured tenant  ->  SpanWriter (spans + dead letters,
  acks=all)  ->  commit the records' offsets.

Offsets are committed only after Kafka acknowledged the writes, so a crash or a failed
write re-reads the records: delivery is at-least-once, and the Flink job's dedup on
(tenant, trace_id, span_id) keeps a re-read span from being counted twice. A record that
cannot be decoded becomes a dead letter naming its topic, partition and offset.

Kafka carries no API key: the tenant comes from configuration, so only that tenant's
collector may be able to write the topic (Kafka ACLs are the tenant boundary here).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tokenpulse.core.backoff import Backoff
from tokenpulse.core.genai_mapping import MappingRules
from tokenpulse.core.kafka_writer import HeartbeatThread, SpanWriter, WriteFailed
from tokenpulse.core.otlp_decode import MalformedRequest, decode
from tokenpulse.core.span_mapping import map_spans
from tokenpulse.schemas.events import ContextSpan, DeadLetter, TokenSpan
from tokenpulse.schemas.senders import SenderCatalog, load_senders
from tokenpulse.schemas.tenants import TenantDirectory, load_tenants
from tokenpulse.settings import KafkaInput, KafkaSettings, Settings

log = logging.getLogger(__name__)

MEDIA_TYPES = {"otlp_proto": "application/x-protobuf", "otlp_json": "application/json"}
MAX_BACKOFF_S = 30.0

@dataclass(frozen=True)
class InputRecord:
    partition: int
    offset: int
    value: bytes | None

class InputConsumer(Protocol):
    """The few consumer operations the ingest needs (kafka-python below, fakes in tests)."""

    def poll(self, timeout_ms: int) -> list[InputRecord]: ...
    def commit(self, next_offsets: dict[int, int]) -> None: ...
    def rewind(self, first_offsets: dict[int, int]) -> None: ...
    def close(self) -> None: ...

class InputTopicMissing(RuntimeError):
    pass

@dataclass
class Translated:
    spans: list[TokenSpan | ContextSpan] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: int = 0

def translate(records: list[InputRecord], source: KafkaInput, *, received_ms: int,
              rules: MappingRules | None = None) -> Translated:
    """Decode and map a batch of records; an undecodable record becomes one dead letter."""
    out = Translated()
    for record in records:
        try:
            if record.value is None:
                raise MalformedRequest("record has no value")
            spans = decode(record.value, MEDIA_TYPES[source.encoding])
        except MalformedRequest as exc:
            out.dead.append(_undecodable(record, source, str(exc), received_ms))
            continue
        mapped = map_spans(spans, tenant=source.tenant, received_ms=received_ms, rules=rules)
        out.spans += mapped.accepted
        out.dead += mapped.dead
        out.ignored += mapped.ignored
    return out


def _undecodable(record: InputRecord, source: KafkaInput, why: str, received_ms: int) -> DeadLetter:
    where = {"topic": source.topic, "partition": record.partition, "offset": record.offset,
             "encoding": source.encoding, "bytes": len(record.value or b"")}
    # The excerpt names the record, never its bytes: they may hold prompt content.
    return DeadLetter(
        tenant=source.tenant, stage="collector", received_ms=received_ms, excerpt=json.dumps(where),
        reason=f"undecodable {source.encoding} record at {source.topic}[{record.partition}]@{record.offset}: {why}"[:2000],
    )


class KafkaInputConsumer:
    """InputConsumer over kafka-python: one topic, the input's consumer group, manual commits."""

    def __init__(self, kafka: KafkaSettings, source: KafkaInput, *, client_id: str) -> None:
        from kafka import KafkaConsumer

        self._topic = source.topic
        self._consumer = KafkaConsumer(**kafka.client_options(), group_id=source.consumer_group,
                                       enable_auto_commit=False, auto_offset_reset="earliest",
                                       max_poll_records=500, client_id=client_id)
        try:
            # Subscribing to a missing topic makes kafka-python log an error on every metadata
            # retry; check first, and the ingest thread retries quietly until it exists.
            if not self._consumer.partitions_for_topic(source.topic):
                raise InputTopicMissing(f"input topic {source.topic} does not exist (yet)")
            self._consumer.subscribe([source.topic])
        except BaseException:
            self._consumer.close()
            raise

    def poll(self, timeout_ms: int) -> list[InputRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        return [InputRecord(r.partition, r.offset, r.value) for recs in batches.values() for r in recs]

    def commit(self, next_offsets: dict[int, int]) -> None:
        from kafka import TopicPartition
        from kafka.errors import CommitFailedError
        from kafka.structs import OffsetAndMetadata

        try:
            self._consumer.commit({TopicPartition(self._topic, p): OffsetAndMetadata(o, "", -1)
                                   for p, o in next_offsets.items()})
        except CommitFailedError as exc:
            # A rebalance moved the partitions: their new owner re-reads these records,
            # which the Flink dedup absorbs.
            log.warning("%s: commit refused after a rebalance (%s); records will be re-read", self._topic, exc)

    def rewind(self, first_offsets: dict[int, int]) -> None:
        from kafka import TopicPartition

        for p, o in first_offsets.items():
            self._consumer.seek(TopicPartition(self._topic, p), o)

    def close(self) -> None:
        self._consumer.close()


@dataclass
class IngestStats:
    records: int = 0
    spans: int = 0
    dead_letters: int = 0
    ignored: int = 0


class KafkaOtlpIngest(threading.Thread):
    """Follows one input until stop(): translate each polled batch, write it, then commit.
    A failed write rewinds to the batch's first offsets and retries it after a backoff."""

    def __init__(self, source: KafkaInput, writer: SpanWriter, consumer_factory: Callable[[], InputConsumer], *,
                 rules: MappingRules | None = None, poll_timeout_ms: int = 500,
                 retry_s: float = 2.0) -> None:
        super().__init__(name=f"kafka-ingest-{source.topic}", daemon=True)
        self.source, self._writer, self._factory = source, writer, consumer_factory
        self._rules, self._poll_timeout_ms, self._retry_s = rules or MappingRules(), poll_timeout_ms, retry_s
        self._stopping = threading.Event()
        self.stats = IngestStats()

    def run(self) -> None:
        announced_missing = False
        while not self._stopping.is_set():
            try:
                consumer = self._factory()
            except InputTopicMissing as exc:
                if not announced_missing:  # say it once, then wait quietly for the topic
                    log.warning("%s; checking every %.0f s", exc, self._retry_s)
                    announced_missing = True
                self._stopping.wait(self._retry_s)
                continue
            except Exception as exc:  # noqa: BLE001 - broker down: keep trying
                log.warning("cannot read %s yet (%s); retrying in %.0f s", self.source.topic, exc, self._retry_s)
                self._stopping.wait(self._retry_s)
                continue
            log.info("ingesting %s (%s) as tenant %s, group %s", self.source.topic, self.source.encoding,
                     self.source.tenant, self.source.consumer_group)
            try:
                self._follow(consumer)
            except Exception:  # noqa: BLE001 - uncommitted records are re-read by the next consumer
                log.exception("lost %s; reconnecting in %.0f s", self.source.topic, self._retry_s)
                self._stopping.wait(self._retry_s)
            finally:
                consumer.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def _follow(self, consumer: InputConsumer) -> None:
        backoff = Backoff(self._retry_s, MAX_BACKOFF_S)
        while not self._stopping.is_set():
            records = consumer.poll(self._poll_timeout_ms)
            if not records:
                continue
            if self.handle(consumer, records):
                backoff.reset()
            else:
                self._stopping.wait(backoff.next_delay())

    def handle(self, consumer: InputConsumer, records: list[InputRecord]) -> bool:
        """Write one polled batch and commit it; False (rewound, nothing committed) if Kafka
        did not acknowledge the writes."""
        batch = translate(records, self.source, received_ms=int(time.time() * 1000), rules=self._rules)
        try:
            if batch.spans or batch.dead:
                self._writer.write(batch.spans, batch.dead)
        except WriteFailed as exc:
            log.warning("%s: %s; the batch will be re-read", self.source.topic, exc)
            consumer.rewind(_first_offsets(records))
            return False
        consumer.commit(_next_offsets(records))
        s = self.stats
        s.records += len(records)
        s.spans += len(batch.spans)
        s.dead_letters += len(batch.dead)
        s.ignored += batch.ignored
        if batch.dead:
            log.info("%s: %d dead letter(s); first reason: %s", self.source.topic, len(batch.dead), batch.dead[0].reason)
        return True


def _first_offsets(records: list[InputRecord]) -> dict[int, int]:
    first: dict[int, int] = {}
    for r in records:
        first[r.partition] = min(r.offset, first.get(r.partition, r.offset))
    return first


def _next_offsets(records: list[InputRecord]) -> dict[int, int]:
    nxt: dict[int, int] = {}
    for r in records:
        nxt[r.partition] = max(r.offset + 1, nxt.get(r.partition, 0))
    return nxt


def check_inputs(inputs: list[KafkaInput], tenants: TenantDirectory) -> None:
    """Refuse to start with an input mapped to a tenant the tenants file does not know."""
    known = {t.id for t in tenants.tenants}
    for source in inputs:
        if source.tenant not in known:
            raise SystemExit(f"kafka input {source.topic}: tenant {source.tenant!r} is not in the tenants file "
                             f"({', '.join(sorted(known))})")


def start_ingests(settings: Settings, writer: SpanWriter, senders: SenderCatalog,
                  tenants: TenantDirectory) -> list[KafkaOtlpIngest]:
    """One started ingest thread per configured input (check_inputs ran: every tenant exists)."""
    cfg = settings.collector
    threads = []
    teams = {t.id: t.service_teams for t in tenants.tenants}
    for source in cfg.kafka_inputs:
        client_id = f"tokenpulse-{cfg.collector_id}-ingest-{source.topic}"
        factory = lambda source=source, client_id=client_id: KafkaInputConsumer(settings.kafka, source, client_id=client_id)  # noqa: E731
        rules = MappingRules(senders=senders, service_teams=teams.get(source.tenant, {}))
        thread = KafkaOtlpIngest(source, writer, factory, rules=rules)
        thread.start()
        threads.append(thread)
    return threads


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(0)


def run(settings: Settings) -> None:
    """The ingest on its own, without the HTTP/gRPC receivers."""
    cfg = settings.collector
    if not cfg.kafka_inputs:
        raise SystemExit("no inputs: set TOKENPULSE_COLLECTOR_KAFKA_INPUTS, e.g. "
                         "'[{\"topic\": \"otlp_spans\", \"encoding\": \"otlp_proto\", \"tenant\": \"acme\"}]'")
    tenants = load_tenants(cfg.tenants_file)
    check_inputs(cfg.kafka_inputs, tenants)
    writer = SpanWriter(settings.kafka, collector_id=cfg.collector_id, timeout_s=cfg.produce_timeout_s)
    # This process writes spans, so it also advances event time on every partition.
    heartbeats = HeartbeatThread(writer, cfg.heartbeat_interval_ms)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    heartbeats.start()
    ingests = start_ingests(settings, writer, load_senders(cfg.senders_file), tenants)
    try:
        while True:
            time.sleep(1.0)  # SIGTERM raises SystemExit here
    finally:
        for thread in ingests:
            thread.stop()
        heartbeats.stop()
        writer.close()
        log.info("kafka ingest stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(Settings())
