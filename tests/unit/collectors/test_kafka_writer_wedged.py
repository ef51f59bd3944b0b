"""A producer that stops getting records through while the broker is up must be replaced,
and one waiting out a broker that is really away must not be (seen in the broker_restart
fault drill: a librdkafka producer that never reconnected after the broker restarted)."""

from __future__ import annotations

import threading

import pytest

from tokenpulse.core.kafka_writer import SpanWriter, WriteFailed
from tokenpulse.schemas import topics
from tokenpulse.settings import KafkaSettings

RECORD = (topics.SPANS.name, b"acme/t1", b"{}")


class FakeProducer:
    """librdkafka's surface the writer uses; `wedged` ones never acknowledge anything."""

    def __init__(self, wedged: bool) -> None:
        self.wedged, self.produced = wedged, []
        self._due: list = []
        self._lock = threading.Lock()

    def produce(self, topic, value=None, key=None, partition=None, on_delivery=None):
        self.produced.append((topic, key, value))
        if not self.wedged and on_delivery is not None:
            with self._lock:
                self._due.append(on_delivery)

    def poll(self, timeout):
        with self._lock:
            due, self._due = self._due, []
        for callback in due:
            callback(None, None)
        threading.Event().wait(min(timeout, 0.01))

    def flush(self, timeout):
        return 0


def writer_with(producers: list[FakeProducer], reachable: bool) -> tuple[SpanWriter, list[FakeProducer]]:
    built: list[FakeProducer] = []

    def new_producer(_config):
        built.append(producers.pop(0))
        return built[-1]

    w = SpanWriter(KafkaSettings(bootstrap_servers="127.0.0.1:9"), collector_id="test", timeout_s=0.05,
                   stuck_after_s=0.2, new_producer=new_producer, broker_reachable=lambda: reachable)
    return w, built


def fail_until(writer: SpanWriter, rebuilt: bool, attempts: int = 40) -> None:
    for _ in range(attempts):
        with pytest.raises(WriteFailed, match="did not acknowledge"):
            writer.write_records([RECORD])
        if (writer.rebuilds > 0) == rebuilt:
            return


def test_a_wedged_producer_is_replaced_once_the_broker_has_been_reachable_for_the_bound():
    writer, built = writer_with([FakeProducer(wedged=True), FakeProducer(wedged=False)], reachable=True)
    try:
        fail_until(writer, rebuilt=True)
        assert writer.rebuilds == 1 and len(built) == 2
        assert writer.write_records([RECORD]) == 1  # the new producer gets it through
        assert built[1].produced == [RECORD]
        assert built[0] in writer._abandoned  # kept, never destroyed
    finally:
        writer.close()


def test_a_producer_waiting_for_an_unreachable_broker_is_kept():
    writer, built = writer_with([FakeProducer(wedged=True), FakeProducer(wedged=False)], reachable=False)
    try:
        for _ in range(10):  # 10 x 50 ms timeouts: well past stuck_after_s
            with pytest.raises(WriteFailed):
                writer.write_records([RECORD])
        assert writer.rebuilds == 0 and len(built) == 1
    finally:
        writer._closing.set()


def test_acknowledgements_keep_a_healthy_producer():
    writer, built = writer_with([FakeProducer(wedged=False)], reachable=True)
    try:
        for _ in range(20):
            assert writer.write_records([RECORD]) == 1
        assert writer.rebuilds == 0 and len(built) == 1
    finally:
        writer.close()


def test_a_real_librdkafka_producer_talking_to_a_silent_broker_is_replaced():
    """A listener that accepts connections and never answers: the probe sees a broker, the
    producer gets nothing acknowledged, so the writer builds a new (real) producer."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    silent.settimeout(0.1)
    held: list[socket.socket] = []
    over = threading.Event()

    def hold_connections() -> None:
        while not over.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue

    accepting = threading.Thread(target=hold_connections, daemon=True)
    accepting.start()
    port = silent.getsockname()[1]
    writer = SpanWriter(KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}"), collector_id="test",
                        timeout_s=0.2, stuck_after_s=0.5)
    try:
        fail_until(writer, rebuilt=True, attempts=30)
        assert writer.rebuilds == 1
        assert len(writer._abandoned) == 1 and writer._producer is not writer._abandoned[0]
    finally:
        writer._closing.set()  # not close(): its flush would wait for the silent broker
        over.set()
        accepting.join(timeout=2)
        silent.close()
        for conn in held:
            conn.close()
