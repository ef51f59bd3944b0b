"""Benchmark: runaway-loop alert latency, from the offending span's send to the webhook.

    python bench/alert_latency.py [--runs 60] [--repeats 5]

Starts its own stack under .state/bench-alerts on ports 38092/38093/38317/38318/38124 (so it does
not collide with `tokenpulse up`), with a local webhook receiver as the only hook. Each run
is a fresh agent session that makes the same call `--repeats` times; the last one completes
the repetition rule's evidence. We time, per run:
  * webhook:  send of the offending span (OTLP/HTTP to the collector) -> signed webhook received
              (collector -> Kafka -> cost job -> priced topic -> loop detection job -> alerts
              topic -> dispatcher -> HTTP)
  * breaker:  same start -> the app's CircuitBreaker reports the session stopped
              (... alerts topic -> collector board -> long poll -> SDK)
Prints p50/p90/p99/max and appends a JSON line to bench/results/alert_latency.jsonl.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
STATE = REPO / ".state" / "bench-alerts"
ENV = {
    "TOKENPULSE_PATHS_STATE_DIR": str(STATE),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:38092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "38093",
    "TOKENPULSE_COLLECTOR_PORT": "38318",
    "TOKENPULSE_COLLECTOR_GRPC_PORT": "38317",
    "TOKENPULSE_LOADER_QUERY_PORT": "38124",
    "TOKENPULSE_DETECTOR_DETECTORS_FILE": str(STATE / "detectors.yaml"),
    "TOKENPULSE_ALERTS_HOOKS_FILE": str(STATE / "hooks.yaml"),
    "TOKENPULSE_BENCH_HOOK_SECRET": "bench-secret",
}
os.environ.update(ENV)

import yaml  # noqa: E402
from hook_receivers import RecordingServer  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from percentiles import percentile  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tokenpulse.schemas.detectors import DetectorConfig  # noqa: E402
from tokenpulse.sdk import CircuitBreaker, call_fingerprint  # noqa: E402
from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

KEY = "demo-acme-key"


def spans_for(session: str, repeats: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-looper"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    fp = call_fingerprint(prompt="look up the same order again")
    for _ in range(repeats):
        span = tracer.start_span("chat gpt-4o-mini", attributes={
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 20, "gen_ai.conversation.id": session,
            "tokenpulse.call.fingerprint": fp})
        span.end()
    return list(memory.get_finished_spans())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5, help="identical calls per session (the rule's min_repeats)")
    parser.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args()

    receiver = RecordingServer()
    STATE.mkdir(parents=True, exist_ok=True)
    rules = {"repetition": {"min_repeats": args.repeats, "window_s": 60, "severity": "critical", "action": "stop"}}
    DetectorConfig.model_validate({"rules": rules})  # fail here, not in the job
    (STATE / "detectors.yaml").write_text(yaml.safe_dump({"rules": rules}))
    (STATE / "hooks.yaml").write_text(yaml.safe_dump({"hooks": [
        {"name": "bench-webhook", "kind": "webhook", "url": receiver.url, "secret_env": "TOKENPULSE_BENCH_HOOK_SECRET"}]}))
    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr))
    collector = f"http://{settings.collector.host}:{settings.collector.port}"
    exporter = OTLPSpanExporter(endpoint=f"{collector}/v1/traces", headers={"Authorization": f"Bearer {KEY}"})
    breaker = CircuitBreaker(collector, api_key=KEY)
    breaker.wait_ready(15)
    webhook_s, breaker_s, missed = [], [], 0
    try:
        # warm-up: the first records through fresh Python workers and Kafka connections
        for _ in range(3):
            session = f"warmup-{uuid.uuid4().hex[:8]}"
            exporter.export(spans_for(session, args.repeats))
            receiver.wait_for(lambda r, s=session: s.encode() in r.body, timeout_s=60)
        for _ in tqdm(range(args.runs), desc="alert runs", unit="run", file=sys.stderr):
            session = f"bench-{uuid.uuid4().hex[:8]}"
            spans = spans_for(session, args.repeats)
            assert exporter.export(spans[:-1]) == SpanExportResult.SUCCESS
            time.sleep(0.3)  # the earlier calls are in; now the one that completes the evidence
            sent = time.time()
            assert exporter.export(spans[-1:]) == SpanExportResult.SUCCESS
            hit = receiver.wait_for(lambda r, s=session: s.encode() in r.body, timeout_s=30)
            if not hit:
                missed += 1
                continue
            webhook_s.append(hit[0].at - sent)
            deadline = time.monotonic() + 10
            while not breaker.is_stopped(session) and time.monotonic() < deadline:
                time.sleep(0.002)
            if breaker.is_stopped(session):
                breaker_s.append(time.time() - sent)
    finally:
        breaker.close()
        exporter.shutdown()
        if not args.keep_up:
            stack.down()
        receiver.close()

    def stats(xs: list[float]) -> dict:
        if not xs:
            return {}
        return {"n": len(xs), "p50_ms": round(statistics.median(xs) * 1000, 1),
                "p90_ms": round(percentile(xs, 90) * 1000, 1), "p99_ms": round(percentile(xs, 99) * 1000, 1),
                "max_ms": round(max(xs) * 1000, 1)}

    result = {"bench": "alert_latency", **bench_results.run_info(), **vars(args),
              "missed": missed, "webhook": stats(webhook_s), "breaker": stats(breaker_s)}
    print(f"\n{'path':10} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in ("webhook", "breaker"):
        s = result[name]
        if s:
            print(f"{name:10} {s['n']:>4} {s['p50_ms']:>8} {s['p90_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}")
    print(f"missed (no alert within 30 s): {missed}")
    bench_results.append("alert_latency.jsonl", result)


if __name__ == "__main__":
    main()
