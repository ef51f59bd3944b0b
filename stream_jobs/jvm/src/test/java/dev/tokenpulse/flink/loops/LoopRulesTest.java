package dev.tokenpulse.flink.loops;

import static dev.tokenpulse.flink.loops.Fixtures.add;
import static dev.tokenpulse.flink.loops.Fixtures.call;
import static dev.tokenpulse.flink.loops.Fixtures.rules;
import static dev.tokenpulse.flink.loops.Fixtures.session;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.List;

import org.junit.jupiter.api.Test;

/**
 * The loop rules at their thresholds under the default configuration (schemas/detectors.py).
 * Equality with the Python reference on generated sessions is test_loop_rules_jvm.py's; these
 * tests pin what each rule means, so a change to one shows up as a named failure here.
 */
class LoopRulesTest {
    private static List<String> monotoneRules(LoopRules.Session s, LoopRules.Call c) {
        return LoopRules.monotoneFindings(s, c, rules(), null).stream().map(f -> f.rule).toList();
    }

    private static List<String> sequenceRules(LoopRules.Session s, long nowMs) {
        LoopRules.settle(s, nowMs, Fixtures.CONFIG.timing.outOfOrderMs);
        return LoopRules.sequenceFindings(s, rules(), -1).stream().map(f -> f.rule).toList();
    }

    @Test
    void repetitionFiresOnTheSixthIdenticalCallWithinTheWindowNotTheFifth() {
        LoopRules.Session s = session("s-rep");
        for (int i = 0; i < 5; i++) {
            LoopRules.Call c = add(s, call(1_000 + i * 10_000L, "span-" + i, "fp-same", 1_000, 50));
            assertTrue(monotoneRules(s, c).isEmpty(), "call " + (i + 1));
        }
        LoopRules.Call sixth = add(s, call(51_000, "span-5", "fp-same", 1_000, 50));
        List<LoopRules.Finding> found = LoopRules.monotoneFindings(s, sixth, rules(), null);
        assertEquals(List.of("repetition"), found.stream().map(f -> f.rule).toList());
        LoopRules.Finding f = found.get(0);
        assertEquals(6L, f.evidence.get("repeats"));
        assertEquals(1_000L, f.evidence.get("first_end_ms"));
        assertEquals("the same call (fingerprint fp-same) was made 6 times within 50.0 s (limit: 5 in 120 s)", f.summary);
    }

    @Test
    void repeatsSpreadWiderThanTheWindowAreNotALoop() {
        LoopRules.Session s = session("s-slow");
        for (int i = 0; i < 10; i++) {
            LoopRules.Call c = add(s, call(i * 30_000L, "span-" + i, "fp-poll", 500, 20));
            assertTrue(monotoneRules(s, c).isEmpty(), "call " + (i + 1)); // 30 s apart: at most 5 within 120 s
        }
    }

    @Test
    void aSpanSeenTwiceIsCountedOnce() {
        LoopRules.Session s = session("s-dup");
        assertNotNull(add(s, call(1_000, "span-a", "fp", 100, 10)));
        assertNull(add(s, call(1_000, "span-a", "fp", 100, 10)));
        assertEquals(1, s.steps);
        assertEquals(new BigDecimal("0.001"), s.costUsd);
    }

    @Test
    void toolCallsAreNotSteps() {
        LoopRules.Session s = session("s-tools");
        LoopRules.Call tool = call(1_000, "tool-1", null, 0, 0);
        tool.tool = "search";
        add(s, tool);
        add(s, call(2_000, "llm-1", "fp", 100, 10));
        assertEquals(1, s.steps);
    }

    @Test
    void aHealthyAgentResendingItsGrowingHistoryIsNotContextGrowth() {
        // every call carries the whole history, so input tokens rise at each of 40 steps,
        // but each step asks something new (a new fingerprint, its own growth and answer length)
        LoopRules.Session s = session("s-healthy");
        long input = 2_000;
        for (int i = 0; i < 40; i++) {
            input += 300 + (i * 37) % 500;
            add(s, call(i * 1_000L, String.format("span-%03d", i), "fp-" + i, input, 100 + (i * 53) % 400));
        }
        assertTrue(sequenceRules(s, 100_000).isEmpty());
    }

    @Test
    void aGrowingHistoryThatRepeatsItsTurnsIsContextGrowth() {
        // the same two questions asked again and again while the history grows
        LoopRules.Session s = session("s-stuck");
        for (int i = 0; i < 40; i++) {
            add(s, call(i * 1_000L, String.format("span-%03d", i), "fp-" + (i % 2), 2_000 + i * 700L, 150 + i));
        }
        assertTrue(sequenceRules(s, 100_000).contains("context_growth"));
    }

    @Test
    void sequenceRulesWaitForTheOutOfOrderAllowance() {
        LoopRules.Session s = session("s-wait");
        for (int i = 0; i < 12; i++) {
            add(s, call(i * 100L, String.format("span-%03d", i), i % 2 == 0 ? "fp-a" : "fp-b", 1_000, 10));
        }
        // 2 s after the fifth call's arrival only five calls are settled: two cycles, not a finding yet
        assertTrue(sequenceRules(s, 400 + 2_000).isEmpty());
        assertEquals(400, s.judgedUntilMs);
        assertEquals(1_100, LoopRules.settle(s, 1_100 + 2_000, 2_000));
        assertTrue(sequenceRules(s, 1_100 + 2_000).contains("ping_pong"));
    }

    @Test
    void aCallOlderThanTheJudgedHorizonIsLateAndNotJudged() {
        LoopRules.Session s = session("s-late");
        add(s, call(10_000, "span-b", "fp", 100, 10));
        LoopRules.settle(s, 20_000, 2_000);
        LoopRules.Call late = add(s, call(5_000, "span-a", "fp", 100, 10));
        assertTrue(late.late);
        assertEquals("span-a", s.calls.get(0).spanId); // kept in event-time order all the same
    }

    @Test
    void stepCountAndSessionCostAreCaps() {
        LoopRules.Session s = session("s-caps");
        LoopRules.Call last = null;
        for (int i = 0; i <= 500; i++) {
            last = call(i * 1_000L, String.format("span-%04d", i), "fp-" + i, 100, 10);
            LoopRules.addCall(s, last, BigDecimal.ZERO, 256);
            if (i < 500) {
                assertTrue(monotoneRules(s, last).isEmpty(), "step " + (i + 1));
            }
        }
        assertEquals(List.of("step_count"), monotoneRules(s, last));
        LoopRules.Call expensive = call(600_000, "span-x", "fp-x", 100, 10);
        LoopRules.addCall(s, expensive, new BigDecimal("25.000001"), 256);
        assertTrue(monotoneRules(s, expensive).contains("session_cost"));
    }
}
