"""Edge / on-prem runtime profiles: what a call on your own hardware really costs.

A local model has no API fee, but the box was bought and draws power. A span's runtime id
(`tokenpulse.runtime.id`, or the host name) links the call to a profile.

Allocation rule: **by busy time.** The hardware's cost accrues per hour whether it
generates one token or a million, and its energy is drawn per second of work, so a call is
charged for the milliseconds it kept the runtime busy (end - start):

    hardware_usd_per_busy_ms = purchase_price / (lifetime_ms * expected_utilization)
    energy_usd_per_busy_ms   = (load_watts + idle_watts * (1 - u) / u) * pue * tariff_per_kwh / 3.6e9
    edge call cost           = busy_ms * (hardware_usd_per_busy_ms + energy_usd_per_busy_ms)

Dividing by expected utilization charges idle time to the work that justified the box, so
the profiles' costs add up to the real bill when utilization is as planned. (Allocating by
tokens instead would charge a slow 70B model the same per token as a fast 8B one.)
The per-millisecond rate is rounded once, to 12 decimal places, when the profile is loaded;
from there on every call's cost is exact at scale 12, in Flink and in Python alike.

`cloud_equivalent` names the cloud model the same work would otherwise go to: the stream
job prices the call at that model too, giving the counterfactual cloud cost used by the
cloud-vs-edge comparison and the "calls served at the edge" savings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PROFILES_FILE = Path(__file__).with_name("edge_profiles.yaml")
RATE_QUANTUM = Decimal("1e-12")
MS_PER_MONTH = Decimal(30.4375 * 24 * 3600 * 1000)  # mean Gregorian month
WATT_MS_PER_KWH = Decimal(1000 * 3600 * 1000)


class CloudEquivalent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: str
    model: str


class RuntimeProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime_id: str = Field(min_length=1)
    description: str = ""
    hardware_price_usd: Decimal = Field(ge=0)
    depreciation_months: int = Field(gt=0, le=240)
    idle_watts: Decimal = Field(ge=0)
    load_watts: Decimal = Field(gt=0)
    pue: Decimal = Field(default=Decimal("1.0"), ge=1, le=5, description="power usage effectiveness / overhead")
    energy_usd_per_kwh: Decimal = Field(ge=0)
    expected_utilization: Decimal = Field(gt=0, le=1)
    cloud_equivalent: CloudEquivalent | None = None
    effective_from: date
    effective_to: date | None = None
    source: str = Field(min_length=4, description="where the hardware price and tariff come from")

    @model_validator(mode="after")
    def _checks(self) -> RuntimeProfile:
        if self.idle_watts > self.load_watts:
            raise ValueError(f"{self.runtime_id}: idle_watts exceeds load_watts")
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError(f"{self.runtime_id}: effective_to is not after effective_from")
        return self

    @property
    def hardware_usd_per_busy_ms(self) -> Decimal:
        lifetime_ms = self.depreciation_months * MS_PER_MONTH
        return (self.hardware_price_usd / (lifetime_ms * self.expected_utilization)).quantize(RATE_QUANTUM, ROUND_HALF_EVEN)

    @property
    def energy_usd_per_busy_ms(self) -> Decimal:
        u = self.expected_utilization
        watts = self.load_watts + self.idle_watts * (1 - u) / u
        return (watts * self.pue * self.energy_usd_per_kwh / WATT_MS_PER_KWH).quantize(RATE_QUANTUM, ROUND_HALF_EVEN)

    @property
    def usd_per_busy_ms(self) -> Decimal:
        return self.hardware_usd_per_busy_ms + self.energy_usd_per_busy_ms

    def effective_from_ms(self) -> int:
        return _date_ms(self.effective_from)

    def effective_to_ms(self) -> int | None:
        return None if self.effective_to is None else _date_ms(self.effective_to)


def _date_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


class EdgeProfiles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    profiles: tuple[RuntimeProfile, ...] = ()

    def profile_at(self, runtime_id: str, at_ms: int) -> RuntimeProfile | None:
        for p in self.profiles:
            end = p.effective_to_ms()
            if p.runtime_id == runtime_id and p.effective_from_ms() <= at_ms and (end is None or at_ms < end):
                return p
        return None


def edge_call_cost_usd(profile: RuntimeProfile, *, busy_ms: int) -> Decimal:
    """Reference (pure Python) cost of one edge call; the Flink job computes the same in SQL."""
    return busy_ms * profile.usd_per_busy_ms


def load_edge_profiles(path: Path | str = DEFAULT_PROFILES_FILE) -> EdgeProfiles:
    with open(path) as f:
        return EdgeProfiles.model_validate(yaml.safe_load(f) or {})
