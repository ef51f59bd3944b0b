"""Run the collector:  python -m tokenpulse.collectors  (or `tokenpulse collector`).

Inputs, all feeding one TraceReceiver / SpanWriter: OTLP/HTTP (always), OTLP/gRPC
(`grpc_enabled`, port `grpc_port`) and the otelcol kafka exporter topics in `kafka_inputs`.
"""

from __future__ import annotations

import logging
import signal

from tokenpulse.schemas.tenants import load_tenants
from tokenpulse.settings import Settings

from .breaker_board import BreakerBoard, BreakerFeed, KafkaAlertConsumer
from .genai_mapping import UsageConventions
from .kafka_otlp_ingest import check_inputs, start_ingests
from .kafka_writer import HeartbeatThread, SpanWriter
from .otlp_grpc import make_grpc_server
from .otlp_http import TraceReceiver, make_server

log = logging.getLogger("tokenpulse.collector")


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(0)


def run(settings: Settings) -> None:
    cfg = settings.collector
    tenants = load_tenants(cfg.tenants_file)
    check_inputs(cfg.kafka_inputs, tenants)
    writer = SpanWriter(settings.kafka, collector_id=cfg.collector_id, timeout_s=cfg.produce_timeout_s)
    heartbeats = HeartbeatThread(writer, cfg.heartbeat_interval_ms)
    conventions = UsageConventions(cache_separate=frozenset(cfg.cache_counts_separate_providers),
                                   reasoning_separate=frozenset(cfg.reasoning_counts_separate_providers))
    receiver = TraceReceiver(tenants, writer, max_body_bytes=cfg.max_body_bytes, conventions=conventions)
    # The board is rebuilt from the alerts topic by every collector, so no state to hand over.
    board = BreakerBoard() if cfg.breaker_board else None
    feed = None
    if board is not None:
        client_id = f"tokenpulse-{cfg.collector_id}-breakers"
        feed = BreakerFeed(board, lambda: KafkaAlertConsumer(settings.kafka, client_id=client_id))
    server = make_server(receiver, cfg, board)
    grpc_server = None
    if cfg.grpc_enabled:
        grpc_server, _ = make_grpc_server(receiver, host=cfg.host, port=cfg.grpc_port,
                                          max_message_bytes=cfg.max_body_bytes)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # `tokenpulse down` sends SIGTERM
    heartbeats.start()
    if grpc_server is not None:
        grpc_server.start()
        log.info("OTLP/gRPC listening on %s:%d", cfg.host, cfg.grpc_port)
    ingests = start_ingests(settings, writer, conventions)
    if feed is not None:
        feed.start()
        log.info("circuit breaker board on: GET http://%s:%d/v1/breakers", cfg.host, cfg.port)
    log.info("collector %s listening on http://%s:%d/v1/traces (%d tenants) -> Kafka %s",
             cfg.collector_id, cfg.host, cfg.port, len(tenants.tenants), settings.kafka.bootstrap_servers)
    try:
        server.serve_forever(poll_interval=0.2)
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
        log.info("collector stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(Settings())
