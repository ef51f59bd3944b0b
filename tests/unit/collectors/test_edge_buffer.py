"""The edge collector's durable buffer, its forwarder (with fake Kafka producers) and its HTTP face."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.edge import BufferingWriter, make_edge_server
from tokenpulse.collectors.edge_buffer import BufferFull, BufferInUse, EdgeBuffer, OutgoingRecord
from tokenpulse.collectors.edge_forwarder import Forwarder, KafkaSender
from tokenpulse.collectors.metrics import EdgeCounters, render_prometheus
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.core.backoff import Backoff
from tokenpulse.schemas import topics
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.settings import CollectorSettings, EdgeCollectorSettings


def rec(i: int, topic: str = "spans") -> OutgoingRecord:
    return OutgoingRecord(topic, f"k{i}".encode(), f"value-{i}".encode())


def values(records) -> list[bytes]:
    return [r.value for r in records]


@pytest.fixture
def buffer(tmp_path):
    buf = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20)
    yield buf
    buf.close()


def test_peek_is_oldest_first_and_advance_removes_only_what_it_is_given(buffer):
    buffer.append([rec(0), rec(1), rec(2)])
    buffer.append([rec(3)])
    first = buffer.peek(2)
    assert values(first) == [b"value-0", b"value-1"]
    assert values(buffer.peek(10)) == [b"value-0", b"value-1", b"value-2", b"value-3"]  # peek removes nothing
    assert buffer.advance([r.seq for r in first]) == 2
    assert buffer.advance([r.seq for r in first]) == 0  # repeating an advance is harmless
    assert values(buffer.peek(10)) == [b"value-2", b"value-3"]
    stats = buffer.stats()
    assert stats.records == 2 and stats.bytes == rec(2).size + rec(3).size and stats.oldest_appended_ms


def test_records_survive_a_reopen_without_close(tmp_path):
    buf = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20)
    buf.append([rec(i) for i in range(5)])
    buf.advance([buf.peek(1)[0].seq])
    # "Crash": drop the connection without close(); the flock goes with the fd.
    buf._conn.close()
    os.close(buf._lock_fd)
    again = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20)
    assert values(again.peek(10)) == [f"value-{i}".encode() for i in range(1, 5)]
    assert again.stats().records == 4 and again.stats().bytes == sum(rec(i).size for i in range(1, 5))
    again.append([rec(5)])
    assert again.peek(10)[-1].seq > again.peek(10)[-2].seq  # seqs keep growing after a reopen
    again.close()


def test_a_second_owner_is_refused(buffer, tmp_path):
    with pytest.raises(BufferInUse, match="another edge collector"):
        EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20)


def test_full_buffer_refuses_the_whole_append_with_a_clear_error(tmp_path):
    size = rec(0).size
    buf = EdgeBuffer.open(tmp_path / "buf", max_bytes=size * 3)
    buf.append([rec(0), rec(1)])
    with pytest.raises(BufferFull, match=r"edge buffer full: .* refused until Kafka catches up"):
        buf.append([rec(2), rec(3)])  # would be 4 records: none of them is stored
    assert values(buf.peek(10)) == [b"value-0", b"value-1"]
    buf.append([rec(2)])  # exactly at the bound fits
    buf.advance([r.seq for r in buf.peek(2)])  # forwarding frees room
    buf.append([rec(3), rec(4)])
    assert values(buf.peek(10)) == [b"value-2", b"value-3", b"value-4"]
    buf.close()


def test_concurrent_appends_keep_every_record_exactly_once_and_each_request_contiguous(buffer):
    threads, per_thread, per_append = 8, 40, 5

    def work(t: int) -> None:
        for a in range(per_thread):
            buffer.append([OutgoingRecord("spans", None, f"{t}:{a}:{i}".encode()) for i in range(per_append)])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    got = [r.value.decode() for r in buffer.peek(100_000)]
    assert len(got) == len(set(got)) == threads * per_thread * per_append
    for start in range(0, len(got), per_append):  # one append = one contiguous, ordered run
        chunk = got[start:start + per_append]
        assert len({c.rsplit(":", 1)[0] for c in chunk}) == 1
        assert [c.rsplit(":", 1)[1] for c in chunk] == [str(i) for i in range(per_append)]
    for t in range(threads):  # and one thread's appends stay in its order
        mine = [int(c.split(":")[1]) for c in got if c.startswith(f"{t}:")]
        assert mine == sorted(mine)


# --- the forwarder, with a fake kafka-python producer ------------------------------------------
class FakeFuture:
    def __init__(self, exception: Exception | None) -> None:
        self.is_done, self.exception = True, exception

    def succeeded(self) -> bool:
        return self.exception is None


class FakeKafka:
    """Producers that fail whole batches for the first `fail_batches` sends, can fail to
    connect, and can ack only the first `ack_only` records of one batch."""

    def __init__(self, buffer: EdgeBuffer, *, fail_batches: int = 0, fail_connects: int = 0,
                 partial_ack: int | None = None) -> None:
        self.buffer, self.fail_batches, self.fail_connects, self.partial_ack = buffer, fail_batches, fail_connects, partial_ack
        self.log: list[tuple[str, bytes]] = []  # what Kafka stored
        self.buffered_at_send: list[int] = []   # how much was still buffered when each batch went out
        self.producers = 0

    def make_producer(self):
        if self.fail_connects:
            self.fail_connects -= 1
            raise KafkaConnectionError("connection refused")
        self.producers += 1
        return FakeProducer(self)


class FakeProducer:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka, self.pending, self.closed = kafka, [], False

    def send(self, topic, key=None, value=None):
        self.pending.append((topic, value))
        fail = self.kafka.fail_batches > 0
        if self.kafka.partial_ack is not None and len(self.pending) > self.kafka.partial_ack:
            fail = True
        if not fail:
            self.kafka.log.append((topic, value))
        return FakeFuture(KafkaTimeoutError("no ack") if fail else None)

    def flush(self, timeout=None):
        self.kafka.buffered_at_send.append(self.kafka.buffer.stats().records)
        if self.kafka.fail_batches > 0:
            self.kafka.fail_batches -= 1
        self.kafka.partial_ack = None
        self.pending = []

    def close(self, timeout=None):
        self.closed = True


def forward_all(buffer: EdgeBuffer, kafka: FakeKafka, *, batch_max: int = 7, max_rounds: int = 100) -> Forwarder:
    counters = EdgeCounters()
    forwarder = Forwarder(buffer, KafkaSender(kafka.make_producer), counters, batch_max=batch_max,
                          backoff=Backoff(0.0001, 0.001))
    for _ in range(max_rounds):
        if not forwarder.forward_once():
            break
    return forwarder


def test_forwarder_retries_failed_batches_and_forwards_everything_in_order_exactly_once(buffer):
    sent = [rec(i) for i in range(30)]
    buffer.append(sent)
    kafka = FakeKafka(buffer, fail_batches=3, fail_connects=2)
    forwarder = forward_all(buffer, kafka)
    assert [v for _, v in kafka.log] == values(sent)  # in order, exactly once
    # The failed batches went out with everything still buffered: nothing advanced before an ack.
    assert kafka.buffered_at_send[:4] == [30, 30, 30, 30]
    assert buffer.stats().records == 0 and forwarder._counters.forwarded == 30
    assert forwarder.kafka_reachable is True and forwarder.last_error is None
    assert kafka.producers == 4  # a fresh producer after each failed batch


def test_partially_acked_batch_advances_the_acked_records_and_resends_only_the_rest(buffer):
    buffer.append([rec(i) for i in range(10)])
    kafka = FakeKafka(buffer, partial_ack=4)
    forwarder = Forwarder(buffer, KafkaSender(kafka.make_producer), EdgeCounters(), batch_max=10,
                          backoff=Backoff(0.0001, 0.001))
    forwarder.forward_once()
    assert forwarder.kafka_reachable is False and "no ack" in forwarder.last_error
    assert values(buffer.peek(10)) == [f"value-{i}".encode() for i in range(4, 10)]
    forwarder.forward_once()
    assert [v for _, v in kafka.log] == [f"value-{i}".encode() for i in range(10)]
    assert buffer.stats().records == 0


def test_forwarder_thread_drains_appends_as_they_come(buffer):
    kafka = FakeKafka(buffer, fail_batches=2)
    forwarder = Forwarder(buffer, KafkaSender(kafka.make_producer), EdgeCounters(), batch_max=50,
                          backoff=Backoff(0.001, 0.01))
    forwarder.start()
    try:
        for i in range(0, 200, 20):
            buffer.append([rec(j) for j in range(i, i + 20)])
        for _ in range(500):
            if buffer.stats().records == 0 and len(kafka.log) == 200:
                break
            time.sleep(0.01)
    finally:
        forwarder.stop()
    assert [v for _, v in kafka.log] == [f"value-{i}".encode() for i in range(200)]


# --- the receiver face and the metrics ---------------------------------------------------------
TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")])])


def test_receiver_buffers_spans_and_dead_letters_and_answers_503_when_full(tmp_path, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    span_factory.span(attributes={**LLM_ATTRS, "gen_ai.usage.output_tokens": -3})
    body = span_factory.protobuf()
    buf, counters = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20), EdgeCounters()
    receiver = TraceReceiver(TENANTS, BufferingWriter(buf, counters), max_body_bytes=1 << 20)
    export = lambda: receiver.export(body, content_type="application/x-protobuf",  # noqa: E731
                                     content_encoding="", api_key="k-acme")
    assert export().status == 200
    assert [r.topic for r in buf.peek(10)] == [topics.SPANS.name, topics.DEAD_LETTERS.name]
    buf.max_bytes = buf.stats().bytes * 5 // 2  # room for one more request, not two
    assert export().status == 200
    full = export()
    assert full.status == 503 and b"edge buffer refused" in full.body  # the sender learns why, not "Kafka"
    assert counters.snapshot() == {"received": 2, "dead_letters": 2, "refused": 2, "forwarded": 0}
    text = render_prometheus(counters, buf.stats(), now_ms=0, kafka_reachable=None)
    assert "tokenpulse_edge_refused_total 2\n" in text and "tokenpulse_edge_buffered_spans 4\n" in text
    assert "# TYPE tokenpulse_edge_received_total counter" in text
    buf.close()


def test_http_server_refuses_with_retry_after_and_serves_health_and_metrics(tmp_path, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    body = span_factory.protobuf()
    buf, counters = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20), EdgeCounters()
    receiver = TraceReceiver(TENANTS, BufferingWriter(buf, counters), max_body_bytes=1 << 20)
    forwarder = Forwarder(buf, KafkaSender(FakeKafka(buf).make_producer), counters, batch_max=10,
                          backoff=Backoff(0.001, 0.01))  # not started: everything stays buffered
    cfg = EdgeCollectorSettings(port=0, refused_retry_after_s=7)
    server = make_edge_server(receiver, buf, forwarder, counters, cfg, CollectorSettings(host="127.0.0.1", port=0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def post():
        req = urllib.request.Request(f"{url}/v1/traces", data=body, headers={
            "Content-Type": "application/x-protobuf", "Authorization": "Bearer k-acme"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, resp.headers
        except urllib.error.HTTPError as err:
            return err.code, err.headers

    try:
        assert post()[0] == 200
        buf.max_bytes = buf.stats().bytes  # now full
        status, headers = post()
        assert status == 503 and headers["Retry-After"] == "7"
        with urllib.request.urlopen(f"{url}/health") as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "full" and doc["buffered_spans"] == 1 and doc["refused"] == 1
        assert doc["kafka_reachable"] is None and doc["oldest_buffered_age_s"] >= 0
        with urllib.request.urlopen(f"{url}/metrics") as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "tokenpulse_edge_received_total 1\n" in resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        buf.close()
