"""Import prices from LiteLLM's `model_prices_and_context_window.json` format.

LiteLLM keeps a well-maintained table of per-token prices. This turns such a file (a copy
the user downloaded; nothing is fetched here) into tokenpulse price entries with the
effective date and source the user states, so prices can be refreshed without code.

LiteLLM gives USD per token as JSON floats; each is read through its shortest decimal
representation (`repr`), converted to USD per million tokens and must then have at most 6
decimal places. Entries that cannot be represented exactly are reported, not rounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from .pricing import MAX_PRICE_DECIMALS, ModelPrice, PriceTable

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
        if spec.get("mode", "chat") not in PRICED_MODES:
            skipped.append((key, f"mode {spec.get('mode')!r} is not token-priced"))
            continue
        model = key.split("/", 1)[1] if "/" in key else key
        if (provider, model) in seen:
            skipped.append((key, f"duplicate of {provider}/{model}"))
            continue
        try:
            entries.append(ModelPrice(
                provider=provider, model=model,
                input_usd_per_mtok=_per_mtok(spec.get("input_cost_per_token")),
                cached_input_usd_per_mtok=_per_mtok(spec.get("cache_read_input_token_cost")),
                cache_creation_input_usd_per_mtok=_per_mtok(spec.get("cache_creation_input_token_cost")),
                output_usd_per_mtok=_per_mtok(spec.get("output_cost_per_token", 0)),
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
