"""Alert events and dispatch outcomes, as carried on Kafka and stored in ClickHouse.

An incident has one `dedupe_key` for its whole life (for a runaway loop: tenant, rule and
session). The stream job emits an `Alert` with state `open` once when the rule first
holds, and one with state `resolved` when it stops holding; both carry the same
`alert_id`. Hooks page on `open`, resolve on `resolved`, and never page twice for one
`alert_id`. Money in `evidence` is a decimal string, never a float.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION = 1
EvidenceValue = str | int | float | bool | None


class AlertState(str, Enum):
    open = "open"
    resolved = "resolved"


class Severity(str, Enum):
    info = "info"  # recorded, shown in queries; hooks skip it by default (e.g. stale evidence)
    warning = "warning"
    critical = "critical"


class AlertAction(str, Enum):
    notify = "notify"  # tell people
    stop = "stop"  # also trip the session's circuit breaker (apps that opted in stop calling)


SEVERITY_RANK = {Severity.info: 1, Severity.warning: 2, Severity.critical: 3}


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    alert_id: str = Field(min_length=1, max_length=64)
    dedupe_key: str = Field(min_length=1, max_length=512)
    state: AlertState
    kind: str = Field(min_length=1, max_length=64)  # "runaway_loop", later "budget", "growth"
    rule: str = Field(min_length=1, max_length=64)  # the detector: "repetition", "ping_pong", ...
    severity: Severity
    action: AlertAction = AlertAction.notify
    tenant: str = Field(min_length=1, max_length=256)
    service: str | None = Field(default=None, max_length=256)
    team: str | None = Field(default=None, max_length=256)
    agent_name: str | None = Field(default=None, max_length=256)
    session_id: str | None = Field(default=None, max_length=256)
    summary: str = Field(min_length=1, max_length=1000)
    evidence: dict[str, EvidenceValue] = {}
    opened_ms: int = Field(ge=0)  # event time of the span that made the rule hold
    resolved_ms: int | None = Field(default=None, ge=0)
    emitted_ms: int = Field(ge=0)  # wall clock when this state was emitted
    source: str = "loop-detector"

    def kafka_key(self) -> bytes:
        return self.dedupe_key.encode()


def alert_id_for(dedupe_key: str, opened_ms: int) -> str:
    """Deterministic, so a replayed emission carries the same id and is deduplicated."""
    return hashlib.sha256(f"{dedupe_key}|{opened_ms}".encode()).hexdigest()[:32]


class DispatchOutcome(BaseModel):
    """What happened when one hook was given one alert state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    alert_id: str
    dedupe_key: str
    tenant: str
    state: AlertState
    hook: str  # the hook's name from the hooks file
    hook_kind: Literal["webhook", "slack", "pagerduty"]
    outcome: Literal["delivered", "failed"]
    attempts: int = Field(ge=1)
    http_status: int | None = None
    error: str | None = Field(default=None, max_length=2000)
    first_attempt_ms: int = Field(ge=0)
    finished_ms: int = Field(ge=0)
