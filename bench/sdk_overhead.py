"""Benchmark: what tokenpulse's SDK adds to an LLM call, in-process (no network, no stack).

    python bench/sdk_overhead.py [--calls 20000] [--rounds 5]

Same run, same TracerProvider (a BatchSpanProcessor into an exporter that drops spans, so
export cost is excluded for all variants), per recorded call:
  bare_span        tracer.start_as_current_span with the gen_ai attributes set by hand
  record_llm_call  the SDK context manager with a fingerprint computed from the messages
  with_breaker     the same plus the circuit breaker's check (a dict lookup)
  breaker_check    CircuitBreaker.check() alone: the hot-path cost of being stoppable
Reports the best-of-rounds microseconds per call and appends to bench/results/sdk_overhead.jsonl.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tokenpulse.schemas import semconv as sc
from tokenpulse.sdk import CircuitBreaker, record_llm_call

REPO = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": "Where is my order 88231? It was due on 2026-11-20."}]


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def timed(fn, calls: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=100_000))
    tracer = provider.get_tracer("bench")
    # A breaker that never reaches a collector (fail-open, empty set): measures check() alone.
    breaker = CircuitBreaker("http://127.0.0.1:9", api_key="bench", retry_s=60)

    def bare() -> None:
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attributes({sc.PROVIDER_NAME: "openai", sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-4o",
                                 sc.CONVERSATION_ID: "s-1", sc.AGENT_NAME: "support"})
            span.set_attributes({sc.INPUT_TOKENS: 1200, sc.OUTPUT_TOKENS: 80})

    def sdk(with_breaker: bool):
        def call() -> None:
            with record_llm_call(provider="openai", model="gpt-4o", session_id="s-1", agent_name="support",
                                 messages=MESSAGES, breaker=breaker if with_breaker else None,
                                 tracer_provider=provider) as c:
                c.set_usage(input_tokens=1200, output_tokens=80)
        return call

    results = {
        "bare_span_us": timed(bare, args.calls, args.rounds),
        "record_llm_call_us": timed(sdk(False), args.calls, args.rounds),
        "with_breaker_us": timed(sdk(True), args.calls, args.rounds),
        "breaker_check_us": timed(lambda: breaker.check("s-1"), args.calls * 10, args.rounds),
    }
    breaker.close()
    provider.shutdown()
    results["sdk_over_bare_us"] = results["record_llm_call_us"] - results["bare_span_us"]
    print(f"{'variant':22} {'us/call':>10}")
    for k, v in results.items():
        print(f"{k:22} {v:>10.2f}")
    record = {"bench": "sdk_overhead", **bench_results.run_info(), **vars(args),
              **{k: round(v, 3) for k, v in results.items()}}
    bench_results.append("sdk_overhead.jsonl", record)


if __name__ == "__main__":
    main()
