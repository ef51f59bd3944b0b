"""The collectors' HTTP server: every connection on one asyncio event loop (aiohttp), the
blocking work of a request (decode, map, wait for Kafka's acks) on a bounded thread pool.

Routes of the main collector (the receiver's logic is in otlp_http.py, this module only
carries requests to it):
  POST /v1/traces     export, bounded by the receiver's in-flight slots (503 + Retry-After beyond)
  POST /v1/outcomes   outcome intake (outcome_intake.py), same key, same slots
  GET  /v1/breakers   long poll on the circuit breaker board: waits on the event loop, so a
                      poll costs a coroutine, not a thread
  GET  /metrics, GET /health
The edge collector (edge.py) passes its own GET routes instead and a Retry-After for every 503.

Why an event loop: a fleet of apps holds thousands of keep-alive connections and, with
breakers on, one long poll each. http.server holds a thread per connection; here an idle
connection is a few KiB of buffers, and threads exist only for work in flight
(bench/collector_connections.py measures both).

Limits: a connection that sends no (complete) request for `idle_timeout_s` (settings) is
closed, so are keep-alive connections idle that long (exporters reconnect); a body that stalls for
BODY_READ_TIMEOUT_S gets 408; a TLS handshake must finish within TLS_HANDSHAKE_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tokenpulse.core.otlp_decode import MalformedRequest
from tokenpulse.settings import CollectorSettings

from .breaker_board import BreakerBoard
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .otlp_http import (
    BREAKERS_PATH,
    GRPC_INVALID_ARGUMENT,
    GRPC_NOT_FOUND,
    TRACES_PATH,
    BodyTooLarge,
    Reply,
    TraceReceiver,
    api_key_of,
    breaker_query,
    breakers_reply,
    error_reply,
    inflate_body,
    is_json_type,
    json_reply,
    metrics_text,
)
from .outcome_intake import OUTCOMES_PATH, OutcomeIntake

log = logging.getLogger(__name__)

BODY_READ_TIMEOUT_S = 30.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
LISTEN_BACKLOG = 4096  # a fleet reconnecting at once (after a collector restart) waits here, not refused
SHUTDOWN_GRACE_S = 5.0  # in-flight exports finish (their Kafka acks) before connections close
UNBOUNDED_WORKERS = 32  # worker threads when the receiver has no in-flight bound (the edge)

GetRoute = Callable[[], Reply]

class CollectorServer:
    """Bound at construction (`server_address` holds the port, also for port 0); serves in the
    thread that calls serve_forever() until shutdown() or a signal's exception."""

    def __init__(self, receiver: TraceReceiver, settings: CollectorSettings, board: BreakerBoard | None = None, *,
                 tls: ssl.SSLContext | None = None, outcomes: OutcomeIntake | None = None,
                 get_routes: dict[str, GetRoute] | None = None, retry_after_on_503_s: int | None = None) -> None:
        self.receiver, self.settings, self.board, self.outcomes = receiver, settings, board, outcomes
        self.tls = tls
        self.get_routes = get_routes  # None: the main collector's GET routes
        self.retry_after_on_503_s = retry_after_on_503_s
        if tls is not None:
            count_failed_handshakes(tls, receiver)
        self._sock = socket.create_server((settings.host, settings.port), backlog=LISTEN_BACKLOG)
        self.server_address = self._sock.getsockname()[:2]
        # Exports and outcome writes wait for Kafka: at most one thread per in-flight slot.
        self._pool = ThreadPoolExecutor(max_workers=receiver.limit.capacity or UNBOUNDED_WORKERS,
                                        thread_name_prefix="collector-http")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._stop_requested = False
        self._stopped = threading.Event()
        self._closing = False
        self._board_changed = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------
    def serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._serve())
        self._loop = loop
        try:
            loop.run_until_complete(task)
        except BaseException:
            # Interrupted (SIGTERM's SystemExit, Ctrl-C) while serving: still close gracefully.
            if not task.done():
                self._stop.set()
                try:
                    loop.run_until_complete(task)
                except Exception:  # noqa: BLE001 - already leaving with the first exception
                    log.exception("closing the HTTP server failed")
            raise
        finally:
            loop.close()
            self._pool.shutdown(wait=False)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving and wait until serve_forever() has returned (as http.server's)."""
        loop = self._loop
        if loop is None:
            self._stop_requested = True
            return
        if self._stopped.is_set():
            return  # already stopped
        loop.call_soon_threadsafe(self._stop.set)
        self._stopped.wait()

    def server_close(self) -> None:
        self._sock.close()
        self._pool.shutdown(wait=False)  # a server built but never served holds its pool too

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        unsubscribe = self.board.on_change(lambda: loop.call_soon_threadsafe(self._wake_polls)) if self.board else None
        # auto_decompress off: gunzip is the receiver's, bounded (inflate_body stops a gzip bomb).
        # lingering_time 0: a body left unread (stalled, too large) closes the connection at once;
        # refusals read theirs (discard_body) so the sender can retry on the same connection.
        handler = web.Server(self._handle, keepalive_timeout=self.settings.idle_timeout_s, auto_decompress=False,
                             access_log=None, lingering_time=0, logger=SenderErrorsQuiet(log))
        server = await loop.create_server(handler, sock=self._sock, ssl=self.tls,
                                          ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self.tls else None)
        try:
            if not self._stop_requested:
                await self._stop.wait()
        finally:
            server.close()  # no new connections
            self._closing = True
            self._wake_polls()  # long polls answer now
            for connection in handler.connections:
                connection.close()  # idle keep-alive ones end now, the others after their reply
            await handler.shutdown(SHUTDOWN_GRACE_S)
            if unsubscribe is not None:
                unsubscribe()

    # --- routing ------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        close = False
        if request.method == "POST":
            if request.path == TRACES_PATH:
                reply, close = await self._export(request)
            elif request.path == OUTCOMES_PATH:
                reply, close = await self._outcome(request)
            else:
                reply = Reply(HTTPStatus.NOT_FOUND, b"POST /v1/traces or /v1/outcomes\n", "text/plain")
            if request.path in (TRACES_PATH, OUTCOMES_PATH):
                self.receiver.metrics.request("http", reply.status)
        elif request.method in ("GET", "HEAD"):
            reply = await self._get(request)
        else:
            reply = Reply(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {request.method}\n".encode(), "text/plain")
        return self._response(reply, close)

    def _response(self, reply: Reply, close: bool) -> web.Response:
        response = web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type})
        retry_after = reply.retry_after_s
        if retry_after is None and reply.status == HTTPStatus.SERVICE_UNAVAILABLE:
            retry_after = self.retry_after_on_503_s
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        if close:
            # Say so (RFC 9112 9.6): a keep-alive client would otherwise send its next request
            # into a closed socket (e.g. after a 413 whose body was not read).
            response.force_close()
        return response

    async def _get(self, request: web.BaseRequest) -> Reply:
        if self.get_routes is not None:
            route = self.get_routes.get(request.path)
            if route is not None:
                return route()
            listing = ", ".join(f"GET {path}" for path in self.get_routes) + ", POST /v1/traces\n"
            return Reply(HTTPStatus.NOT_FOUND, listing.encode(), "text/plain")
        if request.path == "/health":
            return self._health()
        if request.path == "/metrics":
            return Reply(HTTPStatus.OK, metrics_text(self.receiver, self.board).encode(), METRICS_CONTENT_TYPE)
        if request.path == BREAKERS_PATH:
            return await self._breakers(request)
        return Reply(HTTPStatus.NOT_FOUND, b"GET /health, GET /metrics, GET /v1/breakers, "
                     b"POST /v1/traces, POST /v1/outcomes\n", "text/plain")

    # --- POST routes --------------------------------------------------------------------
    async def _export(self, request: web.BaseRequest) -> tuple[Reply, bool]:
        """(reply, close the connection after it)."""
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return error_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, GRPC_INVALID_ARGUMENT,
                               f"body of {request.content_length} bytes exceeds the {limit}-byte limit", False), True
        content_type = request.headers.get("Content-Type", "")
        # Key and slot before the body: what waits for a slot is never held in memory, so
        # bodies in memory stay below max_inflight_requests x max_body_bytes.
        is_json = is_json_type(content_type)
        with self.receiver.admit(api_key_of(request.headers), is_json=is_json, transport="http") as admitted:
            if isinstance(admitted, Reply):
                return admitted, not await discard_body(request)  # read: the sender may retry on this connection
            try:
                body = await read_body(request, limit)
            except BodyTooLarge as exc:
                return error_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, GRPC_INVALID_ARGUMENT, str(exc), is_json), True
            except BodyUnreadable as exc:
                return error_reply(exc.status, GRPC_INVALID_ARGUMENT, str(exc), is_json), True
            export = partial(self.receiver.export_as, admitted, body, content_type=content_type,
                             content_encoding=request.headers.get("Content-Encoding", ""), transport="http")
            return await asyncio.get_running_loop().run_in_executor(self._pool, export), False

    async def _outcome(self, request: web.BaseRequest) -> tuple[Reply, bool]:
        if self.outcomes is None:
            return json_reply(HTTPStatus.NOT_FOUND, {"code": GRPC_NOT_FOUND,
                                                     "message": "outcome intake is off on this collector"}), False
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return json_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                "code": GRPC_INVALID_ARGUMENT,
                "message": f"body of {request.content_length} bytes exceeds the {limit}-byte limit"}), True
        with self.receiver.admit(api_key_of(request.headers), is_json=True, transport="http") as admitted:
            if isinstance(admitted, Reply):
                return admitted, not await discard_body(request)
            try:
                body = inflate_body(await read_body(request, limit), request.headers.get("Content-Encoding", ""), limit)
            except BodyUnreadable as exc:
                return json_reply(exc.status, {"code": GRPC_INVALID_ARGUMENT, "message": str(exc)}), True
            except (BodyTooLarge, MalformedRequest) as exc:
                status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if isinstance(exc, BodyTooLarge) else HTTPStatus.BAD_REQUEST
                return json_reply(status, {"code": GRPC_INVALID_ARGUMENT, "message": str(exc)}), False
            accept = partial(self.outcomes.accept, admitted.id, body,
                             content_type=request.headers.get("Content-Type", ""),
                             received_ms=int(time.time() * 1000))
            status, doc = await asyncio.get_running_loop().run_in_executor(self._pool, accept)
            return json_reply(status, doc), False

    # --- GET routes ---------------------------------------------------------------------
    def _health(self) -> Reply:
        t = self.receiver.totals
        doc = {"status": "ok", "accepted": t.accepted, "rejected": t.rejected, "ignored": t.ignored,
               "in_flight": self.receiver.limit.in_flight, "max_inflight_requests": self.receiver.limit.capacity,
               "tls": self.tls is not None}
        if self.board is not None:
            doc["breaker_version"] = self.board.version
        return Reply(HTTPStatus.OK, json.dumps(doc).encode(), "application/json")

    async def _breakers(self, request: web.BaseRequest) -> Reply:
        tenant = self.receiver.authenticate(api_key_of(request.headers), is_json=True)
        if isinstance(tenant, Reply):
            return tenant
        query = breaker_query(self.board, request.query_string, max_wait_s=self.settings.breaker_max_wait_s)
        if isinstance(query, Reply):
            return query
        since, wait_s = query
        if since is not None:
            await self._board_change(tenant.id, since, wait_s)
        return breakers_reply(self.board, tenant)

    async def _board_change(self, tenant: str, since: int, wait_s: float) -> None:
        """Until the tenant's board version differs from `since`, wait_s passes, or the server closes."""
        assert self.board is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self._closing and self.board.tenant_version(tenant) == since:
            left = deadline - loop.time()
            if left <= 0:
                return
            # Taken after the check, both on the loop: a change in between sets this very event.
            changed = self._board_changed
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                return

    def _wake_polls(self) -> None:
        """On the loop: wake every waiting poll (each re-checks its own tenant's version)."""
        self._board_changed.set()
        self._board_changed = asyncio.Event()


class SenderErrorsQuiet(logging.LoggerAdapter):
    """aiohttp logs a request its parser refuses (a header line over the limit, garbage) with a
    traceback at ERROR. It has answered 400 already and the fault is the sender's: one line at
    INFO. Anything else (a bug of ours) keeps its traceback."""

    def exception(self, msg, *args, exc_info=True, **kwargs) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            self.logger.info(msg + ": %s", *args, str(exc).replace("\n", " ")[:300])
        else:
            self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


class BodyUnreadable(Exception):
    """The body stalled (408) or broke off (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body (Content-Length or chunked), refusing more than `limit` bytes."""
    chunks, size = [], 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.readany(), BODY_READ_TIMEOUT_S)
        except TimeoutError:
            raise BodyUnreadable(HTTPStatus.REQUEST_TIMEOUT, f"no body data for {BODY_READ_TIMEOUT_S:g} s") from None
        except (web.HTTPException, ConnectionError, OSError, ValueError) as exc:
            raise BodyUnreadable(HTTPStatus.BAD_REQUEST, f"body could not be read: {exc}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)


async def discard_body(request: web.BaseRequest) -> bool:
    """Read and drop the body of a refused request; False if it could not be read to its end."""
    try:
        while await asyncio.wait_for(request.content.readany(), BODY_READ_TIMEOUT_S):
            pass
    except Exception:  # noqa: BLE001 - stalled or broken: the connection closes instead
        return False
    return True


def count_failed_handshakes(tls: ssl.SSLContext, receiver: TraceReceiver) -> None:
    """Count TLS handshakes that fail (the event loop drops them without telling anyone):
    asyncio drives every TLS connection through the context's SSLObject class."""
    metrics = receiver.metrics

    class CountingSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # not done yet, not failed
            except ssl.SSLError:
                metrics.tls_handshake_failed()
                raise

    tls.sslobject_class = CountingSSLObject


def make_server(receiver: TraceReceiver, settings: CollectorSettings, board: BreakerBoard | None = None, *,
                tls: ssl.SSLContext | None = None, outcomes: OutcomeIntake | None = None) -> CollectorServer:
    """The main collector's HTTP server; without a board GET /v1/breakers answers 404, without
    `outcomes` POST /v1/outcomes does. With `tls` (otlp_http.server_tls_context) HTTPS only."""
    return CollectorServer(receiver, settings, board, tls=tls, outcomes=outcomes)
