"""The loader's cost per priced span: Python conversion vs ClickHouse parsing the JSON (issue #15).

    python bench/loader_intake.py [--records 20000] [--reps 3]

Builds `--records` priced-topic records shaped as the cost job writes them (every field of
stream_jobs/cost_rollup.py priced_spans_out, ~1.2 KB, costs as plain JSON numbers with 12
decimals), then, alternating the two variants `--reps` times, runs the loader's own code on
them (loader/kafka_to_clickhouse.py: Batch.add for every record, then the flush, batches of
`--batch` as the loader uses) into an embedded chDB store on disk (.state/bench-loader):

  python   every record through rows.priced_span_row (json + Decimal) and clickhouse-connect's
           native insert: the loader before issue #15 (TOKENPULSE_LOADER_JSON_INTAKE=false)
  json     orjson type check, the bytes as JSONEachRow into token_spans_json (sql/migrations/0016)

It reports process CPU (all threads, chDB's included) and wall time per record, also counting
the `--settle` seconds after the inserts (chDB's background merges), and checks that
both variants stored every span with the exact Decimal sum of the records' costs. Kafka is not
involved: the consumer's cost is the same for both (see bench/README.md). Appends a JSON line to
bench/results/loader_intake.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
import clickhouse_connect
from tqdm import tqdm

from tokenpulse.loader.clickhouse import LockedClient
from tokenpulse.loader.kafka_to_clickhouse import Batch, KafkaToClickHouse, LoaderStats
from tokenpulse.loader.migrations import migrate_up
from tokenpulse.schemas import topics
from tokenpulse.settings import LoaderSettings

STATE = Path(__file__).resolve().parents[1] / ".state" / "bench-loader"


def priced_record(rng: random.Random, i: int) -> tuple[bytes, Decimal]:
    cost = Decimal(rng.randint(0, 10**10)) / Decimal(10**12)
    doc = {
        "tenant": "acme", "service": "bench-app", "team": "platform", "agent_id": f"agent-{i % 50}",
        "agent_name": "researcher", "session_id": f"session-{i % 500}", "tool_name": None,
        "call_fingerprint": uuid.UUID(int=rng.getrandbits(128)).hex, "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "span_id": f"{rng.getrandbits(64):016x}", "parent_span_id": f"{rng.getrandbits(64):016x}",
        "operation": "chat", "provider": "openai", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
        "model": "gpt-4o-2024-08-06", "runtime_kind": "cloud", "runtime_id": "openai",
        "start_ms": 1_765_000_000_000 + i, "end_ms": 1_765_000_001_500 + i, "received_ms": 1_765_000_002_000 + i,
        "input_tokens": rng.randint(200, 20_000), "output_tokens": rng.randint(10, 2_000),
        "cached_input_tokens": 0, "cache_creation_input_tokens": 0, "reasoning_tokens": rng.choice([0, 0, 256]),
        "status": "ok", "error_type": None, "service_tier": "standard", "collector_id": "collector-1",
        "input_audio_tokens": 0, "output_audio_tokens": 0, "input_images": 0, "output_images": 0,
        "input_audio_seconds": 0, "semantic_cache_hit": False, "api_key_id": "key-1",
        "response_id": f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}", "sender": "openllmetry/0.62.4",
        "usage_missing": False, "tool_call_id": None, "tool_type": None, "record": "span", "revision": 0,
        "catalog_model": "gpt-4o", "priced": True,
    }
    tail = f', "cost_usd": {cost:.12f}, "edge_cost_usd": 0.000000000000, "cloud_equivalent_cost_usd": {cost:.12f}, "is_late": false}}'
    return (json.dumps(doc)[:-1] + tail).encode(), cost


class NoKafka:
    def commit(self) -> None:
        pass


def run_variant(store: LockedClient, values: list[bytes], json_intake: bool, batch_rows: int, settle_s: float) -> dict:
    loader = KafkaToClickHouse.__new__(KafkaToClickHouse)  # the loader's code, without a consumer
    loader.cfg = LoaderSettings(json_intake=json_intake, batch_max_rows=batch_rows)
    loader.store, loader.consumer, loader.stats, loader._running = store, NoKafka(), LoaderStats(), True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for start in range(0, len(values), batch_rows):
        batch = Batch(json_intake=json_intake)
        for offset, value in enumerate(values[start:start + batch_rows], start):
            batch.add(topics.PRICED_SPANS.name, 0, offset, value)
        loader._flush(batch)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    time.sleep(settle_s)  # the engine merges the inserted parts in background threads meanwhile
    settled = time.process_time() - cpu0
    return {"cpu_us_per_record": 1e6 * cpu / len(values), "wall_us_per_record": 1e6 * wall / len(values),
            "cpu_us_per_record_settled": 1e6 * settled / len(values),
            "stored_as_json": loader.stats.token_spans_json, "fallbacks": loader.stats.json_intake_fallbacks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=3, help="measured runs per variant (variants alternate)")
    ap.add_argument("--batch", type=int, default=LoaderSettings().batch_max_rows, help="records per flush")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--settle", type=float, default=10.0,
                    help="seconds after the inserts whose CPU (background merges) is counted too")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    records = [priced_record(rng, i) for i in tqdm(range(args.records), desc="records", unit="rec")]
    values, expected_cost = [v for v, _ in records], sum((c for _, c in records), Decimal(0))
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{STATE}")
    bootstrap.command("CREATE DATABASE IF NOT EXISTS bench")
    client = clickhouse_connect.get_client(dsn=f"chdb://{STATE}", database="bench")
    migrate_up(client)
    store = LockedClient(client)

    runs: dict[str, list[dict]] = {"python": [], "json": []}
    for _ in tqdm(range(args.reps), desc="runs", unit="rep"):
        for name in ("python", "json"):
            client.command("TRUNCATE TABLE token_spans")
            result = run_variant(store, values, name == "json", args.batch, args.settle)
            count, cost = client.query("SELECT count(), sum(cost_usd) FROM token_spans FINAL").result_rows[0]
            if count != len(values) or cost != expected_cost:
                raise SystemExit(f"{name}: stored {count} spans, {cost} USD; expected {len(values)}, {expected_cost}")
            runs[name].append(result)

    summary = {name: {k: statistics.median(r[k] for r in rs) for k in ("cpu_us_per_record", "wall_us_per_record", "cpu_us_per_record_settled")}
               for name, rs in runs.items()}
    ratio = summary["python"]["cpu_us_per_record"] / summary["json"]["cpu_us_per_record"]
    bench_results.append("loader_intake.jsonl", {**bench_results.run_info(), **vars(args), "runs": runs,
                                                 "median": summary, "cpu_ratio_python_to_json": ratio,
                                                 "bytes_per_record": sum(map(len, values)) // len(values),
                                                 "exact_cost_usd": str(expected_cost)})
    print(f"\n{len(values):,} priced spans, {sum(map(len, values)) // len(values)} B each, {args.reps} runs per variant "
          f"(median); every run stored all spans, cost sum exact ({expected_cost} USD)")
    print(f"{'variant':8s} {'CPU-µs/span':>12s} {'wall-µs/span':>13s} {f'CPU incl. {args.settle:.0f} s after':>20s}")
    for name, s in summary.items():
        print(f"{name:8s} {s['cpu_us_per_record']:12.1f} {s['wall_us_per_record']:13.1f} "
              f"{s['cpu_us_per_record_settled']:20.1f}")
    print(f"Python conversion / JSON intake, CPU: {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
