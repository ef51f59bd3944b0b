"""The stream jobs on a standalone Flink cluster (a JobManager and two TaskManagers as separate
processes, jobs submitted with the Flink CLI) instead of the session's MiniClusters.

  * cost job: same prices as the MiniCluster, and every span lands exactly once although a
    TaskManager is SIGKILLed mid-stream;
  * loop-detection job, both engines: the JVM rules (classes shipped in the job's jar), and
    the Python rules in Python workers the TaskManagers start (the venv's interpreter,
    tokenpulse importable); each raises an alert.

Each MiniCluster job is stopped while its twin runs on the cluster (two jobs must not share
a consumer group); the cluster job takes over from the newest retained checkpoint, and the
MiniCluster job takes back over from the cluster job's when the test ends."""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
from helpers import wait_for
from kafka import KafkaConsumer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_pipeline import KEYS, independent_cost

from tokenpulse.flink_cluster import FlinkCluster
from tokenpulse.schemas import topics
from tokenpulse.sdk import record_llm_call
from tokenpulse.stack import Stack

pytestmark = pytest.mark.integration
SERVICE = "it-flink-cluster"
# TaskManagers killed and started again (same resource id) in this session. The JobManager's
# REST API reports no task metrics from such a TaskManager (seen in CI: both loop-detection
# jobs placed on the rejoined tokenpulse-tm-1 showed read-records 0 while their alerts arrived;
# on tokenpulse-tm-2 the counts are right).
REJOINED_TASKMANAGERS: set[str] = set()
TENANT = "acme"
# (team, provider, model, input, cache_read, cache_creation, output): cloud calls only, so a
# call's cost does not depend on its duration and identical calls must cost the same.
SHAPES = [
    ("support", "openai", "gpt-4o", 1200, 400, 0, 300),
    ("research", "anthropic", "claude-sonnet-4-20250514", 20000, 15000, 2000, 900),
    ("platform", "openai", "o4-mini", 3000, 0, 0, 2500),
    ("sales", "anthropic", "claude-3-5-haiku", 4000, 1000, 500, 700),
]


def make_spans(session: str, shapes: list[tuple], end_ns: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("flink-cluster-test")
    for i, (team, prov, model, inp, cr, cc, out) in enumerate(shapes):
        span = tracer.start_span(f"chat {model}", start_time=end_ns - 10**9, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": prov, "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.cache_read.input_tokens": cr,
            "gen_ai.usage.cache_creation.input_tokens": cc, "gen_ai.usage.output_tokens": out,
            "gen_ai.conversation.id": session, "tokenpulse.team": team})
        span.end(end_time=end_ns + i)
    return list(memory.get_finished_spans())


def export(settings, spans: list) -> None:
    url = f"http://{settings.collector.host}:{settings.collector.port}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": f"Bearer {KEYS[TENANT]}"})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def expected_cost(shapes: list[tuple]) -> Decimal:
    return sum((independent_cost(p, m, i, cr, cc, o) for _, p, m, i, cr, cc, o in shapes), Decimal(0))


def cost_by_team_model(settings, session: str, n: int) -> dict:
    rows = wait_for(settings, "SELECT team, model, count(), sum(cost_usd) FROM token_spans FINAL "
                    "WHERE session_id = {s:String} GROUP BY team, model ORDER BY team, model", {"s": session},
                    lambda r: sum(x[2] for x in r) >= n, timeout_s=120)
    return {(r[0], r[1]): (r[2], Decimal(r[3])) for r in rows}


def priced_records(settings, session: str) -> int:
    """Records of sessions <session>* in the priced-spans topic (every copy the job wrote)."""
    consumer = KafkaConsumer(topics.PRICED_SPANS.name, **settings.kafka.client_options(), group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        return sum(1 for record in consumer if (json.loads(record.value).get("session_id") or "").startswith(session))
    finally:
        consumer.close()


class Sender(threading.Thread):
    """Exports a batch of spans every `period_s` (sessions <session>-<n>) until stopped."""

    def __init__(self, settings, session: str, batch: int = 8, period_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.settings, self.session, self.batch, self.period_s = settings, session, batch, period_s
        self.sent: list[tuple] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            n = 0
            while not self._stop_event.is_set():
                shapes = [SHAPES[(n + k) % len(SHAPES)] for k in range(self.batch)]
                # a session per batch: hundreds of calls in one session would trip the loop rules
                export(self.settings, make_spans(f"{self.session}-{n}", shapes, time.time_ns()))
                self.sent += shapes
                n += self.batch
                self._stop_event.wait(self.period_s)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> list[tuple]:
        self._stop_event.set()
        self.join(timeout=30)
        assert self.error is None, f"sending spans failed: {self.error!r}"
        return self.sent


def report(test: str, timings: dict[str, float]) -> None:
    print(f"[flink-cluster] {test} timings: " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))


@pytest.fixture(scope="module")
def cluster(stack_settings):
    cluster = FlinkCluster(stack_settings)
    t0 = time.monotonic()
    try:
        timings = {f"{k}_ready_s": v for k, v in cluster.up(lambda m: print(f"[flink-cluster] {m}")).items()}
        timings["cluster_up_s"] = time.monotonic() - t0
        report("cluster", timings)
        yield cluster
    finally:
        cluster.down()


def restart_minicluster_job(stack: Stack, name: str, timings: dict[str, float]) -> None:
    if stack.pid(name) is None:
        t0 = time.monotonic()
        stack.start(stack.service(name))
        timings["minicluster_restart_s"] = time.monotonic() - t0


def test_cost_job_on_standalone_cluster_survives_taskmanager_kill(stack_settings, cluster):
    stack = Stack(stack_settings)
    run = uuid.uuid4().hex[:8]
    timings: dict[str, float] = {}

    # Reference: identical calls priced by the MiniCluster job the session started.
    export(stack_settings, make_spans(f"{run}-mini", SHAPES, time.time_ns()))
    by_mini = cost_by_team_model(stack_settings, f"{run}-mini", len(SHAPES))
    assert sum(c for _, c in by_mini.values()) == expected_cost(SHAPES)

    t0 = time.monotonic()
    assert stack.stop("flink-job")
    timings["minicluster_stop_s"] = time.monotonic() - t0
    job_id = None
    try:
        overview = cluster.overview()
        assert (overview["taskmanagers"], overview["slots-total"]) == (2, 4)

        t0 = time.monotonic()
        job_id = cluster.submit("stream_jobs/cost_rollup.py")  # same consumer group as the MiniCluster job
        timings["submit_to_job_id_s"] = cluster.last_submit_s
        cluster.wait_running(job_id)
        timings["submit_to_running_s"] = cluster.last_running_s or time.monotonic() - t0
        [listed] = [j for j in cluster.jobs() if j["jid"] == job_id]
        assert (listed["name"], listed["state"]) == ("tokenpulse-cost-rollup", "RUNNING")
        restored = cluster.checkpoints(job_id)["latest"]["restored"]
        print(f"[flink-cluster] job {job_id} started from "
              f"{restored['external_path'] if restored else 'Kafka group offsets (no retained checkpoint)'}")
        # Spread over both TaskManagers (taskmanager.load-balance.mode: SLOTS).
        placement = cluster.taskmanagers_of(job_id)
        assert set(placement) == {cluster.resource_id(1), cluster.resource_id(2)}, placement

        # 1. The cluster prices identical calls exactly as the MiniCluster did, and its REST
        #    metrics show its source reading them (heartbeats are filtered out in the same task).
        emitted = cluster.vertex_metric(job_id, "Source:", "write-records")
        export(stack_settings, make_spans(f"{run}-cluster", SHAPES, time.time_ns()))
        by_cluster = cost_by_team_model(stack_settings, f"{run}-cluster", len(SHAPES))
        assert by_cluster == by_mini
        deadline = time.monotonic() + 30  # the REST API serves metrics fetched every few seconds
        while cluster.vertex_metric(job_id, "Source:", "write-records") < emitted + len(SHAPES):
            assert time.monotonic() < deadline, cluster.job(job_id)["vertices"]
            time.sleep(1)

        # 2. Kill a TaskManager mid-stream: the job restarts from its checkpoint on the other
        #    TaskManager's two slots, and every span still lands exactly once.
        cluster.wait_checkpoint(job_id)  # a checkpoint of the cluster's own to fall back to
        session = f"{run}-failover"
        sender = Sender(stack_settings, session)
        sender.start()
        try:
            time.sleep(4)
            attempts = cluster.task_attempts(job_id)
            killed_at = cluster.kill_taskmanager(1)
            t_kill = time.monotonic()
            timings["recovery_s"] = cluster.wait_recovered(job_id, attempts)
            timings["first_checkpoint_after_kill_s"] = cluster.wait_checkpoint(job_id) + timings["recovery_s"]
            # every global restart is a new attempt of each task
            timings["restarts"] = (max(a for a, _ in cluster.task_attempts(job_id).values())
                                   - max(a for a, _ in attempts.values()))
            assert set(cluster.taskmanagers_of(job_id)) == {cluster.resource_id(2)}
            restored = cluster.checkpoints(job_id)["latest"]["restored"]
            assert restored and not restored["is_savepoint"] and restored["restore_timestamp"] / 1000 >= killed_at
            while cluster.registered_taskmanagers() != [cluster.resource_id(2)]:
                assert time.monotonic() - t_kill < 60, cluster.registered_taskmanagers()
                time.sleep(0.5)
            timings["taskmanager_deregistered_s"] = time.monotonic() - t_kill
            timings["taskmanager_rejoin_s"] = cluster.start_taskmanager(1)  # back to 4 slots
            REJOINED_TASKMANAGERS.add(cluster.resource_id(1))
            assert cluster.overview()["slots-total"] == 4
        finally:
            sent = sender.stop()
        t_sent = time.monotonic()
        n = len(sent)
        rows = wait_for(stack_settings, "SELECT count(), uniqExact(span_id), sum(cost_usd) FROM token_spans FINAL "
                        "WHERE session_id LIKE {s:String}", {"s": f"{session}-%"}, lambda r: r[0][0] >= n,
                        timeout_s=120)
        timings["last_span_visible_after_send_s"] = time.monotonic() - t_sent
        print(f"[flink-cluster] sent {n} spans around the kill; the priced topic holds "
              f"{priced_records(stack_settings, session)} records of them (replays after the restore "
              "are at-least-once; token_spans FINAL keeps one row each)")
        count, distinct, cost = rows[0]
        assert (count, distinct) == (n, n)
        assert Decimal(cost) == expected_cost(sent)

        # ... and the 1-minute rollups (restored window state) count each of them once.
        rollups = wait_for(stack_settings, "SELECT sum(calls), sum(cost_usd) FROM spend_1m FINAL "
                           "WHERE service = {svc:String} AND window_start >= toStartOfMinute(now() - 600)",
                           {"svc": SERVICE}, lambda r: (r[0][0] or 0) >= 2 * len(SHAPES) + n, timeout_s=150)
        assert rollups[0][0] == 2 * len(SHAPES) + n
        assert Decimal(rollups[0][1]) == 2 * expected_cost(SHAPES) + expected_cost(sent)

        t0 = time.monotonic()
        cluster.cancel(job_id)
        timings["cancel_s"] = time.monotonic() - t0
        job_id = None
    finally:
        if job_id is not None:
            try:
                cluster.cancel(job_id)
            except Exception as exc:  # the cluster going down stops it anyway
                print(f"[flink-cluster] cancel failed: {exc!r}")
        restart_minicluster_job(stack, "flink-job", timings)
        report("cost job", timings)

    # The MiniCluster job took over again (from the cluster job's retained checkpoint).
    export(stack_settings, make_spans(f"{run}-back", SHAPES, time.time_ns()))
    assert cost_by_team_model(stack_settings, f"{run}-back", len(SHAPES)) == by_mini


def vertex_reads(cluster, job_id: str, ops: tuple[str, ...]) -> dict[str, int]:
    """Records read so far by each vertex that runs one of `ops` (as the REST API reports them)."""
    return {v["name"]: v["metrics"]["read-records"] for v in cluster.job(job_id)["vertices"]
            if any(op in v["name"] for op in ops)}


@pytest.mark.parametrize("engine", ["jvm", "python"])
def test_loop_detection_job_runs_on_the_cluster(stack_settings, cluster, engine):
    """engine=jvm: the rules' classes travel in the job's UDF jar; engine=python: the
    TaskManagers start Python workers (the venv's interpreter, tokenpulse importable)."""
    stack = Stack(stack_settings)
    session = f"cluster-loop-{engine}-{uuid.uuid4().hex[:8]}"
    timings: dict[str, float] = {}
    assert stack.stop("loop-detector")
    job_id = None
    try:
        t0 = time.monotonic()
        # same consumer group as the MiniCluster job
        job_id = cluster.submit("loop_detection", extra_env={"TOKENPULSE_DETECTOR_ENGINE": engine})
        timings["submit_to_job_id_s"] = cluster.last_submit_s
        cluster.wait_running(job_id)
        timings["submit_to_running_s"] = cluster.last_running_s or time.monotonic() - t0
        names = [v["name"] for v in cluster.job(job_id)["vertices"]]
        rule_ops = ("agent baseline", "loop rules")  # the two keyed process functions
        assert all(any(op in name for name in names) for op in rule_ops), names
        # the Python engine chains a key-selector map after its operators; the JVM one has none
        assert any("_stream_key_by_map_operator" in name for name in names) == (engine == "python"), names

        # One agent repeating the same call: the repetition rule (5 repeats) must fire.
        provider = TracerProvider(resource=Resource.create({"service.name": "it-cluster-looper"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
            endpoint=f"http://{stack_settings.collector.host}:{stack_settings.collector.port}/v1/traces",
            headers={"Authorization": f"Bearer {KEYS[TENANT]}"})))
        t0 = time.monotonic()
        for _ in range(8):
            with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=session, agent_name="looper",
                                 messages=[{"role": "user", "content": "Check the status of order 12345 again"}],
                                 tracer_provider=provider) as call:
                call.set_usage(input_tokens=1000, output_tokens=60)
            time.sleep(0.2)
        provider.shutdown()
        rows = wait_for(stack_settings, "SELECT rule, state FROM alerts FINAL WHERE session_id = {s:String}",
                        {"s": session}, lambda r: any(rule == "repetition" for rule, _ in r), timeout_s=120)
        timings["alert_in_store_s"] = time.monotonic() - t0
        assert any(rule == "repetition" for rule, _ in rows), rows
        # Both operators (on the TaskManagers; Python: in the Python workers they started) took the calls.
        # A restart (from a checkpoint taken after some calls) starts the counts again, so the
        # bar is all 8 calls only while the job has not restarted; the alert above proves the
        # rest. Metrics reach the REST API every few seconds.
        # Once a TaskManager of this cluster was killed and rejoined, only the alert (no MiniCluster
        # detector runs) proves it: the REST API then reported 0 records read for the rules'
        # vertices on the rejoined TaskManager and, twice on 2026-12-07, on the other one too
        # (rules on tokenpulse-tm-2, tm-1 rejoined), while the alert landed.
        rules_on = {tm for tm, vertices in cluster.taskmanagers_of(job_id).items()
                    if any(op in v for v in vertices for op in rule_ops)}
        unmetered = bool(REJOINED_TASKMANAGERS)
        deadline = time.monotonic() + 30
        while True:
            reads = vertex_reads(cluster, job_id, rule_ops)
            restarts = cluster.job_metric(job_id, "numRestarts") or 0
            if all(n >= (8 if restarts == 0 else 1) for n in reads.values()):
                break
            if unmetered and not any(reads.values()) and time.monotonic() >= deadline:
                print(f"[flink-cluster] the rules run on {sorted(rules_on)}; {sorted(REJOINED_TASKMANAGERS)} rejoined "
                      "after a kill: no task metrics in the REST API; the alert is the proof the rules ran there")
                break
            assert time.monotonic() < deadline, (reads, restarts, cluster.rest(f"/jobs/{job_id}/exceptions"),
                                                 {"rules on": rules_on, "rejoined": REJOINED_TASKMANAGERS})
            time.sleep(1)
        print(f"[flink-cluster] records read by the rules vertices: {reads}, job restarts: {restarts:.0f}")
        cluster.cancel(job_id)
        job_id = None
    finally:
        if job_id is not None:
            try:
                cluster.cancel(job_id)
            except Exception as exc:
                print(f"[flink-cluster] cancel failed: {exc!r}")
        restart_minicluster_job(stack, "loop-detector", timings)
        report(f"loop-detection job ({engine} rules)", timings)
