package dev.tokenpulse.flink.loops;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The runaway-loop rules over one session's state, in the JVM: a line-by-line port of
 * stream_jobs/loop_rules.py, which stays the reference (tests/component/test_loop_rules_jvm.py
 * replays generated sessions through both and compares findings; src/test/java pins each rule).
 * Read loop_rules.py for why the rules are monotone or sequence rules; the comments here
 * only mark where Java has to work to match Python (number formatting, rounding).
 *
 * <p>No Flink types here: LoopDetectorFunction keeps a {@link Session} in keyed state and
 * calls these methods; LoopReplay calls them from the command line for the tests.
 */
public final class LoopRules {
    private LoopRules() {}

    /** One call as the rules see it (loop_rules.Call). */
    public static final class Call {
        public long endMs;
        public String spanId;
        public String fingerprint; // null or "" when the call has none
        public long inputTokens;
        public long tokens; // input + output
        public long arrivedMs; // wall clock at the detector
        public boolean late; // arrived after its place in the session was judged
        public String tool; // the tool of an execute_tool span, null for an LLM call (loop_rules.Call.tool)

        public Call() {}

        public Call(long endMs, String spanId, String fingerprint, long inputTokens, long tokens, long arrivedMs) {
            this.endMs = endMs;
            this.spanId = spanId;
            this.fingerprint = fingerprint;
            this.inputTokens = inputTokens;
            this.tokens = tokens;
            this.arrivedMs = arrivedMs;
        }

        boolean hasFingerprint() {
            return fingerprint != null && !fingerprint.isEmpty();
        }

        /** Event-time order: (end_ms, span_id), as Python compares the tuple. */
        int compareOrder(Call o) {
            int byEnd = Long.compare(endMs, o.endMs);
            return byEnd != 0 ? byEnd : spanId.compareTo(o.spanId);
        }
    }

    /** One session's state (loop_rules.SessionState plus the alerting identity). */
    public static final class Session {
        public String tenant;
        public String service;
        public String team;
        public String agentName;
        public String sessionId;
        public ArrayList<Call> calls = new ArrayList<>(); // sorted by (end_ms, span_id)
        public long steps;
        public BigDecimal costUsd = BigDecimal.ZERO;
        public long judgedUntilMs = -1;
        public long lastArrivalMs;
        public LinkedHashMap<String, OpenIncident> openRules = new LinkedHashMap<>();
        public Long timerMs; // the session's one pending timer

        public Session() {}
    }

    /** An incident open for one rule of a session. */
    public static final class OpenIncident {
        public String alertId;
        public long openedMs;

        public OpenIncident() {}

        public OpenIncident(String alertId, long openedMs) {
            this.alertId = alertId;
            this.openedMs = openedMs;
        }
    }

    /** What a rule found: evidence in insertion order (it becomes the alert's JSON). */
    public static final class Finding {
        public final String rule;
        public final String summary;
        public final Map<String, Object> evidence;
        public final long eventMs;

        Finding(String rule, String summary, Map<String, Object> evidence, long eventMs) {
            this.rule = rule;
            this.summary = summary;
            this.evidence = evidence;
            this.eventMs = eventMs;
        }
    }

    /** Inserts a call in event-time order and adds its cost; null if the span was already seen. */
    public static Call addCall(Session s, Call call, BigDecimal costUsd, int maxCalls) {
        for (Call c : s.calls) {
            if (c.spanId.equals(call.spanId)) {
                return null;
            }
        }
        if (call.endMs <= s.judgedUntilMs) {
            call.late = true;
        }
        int at = s.calls.size(); // after every call that sorts before or equal (bisect.insort)
        while (at > 0 && s.calls.get(at - 1).compareOrder(call) > 0) {
            at--;
        }
        s.calls.add(at, call);
        if (s.calls.size() > maxCalls) {
            s.calls.subList(0, s.calls.size() - maxCalls).clear();
        }
        if (call.tool == null) {
            s.steps += 1;
        }
        s.costUsd = s.costUsd.add(costUsd);
        s.lastArrivalMs = Math.max(s.lastArrivalMs, call.arrivedMs);
        return call;
    }

    // --- monotone rules: judged when a call arrives --------------------------------------
    public static List<Finding> monotoneFindings(Session s, Call call, DetectorRules.Rules rules, Double baselineTokensPerMin) {
        List<Finding> found = new ArrayList<>();
        if (call.tool != null) {
            return found; // no tokens, no step, no cost: nothing a monotone rule reads has changed
        }
        DetectorRules.Repetition r = rules.repetition;
        if (r.enabled && call.hasFingerprint()) {
            List<Long> times = new ArrayList<>();
            for (Call c : s.calls) {
                if (call.fingerprint.equals(c.fingerprint) && c.tool == null) {
                    times.add(c.endMs);
                }
            }
            long[] best = densest(times, call.endMs, r.windowS * 1000L);
            long count = best[0], start = best[1], end = best[2];
            if (count >= r.minRepeats) {
                found.add(new Finding("repetition",
                        "the same call (fingerprint " + call.fingerprint + ") was made " + count + " times within "
                                + Py.fixed((end - start) / 1000.0, 1) + " s (limit: " + (r.minRepeats - 1) + " in "
                                + r.windowS + " s)",
                        evidence("fingerprint", call.fingerprint, "repeats", count, "window_s", r.windowS,
                                "min_repeats", r.minRepeats, "first_end_ms", start, "last_end_ms", end), end));
            }
        }
        DetectorRules.TokenVelocity v = rules.tokenVelocity;
        if (v.enabled) {
            long[] best = heaviest(s.calls, call.endMs, v.windowS * 1000L);
            long tokens = best[0], start = best[1], end = best[2];
            double perMin = tokens * 60.0 / v.windowS;
            boolean limitHit = tokens > v.maxTokens;
            boolean baselineHit = baselineTokensPerMin != null && tokens >= v.baselineMinTokens
                    && perMin > v.baselineFactor.doubleValue() * baselineTokensPerMin;
            if (limitHit || baselineHit) {
                String why = limitHit ? "above the limit of " + Py.grouped(v.maxTokens)
                        : Py.fixed(perMin / baselineTokensPerMin, 1) + "x this agent's baseline of "
                                + Py.groupedFixed(baselineTokensPerMin, 0) + " tokens/min";
                found.add(new Finding("token_velocity",
                        Py.grouped(tokens) + " tokens within " + v.windowS + " s (" + Py.groupedFixed(perMin, 0)
                                + "/min), " + why,
                        evidence("tokens", tokens, "window_s", v.windowS, "tokens_per_min", Py.round(perMin),
                                "max_tokens", v.maxTokens, "baseline_tokens_per_min",
                                baselineTokensPerMin == null ? null : Py.round(baselineTokensPerMin),
                                "baseline_factor", v.baselineFactorText, "first_end_ms", start, "last_end_ms", end),
                        end));
            }
        }
        DetectorRules.StepCount sc = rules.stepCount;
        if (sc.enabled && s.steps > sc.maxSteps) {
            found.add(new Finding("step_count", s.steps + " calls in this session (maximum " + sc.maxSteps + ")",
                    evidence("steps", s.steps, "max_steps", sc.maxSteps), call.endMs));
        }
        DetectorRules.SessionCost c = rules.sessionCost;
        if (c.enabled && s.costUsd.compareTo(c.maxUsd) > 0) {
            found.add(new Finding("session_cost",
                    "session cost $" + Py.fixed(s.costUsd, 6) + " is above the cap of $" + c.maxUsdText,
                    evidence("cost_usd", s.costUsd.toString(), "max_usd", c.maxUsdText, "steps", s.steps),
                    call.endMs));
        }
        return found;
    }

    /** Most events in a closed window of windowMs containing t, over sorted times: {count, first, last}. */
    static long[] densest(List<Long> times, long t, long windowMs) {
        long[] best = {0, 0, 0};
        int lo = 0;
        for (int hi = 0; hi < times.size(); hi++) {
            long end = times.get(hi);
            while (end - times.get(lo) > windowMs) {
                lo++;
            }
            if (times.get(lo) <= t && t <= end && hi - lo + 1 > best[0]) {
                best = new long[] {hi - lo + 1, times.get(lo), end};
            }
        }
        return best;
    }

    /** Most tokens in a closed window of windowMs containing t, over calls sorted by end: {tokens, first, last}. */
    static long[] heaviest(List<Call> calls, long t, long windowMs) {
        long[] best = {0, 0, 0};
        int lo = 0;
        long total = 0;
        for (Call c : calls) {
            total += c.tokens;
            while (c.endMs - calls.get(lo).endMs > windowMs) {
                total -= calls.get(lo).tokens;
                lo++;
            }
            if (calls.get(lo).endMs <= t && t <= c.endMs && total > best[0]) {
                best = new long[] {total, calls.get(lo).endMs, c.endMs};
            }
        }
        return best;
    }

    // --- sequence rules: judged on settled calls, in event-time order --------------------
    /** Advances the judged horizon to the newest call that arrived at least outOfOrderMs ago. */
    public static long settle(Session s, long nowMs, long outOfOrderMs) {
        for (Call c : s.calls) {
            if (c.arrivedMs + outOfOrderMs <= nowMs) {
                s.judgedUntilMs = Math.max(s.judgedUntilMs, c.endMs);
            }
        }
        return s.judgedUntilMs;
    }

    /** Runs that end after sinceMs (older runs were judged already). */
    public static List<Finding> sequenceFindings(Session s, DetectorRules.Rules rules, long sinceMs) {
        List<Call> seq = new ArrayList<>(); // LLM calls; tool calls only for tool_failures
        List<Call> toolCalls = new ArrayList<>();
        for (Call c : s.calls) {
            if (!c.late && c.endMs <= s.judgedUntilMs) {
                (c.tool == null ? seq : toolCalls).add(c);
            }
        }
        List<Finding> found = new ArrayList<>();
        DetectorRules.ContextGrowth g = rules.contextGrowth;
        if (g.enabled) {
            int steps = 0;
            long repeatedInBest = 0;
            Call first = null, last = null;
            int runStart = 0;
            Set<String> seen = new HashSet<>();
            long repeated = 0;
            for (int i = 0; i < seq.size(); i++) {
                if (i > 0 && seq.get(i).inputTokens - seq.get(i - 1).inputTokens < g.minStepTokens) {
                    runStart = i;
                    seen.clear();
                    repeated = 0;
                }
                Call c = seq.get(i);
                if (c.hasFingerprint() && !seen.add(c.fingerprint)) {
                    repeated++;
                }
                if (i - runStart > steps && c.endMs > sinceMs) {
                    steps = i - runStart;
                    first = seq.get(runStart);
                    last = c;
                    repeatedInBest = repeated;
                }
            }
            // integer percent, compared without division, as in loop_rules.py
            if (steps >= g.minConsecutiveSteps && repeatedInBest * 100 >= g.minRepeatedPercent * (steps + 1)) {
                found.add(new Finding("context_growth",
                        "input tokens rose for " + steps + " consecutive calls, from " + Py.grouped(first.inputTokens)
                                + " to " + Py.grouped(last.inputTokens) + " ("
                                + Py.fixed((double) last.inputTokens / Math.max(first.inputTokens, 1), 1) + "x), "
                                + repeatedInBest + " of " + (steps + 1) + " calls repeating an earlier turn",
                        evidence("consecutive_steps", (long) steps, "min_consecutive_steps", g.minConsecutiveSteps,
                                "repeated_calls", repeatedInBest, "min_repeated_percent", g.minRepeatedPercent,
                                "first_input_tokens", first.inputTokens, "last_input_tokens", last.inputTokens,
                                "first_end_ms", first.endMs, "last_end_ms", last.endMs), last.endMs));
            }
        }
        DetectorRules.PingPong p = rules.pingPong;
        if (p.enabled) {
            List<Call> marked = new ArrayList<>();
            for (Call c : seq) {
                if (c.hasFingerprint()) {
                    marked.add(c);
                }
            }
            long cycles = 0, first = 0, last = 0;
            String a = null, b = null;
            int runStart = 0;
            for (int i = 1; i < marked.size(); i++) {
                String fp = marked.get(i).fingerprint;
                if (fp.equals(marked.get(i - 1).fingerprint)) {
                    runStart = i;
                    continue;
                }
                if (i - runStart >= 2 && !fp.equals(marked.get(i - 2).fingerprint)) {
                    runStart = i - 1; // a third fingerprint: a new run starts at the previous call
                }
                long c = (i - runStart + 1) / 2;
                if (c > cycles && marked.get(i).endMs > sinceMs) {
                    cycles = c;
                    a = marked.get(runStart).fingerprint;
                    b = marked.get(runStart + 1).fingerprint;
                    first = marked.get(runStart).endMs;
                    last = marked.get(i).endMs;
                }
            }
            if (cycles >= p.minCycles) {
                found.add(new Finding("ping_pong", "two calls alternated " + cycles + " times (" + a + " <-> " + b + ")",
                        evidence("cycles", cycles, "min_cycles", p.minCycles, "fingerprint_a", a, "fingerprint_b", b,
                                "first_end_ms", first, "last_end_ms", last), last));
            }
        }
        DetectorRules.RepeatedStep rs = rules.repeatedStep;
        if (rs.enabled) {
            long repeats = 0, growthOfLast = 0;
            Call first = null, last = null;
            long run = 0;
            for (int i = 3; i < seq.size(); i++) {
                long growth = seq.get(i).inputTokens - seq.get(i - 1).inputTokens;
                boolean same = growth >= rs.minGrowthTokens
                        && growth == seq.get(i - 2).inputTokens - seq.get(i - 3).inputTokens
                        && seq.get(i).tokens - seq.get(i).inputTokens == seq.get(i - 2).tokens - seq.get(i - 2).inputTokens;
                run = same ? run + 1 : 0;
                if (run > repeats && seq.get(i).endMs > sinceMs) {
                    repeats = run;
                    first = seq.get(i - (int) run - 2);
                    last = seq.get(i);
                    growthOfLast = growth;
                }
            }
            if (repeats >= rs.minRepeats) {
                long output = last.tokens - last.inputTokens;
                found.add(new Finding("repeated_step", "the same step " + repeats + " times in a row: each call grew"
                        + " the input as the call two before it did and produced as many output tokens (last: +"
                        + Py.grouped(growthOfLast) + " in, " + Py.grouped(output) + " out)",
                        evidence("repeats", repeats, "min_repeats", rs.minRepeats, "input_growth_tokens", growthOfLast,
                                "output_tokens", output, "first_end_ms", first.endMs, "last_end_ms", last.endMs),
                        last.endMs));
            }
        }
        DetectorRules.ToolFailures t = rules.toolFailures;
        if (t.enabled) {
            Map<String, FailureRun> runs = new HashMap<>(); // per tool: its failures since it last succeeded
            long count = 0, first = 0, last = 0;
            String tool = null, failure = null;
            for (Call c : toolCalls) {
                if (!c.hasFingerprint()) { // the tool succeeded: its failures so far were transient
                    runs.remove(c.tool);
                    continue;
                }
                FailureRun run = runs.get(c.tool);
                if (run == null || !c.fingerprint.equals(run.fingerprint)) {
                    run = new FailureRun(c.fingerprint, c.endMs);
                    runs.put(c.tool, run);
                }
                run.count++;
                if (run.count > count && c.endMs > sinceMs) {
                    count = run.count;
                    tool = c.tool;
                    failure = c.fingerprint;
                    first = run.firstEndMs;
                    last = c.endMs;
                }
            }
            if (count >= t.minConsecutive) {
                found.add(new Finding("tool_failures", "tool " + tool + " failed " + count
                        + " times in a row the same way (" + failure + "), with no success in between",
                        evidence("tool", tool, "failure", failure, "consecutive_failures", count,
                                "min_consecutive", t.minConsecutive, "first_end_ms", first, "last_end_ms", last), last));
            }
        }
        return found;
    }

    /** One tool's run of identical failures (loop_rules._longest_failure_run). */
    private static final class FailureRun {
        final String fingerprint;
        final long firstEndMs;
        long count;

        FailureRun(String fingerprint, long firstEndMs) {
            this.fingerprint = fingerprint;
            this.firstEndMs = firstEndMs;
        }
    }

    static Map<String, Object> evidence(Object... keysAndValues) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            Object value = keysAndValues[i + 1];
            out.put((String) keysAndValues[i], value instanceof Integer ? Long.valueOf((Integer) value) : value);
        }
        return out;
    }
}
