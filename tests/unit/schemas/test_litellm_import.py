from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import yaml

from tokenpulse.schemas.litellm_import import import_file, to_yaml
from tokenpulse.schemas.pricing import PriceTable

FIXTURE = Path(__file__).parents[2] / "fixtures" / "litellm_prices.json"


def test_litellm_prices_become_exact_sourced_entries():
    result = import_file(FIXTURE, effective_from=date(2026, 11, 1), source="LiteLLM table copy 2026-11-01")
    by_model = {p.model: p for p in result.table.prices}
    gpt = by_model["gpt-4o"]
    assert (gpt.provider, gpt.input_usd_per_mtok, gpt.cached_input_usd_per_mtok, gpt.output_usd_per_mtok) == (
        "openai", Decimal("2.5"), Decimal("1.25"), Decimal("10"))
    sonnet = by_model["claude-sonnet-4-20250514"]
    assert sonnet.cache_creation_input_usd_per_mtok == Decimal("3.75")
    assert sonnet.cached_input_usd_per_mtok == Decimal("0.3")
    assert by_model["text-embedding-3-small"].input_usd_per_mtok == Decimal("0.02")
    assert all(p.effective_from == datetime(2026, 11, 1, tzinfo=UTC) and p.source.startswith("LiteLLM") for p in result.table.prices)


def test_unusable_entries_are_reported_with_reasons_not_guessed():
    reasons = dict(import_file(FIXTURE, effective_from=date(2026, 11, 1), source="LiteLLM copy").skipped)
    assert "not token-priced" in reasons["dall-e-3"]
    assert "unknown provider" in reasons["mystery/model-x"]
    assert "not exact" in reasons["weird-precision"]
    assert "sample_spec" not in reasons


def test_yaml_output_loads_back_as_a_valid_price_table():
    table = import_file(FIXTURE, effective_from=date(2026, 11, 1), source="LiteLLM copy").table
    again = PriceTable.model_validate(yaml.safe_load(to_yaml(table)))
    assert again == table


def test_audio_token_image_and_second_prices_are_imported():
    result = import_file(FIXTURE, effective_from=date(2026, 11, 1), source="LiteLLM copy")
    by_model = {p.model: p for p in result.table.prices}
    audio = by_model["gpt-4o-audio-preview-2024-12-17"]
    assert (audio.input_audio_usd_per_mtok, audio.output_audio_usd_per_mtok) == (Decimal("40"), Decimal("80"))
    whisper = by_model["whisper-1"]  # transcription: per second of input audio, no token price
    assert (whisper.input_audio_usd_per_second, whisper.input_usd_per_mtok) == (Decimal("0.0001"), Decimal(0))
    imagen = by_model["imagen-4.0-generate-001"]
    assert (imagen.provider, imagen.output_image_usd) == ("gcp.gemini", Decimal("0.04"))
    assert by_model["gemini-1.0-pro-vision"].input_image_usd == Decimal("0.0025")
    assert "not token-priced" in dict(result.skipped)["tts-1"]  # per character: not a unit tokenpulse prices
