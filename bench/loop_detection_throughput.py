"""Benchmark: calls/s through the loop-detection operators (PyFlink keyed Python functions).

    python bench/loop_detection_throughput.py [--calls 200000] [--sessions 2000]

Three bounded jobs in one run (local MiniCluster, parallelism 1, job start included, the
same generated calls from a Java datagen-like source: a Flink SQL VALUES-free `datagen`):
  java_only     source -> SQL projection -> blackhole            (the floor: no Python; datagen unthrottled)
  python_noop   source -> key_by session -> a no-op KeyedProcessFunction -> blackhole
  loop_rules    source -> the job's AgentBaselineFunction -> LoopDetectorFunction -> blackhole
  loop_rules_jvm  the same two operators ported to the JVM (TOKENPULSE_DETECTOR_ENGINE=jvm, the default)
The difference between python_noop and loop_rules is the rules themselves; between
java_only and python_noop the cost of crossing into Python. Results are appended to
bench/results/loop_detection.jsonl.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
from pyflink.common import Configuration
from pyflink.common.typeinfo import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction
from pyflink.table import StreamTableEnvironment

from tokenpulse.jars import udf_jar
from tokenpulse.schemas.detectors import load_detector_config
from tokenpulse.settings import Settings
from tokenpulse.stream_jobs.loop_detection import ALERT_RECORD, configure, operators

REPO = Path(__file__).resolve().parents[1]


class NoOp(KeyedProcessFunction):
    def process_element(self, value, ctx):
        if value.tokens < 0:  # never: keeps the function from being trivially empty
            yield value


def source_sql(calls: int, sessions: int) -> str:
    # datagen sequences make calls deterministic: session = seq % sessions, a fingerprint
    # that repeats rarely (seq % 9973), tokens that rise and fall.
    return f"""
CREATE TEMPORARY TABLE gen (seq BIGINT) WITH (
  'connector' = 'datagen', 'fields.seq.kind' = 'sequence', 'fields.seq.start' = '1',
  'fields.seq.end' = '{calls}', 'rows-per-second' = '100000000')"""


PROJECTION = """
SELECT 'bench' AS tenant, CONCAT('svc-', CAST(seq % 7 AS STRING)) AS service, 'team' AS team,
  CONCAT('agent-', CAST(seq % 13 AS STRING)) AS agent_name,
  CONCAT('s-', CAST(seq % {sessions} AS STRING)) AS session_key, CONCAT('s-', CAST(seq % {sessions} AS STRING)) AS session_id,
  LPAD(CAST(seq AS STRING), 16, '0') AS span_id, CONCAT('fp', CAST(seq % 9973 AS STRING)) AS call_fingerprint,
  1700000000000 + seq * 10 AS end_ms, 500 + seq % 300 AS input_tokens, 600 + seq % 300 AS tokens,
  '0.001000000000' AS cost_usd
FROM gen"""


def run(variant: str, calls: int, sessions: int, backend: str) -> float:
    cfg = Configuration()
    # the job's own settings (Python bundles, state cache, checkpoints to a real directory:
    # the in-memory default refuses state past 5 MB)
    settings = Settings()
    configure(cfg, settings, checkpoint_dir=Path(tempfile.mkdtemp(prefix="bench-ld-")))
    cfg.set_string("parallelism.default", "1")
    cfg.set_string("state.backend.type", backend)  # hashmap: objects on the heap; rocksdb: serialized per access
    env = StreamExecutionEnvironment.get_execution_environment(cfg)
    t_env = StreamTableEnvironment.create(env)
    if variant == "loop_rules_jvm":
        env.add_jars(udf_jar(settings.paths).resolve().as_uri())  # no SQL connector here: add_jars suffices
    t_env.execute_sql(source_sql(calls, sessions))
    t_env.execute_sql("CREATE TEMPORARY TABLE sink (dedupe_key STRING, payload STRING) WITH ('connector' = 'blackhole')")
    table = t_env.sql_query(PROJECTION.format(sessions=sessions))
    start = time.perf_counter()
    if variant == "java_only":
        t_env.create_temporary_view("calls", table)
        t_env.execute_sql("INSERT INTO sink SELECT span_id, cost_usd FROM calls").wait()
    else:
        stream = t_env.to_data_stream(table)
        if variant == "python_noop":
            out = stream.key_by(lambda r: r.session_key, key_type=Types.STRING()).process(NoOp(), output_type=ALERT_RECORD)
        else:
            # the job's own operators, in Python workers or in the JVM
            out = operators(stream, load_detector_config(), "jvm" if variant == "loop_rules_jvm" else "python")
        t_env.create_temporary_view("alerts", t_env.from_data_stream(out))
        t_env.execute_sql("INSERT INTO sink SELECT dedupe_key, payload FROM alerts").wait()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=["java_only", "python_noop", "loop_rules", "loop_rules_jvm"])
    parser.add_argument("--state-backend", choices=["hashmap", "rocksdb"], default="hashmap",
                        help="keyed state on the JVM heap (local default) or in RocksDB (the production template)")
    args = parser.parse_args()
    results = {}
    for variant in args.variants:
        # each variant in its own process: a fresh MiniCluster and Python workers
        out = subprocess.run([sys.executable, __file__, "--one", variant, str(args.calls), str(args.sessions),
                              args.state_backend],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{variant} failed")
        seconds = float(out.stdout.strip().splitlines()[-1])
        results[variant] = {"seconds": round(seconds, 2), "calls_per_s": round(args.calls / seconds)}
        print(f"{variant:12} {seconds:8.1f} s  {args.calls / seconds:>10,.0f} calls/s (job start included)")
    record = {"bench": "loop_detection_throughput", **bench_results.run_info(),
              "calls": args.calls, "sessions": args.sessions, "state_backend": args.state_backend, **results}
    bench_results.append("loop_detection.jsonl", record)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        print(run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    else:
        main()
