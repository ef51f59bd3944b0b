"""Flink job: detect runaway agent loops within seconds and emit alerts.

    source    tokenpulse.spans.priced.v1    deduplicated, priced calls (from cost_rollup)
    operation key by agent   -> agent baseline: the agent's usual tokens/min per session
              key by session -> loop rules:     the rules in loop_rules.py, per session,
                                                configured per tenant/app/agent as data
    sink      tokenpulse.alerts.v1           Alert JSON (open / resolved), key = dedupe key

The two operators exist twice (TOKENPULSE_DETECTOR_ENGINE): in the JVM (default;
stream_jobs/jvm/src/main/java/dev/tokenpulse/flink/loops, a port of loop_rules.py and of the two
functions below) and in Python workers (AgentBaselineFunction, LoopDetectorFunction here).
The Python code is the reference: tests replay generated sessions through both and demand
the same findings, texts and evidence; the JVM runs ~10x the calls per CPU second
(bench/README.md).

Why these choices:
  * It reads the *priced* topic: spans there are already deduplicated (a retried export
    cannot look like a repeat) and carry their cost (for the session cost cap). The cost
    job forwards each span as soon as it has been deduplicated, without waiting for a window.
  * The rules are stateful per session, configured per tenant, and must explain themselves:
    plain code over a bounded per-session state (loop_rules.py) in a keyed process
    function. Source, projection and sink stay in Flink SQL (JVM). Profiling showed the
    Python crossing (two keyed Python operators, state and timers round trips) costing most
    of the detector's CPU once the rest of the pipeline was warm, hence the JVM port.
  * Time: rules judge calls in event time (their end); monotone rules fire on arrival,
    sequence rules once calls settle (see loop_rules.py). Resolution and state expiry are
    processing-time timers: "quiet for N seconds" is about now, not about event time.
  * State is bounded: newest N calls per session, a timer that drops a session after
    `session_ttl_s` of silence, and one that drops an agent's baseline after a week unseen.
    (Flink's own state TTL did the same at twice the per-call cost from Python: measured,
    bench/README.md.) Each session keeps at most one pending timer.

Run locally (MiniCluster):  python -m tokenpulse.stream_jobs.loop_detection
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path

from pyflink.common import Configuration, Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment
from pyflink.util.java_utils import add_jars_to_context_class_loader

from tokenpulse.jars import udf_jar
from tokenpulse.schemas import topics
from tokenpulse.schemas.alerts import Alert, AlertAction, AlertState, Severity, alert_id_for
from tokenpulse.schemas.detectors import DetectorConfig, load_detector_config
from tokenpulse.settings import Settings

from .job_runtime import kafka_options, recovery_path, run_to_end
from .loop_rules import (
    AgentBaseline,
    Call,
    Finding,
    SessionState,
    add_call,
    monotone_findings,
    sequence_findings,
    settle,
)

log = logging.getLogger("tokenpulse.stream_jobs.loop_detection")

JOB_NAME = "tokenpulse-loop-detection"
STATE_LAYOUT_VERSION = 2  # 2: calls carry `tool` (execute_tool spans, issue #14)
ALERT_KIND = "runaway_loop"
AGENT_TTL_MS = 7 * 24 * 3600 * 1000

# What the Python operators receive: projected in SQL so only these cross into Python.
# Cost travels as a decimal string (exact); the session key falls back to the trace.
CALL_FIELDS = ["tenant", "service", "team", "agent_name", "session_key", "session_id", "span_id",
               "call_fingerprint", "end_ms", "input_tokens", "tokens", "cost_usd", "executed_tool"]
CALL_TYPES = [Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(),
              Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG(), Types.LONG(), Types.STRING(),
              Types.STRING()]
WITH_BASELINE_FIELDS = [*CALL_FIELDS, "baseline_tpm"]
WITH_BASELINE = Types.ROW_NAMED(WITH_BASELINE_FIELDS, [*CALL_TYPES, Types.DOUBLE()])
# loop_rules.tool_failure_fingerprint in SQL: "tool:<tool name>:<error type>"
TOOL_FAILURE_FINGERPRINT_SQL = "CONCAT('tool:', COALESCE(tool_name, '?'), ':', COALESCE(error_type, 'error'))"
ALERT_RECORD = Types.ROW_NAMED(["dedupe_key", "payload"], [Types.STRING(), Types.STRING()])


def _now_ms() -> int:
    return int(time.time() * 1000)


class AgentBaselineFunction(KeyedProcessFunction):
    """Keyed by tenant/service/agent: attaches the agent's baseline tokens per session-minute
    (as it was before this call) to every call."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.state = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("agent_baseline", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context):
        baseline = self.state.value()
        if baseline is None:  # a new agent: check back in a week whether it is still around
            baseline = AgentBaseline()
            ctx.timer_service().register_processing_time_timer(_now_ms() + AGENT_TTL_MS)
        rules = self.config.rules_for(value.tenant, value.service, value.agent_name)
        current = baseline.baseline(rules.token_velocity.baseline_min_minutes)
        if value.executed_tool is None:  # a tool call has no tokens: not an active session-minute
            baseline.add(value.end_ms, value.session_key, value.tokens)
        baseline.last_seen_ms = _now_ms()
        self.state.update(baseline)
        row = Row(*value, current)
        row.set_field_names(WITH_BASELINE_FIELDS)  # rows passed between Python operators lose their names
        yield row

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        baseline = self.state.value()
        if baseline is None:
            return
        if timestamp - baseline.last_seen_ms >= AGENT_TTL_MS:
            self.state.clear()  # an agent unseen for a week: bounded state
        else:
            ctx.timer_service().register_processing_time_timer(baseline.last_seen_ms + AGENT_TTL_MS)


class LoopDetectorFunction(KeyedProcessFunction):
    """Keyed by tenant + session: applies the rules and emits each incident's open and
    resolved states exactly once per rule (replays carry the same alert id)."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.timing = config.timing
        self.session = None

    def open(self, runtime_context: RuntimeContext) -> None:
        # One state value per session (identity + rule state): every state access is a round
        # trip from the Python worker, and Flink's state TTL doubled the per-call cost
        # (bench/README.md), so expiry is this function's own timer (session_ttl_s).
        self.session = runtime_context.get_state(ValueStateDescriptor("session", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context):
        now = _now_ms()
        stored = self.session.value()
        if stored is None:
            identity = {"tenant": value.tenant, "service": value.service, "team": value.team,
                        "agent_name": value.agent_name, "session_id": value.session_id or value.session_key}
            state = SessionState()
        else:
            identity, state = stored
        call = Call(end_ms=value.end_ms, span_id=value.span_id, fingerprint=value.call_fingerprint,
                    input_tokens=value.input_tokens, tokens=value.tokens, arrived_ms=now, tool=value.executed_tool)
        added = add_call(state, call, Decimal(value.cost_usd or "0"), self.timing.max_calls_per_session)
        if added is not None:
            rules = self.config.rules_for(identity["tenant"], identity["service"], identity["agent_name"])
            yield from self._open(state, identity, monotone_findings(state, added, rules, value.baseline_tpm), rules, now)
            self._schedule(ctx, state, _ceil(now + self.timing.out_of_order_ms, 100))
            self.session.update((identity, state))

    def _schedule(self, ctx, state: SessionState, at_ms: int) -> None:
        """Keep one timer per session: registering is a round trip to the JVM per call, so a
        new one is set only when it must fire earlier than the pending one."""
        if state.timer_ms is None or at_ms < state.timer_ms:
            ctx.timer_service().register_processing_time_timer(at_ms)
            state.timer_ms = at_ms

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        stored = self.session.value()
        if stored is None:
            return
        identity, state = stored
        if timestamp != state.timer_ms:
            return  # superseded by an earlier timer, which did this work and set the next one
        state.timer_ms = None
        now = max(timestamp, _now_ms())
        judged_before = state.judged_until_ms
        settle(state, now, self.timing.out_of_order_ms)
        rules = self.config.rules_for(identity["tenant"], identity["service"], identity["agent_name"])
        yield from self._open(state, identity, sequence_findings(state, rules, since_ms=judged_before), rules, now)
        quiet_ms = now - state.last_arrival_ms
        if state.open_rules and quiet_ms >= self.timing.resolve_after_quiet_s * 1000:
            yield from self._resolve(state, identity, now)
        if quiet_ms >= self.timing.session_ttl_s * 1000:
            self.session.clear()
            return
        # next: settle calls still in their out-of-order allowance, else resolve, else expire
        unsettled = [c.arrived_ms for c in state.calls if c.arrived_ms + self.timing.out_of_order_ms > now]
        if unsettled:
            due = min(unsettled) + self.timing.out_of_order_ms
        elif state.open_rules:
            due = state.last_arrival_ms + self.timing.resolve_after_quiet_s * 1000
        else:
            due = state.last_arrival_ms + self.timing.session_ttl_s * 1000
        self._schedule(ctx, state, _ceil(max(due, now + 1), 100))
        self.session.update((identity, state))

    def _open(self, state: SessionState, identity: dict, findings: list[Finding], rules, now: int):
        for f in findings:
            if f.rule in state.open_rules:
                continue  # one incident per rule and session until it resolves
            rule = getattr(rules, f.rule)
            age_s = (now - f.event_ms) / 1000
            stale = age_s > self.timing.max_evidence_age_s
            key = dedupe_key(identity["tenant"], f.rule, identity["session_id"])
            alert = Alert(
                alert_id=alert_id_for(key, f.event_ms), dedupe_key=key, state=AlertState.open,
                kind=ALERT_KIND, rule=f.rule, severity=Severity.info if stale else rule.severity,
                # history is recorded, not acted on: no page and no tripped breaker
                action=AlertAction.notify if stale else rule.action, summary=_summary(identity, f, stale, age_s),
                evidence={**f.evidence, "evidence_age_s": round(age_s, 3), "stale": stale},
                opened_ms=f.event_ms, emitted_ms=_now_ms(), **identity,
            )
            state.open_rules[f.rule] = (alert.alert_id, f.event_ms)
            yield Row(key, alert.model_dump_json())

    def _resolve(self, state: SessionState, identity: dict, now: int):
        rules = self.config.rules_for(identity["tenant"], identity["service"], identity["agent_name"])
        for rule_name, (alert_id, opened_ms) in sorted(state.open_rules.items()):
            rule = getattr(rules, rule_name)
            quiet_s = (now - state.last_arrival_ms) / 1000
            key = dedupe_key(identity["tenant"], rule_name, identity["session_id"])
            alert = Alert(
                alert_id=alert_id, dedupe_key=key, state=AlertState.resolved, kind=ALERT_KIND, rule=rule_name,
                severity=rule.severity, action=rule.action,
                summary=f"resolved: session {identity['session_id']} has been quiet for {quiet_s:.0f} s",
                evidence={"quiet_s": round(quiet_s, 1), "steps": state.steps, "cost_usd": str(state.cost_usd)},
                opened_ms=opened_ms, resolved_ms=now, emitted_ms=_now_ms(), **identity,
            )
            yield Row(key, alert.model_dump_json())
        state.open_rules.clear()


def dedupe_key(tenant: str, rule: str, session_id: str) -> str:
    return f"{tenant}/{ALERT_KIND}/{rule}/{session_id}"


def _summary(identity: dict, f: Finding, stale: bool, age_s: float) -> str:
    who = identity.get("agent_name") or identity.get("service") or "agent"
    text = f"runaway loop? {who} session {identity['session_id']}: {f.summary}"
    if stale:
        text += f" (evidence is {age_s / 60:.0f} min old: recorded, not paged)"
    return text[:1000]


def _ceil(ms: int, step: int) -> int:
    return -(-ms // step) * step


# --- job assembly ---------------------------------------------------------------------------
def configure(env_config: Configuration, settings: Settings, checkpoint_dir: Path | None) -> None:
    d = settings.detector
    env_config.set_string("pipeline.name", JOB_NAME)
    env_config.set_string("parallelism.default", str(d.parallelism))
    env_config.set_string("python.executable", sys.executable)
    env_config.set_string("python.client.executable", sys.executable)
    # A bundle is the unit in which keyed state moves between the JVM and the Python worker,
    # so its length trades alert latency for throughput (bench/README.md: 20 ms bundles ran
    # 446 calls/s, 100 ms 909, 200 ms 1,056 on 2,000 sessions, job start included).
    env_config.set_string("python.fn-execution.bundle.time", str(d.bundle_time_ms))
    env_config.set_string("python.fn-execution.bundle.size", "10000")
    # Keyed state lives in the JVM; the Python worker caches it. A session whose state is not
    # cached costs a round trip per access (measured: 2,000 sessions over the default 1,000-entry
    # cache halved throughput), so size the cache for the sessions active at once.
    env_config.set_string("python.state.cache-size", str(d.state_cache_entries))
    env_config.set_string("execution.checkpointing.interval", f"{d.checkpoint_interval_ms} ms")
    env_config.set_string("restart-strategy.type", "exponential-delay")
    env_config.set_string("restart-strategy.exponential-delay.attempts-before-reset-backoff", "8")
    if checkpoint_dir is not None:
        env_config.set_string("execution.checkpointing.dir", checkpoint_dir.resolve().as_uri())
        env_config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
        env_config.set_string("execution.checkpointing.num-retained", "2")


def operators(calls: DataStream, config: DetectorConfig, engine: str) -> DataStream:
    """key by agent -> baseline -> key by session -> rules, in the JVM or in Python workers.
    Both emit (dedupe_key, payload) rows; the JVM classes are in the job's UDF jar."""
    if engine == "jvm":
        loops = get_gateway().jvm.dev.tokenpulse.flink.loops.LoopDetection
        return DataStream(loops.apply(calls._j_data_stream, config.jvm_json()))
    return (
        calls.key_by(lambda r: f"{r.tenant}|{r.service}|{r.agent_name}", key_type=Types.STRING())
        .process(AgentBaselineFunction(config), output_type=WITH_BASELINE).name("agent baseline")
        .key_by(lambda r: f"{r.tenant}|{r.session_key}", key_type=Types.STRING())
        .process(LoopDetectorFunction(config), output_type=ALERT_RECORD).name("loop rules")
    )


def build(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, settings: Settings,
          config: DetectorConfig) -> None:
    source, sink = kafka_options(settings, "source"), kafka_options(settings, "sink")
    # --- source -------------------------------------------------------------------------
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE priced_in (
  tenant STRING, service STRING, team STRING, agent_name STRING, session_id STRING, trace_id STRING,
  span_id STRING, call_fingerprint STRING, end_ms BIGINT, input_tokens BIGINT, output_tokens BIGINT,
  cost_usd DECIMAL(38, 12), record STRING, operation STRING, tool_name STRING, status STRING, error_type STRING
) WITH ({source}, 'topic' = '{topics.PRICED_SPANS.name}',
  'properties.group.id' = '{settings.detector.consumer_group}',
  'scan.startup.mode' = 'group-offsets', 'properties.auto.offset.reset' = 'earliest',
  'format' = 'json', 'json.fail-on-missing-field' = 'false',
  -- our own job writes this topic; a record it cannot read is the loader's to dead-letter,
  -- and must not crash-loop alerting
  'json.ignore-parse-errors' = 'true')""")
    # A tool call's fingerprint is its failure (loop_rules.Call.tool); NULL when it succeeded.
    calls = t_env.sql_query(f"""
SELECT tenant, service, team, agent_name, COALESCE(session_id, trace_id) AS session_key, session_id, span_id,
  CASE WHEN record = 'context' THEN (CASE WHEN status = 'error' THEN {TOOL_FAILURE_FINGERPRINT_SQL} END)
       ELSE call_fingerprint END AS call_fingerprint,
  end_ms, COALESCE(input_tokens, 0) AS input_tokens,
  COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) AS tokens, CAST(cost_usd AS STRING) AS cost_usd,
  CASE WHEN record = 'context' THEN COALESCE(tool_name, '?') END AS executed_tool
FROM priced_in WHERE tenant IS NOT NULL AND span_id IS NOT NULL AND end_ms IS NOT NULL
  -- LLM calls, and tool calls (the tool_failures rule: a loop signal without content);
  -- attribution amendments share the topic (stream_jobs/cost_rollup.py)
  AND (COALESCE(record, 'span') = 'span' OR (record = 'context' AND operation = 'execute_tool'))""")
    stream = t_env.to_data_stream(calls)

    # --- operations ---------------------------------------------------------------------
    alerts = operators(stream, config, settings.detector.engine)

    # --- sink ---------------------------------------------------------------------------
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE alerts_out (dedupe_key STRING, payload STRING)
WITH ({sink}, 'topic' = '{topics.ALERTS.name}', 'sink.delivery-guarantee' = 'at-least-once',
  'key.format' = 'raw', 'key.fields' = 'dedupe_key',
  'value.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY')""")
    t_env.create_temporary_view("alert_records", t_env.from_data_stream(alerts))
    return t_env.create_statement_set().add_insert_sql(
        "INSERT INTO alerts_out SELECT dedupe_key, payload FROM alert_records")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tokenpulse.stream_jobs.loop_detection",
        description="Detect runaway agent loops (repetition, token velocity, context growth, ping-pong, "
                    "step count, session cost) per session and emit alerts (PyFlink, local MiniCluster by default). "
                    "Rules are data: see schemas/detectors.yaml.",
    )
    parser.add_argument("--connector-jar", type=Path, help="flink-sql-connector-kafka jar (default: the cached one)")
    parser.add_argument("--no-resume", action="store_true", help="ignore retained checkpoints and start fresh")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    settings = Settings()
    config = load_detector_config(settings.detector.detectors_file)
    engine = settings.detector.engine
    # the two engines keep different state (operators and layout): separate checkpoints
    layout = f"loop-detection-v{STATE_LAYOUT_VERSION}" + ("-jvm" if engine == "jvm" else "")
    checkpoint_root = (settings.paths.state_dir / "flink" / "checkpoints" / layout
                       if settings.detector.checkpoints == "local" else None)  # None: the cluster's storage
    env_config = Configuration()
    configure(env_config, settings, checkpoint_root)
    jar = args.connector_jar or next(iter(sorted(settings.paths.flink_jars.glob("flink-sql-connector-kafka-*.jar"))), None)
    jars = [jar] if jar is not None else []  # on a cluster the jar may come from `flink run -j` instead
    if engine == "jvm":
        jars.append(udf_jar(settings.paths))
    uris = [j.resolve().as_uri() for j in jars]
    if uris:  # before the environments exist: the SQL planner finds connectors through them
        env_config.set_string("pipeline.jars", ";".join(uris))
    recovery = recovery_path(checkpoint_root, settings.detector.resume and not args.no_resume)
    if recovery is not None:
        env_config.set_string("execution.state-recovery.path", recovery)
    env = StreamExecutionEnvironment.get_execution_environment(env_config)
    t_env = StreamTableEnvironment.create(env)
    add_jars_to_context_class_loader(uris)  # and this client sees the JVM rules' classes (operators())
    statements = build(env, t_env, settings, config)
    log.info("submitting %s (%s rules): %d override(s), out-of-order tolerance %d ms, resolve after %d s quiet",
             JOB_NAME, engine, len(config.overrides), config.timing.out_of_order_ms, config.timing.resolve_after_quiet_s)
    run_to_end(statements, JOB_NAME, t_env)


if __name__ == "__main__":
    main()
