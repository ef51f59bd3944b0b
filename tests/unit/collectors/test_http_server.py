"""The collector's HTTP server holds connections on its event loop, not a thread each
(collectors/http_server.py); sizes here are small, the 2,000-connection figure is
bench/collector_connections.py's."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from test_breaker_board import TENANTS, alert  # the board tests' tenants (key k-acme) and alerts

from tokenpulse.collectors.breaker_board import BreakerBoard
from tokenpulse.collectors.http_server import make_server
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.settings import CollectorSettings

LLM_ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}


def one_llm_span(span_factory) -> bytes:
    span_factory.span(attributes=LLM_ATTRS)
    return span_factory.protobuf()


class CountingWriter:
    def __init__(self) -> None:
        self.spans = 0

    def write(self, spans, dead_letters=()):
        self.spans += len(spans)
        return len(spans)


def request(sock: socket.socket, raw: bytes) -> bytes:
    """Send one HTTP/1.1 request on `sock` and read one reply (head + Content-Length body)."""
    sock.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def server():
    board = BreakerBoard(start_version=1)
    settings = CollectorSettings(host="127.0.0.1", port=0, breaker_max_wait_s=30, max_inflight_requests=8)
    srv = make_server(TraceReceiver(TENANTS, CountingWriter(), max_body_bytes=1 << 20, max_inflight=8), settings, board)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, board, thread
    srv.shutdown()
    srv.server_close()


def test_idle_connections_and_long_polls_cost_no_thread_each(server, span_factory):
    srv, board, _ = server
    threads_before = threading.active_count()
    idle = []
    for _ in range(300):  # keep-alive connections as exporters leave them: one request answered
        s = socket.create_connection(srv.server_address, timeout=10)
        assert request(s, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        idle.append(s)
    polls = []
    for _ in range(50):
        s = socket.create_connection(srv.server_address, timeout=10)
        s.sendall(b"GET /v1/breakers?since=1&wait_s=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-acme\r\n\r\n")
        polls.append(s)
    try:
        assert threading.active_count() - threads_before <= 2, "a thread per connection is back"
        # A new export still goes through, and a held connection still answers.
        fresh = socket.create_connection(srv.server_address, timeout=10)
        body = one_llm_span(span_factory)
        reply = request(fresh, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        b"Authorization: Bearer k-acme\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert srv.receiver.writer.spans == 1
        assert request(idle[123], b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        # Every long poll is still waiting (no change yet) ...
        for s in polls:
            s.settimeout(0.01)
            with pytest.raises(TimeoutError):
                s.recv(1)
            s.settimeout(10)
        # ... and a change of the tenant's board wakes all of them.
        board.apply(alert("s1"))
        for s in polls:
            reply = request(s, b"")
            assert reply.startswith(b"HTTP/1.1 200") and b'"sessions": [{' in reply
    finally:
        for s in idle + polls:
            s.close()


def test_shutdown_answers_waiting_long_polls_and_returns(server):
    srv, _, thread = server
    polls = [socket.create_connection(srv.server_address, timeout=10) for _ in range(5)]
    for s in polls:
        s.sendall(b"GET /v1/breakers?since=1&wait_s=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-acme\r\n\r\n")
    time.sleep(0.2)  # the polls reach the server (they would wait 30 s)
    srv.shutdown()
    assert not thread.is_alive()
    for s in polls:
        assert request(s, b"").startswith(b"HTTP/1.1 200")  # answered, not cut off
        s.close()


def test_requests_beyond_the_in_flight_bound_are_refused_with_retry_after(span_factory):
    """The slots bound the work, not the connections: with the writer blocked, the ninth
    export gets 503 + Retry-After at once while eight wait for their (fake) Kafka acks."""
    release = threading.Event()

    class BlockedWriter(CountingWriter):
        def write(self, spans, dead_letters=()):
            release.wait(10)
            return super().write(spans, dead_letters)

    settings = CollectorSettings(host="127.0.0.1", port=0, max_inflight_requests=8)
    receiver = TraceReceiver(TENANTS, BlockedWriter(), max_body_bytes=1 << 20, max_inflight=8)
    srv = make_server(receiver, settings)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    body = one_llm_span(span_factory)
    raw = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
           b"Authorization: Bearer k-acme\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    try:
        waiting = [socket.create_connection(srv.server_address, timeout=10) for _ in range(8)]
        for s in waiting:
            s.sendall(raw)
        deadline = time.monotonic() + 5
        while receiver.limit.in_flight < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.limit.in_flight == 8
        extra = socket.create_connection(srv.server_address, timeout=10)
        refused = request(extra, raw)
        assert refused.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in refused
        release.set()
        for s in waiting:
            assert request(s, b"").startswith(b"HTTP/1.1 200")
        assert request(extra, raw).startswith(b"HTTP/1.1 200")  # same connection, once there is room
        assert receiver.writer.spans == 9
    finally:
        release.set()
        srv.shutdown()
        srv.server_close()
