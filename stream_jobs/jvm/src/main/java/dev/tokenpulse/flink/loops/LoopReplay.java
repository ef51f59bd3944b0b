package dev.tokenpulse.flink.loops;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Replays one session's events through the JVM rules, one JSON line in, one out, so tests
 * can hold them against the Python reference (tests/component/test_loop_rules_jvm.py).
 *
 * <pre>
 * a session: {"op": "session", "config": DetectorConfig JSON, "tenant", "service", "team", "agent_name",
 *              "session_id"}                -> {} (a fresh session and agent baseline)
 * then:    {"op": "call", "end_ms", "span_id", "fingerprint", "input_tokens", "tokens", "arrived_ms",
 *           "cost_usd", "baseline_tpm"}   -> {"added", "late", "findings", "alerts"}   (monotone rules)
 *          {"op": "settle", "now_ms"}       -> {"judged_until_ms", "findings", "alerts"} (sequence rules)
 *          {"op": "resolve", "now_ms"}      -> {"alerts"} (every open incident resolved)
 *          {"op": "baseline", "end_ms", "session", "tokens", "min_minutes"}
 *                                           -> {"baseline"} (before adding the call)
 * "alerts" are the alert JSON documents the job would emit (open: one per rule and session).
 * </pre>
 */
public final class LoopReplay {
    private static final ObjectMapper JSON = new ObjectMapper();

    private LoopReplay() {}

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        DetectorRules config = null;
        DetectorRules.Rules rules = null;
        LoopRules.Session session = null;
        AgentBaseline baseline = null;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            JsonNode e = JSON.readTree(line);
            ObjectNode result = JSON.createObjectNode();
            switch (e.get("op").asText()) {
                case "session": {
                    config = new DetectorRules(JSON.writeValueAsString(e.get("config")));
                    rules = config.rulesFor(e.get("tenant").asText(), DetectorRules.text(e.get("service")),
                            DetectorRules.text(e.get("agent_name")));
                    session = new LoopRules.Session();
                    session.tenant = e.get("tenant").asText();
                    session.service = DetectorRules.text(e.get("service"));
                    session.team = DetectorRules.text(e.get("team"));
                    session.agentName = DetectorRules.text(e.get("agent_name"));
                    session.sessionId = e.get("session_id").asText();
                    baseline = new AgentBaseline();
                    break;
                }
                case "call": {
                    LoopRules.Call call = new LoopRules.Call(e.get("end_ms").asLong(), e.get("span_id").asText(),
                            DetectorRules.text(e.get("fingerprint")), e.get("input_tokens").asLong(),
                            e.get("tokens").asLong(), e.get("arrived_ms").asLong());
                    call.tool = DetectorRules.text(e.get("tool"));
                    LoopRules.Call added = LoopRules.addCall(session, call, new BigDecimal(e.get("cost_usd").asText()),
                            config.timing.maxCallsPerSession);
                    result.put("added", added != null);
                    result.put("late", added != null && added.late);
                    JsonNode b = e.get("baseline_tpm");
                    Double tpm = b == null || b.isNull() ? null : b.asDouble();
                    List<LoopRules.Finding> found = added == null ? List.of()
                            : LoopRules.monotoneFindings(session, added, rules, tpm);
                    result.set("findings", findings(found));
                    result.set("alerts", alerts(Alerts.open(session, found, rules, config.timing, call.arrivedMs)));
                    break;
                }
                case "settle": {
                    long before = session.judgedUntilMs;
                    LoopRules.settle(session, e.get("now_ms").asLong(), config.timing.outOfOrderMs);
                    result.put("judged_until_ms", session.judgedUntilMs);
                    List<LoopRules.Finding> found = LoopRules.sequenceFindings(session, rules, before);
                    result.set("findings", findings(found));
                    result.set("alerts", alerts(Alerts.open(session, found, rules, config.timing, e.get("now_ms").asLong())));
                    break;
                }
                case "resolve": {
                    result.set("alerts", alerts(Alerts.resolve(session, rules, e.get("now_ms").asLong())));
                    break;
                }
                case "baseline": {
                    Double current = baseline.baseline(e.get("min_minutes").asLong());
                    baseline.add(e.get("end_ms").asLong(), e.get("session").asText(), e.get("tokens").asLong());
                    if (current == null) {
                        result.putNull("baseline");
                    } else {
                        result.put("baseline", current);
                    }
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op in " + line);
            }
            out.println(JSON.writeValueAsString(result));
        }
    }

    private static ArrayNode alerts(List<Alerts.Emitted> emitted) throws Exception {
        ArrayNode list = JSON.createArrayNode();
        for (Alerts.Emitted a : emitted) {
            list.add(JSON.readTree(a.payload));
        }
        return list;
    }

    private static ArrayNode findings(List<LoopRules.Finding> found) {
        ArrayNode list = JSON.createArrayNode();
        for (LoopRules.Finding f : found) {
            ObjectNode node = list.addObject();
            node.put("rule", f.rule);
            node.put("summary", f.summary);
            node.set("evidence", Alerts.evidence(f));
            node.put("event_ms", f.eventMs);
        }
        return list;
    }
}
