"""Helpers for the alert dispatcher tests: real local HTTP receivers, outcome capture, sample alerts."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tokenpulse.alerts.config import hooks_from_data
from tokenpulse.schemas.alerts import Alert, AlertState, DispatchOutcome, Severity, alert_id_for

SECRET = "s3cret-for-tests"
ROUTING_KEY = "R0UTING-KEY"
ENVIRON = {"HOOK_SECRET": SECRET, "PD_KEY": ROUTING_KEY}
FAST_RETRY = {"max_attempts": 3, "initial_backoff_ms": 5, "max_backoff_ms": 20, "timeout_s": 1}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class RecordingServer:
    """Records every POST; answers `fail_status` to the first `fail_first` requests, then 200/202."""

    fail_first: int = 0
    fail_status: int = 500
    ok_status: int = 200
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder._arrived:
                    recorder.requests.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    failing = len(recorder.requests) <= recorder.fail_first
                    recorder._arrived.notify_all()
                status = recorder.fail_status if failing else recorder.ok_status
                answer = b"nope: bad request" if failing else b"ok"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", recorder.url + "/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout_s)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class OutcomeLog:
    """A publisher for tests: collects DispatchOutcomes and lets a test wait for them."""

    def __init__(self) -> None:
        self.outcomes: list[DispatchOutcome] = []
        self.times: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, outcome: DispatchOutcome) -> None:
        with self._cond:
            self.outcomes.append(outcome)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def wait_for(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.outcomes) >= count, timeout_s)

    def for_hook(self, name: str) -> list[DispatchOutcome]:
        return [o for o in self.outcomes if o.hook == name]


def make_alert(state: AlertState = AlertState.open, *, severity: Severity = Severity.critical,
               tenant: str = "acme", session: str = "sess-1", opened_ms: int = 1_700_000_000_000, **overrides) -> Alert:
    dedupe_key = f"runaway_loop|{tenant}|repetition|{session}"
    fields = dict(alert_id=alert_id_for(dedupe_key, opened_ms), dedupe_key=dedupe_key, state=state,
                  kind="runaway_loop", rule="repetition", severity=severity, tenant=tenant, service="support-bot",
                  session_id=session, summary="same prompt sent 40 times in 60 s",
                  evidence={"calls": 40, "window_s": 60, "cost_usd": "1.234500"}, opened_ms=opened_ms,
                  resolved_ms=opened_ms + 60_000 if state is AlertState.resolved else None,
                  emitted_ms=opened_ms + 5)
    return Alert(**{**fields, **overrides})


def hook_entry(name: str, kind: str, url: str, **fields) -> dict:
    entry = {"name": name, "kind": kind, "url": url, "retry": FAST_RETRY, **fields}
    if kind == "webhook":
        entry.setdefault("secret_env", "HOOK_SECRET")
    if kind == "pagerduty":
        entry.setdefault("routing_key_env", "PD_KEY")
    return entry


def hooks_config(*entries: dict):
    return hooks_from_data({"hooks": list(entries)}, environ=ENVIRON)
