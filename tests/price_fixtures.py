"""Price tables for tests of pricing mechanics (the generated CASE, tiers, history, batch).

The shipped table is the genai-prices catalog under a small local file; the CASE engine and
its tests use a hand-written local table alone: the catalog-sized table is priced by the
Java lookup (tests/integration/test_price_lookup_udf.py)."""

from pathlib import Path

from tokenpulse.schemas.pricing import PriceTable, load_price_table

HANDWRITTEN_PRICES = Path(__file__).parent / "fixtures" / "prices.handwritten.yaml"


def handwritten_prices() -> PriceTable:
    return load_price_table(HANDWRITTEN_PRICES, catalog=None)
