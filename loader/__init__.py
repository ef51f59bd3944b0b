"""Loader: Kafka -> ClickHouse, in batches, idempotently.

    clickhouse           open a clickhouse-connect client (embedded chDB or a server)
    migrations           apply / revert sql/migrations in order
    rows                 Kafka JSON records -> table rows
    kafka_to_clickhouse  the consume -> insert -> commit loop
    query_server         answers `tokenpulse sql` while the loader owns the embedded store
"""
