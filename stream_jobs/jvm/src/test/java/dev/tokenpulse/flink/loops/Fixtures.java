package dev.tokenpulse.flink.loops;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;

/** The default detector configuration (written by Python) and small session builders. */
final class Fixtures {
    private Fixtures() {}

    /** schemas/detectors.py DetectorConfig().model_dump(mode="json"); tests/unit/stream_jobs/test_jvm_module.py keeps it current. */
    static String defaultConfigJson() {
        try (InputStream in = Fixtures.class.getResourceAsStream("/detectors-default.json")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static final DetectorRules CONFIG = new DetectorRules(defaultConfigJson());

    static LoopRules.Session session(String sessionId) {
        LoopRules.Session s = new LoopRules.Session();
        s.tenant = "acme";
        s.service = "support-bot";
        s.team = "cx";
        s.agentName = "triage";
        s.sessionId = sessionId;
        return s;
    }

    static DetectorRules.Rules rules() {
        return CONFIG.rulesFor("acme", "support-bot", "triage");
    }

    /** An LLM call that ended at endMs and arrived at the detector at the same instant. */
    static LoopRules.Call call(long endMs, String spanId, String fingerprint, long inputTokens, long outputTokens) {
        return new LoopRules.Call(endMs, spanId, fingerprint, inputTokens, inputTokens + outputTokens, endMs);
    }

    static LoopRules.Call add(LoopRules.Session s, LoopRules.Call c) {
        return LoopRules.addCall(s, c, new BigDecimal("0.001"), CONFIG.timing.maxCallsPerSession);
    }
}
