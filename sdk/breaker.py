"""The app side of tokenpulse's circuit breaker: stop an agent session the platform flagged.

A daemon thread long-polls the collector's GET /v1/breakers (the same collector and API key
the app already sends spans to) and keeps the set of this tenant's stopped sessions in
memory. `check(session_id)` is a dictionary lookup with no I/O, so it can sit in front of
every LLM call.

Fail-open, on purpose: when the collector is unreachable or refuses the request, the
breaker keeps the last set it knew (empty before the first answer) and logs a warning. It
never stops a healthy app because monitoring is down.

Standard library only, so adding the breaker to an app adds no dependencies.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
BREAKERS_PATH = "/v1/breakers"
_MIN_POLL_INTERVAL_S = 0.1  # pacing: a misbehaving server can never make this thread spin


@dataclass(frozen=True)
class StopInfo:
    """Why a session is stopped: the open alert that stopped it."""

    session_id: str
    alert_id: str
    dedupe_key: str
    rule: str
    summary: str
    opened_ms: int
    severity: str | None = None

    @classmethod
    def from_json(cls, doc: dict) -> StopInfo:
        return cls(session_id=str(doc["session_id"]), alert_id=str(doc["alert_id"]), dedupe_key=str(doc["dedupe_key"]),
                   rule=str(doc["rule"]), summary=str(doc["summary"]), opened_ms=int(doc["opened_ms"]),
                   severity=doc.get("severity"))


class SessionStopped(RuntimeError):
    """Raised before an LLM call for a session tokenpulse told to stop (e.g. a runaway loop)."""

    def __init__(self, info: StopInfo) -> None:
        self.info = info
        self.session_id, self.alert_id, self.rule, self.summary = info.session_id, info.alert_id, info.rule, info.summary
        super().__init__(
            f"tokenpulse stopped LLM calls for session {info.session_id!r}: {info.summary} "
            f"(rule {info.rule!r}, alert {info.alert_id}). Do not retry this session: end it or hand it "
            f"to a person; its calls are allowed again once the alert is resolved."
        )


class _Refused(Exception):
    """The collector answered, but not with a breaker list (bad key, board off, ...)."""


class CircuitBreaker:
    """Follows the collector's stop list for the API key's tenant; see the module docstring.

    `on_stop(info)`, when given, replaces raising SessionStopped: check() calls it and
    returns, so the app decides (raise its own error, log, degrade). The polling thread
    starts at construction; call close() (or use `with`) to end it."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, api_key: str = "", *,
                 on_stop: Callable[[StopInfo], object] | None = None, max_wait_s: float = 20, retry_s: float = 2) -> None:
        if not api_key:
            raise ValueError("api_key is required: the collector key the app sends its spans with")
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint must be an http(s) URL such as {DEFAULT_ENDPOINT}, got {endpoint!r}")
        self._url, self._path = url, url.path.rstrip("/") + BREAKERS_PATH
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._on_stop, self._max_wait_s, self._retry_s = on_stop, max_wait_s, retry_s
        self._stopped: Mapping[str, StopInfo] = MappingProxyType({})
        self._version: int | None = None
        self._ready, self._closing = threading.Event(), threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="tokenpulse-breaker", daemon=True)
        self._thread.start()

    # --- app-facing ----------------------------------------------------------------
    def check(self, session_id: str | None) -> None:
        """Hot path, no I/O: if the session is stopped, call on_stop(info) or raise SessionStopped."""
        if session_id is None:
            return
        info = self._stopped.get(session_id)
        if info is None:
            return
        if self._on_stop is not None:
            self._on_stop(info)
            return
        raise SessionStopped(info)

    def is_stopped(self, session_id: str) -> bool:
        return session_id in self._stopped

    @property
    def stopped_sessions(self) -> Mapping[str, StopInfo]:
        """The current stop list (read-only; replaced as a whole on every update)."""
        return self._stopped

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the first stop list arrived; False if none did within timeout."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        self._closing.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:  # wakes the thread out of a long poll now instead of after max_wait_s
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)

    def __enter__(self) -> CircuitBreaker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- polling thread ----------------------------------------------------------------
    def _run(self) -> None:
        trouble: str | None = None  # the last problem logged, so an outage logs once
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                doc = self._fetch()
                self._update(doc)
            except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError, _Refused) as exc:
                self._drop_connection()
                if self._closing.is_set():
                    break
                problem = str(exc) or type(exc).__name__
                if problem != trouble:
                    log.warning("tokenpulse breaker: %s %s: %s; keeping the last known %d stopped session(s) "
                                "and retrying every %.0fs (fail-open)", "cannot use" if isinstance(exc, _Refused)
                                else "cannot reach", self._url.geturl(), problem, len(self._stopped), self._retry_s)
                    trouble = problem
                self._closing.wait(self._retry_s)
                continue
            if trouble is not None:
                log.info("tokenpulse breaker: %s reachable again", self._url.geturl())
                trouble = None
            self._closing.wait(max(0.0, _MIN_POLL_INTERVAL_S - (time.monotonic() - started)))
        self._drop_connection()

    def _fetch(self) -> dict:
        query = "" if self._version is None else f"?since={self._version}&wait_s={self._max_wait_s:g}"
        conn = self._connection()
        conn.request("GET", self._path + query, headers=self._headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            try:
                message = json.loads(body).get("message", "")
            except ValueError:
                message = body[:200].decode(errors="replace")
            raise _Refused(f"HTTP {resp.status} {message}".strip())
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("breaker answer is not a JSON object")
        return doc

    def _update(self, doc: dict) -> None:
        stopped = {s["session_id"]: StopInfo.from_json(s) for s in doc["sessions"]}
        version = int(doc["version"])
        for sid in stopped.keys() - self._stopped.keys():
            log.warning("tokenpulse breaker: session %r stopped: %s", sid, stopped[sid].summary)
        for sid in self._stopped.keys() - stopped.keys():
            log.info("tokenpulse breaker: session %r may call again", sid)
        self._stopped, self._version = MappingProxyType(stopped), version
        self._ready.set()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
            # The socket timeout must outlast the server's long poll.
            self._conn = cls(self._url.hostname, self._url.port, timeout=self._max_wait_s + 10)
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
