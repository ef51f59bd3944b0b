package dev.tokenpulse.flink.loops;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.math.BigDecimal;

import org.junit.jupiter.api.Test;

/** Python's number formatting; every expected value was printed by CPython 3.11 from the expression named. */
class PyTest {
    @Test
    void fixedRoundsTheBinaryValueHalfEven() {
        assertEquals("0.2", Py.fixed(0.25, 1)); // f"{0.25:.1f}"
        assertEquals("0.3", Py.fixed(0.35, 1)); // 0.35 is 0.34999... in binary
        assertEquals("2", Py.fixed(2.5, 0));
        assertEquals("-0", Py.fixed(-0.01, 0)); // Python keeps the sign
        assertEquals("1234567.9", Py.fixed(1234567.891, 1));
    }

    @Test
    void decimalsRoundHalfEven() {
        assertEquals("0.000012", Py.fixed(new BigDecimal("0.0000125"), 6));
        assertEquals("0.000014", Py.fixed(new BigDecimal("0.0000135"), 6));
    }

    @Test
    void groupedThousands() {
        assertEquals("-1,234,567", Py.grouped(-1_234_567));
        assertEquals("999", Py.grouped(999));
        assertEquals("1,234,568", Py.groupedFixed(1234567.891, 0));
    }

    @Test
    void roundIsBankers() {
        assertEquals(2, Py.round(2.5));
        assertEquals(0, Py.round(0.5));
        assertEquals(1234568, Py.round(1234567.891));
        assertEquals(0.1, Py.round(0.05, 1), 0.0); // round(0.05, 1): 0.05 is 0.05000000000000000277 in binary
    }
}
