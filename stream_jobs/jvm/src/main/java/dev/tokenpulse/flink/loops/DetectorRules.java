package dev.tokenpulse.flink.loops;

import java.io.Serializable;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The detector configuration (schemas/detectors.py), as the Python side validated it and
 * handed it over: {@code DetectorConfig.model_dump(mode="json")}. Python stays the one
 * validator; this class only reads the result and resolves the rules for one session the
 * same way {@code DetectorConfig.rules_for} does (overrides merged field by field, least
 * specific first).
 */
public final class DetectorRules implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();

    public final Timing timing;
    private final String json; // kept: the parsed trees are rebuilt after deserialization
    private transient ObjectNode baseRules;
    private transient List<Override> overrides;
    private transient Map<String, Rules> resolved;

    public DetectorRules(String configJson) {
        this.json = configJson;
        JsonNode root = parse(configJson);
        this.timing = new Timing(root.path("timing"));
        init(root);
    }

    private static JsonNode parse(String text) {
        try {
            return JSON.readTree(text);
        } catch (Exception e) {
            throw new IllegalArgumentException("detector config is not JSON: " + e.getMessage(), e);
        }
    }

    private void init(JsonNode root) {
        baseRules = (ObjectNode) root.get("rules");
        overrides = new ArrayList<>();
        for (JsonNode o : root.path("overrides")) {
            overrides.add(new Override(o));
        }
        resolved = new HashMap<>();
    }

    private void readObject(java.io.ObjectInputStream in) throws java.io.IOException, ClassNotFoundException {
        in.defaultReadObject();
        init(parse(json));
    }

    /** The rules in force for one session (cached: called for every call). */
    public Rules rulesFor(String tenant, String service, String agentName) {
        String key = tenant + '\u0000' + service + '\u0000' + agentName;
        Rules rules = resolved.get(key);
        if (rules == null) {
            List<Override> matching = new ArrayList<>();
            for (Override o : overrides) {
                if (o.covers(tenant, service, agentName)) {
                    matching.add(o);
                }
            }
            matching.sort(Comparator.comparingInt(Override::specificity)); // stable, as Python's sorted
            ObjectNode doc = baseRules.deepCopy();
            for (Override o : matching) {
                for (Map.Entry<String, JsonNode> rule : o.rules.properties()) {
                    ((ObjectNode) doc.get(rule.getKey())).setAll((ObjectNode) rule.getValue());
                }
            }
            rules = new Rules(doc);
            if (resolved.size() < 100_000) {
                resolved.put(key, rules);
            }
        }
        return rules;
    }

    private static final class Override {
        final String tenant, service, agentName;
        final ObjectNode rules;

        Override(JsonNode o) {
            JsonNode m = o.get("match");
            tenant = m.get("tenant").asText();
            service = text(m.get("service"));
            agentName = text(m.get("agent_name"));
            rules = (ObjectNode) o.get("rules");
        }

        int specificity() {
            return 1 + (service != null ? 1 : 0) + (agentName != null ? 1 : 0);
        }

        boolean covers(String t, String s, String a) {
            return tenant.equals(t) && (service == null || service.equals(s))
                    && (agentName == null || agentName.equals(a));
        }
    }

    static String text(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    /** Time semantics (schemas/detectors.py Timing). */
    public static final class Timing implements Serializable {
        private static final long serialVersionUID = 1L;
        public final long outOfOrderMs, maxEvidenceAgeS, resolveAfterQuietS, sessionTtlS;
        public final int maxCallsPerSession;

        Timing(JsonNode t) {
            outOfOrderMs = t.path("out_of_order_ms").asLong(2000);
            maxEvidenceAgeS = t.path("max_evidence_age_s").asLong(600);
            resolveAfterQuietS = t.path("resolve_after_quiet_s").asLong(120);
            sessionTtlS = t.path("session_ttl_s").asLong(3600);
            maxCallsPerSession = t.path("max_calls_per_session").asInt(256);
        }
    }

    /** Fields every rule has. */
    public static class Rule {
        public final boolean enabled;
        public final String severity, action;

        Rule(JsonNode n) {
            enabled = n.get("enabled").asBoolean();
            severity = n.get("severity").asText();
            action = n.get("action").asText();
        }
    }

    public static final class Repetition extends Rule {
        public final long minRepeats, windowS;

        Repetition(JsonNode n) {
            super(n);
            minRepeats = n.get("min_repeats").asLong();
            windowS = n.get("window_s").asLong();
        }
    }

    public static final class TokenVelocity extends Rule {
        public final long windowS, maxTokens, baselineMinTokens, baselineMinMinutes;
        public final BigDecimal baselineFactor;
        public final String baselineFactorText; // str(Decimal) as Python writes it into evidence

        TokenVelocity(JsonNode n) {
            super(n);
            windowS = n.get("window_s").asLong();
            maxTokens = n.get("max_tokens").asLong();
            baselineFactorText = n.get("baseline_factor").asText();
            baselineFactor = new BigDecimal(baselineFactorText);
            baselineMinTokens = n.get("baseline_min_tokens").asLong();
            baselineMinMinutes = n.get("baseline_min_minutes").asLong();
        }
    }

    public static final class ContextGrowth extends Rule {
        public final long minConsecutiveSteps, minStepTokens, minRepeatedPercent;

        ContextGrowth(JsonNode n) {
            super(n);
            minConsecutiveSteps = n.get("min_consecutive_steps").asLong();
            minStepTokens = n.get("min_step_tokens").asLong();
            minRepeatedPercent = n.get("min_repeated_percent").asLong();
        }
    }

    public static final class PingPong extends Rule {
        public final long minCycles;

        PingPong(JsonNode n) {
            super(n);
            minCycles = n.get("min_cycles").asLong();
        }
    }

    public static final class ToolFailures extends Rule {
        public final long minConsecutive;

        ToolFailures(JsonNode n) {
            super(n);
            minConsecutive = n.get("min_consecutive").asLong();
        }
    }

    public static final class RepeatedStep extends Rule {
        public final long minRepeats, minGrowthTokens;

        RepeatedStep(JsonNode n) {
            super(n);
            minRepeats = n.get("min_repeats").asLong();
            minGrowthTokens = n.get("min_growth_tokens").asLong();
        }
    }

    public static final class StepCount extends Rule {
        public final long maxSteps;

        StepCount(JsonNode n) {
            super(n);
            maxSteps = n.get("max_steps").asLong();
        }
    }

    public static final class SessionCost extends Rule {
        public final BigDecimal maxUsd;
        public final String maxUsdText;

        SessionCost(JsonNode n) {
            super(n);
            maxUsdText = n.get("max_usd").asText();
            maxUsd = new BigDecimal(maxUsdText);
        }
    }

    /** One session's rules (schemas/detectors.py DetectorRules). */
    public static final class Rules {
        public final Repetition repetition;
        public final TokenVelocity tokenVelocity;
        public final ContextGrowth contextGrowth;
        public final PingPong pingPong;
        public final ToolFailures toolFailures;
        public final RepeatedStep repeatedStep;
        public final StepCount stepCount;
        public final SessionCost sessionCost;

        Rules(JsonNode doc) {
            repetition = new Repetition(doc.get("repetition"));
            tokenVelocity = new TokenVelocity(doc.get("token_velocity"));
            contextGrowth = new ContextGrowth(doc.get("context_growth"));
            pingPong = new PingPong(doc.get("ping_pong"));
            toolFailures = new ToolFailures(doc.get("tool_failures"));
            repeatedStep = new RepeatedStep(doc.get("repeated_step"));
            stepCount = new StepCount(doc.get("step_count"));
            sessionCost = new SessionCost(doc.get("session_cost"));
        }

        public Rule byName(String rule) {
            switch (rule) {
                case "repetition": return repetition;
                case "token_velocity": return tokenVelocity;
                case "context_growth": return contextGrowth;
                case "ping_pong": return pingPong;
                case "tool_failures": return toolFailures;
                case "repeated_step": return repeatedStep;
                case "step_count": return stepCount;
                case "session_cost": return sessionCost;
                default: throw new IllegalArgumentException("unknown rule " + Objects.toString(rule));
            }
        }
    }
}
