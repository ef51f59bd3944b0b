package dev.tokenpulse.flink.loops;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * Python's number formatting, so alert texts read the same as the Python reference's.
 * Python rounds the exact binary value of a float, ties to even ({@code f"{x:.1f}"},
 * {@code round(x)}); Java's {@code String.format} rounds half-up, so 0.25 would read 0.3
 * here and 0.2 there. {@code new BigDecimal(double)} is that exact binary value.
 */
final class Py {
    private Py() {}

    /** f"{x:.Nf}" */
    static String fixed(double x, int digits) {
        String plain = new BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
        // Python keeps the sign of a negative number that rounds to zero ("-0"); BigDecimal has no -0
        boolean negative = x < 0 || (x == 0 && 1 / x < 0);
        return negative && !plain.startsWith("-") ? "-" + plain : plain;
    }

    /** f"{d:.Nf}" for a Decimal (Python's decimal context also rounds half-even). */
    static String fixed(BigDecimal d, int digits) {
        return d.setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
    }

    /** f"{n:,}" */
    static String grouped(long n) {
        return group(Long.toString(n));
    }

    /** f"{x:,.Nf}" */
    static String groupedFixed(double x, int digits) {
        return group(fixed(x, digits));
    }

    /** round(x): the nearest integer, ties to even. */
    static long round(double x) {
        return new BigDecimal(x).setScale(0, RoundingMode.HALF_EVEN).longValueExact();
    }

    /** round(x, N) */
    static double round(double x, int digits) {
        return new BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).doubleValue();
    }

    private static String group(String plain) {
        int sign = plain.startsWith("-") ? 1 : 0;
        int dot = plain.indexOf('.');
        int intEnd = dot < 0 ? plain.length() : dot;
        StringBuilder out = new StringBuilder(plain.substring(0, sign));
        for (int i = sign; i < intEnd; i++) {
            if (i > sign && (intEnd - i) % 3 == 0) {
                out.append(',');
            }
            out.append(plain.charAt(i));
        }
        return out.append(plain.substring(intEnd)).toString();
    }
}
