package dev.tokenpulse.flink.loops;

import java.math.BigDecimal;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * The loop-detection job's two keyed operators in the JVM (stream_jobs/loop_detection.py
 * wires them between its SQL source and sink; read its docstring for the time semantics).
 * They do what the Python reference functions in loop_detection.py do, call for call, but
 * without crossing into a Python worker: no bundles, and state and timers are reached without
 * a round trip (bench/README.md has the measured difference). Alert texts and evidence are
 * the Python ones to the character (tests/component/test_loop_rules_jvm.py).
 *
 * <p>Input rows carry loop_detection.CALL_FIELDS; the output is (dedupe_key, payload).
 */
public final class LoopDetection {
    static final long AGENT_TTL_MS = 7L * 24 * 3600 * 1000;
    public static final TypeInformation<Row> ALERT_RECORD =
            Types.ROW_NAMED(new String[] {"dedupe_key", "payload"}, Types.STRING, Types.STRING);

    private LoopDetection() {}

    /** calls -> key by agent -> baseline -> key by session -> rules -> alert records. */
    public static DataStream<Row> apply(DataStream<Row> calls, String configJson) {
        DetectorRules config = new DetectorRules(configJson);
        return calls
                .keyBy(new AgentKey())
                .process(new AgentBaselineFunction(config), TypeInformation.of(CallRecord.class))
                .name("agent baseline").uid("agent-baseline-jvm")
                .keyBy(new SessionKey())
                .process(new LoopDetectorFunction(config), ALERT_RECORD).name("loop rules").uid("loop-rules-jvm");
    }

    /** A call on its way to the session operator: loop_detection.CALL_FIELDS plus the agent's baseline. */
    public static final class CallRecord {
        public String tenant, service, team, agentName, sessionKey, sessionId, spanId, fingerprint, costUsd;
        public long endMs, inputTokens, tokens;
        public String tool; // the tool of an execute_tool span, null for an LLM call (loop_detection.py)
        public Double baselineTpm; // tokens per session-minute before this call; null: no baseline yet

        public CallRecord() {}

        static CallRecord of(Row r) {
            CallRecord c = new CallRecord();
            c.tenant = r.getFieldAs("tenant");
            c.service = r.getFieldAs("service");
            c.team = r.getFieldAs("team");
            c.agentName = r.getFieldAs("agent_name");
            c.sessionKey = r.getFieldAs("session_key");
            c.sessionId = r.getFieldAs("session_id");
            c.spanId = r.getFieldAs("span_id");
            c.fingerprint = r.getFieldAs("call_fingerprint");
            c.costUsd = r.getFieldAs("cost_usd");
            c.endMs = r.<Number>getFieldAs("end_ms").longValue(); // BIGINT in the job; any integer type works
            c.inputTokens = r.<Number>getFieldAs("input_tokens").longValue();
            c.tokens = r.<Number>getFieldAs("tokens").longValue();
            c.tool = r.getFieldAs("executed_tool");
            return c;
        }
    }

    static final class AgentKey implements KeySelector<Row, String> {
        @Override
        public String getKey(Row r) {
            return r.getField("tenant") + "|" + r.getField("service") + "|" + r.getField("agent_name");
        }
    }

    static final class SessionKey implements KeySelector<CallRecord, String> {
        @Override
        public String getKey(CallRecord c) {
            return c.tenant + "|" + c.sessionKey;
        }
    }

    /** Keyed by tenant/service/agent: attaches the agent's baseline (before this call) to every call. */
    static final class AgentBaselineFunction extends KeyedProcessFunction<String, Row, CallRecord> {
        private final DetectorRules config;
        private transient ValueState<AgentBaseline> state;

        AgentBaselineFunction(DetectorRules config) {
            this.config = config;
        }

        @Override
        public void open(OpenContext context) {
            state = getRuntimeContext().getState(new ValueStateDescriptor<>("agent_baseline", AgentBaseline.class));
        }

        @Override
        public void processElement(Row row, Context ctx, Collector<CallRecord> out) throws Exception {
            long now = System.currentTimeMillis();
            CallRecord call = CallRecord.of(row);
            AgentBaseline baseline = state.value();
            if (baseline == null) { // a new agent: check back in a week whether it is still around
                baseline = new AgentBaseline();
                ctx.timerService().registerProcessingTimeTimer(now + AGENT_TTL_MS);
            }
            DetectorRules.Rules rules = config.rulesFor(call.tenant, call.service, call.agentName);
            call.baselineTpm = baseline.baseline(rules.tokenVelocity.baselineMinMinutes);
            if (call.tool == null) { // a tool call has no tokens: it must not count as an active session-minute
                baseline.add(call.endMs, call.sessionKey, call.tokens);
            }
            baseline.lastSeenMs = now;
            state.update(baseline);
            out.collect(call);
        }

        @Override
        public void onTimer(long timestamp, OnTimerContext ctx, Collector<CallRecord> out) throws Exception {
            AgentBaseline baseline = state.value();
            if (baseline == null) {
                return;
            }
            if (timestamp - baseline.lastSeenMs >= AGENT_TTL_MS) {
                state.clear(); // an agent unseen for a week: bounded state
            } else {
                ctx.timerService().registerProcessingTimeTimer(baseline.lastSeenMs + AGENT_TTL_MS);
            }
        }
    }

    /** Keyed by tenant + session: applies the rules, emits each incident's open and resolved states. */
    static final class LoopDetectorFunction extends KeyedProcessFunction<String, CallRecord, Row> {
        private final DetectorRules config;
        private transient ValueState<LoopRules.Session> session;

        LoopDetectorFunction(DetectorRules config) {
            this.config = config;
        }

        @Override
        public void open(OpenContext context) {
            session = getRuntimeContext().getState(new ValueStateDescriptor<>("session", LoopRules.Session.class));
        }

        @Override
        public void processElement(CallRecord in, Context ctx, Collector<Row> out) throws Exception {
            long now = System.currentTimeMillis();
            DetectorRules.Timing timing = config.timing;
            LoopRules.Session s = session.value();
            if (s == null) {
                s = new LoopRules.Session();
                s.tenant = in.tenant;
                s.service = in.service;
                s.team = in.team;
                s.agentName = in.agentName;
                s.sessionId = in.sessionId == null || in.sessionId.isEmpty() ? in.sessionKey : in.sessionId;
            }
            LoopRules.Call call = new LoopRules.Call(in.endMs, in.spanId, in.fingerprint, in.inputTokens, in.tokens, now);
            call.tool = in.tool;
            BigDecimal cost = in.costUsd == null || in.costUsd.isEmpty() ? BigDecimal.ZERO : new BigDecimal(in.costUsd);
            LoopRules.Call added = LoopRules.addCall(s, call, cost, timing.maxCallsPerSession);
            if (added != null) {
                DetectorRules.Rules rules = config.rulesFor(s.tenant, s.service, s.agentName);
                emit(out, Alerts.open(s, LoopRules.monotoneFindings(s, added, rules, in.baselineTpm), rules, timing, now));
                schedule(ctx, s, ceil(now + timing.outOfOrderMs, 100));
                session.update(s);
            }
        }

        /** One pending timer per session: a new one only when it must fire earlier. */
        private static void schedule(Context ctx, LoopRules.Session s, long atMs) {
            if (s.timerMs == null || atMs < s.timerMs) {
                ctx.timerService().registerProcessingTimeTimer(atMs);
                s.timerMs = atMs;
            }
        }

        @Override
        public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
            LoopRules.Session s = session.value();
            if (s == null || s.timerMs == null || timestamp != s.timerMs) {
                return; // superseded by an earlier timer, which did this work and set the next one
            }
            DetectorRules.Timing timing = config.timing;
            s.timerMs = null;
            long now = Math.max(timestamp, System.currentTimeMillis());
            long judgedBefore = s.judgedUntilMs;
            LoopRules.settle(s, now, timing.outOfOrderMs);
            DetectorRules.Rules rules = config.rulesFor(s.tenant, s.service, s.agentName);
            emit(out, Alerts.open(s, LoopRules.sequenceFindings(s, rules, judgedBefore), rules, timing, now));
            long quietMs = now - s.lastArrivalMs;
            if (!s.openRules.isEmpty() && quietMs >= timing.resolveAfterQuietS * 1000) {
                emit(out, Alerts.resolve(s, rules, now));
            }
            if (quietMs >= timing.sessionTtlS * 1000) {
                session.clear();
                return;
            }
            // next: settle calls still in their out-of-order allowance, else resolve, else expire
            long due = Long.MAX_VALUE;
            for (LoopRules.Call c : s.calls) {
                if (c.arrivedMs + timing.outOfOrderMs > now) {
                    due = Math.min(due, c.arrivedMs + timing.outOfOrderMs);
                }
            }
            if (due == Long.MAX_VALUE) {
                due = s.lastArrivalMs + (s.openRules.isEmpty() ? timing.sessionTtlS : timing.resolveAfterQuietS) * 1000;
            }
            schedule(ctx, s, ceil(Math.max(due, now + 1), 100));
            session.update(s);
        }

        private static void emit(Collector<Row> out, java.util.List<Alerts.Emitted> alerts) {
            for (Alerts.Emitted a : alerts) {
                out.collect(Row.of(a.dedupeKey, a.payload));
            }
        }
    }

    static long ceil(long ms, long step) {
        return Math.floorDiv(ms + step - 1, step) * step;
    }
}
