"""The circuit breaker board, its Kafka feed (with a fake consumer) and GET /v1/breakers over real HTTP."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

from tokenpulse.collectors.breaker_board import AlertRecord, BreakerBoard, BreakerFeed
from tokenpulse.collectors.http_server import make_server
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.schemas.alerts import Alert
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.settings import CollectorSettings

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")]),
                                   Tenant(id="globex", api_key_sha256=[hash_key("k-globex")])])


def alert(session="s1", *, tenant="acme", state="open", action="stop", rule="repetition", opened_ms=1000) -> Alert:
    key = f"{tenant}|{rule}|{session}"
    return Alert(alert_id=f"a-{key}-{opened_ms}", dedupe_key=key, state=state, kind="runaway_loop", rule=rule,
                 severity="critical", action=action, tenant=tenant, session_id=session,
                 summary=f"{session} repeats itself", opened_ms=opened_ms, emitted_ms=opened_ms + 5)


# --- the board ----------------------------------------------------------------------

def test_open_stop_adds_resolved_removes_and_version_moves_only_on_change():
    board = BreakerBoard(start_version=100)
    assert board.snapshot("acme") == (100, [])
    assert board.apply(alert("s1")) and board.version == 101
    assert not board.apply(alert("s1")) and board.version == 101  # same state again: no change
    assert not board.apply(alert("s2", action="notify"))  # notify-only never stops anything
    assert not board.apply(alert("s9", state="resolved"))  # resolving the unknown: no change
    version, sessions = board.snapshot("acme")
    assert version == 101
    assert [(s.session_id, s.rule, s.summary, s.opened_ms, s.severity) for s in sessions] == [
        ("s1", "repetition", "s1 repeats itself", 1000, "critical")]
    assert board.apply(alert("s1", state="resolved")) and board.snapshot("acme") == (102, [])


def test_session_stays_stopped_until_every_incident_on_it_is_resolved():
    board = BreakerBoard()
    board.apply(alert("s1", rule="repetition", opened_ms=2000))
    board.apply(alert("s1", rule="ping_pong", opened_ms=1000))
    _, sessions = board.snapshot("acme")
    assert [(s.session_id, s.rule) for s in sessions] == [("s1", "ping_pong")]  # one entry, earliest
    board.apply(alert("s1", rule="ping_pong", state="resolved"))
    assert [s.rule for s in board.snapshot("acme")[1]] == ["repetition"]
    board.apply(alert("s1", rule="repetition", state="resolved"))
    assert board.snapshot("acme")[1] == []


def test_a_stop_downgraded_to_notify_releases_the_session():
    board = BreakerBoard()
    board.apply(alert("s1"))
    assert board.apply(alert("s1", action="notify"))  # newest state per key wins
    assert board.snapshot("acme")[1] == []


def test_tenants_are_isolated_and_keep_their_own_version():
    board = BreakerBoard(start_version=7)
    board.apply(alert("s1", tenant="acme"))
    assert board.snapshot("globex") == (7, [])
    board.apply(alert("s1", tenant="globex"))
    board.apply(alert("s1", tenant="globex", state="resolved"))
    assert board.snapshot("acme")[0] == 8
    assert [s.session_id for s in board.snapshot("acme")[1]] == ["s1"]
    assert board.snapshot("globex") == (10, [])


def test_wait_for_change_wakes_on_apply_and_times_out_without():
    board = BreakerBoard()
    v = board.version
    # Bounds that a slow machine cannot break: a lower bound for waiting, and for waking an
    # upper bound far below the timeout it would otherwise sit out.
    started = time.monotonic()
    assert board.wait_for_change(v, 0.2) == v
    assert time.monotonic() - started >= 0.18  # (timers may fire a hair early)
    threading.Timer(0.1, board.apply, [alert("s1")]).start()
    started = time.monotonic()
    assert board.wait_for_change(v, 60) == v + 1
    assert time.monotonic() - started < 20


def test_reset_replaces_the_board_with_the_newest_states():
    board = BreakerBoard()
    board.apply(alert("gone"))
    assert board.reset([alert("s1"), alert("s2", state="resolved")])
    assert [s.session_id for s in board.snapshot("acme")[1]] == ["s1"]
    assert not board.reset([alert("s1")])


# --- the feed, with a fake consumer --------------------------------------------------

class FakeConsumer:
    """Hands out queued records; caught up once the backlog given at creation is drained."""

    def __init__(self, backlog: list[AlertRecord]) -> None:
        self.queue, self.backlog_left, self.closed = list(backlog), len(backlog), False
        self.lock = threading.Lock()

    def add(self, record: AlertRecord) -> None:
        with self.lock:
            self.queue.append(record)

    def poll(self, timeout_ms: int) -> list[AlertRecord]:
        with self.lock:
            batch, self.queue = self.queue[:2], self.queue[2:]  # small batches: catch-up spans polls
        self.backlog_left -= len(batch)
        if not batch:
            time.sleep(timeout_ms / 1000)
        return batch

    def caught_up(self) -> bool:
        return self.backlog_left <= 0

    def close(self) -> None:
        self.closed = True


def wait_until(predicate, timeout_s=2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_feed_loads_newest_state_per_key_then_follows_and_skips_garbage(caplog):
    board = BreakerBoard()
    backlog = [AlertRecord.of(alert("s1"), 0), AlertRecord.of(alert("old"), 1),
               AlertRecord(0, 2, b"junk", b"{not json"), AlertRecord.of(alert("old", state="resolved"), 3),
               AlertRecord.of(alert("tomb"), 4), AlertRecord(0, 5, b"acme|repetition|tomb", None)]
    consumer = FakeConsumer(backlog)
    versions_seen = []
    feed = BreakerFeed(board, lambda: consumer, poll_timeout_ms=10)
    with caplog.at_level(logging.WARNING, logger="tokenpulse.collectors.breaker_board"):
        feed.start()
        try:
            assert feed.ready.wait(2)
            versions_seen.append(board.version)
            assert [s.session_id for s in board.snapshot("acme")[1]] == ["s1"]
            consumer.add(AlertRecord.of(alert("s2"), 6))
            assert wait_until(lambda: len(board.snapshot("acme")[1]) == 2)
            consumer.add(AlertRecord.of(alert("s1", state="resolved"), 7))
            assert wait_until(lambda: [s.session_id for s in board.snapshot("acme")[1]] == ["s2"])
        finally:
            feed.stop()
    assert not feed.is_alive() and consumer.closed
    assert feed.skipped == 1
    assert any("offset 2" in r.getMessage() for r in caplog.records)


def test_feed_retries_when_kafka_is_not_there_yet():
    board, attempts = BreakerBoard(), []

    def factory():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("no brokers")
        return FakeConsumer([AlertRecord.of(alert("s1"))])

    feed = BreakerFeed(board, factory, poll_timeout_ms=10, retry_s=0.01)
    feed.start()
    try:
        assert feed.ready.wait(2) and len(attempts) == 3
        assert board.snapshot("acme")[1][0].session_id == "s1"
    finally:
        feed.stop()


# --- GET /v1/breakers over HTTP -----------------------------------------------------

class NoWriter:
    def write(self, spans, dead_letters=()):
        return 0


MAX_WAIT_S = 4.0  # the collector fixture's breaker_max_wait_s: long next to every "at once"


def serve(board: BreakerBoard | None, max_wait_s: float = 5.0):
    settings = CollectorSettings(host="127.0.0.1", port=0, breaker_max_wait_s=max_wait_s)
    server = make_server(TraceReceiver(TENANTS, NoWriter(), max_body_bytes=1 << 20), settings, board)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def collector():
    board = BreakerBoard(start_version=1)
    server, url = serve(board, max_wait_s=MAX_WAIT_S)
    yield board, url
    server.shutdown()
    server.server_close()


def get(url: str, key: str | None = "k-acme", header: str = "Authorization") -> tuple[int, dict]:
    req = urllib.request.Request(url)
    if key is not None:
        req.add_header(header, f"Bearer {key}" if header == "Authorization" else key)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_breakers_need_a_known_key(collector):
    _, url = collector
    for key in (None, "wrong"):
        status, doc = get(f"{url}/v1/breakers", key)
        assert status == 401 and "API key" in doc["message"]
    assert get(f"{url}/v1/breakers", "k-acme", header="X-Tokenpulse-Key")[0] == 200


def test_a_key_sees_only_its_own_tenants_sessions(collector):
    board, url = collector
    board.apply(alert("acme-loop", tenant="acme"))
    board.apply(alert("globex-loop", tenant="globex"))
    status, doc = get(f"{url}/v1/breakers", "k-acme")
    assert status == 200
    assert [s["session_id"] for s in doc["sessions"]] == ["acme-loop"]
    assert set(doc["sessions"][0]) >= {"session_id", "alert_id", "dedupe_key", "rule", "summary", "opened_ms"}
    assert [s["session_id"] for s in get(f"{url}/v1/breakers", "k-globex")[1]["sessions"]] == ["globex-loop"]


def test_long_poll_answers_promptly_on_change(collector):
    board, url = collector
    version = get(f"{url}/v1/breakers")[1]["version"]
    threading.Timer(0.2, board.apply, [alert("s1")]).start()
    started = time.monotonic()
    status, doc = get(f"{url}/v1/breakers?since={version}&wait_s=30")
    assert status == 200 and doc["version"] != version and doc["sessions"][0]["session_id"] == "s1"
    assert time.monotonic() - started < MAX_WAIT_S / 2  # woken by the change, not by the cap


def test_long_poll_without_change_answers_after_wait_s_capped_by_settings(collector):
    board, url = collector
    version = get(f"{url}/v1/breakers")[1]["version"]
    started = time.monotonic()
    assert get(f"{url}/v1/breakers?since={version}&wait_s=0.3")[1] == {"version": version, "sessions": []}
    assert 0.27 <= time.monotonic() - started < MAX_WAIT_S / 2  # its own wait_s, not the cap
    started = time.monotonic()
    get(f"{url}/v1/breakers?since={version}&wait_s=30")
    assert 0.9 * MAX_WAIT_S <= time.monotonic() - started < 30 / 2  # the cap, not the 30 s asked for


def test_another_tenants_change_does_not_wake_a_long_poll(collector):
    board, url = collector
    version = get(f"{url}/v1/breakers", "k-globex")[1]["version"]
    threading.Timer(0.1, board.apply, [alert("s1", tenant="acme")]).start()
    started = time.monotonic()
    assert get(f"{url}/v1/breakers?since={version}&wait_s=0.5", "k-globex")[1] == {"version": version, "sessions": []}
    assert time.monotonic() - started >= 0.45


def test_stale_version_answers_at_once_and_bad_parameters_are_400(collector):
    _, url = collector
    started = time.monotonic()
    assert get(f"{url}/v1/breakers?since=999999&wait_s=30")[0] == 200
    assert time.monotonic() - started < MAX_WAIT_S / 2  # at once, not after a wait
    assert get(f"{url}/v1/breakers?since=abc")[0] == 400
    assert get(f"{url}/v1/breakers?since=1&wait_s=-1")[0] == 400


def test_health_shows_the_board_version_when_on(collector):
    board, url = collector
    assert get(f"{url}/health", None)[1]["breaker_version"] == board.version


def test_board_off_is_404_and_health_unchanged():
    server, url = serve(None)
    try:
        status, doc = get(f"{url}/v1/breakers")
        assert status == 404 and "board is off" in doc["message"]
        assert "breaker_version" not in get(f"{url}/health", None)[1]
    finally:
        server.shutdown()
        server.server_close()
