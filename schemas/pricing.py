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
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_PRICES_FILE = Path(__file__).with_name("prices.yaml")
MAX_PRICE_DECIMALS = 6
TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)

Price = Field(ge=Decimal(0), le=Decimal(1_000_000))
OptionalPrice = Field(default=None, ge=Decimal(0), le=Decimal(1_000_000))  # None: same as input price
# USD per unit (one image, one second of audio). None: the model does not charge per unit
# (its images or audio, if any, are billed through tokens), i.e. 0.
UnitPrice = Field(default=None, ge=Decimal(0), le=Decimal(100_000))  # fits DECIMAL(18, 12)
MAX_UNIT_PRICE_DECIMALS = 12  # the price of one unit is used as is, at the cost's scale


class ModelPrice(BaseModel):
    """Prices of one model, valid from `effective_from` (inclusive) to `effective_to` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
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
            return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
        return v

    @field_validator("effective_from", "effective_to")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)

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
    def _period(self) -> "ModelPrice":
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError(f"effective_to {self.effective_to} is not after effective_from {self.effective_from}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.model, *self.aliases)

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

    @model_validator(mode="after")
    def _no_overlapping_periods(self) -> "PriceTable":
        errors = []
        seen: dict[tuple[str, str], list[ModelPrice]] = {}
        for p in self.prices:
            for name in p.names:
                for other in seen.get((p.provider, name), []):
                    same_slot = (p.min_input_tokens, p.service_tier) == (other.min_input_tokens, other.service_tier)
                    if same_slot and _overlaps(p, other):
                        errors.append(
                            f"{p.provider}/{name}: periods from {other.effective_from} and {p.effective_from} overlap"
                        )
                seen.setdefault((p.provider, name), []).append(p)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def price_at(self, provider: str, model: str, at_ms: int, input_tokens: int = 0,
                 service_tier: str = "standard") -> ModelPrice | None:
        """The price in force for a call that ended at `at_ms`, or None (unpriced).

        Preference: an entry for the call's service tier over a "standard" one, then the
        highest context tier the call's input tokens reach."""
        best = None
        for p in self.prices:
            if p.provider == provider and model in p.names and p.effective_from_ms() <= at_ms:
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
    a_end = a.effective_to or datetime.max.replace(tzinfo=timezone.utc)
    b_end = b.effective_to or datetime.max.replace(tzinfo=timezone.utc)
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


def load_price_table(path: Path | str = DEFAULT_PRICES_FILE) -> PriceTable:
    with open(path) as f:
        return PriceTable.model_validate(yaml.safe_load(f))
