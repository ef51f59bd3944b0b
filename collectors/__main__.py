"""Run the collector:  python -m tokenpulse.collectors  (or `tokenpulse collector`).

Inputs, all feeding one TraceReceiver / SpanWriter: OTLP/HTTP (always), OTLP/gRPC
(`grpc_enabled`, port `grpc_port`) and the otelcol kafka exporter topics in `kafka_inputs`.
HTTP and gRPC share one bound on export requests in flight (`max_inflight_requests`) and,
when `tls_cert_file` is set, one certificate. All inputs count into one CollectorMetrics,
served at GET /metrics on the HTTP port.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable

from tokenpulse.core.kafka_writer import HeartbeatThread, SpanWriter, WriteFailed
from tokenpulse.core.outcome_writer import OutcomeWriter
from tokenpulse.schemas.senders import load_senders
from tokenpulse.schemas.tenants import load_tenants
from tokenpulse.settings import Settings

from .breaker_board import BreakerBoard, BreakerFeed, KafkaAlertConsumer
from .http_server import make_server
from .kafka_otlp_ingest import check_inputs, start_ingests
from .metrics import CollectorMetrics
from .otlp_grpc import make_grpc_server, server_credentials
from .otlp_http import TraceReceiver, server_tls_context
from .outcome_intake import OutcomeIntake

log = logging.getLogger("tokenpulse.collector")

def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(0)

class FailureCountingWriter:
    """The SpanWriter as the Kafka inputs see it: their failed writes are counted too (the
    HTTP and gRPC ones are counted by the receiver)."""

    def __init__(self, writer: SpanWriter, metrics: CollectorMetrics, transport: str) -> None:
        self._writer, self._metrics, self._transport = writer, metrics, transport

    def write(self, spans: Iterable, dead_letters: Iterable = ()) -> int:
        try:
            return self._writer.write(spans, dead_letters)
        except WriteFailed:
            self._metrics.write_failed(self._transport)
            raise

def run(settings: Settings) -> None:
    cfg = settings.collector
    tenants = load_tenants(cfg.tenants_file)
    check_inputs(cfg.kafka_inputs, tenants)
    writer = SpanWriter(settings.kafka, collector_id=cfg.collector_id, timeout_s=cfg.produce_timeout_s)
    heartbeats = HeartbeatThread(writer, cfg.heartbeat_interval_ms)
    senders = load_senders(cfg.senders_file)
    metrics = CollectorMetrics()
    receiver = TraceReceiver(tenants, writer, max_body_bytes=cfg.max_body_bytes, senders=senders,
                             max_inflight=cfg.max_inflight_requests, busy_retry_after_s=cfg.busy_retry_after_s,
                             metrics=metrics)
    # The board is rebuilt from the alerts topic by every collector, so no state to hand over.
    board = BreakerBoard() if cfg.breaker_board else None
    feed = None
    if board is not None:
        client_id = f"tokenpulse-{cfg.collector_id}-breakers"
        feed = BreakerFeed(board, lambda: KafkaAlertConsumer(settings.kafka, client_id=client_id))
    outcome_writer = OutcomeWriter(settings.kafka, client_id=cfg.collector_id, timeout_s=cfg.produce_timeout_s)
    server = make_server(receiver, cfg, board, tls=server_tls_context(cfg), outcomes=OutcomeIntake(outcome_writer))
    grpc_server = None
    if cfg.grpc_enabled:
        grpc_server, _ = make_grpc_server(receiver, host=cfg.host, port=cfg.grpc_port,
                                          max_message_bytes=cfg.max_body_bytes, credentials=server_credentials(cfg))
    scheme = "https" if cfg.tls_enabled else "http"
    signal.signal(signal.SIGTERM, _exit_on_signal)  # `tokenpulse down` sends SIGTERM
    heartbeats.start()
    if grpc_server is not None:
        grpc_server.start()
        log.info("OTLP/gRPC listening on %s:%d%s", cfg.host, cfg.grpc_port, " (TLS)" if cfg.tls_enabled else "")
    ingests = start_ingests(settings, FailureCountingWriter(writer, metrics, "kafka"), senders, tenants)
    metrics.watch_ingests(ingests)
    if feed is not None:
        feed.start()
        log.info("circuit breaker board on: GET %s://%s:%d/v1/breakers", scheme, cfg.host, cfg.port)
    log.info("collector %s listening on %s://%s:%d/v1/traces (%d tenants, at most %d export requests in flight, "
             "metrics at /metrics) -> Kafka %s", cfg.collector_id, scheme, cfg.host, cfg.port, len(tenants.tenants),
             cfg.max_inflight_requests, settings.kafka.bootstrap_servers)
    try:
        server.serve_forever()
    finally:
        # Inputs first, so nothing writes after the producer closes; in-flight gRPC calls
        # get a few seconds to finish.
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait()
        for ingest in ingests:
            ingest.stop()
        if feed is not None:
            feed.stop()
        heartbeats.stop()
        server.server_close()
        writer.close()
        outcome_writer.close()
        log.info("collector stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(Settings())
