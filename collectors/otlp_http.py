"""The OTLP/HTTP trace receiver: POST /v1/traces -> Kafka.

Flow of one request:
  authenticate (API key -> tenant)  ->  limit and gunzip the body  ->  decode OTLP
  -> map each span (LLM spans kept, others ignored, bad ones dead-lettered with a reason)
  -> write to Kafka and wait for acks  ->  answer per the OTLP/HTTP spec.

Status codes: 200 (with partial_success when spans were rejected), 400 malformed body,
401 unknown or missing key, 413 body too large, 415 unsupported media type,
503 Kafka unavailable (OTLP exporters retry on 503).

The same server answers GET /v1/breakers (long poll) with the sessions the caller's tenant
must stop, from the BreakerBoard (breaker_board.py), when the board is on.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tokenpulse.schemas.events import DeadLetter, TokenSpan
from tokenpulse.schemas.tenants import Tenant, TenantDirectory
from tokenpulse.settings import CollectorSettings

from .breaker_board import BreakerBoard
from .genai_mapping import SEMCONV_SUBSETS, Rejection, UsageConventions, map_span
from .kafka_writer import SpanWriter, WriteFailed
from .otlp_decode import MalformedRequest, OtlpSpan, decode

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
BREAKERS_PATH = "/v1/breakers"
GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND, GRPC_UNAUTHENTICATED, GRPC_UNAVAILABLE = 3, 5, 16, 14


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str


@dataclass
class ExportCounts:
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0


@dataclass
class MappedSpans:
    accepted: list[TokenSpan] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: int = 0


def map_spans(spans: list[OtlpSpan], *, tenant: str, received_ms: int,
              conventions: UsageConventions = SEMCONV_SUBSETS) -> MappedSpans:
    """Sort decoded spans into events to write, dead letters, and non-LLM spans to ignore.
    Shared by every input (HTTP, gRPC, Kafka), so they all treat a span the same way."""
    out = MappedSpans()
    for span in spans:
        result = map_span(span, tenant=tenant, received_ms=received_ms, conventions=conventions)
        if result is None:
            out.ignored += 1
        elif isinstance(result, Rejection):
            out.dead.append(result.dead_letter(tenant, received_ms))
        else:
            out.accepted.append(result)
    return out


class TraceReceiver:
    """Transport-free core of the receiver, so tests and other transports can reuse it."""

    def __init__(self, tenants: TenantDirectory, writer: SpanWriter, *, max_body_bytes: int,
                 conventions: UsageConventions = SEMCONV_SUBSETS) -> None:
        self.tenants, self.writer, self.max_body_bytes = tenants, writer, max_body_bytes
        self.conventions = conventions
        self.totals = ExportCounts()

    def authenticate(self, api_key: str | None, *, is_json: bool) -> Tenant | Reply:
        """The key's tenant, or the 401 reply to send (every route authenticates this way)."""
        tenant = self.tenants.tenant_for_key(api_key) if api_key else None
        if tenant is None:
            why = "missing API key" if not api_key else "unknown API key"
            return _error(HTTPStatus.UNAUTHORIZED, GRPC_UNAUTHENTICATED, f"{why}: send 'Authorization: Bearer <key>'", is_json)
        return tenant

    def export(self, body: bytes, *, content_type: str, content_encoding: str, api_key: str | None) -> Reply:
        is_json = content_type.split(";")[0].strip().lower() == "application/json"
        tenant = self.authenticate(api_key, is_json=is_json)
        if isinstance(tenant, Reply):
            return tenant
        try:
            body = _inflate(body, content_encoding, self.max_body_bytes)
            spans = decode(body, content_type)
        except _TooLarge as exc:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, GRPC_INVALID_ARGUMENT, str(exc), is_json)
        except MalformedRequest as exc:
            status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE if "Content-Type" in str(exc) else HTTPStatus.BAD_REQUEST
            return _error(status, GRPC_INVALID_ARGUMENT, str(exc), is_json)

        mapped = map_spans(spans, tenant=tenant.id, received_ms=int(time.time() * 1000), conventions=self.conventions)
        accepted, dead = mapped.accepted, mapped.dead
        counts = ExportCounts(accepted=len(accepted), rejected=len(dead), ignored=mapped.ignored)
        try:
            if accepted or dead:
                self.writer.write(accepted, dead)
        except WriteFailed as exc:
            log.warning("tenant=%s: %s", tenant.id, exc)
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, GRPC_UNAVAILABLE, "Kafka unavailable, retry later", is_json)
        self.totals.accepted += counts.accepted
        self.totals.rejected += counts.rejected
        self.totals.ignored += counts.ignored
        if dead:
            log.info("tenant=%s rejected %d span(s); first reason: %s", tenant.id, len(dead), dead[0].reason)
        return _success(counts, dead[0].reason if dead else "", is_json)


class _TooLarge(ValueError):
    pass


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    if len(body) > limit:
        raise _TooLarge(f"body of {len(body)} bytes exceeds the {limit}-byte limit")
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise MalformedRequest(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)  # bounded: a gzip bomb stops at the limit
    except zlib.error as exc:
        raise MalformedRequest(f"body is not valid gzip: {exc}") from None
    if len(out) > limit:
        raise _TooLarge(f"decompressed body exceeds the {limit}-byte limit")
    return out


def _success(counts: ExportCounts, first_reason: str, is_json: bool) -> Reply:
    message = f"{counts.rejected} span(s) rejected, see dead-letter topic; first: {first_reason}" if counts.rejected else ""
    if is_json:
        doc = {"partialSuccess": {"rejectedSpans": str(counts.rejected), "errorMessage": message}} if counts.rejected else {}
        return Reply(HTTPStatus.OK, json.dumps(doc).encode(), "application/json")
    resp = ExportTraceServiceResponse()
    if counts.rejected:
        resp.partial_success.rejected_spans = counts.rejected
        resp.partial_success.error_message = message
    return Reply(HTTPStatus.OK, resp.SerializeToString(), "application/x-protobuf")


def _error(http_status: int, grpc_code: int, message: str, is_json: bool) -> Reply:
    if is_json:
        return Reply(http_status, json.dumps({"code": grpc_code, "message": message}).encode(), "application/json")
    return Reply(http_status, status_pb2.Status(code=grpc_code, message=message).SerializeToString(), "application/x-protobuf")


def _json(status: int, doc: dict) -> Reply:
    return Reply(status, json.dumps(doc).encode(), "application/json")


def answer_breakers(board: BreakerBoard | None, tenant: Tenant, query: str, *, max_wait_s: float) -> Reply:
    """GET /v1/breakers?since=<version>&wait_s=<seconds> for an authenticated tenant.

    Answers {"version", "sessions": [...]} with that tenant's stopped sessions only. When
    `since` equals the tenant's current version, first waits up to min(wait_s, max_wait_s)
    for a change (wait_s defaults to max_wait_s); any other `since` (or none) answers now."""
    if board is None:
        return _json(HTTPStatus.NOT_FOUND, {"code": GRPC_NOT_FOUND, "message": "the circuit breaker board is off on "
                                            "this collector (TOKENPULSE_COLLECTOR_BREAKER_BOARD=false)"})
    params = parse_qs(query)
    try:
        since = int(params["since"][0]) if "since" in params else None
        wait_s = float(params["wait_s"][0]) if "wait_s" in params else max_wait_s
        if not wait_s >= 0:  # also refuses NaN
            raise ValueError
    except ValueError:
        return _json(HTTPStatus.BAD_REQUEST, {"code": GRPC_INVALID_ARGUMENT,
                                              "message": "since must be an integer version and wait_s a number >= 0"})
    if since is not None:
        board.wait_for_change(since, min(wait_s, max_wait_s), tenant=tenant.id)
    version, sessions = board.snapshot(tenant.id)
    return _json(HTTPStatus.OK, {"version": version, "sessions": [s.to_json() for s in sessions]})


def _api_key(headers) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("X-Tokenpulse-Key") or None


def make_server(receiver: TraceReceiver, settings: CollectorSettings,
                board: BreakerBoard | None = None) -> ThreadingHTTPServer:
    """The HTTP server; without a board, GET /v1/breakers answers 404. Each request runs on
    its own thread, so a long poll holds one thread only."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            if self.path.split("?")[0] != TRACES_PATH:
                self._send(Reply(HTTPStatus.NOT_FOUND, b"only POST /v1/traces is served here\n", "text/plain"))
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self._send(_error(HTTPStatus.BAD_REQUEST, GRPC_INVALID_ARGUMENT, "bad Content-Length", False))
                return
            if length > settings.max_body_bytes:
                self.close_connection = True  # do not read a body we refuse
                self._send(_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, GRPC_INVALID_ARGUMENT,
                                  f"body of {length} bytes exceeds the {settings.max_body_bytes}-byte limit", False))
                return
            body = self.rfile.read(length)
            reply = receiver.export(
                body,
                content_type=self.headers.get("Content-Type", ""),
                content_encoding=self.headers.get("Content-Encoding", ""),
                api_key=_api_key(self.headers),
            )
            self._send(reply)

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if self.path == "/health":
                t = receiver.totals
                doc = {"status": "ok", "accepted": t.accepted, "rejected": t.rejected, "ignored": t.ignored}
                if board is not None:
                    doc["breaker_version"] = board.version
                self._send(Reply(HTTPStatus.OK, json.dumps(doc).encode(), "application/json"))
            elif url.path == BREAKERS_PATH:
                tenant = receiver.authenticate(_api_key(self.headers), is_json=True)
                if isinstance(tenant, Reply):
                    self._send(tenant)
                else:
                    self._send(answer_breakers(board, tenant, url.query, max_wait_s=settings.breaker_max_wait_s))
            else:
                self._send(Reply(HTTPStatus.NOT_FOUND, b"GET /health, GET /v1/breakers, POST /v1/traces\n", "text/plain"))

        def _send(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client left first (typically an app closing during a long poll): not our error.
                self.close_connection = True
                log.debug("%s hung up before the reply", self.address_string())

        def log_message(self, fmt: str, *args) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

    server = ThreadingHTTPServer((settings.host, settings.port), Handler)
    server.daemon_threads = True
    return server
