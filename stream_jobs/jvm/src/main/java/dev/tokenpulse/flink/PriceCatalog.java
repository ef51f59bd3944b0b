package dev.tokenpulse.flink;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The price catalog in the JVM, resolving a reported (provider, model) exactly as
 * schemas/pricing.py's PriceTable does:
 * <ol>
 *   <li>the catalog model (canonical name): the first catalog entry whose names or match rule fit
 *       the lower-cased model, else the first local entry that fits;
 *   <li>the candidates: the local entries that fit, plus the catalog's entries of the canonical
 *       model for every service tier no fitting local entry covers, most specific first
 *       (tier-specific entries, then higher context tiers; a stable sort, as Python's sorted).
 * </ol>
 * Resolutions are memoized per (provider, model): a job sees few distinct models.
 *
 * <p>The catalog arrives as the job parameter {@code tokenpulse.prices}: base64 of lines written by
 * stream_jobs/price_lookup.py: {@code alias<TAB>provider<TAB>target} and {@code price<TAB>origin<TAB>
 * provider<TAB>model<TAB>names (\u001f-separated)<TAB>match|-<TAB>from_ms<TAB>to_ms|-<TAB>
 * min_input_tokens<TAB>service_tier<TAB>nine prices}. A match rule is length-prefixed: {@code E3:abc}
 * equals, {@code S} starts with, {@code N} ends with, {@code C} contains, {@code R} regex, {@code O2:...}
 * any of two rules, {@code A2:...} all of them.
 */
final class PriceCatalog {
    static final String PARAMETER = "tokenpulse.prices";
    /** Price classes in the order of a catalog line's price fields (price_lookup.CLASSES). */
    static final String[] CLASSES = {"input", "cached", "cache_creation", "output", "input_audio", "output_audio",
            "input_image", "output_image", "input_audio_second"};
    private static final int FIXED_FIELDS = 10;
    private static final int MEMO_LIMIT = 100_000;

    static final class Entry {
        final boolean local;
        final String provider;
        final String model;
        final Set<String> names;
        final Match match;
        final long fromMs;
        final long toMs; // Long.MAX_VALUE: open-ended
        final long minInputTokens;
        final String serviceTier;
        final BigDecimal[] prices; // in CLASSES order

        Entry(String[] f) {
            local = f[1].equals("local");
            provider = f[2];
            model = f[3];
            names = new HashSet<>();
            for (String n : f[4].split("\u001f")) {
                names.add(n.toLowerCase(Locale.ROOT));
            }
            match = f[5].equals("-") ? null : Match.parse(f[5]);
            fromMs = Long.parseLong(f[6]);
            toMs = f[7].equals("-") ? Long.MAX_VALUE : Long.parseLong(f[7]);
            minInputTokens = Long.parseLong(f[8]);
            serviceTier = f[9];
            prices = new BigDecimal[CLASSES.length];
            for (int i = 0; i < CLASSES.length; i++) {
                prices[i] = new BigDecimal(f[FIXED_FIELDS + i]);
            }
        }

        boolean fits(String lowerModel) {
            return names.contains(lowerModel) || (match != null && match.matches(lowerModel));
        }

        boolean applies(long endMs, long inputTokens, String tier) {
            return fromMs <= endMs && endMs < toMs && minInputTokens <= inputTokens
                    && (serviceTier.equals("standard") || serviceTier.equals(tier));
        }
    }

    static final class Resolution {
        final String catalogModel; // null: unpriced
        final List<Entry> candidates;

        Resolution(String catalogModel, List<Entry> candidates) {
            this.catalogModel = catalogModel;
            this.candidates = candidates;
        }
    }

    private final Map<String, String> aliases = new HashMap<>();
    private final Map<String, List<Entry>> byProvider = new HashMap<>();
    private final Map<String, Resolution> memo = new LinkedHashMap<>();

    static PriceCatalog decode(String encoded) {
        PriceCatalog catalog = new PriceCatalog();
        String text = new String(Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
        for (String line : text.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            if (f[0].equals("alias") && f.length == 3) {
                catalog.aliases.put(f[1], f[2]);
            } else if (f[0].equals("price") && f.length == FIXED_FIELDS + CLASSES.length) {
                Entry e = new Entry(f);
                catalog.byProvider.computeIfAbsent(e.provider, k -> new ArrayList<>()).add(e);
            } else {
                throw new IllegalArgumentException("bad price catalog line (" + f.length + " fields): " + line);
            }
        }
        return catalog;
    }

    Resolution resolve(String provider, String model) {
        String key = provider + '\u0000' + model;
        Resolution r = memo.get(key);
        if (r == null) {
            r = compute(aliases.getOrDefault(provider, provider), model.toLowerCase(Locale.ROOT));
            if (memo.size() >= MEMO_LIMIT) {
                memo.clear(); // an open set of model names: bound the memo, keep it simple
            }
            memo.put(key, r);
        }
        return r;
    }

    private Resolution compute(String provider, String lower) {
        List<Entry> entries = byProvider.getOrDefault(provider, Collections.emptyList());
        List<Entry> local = new ArrayList<>();
        String canonical = null;
        for (Entry e : entries) {
            if (e.local && e.fits(lower)) {
                local.add(e);
            } else if (!e.local && canonical == null && e.fits(lower)) {
                canonical = e.model;
            }
        }
        Set<String> covered = new HashSet<>();
        for (Entry e : local) {
            covered.add(e.serviceTier);
        }
        List<Entry> candidates = new ArrayList<>(local);
        if (canonical != null) {
            for (Entry e : entries) {
                if (!e.local && e.model.equals(canonical) && !covered.contains(e.serviceTier)) {
                    candidates.add(e);
                }
            }
        } else if (!local.isEmpty()) {
            canonical = local.get(0).model;
        }
        // price_order: tier-specific first, then the higher context tier (stable, like sorted()).
        candidates.sort(Comparator.<Entry, Boolean>comparing(e -> e.serviceTier.equals("standard"))
                .thenComparing(e -> -e.minInputTokens));
        return new Resolution(canonical, candidates);
    }

    /** The entry in force for a call, or null (unpriced). */
    Entry priceAt(String provider, String model, long endMs, long inputTokens, String tier) {
        for (Entry e : resolve(provider, model).candidates) {
            if (e.applies(endMs, inputTokens, tier)) {
                return e;
            }
        }
        return null;
    }

    static int classIndex(String priceClass) {
        for (int i = 0; i < CLASSES.length; i++) {
            if (CLASSES[i].equals(priceClass)) {
                return i;
            }
        }
        throw new IllegalArgumentException("unknown price class " + priceClass);
    }

    /** A model match rule (schemas/pricing.py ModelMatch). */
    abstract static class Match {
        abstract boolean matches(String lower);

        static Match parse(String text) {
            int[] pos = {0};
            Match m = read(text, pos);
            if (pos[0] != text.length()) {
                throw new IllegalArgumentException("trailing text in match rule: " + text);
            }
            return m;
        }

        private static Match read(String s, int[] pos) {
            char kind = s.charAt(pos[0]);
            int colon = s.indexOf(':', pos[0]);
            int n = Integer.parseInt(s.substring(pos[0] + 1, colon));
            pos[0] = colon + 1;
            if (kind == 'O' || kind == 'A') {
                List<Match> parts = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    parts.add(read(s, pos));
                }
                return kind == 'O' ? new Match() {
                    boolean matches(String lower) {
                        for (Match p : parts) {
                            if (p.matches(lower)) {
                                return true;
                            }
                        }
                        return false;
                    }
                } : new Match() {
                    boolean matches(String lower) {
                        for (Match p : parts) {
                            if (!p.matches(lower)) {
                                return false;
                            }
                        }
                        return true;
                    }
                };
            }
            String value = s.substring(pos[0], pos[0] + n);
            pos[0] += n;
            switch (kind) {
                case 'E':
                    return new Match() { boolean matches(String lower) { return lower.equals(value); } };
                case 'S':
                    return new Match() { boolean matches(String lower) { return lower.startsWith(value); } };
                case 'N':
                    return new Match() { boolean matches(String lower) { return lower.endsWith(value); } };
                case 'C':
                    return new Match() { boolean matches(String lower) { return lower.contains(value); } };
                case 'R':
                    Pattern p = Pattern.compile(value);
                    return new Match() { boolean matches(String lower) { return p.matcher(lower).find(); } };
                default:
                    throw new IllegalArgumentException("unknown match rule kind " + kind);
            }
        }
    }
}
