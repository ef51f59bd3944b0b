"""Benchmark: rollup latency, from a span's send to its 1-minute rollup row in ClickHouse.

    python bench/rollup_latency.py [--minutes 5] [--rate 2] [--watermark-delay-ms 10000]

Starts its own stack under .state/bench-rollups on ports 37092/37093/37318/37124 (apart from
`tokenpulse up` and the other benchmarks), then sends `--rate` spans per second, one span
per OTLP request, for `--minutes` minutes, and polls `spend_1m` every 200 ms. We time:

  * span -> rollup:   send of each span -> the first moment its minute's rollup row counts
                      every span sent in that minute (collector -> Kafka -> Flink window ->
                      Kafka -> loader -> chDB). Bounded below by the wait for the minute to
                      end: a span sent at second s waits about 60 - s seconds by design.
  * window close:     end of the minute -> that complete rollup row visible. This is the
                      pipeline's own delay: the watermark delay (the job's allowance for
                      late spans, `TOKENPULSE_STREAM_WATERMARK_DELAY_MS`, 10 s by default),
                      the heartbeat interval, and the loader's batch.

Prints p50/p90/p99/max and appends a JSON line to bench/results/rollup_latency.jsonl.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".state" / "bench-rollups"
ENV = {
    "TOKENPULSE_PATHS_STATE_DIR": str(STATE),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:37092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "37093",
    "TOKENPULSE_COLLECTOR_PORT": "37318",
    "TOKENPULSE_COLLECTOR_GRPC_PORT": "37317",
    "TOKENPULSE_LOADER_QUERY_PORT": "37124",
}
os.environ.update(ENV)

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from percentiles import percentile  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.sql_client import run_sql  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

KEY = "demo-acme-key"
POLL_S = 0.2


def stats(xs: list[float]) -> dict:
    if not xs:
        return {}
    return {"n": len(xs), "p50_s": round(statistics.median(xs), 2), "p90_s": round(percentile(xs, 90), 2),
            "p99_s": round(percentile(xs, 99), 2), "max_s": round(max(xs), 2)}


class RollupWatcher(threading.Thread):
    """Polls spend_1m for the run's app; records when each minute first counts `expected[minute]` calls."""

    def __init__(self, settings: Settings, app: str, expected: Counter) -> None:
        super().__init__(daemon=True)
        self.settings, self.app, self.expected = settings, app, expected
        self.complete_at: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(POLL_S):
            rows = run_sql(self.settings, "SELECT toUnixTimestamp(window_start) AS m, sum(calls) FROM spend_1m FINAL "
                                          "WHERE service = {app:String} GROUP BY m", {"app": self.app}).rows
            now = time.time()
            for minute, calls in rows:
                if minute not in self.complete_at and calls >= self.expected.get(int(minute), 1 << 62):
                    self.complete_at[int(minute)] = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=5, help="minutes of steady traffic (each is one window)")
    parser.add_argument("--rate", type=float, default=2.0, help="spans per second, one per request")
    parser.add_argument("--watermark-delay-ms", type=int, default=10_000,
                        help="the job's allowance for out-of-order spans (the production default is 10000)")
    args = parser.parse_args()
    os.environ["TOKENPULSE_STREAM_WATERMARK_DELAY_MS"] = str(args.watermark_delay_ms)

    STATE.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr))
    app = f"bench-rollup-{uuid.uuid4().hex[:8]}"
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": app, "tokenpulse.team": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    exporter = OTLPSpanExporter(endpoint=f"http://{settings.collector.host}:{settings.collector.port}/v1/traces",
                                headers={"Authorization": f"Bearer {KEY}"})
    expected: Counter = Counter()
    sent_at: list[tuple[int, float]] = []  # (minute of the span's end time, send time)
    watcher = RollupWatcher(settings, app, expected)
    try:
        # Start on a minute boundary so every measured window is full.
        time.sleep(60 - time.time() % 60)
        watcher.start()
        total = int(args.minutes * 60 * args.rate)
        t0 = time.time()
        for i in tqdm(range(total), desc="sending", unit="span", file=sys.stderr):
            time.sleep(max(0.0, t0 + i / args.rate - time.time()))
            span = tracer.start_span("chat gpt-4o-mini", attributes={
                "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10})
            span.end()
            finished = memory.get_finished_spans()[-1]
            minute = finished.end_time // 1_000_000_000 // 60 * 60
            expected[minute] += 1
            sent = time.time()
            assert exporter.export([finished]) == SpanExportResult.SUCCESS
            sent_at.append((minute, sent))
        deadline = time.time() + 60 + args.watermark_delay_ms / 1000
        with tqdm(total=len(expected), desc="windows complete", unit="window", file=sys.stderr) as bar:
            while len(watcher.complete_at) < len(expected) and time.time() < deadline:
                bar.n = len(watcher.complete_at)
                bar.refresh()
                time.sleep(0.5)
    finally:
        watcher.stop.set()
        exporter.shutdown()
        stack.down()

    span_to_rollup = [watcher.complete_at[m] - s for m, s in sent_at if m in watcher.complete_at]
    window_close = [watcher.complete_at[m] - (m + 60) for m in expected if m in watcher.complete_at]
    result = {"bench": "rollup_latency", **bench_results.run_info(), **vars(args),
              "windows": len(expected), "windows_incomplete": len(expected) - len(watcher.complete_at),
              "span_to_rollup": stats(span_to_rollup), "window_close": stats(window_close)}
    print(f"\n{'latency':16} {'n':>5} {'p50 s':>7} {'p90 s':>7} {'p99 s':>7} {'max s':>7}")
    for name in ("span_to_rollup", "window_close"):
        s = result[name]
        if s:
            print(f"{name:16} {s['n']:>5} {s['p50_s']:>7} {s['p90_s']:>7} {s['p99_s']:>7} {s['max_s']:>7}")
    print(f"windows never complete: {result['windows_incomplete']}")
    bench_results.append("rollup_latency.jsonl", result)


if __name__ == "__main__":
    main()
