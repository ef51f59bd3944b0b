package dev.tokenpulse.flink.loops;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Opens and resolves a session's incidents as alert JSON in the shape of schemas/alerts.py's
 * {@code Alert} (schema_version 1; the alert dispatcher and the loader validate it with that
 * model). One incident per rule and session until it resolves; ids are deterministic, so a
 * replayed emission carries the same id (as loop_detection.py's LoopDetectorFunction).
 */
final class Alerts {
    static final String KIND = "runaway_loop";
    private static final ObjectMapper JSON = new ObjectMapper();

    private Alerts() {}

    /** One emitted alert state: Kafka key and JSON value. */
    static final class Emitted {
        final String dedupeKey;
        final String payload;

        Emitted(String dedupeKey, String payload) {
            this.dedupeKey = dedupeKey;
            this.payload = payload;
        }
    }

    static List<Emitted> open(LoopRules.Session s, List<LoopRules.Finding> findings, DetectorRules.Rules rules,
                              DetectorRules.Timing timing, long nowMs) {
        List<Emitted> out = new ArrayList<>();
        for (LoopRules.Finding f : findings) {
            if (s.openRules.containsKey(f.rule)) {
                continue;
            }
            DetectorRules.Rule rule = rules.byName(f.rule);
            double ageS = (nowMs - f.eventMs) / 1000.0;
            boolean stale = ageS > timing.maxEvidenceAgeS;
            String key = dedupeKey(s.tenant, f.rule, s.sessionId);
            String alertId = alertId(key, f.eventMs);
            ObjectNode evidence = evidence(f);
            evidence.put("evidence_age_s", Py.round(ageS, 3));
            evidence.put("stale", stale);
            // history is recorded, not acted on: no page and no tripped breaker
            ObjectNode alert = alert(s, alertId, key, "open", f.rule, stale ? "info" : rule.severity,
                    stale ? "notify" : rule.action, summary(s, f, stale, ageS), evidence, f.eventMs, null);
            s.openRules.put(f.rule, new LoopRules.OpenIncident(alertId, f.eventMs));
            out.add(new Emitted(key, write(alert)));
        }
        return out;
    }

    static List<Emitted> resolve(LoopRules.Session s, DetectorRules.Rules rules, long nowMs) {
        List<Emitted> out = new ArrayList<>();
        List<String> names = new ArrayList<>(s.openRules.keySet());
        names.sort(null);
        for (String name : names) {
            LoopRules.OpenIncident incident = s.openRules.get(name);
            DetectorRules.Rule rule = rules.byName(name);
            double quietS = (nowMs - s.lastArrivalMs) / 1000.0;
            String key = dedupeKey(s.tenant, name, s.sessionId);
            ObjectNode evidence = JSON.createObjectNode();
            evidence.put("quiet_s", Py.round(quietS, 1));
            evidence.put("steps", s.steps);
            evidence.put("cost_usd", s.costUsd.toString());
            ObjectNode alert = alert(s, incident.alertId, key, "resolved", name, rule.severity, rule.action,
                    "resolved: session " + s.sessionId + " has been quiet for " + Py.fixed(quietS, 0) + " s",
                    evidence, incident.openedMs, nowMs);
            out.add(new Emitted(key, write(alert)));
        }
        s.openRules.clear();
        return out;
    }

    private static ObjectNode alert(LoopRules.Session s, String alertId, String key, String state, String rule,
                                    String severity, String action, String summary, ObjectNode evidence,
                                    long openedMs, Long resolvedMs) {
        ObjectNode a = JSON.createObjectNode(); // field order as the pydantic model's
        a.put("schema_version", 1);
        a.put("alert_id", alertId);
        a.put("dedupe_key", key);
        a.put("state", state);
        a.put("kind", KIND);
        a.put("rule", rule);
        a.put("severity", severity);
        a.put("action", action);
        a.put("tenant", s.tenant);
        a.put("service", s.service);
        a.put("team", s.team);
        a.put("agent_name", s.agentName);
        a.put("session_id", s.sessionId);
        a.put("summary", summary);
        a.set("evidence", evidence);
        a.put("opened_ms", openedMs);
        a.put("resolved_ms", resolvedMs);
        a.put("emitted_ms", System.currentTimeMillis());
        a.put("source", "loop-detector");
        return a;
    }

    /** A finding's evidence as a JSON object, in the rule's field order. */
    static ObjectNode evidence(LoopRules.Finding f) {
        ObjectNode evidence = JSON.createObjectNode();
        for (Map.Entry<String, Object> e : f.evidence.entrySet()) {
            evidence.putPOJO(e.getKey(), e.getValue());
        }
        return evidence;
    }

    static String summary(LoopRules.Session s, LoopRules.Finding f, boolean stale, double ageS) {
        String who = nonEmpty(s.agentName) ? s.agentName : nonEmpty(s.service) ? s.service : "agent";
        String text = "runaway loop? " + who + " session " + s.sessionId + ": " + f.summary;
        if (stale) {
            text += " (evidence is " + Py.fixed(ageS / 60, 0) + " min old: recorded, not paged)";
        }
        // text[:1000] in Python counts code points, not UTF-16 units
        return text.codePointCount(0, text.length()) <= 1000 ? text : text.substring(0, text.offsetByCodePoints(0, 1000));
    }

    static String dedupeKey(String tenant, String rule, String sessionId) {
        return tenant + "/" + KIND + "/" + rule + "/" + sessionId;
    }

    /** schemas/alerts.py alert_id_for: sha256 of "key|opened_ms", first 32 hex digits. */
    static String alertId(String dedupeKey, long openedMs) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256")
                    .digest((dedupeKey + "|" + openedMs).getBytes(StandardCharsets.UTF_8));
            StringBuilder hex = new StringBuilder(32);
            for (int i = 0; i < 16; i++) {
                hex.append(Character.forDigit((d[i] >> 4) & 0xf, 16)).append(Character.forDigit(d[i] & 0xf, 16));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static boolean nonEmpty(String s) {
        return s != null && !s.isEmpty();
    }

    private static String write(ObjectNode node) {
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
