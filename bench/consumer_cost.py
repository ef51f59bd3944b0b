"""What a consumer costs the broker as well as itself: kafka-python vs librdkafka (issue #15).

    python bench/consumer_cost.py [--rate 4000] [--seconds 15]

Starts a Kafka broker of its own (.state/bench-consumer, port 36092), produces records of the
collector's size (~900 B) at `--rate` records/s into a 4-partition topic for `--seconds`, while
one consumer reads them as the loader does (a group, manual commit once a second). For each
consumer variant it reports CPU-µs per record of the consumer process's thread and of the
broker process (/proc), minus the broker's idle CPU. A consumer that fetches in the background
(librdkafka) answers each produced batch with a fetch unless fetch.min.bytes holds the broker
back; kafka-python fetches only inside poll(). Appends to bench/results/consumer_cost.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update({
    "TOKENPULSE_PATHS_STATE_DIR": str(REPO / ".state" / "bench-consumer"),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:36092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "36093",
})
sys.path.insert(0, str(REPO / "bench"))

import bench_results  # noqa: E402
from proc_tree import tree_cpu_s  # noqa: E402

from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

VARIANTS = {
    "kafka-python": None,
    "librdkafka": {},
    "librdkafka, fetch.min.bytes 1 MiB / wait 200 ms": {"fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": 200},
}


def produce_at(settings: Settings, topic: str, rate: int, seconds: float) -> int:
    from confluent_kafka import Producer

    p = Producer({**settings.kafka.librdkafka_options(), "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "compression.type": "lz4", "partitioner": "murmur2_random"})
    value = b"x" * 900
    t0, sent = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        while sent < due:
            p.produce(topic, value=value, key=uuid.uuid4().bytes)
            sent += 1
        p.poll(0.005)
    if p.flush(30):
        raise SystemExit("the producer could not deliver every record")
    return sent


def consume(settings: Settings, topic: str, variant: dict | None, stop: threading.Event, out: dict) -> None:
    cpu0 = time.thread_time()
    got, pending, last_commit = 0, 0, time.monotonic()
    if variant is None:
        from kafka import KafkaConsumer

        c = KafkaConsumer(topic, **settings.kafka.client_options(), group_id=f"g-{uuid.uuid4().hex[:6]}",
                          enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=10_000)
        while not stop.is_set():
            got += sum(len(r) for r in c.poll(timeout_ms=200, max_records=10_000).values())
            if time.monotonic() - last_commit > 1:
                c.commit()
                last_commit = time.monotonic()
    else:
        from confluent_kafka import Consumer

        c = Consumer({**settings.kafka.librdkafka_options(), "group.id": f"g-{uuid.uuid4().hex[:6]}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest", **variant})
        c.subscribe([topic])
        while not stop.is_set():
            fresh = sum(1 for m in c.consume(10_000, 0.2) if m.error() is None)
            got, pending = got + fresh, pending + fresh
            if pending and time.monotonic() - last_commit > 1:  # as the loader: commit what was read
                c.commit(asynchronous=False)
                last_commit, pending = time.monotonic(), 0
    c.close()
    out.update(got=got, thread_cpu_s=time.thread_time() - cpu0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=4000, help="records/s produced")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    settings = Settings()
    stack = Stack(settings)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr), only=["kafka"])
    from kafka.admin import KafkaAdminClient, NewTopic

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    try:
        broker = stack.pid("kafka")
        for rep in range(args.reps):
            for name, variant in VARIANTS.items():
                topic = f"consumer-cost-{uuid.uuid4().hex[:6]}"
                admin = KafkaAdminClient(**settings.kafka.client_options())
                admin.create_topics([NewTopic(topic, 4, 1)])
                admin.close()
                time.sleep(2)
                idle0 = tree_cpu_s(broker)
                time.sleep(5)
                idle = (tree_cpu_s(broker) - idle0) / 5
                stop, out = threading.Event(), {}
                reader = threading.Thread(target=consume, args=(settings, topic, variant, stop, out))
                b0, t0 = tree_cpu_s(broker), time.monotonic()
                reader.start()
                sent = produce_at(settings, topic, args.rate, args.seconds)
                time.sleep(2)  # the consumer reads the tail
                stop.set()
                reader.join()
                wall = time.monotonic() - t0
                broker_cpu = tree_cpu_s(broker) - b0 - idle * wall
                n = sent
                if out["got"] != sent:
                    raise SystemExit(f"{name}: consumed {out['got']} of {sent} records")
                row = {"records": out["got"], "consumer_cpu_us": 1e6 * out["thread_cpu_s"] / n,
                       "broker_cpu_us_incl_produce": 1e6 * broker_cpu / n}
                results[name].append(row)
                print(f"rep {rep + 1} {name:48s} consumed {out['got']:>7,}  consumer thread {row['consumer_cpu_us']:6.1f} "
                      f"CPU-µs/rec  broker {row['broker_cpu_us_incl_produce']:6.1f} CPU-µs/rec (produce + consume)",
                      file=sys.stderr)
    finally:
        stack.down()
    bench_results.append("consumer_cost.jsonl", {**bench_results.run_info(), **vars(args), "results": results})


if __name__ == "__main__":
    main()
