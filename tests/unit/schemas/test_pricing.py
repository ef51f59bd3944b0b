from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tokenpulse.schemas.pricing import ModelPrice, PriceTable, call_cost_usd, load_price_table

SONNET = ModelPrice(provider="anthropic", model="claude-sonnet-4", input_usd_per_mtok=Decimal("3"),
                    cached_input_usd_per_mtok=Decimal("0.30"), cache_creation_input_usd_per_mtok=Decimal("3.75"),
                    output_usd_per_mtok=Decimal("15"), effective_from=date(2025, 5, 22), source="https://example.test/prices")


def test_hand_computed_cost_for_every_token_class():
    # 12000 input of which 8000 cache reads and 1000 cache writes; 900 output of which 300 reasoning.
    cost = call_cost_usd(SONNET, input_tokens=12000, cached_input_tokens=8000,
                         cache_creation_input_tokens=1000, output_tokens=900)
    # 3000 * 3/1e6 + 8000 * 0.30/1e6 + 1000 * 3.75/1e6 + 900 * 15/1e6
    assert cost == Decimal("0.009") + Decimal("0.0024") + Decimal("0.00375") + Decimal("0.0135")
    assert cost == Decimal("0.02865")


def test_missing_cache_prices_fall_back_to_the_input_price():
    p = SONNET.model_copy(update={"cached_input_usd_per_mtok": None, "cache_creation_input_usd_per_mtok": None})
    assert call_cost_usd(p, input_tokens=10, cached_input_tokens=4, cache_creation_input_tokens=6,
                         output_tokens=0) == Decimal("0.00003")


def test_prices_with_more_than_six_decimals_are_refused():
    with pytest.raises(ValidationError, match="decimal places"):
        SONNET.model_copy(update={}).model_validate({**SONNET.model_dump(), "input_usd_per_mtok": "0.0000001"})


def test_overlapping_periods_are_refused():
    later = {**SONNET.model_dump(), "effective_from": date(2025, 6, 1)}
    with pytest.raises(ValidationError, match="overlap"):
        PriceTable(currency="USD", prices=[SONNET.model_dump(), later])


def test_price_in_force_follows_the_effective_dates():
    old = {**SONNET.model_dump(), "effective_to": date(2025, 7, 1)}
    new = {**SONNET.model_dump(), "effective_from": date(2025, 7, 1), "input_usd_per_mtok": "2"}
    table = PriceTable(currency="USD", prices=[old, new])
    june = 1751000000000  # 2025-06-27
    july = 1752000000000  # 2025-07-08
    assert table.price_at("anthropic", "claude-sonnet-4", june).input_usd_per_mtok == Decimal("3")
    assert table.price_at("anthropic", "claude-sonnet-4", july).input_usd_per_mtok == Decimal("2")
    assert table.price_at("anthropic", "claude-sonnet-4", 1700000000000) is None  # before any price
    assert table.price_at("anthropic", "unknown-model", july) is None


def test_shipped_price_table_is_valid_and_sourced():
    table = load_price_table()
    assert table.prices
    assert all(p.source and p.effective_from for p in table.prices)


calls = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**5)), max_size=50)


@given(calls)
def test_cost_is_exact_and_additive(rows):
    """Summing per-call costs equals pricing the summed tokens: no rounding anywhere."""
    total = Decimal(0)
    for uncached, cached, output in rows:
        total += call_cost_usd(SONNET, input_tokens=uncached + cached, cached_input_tokens=cached,
                               cache_creation_input_tokens=0, output_tokens=output)
    u = sum(r[0] for r in rows)
    c = sum(r[1] for r in rows)
    o = sum(r[2] for r in rows)
    assert total == call_cost_usd(SONNET, input_tokens=u + c, cached_input_tokens=c,
                                  cache_creation_input_tokens=0, output_tokens=o)
    assert total.as_tuple().exponent >= -12


def test_context_tiers_pick_the_highest_threshold_reached():
    table = load_price_table()
    at = 1760000000000  # 2025-10-09
    small = table.price_at("gcp.gemini", "gemini-2.5-pro", at, input_tokens=200_000)
    large = table.price_at("gcp.gemini", "gemini-2.5-pro", at, input_tokens=200_001)
    assert (small.input_usd_per_mtok, large.input_usd_per_mtok) == (Decimal("1.25"), Decimal("2.50"))
    # 250k-token prompt, 1k output: the whole call at the >200k rates
    assert call_cost_usd(large, input_tokens=250_000, cached_input_tokens=0, cache_creation_input_tokens=0,
                         output_tokens=1000) == Decimal("0.625") + Decimal("0.015")


def test_a_price_change_can_take_effect_mid_day():
    old = {**SONNET.model_dump(), "effective_to": "2025-07-01T12:00:30Z"}
    new = {**SONNET.model_dump(), "effective_from": "2025-07-01T12:00:30Z", "output_usd_per_mtok": "12"}
    table = PriceTable(currency="USD", prices=[old, new])
    change_ms = 1751371230000  # 2025-07-01T12:00:30Z
    assert table.price_at("anthropic", "claude-sonnet-4", change_ms - 1).output_usd_per_mtok == Decimal("15")
    assert table.price_at("anthropic", "claude-sonnet-4", change_ms).output_usd_per_mtok == Decimal("12")


def test_o3_price_cut_is_versioned():
    table = load_price_table()
    before = table.price_at("openai", "o3", 1749400000000)  # 2025-06-08
    after = table.price_at("openai", "o3-2025-04-16", 1749700000000)  # 2025-06-12
    assert (before.output_usd_per_mtok, after.output_usd_per_mtok) == (Decimal("40.00"), Decimal("8.00"))


def test_batch_calls_use_batch_prices_and_unknown_tiers_fall_back_to_standard():
    table = load_price_table()
    at = 1760000000000
    batch = table.price_at("openai", "gpt-4o", at, service_tier="batch")
    flex = table.price_at("openai", "gpt-4o", at, service_tier="flex")
    assert (batch.service_tier, batch.input_usd_per_mtok) == ("batch", Decimal("1.25"))
    assert (flex.service_tier, flex.input_usd_per_mtok) == ("standard", Decimal("2.50"))


def test_a_catalog_too_large_for_the_stream_is_refused_with_advice():
    from tokenpulse.core.pricing_sql import MAX_STREAM_PRICE_ENTRIES, CatalogTooLarge, check_stream_catalog_size

    big = PriceTable(currency="USD", prices=[{**SONNET.model_dump(), "model": f"m{i}"}
                                             for i in range(MAX_STREAM_PRICE_ENTRIES + 1)])
    with pytest.raises(CatalogTooLarge, match="prices-import-litellm"):
        check_stream_catalog_size(big)
    check_stream_catalog_size(load_price_table(catalog=None))  # the shipped local file alone fits
    # the comprehensive catalog is priced by the Java lookup
    from tokenpulse.core.pricing_sql import needs_lookup
    assert needs_lookup(load_price_table()) and not needs_lookup(load_price_table(catalog=None))
