"""Audio tokens, images and seconds of audio (issue #5): catalog validation, the reference
pricer by hand, the span model's subset rules and the collector's attribute mapping."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.core.genai_mapping import Rejection, map_span
from tokenpulse.core.otlp_decode import OtlpSpan
from tokenpulse.schemas.events import TokenSpan
from tokenpulse.schemas.pricing import ModelPrice, call_cost_usd, load_price_table

AT = 1760000000000  # 2025-10-09
AUDIO = ModelPrice(provider="openai", model="audio-model", input_usd_per_mtok=Decimal("2.50"),
                   cached_input_usd_per_mtok=Decimal("1.25"), output_usd_per_mtok=Decimal("10"),
                   input_audio_usd_per_mtok=Decimal("40"), output_audio_usd_per_mtok=Decimal("80"),
                   input_image_usd=Decimal("0.0025"), output_image_usd=Decimal("0.04"),
                   input_audio_usd_per_second=Decimal("0.0001"), effective_from=date(2025, 1, 1),
                   source="https://example.test/prices")


def test_hand_computed_cost_with_audio_tokens_images_and_seconds():
    # 10,000 input: 2,000 cache reads, 6,000 audio, so 2,000 text; 1,500 output: 1,000 audio, 500 text;
    # 3 images read, 2 generated, 90 s of audio.
    cost = call_cost_usd(AUDIO, input_tokens=10_000, cached_input_tokens=2_000, cache_creation_input_tokens=0,
                         output_tokens=1_500, input_audio_tokens=6_000, output_audio_tokens=1_000,
                         input_images=3, output_images=2, input_audio_seconds=90)
    expected = (Decimal("2000") * Decimal("2.50") / 10**6      # text input   0.005
                + Decimal("2000") * Decimal("1.25") / 10**6    # cache reads  0.0025
                + Decimal("6000") * Decimal("40") / 10**6      # audio input  0.24
                + Decimal("500") * Decimal("10") / 10**6       # text output  0.005
                + Decimal("1000") * Decimal("80") / 10**6      # audio output 0.08
                + 3 * Decimal("0.0025") + 2 * Decimal("0.04")  # images       0.0075 + 0.08
                + 90 * Decimal("0.0001"))                      # audio time   0.009
    assert cost == expected == Decimal("0.429")


def test_audio_rates_default_to_the_text_rates_and_units_to_zero():
    plain = AUDIO.model_copy(update={"input_audio_usd_per_mtok": None, "output_audio_usd_per_mtok": None,
                                     "input_image_usd": None, "output_image_usd": None,
                                     "input_audio_usd_per_second": None})
    with_media = call_cost_usd(plain, input_tokens=1000, cached_input_tokens=0, cache_creation_input_tokens=0,
                               output_tokens=100, input_audio_tokens=600, output_audio_tokens=50, input_images=4,
                               output_images=1, input_audio_seconds=30)
    text_only = call_cost_usd(plain, input_tokens=1000, cached_input_tokens=0, cache_creation_input_tokens=0,
                              output_tokens=100)
    assert with_media == text_only == Decimal("0.0035")  # 1000 * 2.5e-6 + 100 * 1e-5: nothing counted twice


def test_shipped_audio_transcription_and_image_prices():
    table = load_price_table()
    audio = table.price_at("openai", "gpt-4o-audio-preview-2024-12-17", AT)
    whisper = table.price_at("openai", "whisper-1", AT)
    imagen = table.price_at("gcp.gemini", "imagen-4.0-generate-001", AT)
    # 1,200 prompt tokens of which 1,000 audio; 300 completion tokens of which 200 audio
    assert call_cost_usd(audio, input_tokens=1200, cached_input_tokens=0, cache_creation_input_tokens=0,
                         output_tokens=300, input_audio_tokens=1000, output_audio_tokens=200) == \
        Decimal("0.0005") + Decimal("0.04") + Decimal("0.001") + Decimal("0.016")
    # a 12 min 34 s recording at USD 0.006 / minute
    assert call_cost_usd(whisper, input_tokens=0, cached_input_tokens=0, cache_creation_input_tokens=0,
                         output_tokens=0, input_audio_seconds=754) == Decimal("0.0754")
    assert call_cost_usd(imagen, input_tokens=25, cached_input_tokens=0, cache_creation_input_tokens=0,
                         output_tokens=0, output_images=4) == Decimal("0.16")
    assert all(p.source.startswith("https://") for p in (audio, whisper, imagen))


@pytest.mark.parametrize("field, value, message", [
    ("input_audio_usd_per_mtok", "40.0000001", "decimal places per million tokens"),
    ("output_image_usd", "0.0000000000001", "decimal places per unit"),
    ("input_audio_usd_per_second", "-1", "greater than or equal to 0"),
    ("output_image_usd", "1000000", "less than or equal to"),
])
def test_bad_media_prices_are_refused(field, value, message):
    with pytest.raises(ValidationError, match=message):
        ModelPrice.model_validate({**AUDIO.model_dump(), field: value})


counts = st.lists(st.tuples(st.integers(0, 10**5), st.integers(0, 10**5), st.integers(0, 10**5), st.integers(0, 10**4),
                            st.integers(0, 50), st.integers(0, 3600)), max_size=40)


@given(counts)
def test_media_cost_is_exact_and_additive(rows):
    """Per-call costs sum to the cost of the summed usage (no rounding), and moving a token
    from text to audio changes the cost by exactly the rate difference."""
    def cost(text_in, audio_in, text_out, audio_out, images, secs):
        return call_cost_usd(AUDIO, input_tokens=text_in + audio_in, cached_input_tokens=0,
                             cache_creation_input_tokens=0, output_tokens=text_out + audio_out,
                             input_audio_tokens=audio_in, output_audio_tokens=audio_out, output_images=images,
                             input_audio_seconds=secs)

    total = sum((cost(*r) for r in rows), Decimal(0))
    assert total == cost(*(sum(col) for col in zip(*rows))) if rows else total == 0
    assert total.as_tuple().exponent >= -12
    for r in rows[:3]:
        if r[0]:
            moved = cost(r[0] - 1, r[1] + 1, *r[2:])
            assert moved - cost(*r) == (AUDIO.input_audio_per_token - AUDIO.input_per_token)


def span(**overrides) -> dict:
    base = dict(tenant="acme", service="app", team="t", trace_id="a" * 32, span_id="b" * 16, operation="chat",
                provider="openai", model="gpt-4o", runtime_kind="cloud", runtime_id="openai", start_ms=1000,
                end_ms=2000, received_ms=2100, input_tokens=100, output_tokens=10)
    return {**base, **overrides}


@pytest.mark.parametrize("overrides, message", [
    ({"input_audio_tokens": 101}, "input audio tokens"),
    ({"cached_input_tokens": 60, "input_audio_tokens": 41}, "uncached part"),
    ({"output_audio_tokens": 11}, "output audio tokens"),
    ({"output_images": -1}, "greater than or equal to 0"),
])
def test_audio_counts_must_be_subsets(overrides, message):
    with pytest.raises(ValidationError, match=message):
        TokenSpan(**span(**overrides))


def test_media_counts_default_to_zero_for_v1_writers():
    s = TokenSpan(**span())
    assert (s.input_audio_tokens, s.output_audio_tokens, s.input_images, s.output_images, s.input_audio_seconds) == \
        (0, 0, 0, 0, 0)


def otlp(attrs: dict) -> OtlpSpan:
    return OtlpSpan(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, name="chat", start_ns=10**18,
                    end_ns=10**18 + 10**9, status_code=0, attributes=attrs, resource={"service.name": "app"})


def test_collector_maps_the_tokenpulse_usage_attributes():
    event = map_span(otlp({**LLM_ATTRS, "tokenpulse.usage.input_audio_tokens": 600,
                           "tokenpulse.usage.output_audio_tokens": 150, "tokenpulse.usage.input_images": 2,
                           "tokenpulse.usage.output_images": 1, "tokenpulse.usage.input_audio_seconds": 42}),
                     tenant="t", received_ms=1)
    assert isinstance(event, TokenSpan)
    assert (event.input_audio_tokens, event.output_audio_tokens, event.input_images, event.output_images,
            event.input_audio_seconds) == (600, 150, 2, 1, 42)


@pytest.mark.parametrize("attrs, reason", [
    ({"tokenpulse.usage.input_audio_tokens": 1001}, "exceed input_tokens"),
    ({"tokenpulse.usage.output_audio_tokens": 201}, "exceed output_tokens"),
    ({"tokenpulse.usage.output_images": -2}, "is negative"),
    ({"tokenpulse.usage.input_audio_seconds": 1.5}, "whole number"),
    ({"tokenpulse.usage.input_images": "three"}, "whole number"),
])
def test_collector_rejects_bad_media_counts_with_a_reason(attrs, reason):
    result = map_span(otlp({**LLM_ATTRS, **attrs}), tenant="t", received_ms=1)
    assert isinstance(result, Rejection) and reason in result.reason


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("true", True), ("FALSE", False)])
def test_collector_reads_the_semantic_cache_flag(value, expected):
    event = map_span(otlp({**LLM_ATTRS, "tokenpulse.cache.semantic_hit": value}), tenant="t", received_ms=1)
    assert isinstance(event, TokenSpan) and event.semantic_cache_hit is expected


def test_a_non_boolean_semantic_cache_flag_is_rejected_with_a_reason():
    result = map_span(otlp({**LLM_ATTRS, "tokenpulse.cache.semantic_hit": 1}), tenant="t", received_ms=1)
    assert isinstance(result, Rejection) and "tokenpulse.cache.semantic_hit must be a boolean" in result.reason
