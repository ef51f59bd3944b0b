"""The OTLP/gRPC trace receiver: TraceService/Export -> the same TraceReceiver as OTLP/HTTP.

Flow of one call:
  gRPC inflates a gzip message and enforces the size limit  ->  the raw request bytes and
  the caller's key (metadata `authorization: Bearer <key>` or `x-tokenpulse-key`) go to
  TraceReceiver.export, exactly like an OTLP/HTTP protobuf body  ->  its reply becomes the
  gRPC answer.

The request is registered without a deserializer, so the handler gets the wire bytes and
the shared decoder reads them once (instead of gRPC parsing them and us re-serializing).

Status codes: OK (with partial_success when spans were rejected), UNAUTHENTICATED unknown
or missing key, INVALID_ARGUMENT malformed request, RESOURCE_EXHAUSTED message over the
limit (from gRPC itself), UNAVAILABLE Kafka down, or the collector busy (the receiver's
in-flight bound, shared with OTLP/HTTP), then with a RetryInfo delay. OTLP exporters retry
UNAVAILABLE; the spec lets them retry RESOURCE_EXHAUSTED only with RetryInfo, so "busy" is
UNAVAILABLE.

Threads: the in-flight bound plus a few spare workers. The spare ones answer "busy" at once
while every slot is taken, so calls do not queue behind slow Kafka writes; past twice the
pool, gRPC itself refuses calls (RESOURCE_EXHAUSTED) without queueing them.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tokenpulse.settings import CollectorSettings

from .otlp_http import TraceReceiver

SERVICE_NAME = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
EXPORT_METHOD = "Export"
PROTOBUF = "application/x-protobuf"
WORKERS = 16  # without an in-flight bound
SPARE_WORKERS = 4
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"  # where OTLP exporters look for the retry delay
_STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}


def api_key_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The caller's key from gRPC metadata (keys arrive lowercase)."""
    headers = {k: v for k, v in metadata if isinstance(v, str)}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-tokenpulse-key") or None


class TraceExportHandler:
    """Turns one Export call into TraceReceiver.export and its Reply into a gRPC answer."""

    def __init__(self, receiver: TraceReceiver) -> None:
        self.receiver = receiver

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        reply = self.receiver.export(request, content_type=PROTOBUF, content_encoding="",
                                     api_key=api_key_from_metadata(context.invocation_metadata()),
                                     transport="grpc")
        if reply.status == HTTPStatus.OK:
            self.receiver.metrics.request("grpc", grpc.StatusCode.OK.name)
            return reply.body  # already a serialized ExportTraceServiceResponse
        # Error replies carry a google.rpc.Status whose code is already the gRPC one.
        status = status_pb2.Status.FromString(reply.body)
        code = _STATUS_BY_CODE.get(status.code, grpc.StatusCode.INTERNAL)
        self.receiver.metrics.request("grpc", code.name)
        if reply.retry_after_s is not None:
            info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=reply.retry_after_s))
            context.set_trailing_metadata(((RETRY_INFO_KEY, info.SerializeToString()),))
        context.abort(code, status.message)


def server_credentials(settings: CollectorSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from the same settings as the HTTP server (None without
    tls_cert_file); client certificates required when tls_client_ca_file is set. gRPC
    negotiates TLS 1.2 or newer."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=ca, require_client_auth=ca is not None)


def make_grpc_server(receiver: TraceReceiver, *, host: str, port: int, max_message_bytes: int,
                     credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    """The (not yet started) gRPC server with the trace service, and the port it bound
    (port 0 picks a free one); TLS with `credentials` (server_credentials). Raises
    RuntimeError when the address cannot be bound."""
    handler = TraceExportHandler(receiver)
    bound_work = receiver.limit.capacity
    workers = WORKERS if bound_work is None else bound_work + SPARE_WORKERS
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        # Calls past this are refused by gRPC itself, so the pool's queue stays short.
        maximum_concurrent_rpcs=None if bound_work is None else 2 * workers,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            # gRPC sets SO_REUSEPORT by default: a second collector would share the port
            # silently. Fail loudly instead, like the HTTP server does.
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {
        EXPORT_METHOD: grpc.unary_unary_rpc_method_handler(handler.export),  # bytes in, bytes out
    }),))
    hint = (f"cannot listen for OTLP/gRPC on {host}:{port} (in use?); set TOKENPULSE_COLLECTOR_GRPC_PORT "
            "or TOKENPULSE_COLLECTOR_GRPC_ENABLED=false")
    try:
        address = f"{host}:{port}"
        bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:
        raise RuntimeError(hint) from None
    if bound == 0:  # some grpcio versions report a failed bind this way instead of raising
        raise RuntimeError(hint)
    return server, bound
