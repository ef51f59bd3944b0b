"""Import prices from LiteLLM's `model_prices_and_context_window.json` format.

LiteLLM keeps a well-maintained table of per-token prices. This turns such a file (a copy
the user downloaded; nothing is fetched here) into tokenpulse price entries with the
effective date and source the user states, so prices can be refreshed without code.

LiteLLM gives USD per token as JSON floats; each is read through its shortest decimal
representation (`repr`), converted to USD per million tokens and must then have at most 6
decimal places. Entries that cannot be represented exactly are reported, not rounded.

Audio and images (issue #5): `input_cost_per_audio_token` / `output_cost_per_audio_token`
become the audio-token rates, `input_cost_per_image` / `output_cost_per_image` per-image
prices and `input_cost_per_second` the per-second price of input audio (transcription).
Image-generation and transcription entries are imported when they carry such a unit price;
per-pixel prices (`input_cost_per_pixel`) and other units are reported, not guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from .pricing import MAX_PRICE_DECIMALS, MAX_UNIT_PRICE_DECIMALS, ModelPrice, PriceTable

# LiteLLM provider names -> OTel gen_ai.provider.name values.
PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic",
    "azure": "azure.ai.openai", "azure_ai": "azure.ai.inference", "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock", "vertex_ai-language-models": "gcp.vertex_ai",
    "vertex_ai-anthropic_models": "gcp.vertex_ai", "gemini": "gcp.gemini", "mistral": "mistral_ai",
    "deepseek": "deepseek", "groq": "groq", "cohere_chat": "cohere", "cohere": "cohere",
    "xai": "x_ai", "perplexity": "perplexity", "ollama": "ollama",
}
PRICED_MODES = {"chat", "completion", "responses", "embedding"}
# Modes priced per unit: imported when the entry has that unit's price.
UNIT_PRICED_MODES = {"image_generation": "output_cost_per_image", "audio_transcription": "input_cost_per_second"}


@dataclass
class ImportResult:
    table: PriceTable
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (model key, reason)


def _per_mtok(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"price {value!r} is not a number")
    per_token = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    result = (per_token * 1_000_000).normalize()
    if result.as_tuple().exponent < -MAX_PRICE_DECIMALS:
        raise ValueError(f"{per_token} USD/token is not exact at {MAX_PRICE_DECIMALS} decimals per million tokens")
    return result


def _per_unit(value) -> Decimal | None:
    """USD per image or per second, as given (exact at the cost's scale, 12 decimals)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"price {value!r} is not a number")
    result = (Decimal(repr(value)) if isinstance(value, float) else Decimal(value)).normalize()
    if result.as_tuple().exponent < -MAX_UNIT_PRICE_DECIMALS:
        raise ValueError(f"{result} USD/unit is not exact at {MAX_UNIT_PRICE_DECIMALS} decimals")
    return result


def _priced_mode(spec: dict) -> bool:
    mode = spec.get("mode", "chat")
    return mode in PRICED_MODES or (mode in UNIT_PRICED_MODES and spec.get(UNIT_PRICED_MODES[mode]) is not None)


def convert(doc: dict, *, effective_from: date, source: str, providers: set[str] | None = None) -> ImportResult:
    entries, skipped = [], []
    seen: set[tuple[str, str]] = set()
    for key, spec in sorted(doc.items()):
        if key == "sample_spec" or not isinstance(spec, dict):
            continue
        provider = PROVIDERS.get(str(spec.get("litellm_provider", "")))
        if provider is None:
            skipped.append((key, f"unknown provider {spec.get('litellm_provider')!r}"))
            continue
        if providers and provider not in providers:
            continue
        if not _priced_mode(spec):
            skipped.append((key, f"mode {spec.get('mode')!r} is not token-priced and has no per-image / per-second "
                                 "price (per-pixel prices are not supported)"))
            continue
        model = key.split("/", 1)[1] if "/" in key else key
        if (provider, model) in seen:
            skipped.append((key, f"duplicate of {provider}/{model}"))
            continue
        try:
            entries.append(ModelPrice(
                provider=provider, model=model,
                # a unit-priced model (image generation, transcription) may list no token price: 0
                input_usd_per_mtok=_per_mtok(spec.get("input_cost_per_token",
                                                      0 if spec.get("mode") in UNIT_PRICED_MODES else None)),
                cached_input_usd_per_mtok=_per_mtok(spec.get("cache_read_input_token_cost")),
                cache_creation_input_usd_per_mtok=_per_mtok(spec.get("cache_creation_input_token_cost")),
                output_usd_per_mtok=_per_mtok(spec.get("output_cost_per_token", 0)),
                input_audio_usd_per_mtok=_per_mtok(spec.get("input_cost_per_audio_token")),
                output_audio_usd_per_mtok=_per_mtok(spec.get("output_cost_per_audio_token")),
                input_image_usd=_per_unit(spec.get("input_cost_per_image")),
                output_image_usd=_per_unit(spec.get("output_cost_per_image")),
                input_audio_usd_per_second=_per_unit(spec.get("input_cost_per_second")),
                effective_from=effective_from, source=source,
                note=f"imported from LiteLLM key {key}",
            ))
            seen.add((provider, model))
        except (ValidationError, ValueError) as exc:
            skipped.append((key, str(exc).splitlines()[0] if isinstance(exc, ValueError) else str(exc)))
    return ImportResult(PriceTable(currency="USD", prices=tuple(entries)), skipped)


def to_yaml(table: PriceTable) -> str:
    import yaml

    doc = {"currency": table.currency, "prices": [
        {k: (str(v) if isinstance(v, (Decimal, date)) else v) for k, v in p.model_dump(exclude_defaults=True).items()}
        for p in table.prices]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def import_file(path: Path, **kwargs) -> ImportResult:
    return convert(json.loads(Path(path).read_text()), **kwargs)
