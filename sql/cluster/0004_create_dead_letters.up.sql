-- GENERATED from sql/migrations/0004_create_dead_letters.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Everything tokenpulse refused, with the reason. Keyed by the Kafka record it came from,
-- so re-reading the dead-letter topic never duplicates a row.
CREATE TABLE IF NOT EXISTS dead_letters_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

-- What clients read and write: rows go to the shard of cityHash64(kafka_topic, kafka_partition, kafka_offset); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS dead_letters ON CLUSTER '{cluster}'
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
ENGINE = Distributed('{cluster}', currentDatabase(), dead_letters_local, cityHash64(kafka_topic, kafka_partition, kafka_offset));
