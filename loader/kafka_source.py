"""Where the loader reads its records: one small interface over two Kafka clients.

`poll` returns (topic, partition, offset, value) tuples; `commit` commits what was returned
so far (the loader calls it only after the rows are stored: at-least-once); `close` leaves the
group. Both read with the consumer group `LoaderSettings.consumer_group`, auto-commit off,
from the earliest offset when the group has none.

* librdkafka (confluent-kafka, the default): fetching, decompression and record parsing in C,
  ~10x less CPU per record than kafka-python here (bench/README.md, issue #15).
* kafka-python (TOKENPULSE_LOADER_KAFKA_CLIENT=kafka-python): the pure-Python client the
  loader used before; kept as a fallback for platforms without confluent-kafka wheels.
"""

from __future__ import annotations

import logging
from typing import Protocol

from tokenpulse.settings import KafkaSettings, LoaderSettings

log = logging.getLogger(__name__)

Record = tuple[str, int, int, bytes]  # topic, partition, offset, value


class KafkaSource(Protocol):
    def poll(self, max_records: int, timeout_ms: int) -> list[Record]: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class KafkaPythonSource:
    def __init__(self, kafka: KafkaSettings, cfg: LoaderSettings, topics: tuple[str, ...]) -> None:
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(*topics, **kafka.client_options(), group_id=cfg.consumer_group,
                                       enable_auto_commit=False, auto_offset_reset="earliest",
                                       max_poll_records=cfg.batch_max_rows, client_id="tokenpulse-loader")

    def poll(self, max_records: int, timeout_ms: int) -> list[Record]:
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [(tp.topic, tp.partition, r.offset, r.value) for tp, records in polled.items() for r in records]

    def commit(self) -> None:
        self._consumer.commit()

    def close(self) -> None:
        self._consumer.close()


class LibrdkafkaSource:
    def __init__(self, kafka: KafkaSettings, cfg: LoaderSettings, topics: tuple[str, ...]) -> None:
        from confluent_kafka import Consumer

        self._consumer = Consumer({
            **kafka.librdkafka_options(), "group.id": cfg.consumer_group, "client.id": "tokenpulse-loader",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            # librdkafka fetches in the background: with the default fetch.min.bytes = 1 the broker
            # answers every few produced batches, which cost the broker more CPU than the loader
            # saved (bench/consumer_cost.py). The loader batches for a second anyway.
            "fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": 200,
            "logger": logging.getLogger("librdkafka"),  # its log lines through ours (served by consume)
            # the loader's topics may not exist yet on a fresh broker: wait for them, do not fail
            "topic.metadata.refresh.interval.ms": 5000,
        })
        self._consumer.subscribe(list(topics))
        self._returned = False

    def poll(self, max_records: int, timeout_ms: int) -> list[Record]:
        from confluent_kafka import KafkaError

        out: list[Record] = []
        for m in self._consumer.consume(max_records, timeout_ms / 1000):
            err = m.error()
            if err is None:
                out.append((m.topic(), m.partition(), m.offset(), m.value()))
            elif err.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                # transient (broker away, rebalance): librdkafka retries by itself; say so once per event
                log.warning("Kafka: %s", err)
        self._returned = self._returned or bool(out)
        return out

    def commit(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        if not self._returned:
            return  # nothing consumed since the last commit: librdkafka would answer _NO_OFFSET
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError._NO_OFFSET:
                return
            raise
        self._returned = False

    def close(self) -> None:
        self._consumer.close()


def open_source(kafka: KafkaSettings, cfg: LoaderSettings, topics: tuple[str, ...]) -> KafkaSource:
    if cfg.kafka_client == "kafka-python":
        return KafkaPythonSource(kafka, cfg, topics)
    return LibrdkafkaSource(kafka, cfg, topics)
