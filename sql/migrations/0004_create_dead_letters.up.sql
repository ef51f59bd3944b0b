-- Everything tokenpulse refused, with the reason. Keyed by the Kafka record it came from,
-- so re-reading the dead-letter topic never duplicates a row.
CREATE TABLE IF NOT EXISTS dead_letters
(
    tenant          LowCardinality(String),
    stage           LowCardinality(String),
    reason          String,
    received_at     DateTime64(3, 'UTC'),
    trace_id        Nullable(String),
    span_id         Nullable(String),
    excerpt         String,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)
