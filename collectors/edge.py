"""Run the edge collector:  python -m tokenpulse.collectors.edge

It runs next to an edge runtime and answers OTLP/HTTP like the main collector (the same
TraceReceiver: API key -> tenant, mapping, dead letters, the same status codes), but
instead of waiting for Kafka it stores the request's records in the durable local buffer
and answers 200 as soon as they are fsync'd, so the app never waits for the WAN:

    app --OTLP/HTTP--> TraceReceiver --BufferingWriter--> EdgeBuffer (SQLite, on disk)
                                                              |
                                       Forwarder thread: peek -> Kafka (acks=all) -> advance

Records are the exact Kafka records the main collector writes (same topics, keys and
JSON), so downstream cannot tell the paths apart. When the buffer is full, requests get
503 with Retry-After and the spans stay with the sender's retry; nothing accepted is
dropped. It sends no watermark heartbeats (edge_forwarder.py says why). Guarantees,
sizing and measurements: docs/edge_collector.md.

GET /health is JSON (status, buffered spans and bytes, oldest buffered age, forwarded,
kafka reachable); GET /metrics is Prometheus text.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import time
from collections.abc import Iterable
from http import HTTPStatus

from tokenpulse.core.backoff import Backoff
from tokenpulse.core.kafka_writer import WriteFailed, dead_letter_record, span_record
from tokenpulse.schemas.events import DeadLetter, TokenSpan
from tokenpulse.schemas.senders import load_senders
from tokenpulse.schemas.tenants import load_tenants
from tokenpulse.settings import CollectorSettings, EdgeCollectorSettings, Settings

from .edge_buffer import BufferFull, EdgeBuffer, OutgoingRecord
from .edge_forwarder import Forwarder, KafkaSender
from .http_server import CollectorServer
from .metrics import CONTENT_TYPE, EdgeCounters, render_prometheus
from .otlp_http import Reply, TraceReceiver

log = logging.getLogger("tokenpulse.edge")

class BufferingWriter:
    """What TraceReceiver writes to: SpanWriter's interface, backed by the buffer.

    Records are built by the same functions as SpanWriter's (kafka_writer.span_record, dead_letter_record). A full or
    unwritable buffer raises WriteFailed, which the receiver turns into a 503."""

    def __init__(self, buffer: EdgeBuffer, counters: EdgeCounters) -> None:
        self._buffer, self._counters = buffer, counters

    def write(self, spans: Iterable[TokenSpan], dead_letters: Iterable[DeadLetter] = ()) -> int:
        span_records = [OutgoingRecord(*span_record(s)) for s in spans]
        dead_records = [OutgoingRecord(*dead_letter_record(d)) for d in dead_letters]
        records = span_records + dead_records
        try:
            self._buffer.append(records)
        except (BufferFull, sqlite3.Error) as exc:
            self._counters.add(refused=len(records))
            raise WriteFailed(f"edge buffer refused {len(records)} record(s): {exc}") from exc
        self._counters.add(received=len(span_records), dead_letters=len(dead_records))
        return len(records)

def health(buffer: EdgeBuffer, forwarder: Forwarder, counters: EdgeCounters, collector_id: str) -> dict:
    stats, now_ms = buffer.stats(), int(time.time() * 1000)
    reachable = forwarder.kafka_reachable
    status = "ok" if reachable is not False else "buffering"  # buffering: Kafka away, spans kept here
    if stats.bytes >= 0.95 * stats.max_bytes:
        status = "full"
    return {
        "status": status,
        "collector_id": collector_id,
        "buffered_spans": stats.records,
        "buffered_bytes": stats.bytes,
        "max_buffer_bytes": stats.max_bytes,
        "oldest_buffered_age_s": round((now_ms - stats.oldest_appended_ms) / 1000, 3) if stats.oldest_appended_ms else 0,
        **counters.snapshot(),
        "kafka_reachable": reachable,
        "last_forward_error": forwarder.last_error,
    }


def make_edge_server(receiver: TraceReceiver, buffer: EdgeBuffer, forwarder: Forwarder, counters: EdgeCounters,
                     cfg: EdgeCollectorSettings, http: CollectorSettings) -> CollectorServer:
    """The main collector's server (POST /v1/traces exactly as there), with the edge's own
    GET routes and a Retry-After on every 503 (on the edge, 503 means "buffer full")."""
    def health_reply() -> Reply:
        doc = health(buffer, forwarder, counters, cfg.collector_id)
        return Reply(HTTPStatus.OK, json.dumps(doc).encode(), "application/json")

    def metrics_reply() -> Reply:
        text = render_prometheus(counters, buffer.stats(), now_ms=int(time.time() * 1000),
                                 kafka_reachable=forwarder.kafka_reachable)
        return Reply(HTTPStatus.OK, text.encode(), CONTENT_TYPE)

    # no breaker board and no outcome intake on the edge
    return CollectorServer(receiver, http, get_routes={"/health": health_reply, "/metrics": metrics_reply},
                           retry_after_on_503_s=cfg.refused_retry_after_s)


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(0)


def run(settings: Settings) -> None:
    cfg = settings.edge
    tenants = load_tenants(cfg.tenants_file)
    buffer_dir = cfg.resolved_buffer_dir(settings.paths)
    buffer = EdgeBuffer.open(buffer_dir, max_bytes=cfg.max_buffer_bytes)
    counters = EdgeCounters()
    # Mapping conventions are the main collector's, so a span maps the same on both paths.
    receiver = TraceReceiver(tenants, BufferingWriter(buffer, counters), max_body_bytes=cfg.max_body_bytes,
                             senders=load_senders(settings.collector.senders_file))
    sender = KafkaSender.for_kafka(settings.kafka, client_id=f"tokenpulse-{cfg.collector_id}",
                                   delivery_timeout_ms=cfg.delivery_timeout_ms,
                                   reconnect_backoff_max_ms=cfg.retry_backoff_max_ms)
    forwarder = Forwarder(buffer, sender, counters, batch_max=cfg.forward_batch_max,
                          backoff=Backoff(cfg.retry_backoff_min_ms / 1000, cfg.retry_backoff_max_ms / 1000, jitter=True))
    http = settings.collector.model_copy(update={"host": cfg.host, "port": cfg.port, "max_body_bytes": cfg.max_body_bytes})
    server = make_edge_server(receiver, buffer, forwarder, counters, cfg, http)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    stats = buffer.stats()
    forwarder.start()
    log.info("edge collector %s listening on http://%s:%d/v1/traces (%d tenants) -> buffer %s "
             "(%d record(s), %d of %d bytes) -> Kafka %s", cfg.collector_id, cfg.host, cfg.port,
             len(tenants.tenants), buffer_dir, stats.records, stats.bytes, stats.max_bytes,
             settings.kafka.bootstrap_servers)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        forwarder.stop()
        buffer.close()
        log.info("edge collector stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # kafka-python logs every failed reconnect at ERROR; during an outage that is the normal
    # state here. The forwarder logs each outage once with the reason (and /health shows it).
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    run(Settings())
