"""Real local HTTP servers that stand in for a webhook receiver, Slack and PagerDuty,
recording every request they receive (and when) so tests can assert on deliveries."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    at: float  # time.time() on receipt
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class RecordingServer:
    def __init__(self, status: int = 200) -> None:
        self.received: list[Received] = []
        self.status = status
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder._arrived:
                    recorder.received.append(Received(time.time(), self.path, dict(self.headers), body))
                    recorder._arrived.notify_all()
                self.send_response(recorder.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, predicate, timeout_s: float = 60.0) -> list[Received]:
        """Block until some received request matches; return all matching ones."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                hits = [r for r in self.received if predicate(r)]
                remaining = deadline - time.monotonic()
                if hits or remaining <= 0:
                    return hits
                self._arrived.wait(remaining)

    def matching(self, predicate) -> list[Received]:
        with self._lock:
            return [r for r in self.received if predicate(r)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
