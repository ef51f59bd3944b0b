"""The OTLP trace receiver, transport-free: POST /v1/traces (and gRPC Export) -> Kafka.

Flow of one request:
  authenticate (API key -> tenant)  ->  limit and gunzip the body  ->  decode OTLP
  -> map each span (LLM spans kept, others ignored, bad ones dead-lettered with a reason)
  -> write to Kafka and wait for acks  ->  answer per the OTLP/HTTP spec.

Status codes: 200 (with partial_success when spans were rejected), 400 malformed body,
401 unknown or missing key, 413 body too large, 415 unsupported media type,
503 when Kafka (or, on the edge, the local buffer) refuses the write, or 503 with
Retry-After when `max_inflight_requests` export requests are already in flight (OTLP
exporters retry on 503 and honour Retry-After).

Also the replies of the other routes (GET /v1/breakers: the sessions the caller's tenant must
stop, from the BreakerBoard; GET /metrics) and the TLS context. The HTTP server that carries
requests here is http_server.py, the gRPC one otlp_grpc.py.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from urllib.parse import parse_qs

from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tokenpulse.core.genai_mapping import MappingRules, default_senders
from tokenpulse.core.kafka_writer import SpanWriter, WriteFailed
from tokenpulse.core.otlp_decode import MalformedRequest, decode
from tokenpulse.core.span_mapping import map_spans
from tokenpulse.schemas.senders import SenderCatalog
from tokenpulse.schemas.tenants import Tenant, TenantDirectory
from tokenpulse.settings import CollectorSettings

from .breaker_board import BreakerBoard
from .metrics import CollectorMetrics

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
BREAKERS_PATH = "/v1/breakers"
GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND, GRPC_UNAUTHENTICATED, GRPC_UNAVAILABLE = 3, 5, 16, 14


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str
    retry_after_s: int | None = None  # sent as Retry-After (HTTP) / RetryInfo (gRPC)


@dataclass
class ExportCounts:
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0


class InflightLimit:
    """At most `capacity` export requests doing work at once (None: no bound), shared by the
    HTTP and gRPC servers. It refuses instead of waiting: a queued request would hold its
    body and a thread while its sender's timeout runs out, and the sender retries anyway."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def try_enter(self) -> bool:
        with self._lock:
            if self.capacity is not None and self._in_flight >= self.capacity:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class TraceReceiver:
    """Transport-free core of the receiver, so tests and other transports can reuse it.

    `max_inflight` bounds the export requests doing work at once across every transport
    using this receiver (None: unbounded, as on the edge collector, whose writes are local)."""

    def __init__(self, tenants: TenantDirectory, writer: SpanWriter, *, max_body_bytes: int,
                 senders: SenderCatalog | None = None, max_inflight: int | None = None,
                 busy_retry_after_s: int = 1, metrics: CollectorMetrics | None = None) -> None:
        self.tenants, self.writer, self.max_body_bytes = tenants, writer, max_body_bytes
        self.senders = senders or default_senders()
        self.limit = InflightLimit(max_inflight)
        self.busy_retry_after_s = busy_retry_after_s
        self.metrics = metrics or CollectorMetrics()
        self.totals = ExportCounts()
        self._totals_lock = threading.Lock()  # many server threads add to the totals

    def authenticate(self, api_key: str | None, *, is_json: bool) -> Tenant | Reply:
        """The key's tenant, or the 401 reply to send (every route authenticates this way)."""
        tenant = self.tenants.tenant_for_key(api_key) if api_key else None
        if tenant is None:
            why = "missing API key" if not api_key else "unknown API key"
            return error_reply(HTTPStatus.UNAUTHORIZED, GRPC_UNAUTHENTICATED, f"{why}: send 'Authorization: Bearer <key>'", is_json)
        return tenant

    @contextmanager
    def admit(self, api_key: str | None, *, is_json: bool, transport: str) -> Iterator[Tenant | Reply]:
        """The caller's tenant, holding one in-flight slot until the block ends; or the Reply
        refusing the request (401 unknown key, 503 + Retry-After when saturated). Cheap, so
        transports call it before reading or decoding anything."""
        tenant = self.authenticate(api_key, is_json=is_json)
        if isinstance(tenant, Reply):
            yield tenant
            return
        if not self.limit.try_enter():
            self.metrics.refused_busy(transport)
            busy = error_reply(HTTPStatus.SERVICE_UNAVAILABLE, GRPC_UNAVAILABLE,
                          f"collector busy ({self.limit.capacity} export requests in flight), "
                          f"retry in {self.busy_retry_after_s} s", is_json)
            yield replace(busy, retry_after_s=self.busy_retry_after_s)
            return
        try:
            yield tenant
        finally:
            self.limit.leave()

    def export(self, body: bytes, *, content_type: str, content_encoding: str, api_key: str | None,
               transport: str = "http") -> Reply:
        """Authenticate, take an in-flight slot, then decode, map and write (export_as)."""
        with self.admit(api_key, is_json=is_json_type(content_type), transport=transport) as admitted:
            if isinstance(admitted, Reply):
                return admitted
            return self.export_as(admitted, body, content_type=content_type, content_encoding=content_encoding,
                                  transport=transport)

    def export_as(self, tenant: Tenant, body: bytes, *, content_type: str, content_encoding: str,
                  transport: str = "http") -> Reply:
        """Decode, map and write an authenticated tenant's request (the caller holds a slot)."""
        is_json = is_json_type(content_type)
        try:
            body = inflate_body(body, content_encoding, self.max_body_bytes)
            spans = decode(body, content_type)
        except BodyTooLarge as exc:
            return error_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, GRPC_INVALID_ARGUMENT, str(exc), is_json)
        except MalformedRequest as exc:
            status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE if "Content-Type" in str(exc) else HTTPStatus.BAD_REQUEST
            return error_reply(status, GRPC_INVALID_ARGUMENT, str(exc), is_json)

        rules = MappingRules(senders=self.senders, service_teams=tenant.service_teams)
        mapped = map_spans(spans, tenant=tenant.id, received_ms=int(time.time() * 1000), rules=rules,
                           api_key_id=tenant.api_key_id)
        accepted, dead = mapped.accepted, mapped.dead
        counts = ExportCounts(accepted=len(accepted), rejected=len(dead), ignored=mapped.ignored)
        try:
            if accepted or dead:
                self.writer.write(accepted, dead)
        except WriteFailed as exc:
            log.warning("tenant=%s: %s", tenant.id, exc)
            self.metrics.write_failed(transport)
            # The writer says why (Kafka did not ack; on the edge: the local buffer is full).
            return error_reply(HTTPStatus.SERVICE_UNAVAILABLE, GRPC_UNAVAILABLE, f"{exc}; retry later", is_json)
        with self._totals_lock:
            self.totals.accepted += counts.accepted
            self.totals.rejected += counts.rejected
            self.totals.ignored += counts.ignored
        self.metrics.spans(transport, accepted=counts.accepted, rejected=counts.rejected, ignored=counts.ignored)
        if dead:
            log.info("tenant=%s rejected %d span(s); first reason: %s", tenant.id, len(dead), dead[0].reason)
        return _success(counts, dead[0].reason if dead else "", is_json)


def is_json_type(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


class BodyTooLarge(ValueError):
    pass


def inflate_body(body: bytes, encoding: str, limit: int) -> bytes:
    if len(body) > limit:
        raise BodyTooLarge(f"body of {len(body)} bytes exceeds the {limit}-byte limit")
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise MalformedRequest(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    # A gzip body may hold several members back to back (RFC 1952; `cat a.gz b.gz` is valid):
    # inflate every one, so spans in a later member are not dropped silently. Each member is
    # bounded by what is left of the limit, so a gzip bomb stops at the limit.
    out, rest = b"", body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise MalformedRequest(f"body is not valid gzip: {exc}") from None
        if len(out) > limit:
            raise BodyTooLarge(f"decompressed body exceeds the {limit}-byte limit")
        if not inflater.eof:  # a cut-off stream would decode as a shorter, "valid" request
            raise MalformedRequest("body is truncated gzip (the stream ends before its end marker)")
        rest = inflater.unused_data
        if not rest:
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


def error_reply(http_status: int, grpc_code: int, message: str, is_json: bool) -> Reply:
    if is_json:
        return Reply(http_status, json.dumps({"code": grpc_code, "message": message}).encode(), "application/json")
    return Reply(http_status, status_pb2.Status(code=grpc_code, message=message).SerializeToString(), "application/x-protobuf")


def json_reply(status: int, doc: dict) -> Reply:
    return Reply(status, json.dumps(doc).encode(), "application/json")


def breaker_query(board: BreakerBoard | None, query: str, *, max_wait_s: float) -> tuple[int | None, float] | Reply:
    """GET /v1/breakers?since=<version>&wait_s=<seconds>: (since, seconds to wait), or the
    reply refusing it (404 without a board, 400 for bad parameters).

    When `since` equals the tenant's current version, the server first waits up to
    min(wait_s, max_wait_s) for a change (wait_s defaults to max_wait_s); any other `since`
    (or none) is answered now."""
    if board is None:
        return json_reply(HTTPStatus.NOT_FOUND, {"code": GRPC_NOT_FOUND, "message": "the circuit breaker board is off on "
                                                 "this collector (TOKENPULSE_COLLECTOR_BREAKER_BOARD=false)"})
    params = parse_qs(query)
    try:
        since = int(params["since"][0]) if "since" in params else None
        wait_s = float(params["wait_s"][0]) if "wait_s" in params else max_wait_s
        if not wait_s >= 0:  # also refuses NaN
            raise ValueError
    except ValueError:
        return json_reply(HTTPStatus.BAD_REQUEST, {"code": GRPC_INVALID_ARGUMENT,
                                                   "message": "since must be an integer version and wait_s a number >= 0"})
    return since, min(wait_s, max_wait_s)


def breakers_reply(board: BreakerBoard, tenant: Tenant) -> Reply:
    """{"version", "sessions": [...]}: the tenant's stopped sessions only."""
    version, sessions = board.snapshot(tenant.id)
    return json_reply(HTTPStatus.OK, {"version": version, "sessions": [s.to_json() for s in sessions]})


def api_key_of(headers) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("X-Tokenpulse-Key") or None


def server_tls_context(settings: CollectorSettings) -> ssl.SSLContext | None:
    """The receiver's TLS context from settings (None without tls_cert_file): TLS 1.2 or
    newer, and client certificates required when tls_client_ca_file is set."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    if settings.tls_client_ca_file is not None:
        ctx.load_verify_locations(cafile=settings.tls_client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def metrics_text(receiver: TraceReceiver, board: BreakerBoard | None) -> str:
    """GET /metrics: the receiver's counters, the in-flight gauge and, with a board, its state."""
    version = open_sessions = None
    if board is not None:
        version = board.version
        # Summed over tenants: /metrics needs no key, so it names no tenant.
        open_sessions = sum(len(board.snapshot(t.id)[1]) for t in receiver.tenants.tenants)
    return receiver.metrics.render(in_flight=receiver.limit.in_flight, max_in_flight=receiver.limit.capacity,
                                   board_version=version, open_sessions=open_sessions,
                                   producer_rebuilds=getattr(receiver.writer, "rebuilds", None))
