"""Acceptance test of the edge collector on a real Kafka broker that this test starts and
stops itself (ports 29192/29193, its own state directory; not the shared session stack).

Scenario: broker up, topics created, edge collector started; broker stopped; 10,000 LLM
spans (and a few invalid ones) sent with the real OTLP/HTTP exporter -> all accepted;
edge collector killed with SIGKILL and restarted -> its buffer still holds everything;
broker started again -> every span reaches tokenpulse.spans.raw.v1. Prints the measured
numbers and the honest duplicate count (the Flink job deduplicates any).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from helpers import port
from kafka import KafkaConsumer, TopicPartition
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenpulse.kafka_admin import apply_topics
from tokenpulse.schemas import topics
from tokenpulse.settings import REPO_ROOT, Settings
from tokenpulse.stack import Stack

pytestmark = pytest.mark.integration

BROKER, CONTROLLER_PORT, EDGE_PORT = f"127.0.0.1:{port(29192)}", str(port(29193)), port(24319)
SPANS, INVALID, EXPORT_BATCH, SESSIONS = 10_000, 10, 500, 50
KEY = "demo-acme-key"  # schemas/tenants.demo.yaml: tenant acme
CONSUME_TIMEOUT_S = 240


class EdgeProcess:
    """`python -m tokenpulse.collectors.edge` as a child in its own process group."""

    def __init__(self, env: dict[str, str], log_path) -> None:
        self.env, self.log_path, self.proc = env, log_path, None
        self.url = f"http://127.0.0.1:{EDGE_PORT}"

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tokenpulse.collectors.edge"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=REPO_ROOT, start_new_session=True)
        deadline = time.monotonic() + 30
        while self.health() is None:
            assert self.proc.poll() is None, f"edge collector exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"edge collector not ready:\n{self.tail()}"
            time.sleep(0.2)

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return json.loads(resp.read())
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as resp:
            return resp.read().decode()

    def kill(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def make_spans(run: str) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "edge-it"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("edge-it")
    for i in range(SPANS + INVALID):
        output = -1 if i >= SPANS else 20 + i % 7  # the last few are invalid: dead letters
        tracer.start_span("chat llama3", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama", "gen_ai.request.model": "llama3",
            "gen_ai.usage.input_tokens": 100 + i % 13, "gen_ai.usage.output_tokens": output,
            "gen_ai.conversation.id": f"{run}-{i % SESSIONS}", "tokenpulse.runtime.id": "edge-it-box",
        }).end()
    return list(memory.get_finished_spans())


def span_id_pair(span) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def consume_everything(settings: Settings, edge: EdgeProcess, run: str) -> dict:
    """Read both topics from the beginning until the edge buffer is empty and the consumer
    has reached the end offsets taken after that (or the timeout)."""
    consumer = KafkaConsumer(**settings.kafka.client_options(), enable_auto_commit=False, group_id=None)
    parts = [TopicPartition(topics.SPANS.name, p) for p in range(topics.SPANS.partitions)]
    parts += [TopicPartition(topics.DEAD_LETTERS.name, p) for p in range(topics.DEAD_LETTERS.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out = {"span_records": [], "dead_letters": [], "heartbeats": 0, "timestamps": [], "drained_s": None}
    started, end_offsets = time.monotonic(), None
    try:
        while time.monotonic() - started < CONSUME_TIMEOUT_S:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    doc = json.loads(r.value)
                    if tp.topic == topics.DEAD_LETTERS.name:
                        out["dead_letters"].append((doc["trace_id"], doc["span_id"]))
                    elif doc.get("kind") == "heartbeat":
                        out["heartbeats"] += 1
                    elif (doc.get("session_id") or "").startswith(run):
                        out["span_records"].append((doc["trace_id"], doc["span_id"]))
                        out["timestamps"].append(r.timestamp)
            if end_offsets is None:
                health = edge.health() or {}
                if health.get("buffered_spans") == 0:
                    out["drained_s"] = time.monotonic() - started
                    end_offsets = consumer.end_offsets(parts)
            elif all(consumer.position(tp) >= end_offsets[tp] for tp in parts):
                break
    finally:
        consumer.close()
    return out


@pytest.fixture
def own_broker(tmp_path, monkeypatch):
    for name, value in {"TOKENPULSE_PATHS_STATE_DIR": str(tmp_path / "state"),
                        "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": BROKER,
                        "TOKENPULSE_KAFKA_CONTROLLER_PORT": CONTROLLER_PORT}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    stack = Stack(settings)
    try:
        yield settings, stack
    finally:
        stack.stop("kafka")


def test_edge_collector_keeps_every_span_through_a_kafka_outage_and_kill_9(own_broker, tmp_path):
    settings, stack = own_broker
    progress = lambda m: print(f"[edge-it] {m}", flush=True)  # noqa: E731
    run = uuid.uuid4().hex[:10]
    edge = EdgeProcess({**os.environ, "TOKENPULSE_EDGE_PORT": str(EDGE_PORT),
                        "TOKENPULSE_EDGE_BUFFER_DIR": str(tmp_path / "edge-buffer"),
                        "TOKENPULSE_EDGE_RETRY_BACKOFF_MAX_MS": "1000"}, tmp_path / "edge.log")
    try:
        stack.up(progress, only=["kafka"])
        apply_topics(settings.kafka)
        edge.start()
        stack.stop("kafka")
        progress("broker stopped; sending spans to the edge collector")

        spans = make_spans(run)
        exporter = OTLPSpanExporter(endpoint=f"{edge.url}/v1/traces", headers={"Authorization": f"Bearer {KEY}"},
                                    timeout=30)
        t0 = time.perf_counter()
        for i in range(0, len(spans), EXPORT_BATCH):
            assert exporter.export(spans[i:i + EXPORT_BATCH]) == SpanExportResult.SUCCESS
        accept_s = time.perf_counter() - t0
        exporter.shutdown()
        before = edge.health()
        assert (before["received"], before["dead_letters"], before["forwarded"]) == (SPANS, INVALID, 0)
        assert before["buffered_spans"] == SPANS + INVALID

        edge.kill(signal.SIGKILL)
        edge.start()
        after_restart = edge.health()
        assert after_restart["buffered_spans"] == SPANS + INVALID, edge.tail()
        assert after_restart["buffered_bytes"] == before["buffered_bytes"]
        progress(f"after kill -9 and restart the buffer holds {after_restart['buffered_spans']} records")

        stack.up(progress, only=["kafka"])
        got = consume_everything(settings, edge, run)
        metrics = edge.metrics()
    finally:
        edge.kill(signal.SIGTERM)

    expected = {span_id_pair(s) for s in spans[:SPANS]}
    distinct = set(got["span_records"])
    duplicates = len(got["span_records"]) - len(distinct)
    stamps = got["timestamps"]
    forward_s = (max(stamps) - min(stamps)) / 1000 if stamps else float("nan")
    progress(f"accepted {SPANS + INVALID} spans over OTLP/HTTP in {accept_s:.2f} s "
             f"({(SPANS + INVALID) / accept_s:.0f} spans/s, {EXPORT_BATCH} per request, broker down)")
    drained = "not" if got["drained_s"] is None else f"{got['drained_s']:.2f} s"
    progress(f"buffer drained {drained} after the broker was ready; records sent over "
             f"{forward_s:.2f} s by their Kafka timestamps (~{len(stamps) / max(forward_s, 1e-3):.0f} records/s)")
    progress(f"span records {len(got['span_records'])}, distinct {len(distinct)}, duplicates {duplicates}; "
             f"dead letters {len(got['dead_letters'])}; heartbeats {got['heartbeats']}")

    assert distinct == expected, f"missing {len(expected - distinct)}, unexpected {len(distinct - expected)}"
    assert set(got["dead_letters"]) == {span_id_pair(s) for s in spans[SPANS:]}
    assert got["heartbeats"] == 0  # the edge collector never sends watermark heartbeats
    assert f"tokenpulse_edge_forwarded_total {SPANS + INVALID}\n" in metrics, metrics
    assert "tokenpulse_edge_buffered_spans 0\n" in metrics
