"""Spend budgets as validated data (schemas/budgets.yaml), evaluated by insights/budgets.py.

A budget is an amount of USD per period (`daily` or `monthly`, UTC calendar periods) for a
*scope*: a tenant, optionally narrowed by team, service (the app), provider, model and API
key, the dimensions `spend_1m` carries. A call counts against every budget whose scope contains it,
so budgets nest: `{tenant: acme, team: search}` sits inside `{tenant: acme}`. The nesting is
derived from the scopes (no `parent:` to keep in sync); each budget's `parents` are the
same-period budgets whose scope strictly contains it, nearest first, and alerts name them.

Rules per budget (defaults under `defaults:`, per-budget overrides):

* thresholds on the consumed fraction of the period's amount, e.g. 50 / 80 % soft
  (`warning`) and 100 % hard (`critical`); rule names `threshold_50`, `threshold_80`, ...
* two burn-rate pairs in the style of SRE error budgets, `fast` and `slow`. The burn rate
  of a window is (spend in the window / window length) / (amount / period length): 1 means
  "on pace to spend exactly the amount by the period's end". A pair pages when BOTH its
  long and its short window burn faster than `factor`. At burn rate `factor` the budget
  lasts period / factor (14.4 on a 30-day month: 50 hours) and the long window alone
  consumes factor x long / period of the amount (14.4 over 1 h: 2 %; 6 over 6 h: 5 %).
  The long window makes the page significant, the short one makes it stop as soon as the
  burst stops. Rule names `burn_rate_fast`, `burn_rate_slow`.
* the month-end (or day-end) forecast band percentiles (insights/forecast.py).

Money is exact: amounts are decimal strings with at most 6 decimals, parsed as Decimal.
Budgets have no session, so their alerts can only `notify` (the circuit breaker stops
sessions; stopping a whole team at a hard limit is not implemented).

Scope by API key: `api_key` is the non-secret key id the collector stamps on each span (the
key's configured name in the tenants file, else "sha256:" + the digest's first 12 hex digits;
schemas/tenants.py), stored as `api_key_id` in token_spans and spend_1m.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from .alerts import AlertAction, Severity

DEFAULT_BUDGETS_FILE = Path(__file__).with_name("budgets.yaml")
_STRICT = ConfigDict(extra="forbid", frozen=True)
_ID = r"^[a-z0-9][a-z0-9_.-]{0,62}$"  # no "/": budget ids are part of alert dedupe keys
_TENANT = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # as tenants.py / collector settings spell tenants

# Scope fields, in nesting order, that are dimensions of spend_1m (and of token_spans).
SCOPE_FIELDS = ("team", "service", "provider", "model", "api_key")
# Scope field -> spend_1m column, where the names differ.
SCOPE_COLUMNS = {"api_key": "api_key_id"}
# Scope fields that make sense but have no data behind them yet, with the reason.
UNAVAILABLE_SCOPE_FIELDS: dict[str, str] = {}
PERIOD_SECONDS_NOMINAL = {"daily": 86_400, "monthly": 30 * 86_400}  # only for validation messages

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(value: Any) -> int:
    """`300`, `"300s"`, `"5m"`, `"1h"`, `"1d"` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 5m, 1h")
    if isinstance(value, int):
        return value
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 300, 5m, 1h, 6h)")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


Duration = Annotated[int, BeforeValidator(parse_duration)]
Money = Annotated[Decimal, Field(gt=0, decimal_places=6, max_digits=26)]


def percent_label(percent: Decimal) -> str:
    """50 -> "50", 62.50 -> "62.5" (for rule names)."""
    return format(percent.normalize(), "f")


class Scope(BaseModel):
    """What a budget covers: a tenant, optionally narrowed by the spend dimensions."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tenant: str = Field(pattern=_TENANT)
    team: str | None = Field(default=None, min_length=1, max_length=256)
    service: str | None = Field(default=None, min_length=1, max_length=256,
                                validation_alias=AliasChoices("service", "app"))
    provider: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    # The key id as spans carry it (a key name, or "sha256:<12 hex digits>"; `tokenpulse key-hash`
    # prints a key's digest, whose first 12 digits make its id).
    api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, why in UNAVAILABLE_SCOPE_FIELDS.items():
                if data.get(name) is not None:
                    raise ValueError(f"scope field {name!r} is not available: {why}")
            known = {"tenant", "app", *SCOPE_FIELDS}
            unknown = sorted(set(data) - known - set(UNAVAILABLE_SCOPE_FIELDS))
            if unknown:
                raise ValueError(f"unknown scope field(s) {unknown}; known: tenant, {', '.join(SCOPE_FIELDS)} "
                                 "(app is an alias of service)")
        return data

    def constraints(self) -> dict[str, str]:
        """The narrowing fields that are set (tenant excluded), in nesting order."""
        return {f: getattr(self, f) for f in SCOPE_FIELDS if getattr(self, f) is not None}

    def contains(self, other: Scope) -> bool:
        """Every call in `other` is also in this scope."""
        return self.tenant == other.tenant and all(other.constraints().get(f) == v
                                                   for f, v in self.constraints().items())

    def label(self) -> str:
        return "/".join([self.tenant] + [f"{f}={v}" for f, v in self.constraints().items()])


class Threshold(BaseModel):
    """Consumed fraction of the period's amount at which an incident opens (soft: warning,
    hard: critical). Open until the period ends (spend within a period only grows)."""

    model_config = _STRICT
    percent: Decimal = Field(gt=0, le=1000, decimal_places=2)
    severity: Severity = Severity.warning
    action: AlertAction = AlertAction.notify

    @property
    def rule(self) -> str:
        return f"threshold_{percent_label(self.percent)}"


class BurnPair(BaseModel):
    """Page when the burn rate over BOTH windows exceeds `factor` (see the module doc)."""

    model_config = _STRICT
    enabled: bool = True
    long_window: Duration = Field(ge=60)
    short_window: Duration = Field(ge=60)
    factor: Decimal = Field(gt=1, decimal_places=4)
    severity: Severity = Severity.critical
    action: AlertAction = AlertAction.notify

    @model_validator(mode="after")
    def _windows(self) -> BurnPair:
        if self.short_window >= self.long_window:
            raise ValueError(f"short_window ({self.short_window} s) must be shorter than long_window "
                             f"({self.long_window} s)")
        for name in ("long_window", "short_window"):
            if getattr(self, name) % 60:
                raise ValueError(f"{name} must be whole minutes (spend_1m has minute grain)")
        if self.long_window > 7 * 86_400:
            raise ValueError("long_window above 7 days: use a threshold instead")
        return self


class BurnRules(BaseModel):
    model_config = _STRICT
    fast: BurnPair
    slow: BurnPair

    @property
    def max_window(self) -> int:
        return max(self.fast.long_window, self.slow.long_window)


PAIR_NAMES = tuple(BurnRules.model_fields)  # ("fast", "slow") -> rules burn_rate_fast / burn_rate_slow


class BurnDefaults(BaseModel):
    """Burn-rate pairs per period kind: a factor means a different share of a day than of a month."""

    model_config = _STRICT
    # 30-day month: 14.4 = 2 % of the budget in 1 h (lasts 50 h); 6 = 5 % in 6 h (lasts 5 days).
    monthly: BurnRules = BurnRules(
        fast=BurnPair(long_window=3600, short_window=300, factor=Decimal("14.4")),
        slow=BurnPair(long_window=6 * 3600, short_window=1800, factor=Decimal(6), severity=Severity.warning))
    # A day: 4.8 = 20 % of the day's budget in 1 h (lasts 5 h); 2 = 50 % in 6 h (lasts 12 h).
    daily: BurnRules = BurnRules(
        fast=BurnPair(long_window=3600, short_window=300, factor=Decimal("4.8")),
        slow=BurnPair(long_window=6 * 3600, short_window=1800, factor=Decimal(2), severity=Severity.warning))


class ForecastRules(BaseModel):
    """Period-end forecast: the band's percentiles and how many complete buckets (days of a
    month, hours of a day) must be observed before a band is given."""

    model_config = _STRICT
    low_percentile: int = Field(default=10, ge=1, le=49)
    high_percentile: int = Field(default=90, ge=51, le=99)
    min_buckets: int = Field(default=3, ge=2)


def _default_thresholds() -> tuple[Threshold, ...]:
    return (Threshold(percent=Decimal(50)), Threshold(percent=Decimal(80)),
            Threshold(percent=Decimal(100), severity=Severity.critical))


def _check_thresholds(thresholds: tuple[Threshold, ...]) -> None:
    percents = [t.percent for t in thresholds]
    if len(set(percents)) != len(percents):
        raise ValueError(f"duplicate threshold percent in {[str(p) for p in percents]}")


def _check_notify(what: str, action: AlertAction) -> None:
    if action is not AlertAction.notify:
        raise ValueError(f"{what}: action must be notify (a budget has no session to stop)")


class Defaults(BaseModel):
    model_config = _STRICT
    thresholds: tuple[Threshold, ...] = Field(default_factory=_default_thresholds)
    burn_rate: BurnDefaults = BurnDefaults()
    forecast: ForecastRules = ForecastRules()

    @model_validator(mode="after")
    def _check(self) -> Defaults:
        _check_thresholds(self.thresholds)
        for t in self.thresholds:
            _check_notify(t.rule, t.action)
        for period in ("monthly", "daily"):
            rules = getattr(self.burn_rate, period)
            for pair in PAIR_NAMES:
                _check_notify(f"burn_rate.{period}.{pair}", getattr(rules, pair).action)
        return self


class Budget(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=_ID)
    scope: Scope
    period: Literal["daily", "monthly"]
    amount_usd: Money
    enabled: bool = True
    description: str = Field(default="", max_length=500)
    # Overrides of the defaults: `thresholds` replaces the list; `burn_rate` changes some
    # fields of `fast` and/or `slow` (merged over the defaults of this budget's period).
    thresholds: tuple[Threshold, ...] | None = None
    burn_rate: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.thresholds is not None:
            _check_thresholds(self.thresholds)
        unknown = set(self.burn_rate or {}) - set(PAIR_NAMES)
        if unknown:
            raise ValueError(f"unknown burn_rate pair(s) {sorted(unknown)}; known: {list(PAIR_NAMES)}")
        return self


class ResolvedBudget(BaseModel):
    """A budget with its rules in force and its place in the nesting."""

    model_config = _STRICT
    id: str
    scope: Scope
    period: Literal["daily", "monthly"]
    amount_usd: Decimal
    description: str
    thresholds: tuple[Threshold, ...]
    burn_rate: BurnRules
    forecast: ForecastRules
    parents: tuple[str, ...] = ()  # same-period budgets containing this one, nearest first

    @property
    def tenant(self) -> str:
        return self.scope.tenant

    def chain(self) -> str:
        """"team-search < acme-monthly": this budget, then the budgets it counts against too."""
        return " < ".join((self.id,) + self.parents)


class BudgetConfig(BaseModel):
    model_config = _STRICT
    defaults: Defaults = Defaults()
    budgets: tuple[Budget, ...] = ()

    _resolved: tuple[ResolvedBudget, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _resolve(self) -> BudgetConfig:
        errors: list[str] = []
        seen: dict[str, Budget] = {}
        for b in self.budgets:
            if b.id in seen:
                errors.append(f"duplicate budget id {b.id!r}")
            seen[b.id] = b
        resolved = []
        for b in self.budgets:
            try:
                resolved.append(_resolve_one(self.defaults, b))
            except (ValidationError, ValueError) as exc:
                errors.append(f"budget {b.id!r}: {exc}")
        out = []
        for r in resolved:
            same = [o for o in resolved if o.id != r.id and o.period == r.period]
            for o in same:
                if o.scope == r.scope:
                    errors.append(f"budgets {r.id!r} and {o.id!r} have the same scope and period")
            parents = sorted((o for o in same if o.scope.contains(r.scope) and o.scope != r.scope),
                             key=lambda o: (-len(o.scope.constraints()), o.id))
            for p in parents:
                if r.amount_usd > p.amount_usd:
                    errors.append(f"budget {r.id!r} (${r.amount_usd}) is larger than the budget containing it, "
                                  f"{p.id!r} (${p.amount_usd})")
            out.append(r.model_copy(update={"parents": tuple(p.id for p in parents)}))
        if errors:
            raise ValueError("; ".join(sorted(set(errors))))
        self._resolved = tuple(out)
        return self

    def resolved(self, *, enabled_only: bool = True) -> tuple[ResolvedBudget, ...]:
        enabled = {b.id for b in self.budgets if b.enabled}
        return tuple(r for r in self._resolved if r.id in enabled or not enabled_only)

    def get(self, budget_id: str) -> ResolvedBudget | None:
        return next((r for r in self._resolved if r.id == budget_id), None)


def _resolve_one(defaults: Defaults, b: Budget) -> ResolvedBudget:
    thresholds = b.thresholds if b.thresholds is not None else defaults.thresholds
    for t in thresholds:
        _check_notify(t.rule, t.action)
    base: BurnRules = getattr(defaults.burn_rate, b.period)
    doc = base.model_dump()
    for pair, fields in (b.burn_rate or {}).items():
        doc[pair] = {**doc[pair], **fields}
    burn = BurnRules.model_validate(doc)
    for pair in PAIR_NAMES:
        _check_notify(f"burn_rate.{pair}", getattr(burn, pair).action)
    return ResolvedBudget(id=b.id, scope=b.scope, period=b.period, amount_usd=b.amount_usd,
                          description=b.description, thresholds=thresholds, burn_rate=burn,
                          forecast=defaults.forecast)


def load_budget_config(path: Path | str = DEFAULT_BUDGETS_FILE) -> BudgetConfig:
    with open(path) as f:
        return BudgetConfig.model_validate(yaml.safe_load(f) or {})
