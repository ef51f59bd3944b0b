"""tokenpulse: LLM token-spend observability on OpenTelemetry, Kafka, Flink and ClickHouse."""

__version__ = "0.1.0"
