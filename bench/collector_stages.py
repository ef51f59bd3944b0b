"""Profile the collector's accept path stage by stage, against a real Kafka broker.

    python bench/collector_stages.py [--spans 20000] [--batch 500]

The end-to-end benchmark (bench/e2e_throughput.py) shows the collector as the slowest stage.
This script takes it apart, in one process and one run so the ratios are comparable:

  decode    OTLP protobuf bytes -> OtlpSpan objects            (core/otlp_decode.py)
  map       OtlpSpan -> validated TokenSpan (pydantic)          (core/genai_mapping.py)
  serialize TokenSpan -> JSON bytes                             (TokenSpan.model_dump_json)
  produce   kafka-python send + flush, acks=all, idempotent     (core/kafka_writer.py settings)

kafka-python computes CRC-32C in pure Python unless the `crc32c` package is installed
(a dependency since this benchmark found it); `crc32c: C` or `pure Python` is printed.

and then times the produce stage under a few producer settings (compression, linger, batch
size), each on a fresh topic, so the lever with the biggest effect is measured, not guessed.
Needs a broker: `tokenpulse up --only kafka` (uses TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS).
Prints a table and appends a JSON line to bench/results/collector_stages.jsonl.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import uuid
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from e2e_throughput import make_batches  # noqa: E402

from tokenpulse.core.genai_mapping import map_span  # noqa: E402
from tokenpulse.core.otlp_decode import decode  # noqa: E402
from tokenpulse.settings import Settings  # noqa: E402

# Producer variants: the collector's old settings first, then one change at a time (the
# collector now uses 1 MiB batches: KafkaSettings.producer_batch_bytes).
COLLECTOR = {"acks": "all", "enable_idempotence": True, "linger_ms": 5, "compression_type": "lz4"}
VARIANTS = {
    "collector before (lz4, linger 5 ms, 16 KiB batches)": {},
    "no compression": {"compression_type": None},
    "gzip": {"compression_type": "gzip"},
    "linger 20 ms, 256 KiB batches": {"linger_ms": 20, "batch_size": 256 * 1024},
    "lz4, 256 KiB batches": {"batch_size": 256 * 1024},
    "lz4, 1 MiB batches (collector now)": {"batch_size": 1024 * 1024},
    "gzip, 1 MiB batches": {"compression_type": "gzip", "batch_size": 1024 * 1024},
    "acks=1, no idempotence (NOT durable; reference only)": {"acks": 1, "enable_idempotence": False},
}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def produce(settings: Settings, records: list[tuple[bytes, bytes]], overrides: dict) -> float:
    topic = f"bench.stages.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**settings.kafka.client_options())
    admin.create_topics([NewTopic(topic, 4, 1)])
    admin.close()
    producer = KafkaProducer(**settings.kafka.client_options(), **{**COLLECTOR, **overrides})
    producer.send(topic, key=b"warmup", value=b"{}").get(timeout=30)  # connection + metadata outside the clock
    t0 = time.perf_counter()
    futures = [producer.send(topic, key=k, value=v) for k, v in records]
    producer.flush()
    for f in futures:
        f.get(timeout=0)
    seconds = time.perf_counter() - t0
    producer.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500, help="spans per OTLP request")
    args = ap.parse_args()
    settings = Settings()

    bodies = make_batches(args.spans, args.batch, uuid.uuid4().hex[:8])
    n = args.spans
    received_ms = int(time.time() * 1000)
    decoded, t_decode = timed(lambda: [s for b in bodies for s in decode(b, "application/x-protobuf")])
    mapped, t_map = timed(lambda: [map_span(s, tenant="acme", received_ms=received_ms) for s in decoded])
    records, t_ser = timed(lambda: [(m.kafka_key(), m.model_dump_json().encode()) for m in mapped])

    stages = {"decode": t_decode, "map + validate": t_map, "serialize": t_ser}
    variants = {}
    for name, overrides in VARIANTS.items():
        variants[name] = produce(settings, records, overrides)
        print(f"  {name}: {n / variants[name]:,.0f} rec/s", file=sys.stderr)
    stages["produce (collector now)"] = variants["lz4, 1 MiB batches (collector now)"]

    from kafka.record import util as record_util
    crc = "C" if record_util.crc32c_c is not None else "pure Python"
    total = sum(stages.values())
    print(f"\nCollector accept path, {n:,} spans in {len(bodies)} requests of {args.batch} (crc32c: {crc}):")
    print(f"{'stage':<32}{'seconds':>9}{'share':>8}{'spans/s':>11}")
    for name, s in stages.items():
        print(f"{name:<32}{s:>9.3f}{s / total:>8.0%}{n / s:>11,.0f}")
    print(f"{'all stages, one thread':<32}{total:>9.3f}{'':>8}{n / total:>11,.0f}")
    print("\nProducer settings (same records, fresh topic each):")
    base = variants[next(iter(VARIANTS))]
    for name, s in variants.items():
        print(f"  {name:<56}{n / s:>10,.0f} rec/s  x{base / s:.2f}")

    line = {"at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": bench_results.git_commit(), "cpu": platform.processor(),
            "spans": n, "crc32c": crc, "bytes_per_record": sum(len(v) for _, v in records) // n,
            "stages_s": stages, "produce_variants_s": variants}
    bench_results.append("collector_stages.jsonl", line)


if __name__ == "__main__":
    main()
