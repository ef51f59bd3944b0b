"""A loopback-only query endpoint, served by the process that owns the embedded store.

chDB lets one process open a data directory, and while the stack runs that process is
the loader. `tokenpulse sql` therefore sends its SQL here. Requests must carry the token
the loader writes to <state_dir>/loader.token (file mode 0600), so other local users
cannot query the store through it.

    POST /query   {"sql": "...", "parameters": {...}}  -> {"columns": [...], "rows": [[...]]}
    GET  /health  -> loader counters
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from dataclasses import asdict
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .clickhouse import LockedClient
from .kafka_to_clickhouse import LoaderStats

log = logging.getLogger(__name__)
MAX_QUERY_BYTES = 1024 * 1024


def _plain(value) -> str:
    """Decimals as plain digits (never 0E-12), everything else as str."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def write_token(path: Path) -> str:
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token)
    return token


def run_query(store: LockedClient, sql: str, parameters: dict | None) -> dict:
    result = store.query(sql, parameters=parameters or None)
    return {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}


def start(store: LockedClient, stats: LoaderStats, host: str, port: int, token: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/query":
                return self._json(HTTPStatus.NOT_FOUND, {"error": "POST /query"})
            if not hmac.compare_digest(self.headers.get("X-Tokenpulse-Token", ""), token):
                return self._json(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong X-Tokenpulse-Token"})
            length = int(self.headers.get("Content-Length", "0") or 0)
            if length > MAX_QUERY_BYTES:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "query too large"})
            try:
                req = json.loads(self.rfile.read(length))
                self._json(HTTPStatus.OK, run_query(store, req["sql"], req.get("parameters")))
            except Exception as exc:  # noqa: BLE001 - a bad query is the caller's error, reported back
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._json(HTTPStatus.OK, {"status": "ok", **asdict(stats)})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "GET /health"})

        def _json(self, status: int, doc: dict) -> None:
            body = json.dumps(doc, default=_plain).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args) -> None:
            log.debug(fmt, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="query-server", daemon=True).start()
    return server
