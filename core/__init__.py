"""What the app side (tokenpulse.sdk) and the server side (collectors, jobs) share.

Turning OTLP spans into tokenpulse events (otlp_decode -> genai_mapping -> span_mapping), the
call fingerprint both the SDK and the mapping compute, the writers of the raw Kafka topics
(kafka_writer for spans, outcome_writer for outcomes), and the pricing compiler (pricing_sql:
a price table as SQL, for the Flink job, `tokenpulse reprice` and the insights).
Dependency-light on purpose: pydantic, PyYAML, packaging and the OpenTelemetry protobufs; the
Kafka writers need confluent-kafka (the `kafka` extra). Nothing here imports the SDK, the collectors' servers, Flink or ClickHouse
(tests/unit/test_layers.py checks it).
"""
