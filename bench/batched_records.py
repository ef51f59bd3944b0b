"""What several spans per Kafka record would save, before changing the raw topic's contract (issue #15).

    python bench/batched_records.py [--spans 200000] [--batches 1 10 100 500] [--reps 2]

Today every span is one Kafka record. This measures, on one broker of its own (.state/bench-batched,
port 33092; no other benchmark uses 33092/33093), the per-record costs a batch would divide:

  1. produce: the collector's librdkafka producer settings (acks=all, idempotence, lz4, 1 MiB
     batches) writing the run's TokenSpan JSON (the collector's own records, built from OTLP by
     the collector's mapping) either one per record or `{"spans": [...]}` of up to B spans of one
     partition per record (the partition the collector's key would pick, so every trace keeps
     its order);
  2. the broker's CPU for that produce plus the Flink read below;
  3. Flink: a PyFlink job (a MiniCluster in a child process, parallelism 1) that reads the topic
     bounded at its end offsets with the cost job's JSON source schema, one span per record or
     `CROSS JOIN UNNEST(spans)`, and writes every column to a blackhole sink. Its process-tree
     CPU (driver + JVM) minus the same job over an empty topic (start-up, JIT of an idle job)
     is the per-span cost of Kafka fetch + JSON decode + unnest.

Not measured here: the trace assembler, pricing and the window (they are per span either
way), and the windowing question a batch raises (bench/README.md). Appends a JSON line to
bench/results/batched_records.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".state" / "bench-batched"
os.environ.update({
    "TOKENPULSE_PATHS_STATE_DIR": str(STATE),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:33092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "33093",
})
sys.path.insert(0, str(REPO / "bench"))

import bench_results  # noqa: E402
from proc_tree import tree_cpu_s  # noqa: E402

from tokenpulse.settings import Settings  # noqa: E402

PARTITIONS = 4


# --- the Flink side (run in a child process: its CPU is the child's process tree) -------------
def span_fields() -> list[tuple[str, str]]:
    """(name, type) of the cost job's source schema, from the job itself."""
    from tokenpulse.stream_jobs.cost_rollup import SPAN_COLUMNS

    return [tuple(field.strip().split(" ", 1)) for field in re.split(r",\s*", SPAN_COLUMNS.strip())]


def read_job_env(settings: Settings, object_reuse: bool, extra_jars: tuple[Path, ...] = ()):
    """A streaming TableEnvironment for a read benchmark: parallelism 1, the Kafka connector
    (and `extra_jars`, e.g. a format) on the job's class path."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    cfg = t_env.get_config()
    cfg.set("parallelism.default", "1")
    # Without object reuse a chained operator gets a deep copy of each row: after an unnest,
    # a row that still references its whole batch.
    cfg.set("pipeline.object-reuse", "true" if object_reuse else "false")
    jar = next(iter(sorted(settings.paths.flink_jars.glob("flink-sql-connector-kafka-*.jar"))))
    cfg.set("pipeline.jars", ";".join(j.resolve().as_uri() for j in (jar, *extra_jars)))
    return t_env


def child_result(script: str, topic: str, args: list[str]) -> dict:
    """Run `script --flink-read topic *args` in a child process (its CPU is the child's process
    tree) and return the JSON of its last output line."""
    out = subprocess.run([sys.executable, script, "--flink-read", topic, *args],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"the Flink read of {topic} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def flink_read(topic: str, batch: int, decode_only: bool = False, object_reuse: bool = False) -> dict:
    """Read `topic` to its end once (one span per record, or arrays of spans unnested) into a
    blackhole sink; return this process tree's CPU seconds and the wall time of the job."""
    from tokenpulse.stream_jobs.job_runtime import kafka_options

    settings = Settings()
    t_env = read_job_env(settings, object_reuse)
    fields = span_fields()
    columns = ", ".join(f"{name} {kind}" for name, kind in fields)
    names = ", ".join(name for name, _ in fields)
    schema = columns if batch == 1 else f"spans ARRAY<ROW<{columns}>>"
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE spans_in ({schema}) WITH ({kafka_options(settings, 'source')}, 'topic' = '{topic}',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
  'properties.group.id' = 'bench-{uuid.uuid4().hex[:6]}',
  'format' = 'json', 'json.fail-on-missing-field' = 'false', 'json.ignore-parse-errors' = 'false')""")
    if decode_only and batch > 1:  # the JSON decode of whole batches, without the unnest
        t_env.execute_sql("CREATE TEMPORARY TABLE spans_out (n INT) WITH ('connector' = 'blackhole')")
        query = "SELECT CARDINALITY(spans) FROM spans_in"
    else:
        t_env.execute_sql(f"CREATE TEMPORARY TABLE spans_out ({columns}) WITH ('connector' = 'blackhole')")
        query = ("SELECT * FROM spans_in" if batch == 1 else
                 f"SELECT s.* FROM spans_in CROSS JOIN UNNEST(spans) AS s({names})")
    t0 = time.monotonic()
    t_env.execute_sql(f"INSERT INTO spans_out {query}").wait()
    return {"cpu_s": tree_cpu_s(os.getpid()), "job_s": time.monotonic() - t0}


def flink_child(topic: str, batch: int, decode_only: bool = False, object_reuse: bool = False) -> dict:
    return child_result(__file__, topic, ["--batch-of", str(batch), *(["--decode-only"] if decode_only else []),
                                          *(["--object-reuse"] if object_reuse else [])])


# --- the Kafka side ---------------------------------------------------------------------------
def span_records(spans: int) -> list[tuple[bytes, bytes]]:
    """The collector's (key, value) records for `spans` LLM calls: 20,000 distinct ones, repeated."""
    from e2e_throughput import collector_records, make_batches

    distinct = collector_records(make_batches(min(spans, 20_000), 500, f"batched-{uuid.uuid4().hex[:6]}"))
    return [distinct[i % len(distinct)] for i in range(spans)]


def partition_of(key: bytes) -> int:
    """The partition the collector's keyed record lands on (murmur2, as the Java client places keys)."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def batched(records: list[tuple[bytes, bytes]], batch: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value): one span per record, or up to B spans of one partition per record
    (an export request's spans of many traces; each trace's spans keep their order, since a key
    has one partition). A batch's key is its first span's."""
    if batch == 1:
        return [(partition_of(key), key, value) for key, value in records]
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        by_partition.setdefault(partition_of(key), []).append((key, value))
    out = []
    for partition, spans in by_partition.items():
        for i in range(0, len(spans), batch):
            chunk = spans[i:i + batch]
            out.append((partition, chunk[0][0], b'{"spans":[' + b",".join(v for _, v in chunk) + b"]}"))
    return out


def new_topic(settings: Settings) -> str:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.batched.{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(**settings.kafka.client_options())
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    return topic


def produce(settings: Settings, topic: str, records: list[tuple[int, bytes, bytes]]) -> float:
    """Write `records` with the collector's producer settings; returns this thread's CPU seconds."""
    from confluent_kafka import Producer

    from tokenpulse.core.kafka_writer import producer_config

    producer = Producer(producer_config(settings.kafka, "bench-batched"))
    failed: list[str] = []

    def delivered(err, _msg) -> None:
        if err is not None:
            failed.append(str(err))

    cpu0 = time.thread_time()
    for partition, key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) or failed:
        raise SystemExit(f"not every record was delivered: {failed[:3]}")
    return time.thread_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000, help="spans per variant (default 200,000)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 10, 100, 500], help="spans per Kafka record")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of every variant, alternating")
    ap.add_argument("--decode-only", action="store_true",
                    help="batches: only decode them in Flink (CARDINALITY of the array), no unnest")
    ap.add_argument("--object-reuse", action="store_true", help="the Flink job with pipeline.object-reuse = true")
    ap.add_argument("--flink-read", help=argparse.SUPPRESS)  # the child process's mode
    ap.add_argument("--batch-of", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.flink_read:
        print(json.dumps(flink_read(args.flink_read, args.batch_of, args.decode_only, args.object_reuse)))
        return

    from tokenpulse.stack import Stack

    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr), only=["kafka"])
    results: dict[str, list[dict]] = {str(b): [] for b in args.batches}
    try:
        broker = stack.pid("kafka")
        records = span_records(args.spans)
        span_bytes = sum(len(v) for _, v in records) // len(records)
        print(f"{len(records):,} spans of {span_bytes} B; Flink's fixed cost: the same job on empty topics",
              file=sys.stderr)
        # one empty run per source schema the variants use: 1 = a span per record, 2 = arrays
        empty = {schema: flink_child(new_topic(settings), schema, args.decode_only, args.object_reuse)
                 for schema in {min(b, 2) for b in args.batches}}
        for rep in range(args.reps):
            for b in args.batches:
                values = batched(records, b)
                topic = new_topic(settings)
                time.sleep(1)
                broker0 = tree_cpu_s(broker)
                produce_cpu = produce(settings, topic, values)
                read = flink_child(topic, b, args.decode_only, args.object_reuse)
                broker_cpu = tree_cpu_s(broker) - broker0
                fixed = empty[min(b, 2)]["cpu_s"]
                row = {"records": len(values), "bytes_per_record": sum(len(v) for _, _, v in values) // len(values),
                       "producer_cpu_us": 1e6 * produce_cpu / len(records),
                       "broker_cpu_us": 1e6 * broker_cpu / len(records),
                       "flink_cpu_us": 1e6 * (read["cpu_s"] - fixed) / len(records),
                       "flink_job_s": read["job_s"]}
                results[str(b)].append(row)
                print(f"rep {rep + 1}  {b:>4} spans/record  {len(values):>7,} records  producer "
                      f"{row['producer_cpu_us']:5.1f}  broker {row['broker_cpu_us']:5.1f}  Flink read "
                      f"{row['flink_cpu_us']:6.1f} CPU-µs/span  (job {read['job_s']:.1f} s)", file=sys.stderr)
    finally:
        stack.down()
    bench_results.append("batched_records.jsonl", {**bench_results.run_info(), "spans": args.spans,
                                                   "span_bytes": span_bytes, "flink_fixed": empty,
                                                   "decode_only": args.decode_only, "object_reuse": args.object_reuse,
                                                   "results": results})
    print("\n| spans per record | producer CPU-µs/span | broker CPU-µs/span | Flink read CPU-µs/span |")
    print("| ---: | ---: | ---: | ---: |")
    for b, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("producer_cpu_us", "broker_cpu_us", "flink_cpu_us")}
        print(f"| {b} | {med['producer_cpu_us']:.1f} | {med['broker_cpu_us']:.1f} | {med['flink_cpu_us']:.1f} |")


if __name__ == "__main__":
    main()
