"""The app-side SDK: fingerprints, the circuit breaker against the real collector HTTP server
(in-process), and record_llm_call spans in memory."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tokenpulse.collectors.breaker_board import BreakerBoard
from tokenpulse.collectors.http_server import make_server
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas.alerts import Alert
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.sdk import CircuitBreaker, SessionStopped, call_fingerprint, current_llm_call, record_llm_call
from tokenpulse.sdk.breaker import StopInfo
from tokenpulse.settings import CollectorSettings

# --- fingerprints ---------------------------------------------------------------------


def test_counters_and_ids_do_not_change_the_fingerprint():
    a = call_fingerprint(model="gpt-4o", prompt="retry 3 of task 8f3a9c1e, id 123e4567-e89b-12d3-a456-426614174000")
    b = call_fingerprint(model="gpt-4o", prompt="retry  4 of task\n1b2c77d0, id 9d1f0b4e-0000-4c4c-8a8a-0123456789ab")
    assert a == b and len(a) == 16 and int(a, 16) >= 0


def test_different_requests_differ():
    base = call_fingerprint(model="gpt-4o", prompt="summarize the report")
    assert base != call_fingerprint(model="gpt-4o", prompt="translate the report")
    assert base != call_fingerprint(model="gpt-4o", prompt="Summarize the report")  # case is kept
    assert base != call_fingerprint(model="gpt-4o-mini", prompt="summarize the report")
    assert base != call_fingerprint(model="gpt-4o", messages=[{"role": "user", "content": "summarize the report"}])


def test_tool_argument_key_order_and_json_spacing_are_irrelevant():
    a = call_fingerprint(tool_name="search", tool_arguments={"query": "flights", "page": 2, "opts": {"a": 1, "b": True}})
    b = call_fingerprint(tool_name="search", tool_arguments='{"opts": {"b": true, "a": 5}, "page": 3,  "query": "flights"}')
    assert a == b
    assert a != call_fingerprint(tool_name="search", tool_arguments={"query": "hotels", "page": 2, "opts": {"a": 1, "b": True}})
    assert a != call_fingerprint(tool_name="fetch", tool_arguments={"query": "flights", "page": 2, "opts": {"a": 1, "b": True}})


def test_messages_ignore_per_call_ids_and_whitespace():
    def conversation(call_id, n):
        return [{"role": "user", "content": f"check  order {n}"},
                {"role": "assistant", "tool_calls": [{"id": call_id, "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "not found"}]

    assert call_fingerprint(messages=conversation("call_A", 1)) == call_fingerprint(messages=conversation("call_B", 2))
    assert call_fingerprint(messages=conversation("call_A", 1)) != call_fingerprint(messages=conversation("call_A", 1)[:2])


# --- circuit breaker against the collector -----------------------------------------

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")]),
                                   Tenant(id="globex", api_key_sha256=[hash_key("k-globex")])])


def alert(session: str, *, tenant: str = "acme", state: str = "open") -> Alert:
    key = f"{tenant}|repetition|{session}"
    return Alert(alert_id=f"id-{session}", dedupe_key=key, state=state, kind="runaway_loop", rule="repetition",
                 severity="critical", action="stop", tenant=tenant, session_id=session,
                 summary="same request 12 times in 60 s", opened_ms=1000, emitted_ms=1001)


class NoWriter:
    def write(self, spans, dead_letters=()):
        return 0


@pytest.fixture
def collector():
    board = BreakerBoard()
    settings = CollectorSettings(host="127.0.0.1", port=0, breaker_max_wait_s=2.0)
    server = make_server(TraceReceiver(TENANTS, NoWriter(), max_body_bytes=1 << 20), settings, board)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield board, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def breakers():
    made: list[CircuitBreaker] = []

    def make(url: str, key: str = "k-acme", **kw) -> CircuitBreaker:
        made.append(CircuitBreaker(url, key, max_wait_s=2, retry_s=0.1, **kw))
        return made[-1]

    yield make
    for b in made:
        b.close()


def eventually(predicate, timeout_s: float = 1.0) -> float:
    """Seconds until predicate() held; fails the test if it never did within timeout_s."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, "condition not reached in time"
        time.sleep(0.01)
    return time.monotonic() - started


def raises_stopped(breaker: CircuitBreaker, session: str) -> bool:
    try:
        breaker.check(session)
    except SessionStopped:
        return True
    return False


def test_check_raises_soon_after_a_stop_and_stops_raising_after_resolve(collector, breakers):
    board, url = collector
    acme, globex = breakers(url), breakers(url, "k-globex")
    assert acme.wait_ready(2) and globex.wait_ready(2)
    acme.check("loop-1")  # nothing stopped yet
    board.apply(alert("loop-1"))
    assert eventually(lambda: raises_stopped(acme, "loop-1")) < 1.0
    with pytest.raises(SessionStopped) as caught:
        acme.check("loop-1")
    err = caught.value
    assert (err.session_id, err.alert_id, err.rule) == ("loop-1", "id-loop-1", "repetition")
    assert "same request 12 times" in str(err) and "resolved" in str(err)
    acme.check("other-session")  # other sessions keep going
    acme.check(None)
    assert not raises_stopped(globex, "loop-1")  # same session id, other tenant: not stopped
    board.apply(alert("loop-1", state="resolved"))
    eventually(lambda: not raises_stopped(acme, "loop-1"))


def test_on_stop_is_called_instead_of_raising(collector, breakers):
    board, url = collector
    seen: list[StopInfo] = []
    breaker = breakers(url, on_stop=seen.append)
    board.apply(alert("loop-2"))
    eventually(lambda: breaker.is_stopped("loop-2"))
    breaker.check("loop-2")
    assert [i.session_id for i in seen] == ["loop-2"]


def test_collector_down_fails_open(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="tokenpulse.sdk.breaker"):
        breaker = CircuitBreaker(f"http://127.0.0.1:{port}", "k-acme", max_wait_s=1, retry_s=0.05)
        try:
            assert not breaker.wait_ready(0.3)
            breaker.check("any-session")
        finally:
            breaker.close()
    warnings = [r.getMessage() for r in caplog.records if "fail-open" in r.getMessage()]
    assert len(warnings) == 1  # an outage is logged once, not once per retry


class FlakyCollector(BaseHTTPRequestHandler):
    """Answers one stop list, then hangs up on every request (a collector going away)."""

    protocol_version = "HTTP/1.1"
    answered = threading.Event()

    def do_GET(self) -> None:  # noqa: N802
        if self.answered.is_set():
            self.close_connection = True
            return
        self.answered.set()
        body = json.dumps({"version": 1, "sessions": [
            {"session_id": "loop-3", "alert_id": "a", "dedupe_key": "k", "rule": "r", "summary": "s", "opened_ms": 1}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_losing_the_collector_keeps_the_last_known_stop_list(breakers):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyCollector)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        breaker = breakers(f"http://127.0.0.1:{server.server_address[1]}")
        assert breaker.wait_ready(2)
        time.sleep(0.3)  # several failed polls later
        assert raises_stopped(breaker, "loop-3") and not raises_stopped(breaker, "fine")
    finally:
        server.shutdown()
        server.server_close()


def test_close_interrupts_a_long_poll(collector):
    _, url = collector
    breaker = CircuitBreaker(url, "k-acme", max_wait_s=20)
    assert breaker.wait_ready(2)
    time.sleep(0.1)  # now inside a long poll
    started = time.monotonic()
    breaker.close()
    assert time.monotonic() - started < 10  # interrupted, not the 20 s poll sat out


def test_breaker_needs_a_key_and_an_http_endpoint():
    with pytest.raises(ValueError, match="api_key"):
        CircuitBreaker("http://127.0.0.1:4318", "")
    with pytest.raises(ValueError, match="endpoint"):
        CircuitBreaker("127.0.0.1:4318", "k")


# --- record_llm_call ------------------------------------------------------------------

@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


PROMPT = [{"role": "user", "content": "secret plan: retry order 42"}]


def test_span_has_genai_attributes_fingerprint_and_no_content(spans):
    provider, exporter = spans
    with record_llm_call(provider="openai", model="gpt-4o", session_id="s-1", agent_id="ag-1", agent_name="planner",
                         tool_name="search", team="growth", runtime_kind="cloud", runtime_id="openai",
                         messages=PROMPT, tracer_provider=provider) as call:
        call.set_usage(input_tokens=100, output_tokens=20, cached_input_tokens=60, reasoning_tokens=5)
        call.set_response_model("gpt-4o-2024-08-06")
    (span,) = exporter.get_finished_spans()
    a = dict(span.attributes)
    assert span.name == "chat gpt-4o" and span.kind is SpanKind.CLIENT
    assert a[sc.PROVIDER_NAME] == "openai" and a[sc.OPERATION_NAME] == "chat" and a[sc.REQUEST_MODEL] == "gpt-4o"
    assert a[sc.RESPONSE_MODEL] == "gpt-4o-2024-08-06" and a[sc.CONVERSATION_ID] == "s-1"
    assert (a[sc.AGENT_ID], a[sc.AGENT_NAME], a[sc.TOOL_NAME]) == ("ag-1", "planner", "search")
    assert (a[sc.TEAM], a[sc.RUNTIME_KIND], a[sc.RUNTIME_ID]) == ("growth", "cloud", "openai")
    assert (a[sc.INPUT_TOKENS], a[sc.OUTPUT_TOKENS], a[sc.CACHE_READ_INPUT_TOKENS], a[sc.REASONING_OUTPUT_TOKENS]) == (100, 20, 60, 5)
    assert a[sc.CALL_FINGERPRINT] == call_fingerprint(model="gpt-4o", messages=PROMPT, tool_name="search")
    assert not sc.CONTENT_ATTRIBUTES & a.keys()
    assert not any("secret plan" in str(v) for v in a.values())
    assert span.status.status_code is not StatusCode.ERROR


def test_given_fingerprint_wins_and_unset_attributes_are_absent(spans):
    provider, exporter = spans
    with record_llm_call(provider="ollama", model="llama3", operation="text_completion", fingerprint="abc",
                         prompt="hi", tracer_provider=provider):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "text_completion llama3" and span.attributes[sc.CALL_FINGERPRINT] == "abc"
    assert sc.CONVERSATION_ID not in span.attributes and sc.TEAM not in span.attributes


def test_exception_sets_error_type_and_status_then_propagates(spans):
    provider, exporter = spans
    with pytest.raises(TimeoutError):
        with record_llm_call(provider="openai", model="gpt-4o", messages=PROMPT, tracer_provider=provider):
            raise TimeoutError("upstream timed out on: secret plan")
    (span,) = exporter.get_finished_spans()
    assert span.attributes[sc.ERROR_TYPE] == "TimeoutError" and span.status.status_code is StatusCode.ERROR
    assert "secret plan" not in (span.status.description or "") and not span.events


class StoppedBreaker:
    def __init__(self) -> None:
        self.checked: list[str | None] = []

    def check(self, session_id):
        self.checked.append(session_id)
        raise SessionStopped(StopInfo(session_id, "a1", "k", "repetition", "loops", 1))


def test_stopped_session_raises_before_any_span_or_spend(spans):
    provider, exporter = spans
    breaker, spent = StoppedBreaker(), []
    with pytest.raises(SessionStopped):
        with record_llm_call(provider="openai", model="gpt-4o", session_id="s-9", breaker=breaker,
                             tracer_provider=provider):
            spent.append("called the LLM")
    assert breaker.checked == ["s-9"] and spent == [] and exporter.get_finished_spans() == ()


def test_decorator_form_records_each_call(spans):
    provider, exporter = spans

    @record_llm_call(provider="anthropic", model="claude-sonnet-4", tracer_provider=provider)
    def ask() -> str:
        current_llm_call().set_usage(input_tokens=10, output_tokens=2)
        return "ok"

    assert ask() == "ok" and ask() == "ok"
    finished = exporter.get_finished_spans()
    assert len(finished) == 2 and all(s.attributes[sc.INPUT_TOKENS] == 10 for s in finished)
    assert current_llm_call() is None
