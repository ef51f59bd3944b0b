"""Build the comprehensive price catalog (prices.catalog.yaml) from the `genai-prices` package.

genai-prices (https://github.com/pydantic/genai-prices, MIT) is a maintained database of LLM
API prices with match rules per model and price history (prices that start on a date). This
module reads the installed package's data (nothing is fetched) and converts it into
tokenpulse catalog entries, each with a `source` (the package version and the provider's
pricing page) and an effective period:

  * a model's prices over time (genai-prices' conditional prices with a start date) become
    consecutive entries: each valid from its start date until the next one's; the first
    price has no start date in the source and applies to every earlier call (from FLOOR_DATE);
  * tiered prices ("all tokens at the tier rate once the prompt exceeds N tokens") become
    context-size tiers (min_input_tokens = N + 1);
  * price variants for a service tier (`service_tier: priority|flex|...`) and for batch
    processing (`processing: batch`) become service-tier entries ("batch" for the latter);
  * the model's match rule (equals / starts_with / ends_with / contains / regex, and their
    or/and combinations) becomes the entry's `match`, so dated snapshots fold to the model.

What tokenpulse cannot price from a span is reported, not guessed: per-request fees, web
searches, one-hour cache writes (priced as the default cache write), per-page documents,
video, image tokens, audio by the hour; time-of-day discounts (DeepSeek off-peak) are left
out (such calls are priced at the standard rate). Prices with more than 6 decimals per
million tokens are skipped with a reason, never rounded.

Refresh:  pip install -U genai-prices && tokenpulse prices-import-genai-prices
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pydantic import ValidationError

from .pricing import MAX_PRICE_DECIMALS, ModelMatch, ModelPrice, PriceTable

# genai-prices provider ids -> gen_ai.provider.name (OTel semconv values where there is one).
PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "google": "gcp.gemini", "mistral": "mistral_ai",
    "deepseek": "deepseek", "x-ai": "x_ai", "groq": "groq", "cohere": "cohere", "perplexity": "perplexity",
    "aws": "aws.bedrock", "azure": "azure.ai.openai", "together": "together", "fireworks": "fireworks",
    "cerebras": "cerebras", "moonshotai": "moonshotai", "zai": "zai", "meta": "meta",
}
# Same catalog under another API surface (gen_ai.provider.name values).
PROVIDER_ALIASES = {"gcp.vertex_ai": "gcp.gemini", "gcp.gen_ai": "gcp.gemini", "azure.ai.inference": "azure.ai.openai"}
# The first price of a model has no start date in the source: it applies to every earlier call.
FLOOR_DATE = date(2020, 1, 1)
# genai-prices ModelPrice fields -> ModelPrice fields (USD per million tokens).
FIELDS = {"input_mtok": "input_usd_per_mtok", "cache_read_mtok": "cached_input_usd_per_mtok",
          "cache_write_mtok": "cache_creation_input_usd_per_mtok", "output_mtok": "output_usd_per_mtok",
          "input_audio_mtok": "input_audio_usd_per_mtok", "output_audio_mtok": "output_audio_usd_per_mtok"}
TIER_VARIANTS = {("service_tier", "priority"): "priority", ("service_tier", "flex"): "flex",
                 ("service_tier", "fast"): "fast", ("service_tier", "ultrafast"): "ultrafast",
                 ("processing", "batch"): "batch"}


@dataclass
class ImportResult:
    table: PriceTable
    version: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (provider/model, reason)
    unpriced_units: dict[str, int] = field(default_factory=dict)  # genai price field -> models that have it


def import_genai_prices(providers: dict[str, str] | None = None) -> ImportResult:
    from genai_prices import data as gp_data
    from genai_prices import types as gp

    version = importlib.metadata.version("genai-prices")
    providers = providers or PROVIDERS
    entries: list[ModelPrice] = []
    result = ImportResult(PriceTable(currency="USD", prices=()), version)
    for provider in gp_data.providers:
        ours = providers.get(provider.id)
        if ours is None:
            continue
        page = (provider.pricing_urls or [provider.api_pattern])[0]
        for model in provider.models:
            where = f"{ours}/{model.id}"
            try:
                match = _match(model.match, gp)
            except ValueError as exc:
                result.skipped.append((where, f"match rule: {exc}"))
                continue
            source = f"genai-prices {version} ({page})"
            for tier_name, start, end, prices in _tier_periods(model, _periods(model.prices, gp, result, where), gp):
                for min_input, fields in _tiers(prices, gp, result, where):
                    entry = _entry(ours, model.id, match, fields, start, end, min_input, tier_name, source, model,
                                   result, where)
                    if entry is not None:
                        entries.append(entry)
    try:
        result.table = PriceTable(currency="USD", prices=tuple(entries), provider_aliases=PROVIDER_ALIASES)
    except ValidationError as exc:
        raise ValueError(f"the imported catalog does not validate: {exc}") from None
    return result


def _match(clause, gp) -> ModelMatch:
    if isinstance(clause, gp.ClauseEquals):
        return ModelMatch(equals=clause.equals.lower())
    if isinstance(clause, gp.ClauseStartsWith):
        return ModelMatch(starts_with=clause.starts_with.lower())
    if isinstance(clause, gp.ClauseEndsWith):
        return ModelMatch(ends_with=clause.ends_with.lower())
    if isinstance(clause, gp.ClauseContains):
        return ModelMatch(contains=clause.contains.lower())
    if isinstance(clause, gp.ClauseRegex):
        return ModelMatch(regex=clause.regex)
    if isinstance(clause, gp.ClauseOr):
        return ModelMatch(any_of=tuple(_match(c, gp) for c in clause.or_))
    if isinstance(clause, gp.ClauseAnd):
        return ModelMatch(all_of=tuple(_match(c, gp) for c in clause.and_))
    raise ValueError(f"unknown clause {type(clause).__name__}")


def _periods(prices, gp, result: ImportResult, where: str) -> list[tuple[date, date | None, object]]:
    """(start, end, ModelPrice) per period; time-of-day prices are left out."""
    if isinstance(prices, gp.ModelPrice):
        return [(FLOOR_DATE, None, prices)]
    by_start: dict[date, object] = {}
    for cp in prices:  # the later of two prices with one start date wins, as in genai-prices
        c = cp.constraint
        if c is None:
            by_start[FLOOR_DATE] = cp.prices
        elif isinstance(c, gp.StartDateConstraint):
            by_start[c.start_date] = cp.prices
        else:
            result.skipped.append((where, f"a {type(c).__name__} price (e.g. off-peak hours) is not modelled"))
    return _consecutive(sorted(by_start.items(), key=lambda x: x[0]))


def _consecutive(dated: list[tuple[date, object]]) -> list[tuple[date, date | None, object]]:
    return [(start, dated[i + 1][0] if i + 1 < len(dated) else None, p) for i, (start, p) in enumerate(dated)]


def _tier_periods(model, periods, gp):
    """(service tier, start, end, prices): the standard periods, and per tier variant its own
    history (variants of one tier with later start dates supersede earlier ones) intersected
    with the standard periods (a variant lists only what differs: the rest is the standard's)."""
    for start, end, prices in periods:
        yield "standard", start, end, prices
    by_tier: dict[str, dict[date, object]] = {}
    for v in model.price_variants or []:
        key = next(iter(v.when.items())) if len(v.when) == 1 else None
        tier = TIER_VARIANTS.get(key) if key else None
        if tier is not None:
            start = v.constraint.start_date if isinstance(v.constraint, gp.StartDateConstraint) else FLOOR_DATE
            by_tier.setdefault(tier, {})[start] = v.prices
    for tier, dated in by_tier.items():
        for v_start, v_end, v_prices in _consecutive(sorted(dated.items(), key=lambda x: x[0])):
            for p_start, p_end, standard in periods:
                start = max(v_start, p_start)
                ends = [e for e in (v_end, p_end) if e is not None]
                end = min(ends) if ends else None
                if end is not None and end <= start:
                    continue
                merged = {name: getattr(v_prices, name, None) for name in FIELDS}
                for name in FIELDS:
                    if merged[name] is None:
                        merged[name] = getattr(standard, name, None)
                yield tier, start, end, merged


def _tiers(prices, gp, result: ImportResult, where: str) -> list[tuple[int, dict[str, Decimal | None]]]:
    """(min_input_tokens, {our field: USD per MTok}) per context tier."""
    values = prices if isinstance(prices, dict) else {name: getattr(prices, name, None) for name in FIELDS}
    if not isinstance(prices, dict):
        for name, v in vars(prices).items():
            if v is not None and name not in FIELDS and not name.startswith("_"):
                result.unpriced_units[name] = result.unpriced_units.get(name, 0) + 1
    starts = sorted({t.start for v in values.values() if isinstance(v, gp.TieredPrices) for t in v.tiers})
    out = []
    for threshold in [None, *starts]:
        fields = {}
        for name, v in values.items():
            if isinstance(v, gp.TieredPrices):
                rate = v.base
                for t in v.tiers:
                    if threshold is not None and t.start <= threshold:
                        rate = t.price
                fields[FIELDS[name]] = rate
            else:
                fields[FIELDS[name]] = v
        out.append((0 if threshold is None else threshold + 1, fields))
    return out


def _entry(provider: str, model_id: str, match: ModelMatch, fields: dict, start: date, end: date | None,
           min_input: int, tier: str, source: str, model, result: ImportResult, where: str) -> ModelPrice | None:
    if fields.get("input_usd_per_mtok") is None:
        result.skipped.append((where, f"{tier}: no input token price (priced per request, second or character)"))
        return None
    if fields.get("output_usd_per_mtok") is None:  # embeddings, moderation: input tokens only
        fields = {**fields, "output_usd_per_mtok": Decimal(0)}
    for k, v in fields.items():
        if v is not None and Decimal(v).normalize().as_tuple().exponent < -MAX_PRICE_DECIMALS:
            result.skipped.append((where, f"{k} {v} has more than {MAX_PRICE_DECIMALS} decimals per MTok"))
            return None
    if end is not None and end <= start:
        return None  # a variant starting after its period ended
    try:
        return ModelPrice(provider=provider, model=model_id, match=match, effective_from=start, effective_to=end,
                          min_input_tokens=min_input, service_tier=tier, source=source,
                          note=(model.name or "")[:120],
                          **{k: _plain(v) for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        result.skipped.append((where, str(exc).splitlines()[0]))
        return None


def _plain(v) -> Decimal:
    """The decimal without an exponent (10, not 1E+1) and without trailing zeros."""
    d = Decimal(v).normalize()
    return Decimal(format(d, "f"))


def to_yaml(result: ImportResult, generated: date) -> str:
    import yaml

    doc = result.table.model_dump(mode="json", exclude_defaults=True, exclude={"prices": {"__all__": {"origin"}}})
    doc["currency"] = "USD"
    header = (f"# Generated by `tokenpulse prices-import-genai-prices` from genai-prices {result.version} on "
              f"{generated.isoformat()}: {len(result.table.prices)} entries.\n"
              "# Do not edit: put your own prices and corrections in prices.yaml (they override this file per model),\n"
              "# and refresh with `pip install -U genai-prices && tokenpulse prices-import-genai-prices`.\n"
              f"# Skipped: {len(result.skipped)} (see the command's output); price classes not priced from spans: "
              + ", ".join(f"{k} ({n})" for k, n in sorted(result.unpriced_units.items())) + "\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=140, allow_unicode=True)
