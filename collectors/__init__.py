"""Collectors: receive OTLP, turn LLM spans into TokenSpan events, write them to Kafka.

    otlp_decode     OTLP request bytes (protobuf or JSON) -> OtlpSpan views
    genai_mapping   OtlpSpan + tenant -> TokenSpan | Rejection | None (not an LLM call)
    kafka_writer    TokenSpan / DeadLetter -> Kafka (acks=all, idempotent), heartbeats
    otlp_http       the OTLP/HTTP receiver that wires the three together
"""
