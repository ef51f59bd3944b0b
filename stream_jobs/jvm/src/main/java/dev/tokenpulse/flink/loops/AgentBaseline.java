package dev.tokenpulse.flink.loops;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;
import java.util.TreeMap;

/**
 * An agent's usual tokens per active session-minute (loop_rules.AgentBaseline, the
 * reference): an exponentially weighted mean over closed event-time minutes, sessions per
 * minute counted with an 8192-bit linear-counting bitmap.
 */
public final class AgentBaseline {
    static final int SESSION_BITS = 8192;
    static final double ALPHA = 0.2;

    public Double meanTokensPerMin; // null until the first minute closes
    public long minutesFolded;
    public TreeMap<Long, Minute> openMinutes = new TreeMap<>();
    public long lastSeenMs; // wall clock of the agent's latest call (state expiry)

    public AgentBaseline() {}

    /** One open minute: tokens and the bitmap of sessions seen. */
    public static final class Minute {
        public long tokens;
        public long[] sessions = new long[SESSION_BITS / 64];

        public Minute() {}
    }

    public void add(long endMs, String session, long tokens) {
        long minute = Math.floorDiv(endMs, 60_000L);
        if (!openMinutes.isEmpty() && minute < openMinutes.firstKey()) {
            return; // older than what is already folded: skip rather than rewrite history
        }
        Minute m = openMinutes.computeIfAbsent(minute, k -> new Minute());
        m.tokens += tokens;
        int bit = sessionBit(session);
        m.sessions[bit >>> 6] |= 1L << (bit & 63);
        long newest = openMinutes.lastKey();
        while (openMinutes.firstKey() < newest - 1) {
            Map.Entry<Long, Minute> closed = openMinutes.pollFirstEntry();
            double rate = closed.getValue().tokens / distinctSessions(closed.getValue().sessions);
            meanTokensPerMin = meanTokensPerMin == null ? rate : ALPHA * rate + (1 - ALPHA) * meanTokensPerMin;
            minutesFolded++;
        }
    }

    public Double baseline(long minMinutes) {
        return minutesFolded >= minMinutes ? meanTokensPerMin : null;
    }

    /** The first 8 bytes of SHA-256, little-endian, modulo the bitmap's size (as loop_rules._session_bit). */
    static int sessionBit(String session) {
        byte[] d;
        try {
            d = MessageDigest.getInstance("SHA-256").digest(session.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (d[i] & 0xff);
        }
        return (int) Long.remainderUnsigned(v, SESSION_BITS);
    }

    static double distinctSessions(long[] bitmap) {
        int ones = 0;
        for (long word : bitmap) {
            ones += Long.bitCount(word);
        }
        int zeros = SESSION_BITS - ones;
        return zeros > 0 ? SESSION_BITS * Math.log((double) SESSION_BITS / zeros) : SESSION_BITS;
    }
}
