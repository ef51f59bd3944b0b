package dev.tokenpulse.flink;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * One token's price for a call, looked up in the price catalog by hash instead of a
 * generated CASE: constant cost per call whatever the catalog's size (LiteLLM's table has
 * thousands of entries; the CASE stops being JIT-compiled past a few dozen).
 *
 * <p>The catalog arrives as the job parameter {@code tokenpulse.prices}: base64 of
 * tab-separated lines written by stream_jobs/price_lookup.py, one per (entry, model name),
 * already in the CASE's order (service-tier entries first, then higher context tiers):
 * {@code provider, name, from_ms, to_ms|-, min_input_tokens, service_tier, input, cached,
 * cache_creation, output, input_audio, output_audio, input_image, output_image,
 * input_audio_second} (per-token and per-unit prices, plain decimals, scale <= 12). The first entry
 * of a (provider, model) list that applies wins, exactly like the CASE and
 * schemas/pricing.py's price_at: the call's period, its input tokens at or above the
 * entry's threshold, and the entry's tier either "standard" or the call's own.
 *
 * <p>{@code eval(..., priceClass)} returns the price of one unit of that class (one of
 * {@link #CLASSES}), or NULL when no entry applies (an unpriced call).
 */
public class PriceLookup extends ScalarFunction {
    public static final String PARAMETER = "tokenpulse.prices";
    /** Price classes in the order of a catalog line's price fields (price_lookup.CLASSES). */
    static final String[] CLASSES = {"input", "cached", "cache_creation", "output", "input_audio", "output_audio",
            "input_image", "output_image", "input_audio_second"};
    private static final int FIXED_FIELDS = 6;

    private static final class Entry {
        final long fromMs;
        final long toMs; // Long.MAX_VALUE: open-ended
        final long minInputTokens;
        final String serviceTier;
        final BigDecimal[] prices; // in CLASSES order

        Entry(String[] f) {
            fromMs = Long.parseLong(f[2]);
            toMs = f[3].equals("-") ? Long.MAX_VALUE : Long.parseLong(f[3]);
            minInputTokens = Long.parseLong(f[4]);
            serviceTier = f[5];
            prices = new BigDecimal[CLASSES.length];
            for (int i = 0; i < CLASSES.length; i++) {
                prices[i] = new BigDecimal(f[FIXED_FIELDS + i]);
            }
        }

        boolean applies(long endMs, long inputTokens, String tier) {
            return fromMs <= endMs && endMs < toMs && minInputTokens <= inputTokens
                    && (serviceTier.equals("standard") || serviceTier.equals(tier));
        }
    }

    private transient Map<String, List<Entry>> byModel;

    @Override
    public void open(FunctionContext context) {
        String encoded = context.getJobParameter(PARAMETER, "");
        byModel = new HashMap<>();
        String text = new String(Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
        for (String line : text.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            if (f.length != FIXED_FIELDS + CLASSES.length) {
                throw new IllegalArgumentException("price catalog line has " + f.length + " fields, expected "
                        + (FIXED_FIELDS + CLASSES.length) + ": " + line);
            }
            byModel.computeIfAbsent(key(f[0], f[1]), k -> new ArrayList<>()).add(new Entry(f));
        }
    }

    private static String key(String provider, String model) {
        return provider + '\u0000' + model;
    }

    private static int classIndex(String priceClass) {
        for (int i = 0; i < CLASSES.length; i++) {
            if (CLASSES[i].equals(priceClass)) {
                return i;
            }
        }
        throw new IllegalArgumentException("unknown price class " + priceClass);
    }

    public @DataTypeHint("DECIMAL(18, 12)") BigDecimal eval(String provider, String model, Long endMs, Long inputTokens,
                                                            String serviceTier, String priceClass) {
        if (provider == null || model == null || endMs == null) {
            return null;
        }
        List<Entry> entries = byModel.get(key(provider, model));
        if (entries == null) {
            return null;
        }
        long tokens = inputTokens == null ? 0L : inputTokens;
        String tier = serviceTier == null ? "standard" : serviceTier;
        for (Entry e : entries) {
            if (e.applies(endMs, tokens, tier)) {
                return e.prices[classIndex(priceClass)];
            }
        }
        return null;
    }
}
