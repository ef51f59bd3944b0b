package dev.tokenpulse.flink.trace;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.apache.flink.metrics.Counter;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.dataview.MapView;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.types.Row;

/**
 * Trace-aware ingest: one trace's spans, in arrival order, become each provider call once,
 * with the conversation and agent of its ancestors (issue #17).
 *
 * <p>Called from SQL with set semantics, partitioned by (tenant, assembly_key):
 * {@code trace_assembler(input => TABLE raw PARTITION BY (tenant, assembly_key), on_time => DESCRIPTOR(event_time),
 * pending_ms => ..., max_per_trace => ..., uid => 'trace-assembler')}. Input rows are the raw
 * topic's records of kind {@code span} (an LLM call) and {@code context} (an invoke_agent,
 * execute_tool or other span carrying conversation/agent attributes). The assembly key is the
 * trace, except for a root LLM span with a response id, keyed by that id: outside any agent,
 * an instrumentation's span and the provider SDK's own span of one call are two roots of two
 * traces, and have no ancestors to inherit from (the collector keys them alike on Kafka too).
 *
 * <p>What it does, per row:
 * <ol>
 *   <li><b>Exactly once</b>: a span id seen before in the trace (a collector retry, a replay) is dropped.
 *   <li><b>One call, one row</b>: an LLM span whose {@code response_id} was already seen in the trace is
 *       the same provider call described by a second sender (the anthropic SDK's own span beside an
 *       instrumentation's): dropped. Without a response id, a span of another sender with the same parent,
 *       provider, model and token counts, starting within {@link #TWIN_WINDOW_MS}, is one too. The
 *       collector writes each request's better span first (collectors/otlp_http.py call_preference), so
 *       the first seen is the one kept.
 *   <li><b>Attribution</b>: session (gen_ai.conversation.id), agent id and agent name come from the span,
 *       else from the nearest ancestor that has them (walking parent ids through the context spans
 *       seen), else from the narrowest context span of the trace whose time encloses the call. The row
 *       is emitted at once (record {@code span} or {@code context}), attributed as far as known:
 *       nothing waits for a parent, so alerts and rollups keep their latency.
 *   <li><b>Late context</b>: OTel SDKs export children before parents, and an agent's invoke_agent span
 *       ends last. A call whose attribution is incomplete is kept as a small pending entry (ids, times,
 *       what it has); each later context span of the trace re-resolves the pending entries and emits
 *       record {@code attribution} (ids, the new session/agent, revision n) for those that changed. The
 *       loader applies it to the stored row (ReplacingMergeTree by revision). Pending entries are
 *       dropped once complete, when the watermark passes their end + {@code pending_ms}, or beyond
 *       {@code max_per_trace} per trace (counted in the metrics below).
 * </ol>
 *
 * <p>State, per (tenant, trace): seen span ids, call keys, context spans and pending entries, all
 * map state (RocksDB-friendly: one entry read per lookup), expired by {@code table.exec.state.ttl}
 * (the job's dedup TTL) after they were last written. Metrics (operator scope): {@code
 * tokenpulseDuplicateSpans}, {@code tokenpulseTwinSpans}, {@code tokenpulseAttributions}, {@code
 * tokenpulsePendingExpired}, {@code tokenpulseTraceOverflow} (context spans or pending entries beyond
 * {@code max_per_trace}).
 */
@FunctionHint(output = @DataTypeHint(TraceAssembler.OUTPUT))
public class TraceAssembler extends ProcessTableFunction<Row> {
    /** The output row after the partition keys (tenant, assembly_key); the loader and the SQL read it by name. */
    public static final String OUTPUT = "ROW<record STRING, revision INT, trace_id STRING, api_key_id STRING, service STRING, "
            + "team STRING, agent_id STRING, agent_name STRING, session_id STRING, tool_name STRING, "
            + "call_fingerprint STRING, span_id STRING, parent_span_id STRING, operation STRING, provider STRING, "
            + "request_model STRING, response_model STRING, model STRING, runtime_kind STRING, runtime_id STRING, "
            + "start_ms BIGINT, end_ms BIGINT, received_ms BIGINT, input_tokens BIGINT, output_tokens BIGINT, "
            + "cached_input_tokens BIGINT, cache_creation_input_tokens BIGINT, reasoning_tokens BIGINT, "
            + "status STRING, error_type STRING, service_tier STRING, input_audio_tokens BIGINT, "
            + "output_audio_tokens BIGINT, input_images BIGINT, output_images BIGINT, input_audio_seconds BIGINT, "
            + "semantic_cache_hit BOOLEAN, response_id STRING, sender STRING, usage_missing BOOLEAN, "
            + "tool_call_id STRING, tool_type STRING>";
    /** Output field names, in order (parsed from OUTPUT once). */
    static final String[] FIELDS = fieldNames(OUTPUT);
    /** Fields copied from the input row as they are (all but record and revision). */
    private static final String[] COPIED = Arrays.copyOfRange(FIELDS, 2, FIELDS.length);
    static final long TWIN_WINDOW_MS = 2_000;
    private static final int MAX_ANCESTOR_DEPTH = 64;

    public static final String RECORD_SPAN = "span";
    public static final String RECORD_CONTEXT = "context";
    public static final String RECORD_ATTRIBUTION = "attribution";

    /** What a span hands down to its descendants. Public fields: Flink's structured state type. */
    public static class Ancestor {
        public String parent;
        public Long startMs;
        public Long endMs;
        public String sessionId;
        public String agentId;
        public String agentName;
    }

    /** An emitted row whose attribution may still grow. */
    public static class Pending {
        public String record; // span | context
        public String traceId;
        public String parent;
        public Long startMs;
        public Long endMs;
        public String sessionId;
        public String agentId;
        public String agentName;
        public Integer revision;
        public Long deadlineMs; // dropped when the watermark passes it (end + pending_ms)
    }

    /** Per-trace counters (a value state: one small row). */
    public static class TraceStats {
        public Integer pending = 0;
        public Integer ancestors = 0;
        public Long nextExpiryMs;
    }

    private transient Counter duplicates;
    private transient Counter twins;
    private transient Counter attributions;
    private transient Counter pendingExpired;
    private transient Counter overflow;

    @Override
    public void open(FunctionContext context) throws Exception {
        duplicates = context.getMetricGroup().counter("tokenpulseDuplicateSpans");
        twins = context.getMetricGroup().counter("tokenpulseTwinSpans");
        attributions = context.getMetricGroup().counter("tokenpulseAttributions");
        pendingExpired = context.getMetricGroup().counter("tokenpulsePendingExpired");
        overflow = context.getMetricGroup().counter("tokenpulseTraceOverflow");
    }

    public void eval(
            Context ctx,
            @StateHint TraceStats stats,
            @StateHint MapView<String, Boolean> seenSpans,
            @StateHint MapView<String, String> callKeys,
            @StateHint MapView<String, Ancestor> ancestors,
            @StateHint MapView<String, Pending> pending,
            @ArgumentHint(value = {ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.REQUIRE_ON_TIME}, name = "input") Row input,
            @ArgumentHint(name = "pending_ms") Long pendingMs,
            @ArgumentHint(name = "max_per_trace") Integer maxPerTrace) throws Exception {
        String spanId = input.getFieldAs("span_id");
        String kind = input.getFieldAs("kind");
        if (spanId == null || kind == null) {
            return; // the collector never writes such a row; nothing to key it by
        }
        if (seenSpans.contains(spanId)) {
            duplicates.inc();
            return;
        }
        seenSpans.put(spanId, Boolean.TRUE);

        boolean isContext = RECORD_CONTEXT.equals(kind);
        if (!isContext && isTwin(input, spanId, callKeys)) {
            twins.inc();
            return;
        }
        Ancestor own = ancestorOf(input);
        if (isContext) {
            if (stats.ancestors < maxPerTrace) {
                ancestors.put(spanId, own);
                stats.ancestors++;
            } else {
                overflow.inc();
            }
        }
        Ancestor resolved = resolve(own, ancestors);
        collect(outputRow(input, isContext ? RECORD_CONTEXT : RECORD_SPAN, resolved));

        if (!complete(resolved) && own.parent != null) {
            if (stats.pending < maxPerTrace) {
                Pending p = new Pending();
                p.record = isContext ? RECORD_CONTEXT : RECORD_SPAN;
                p.traceId = input.getFieldAs("trace_id");
                p.parent = own.parent;
                p.startMs = own.startMs;
                p.endMs = own.endMs;
                copyAttribution(resolved, p);
                p.revision = 0;
                p.deadlineMs = own.endMs + pendingMs;
                pending.put(spanId, p);
                stats.pending++;
                scheduleExpiry(ctx, stats, p.deadlineMs);
            } else {
                overflow.inc();
            }
        }
        if (isContext && stats.pending > 0) {
            reattribute(ancestors, pending, stats);
        }
    }

    public void onTimer(OnTimerContext ctx, TraceStats stats, MapView<String, Boolean> seenSpans,
                        MapView<String, String> callKeys, MapView<String, Ancestor> ancestors,
                        MapView<String, Pending> pending) throws Exception {
        TimeContext<Long> time = ctx.timeContext(Long.class);
        long now = time.time();
        Long next = null;
        List<String> expired = new ArrayList<>();
        for (Map.Entry<String, Pending> e : pending.entries()) {
            long deadline = e.getValue().deadlineMs;
            if (deadline <= now) {
                expired.add(e.getKey());
            } else if (next == null || deadline < next) {
                next = deadline;
            }
        }
        for (String id : expired) {
            pending.remove(id);
        }
        pendingExpired.inc(expired.size());
        stats.pending = Math.max(0, stats.pending - expired.size());
        stats.nextExpiryMs = next;
        if (next != null) {
            time.registerOnTime("expire", next);
        }
    }

    // --- twins -----------------------------------------------------------------------------

    /** True if this LLM span repeats a call already emitted for the trace (and records it if not). */
    private static boolean isTwin(Row in, String spanId, MapView<String, String> callKeys) throws Exception {
        String responseId = in.getFieldAs("response_id");
        String sender = nz(in.getFieldAs("sender"));
        long start = nzl(in.getFieldAs("start_ms"));
        if (responseId != null) {
            String key = "r:" + responseId;
            if (callKeys.contains(key)) {
                return true;
            }
            callKeys.put(key, spanId);
        }
        // Spans without a response id (older senders, streams): same parent, provider, model and
        // counts from another sender within the window. The same sender twice is two calls.
        String key = "s:" + nz(in.getFieldAs("parent_span_id")) + "|" + nz(in.getFieldAs("provider")) + "|"
                + nz(in.getFieldAs("request_model")) + "|" + nzl(in.getFieldAs("input_tokens")) + "|"
                + nzl(in.getFieldAs("output_tokens"));
        String seen = callKeys.get(key); // "sender|start;sender|start;..."
        if (seen != null && responseId == null) {
            for (String entry : seen.split(";")) {
                int bar = entry.lastIndexOf('|');
                String otherSender = entry.substring(0, bar);
                long otherStart = Long.parseLong(entry.substring(bar + 1));
                if (!otherSender.equals(sender) && Math.abs(otherStart - start) <= TWIN_WINDOW_MS) {
                    return true;
                }
            }
        }
        String mine = sender + "|" + start;
        callKeys.put(key, seen == null ? mine : seen + ";" + mine);
        return false;
    }

    // --- attribution -----------------------------------------------------------------------

    private static Ancestor ancestorOf(Row in) {
        Ancestor a = new Ancestor();
        a.parent = in.getFieldAs("parent_span_id");
        a.startMs = nzl(in.getFieldAs("start_ms"));
        a.endMs = nzl(in.getFieldAs("end_ms"));
        a.sessionId = in.getFieldAs("session_id");
        a.agentId = in.getFieldAs("agent_id");
        a.agentName = in.getFieldAs("agent_name");
        return a;
    }

    /** Own fields, then the nearest ancestors', then the narrowest enclosing context span's. */
    static Ancestor resolve(Ancestor own, MapView<String, Ancestor> ancestors) throws Exception {
        Ancestor out = new Ancestor();
        out.parent = own.parent;
        out.startMs = own.startMs;
        out.endMs = own.endMs;
        fill(out, own);
        String next = own.parent;
        boolean chainBroken = false;
        for (int depth = 0; next != null && depth < MAX_ANCESTOR_DEPTH && !complete(out); depth++) {
            Ancestor a = ancestors.get(next);
            if (a == null) {
                chainBroken = true;
                break;
            }
            fill(out, a);
            next = a.parent;
        }
        if (!complete(out) && chainBroken) {
            Ancestor best = null;
            for (Ancestor a : ancestors.values()) {
                boolean encloses = a.startMs <= own.startMs && own.endMs <= a.endMs && hasAttribution(a);
                if (encloses && (best == null || a.endMs - a.startMs < best.endMs - best.startMs)) {
                    best = a;
                }
            }
            if (best != null) {
                fill(out, best);
            }
        }
        return out;
    }

    private void reattribute(MapView<String, Ancestor> ancestors, MapView<String, Pending> pending,
                             TraceStats stats) throws Exception {
        List<String> done = new ArrayList<>();
        List<Map.Entry<String, Pending>> changed = new ArrayList<>();
        for (Map.Entry<String, Pending> e : pending.entries()) {
            Pending p = e.getValue();
            Ancestor own = new Ancestor();
            own.parent = p.parent;
            own.startMs = p.startMs;
            own.endMs = p.endMs;
            own.sessionId = p.sessionId;
            own.agentId = p.agentId;
            own.agentName = p.agentName;
            Ancestor now = resolve(own, ancestors);
            if (!same(now.sessionId, p.sessionId) || !same(now.agentId, p.agentId) || !same(now.agentName, p.agentName)) {
                copyAttribution(now, p);
                p.revision++;
                changed.add(Map.entry(e.getKey(), p));
            }
            if (complete(now)) {
                done.add(e.getKey());
            }
        }
        for (Map.Entry<String, Pending> e : changed) {
            collect(attributionRow(e.getKey(), e.getValue()));
            attributions.inc();
            if (!done.contains(e.getKey())) {
                pending.put(e.getKey(), e.getValue());
            }
        }
        for (String id : done) {
            pending.remove(id);
        }
        stats.pending = Math.max(0, stats.pending - done.size());
    }

    private static void scheduleExpiry(Context ctx, TraceStats stats, long deadline) {
        if (stats.nextExpiryMs == null || deadline < stats.nextExpiryMs) {
            stats.nextExpiryMs = deadline;
            ctx.timeContext(Long.class).registerOnTime("expire", deadline);
        }
    }

    static boolean complete(Ancestor a) {
        return a.sessionId != null && (a.agentId != null || a.agentName != null);
    }

    private static boolean hasAttribution(Ancestor a) {
        return a.sessionId != null || a.agentId != null || a.agentName != null;
    }

    private static void fill(Ancestor into, Ancestor from) {
        if (into.sessionId == null) {
            into.sessionId = from.sessionId;
        }
        // An agent's id and name belong together: take both from the same span.
        if (into.agentId == null && into.agentName == null) {
            into.agentId = from.agentId;
            into.agentName = from.agentName;
        }
    }

    private static void copyAttribution(Ancestor from, Pending to) {
        to.sessionId = from.sessionId;
        to.agentId = from.agentId;
        to.agentName = from.agentName;
    }

    // --- output rows -----------------------------------------------------------------------

    private static Row outputRow(Row in, String record, Ancestor attribution) {
        Row out = Row.withNames();
        out.setField("record", record);
        out.setField("revision", 0);
        for (String f : COPIED) {
            out.setField(f, in.getField(f));
        }
        out.setField("session_id", attribution.sessionId);
        out.setField("agent_id", attribution.agentId);
        out.setField("agent_name", attribution.agentName);
        return positional(out);
    }

    private static Row attributionRow(String spanId, Pending p) {
        Row out = Row.withNames();
        for (String f : FIELDS) {
            out.setField(f, null);
        }
        out.setField("record", RECORD_ATTRIBUTION);
        out.setField("revision", p.revision);
        out.setField("operation", p.record); // which stored row it amends: span (token_spans) or context (tool_calls)
        out.setField("span_id", spanId);
        out.setField("trace_id", p.traceId);
        out.setField("parent_span_id", p.parent);
        out.setField("start_ms", p.startMs);
        out.setField("end_ms", p.endMs);
        out.setField("session_id", p.sessionId);
        out.setField("agent_id", p.agentId);
        out.setField("agent_name", p.agentName);
        return positional(out);
    }

    private static Row positional(Row named) {
        Row out = new Row(FIELDS.length);
        for (int i = 0; i < FIELDS.length; i++) {
            out.setField(i, named.getField(FIELDS[i]));
        }
        return out;
    }

    // --- helpers ---------------------------------------------------------------------------

    static String[] fieldNames(String rowType) {
        String body = rowType.substring(rowType.indexOf('<') + 1, rowType.lastIndexOf('>'));
        String[] parts = body.split(",\\s*");
        String[] names = new String[parts.length];
        for (int i = 0; i < parts.length; i++) {
            names[i] = parts[i].trim().split("\\s+")[0];
        }
        return names;
    }

    private static boolean same(String a, String b) {
        return a == null ? b == null : a.equals(b);
    }

    private static String nz(String s) {
        return s == null ? "" : s;
    }

    private static long nzl(Long v) {
        return v == null ? 0L : v;
    }
}
