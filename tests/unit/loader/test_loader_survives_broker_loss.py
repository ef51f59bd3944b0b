"""The loader keeps running when Kafka goes away under it: a failed poll or offset commit is
logged and retried, never fatal (a dead loader stopped all loading until restarted)."""

from kafka.errors import KafkaConnectionError

from tokenpulse.loader.kafka_to_clickhouse import Batch, KafkaToClickHouse, LoaderStats
from tokenpulse.settings import LoaderSettings


class FlakyConsumer:
    def __init__(self) -> None:
        self.polls = self.commits = 0

    def poll(self, max_records, timeout_ms):
        self.polls += 1
        if self.polls == 1:
            raise KafkaConnectionError("111 ECONNREFUSED")
        return []

    def commit(self):
        self.commits += 1
        raise KafkaConnectionError("111 ECONNREFUSED")


class Store:
    def __init__(self) -> None:
        self.inserted = []

    def insert(self, table, data, columns):
        self.inserted.append((table, len(data)))


def loader(consumer, store):
    obj = KafkaToClickHouse.__new__(KafkaToClickHouse)  # no real consumer: only the loop's error handling
    obj.cfg, obj.store, obj.consumer, obj._running = LoaderSettings(batch_max_ms=50), store, consumer, True
    obj.stats = LoaderStats()
    return obj


def test_failed_poll_and_commit_do_not_stop_the_loader():
    consumer, store = FlakyConsumer(), Store()
    l = loader(consumer, store)
    assert l._collect().records == 0 and consumer.polls == 1  # refused: logged, no exception
    assert l._collect().records == 0 and consumer.polls >= 2  # and the loop polls again
    batch = Batch()
    batch.dead_letters.append(["x"])
    batch.records = 1
    l._flush(batch)  # the commit fails: logged, the batch counted as stored
    assert store.inserted == [("dead_letters", 1)] and consumer.commits == 1 and l.stats.batches == 1
