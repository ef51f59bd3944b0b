"""Profile the pipeline by stage: CPU-seconds each process spends per 10,000 spans.

    python bench/stage_cpu.py [--spans 20000] [--reps 3] [--variants before after]

On a 2-core machine every stage competes for the same CPUs, so wall-clock throughput of one
stage says little; CPU time per span does not depend on what else runs. The script starts
its own stack (collector, Kafka, cost job, loader; ports 35092/35318/35124, state under
.state/bench-stages), then for each variant restarts only the cost job with that variant's
settings and, `--reps` times, POSTs `--spans` spans (OTLP/protobuf, 500 per request) and
waits until every one is a row in ClickHouse. It reads each service's process-tree CPU
(utime + stime of the process and its children, e.g. the cost job's JVM) before and after,
subtracts the same service's idle CPU over an equal time, and reports per stage:
CPU-s per 10k spans and the wall time from the first send to the last row in ClickHouse.

Variants (the cost job's settings): `default`, `p1` = parallelism 1 (one slot: no hash
exchange between two subtasks), `lookup` = prices from the Java lookup function instead of
the generated CASE, `c1` = the job's JVM with the C1 compiler only, `reuse` = pipeline.object-reuse; `loader-py` = the loader
before issue #15 (kafka-python, Python row conversion), `loader-3s` = the loader flushing every
3 s instead of every second (with either in the run, the loader is restarted with each
variant's settings too); `fetch` / `batched` = the stream jobs' Java Kafka clients batching. kafka-python's CRC-32C is printed (C with the `crc32c`
package, else pure Python): it was the loader's main cost (bench/README.md).
Prints a table and appends a JSON line to bench/results/stage_cpu.jsonl.

`--jfr`: also record the cost job's JVM with Java Flight Recorder during each variant's first
measured run and print where its samples are (bench/jfr_profile.py; recordings kept under
.state/bench-stages/jfr/).
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
STATE = REPO / ".state" / "bench-stages"
os.environ.update({
    "TOKENPULSE_PATHS_STATE_DIR": str(STATE),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:35092",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "35093",
    "TOKENPULSE_COLLECTOR_PORT": "35318",
    "TOKENPULSE_COLLECTOR_GRPC_PORT": "35317",
    "TOKENPULSE_LOADER_QUERY_PORT": "35124",
})
sys.path.insert(0, str(REPO / "bench"))

import jfr_profile  # noqa: E402
from e2e_throughput import make_batches, send_and_wait  # noqa: E402
from proc_tree import stage_memory, tree_cpu_s  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tokenpulse.schemas import topics  # noqa: E402
from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

STAGES = ["collector", "kafka", "flink-job", "loader"]
# --full-stack: also the services that act on the priced spans (the loop-detection job reads
# every one; the dispatcher and insights mostly wait).
MORE_STAGES = ["loop-detector", "alerts", "insights"]
VARIANTS = {
    "default": {},
    "p1": {"TOKENPULSE_STREAM_PARALLELISM": "1"},
    "lookup": {"TOKENPULSE_STREAM_PRICE_LOOKUP": "lookup"},  # the Java price lookup, not the CASE
    # HotSpot's quick C1 compiler only (the local MiniCluster's JVM reads JVM_ARGS): less JIT
    # work after a start, less optimized code afterwards.
    "c1": {"JVM_ARGS": "-XX:TieredStopAtLevel=1"},
    # Chained operators pass rows on without a deep copy of each (pipeline.object-reuse).
    "reuse": {"TOKENPULSE_STREAM_OBJECT_REUSE": "true"},
    # The stream jobs' Java Kafka clients batching (issue #15): fetches wait for 1 MiB or 100 ms
    # instead of answering at one byte; then also 1 MiB lz4 produce batches on the job's sinks.
    "fetch": {"TOKENPULSE_KAFKA_STREAM_FETCH_MIN_BYTES": str(1 << 20), "TOKENPULSE_KAFKA_STREAM_FETCH_MAX_WAIT_MS": "100"},
    "batched": {"TOKENPULSE_KAFKA_STREAM_FETCH_MIN_BYTES": str(1 << 20), "TOKENPULSE_KAFKA_STREAM_FETCH_MAX_WAIT_MS": "100",
                "TOKENPULSE_KAFKA_STREAM_PRODUCER_BATCH_BYTES": str(1 << 20), "TOKENPULSE_KAFKA_STREAM_COMPRESSION": "lz4"},
    # The loader as before issue #15: kafka-python, every record converted in Python.
    "loader-py": {"TOKENPULSE_LOADER_KAFKA_CLIENT": "kafka-python", "TOKENPULSE_LOADER_JSON_INTAKE": "false"},
}
# Fewer, larger inserts: the loader flushes every 3 s instead of every second (each insert
# writes a new part per table, ~50 files for token_spans).
VARIANTS["loader-3s"] = {"TOKENPULSE_LOADER_BATCH_MAX_MS": "3000"}
# Which service a variant's settings belong to (restarted with them); the rest: the cost job.
LOADER_VARIANTS = {"loader-py", "loader-3s"}
def stage_cpu(stack: Stack) -> dict[str, float]:
    return {name: tree_cpu_s(stack.pid(name)) for name in STAGES}


def wait_caught_up(settings: Settings, group: str, topic: str, timeout_s: float = 900) -> float:
    """Wait until consumer group `group` has committed the end of `topic` (a Flink job commits
    on checkpoints, so this is checkpoint-grained); returns the seconds waited. A stage still
    working off a backlog would otherwise look busy while "idle" and its CPU be subtracted."""
    from kafka import KafkaAdminClient, KafkaConsumer

    admin = KafkaAdminClient(**settings.kafka.client_options())
    consumer = KafkaConsumer(**settings.kafka.client_options())
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < timeout_s:
            committed = {tp: m.offset for tp, m in admin.list_group_offsets(group)[group].items() if tp.topic == topic}
            ends = consumer.end_offsets(list(committed)) if committed else {}
            if committed and all(committed[tp] >= ends[tp] for tp in committed):
                return time.perf_counter() - t0
            time.sleep(2)
        raise SystemExit(f"{group} did not catch up with {topic} in {timeout_s:.0f} s")
    finally:
        admin.close()
        consumer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=3, help="measured runs per variant (variants alternate)")
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["default"])
    ap.add_argument("--warm", type=int, default=2000, help="spans sent (unmeasured) after each job start")
    ap.add_argument("--keep-job", action="store_true",
                    help="start the cost job once, not before every run (one variant): later runs show it warm")
    ap.add_argument("--full-stack", action="store_true",
                    help="run and measure the loop detector, alert dispatcher and insights too")
    ap.add_argument("--jfr", action="store_true", help="profile the cost job's JVM in each variant's first run")
    args = ap.parse_args()
    if args.keep_job and len(args.variants) > 1:
        ap.error("--keep-job needs one variant")

    settings = Settings()
    stack = Stack(settings)
    if args.full_stack:
        STAGES.extend(MORE_STAGES)
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr),
             only=["kafka", "loader", "collector", *(MORE_STAGES if args.full_stack else [])])
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    profiles: dict[str, dict] = {}
    try:
        for rep in range(args.reps):
            for variant in args.variants:
                for k in {k for v in VARIANTS.values() for k in v}:
                    os.environ.pop(k, None)
                os.environ.update(VARIANTS[variant])
                run = uuid.uuid4().hex[:8]
                if LOADER_VARIANTS & set(args.variants):
                    stack.down(only=["loader"])
                    stack.up(only=["loader"])
                if rep == 0 or not args.keep_job:
                    stack.down(only=["flink-job"])
                    stack.up(only=["flink-job"])
                    send_and_wait(settings, make_batches(args.warm, 500, f"warm{run}"), args.warm, f"warm{run}")  # JIT, connections
                bodies = make_batches(args.spans, 500, run)
                if args.full_stack:  # the loop detector reads every priced span: let it finish the warm-up's
                    waited = wait_caught_up(settings, settings.detector.consumer_group, topics.PRICED_SPANS.name)
                    tqdm.write(f"loop detector caught up after {waited:.0f} s", file=sys.stderr)
                time.sleep(3)
                idle0 = stage_cpu(stack)
                time.sleep(10)
                idle = {k: (v - idle0[k]) / 10 for k, v in stage_cpu(stack).items()}  # CPU-s per second, idle
                jvm = jfr_profile.jvm_pids(stack.pid("flink-job"))[0]  # the MiniCluster's JVM
                recording = STATE / "jfr" / f"cost-job-{variant}-{run}.jfr" if args.jfr and rep == 0 else None
                if recording:
                    jfr_profile.start(jvm)
                threads0 = jfr_profile.thread_cpu(jvm)
                before = stage_cpu(stack)
                wall = send_and_wait(settings, bodies, args.spans, run)
                used = stage_cpu(stack)
                threads = jfr_profile.thread_cpu_delta(threads0, jfr_profile.thread_cpu(jvm))
                if recording:
                    profiles[variant] = jfr_profile.summarize(jfr_profile.stop(jvm, recording))
                    tqdm.write(f"\n[jfr] cost job, {variant}, {recording}:\n"
                               + jfr_profile.format_summary(profiles[variant]), file=sys.stderr)
                tqdm.write("\nCPU s  cost job's JVM threads\n" + "\n".join(
                    f"{v:6.2f} {k}" for k, v in list(threads.items())[:8]), file=sys.stderr)
                per10k = {k: max(0.0, used[k] - before[k] - idle[k] * wall) * 10_000 / args.spans for k in STAGES}
                jit = sum(v for k, v in threads.items() if "CompilerThre" in k) * 10_000 / args.spans
                memory = stage_memory(stack, list(STAGES))
                results[variant].append({"wall_s": wall, "cpu_s_per_10k": per10k, "jit_cpu_s_per_10k": jit,
                                         "job_thread_cpu_s": threads, "pss_mib": memory})
                tqdm.write(f"rep {rep + 1} {variant:>6}: wall {wall:5.1f} s  " +
                           "  ".join(f"{k} {v:.2f}" for k, v in per10k.items()) + f"  (of which JIT {jit:.2f}); "
                           "memory (PSS, MiB) " + "  ".join(f"{k} {v:.0f}" for k, v in memory.items()),
                           file=sys.stderr)
    finally:
        stack.down()

    summary = {}
    from kafka.record import util as record_util
    crc = "C" if record_util.crc32c_c is not None else "pure Python"
    print(f"\nCPU-seconds per 10,000 spans (median of {args.reps}), {args.spans:,} spans per run, crc32c: {crc}")
    print(f"{'variant':<8}" + "".join(f"{s:>11}" for s in STAGES) + f"{'all':>9}{'wall s':>9}{'job JIT':>11}")
    memory_rows = []
    for variant, runs in results.items():
        med = {s: statistics.median(r["cpu_s_per_10k"][s] for r in runs) for s in STAGES}
        wall = statistics.median(r["wall_s"] for r in runs)
        jit = statistics.median(r["jit_cpu_s_per_10k"] for r in runs)
        pss = {s: max(r["pss_mib"].get(s, 0.0) for r in runs) for s in STAGES}
        summary[variant] = {"cpu_s_per_10k": med, "wall_s": wall, "jit_cpu_s_per_10k": jit, "pss_mib_max": pss,
                            "runs": runs}
        print(f"{variant:<8}" + "".join(f"{med[s]:>11.2f}" for s in STAGES) + f"{sum(med.values()):>9.2f}{wall:>9.1f}"
              + f"{jit:>11.2f}")
        memory_rows.append(f"{variant:<8}" + "".join(f"{summary[variant]['pss_mib_max'][s]:>11.0f}" for s in STAGES))
    print("\nMemory after the runs, MiB (PSS of each service's process tree, largest of the runs)")
    print(f"{'variant':<8}" + "".join(f"{s:>11}" for s in STAGES))
    print("\n".join(memory_rows))
    bench_results.append("stage_cpu.jsonl", {"bench": "stage_cpu", **bench_results.run_info(), **vars(args),
                                             "crc32c": crc, "results": summary, "jfr": profiles})


if __name__ == "__main__":
    main()
