package dev.tokenpulse.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

import org.junit.jupiter.api.Test;

/**
 * The JVM price lookup against the rules of schemas/pricing.py's PriceTable, on a small catalog
 * written here in the wire format stream_jobs/price_lookup.py produces (the Python/Java equality
 * on the real catalog is tests/integration/test_price_lookup_udf.py's job).
 */
class PriceCatalogTest {
    private static final String SEP = "\u001f";
    private static final long JAN_2025 = 1_735_689_600_000L;
    private static final long JUL_2025 = 1_751_328_000_000L;

    /** One price line: origin, provider, model, names, match, from, to, min input tokens, tier, input and output price. */
    private static String price(String origin, String provider, String model, String names, String match, long fromMs,
                                String toMs, long minInput, String tier, String input, String output) {
        // nine price classes: input, cached, cache_creation, output, four media classes, audio seconds
        return String.join("\t", "price", origin, provider, model, names, match, Long.toString(fromMs), toMs,
                Long.toString(minInput), tier, input, "0", "0", output, "0", "0", "0", "0", "0");
    }

    private static PriceCatalog catalog(String... lines) {
        String text = String.join("\n", lines) + "\n";
        return PriceCatalog.decode(Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8)));
    }

    private static final PriceCatalog CATALOG = catalog(
            "alias\tazure.openai\topenai",
            // a price change on 1 July 2025: the old entry ends where the new one starts
            price("catalog", "openai", "gpt-4o", "gpt-4o" + SEP + "GPT-4o-latest", "S7:gpt-4o-", 0, Long.toString(JUL_2025),
                    0, "standard", "0.0000025", "0.00001"),
            price("catalog", "openai", "gpt-4o", "gpt-4o", "-", JUL_2025, "-", 0, "standard", "0.000002", "0.000008"),
            price("catalog", "openai", "gpt-4o", "gpt-4o", "-", 0, "-", 0, "priority", "0.000005", "0.00002"),
            // a long-context tier: applies from 200k input tokens
            price("catalog", "google", "gemini-2.5-pro", "gemini-2.5-pro", "-", 0, "-", 0, "standard", "0.00000125", "0.00001"),
            price("catalog", "google", "gemini-2.5-pro", "gemini-2.5-pro", "-", 0, "-", 200_000, "standard", "0.0000025", "0.000015"),
            // a negotiated local price for o3, any dated snapshot (a regex), standard tier only
            price("catalog", "openai", "o3", "o3", "S3:o3-", 0, "-", 0, "standard", "0.000002", "0.000008"),
            price("catalog", "openai", "o3", "o3", "-", 0, "-", 0, "flex", "0.000001", "0.000004"),
            price("local", "openai", "o3", "o3-2025-04-16", "R13:^o3-\\d{4}-.*$", 0, "-", 0, "standard", "0.0000015", "0.000006"));

    private static BigDecimal input(PriceCatalog c, String provider, String model, long endMs, long inputTokens, String tier) {
        PriceCatalog.Entry e = c.priceAt(provider, model, endMs, inputTokens, tier);
        return e == null ? null : e.prices[PriceCatalog.classIndex("input")];
    }

    @Test
    void aDatedSnapshotFoldsToItsCatalogModelCaseInsensitively() {
        assertEquals("gpt-4o", CATALOG.resolve("openai", "gpt-4o-2024-08-06").catalogModel);
        assertEquals("gpt-4o", CATALOG.resolve("openai", "gpt-4o-LATEST").catalogModel);
        assertNull(CATALOG.resolve("openai", "gpt-5-nano-unknown").catalogModel);
        assertNull(CATALOG.priceAt("openai", "gpt-5-nano-unknown", JAN_2025, 10, "standard"));
    }

    @Test
    void thePriceInForceAtTheCallsEndIsUsedAndAnEndDateIsExclusive() {
        assertEquals(new BigDecimal("0.0000025"), input(CATALOG, "openai", "gpt-4o", JAN_2025, 10, "standard"));
        assertEquals(new BigDecimal("0.0000025"), input(CATALOG, "openai", "gpt-4o", JUL_2025 - 1, 10, "standard"));
        assertEquals(new BigDecimal("0.000002"), input(CATALOG, "openai", "gpt-4o", JUL_2025, 10, "standard"));
    }

    @Test
    void aServiceTierWithItsOwnPriceWinsAndAnUnknownTierPaysStandard() {
        assertEquals(new BigDecimal("0.000005"), input(CATALOG, "openai", "gpt-4o", JAN_2025, 10, "priority"));
        assertEquals(new BigDecimal("0.0000025"), input(CATALOG, "openai", "gpt-4o", JAN_2025, 10, "scale"));
    }

    @Test
    void theLongContextTierAppliesFromItsThreshold() {
        assertEquals(new BigDecimal("0.00000125"), input(CATALOG, "google", "gemini-2.5-pro", JAN_2025, 199_999, "standard"));
        assertEquals(new BigDecimal("0.0000025"), input(CATALOG, "google", "gemini-2.5-pro", JAN_2025, 200_000, "standard"));
    }

    @Test
    void aProviderAliasPricesAsItsTarget() {
        assertEquals(input(CATALOG, "openai", "gpt-4o", JAN_2025, 10, "standard"),
                input(CATALOG, "azure.openai", "gpt-4o", JAN_2025, 10, "standard"));
        assertNull(input(CATALOG, "anthropic", "gpt-4o", JAN_2025, 10, "standard"));
    }

    @Test
    void aLocalEntryReplacesTheCatalogsEntriesOfItsTierOnly() {
        assertEquals(new BigDecimal("0.0000015"), input(CATALOG, "openai", "o3-2025-04-16", JAN_2025, 10, "standard"));
        assertEquals(new BigDecimal("0.0000015"), input(CATALOG, "openai", "o3-2025-06-10", JAN_2025, 10, "standard"));
        assertEquals(new BigDecimal("0.000001"), input(CATALOG, "openai", "o3-2025-04-16", JAN_2025, 10, "flex"));
        // the bare name does not fit the local regex: the catalog's standard price stays
        assertEquals(new BigDecimal("0.000002"), input(CATALOG, "openai", "o3", JAN_2025, 10, "standard"));
    }

    @Test
    void composedMatchRules() {
        PriceCatalog.Match anyOf = PriceCatalog.Match.parse("O2:E3:abcS2:zz");
        assertTrue(anyOf.matches("abc") && anyOf.matches("zzz") && !anyOf.matches("abcd"));
        PriceCatalog.Match allOf = PriceCatalog.Match.parse("A2:S6:claudeC6:sonnet");
        assertTrue(allOf.matches("claude-3-7-sonnet") && !allOf.matches("claude-3-opus") && !allOf.matches("my-sonnet"));
        PriceCatalog.Match endsWith = PriceCatalog.Match.parse("N5:-mini");
        assertTrue(endsWith.matches("gpt-4o-mini") && !endsWith.matches("gpt-4o-mini-tts"));
    }

    @Test
    void aMalformedCatalogIsRefusedWithTheLine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> catalog("price\topenai\tgpt-4o"));
        assertTrue(e.getMessage().contains("3 fields"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PriceCatalog.Match.parse("E3:abcX"));
        assertThrows(IllegalArgumentException.class, () -> PriceCatalog.classIndex("video"));
    }
}
