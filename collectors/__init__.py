"""Collectors: receive OTLP, turn LLM spans into TokenSpan events, write them to Kafka.

    otlp_decode        OTLP request bytes (protobuf or JSON) -> OtlpSpan views
    genai_mapping      OtlpSpan + tenant -> TokenSpan | Rejection | None (not an LLM call)
    kafka_writer       TokenSpan / DeadLetter -> Kafka (acks=all, idempotent), heartbeats
    otlp_http          the OTLP/HTTP receiver that wires the three together (TraceReceiver)
    otlp_grpc          the same receiver behind OTLP/gRPC (TraceService/Export)
    kafka_otlp_ingest  an OpenTelemetry Collector's kafka exporter topic (otlp_proto / otlp_json) as input
    breaker_board      open "stop" alerts per tenant, served at GET /v1/breakers (circuit breaker)
    edge, edge_buffer, edge_forwarder, metrics
                       the edge collector: OTLP/HTTP into a durable SQLite buffer, drained
                       to Kafka in order when the link is up (docs/edge_collector.md)
"""
