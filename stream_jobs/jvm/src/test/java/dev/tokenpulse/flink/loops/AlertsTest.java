package dev.tokenpulse.flink.loops;

import static dev.tokenpulse.flink.loops.Fixtures.rules;
import static dev.tokenpulse.flink.loops.Fixtures.session;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** The alert documents the JVM detector emits: schemas/alerts.py's Alert, one incident per rule and session. */
class AlertsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long EVENT_MS = 1_700_000_000_000L;

    private static LoopRules.Finding finding(String rule, String summary) {
        return new LoopRules.Finding(rule, summary, LoopRules.evidence("repeats", 6, "window_s", 120), EVENT_MS);
    }

    private static JsonNode read(Alerts.Emitted e) throws Exception {
        return JSON.readTree(e.payload);
    }

    @Test
    void anOpenedIncidentCarriesTheModelsFieldsInItsOrder() throws Exception {
        LoopRules.Session s = session("s-1");
        List<Alerts.Emitted> out = Alerts.open(s, List.of(finding("repetition", "six times")), rules(),
                Fixtures.CONFIG.timing, EVENT_MS + 1_500);
        assertEquals(1, out.size());
        JsonNode a = read(out.get(0));
        List<String> fields = new ArrayList<>();
        a.fieldNames().forEachRemaining(fields::add);
        assertEquals(List.of("schema_version", "alert_id", "dedupe_key", "state", "kind", "rule", "severity", "action",
                "tenant", "service", "team", "agent_name", "session_id", "summary", "evidence", "opened_ms",
                "resolved_ms", "emitted_ms", "source"), fields);
        assertEquals("acme/runaway_loop/repetition/s-1", out.get(0).dedupeKey);
        assertEquals(out.get(0).dedupeKey, a.get("dedupe_key").asText());
        // schemas/alerts.py alert_id_for("acme/runaway_loop/repetition/s-1", 1700000000000), computed by Python
        assertEquals("00d4688253cdb59e595cc58841d2ddbf", a.get("alert_id").asText());
        assertEquals("open", a.get("state").asText());
        assertEquals("critical", a.get("severity").asText()); // the repetition rule's default
        assertEquals("runaway loop? triage session s-1: six times", a.get("summary").asText());
        assertEquals(6, a.get("evidence").get("repeats").asInt());
        assertEquals(1.5, a.get("evidence").get("evidence_age_s").asDouble());
        assertTrue(a.get("resolved_ms").isNull());
        assertEquals("loop-detector", a.get("source").asText());
    }

    @Test
    void anOpenIncidentIsNotOpenedAgainAndResolvesWithItsId() throws Exception {
        LoopRules.Session s = session("s-2");
        s.lastArrivalMs = EVENT_MS;
        String id = read(Alerts.open(s, List.of(finding("ping_pong", "a")), rules(), Fixtures.CONFIG.timing, EVENT_MS)
                .get(0)).get("alert_id").asText();
        assertTrue(Alerts.open(s, List.of(finding("ping_pong", "b")), rules(), Fixtures.CONFIG.timing, EVENT_MS + 1).isEmpty());
        List<Alerts.Emitted> resolved = Alerts.resolve(s, rules(), EVENT_MS + 120_000);
        assertEquals(1, resolved.size());
        JsonNode r = read(resolved.get(0));
        assertEquals("resolved", r.get("state").asText());
        assertEquals(id, r.get("alert_id").asText());
        assertEquals(EVENT_MS + 120_000, r.get("resolved_ms").asLong());
        assertEquals("resolved: session s-2 has been quiet for 120 s", r.get("summary").asText());
        assertTrue(s.openRules.isEmpty());
    }

    @Test
    void oldEvidenceIsRecordedButNotPaged() throws Exception {
        LoopRules.Session s = session("s-3");
        long now = EVENT_MS + 601_000; // max_evidence_age_s is 600
        JsonNode a = read(Alerts.open(s, List.of(finding("repetition", "x")), rules(), Fixtures.CONFIG.timing, now).get(0));
        assertEquals("info", a.get("severity").asText());
        assertEquals("notify", a.get("action").asText());
        assertTrue(a.get("evidence").get("stale").asBoolean());
        assertTrue(a.get("summary").asText().endsWith("(evidence is 10 min old: recorded, not paged)"), a.get("summary").asText());
    }

    @Test
    void theSummaryIsCutAtAThousandCodePointsNotUtf16Units() {
        LoopRules.Session s = session("s-4");
        String text = Alerts.summary(s, finding("repetition", "\uD83D\uDD01".repeat(2_000)), false, 0); // U+1F501
        assertEquals(1_000, text.codePointCount(0, text.length()));
        assertTrue(Character.isHighSurrogate(text.charAt(text.length() - 2)), "no half of a surrogate pair at the end");
    }

    @Test
    void whoIsTheAgentNameElseTheServiceElseAgent() {
        LoopRules.Session s = session("s-5");
        s.agentName = "";
        assertTrue(Alerts.summary(s, finding("repetition", "x"), false, 0).startsWith("runaway loop? support-bot session"));
        s.service = null;
        assertTrue(Alerts.summary(s, finding("repetition", "x"), false, 0).startsWith("runaway loop? agent session"));
    }

    @Test
    void evidenceKeepsTheRulesFieldOrder() {
        LoopRules.Finding f = new LoopRules.Finding("x", "y", LoopRules.evidence("b", 1, "a", 2L, "c", null), 0);
        List<String> keys = new ArrayList<>();
        Alerts.evidence(f).fieldNames().forEachRemaining(keys::add);
        assertEquals(List.of("b", "a", "c"), keys);
        assertEquals(Map.of("b", 1L, "a", 2L).get("b"), f.evidence.get("b")); // Integer widened to Long, as Python ints
    }
}
