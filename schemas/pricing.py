"""The price table as validated data.

Money is exact decimal end to end: prices are `Decimal` here, `DECIMAL(38, 12)` in Flink,
`Decimal(38, 12)` in ClickHouse, and plain JSON numbers (parsed back as Decimal) on Kafka.
A price per million tokens may have at most 6 decimal places, so the price of one token
has at most 12 and every per-call cost is exact at scale 12 (no rounding anywhere).

Token classes (OTel GenAI conventions): cache-read and cache-creation tokens are subsets of
input tokens, reasoning tokens a subset of output tokens. Audio tokens (tokenpulse's own
attributes, no semconv name yet) are subsets too: input audio tokens of the input tokens
(disjoint from the cache counts: cached audio is billed at the cache-read rate), output
audio tokens of the output tokens. Images and seconds of audio are units of their own.
A call costs
    (input - cache_read - cache_creation - input_audio) * input_price
  + cache_read * cached_input_price + cache_creation * cache_creation_price
  + input_audio * input_audio_price
  + (output - output_audio) * output_price   # reasoning tokens are billed as output tokens
  + output_audio * output_audio_price
  + input_images * input_image_price + output_images * output_image_price
  + input_audio_seconds * input_audio_second_price
An audio token is priced at the audio rate *instead of* the text rate, never both.

Two files make the table (issue #17): the comprehensive catalog (prices.catalog.yaml, generated
from the genai-prices package by `tokenpulse prices-import-genai-prices`, with each model's price
history and match rules) and the local file (prices.yaml: your negotiated prices, edge models,
anything the catalog lacks). A call is priced in two steps:
  1. its *catalog model*: the first catalog entry whose names or match rule fit the reported
     model (case-insensitive) gives the canonical name, else the first local entry that fits:
     dated snapshots such as "gpt-4o-2024-08-06" fold to "gpt-4o" in rollups and reports;
  2. its candidate entries: the local entries that fit the reported model, and the catalog's
     entries of the canonical model for every service tier no fitting local entry covers (a
     local entry overrides the catalog for its tier: a negotiated standard price, batch prices
     older than the catalog's history); of those, the one in force at the call's end time for its
     service tier and context size.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

DEFAULT_PRICES_FILE = Path(__file__).with_name("prices.yaml")
DEFAULT_CATALOG_FILE = Path(__file__).with_name("prices.catalog.yaml")
MAX_PRICE_DECIMALS = 6
TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)

Price = Field(ge=Decimal(0), le=Decimal(1_000_000))
OptionalPrice = Field(default=None, ge=Decimal(0), le=Decimal(1_000_000))  # None: same as input price
# USD per unit (one image, one second of audio). None: the model does not charge per unit
# (its images or audio, if any, are billed through tokens), i.e. 0.
UnitPrice = Field(default=None, ge=Decimal(0), le=Decimal(100_000))  # fits DECIMAL(18, 12)
MAX_UNIT_PRICE_DECIMALS = 12  # the price of one unit is used as is, at the cost's scale


class ModelMatch(BaseModel):
    """A rule on the reported model name (lower-cased): exactly one of the fields. The regex
    dialect is the common subset of Python, Java and RE2 (ClickHouse): anchors, classes, \\d."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    equals: str | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    contains: str | None = None
    regex: str | None = None
    any_of: tuple[ModelMatch, ...] | None = None
    all_of: tuple[ModelMatch, ...] | None = None

    @model_validator(mode="after")
    def _one(self) -> ModelMatch:
        set_fields = [k for k in ("equals", "starts_with", "ends_with", "contains", "regex", "any_of", "all_of")
                      if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(f"a match rule needs exactly one of equals, starts_with, ends_with, contains, regex, "
                             f"any_of, all_of (got {set_fields or 'none'})")
        if self.regex is not None:
            re.compile(self.regex)
        for k in ("equals", "starts_with", "ends_with", "contains"):
            v = getattr(self, k)
            if v is not None and v != v.lower():
                raise ValueError(f"match {k} {v!r} must be lower-case (models are compared lower-cased)")
        return self

    def matches(self, model: str) -> bool:
        """`model` lower-cased already."""
        if self.equals is not None:
            return model == self.equals
        if self.starts_with is not None:
            return model.startswith(self.starts_with)
        if self.ends_with is not None:
            return model.endswith(self.ends_with)
        if self.contains is not None:
            return self.contains in model
        if self.regex is not None:
            return re.search(self.regex, model) is not None
        if self.any_of is not None:
            return any(m.matches(model) for m in self.any_of)
        return all(m.matches(model) for m in self.all_of)

    def to_json(self) -> str:
        """Compact JSON for the Java lookup (stream_jobs/jvm/.../PriceLookup.java)."""
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"), sort_keys=True)


class ModelPrice(BaseModel):
    """Prices of one model, valid from `effective_from` (inclusive) to `effective_to` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)  # the canonical (catalog) model name
    aliases: tuple[str, ...] = ()
    # Which reported model names this entry prices, beyond `model` and `aliases` (e.g. every
    # dated snapshot of a model: {starts_with: claude-sonnet-4-5}).
    match: ModelMatch | None = None
    # Set when loading: which file the entry came from (local entries come first and override).
    origin: Literal["local", "catalog"] = "local"
    input_usd_per_mtok: Decimal = Price
    cached_input_usd_per_mtok: Decimal | None = OptionalPrice
    cache_creation_input_usd_per_mtok: Decimal | None = OptionalPrice
    output_usd_per_mtok: Decimal = Price
    # Audio tokens (a subset of input / output tokens) at their own rate; None: the text rate.
    input_audio_usd_per_mtok: Decimal | None = OptionalPrice
    output_audio_usd_per_mtok: Decimal | None = OptionalPrice
    # Per-unit prices: per image read, per image generated, per second of input audio
    # (e.g. transcription: USD 0.006 / minute = USD 0.0001 / second).
    input_image_usd: Decimal | None = UnitPrice
    output_image_usd: Decimal | None = UnitPrice
    input_audio_usd_per_second: Decimal | None = UnitPrice
    # A date means 00:00 UTC that day; a datetime may carry a time (naive = UTC).
    effective_from: datetime
    effective_to: datetime | None = None
    # Context-size tiers: this entry applies to calls with at least this many input tokens;
    # the entry with the highest threshold a call reaches wins (e.g. >200k-token prompts).
    min_input_tokens: int = Field(default=0, ge=0)
    # Applies to calls billed under this service tier (e.g. "batch" at the batch API's own
    # published prices). A call whose tier has no entry is priced at the "standard" entry.
    service_tier: str = Field(default="standard", pattern=r"^[a-z0-9_-]+$")
    source: str = Field(min_length=8, description="URL or document the price was taken from")
    note: str = ""

    @field_validator("effective_from", "effective_to", mode="before")
    @classmethod
    def _utc(cls, v):
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        return v

    @field_validator("effective_from", "effective_to")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @field_validator(
        "input_usd_per_mtok", "cached_input_usd_per_mtok", "cache_creation_input_usd_per_mtok", "output_usd_per_mtok",
        "input_audio_usd_per_mtok", "output_audio_usd_per_mtok",
    )
    @classmethod
    def _at_most_six_decimals(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v.as_tuple().exponent < -MAX_PRICE_DECIMALS:
            raise ValueError(f"{v} has more than {MAX_PRICE_DECIMALS} decimal places per million tokens")
        return v

    @field_validator("input_image_usd", "output_image_usd", "input_audio_usd_per_second")
    @classmethod
    def _at_most_twelve_decimals(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v.as_tuple().exponent < -MAX_UNIT_PRICE_DECIMALS:
            raise ValueError(f"{v} has more than {MAX_UNIT_PRICE_DECIMALS} decimal places per unit")
        return v

    @model_validator(mode="after")
    def _period(self) -> ModelPrice:
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError(f"effective_to {self.effective_to} is not after effective_from {self.effective_from}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.model, *self.aliases)

    @cached_property
    def _lower_names(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self.names)

    def fits(self, model_lower: str) -> bool:
        """Whether this entry prices the reported model (lower-cased)."""
        return model_lower in self._lower_names or (self.match is not None and self.match.matches(model_lower))

    def per_token(self, usd_per_mtok: Decimal | None, fallback: Decimal) -> Decimal:
        """USD for one token, exact (scale <= 12)."""
        return (usd_per_mtok if usd_per_mtok is not None else fallback) / TOKENS_PER_PRICE_UNIT

    @property
    def input_per_token(self) -> Decimal:
        return self.per_token(self.input_usd_per_mtok, self.input_usd_per_mtok)

    @property
    def cached_input_per_token(self) -> Decimal:
        return self.per_token(self.cached_input_usd_per_mtok, self.input_usd_per_mtok)

    @property
    def cache_creation_per_token(self) -> Decimal:
        return self.per_token(self.cache_creation_input_usd_per_mtok, self.input_usd_per_mtok)

    @property
    def output_per_token(self) -> Decimal:
        return self.per_token(self.output_usd_per_mtok, self.output_usd_per_mtok)

    @property
    def input_audio_per_token(self) -> Decimal:
        return self.per_token(self.input_audio_usd_per_mtok, self.input_usd_per_mtok)

    @property
    def output_audio_per_token(self) -> Decimal:
        return self.per_token(self.output_audio_usd_per_mtok, self.output_usd_per_mtok)

    @property
    def input_image_unit(self) -> Decimal:
        return self.input_image_usd or Decimal(0)

    @property
    def output_image_unit(self) -> Decimal:
        return self.output_image_usd or Decimal(0)

    @property
    def input_audio_second_unit(self) -> Decimal:
        return self.input_audio_usd_per_second or Decimal(0)

    def effective_from_ms(self) -> int:
        return _date_ms(self.effective_from)

    def effective_to_ms(self) -> int | None:
        return None if self.effective_to is None else _date_ms(self.effective_to)


def _date_ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(pattern=r"^USD$")
    prices: tuple[ModelPrice, ...]
    # Providers priced with another provider's entries (gen_ai.provider.name values), e.g.
    # gcp.vertex_ai -> gcp.gemini: the same models and prices under two API surfaces.
    provider_aliases: dict[str, str] = Field(default_factory=dict)
    _models: dict = PrivateAttr(default_factory=dict)  # memo: (provider, model) -> canonical or None

    @model_validator(mode="after")
    def _no_overlapping_periods(self) -> PriceTable:
        errors = []
        seen: dict[tuple[str, str, str], list[ModelPrice]] = {}
        for p in self.prices:
            for name in p.names:
                key = (p.origin, p.provider, name)
                for other in seen.get(key, []):
                    same_slot = (p.min_input_tokens, p.service_tier) == (other.min_input_tokens, other.service_tier)
                    if same_slot and _overlaps(p, other):
                        errors.append(
                            f"{p.provider}/{name}: periods from {other.effective_from} and {p.effective_from} overlap"
                        )
                seen.setdefault(key, []).append(p)
        for alias, target in self.provider_aliases.items():
            if target in self.provider_aliases:
                errors.append(f"provider alias {alias} -> {target}: {target} is an alias itself")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def price_provider(self, provider: str) -> str:
        return self.provider_aliases.get(provider, provider)

    def catalog_model(self, provider: str, model: str) -> str | None:
        """Step 1: the canonical model name the reported one folds to, or None (unpriced)."""
        return self._resolve(provider, model)[0]

    def candidates(self, provider: str, model: str) -> tuple[ModelPrice, ...]:
        """Step 2's entries for a reported model, most specific first (price_order)."""
        return self._resolve(provider, model)[1]

    def _resolve(self, provider: str, model: str) -> tuple[str | None, tuple[ModelPrice, ...]]:
        key = (provider, model)
        if key not in self._models:
            prov, lower = self.price_provider(provider), model.lower()
            local = [p for p in self.prices if p.origin == "local" and p.provider == prov and p.fits(lower)]
            canonical = next((p.model for p in self.prices
                              if p.origin == "catalog" and p.provider == prov and p.fits(lower)), None)
            covered = {p.service_tier for p in local}
            shipped = [p for p in self.prices if canonical is not None and p.origin == "catalog"
                       and p.provider == prov and p.model == canonical and p.service_tier not in covered]
            canonical = canonical or (local[0].model if local else None)
            self._models[key] = (canonical, tuple(price_order([*local, *shipped])))
        return self._models[key]

    def resolved_for(self, pairs) -> tuple[PriceTable, dict[tuple[str, str], str]]:
        """A local, exact-name table pricing just these reported (provider, model) pairs as this
        one does, and each pair's catalog model: what a generated CASE can evaluate anywhere
        (`tokenpulse reprice` in ClickHouse) whatever the size of the catalog."""
        entries, canonical = [], {}
        for provider, model in sorted(set(pairs)):
            folded = self.catalog_model(provider, model)
            if folded is None:
                continue
            canonical[(provider, model)] = folded
            entries += [p.model_copy(update={"provider": provider, "model": model, "aliases": (), "match": None,
                                             "origin": "local"}) for p in self.candidates(provider, model)]
        return PriceTable(currency=self.currency, prices=tuple(entries)), canonical

    def price_at(self, provider: str, model: str, at_ms: int, input_tokens: int = 0,
                 service_tier: str = "standard") -> ModelPrice | None:
        """The price in force for a call that ended at `at_ms`, or None (unpriced).

        Preference: an entry for the call's service tier over a "standard" one, then the
        highest context tier the call's input tokens reach."""
        best = None
        for p in self.candidates(provider, model):
            if p.effective_from_ms() <= at_ms:
                end = p.effective_to_ms()
                if (end is None or at_ms < end) and p.min_input_tokens <= input_tokens \
                        and p.service_tier in (service_tier, "standard"):
                    if best is None or _rank(p, service_tier) > _rank(best, service_tier):
                        best = p
        return best


def _rank(p: ModelPrice, service_tier: str) -> tuple[bool, int]:
    return (p.service_tier == service_tier, p.min_input_tokens)


def price_order(prices) -> list[ModelPrice]:
    """Most specific first (tier-specific, then higher context tiers): the CASE order."""
    return sorted(prices, key=lambda p: (p.service_tier == "standard", -p.min_input_tokens))


def _overlaps(a: ModelPrice, b: ModelPrice) -> bool:
    a_end = a.effective_to or datetime.max.replace(tzinfo=UTC)
    b_end = b.effective_to or datetime.max.replace(tzinfo=UTC)
    return a.effective_from < b_end and b.effective_from < a_end


def call_cost_usd(price: ModelPrice, *, input_tokens: int, cached_input_tokens: int,
                  cache_creation_input_tokens: int, output_tokens: int, input_audio_tokens: int = 0,
                  output_audio_tokens: int = 0, input_images: int = 0, output_images: int = 0,
                  input_audio_seconds: int = 0) -> Decimal:
    """Reference (pure Python) cost of one call; the Flink job computes the same in SQL."""
    text_input = input_tokens - cached_input_tokens - cache_creation_input_tokens - input_audio_tokens
    return (
        text_input * price.input_per_token
        + cached_input_tokens * price.cached_input_per_token
        + cache_creation_input_tokens * price.cache_creation_per_token
        + input_audio_tokens * price.input_audio_per_token
        + (output_tokens - output_audio_tokens) * price.output_per_token
        + output_audio_tokens * price.output_audio_per_token
        + input_images * price.input_image_unit
        + output_images * price.output_image_unit
        + input_audio_seconds * price.input_audio_second_unit
    )


def load_price_table(path: Path | str = DEFAULT_PRICES_FILE,
                     catalog: Path | str | None = DEFAULT_CATALOG_FILE) -> PriceTable:
    """The local price file with the comprehensive catalog under it (the local file's entries
    first: they override the catalog per model and tier); `catalog=None`: the local file alone."""
    with open(path) as f:
        local = PriceTable.model_validate(yaml.safe_load(f))
    if catalog is None:
        return local
    with open(catalog) as f:
        doc = yaml.safe_load(f)
    shipped = PriceTable.model_validate(doc)
    return PriceTable(currency=local.currency,
                      prices=(*local.prices, *(p.model_copy(update={"origin": "catalog"}) for p in shipped.prices)),
                      provider_aliases={**shipped.provider_aliases, **local.provider_aliases})
