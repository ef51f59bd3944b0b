"""What a binary format on the raw topic would save: the cost job's JSON read vs Avro (issue #15).

    python bench/record_format.py [--spans 200000] [--reps 2] [--object-reuse]

The raw topic (tokenpulse.spans.raw.v1) carries one TokenSpan as JSON per record; the cost job
is its only reader. This measures both ends of the record, on one broker of its own
(.state/bench-format, ports 34092/34093; no other benchmark uses them):

  1. encode, in the collector's process: the collector's records (TokenSpan built from OTLP by
     its mapping) as JSON (`model_dump_json`, what the collector writes today) and as Avro
     binary of the cost job's source schema (fastavro's `schemaless_writer` over
     `model_dump()`), CPU-µs per span of one Python thread;
  2. the Flink read: a PyFlink job (a MiniCluster in a child process, parallelism 1) reads the
     topic to its end offsets with the cost job's source schema, `'format' = 'json'` or
     `'format' = 'avro'` (flink-sql-avro, the schema Flink derives from the table), into a
     blackhole sink. Its process-tree CPU minus the same job over an empty topic (start-up, JIT
     of an idle job) is the per-span cost of Kafka fetch + decode;
  3. the broker's CPU for the produce and the read.

Every Avro record is decoded back in Python and compared with its JSON twin before anything is
timed, so both topics hold the same spans. Not measured: the other writers of the raw topic
(edge forwarder, SDK exporter, drills) and the dead-letter path, which a change of format would
also touch. Appends a JSON line to bench/results/record_format.jsonl.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

# batched_records sets its own stack environment when imported; this bench's comes after it.
import batched_records  # noqa: E402

STATE = REPO / ".state" / "bench-format"
os.environ.update({
    "TOKENPULSE_PATHS_STATE_DIR": str(STATE),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:34092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "34093",
})

import bench_results  # noqa: E402
from proc_tree import tree_cpu_s  # noqa: E402

from tokenpulse.settings import Settings  # noqa: E402

AVRO_JAR = REPO / ".cache" / "jars" / "bench" / "flink-sql-avro-2.3.0.jar"
AVRO_TYPES = {"STRING": "string", "INT": "int", "BIGINT": "long", "BOOLEAN": "boolean"}


def avro_schema() -> dict:
    """The Avro schema Flink's avro format derives from the cost job's source columns: a record
    named `record`, every (nullable) column a union of null and its type, null first."""
    fields = [{"name": name, "type": ["null", AVRO_TYPES[kind]]} for name, kind in batched_records.span_fields()]
    return {"type": "record", "name": "record", "namespace": "org.apache.flink.avro.generated", "fields": fields}


# --- the Flink side (run in a child process: its CPU is the child's process tree) -------------
def flink_read(topic: str, fmt: str, object_reuse: bool) -> dict:
    from tokenpulse.stream_jobs.job_runtime import kafka_options

    settings = Settings()
    t_env = batched_records.read_job_env(settings, object_reuse, extra_jars=(AVRO_JAR,))
    columns = ", ".join(f"{name} {kind}" for name, kind in batched_records.span_fields())
    format_options = ("'format' = 'json', 'json.fail-on-missing-field' = 'false', 'json.ignore-parse-errors' = 'false'"
                      if fmt == "json" else "'format' = 'avro'")
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE spans_in ({columns}) WITH ({kafka_options(settings, 'source')}, 'topic' = '{topic}',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
  'properties.group.id' = 'bench-{uuid.uuid4().hex[:6]}', {format_options})""")
    t_env.execute_sql(f"CREATE TEMPORARY TABLE spans_out ({columns}) WITH ('connector' = 'blackhole')")
    t0 = time.monotonic()
    t_env.execute_sql("INSERT INTO spans_out SELECT * FROM spans_in").wait()
    return {"cpu_s": tree_cpu_s(os.getpid()), "job_s": time.monotonic() - t0}


def flink_child(topic: str, fmt: str, object_reuse: bool) -> dict:
    return batched_records.child_result(__file__, topic, ["--format", fmt, *(["--object-reuse"] if object_reuse else [])])


# --- the collector side -----------------------------------------------------------------------
def collector_spans(count: int) -> list:
    """TokenSpan models as the collector maps them: 20,000 distinct calls, repeated."""
    from e2e_throughput import decode, make_batches, map_span

    distinct = [map_span(s, tenant="acme", received_ms=int(time.time() * 1000))
                for body in make_batches(min(count, 20_000), 500, f"format-{uuid.uuid4().hex[:6]}")
                for s in decode(body, "application/x-protobuf")]
    return [distinct[i % len(distinct)] for i in range(count)]


def encode_json(spans: list) -> tuple[list[bytes], float]:
    cpu0 = time.thread_time()
    values = [s.model_dump_json().encode() for s in spans]
    return values, time.thread_time() - cpu0


def encode_avro(spans: list, schema: dict) -> tuple[list[bytes], float]:
    from fastavro import parse_schema, schemaless_writer

    parsed = parse_schema(schema)
    cpu0 = time.thread_time()
    values = []
    for s in spans:
        buf = io.BytesIO()
        schemaless_writer(buf, parsed, s.model_dump())
        values.append(buf.getvalue())
    return values, time.thread_time() - cpu0


def check_same(json_values: list[bytes], avro_values: list[bytes], schema: dict) -> None:
    """Every Avro record decodes to its JSON twin's values on the schema's fields."""
    from fastavro import parse_schema, schemaless_reader

    parsed = parse_schema(schema)
    names = [f["name"] for f in schema["fields"]]
    for j, a in zip(json_values, avro_values, strict=True):
        want, got = json.loads(j), schemaless_reader(io.BytesIO(a), parsed)
        for name in names:
            if want.get(name) != got[name]:
                raise SystemExit(f"Avro and JSON disagree on {name}: {got[name]!r} vs {want.get(name)!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000, help="spans per topic (default 200,000)")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of each format, alternating")
    ap.add_argument("--object-reuse", action="store_true", help="the Flink job with pipeline.object-reuse = true")
    ap.add_argument("--flink-read", help=argparse.SUPPRESS)  # the child process's mode
    ap.add_argument("--format", default="json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.flink_read:
        print(json.dumps(flink_read(args.flink_read, args.format, args.object_reuse)))
        return
    if not AVRO_JAR.exists():
        raise SystemExit(f"{AVRO_JAR} is missing: mvn dependency:copy -Dartifact=org.apache.flink:flink-sql-avro:2.3.0 "
                         f"-DoutputDirectory={AVRO_JAR.parent}")

    from tokenpulse.stack import Stack

    schema = avro_schema()
    print(f"mapping {args.spans:,} spans", file=sys.stderr)
    spans = collector_spans(args.spans)
    keys = [s.kafka_key() for s in spans]
    json_values, json_cpu = encode_json(spans)
    avro_values, avro_cpu = encode_avro(spans, schema)
    check_same(json_values[:20_000], avro_values[:20_000], schema)
    encode = {"json": {"cpu_us": 1e6 * json_cpu / len(spans), "bytes": sum(map(len, json_values)) // len(spans)},
              "avro": {"cpu_us": 1e6 * avro_cpu / len(spans), "bytes": sum(map(len, avro_values)) // len(spans)}}
    for fmt, e in encode.items():
        print(f"encode {fmt:>4}: {e['cpu_us']:5.1f} CPU-µs/span, {e['bytes']} B", file=sys.stderr)
    values = {"json": json_values, "avro": avro_values}

    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr), only=["kafka"])
    results: dict[str, list[dict]] = {"json": [], "avro": []}
    try:
        broker = stack.pid("kafka")
        empty = {fmt: flink_child(batched_records.new_topic(settings), fmt, args.object_reuse) for fmt in values}
        print("Flink's fixed cost (empty topic): " + ", ".join(f"{f} {e['cpu_s']:.1f} CPU-s" for f, e in empty.items()),
              file=sys.stderr)
        for rep in range(args.reps):
            for fmt, vals in values.items():
                records = [(batched_records.partition_of(k), k, v) for k, v in zip(keys, vals, strict=True)]
                topic = batched_records.new_topic(settings)
                time.sleep(1)
                broker0 = tree_cpu_s(broker)
                produce_cpu = batched_records.produce(settings, topic, records)
                read = flink_child(topic, fmt, args.object_reuse)
                row = {"producer_cpu_us": 1e6 * produce_cpu / len(records),
                       "broker_cpu_us": 1e6 * (tree_cpu_s(broker) - broker0) / len(records),
                       "flink_cpu_us": 1e6 * (read["cpu_s"] - empty[fmt]["cpu_s"]) / len(records),
                       "flink_job_s": read["job_s"]}
                results[fmt].append(row)
                print(f"rep {rep + 1}  {fmt:>4}  producer {row['producer_cpu_us']:5.1f}  broker "
                      f"{row['broker_cpu_us']:5.1f}  Flink read {row['flink_cpu_us']:6.1f} CPU-µs/span "
                      f"(job {read['job_s']:.1f} s)", file=sys.stderr)
    finally:
        stack.down()
    bench_results.append("record_format.jsonl", {**bench_results.run_info(), "spans": args.spans,
                                                 "object_reuse": args.object_reuse, "encode": encode,
                                                 "flink_fixed": empty, "results": results})
    print("\n| format | bytes/span | encode CPU-µs/span | producer | broker | Flink read |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for fmt, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("producer_cpu_us", "broker_cpu_us", "flink_cpu_us")}
        print(f"| {fmt} | {encode[fmt]['bytes']} | {encode[fmt]['cpu_us']:.1f} | {med['producer_cpu_us']:.1f} | "
              f"{med['broker_cpu_us']:.1f} | {med['flink_cpu_us']:.1f} |")


if __name__ == "__main__":
    main()
