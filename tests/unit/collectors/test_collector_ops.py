"""Operating the main collector (no Kafka): Prometheus /metrics, the in-flight bound
(503 + Retry-After / UNAVAILABLE instead of queueing), TLS and mutual TLS on both OTLP
ports, and the settings behind them, including the Kafka TLS options for clients and Flink."""

import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from pydantic import ValidationError
from testkit.collector_fakes import MemoryWriter
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.__main__ import FailureCountingWriter
from tokenpulse.collectors.breaker_board import BreakerBoard
from tokenpulse.collectors.http_server import make_server
from tokenpulse.collectors.kafka_otlp_ingest import IngestStats
from tokenpulse.collectors.metrics import CollectorMetrics
from tokenpulse.collectors.otlp_grpc import (
    EXPORT_METHOD,
    RETRY_INFO_KEY,
    SERVICE_NAME,
    make_grpc_server,
    server_credentials,
)
from tokenpulse.collectors.otlp_http import TraceReceiver, server_tls_context
from tokenpulse.core.kafka_writer import WriteFailed
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.settings import CollectorSettings, KafkaSettings, Settings

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")])])
AUTH = {"Authorization": "Bearer k-acme"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}




class BlockingWriter(MemoryWriter):
    """Holds every write until `release` is set, like a slow Kafka; `entered` counts writers."""

    def __init__(self) -> None:
        super().__init__()
        self.release, self.entered, self._lock = threading.Event(), 0, threading.Lock()

    def write(self, spans, dead_letters=()):
        with self._lock:
            self.entered += 1
        assert self.release.wait(10), "test never released the writer"
        return super().write(spans, dead_letters)


def settings(**kw) -> CollectorSettings:
    return CollectorSettings(host="127.0.0.1", port=0, max_body_bytes=1 << 20, breaker_max_wait_s=5, **kw)


@pytest.fixture
def http_server():
    """http_server(receiver, cfg, board=None, tls=None) -> port of a running HTTP server."""
    servers = []

    def start(receiver, cfg, board=None, tls=None):
        server = make_server(receiver, cfg, board, tls=tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def grpc_server():
    """grpc_server(receiver, credentials=None) -> port of a running gRPC server."""
    servers = []

    def start(receiver, credentials=None):
        server, port = make_grpc_server(receiver, host="127.0.0.1", port=0, max_message_bytes=1 << 20,
                                        credentials=credentials)
        server.start()
        servers.append(server)
        return port

    yield start
    for s in servers:
        s.stop(grace=None)


def post(port, body, headers=None, scheme="http", context=None):
    """(status, headers, body) of POST /v1/traces, whatever the status."""
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/v1/traces", data=body, method="POST",
                                 headers={**PROTOBUF, **(headers if headers is not None else AUTH)})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get(port, path, scheme="http", context=None, headers=None):
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return resp.read().decode()


def scrape(port, **kw) -> dict[str, float]:
    """GET /metrics as {'name{labels}': value}."""
    text = get(port, "/metrics", **kw)
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def grpc_export(port, body, channel=None):
    channel = channel or grpc.insecure_channel(f"127.0.0.1:{port}")
    with channel:
        call = channel.unary_unary(f"/{SERVICE_NAME}/{EXPORT_METHOD}")
        return call(body, metadata=(("authorization", "Bearer k-acme"),), timeout=5)


# --- /metrics ---------------------------------------------------------------------------------

def test_metrics_count_spans_requests_dead_letters_and_failures(http_server, grpc_server, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    span_factory.span(attributes={**LLM_ATTRS, "gen_ai.usage.output_tokens": -3})  # dead letter
    span_factory.span(name="db query", attributes={"db.system": "postgresql"})     # ignored
    body = span_factory.protobuf()
    writer, metrics, board = MemoryWriter(), CollectorMetrics(), BreakerBoard(start_version=7)
    receiver = TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20, max_inflight=8, metrics=metrics)
    port = http_server(receiver, settings(), board)

    assert post(port, body)[0] == 200
    assert post(port, body, headers={"Authorization": "Bearer wrong"})[0] == 401
    writer.fail = True
    assert post(port, body)[0] == 503
    writer.fail = False
    grpc_export(grpc_server(receiver), body)
    # The Kafka inputs: their threads' stats, and their failed writes through the counting writer.
    metrics.watch_ingests([SimpleNamespace(stats=IngestStats(records=2, spans=3, dead_letters=1, ignored=4))])
    with pytest.raises(WriteFailed):
        FailureCountingWriter(SimpleNamespace(write=_fail), metrics, "kafka").write([], [])

    writer.rebuilds = 2  # what SpanWriter counts when it replaced a wedged producer
    m = scrape(port)
    for transport in ("http", "grpc"):
        assert m[f'tokenpulse_collector_spans_total{{transport="{transport}",outcome="accepted"}}'] == 1
        assert m[f'tokenpulse_collector_spans_total{{transport="{transport}",outcome="rejected"}}'] == 1
        assert m[f'tokenpulse_collector_spans_total{{transport="{transport}",outcome="ignored"}}'] == 1
        assert m[f'tokenpulse_collector_dead_letters_total{{transport="{transport}"}}'] == 1
    assert m['tokenpulse_collector_spans_total{transport="kafka",outcome="accepted"}'] == 3
    assert m['tokenpulse_collector_spans_total{transport="kafka",outcome="ignored"}'] == 4
    assert m['tokenpulse_collector_dead_letters_total{transport="kafka"}'] == 1
    assert m['tokenpulse_collector_export_requests_total{transport="http",code="200"}'] == 1
    assert m['tokenpulse_collector_export_requests_total{transport="http",code="401"}'] == 1
    assert m['tokenpulse_collector_export_requests_total{transport="http",code="503"}'] == 1
    assert m['tokenpulse_collector_export_requests_total{transport="grpc",code="OK"}'] == 1
    assert m['tokenpulse_collector_kafka_write_failures_total{transport="http"}'] == 1
    assert m['tokenpulse_collector_kafka_write_failures_total{transport="kafka"}'] == 1
    assert m["tokenpulse_collector_inflight_requests"] == 0
    assert m["tokenpulse_collector_max_inflight_requests"] == 8
    assert m["tokenpulse_collector_breaker_board_version"] == 7
    assert m["tokenpulse_collector_kafka_producer_rebuilds_total"] == 2
    assert m["tokenpulse_collector_breaker_open_sessions"] == 0
    # /health keeps its fields and gains the in-flight ones.
    health = json.loads(get(port, "/health"))
    assert health["accepted"] == 2 and health["rejected"] == 2 and health["ignored"] == 2
    assert health["breaker_version"] == 7 and health["in_flight"] == 0 and health["max_inflight_requests"] == 8


def _fail(spans, dead_letters=()):
    raise WriteFailed("broker down")


def test_metrics_text_is_valid_exposition_format(http_server):
    port = http_server(TraceReceiver(TENANTS, MemoryWriter(), max_body_bytes=1 << 20), settings())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert "tokenpulse_collector_breaker" not in text  # no board, no board metrics
    assert "tokenpulse_collector_max_inflight_requests" not in text  # unbounded receiver


# --- the in-flight bound ----------------------------------------------------------------------

def test_saturated_collector_refuses_at_once_and_recovers(http_server, grpc_server, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    body = span_factory.protobuf()
    writer, board = BlockingWriter(), BreakerBoard(start_version=1)
    receiver = TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20, max_inflight=2, busy_retry_after_s=3)
    port = http_server(receiver, settings(), board)
    grpc_port = grpc_server(receiver)

    # Long polls wait on the board, not in a slot: three of them leave both slots free.
    polls = [threading.Thread(target=get, args=(port, "/v1/breakers?since=1&wait_s=2"), kwargs={"headers": AUTH})
             for _ in range(3)]
    for t in polls:
        t.start()
    results = []
    held = [threading.Thread(target=lambda: results.append(post(port, body)[0])) for _ in range(2)]
    for t in held:
        t.start()
    deadline = time.monotonic() + 5
    while writer.entered < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.entered == 2, "both exports should be in the (blocked) writer despite the long polls"

    started = time.monotonic()
    status, headers, reply = post(port, body)
    assert status == 503 and headers["Retry-After"] == "3"
    assert time.monotonic() - started < 5, "refused at once, not queued (a queued export would wait for ever)"
    with pytest.raises(grpc.RpcError) as err:
        grpc_export(grpc_port, body)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable for OTLP exporters
    retry_info = dict(err.value.trailing_metadata())[RETRY_INFO_KEY]
    assert error_details_pb2.RetryInfo.FromString(retry_info).retry_delay.seconds == 3
    m = scrape(port)
    assert m["tokenpulse_collector_inflight_requests"] == 2
    assert m['tokenpulse_collector_busy_refusals_total{transport="http"}'] == 1
    assert m['tokenpulse_collector_busy_refusals_total{transport="grpc"}'] == 1
    assert m['tokenpulse_collector_export_requests_total{transport="grpc",code="UNAVAILABLE"}'] == 1

    writer.release.set()
    for t in held + polls:
        t.join(5)
    assert results == [200, 200]
    assert post(port, body)[0] == 200  # the refused sender's retry goes through
    assert scrape(port)["tokenpulse_collector_inflight_requests"] == 0
    assert len(writer.spans) == 3


def test_refused_request_keeps_the_connection_usable(http_server, span_factory):
    """The refused body is read and dropped, so the sender's keep-alive connection can retry."""
    import http.client

    span_factory.span(attributes=LLM_ATTRS)
    body = span_factory.protobuf()
    receiver = TraceReceiver(TENANTS, MemoryWriter(), max_body_bytes=1 << 20, max_inflight=1)
    port = http_server(receiver, settings())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert receiver.limit.try_enter()  # someone else holds the only slot
    conn.request("POST", "/v1/traces", body=body, headers={**PROTOBUF, **AUTH})
    first = conn.getresponse()
    first.read()
    receiver.limit.leave()
    conn.request("POST", "/v1/traces", body=body, headers={**PROTOBUF, **AUTH})
    second = conn.getresponse()
    second.read()
    conn.close()
    assert (first.status, second.status) == (503, 200)


# --- TLS --------------------------------------------------------------------------------------

# Committed test-only certificates (tests/fixtures/tls/README.md): no openssl process here.
TLS_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tls"


@pytest.fixture(autouse=True)
def _exporter_trusts_its_certificate_file(monkeypatch):
    # requests lets these variables override a session's `verify`, which is where the OTel
    # HTTP exporter puts certificate_file; keep a CI machine's CA bundle out of the way.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def certs():
    return SimpleNamespace(server_cert=TLS_FIXTURES / "server.crt", server_key=TLS_FIXTURES / "server.key",
                           client_cert=TLS_FIXTURES / "client.crt", client_key=TLS_FIXTURES / "client.key")


def test_https_receiver_accepts_the_otel_exporter_and_refuses_plain_http(http_server, certs, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    receiver = TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20)
    cfg = settings(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key)
    port = http_server(receiver, cfg, tls=server_tls_context(cfg))

    exporter = HttpSpanExporter(endpoint=f"https://127.0.0.1:{port}/v1/traces", certificate_file=str(certs.server_cert),
                                headers={"authorization": "Bearer k-acme"}, timeout=5)
    try:
        assert exporter.export(span_factory.exporter.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [s.tenant for s in writer.spans] == ["acme"]

    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        post(port, span_factory.protobuf())  # plain HTTP to the TLS port
    trusting = ssl.create_default_context(cafile=str(certs.server_cert))
    m = scrape(port, scheme="https", context=trusting)
    assert m["tokenpulse_collector_tls_handshake_failures_total"] >= 1
    assert json.loads(get(port, "/health", scheme="https", context=trusting))["tls"] is True
    assert server_tls_context(cfg).minimum_version == ssl.TLSVersion.TLSv1_2


def test_mutual_tls_requires_a_client_certificate(http_server, certs, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    cfg = settings(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key,
                   tls_client_ca_file=certs.client_cert)  # self-signed: its own CA
    port = http_server(TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20), cfg, tls=server_tls_context(cfg))

    exporter = HttpSpanExporter(endpoint=f"https://127.0.0.1:{port}/v1/traces", certificate_file=str(certs.server_cert),
                                client_certificate_file=str(certs.client_cert), client_key_file=str(certs.client_key),
                                headers={"authorization": "Bearer k-acme"}, timeout=5)
    try:
        assert exporter.export(span_factory.exporter.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(writer.spans) == 1

    no_client_cert = ssl.create_default_context(cafile=str(certs.server_cert))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
        post(port, span_factory.protobuf(), scheme="https", context=no_client_cert)
    assert len(writer.spans) == 1


def test_grpc_receiver_over_tls(grpc_server, certs, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    cfg = settings(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key)
    port = grpc_server(TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20), server_credentials(cfg))

    creds = grpc.ssl_channel_credentials(root_certificates=certs.server_cert.read_bytes())
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{port}", credentials=creds,
                                headers={"authorization": "Bearer k-acme"}, timeout=5)
    try:
        assert exporter.export(span_factory.exporter.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [s.tenant for s in writer.spans] == ["acme"]

    with pytest.raises(grpc.RpcError) as err:  # a plaintext client cannot talk to it
        grpc_export(port, span_factory.protobuf())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(writer.spans) == 1


def test_grpc_mutual_tls(grpc_server, certs, span_factory):
    span_factory.span(attributes=LLM_ATTRS)
    writer = MemoryWriter()
    cfg = settings(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key,
                   tls_client_ca_file=certs.client_cert)
    port = grpc_server(TraceReceiver(TENANTS, writer, max_body_bytes=1 << 20), server_credentials(cfg))
    root = certs.server_cert.read_bytes()
    with_cert = grpc.ssl_channel_credentials(root_certificates=root, private_key=certs.client_key.read_bytes(),
                                             certificate_chain=certs.client_cert.read_bytes())
    grpc_export(port, span_factory.protobuf(), grpc.secure_channel(f"127.0.0.1:{port}", with_cert))
    assert len(writer.spans) == 1
    with pytest.raises(grpc.RpcError):
        grpc_export(port, span_factory.protobuf(),
                    grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(root_certificates=root)))
    assert len(writer.spans) == 1


# --- settings ---------------------------------------------------------------------------------

def test_tls_settings_are_both_or_neither_and_must_exist(certs, tmp_path):
    assert not settings().tls_enabled and server_tls_context(settings()) is None
    assert settings(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key).tls_enabled
    with pytest.raises(ValidationError, match="both tls_cert_file and tls_key_file"):
        settings(tls_cert_file=certs.server_cert)
    with pytest.raises(ValidationError, match="both tls_cert_file and tls_key_file"):
        settings(tls_key_file=certs.server_key)
    with pytest.raises(ValidationError, match="mutual TLS"):
        settings(tls_client_ca_file=certs.client_cert)
    with pytest.raises(ValidationError, match="is not a file"):
        settings(tls_cert_file=tmp_path / "missing.crt", tls_key_file=certs.server_key)
    with pytest.raises(ValidationError):
        settings(max_inflight_requests=0)
    assert settings().max_inflight_requests == 64


def test_kafka_tls_settings_reach_the_python_clients(tmp_path):
    ca, combined = tmp_path / "ca.pem", tmp_path / "client.pem"
    k = KafkaSettings(bootstrap_servers="b1:9093,b2:9093", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                      sasl_username="u", sasl_password="p", ssl_cafile=ca, ssl_certfile=combined,
                      ssl_password="kp")
    opts = k.client_options()
    assert opts["ssl_cafile"] == str(ca) and opts["ssl_certfile"] == str(combined)
    assert opts["ssl_password"] == "kp" and "ssl_keyfile" not in opts
    assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_plain_password"] == "p"
    assert "ssl_cafile" not in KafkaSettings().client_options()
    with pytest.raises(ValidationError, match="use SSL or SASL_SSL"):
        KafkaSettings(security_protocol="PLAINTEXT", ssl_cafile=ca)
    with pytest.raises(ValidationError, match="need ssl_certfile"):
        KafkaSettings(security_protocol="SSL", ssl_keyfile=tmp_path / "k.pem")


def _flink_options(role: str = "source", **kafka) -> dict[str, str]:
    from tokenpulse.stream_jobs.job_runtime import kafka_options

    text = kafka_options(Settings(kafka=KafkaSettings(**kafka)), role)
    pairs = re.findall(r"'((?:[^']|'')*)' = '((?:[^']|'')*)'", text)
    return {key.replace("''", "'"): value.replace("''", "'") for key, value in pairs}


def test_flink_kafka_options_carry_pem_tls_and_shaded_sasl(tmp_path):
    ca, combined = tmp_path / "ca.pem", tmp_path / "client.pem"
    opts = _flink_options(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc",
                          sasl_password="it's \"q\"", ssl_cafile=ca, ssl_certfile=combined, ssl_keyfile=combined,
                          ssl_password="kp")
    assert opts["properties.security.protocol"] == "SASL_SSL"
    assert opts["properties.ssl.truststore.type"] == "PEM"
    assert opts["properties.ssl.truststore.location"] == str(ca)
    assert opts["properties.ssl.keystore.type"] == "PEM"
    assert opts["properties.ssl.keystore.location"] == str(combined)
    assert opts["properties.ssl.key.password"] == "kp"
    # The SQL connector jar relocates the Kafka client, login modules included.
    assert opts["properties.sasl.jaas.config"] == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="svc" password="it\'s \\"q\\"";')
    plain = _flink_options(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u",
                           sasl_password="p")
    assert ".security.plain.PlainLoginModule required" in plain["properties.sasl.jaas.config"]
    assert not any(key.startswith("properties.ssl.") for key in plain)


def test_flink_client_batching_goes_to_the_side_it_belongs_to():
    """Fetch settings on source tables (consumers), batch size and compression on sinks (producers)."""
    tuned = {"stream_fetch_min_bytes": 1 << 20, "stream_fetch_max_wait_ms": 100,
             "stream_producer_batch_bytes": 1 << 20, "stream_compression": "lz4"}
    source, sink = _flink_options("source", **tuned), _flink_options("sink", **tuned)
    assert (source["properties.fetch.min.bytes"], source["properties.fetch.max.wait.ms"]) == ("1048576", "100")
    assert (sink["properties.batch.size"], sink["properties.compression.type"]) == ("1048576", "lz4")
    assert not any(k in source for k in ("properties.batch.size", "properties.compression.type"))
    assert not any(k in sink for k in ("properties.fetch.min.bytes", "properties.fetch.max.wait.ms"))
    defaults = _flink_options("source")  # the Java client's own defaults
    assert (defaults["properties.fetch.min.bytes"], defaults["properties.fetch.max.wait.ms"]) == ("1", "500")


def test_flink_needs_key_and_certificate_in_one_file(tmp_path):
    with pytest.raises(ValueError, match="one PEM file"):
        _flink_options(security_protocol="SSL", ssl_certfile=tmp_path / "c.pem", ssl_keyfile=tmp_path / "k.pem")
