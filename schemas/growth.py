"""Spend-intelligence rules, as validated data (schemas/growth.yaml).

* `jevons`: flag a series (tenant, team, app or model) whose effective unit price fell by at
  least `min_price_drop` while its token volume rose so much that total spend rose too
  (the Jevons pattern; equivalently arc elasticity below -1 with the price falling).
* `growth`: named growth-rate rules (`growth_wow`, `growth_mom`, `growth_pace`, ...): spend
  and/or tokens of a complete period against the one before, as plain growth or annualized.
* `expected_growth`: planned rollouts. A finding they cover is still recorded (and alerted
  with severity info, which hooks skip by default) but does not page.
* `savings`: how many days back the measured-savings evaluator re-computes each run.

Every section is re-validated at load time, so a typo fails `tokenpulse config-check`
(see `load_growth_config`), not a page.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .alerts import Severity

DEFAULT_GROWTH_FILE = Path(__file__).with_name("growth.yaml")
_STRICT = ConfigDict(extra="forbid", frozen=True)
JEVONS_RULE = "jevons"


class Dimension(str, Enum):
    """What a series is grouped by (always within one tenant). `app` is the OTel service."""

    tenant = "tenant"
    team = "team"
    app = "app"
    model = "model"


class Period(str, Enum):
    """Complete UTC calendar periods: days, ISO weeks (Monday first), calendar months."""

    day = "day"
    week = "week"
    month = "month"


class Metric(str, Enum):
    spend = "spend"  # cost_usd (API fee + edge hardware/energy)
    tokens = "tokens"  # input + output tokens


ALL_DIMENSIONS = (Dimension.tenant, Dimension.team, Dimension.app, Dimension.model)


class JevonsRule(BaseModel):
    """Current complete period vs the one before, per series:
    unit price fell by >= min_price_drop (a fraction), tokens rose, spend rose."""

    model_config = _STRICT
    enabled: bool = True
    period: Period = Period.week
    dimensions: tuple[Dimension, ...] = Field(default=ALL_DIMENSIONS, min_length=1)
    min_price_drop: Decimal = Field(default=Decimal("0.10"), gt=0, lt=1, decimal_places=6)
    # Noise floor: both periods must have at least this much volume and spend.
    min_tokens: int = Field(default=1_000_000, ge=0)
    min_spend_usd: Decimal = Field(default=Decimal("1"), ge=0, decimal_places=6)
    severity: Severity = Severity.warning

    @model_validator(mode="after")
    def _equal_length_periods(self) -> JevonsRule:
        if self.period is Period.month:
            raise ValueError("jevons compares equal-length periods: use day or week")
        return self


class GrowthRule(BaseModel):
    """Growth of a complete period over the one before, above `threshold_pct` (percent).

    Months differ in length, so growth compares per-day rates ((cur/days) / (prev/days)).
    `annualized: true` compounds that ratio to a yearly pace (x52 weeks or x12 months):
    a 900% year-on-year pace is a ratio of 10 per year, i.e. about +21.2% month over month.
    """

    model_config = _STRICT
    enabled: bool = True
    period: Period = Period.week
    threshold_pct: Decimal = Field(gt=0, decimal_places=6)
    annualized: bool = False
    metrics: tuple[Metric, ...] = Field(default=(Metric.spend, Metric.tokens), min_length=1)
    dimensions: tuple[Dimension, ...] = Field(default=ALL_DIMENSIONS, min_length=1)
    # No growth rate from a tiny base: the previous period needs this much spend AND tokens.
    min_base_spend_usd: Decimal = Field(default=Decimal("10"), ge=0, decimal_places=6)
    min_base_tokens: int = Field(default=1_000_000, ge=0)
    severity: Severity = Severity.warning

    @model_validator(mode="after")
    def _period(self) -> GrowthRule:
        if self.period is Period.day:
            raise ValueError("growth rules compare weeks or months (day over day is noise)")
        return self


def _default_growth_rules() -> dict[str, GrowthRule]:
    return {
        "growth_wow": GrowthRule(period=Period.week, threshold_pct=Decimal(50)),
        "growth_mom": GrowthRule(period=Period.month, threshold_pct=Decimal(100)),
        "growth_pace": GrowthRule(period=Period.month, threshold_pct=Decimal(900), annualized=True,
                                  metrics=(Metric.tokens,)),
    }


class ExpectedMatch(BaseModel):
    """Which series a planned rollout covers. Only `tenant`: every series of the tenant
    (its total, teams, apps, models). With one of team/app/model: that series only."""

    model_config = _STRICT
    tenant: str = Field(min_length=1)
    team: str | None = None
    app: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> ExpectedMatch:
        if sum(v is not None for v in (self.team, self.app, self.model)) > 1:
            raise ValueError("expected_growth match names one series: at most one of team, app, model")
        return self

    def covers(self, tenant: str, dimension: Dimension, value: str) -> bool:
        if tenant != self.tenant:
            return False
        wanted = {Dimension.team: self.team, Dimension.app: self.app, Dimension.model: self.model}
        named = [(d, v) for d, v in wanted.items() if v is not None]
        if not named:
            return True
        return named[0] == (dimension, value)


class ExpectedGrowth(BaseModel):
    """A planned rollout: growth in periods starting on or before `until` does not page."""

    model_config = _STRICT
    match: ExpectedMatch
    until: date
    reason: str = Field(min_length=3, max_length=500)
    rules: tuple[str, ...] = ()  # empty: every growth rule and jevons

    def covers(self, tenant: str, dimension: Dimension, value: str, rule: str, period_start: date) -> bool:
        return (period_start <= self.until and (not self.rules or rule in self.rules)
                and self.match.covers(tenant, dimension, value))


class SavingsSettings(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    # Each run re-computes today and this many days before it (late spans, repricing).
    lookback_days: int = Field(default=2, ge=0, le=62)


class GrowthConfig(BaseModel):
    model_config = _STRICT
    # Complete periods change only through late data: re-read them at most this often.
    evaluate_every_s: int = Field(default=900, ge=0, le=86_400)
    jevons: JevonsRule = JevonsRule()
    growth: dict[str, GrowthRule] = Field(default_factory=_default_growth_rules)
    expected_growth: tuple[ExpectedGrowth, ...] = ()
    savings: SavingsSettings = SavingsSettings()

    @model_validator(mode="after")
    def _names(self) -> GrowthConfig:
        errors = [f"growth rule {n!r}: names start with 'growth_' (lowercase, digits, _)"
                  for n in self.growth if not (n.startswith("growth_") and n.replace("_", "").isalnum()
                                               and n == n.lower() and len(n) <= 64)]
        known = {JEVONS_RULE, *self.growth}
        for i, e in enumerate(self.expected_growth):
            unknown = set(e.rules) - known
            if unknown:
                errors.append(f"expected_growth[{i}]: unknown rule(s) {sorted(unknown)}; known: {sorted(known)}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def expected_for(self, tenant: str, dimension: Dimension, value: str, rule: str,
                     period_start: date) -> ExpectedGrowth | None:
        """The first planned-rollout entry covering this finding, if any."""
        for e in self.expected_growth:
            if e.covers(tenant, dimension, value, rule, period_start):
                return e
        return None


def load_growth_config(path: Path | str = DEFAULT_GROWTH_FILE) -> GrowthConfig:
    with open(path) as f:
        return GrowthConfig.model_validate(yaml.safe_load(f) or {})
