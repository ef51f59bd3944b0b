"""Benchmark: end-to-end spans/s through the skeleton vs raw Kafka throughput of the same records.

    python bench/e2e_throughput.py [--spans 20000] [--batch 500] [--senders 2] [--warm-spans 150000]

Starts its own stack under .state/bench (ports as configured, defaults 19092/4318/18124),
warms it up (`--warm-spans` spans end to end, not measured: a fresh cost job's JIT), then,
in one run:
  1. raw Kafka: produce the very TokenSpan records the collector would write (kafka-python,
     acks=all, idempotent: the collector's settings) and consume them back; then the same
     records through Kafka's own Java ProducerPerformance / ConsumerPerformance (kafka-tools,
     pinned in infra/maven/pom.xml), the broker's ceiling on this machine;
  2. end to end: POST the same spans as OTLP/protobuf to the collector from N sender threads
     and time until every span is a row in ClickHouse (collector -> Kafka -> Flink -> Kafka ->
     loader -> chDB), and until the 1-minute rollups account for all of them.
Prints a table and appends a JSON line to bench/results/results.jsonl (commit, CPU, numbers).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
from proc_tree import stage_memory  # PSS per service

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENPULSE_PATHS_STATE_DIR", str(REPO / ".state" / "bench"))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tokenpulse.core.genai_mapping import map_span  # noqa: E402
from tokenpulse.core.kafka_writer import producer_config  # noqa: E402
from tokenpulse.core.otlp_decode import decode  # noqa: E402
from tokenpulse.schemas import topics  # noqa: E402
from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.sql_client import run_sql  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"), ("ollama", "llama3.1:8b")]


def make_batches(n: int, batch: int, run: str, service: str = "bench-app") -> list[bytes]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "tokenpulse.team": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    now = time.time_ns()
    for i in tqdm(range(n), desc="building spans", unit="span", file=sys.stderr):
        prov, model = MODELS[i % len(MODELS)]
        s = tracer.start_span("chat", start_time=now - 10**9, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": prov, "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1000 + i % 500, "gen_ai.usage.output_tokens": 100 + i % 50,
            "gen_ai.conversation.id": f"{run}-{i % 200}", "gen_ai.agent.name": "bench-agent"})
        s.end(end_time=now + i)
    spans = memory.get_finished_spans()
    return [encode_spans(spans[i:i + batch]).SerializeToString() for i in range(0, len(spans), batch)]


def collector_records(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The (key, value) records the collector writes for these OTLP requests."""
    records = []
    for body in bodies:
        for s in decode(body, "application/x-protobuf"):
            ev = map_span(s, tenant="acme", received_ms=int(time.time() * 1000))
            records.append((ev.kafka_key(), ev.model_dump_json().encode()))
    return records


def fresh_topic(settings: Settings, prefix: str) -> str:
    """A new topic with the raw topic's 4 partitions, so each client is measured on an empty log."""
    topic = f"{prefix}.{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(**settings.kafka.client_options())
    admin.create_topics([NewTopic(topic, 4, 1)])
    admin.close()
    return topic


def raw_kafka(settings: Settings, records: list[tuple[bytes, bytes]]) -> dict:
    topic = fresh_topic(settings, "bench.raw")
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all", enable_idempotence=True,
                             linger_ms=5, compression_type="lz4", batch_size=settings.kafka.producer_batch_bytes)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    produce_s, produce_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    producer.close()
    consumer = KafkaConsumer(topic, **settings.kafka.client_options(), auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=5000)
    cpu0, t0, got = time.process_time(), time.perf_counter(), 0
    for _ in consumer:
        got += 1
        if got == len(records):
            break
    consume_s, consume_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    consumer.close()
    return {"records": len(records), "bytes_per_record": sum(len(v) for _, v in records) // len(records),
            "produce_per_s": len(records) / produce_s, "consume_per_s": got / consume_s,
            "produce_cpu_us": 1e6 * produce_cpu / len(records), "consume_cpu_us": 1e6 * consume_cpu / max(got, 1),
            **librdkafka(settings, records)}


def librdkafka(settings: Settings, records: list[tuple[bytes, bytes]]) -> dict:
    """The same produce and consume through confluent-kafka (librdkafka, C), same settings;
    CPU-µs per record of this process for both clients is the number the collector and loader pay."""
    from confluent_kafka import Consumer, Producer

    topic = fresh_topic(settings, "bench.rd")
    conf = settings.kafka.librdkafka_options()
    producer = Producer(producer_config(settings.kafka, "bench"))  # exactly the collector's settings
    cpu0, t0 = time.process_time(), time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:  # local queue full: let it drain
                producer.poll(0.05)
    producer.flush(60)
    produce_s, produce_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    consumer = Consumer({**conf, "group.id": f"bench-{topic}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    cpu0, t0, got = time.process_time(), time.perf_counter(), 0
    deadline = time.monotonic() + 120
    while got < len(records) and time.monotonic() < deadline:
        got += sum(1 for m in consumer.consume(10_000, 1.0) if m.error() is None)
    consume_s, consume_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    consumer.close()
    return {"librdkafka_produce_per_s": len(records) / produce_s, "librdkafka_consume_per_s": got / consume_s,
            "librdkafka_produce_cpu_us": 1e6 * produce_cpu / len(records),
            "librdkafka_consume_cpu_us": 1e6 * consume_cpu / max(got, 1)}


def java_kafka_perf(settings: Settings, values: list[bytes], num_records: int) -> dict:
    """Kafka's own perf tools (org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance
    from the pinned kafka-tools jar) on the broker of this run: the same records as payloads
    (--payload-file), the same durability as the collector (acks=all, idempotent, lz4) and
    its batch size. What the broker and a Java client take on this machine: the ceiling the
    pipeline is compared with. `num_records` (payloads drawn at random from `values`): enough
    that the JVM's start and JIT do not dominate (20k records measured 20k/s, 1M ~10x that)."""
    import re
    import subprocess
    import tempfile

    jars = settings.paths.kafka_jars
    if not any(jars.glob("kafka-tools-[0-9]*.jar")):
        raise SystemExit(f"no kafka-tools jar in {jars}: run `make jars` (infra/maven/pom.xml pins it)")
    topic = fresh_topic(settings, "bench.java")
    bootstrap = settings.kafka.bootstrap_servers
    with tempfile.NamedTemporaryFile("wb", suffix=".payloads", delete=False) as f:
        f.write(b"\n".join(v.replace(b"\n", b" ") for v in values))  # one payload per line
    java = ["java", "-Xmx1g", "-cp", f"{jars}/*"]
    produced = subprocess.run(
        [*java, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(num_records),
         "--payload-file", f.name, "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
         "acks=all", "enable.idempotence=true", "compression.type=lz4", "linger.ms=5",
         f"batch.size={settings.kafka.producer_batch_bytes}"],
        capture_output=True, text=True, timeout=600)
    # last summary line: "N records sent, X records/sec (Y MB/sec), ..."
    summary = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", produced.stdout)
    if produced.returncode != 0 or not summary:
        raise RuntimeError(f"ProducerPerformance failed:\n{produced.stdout[-2000:]}\n{produced.stderr[-2000:]}")
    consumed = subprocess.run(
        [*java, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
         "--messages", str(num_records), "--timeout", "60000"],
        capture_output=True, text=True, timeout=600)
    # CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    rows = [line.split(", ") for line in consumed.stdout.splitlines() if line[:1].isdigit()]
    if consumed.returncode != 0 or not rows or len(rows[-1]) < 6:
        raise RuntimeError(f"ConsumerPerformance failed:\n{consumed.stdout[-2000:]}\n{consumed.stderr[-2000:]}")
    Path(f.name).unlink()
    return {"records": int(summary[-1][0]), "java_produce_per_s": float(summary[-1][1]),
            "java_consume_per_s": float(rows[-1][5]), "java_consumed": int(float(rows[-1][4]))}


class PricedWatcher(threading.Thread):
    """Reads the priced topic from its end; notes when every span of the run has been priced.
    Splits the pipeline's time in two: collector + Flink (priced) vs loader + chDB (landed)."""

    def __init__(self, settings: Settings, run: str, total: int) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(topics.PRICED_SPANS.name, **settings.kafka.client_options(), group_id=None,
                                      auto_offset_reset="latest", consumer_timeout_ms=900_000)
        self.consumer.poll(timeout_ms=2000)  # join the topic at its current end before anything is sent
        self.marker, self.total, self.done_at = f'"{run}-'.encode(), total, None

    def run(self) -> None:
        seen = 0
        for record in self.consumer:
            seen += self.marker in record.value
            if seen >= self.total:
                self.done_at = time.perf_counter()
                break
        self.consumer.close()


def end_to_end(settings: Settings, bodies: list[bytes], senders: int, total: int, run: str) -> dict:
    url = f"http://{settings.collector.host}:{settings.collector.port}/v1/traces"
    queue = list(bodies)
    lock = threading.Lock()
    bar = tqdm(total=total, desc="sending (OTLP/HTTP)", unit="span", file=sys.stderr)

    def sender() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            req = urllib.request.Request(url, data=body, headers={
                "Content-Type": "application/x-protobuf", "Authorization": "Bearer demo-acme-key"})
            with urllib.request.urlopen(req, timeout=60) as r:
                assert r.status == 200
            bar.update(len(decode(body, "application/x-protobuf")))

    priced = PricedWatcher(settings, run, total)
    priced.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    send_s = time.perf_counter() - t0
    bar.close()
    params = {"run": f"{run}-%"}
    landed = 0
    with tqdm(total=total, desc="landed in ClickHouse", unit="span", file=sys.stderr) as bar2:
        while landed < total and time.perf_counter() - t0 < 900:
            landed = run_sql(settings, "SELECT count() FROM token_spans WHERE session_id LIKE {run:String}",
                             params).rows[0][0]
            bar2.update(landed - bar2.n)
            time.sleep(0.5)
    raw_s = time.perf_counter() - t0
    rolled = 0
    while rolled < total and time.perf_counter() - t0 < 900:
        rolled = run_sql(settings, "SELECT sum(calls) FROM spend_1m FINAL WHERE service = 'bench-app' "
                         "AND window_start >= now() - INTERVAL 10 MINUTE", {}).rows[0][0] or 0
        time.sleep(1)
    rollup_s = time.perf_counter() - t0
    priced.join(timeout=10)
    priced_s = (priced.done_at - t0) if priced.done_at else None
    return {"spans": total, "collector_accept_per_s": total / send_s, "e2e_raw_rows_per_s": total / raw_s,
            "collector_seconds": send_s, "priced_topic_seconds": priced_s,
            "e2e_raw_seconds": raw_s, "rollups_complete_seconds": rollup_s, "rolled_up_calls": int(rolled)}


def send_and_wait(settings: Settings, bodies: list[bytes], total: int, run: str, timeout_s: float = 600) -> float:
    """POST OTLP/protobuf bodies one after another, then wait until every span of `run` is a row
    in ClickHouse; returns the seconds from the first send."""
    url = f"http://{settings.collector.host}:{settings.collector.port}/v1/traces"
    t0 = time.perf_counter()
    for body in bodies:
        req = urllib.request.Request(url, data=body, headers={
            "Content-Type": "application/x-protobuf", "Authorization": "Bearer demo-acme-key"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200
    landed = 0
    while landed < total and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.25)
        landed = run_sql(settings, "SELECT count() FROM token_spans WHERE session_id LIKE {run:String}",
                         {"run": f"{run}-%"}).rows[0][0]
    if landed < total:
        raise SystemExit(f"only {landed} of {total} spans reached ClickHouse in {timeout_s:.0f} s")
    return time.perf_counter() - t0


def warm_up(settings: Settings, spans: int, batch: int) -> float:
    """Send `spans` spans through the whole pipeline (service bench-warm, not measured) and wait
    until all are rows: a fresh cost job spends most of its first ~150k spans' CPU in the JIT
    compiler (bench/README.md, "JIT warm-up"), which a long-running pipeline has behind it."""
    if spans <= 0:
        return 0.0
    run = f"warm{uuid.uuid4().hex[:8]}"
    return send_and_wait(settings, make_batches(spans, batch, run, service="bench-warm"), spans, run, timeout_s=900)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500, help="spans per OTLP request")
    ap.add_argument("--senders", type=int, default=2, help="concurrent OTLP senders")
    ap.add_argument("--java-records", type=int, default=1_000_000,
                    help="records for Kafka's Java perf tools (payloads drawn from the run's records)")
    ap.add_argument("--warm-spans", type=int, default=150_000,
                    help="spans sent through the pipeline before measuring (0: measure a cold cost job)")
    args = ap.parse_args()
    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr))
    try:
        warm_s = warm_up(settings, args.warm_spans, args.batch)
        run = uuid.uuid4().hex[:8]
        bodies = make_batches(args.spans, args.batch, run)
        records = collector_records(bodies)
        kafka = raw_kafka(settings, records)
        java = java_kafka_perf(settings, [v for _, v in records], args.java_records)
        kafka.update(java)
        e2e = end_to_end(settings, bodies, args.senders, args.spans, run)
        memory = stage_memory(stack, [service.name for service in stack.services()])
    finally:
        stack.down()
    result = {**bench_results.run_info(), **vars(args),
              "producer_batch_bytes": settings.kafka.producer_batch_bytes,
              "stream_object_reuse": settings.stream.object_reuse,
              "warm_up_seconds": warm_s, "raw_kafka": kafka, "end_to_end": e2e, "pss_mib": memory,
              "ratio_e2e_to_raw_produce": e2e["e2e_raw_rows_per_s"] / kafka["produce_per_s"],
              "ratio_e2e_to_java_produce": e2e["e2e_raw_rows_per_s"] / kafka["java_produce_per_s"]}
    bench_results.append("results.jsonl", result)
    print(f"\nraw Kafka produce (kafka-python, acks=all, idempotent): {kafka['produce_per_s']:>9,.0f} records/s "
          f"({kafka['bytes_per_record']} B/record)")
    print(f"raw Kafka consume:                                      {kafka['consume_per_s']:>9,.0f} records/s")
    print(f"raw Kafka through librdkafka (confluent-kafka): produce {kafka['librdkafka_produce_per_s']:,.0f}/s "
          f"({kafka['librdkafka_produce_cpu_us']:.1f} CPU-µs/record vs kafka-python {kafka['produce_cpu_us']:.1f}), "
          f"consume {kafka['librdkafka_consume_per_s']:,.0f}/s ({kafka['librdkafka_consume_cpu_us']:.1f} vs "
          f"{kafka['consume_cpu_us']:.1f})")
    print(f"Kafka's Java ProducerPerformance (same records, same settings): {kafka['java_produce_per_s']:>9,.0f} records/s")
    print(f"Kafka's Java ConsumerPerformance:                        {kafka['java_consume_per_s']:>9,.0f} records/s")
    print(f"collector accept (OTLP/HTTP -> Kafka acked):            {e2e['collector_accept_per_s']:>9,.0f} spans/s")
    print(f"end to end, first send -> last raw row in ClickHouse:   {e2e['e2e_raw_rows_per_s']:>9,.0f} spans/s "
          f"({e2e['e2e_raw_seconds']:.1f} s)")
    if e2e["priced_topic_seconds"]:
        print(f"stage split, seconds after the first send: collector done {e2e['collector_seconds']:.1f}, "
              f"all priced by Flink {e2e['priced_topic_seconds']:.1f}, all rows in ClickHouse {e2e['e2e_raw_seconds']:.1f}")
    print(f"rollups complete after {e2e['rollups_complete_seconds']:.1f} s (includes waiting for the minute to close)")
    print(f"ratio end-to-end / raw produce (kafka-python): {result['ratio_e2e_to_raw_produce']:.3f}")
    print(f"headline: end-to-end / Kafka's Java producer: {result['ratio_e2e_to_java_produce']:.3%}")


if __name__ == "__main__":
    main()
