package dev.tokenpulse.flink;

import java.math.BigDecimal;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * One token's (or unit's) price for a call, from the price catalog held in the JVM
 * ({@link PriceCatalog}: the comprehensive catalog with local overrides, thousands of entries,
 * resolved once per distinct model and memoized): constant cost per call whatever the catalog's
 * size, where the generated CASE stops being JIT-compiled past a few dozen entries.
 *
 * <p>{@code eval(provider, model, end_ms, input_tokens, service_tier, priceClass)} returns the
 * price of one unit of that class (one of {@link PriceCatalog#CLASSES}), or NULL when no entry
 * applies (an unpriced call), exactly like schemas/pricing.py's price_at.
 */
public class PriceLookup extends ScalarFunction {
    public static final String PARAMETER = PriceCatalog.PARAMETER;

    private transient PriceCatalog catalog;

    @Override
    public void open(FunctionContext context) {
        catalog = PriceCatalog.decode(context.getJobParameter(PARAMETER, ""));
    }

    public @DataTypeHint("DECIMAL(18, 12)") BigDecimal eval(String provider, String model, Long endMs, Long inputTokens,
                                                            String serviceTier, String priceClass) {
        if (provider == null || model == null || endMs == null) {
            return null;
        }
        PriceCatalog.Entry e = catalog.priceAt(provider, model, endMs, inputTokens == null ? 0L : inputTokens,
                serviceTier == null ? "standard" : serviceTier);
        return e == null ? null : e.prices[PriceCatalog.classIndex(priceClass)];
    }
}
