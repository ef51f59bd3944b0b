"""Runaway-loop detector rules, as validated data (schemas/detectors.yaml).

`rules` are the defaults for every session; `overrides` change some fields of some rules
for a tenant, an app (`service`) or one agent. The most specific matching override wins
field by field (tenant < tenant+service < tenant+service+agent). Every override is merged
and re-validated at load time, so a typo fails `tokenpulse config-check`, not a page.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .alerts import AlertAction, Severity

DEFAULT_DETECTORS_FILE = Path(__file__).with_name("detectors.yaml")
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Rule(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    severity: Severity = Severity.critical
    action: AlertAction = AlertAction.notify


class RepetitionRule(Rule):
    """The same call fingerprint at least `min_repeats` times within `window_s`."""

    min_repeats: int = Field(default=6, ge=2)
    window_s: int = Field(default=120, ge=1)


class TokenVelocityRule(Rule):
    """Tokens in any `window_s` of the session above `max_tokens`, or (once the agent has a
    baseline) tokens per minute above `baseline_factor` x the agent's usual per-session rate
    and above `baseline_min_tokens`."""

    window_s: int = Field(default=60, ge=1)
    max_tokens: int = Field(default=2_000_000, ge=1)
    baseline_factor: Decimal = Field(default=Decimal(10), gt=1)
    baseline_min_tokens: int = Field(default=200_000, ge=1)
    baseline_min_minutes: int = Field(default=10, ge=1)


class ContextGrowthRule(Rule):
    """Input tokens rising call over call (by at least `min_step_tokens`) for
    `min_consecutive_steps` steps *while the agent repeats itself*: at least
    `min_repeated_percent` % of the run's calls have a newest turn (fingerprint) seen earlier
    in the run. Growth alone is every agent that keeps its history, i.e. an agent working;
    growth with repeated turns is one feeding the same action and result back. Calls without
    a fingerprint (no content captured) never count as repeated. 0 judges growth alone."""

    min_consecutive_steps: int = Field(default=25, ge=2)
    min_step_tokens: int = Field(default=1, ge=1)
    min_repeated_percent: int = Field(default=50, ge=0, le=100)


class PingPongRule(Rule):
    """Two fingerprints alternating A, B, A, B, ... for `min_cycles` cycles."""

    min_cycles: int = Field(default=5, ge=2)


class ToolFailuresRule(Rule):
    """One tool failing with the same error (OTel `execute_tool` spans: gen_ai.tool.name,
    status ERROR, error.type) `min_consecutive` times in a row, with no success of that tool
    in between. Needs no prompt content: it works with content capture off. Arguments are not
    compared (opt-in content; retry loops often change a counter in them)."""

    min_consecutive: int = Field(default=6, ge=2)


class RepeatedStepRule(Rule):
    """The same step again, seen in token counts alone: `min_repeats` consecutive LLM calls
    each growing the input by the same number of tokens (at least `min_growth_tokens`) and
    producing the same number of output tokens as the call two before it (period 1: one
    step repeated; period 2: two steps alternating). A model that repeats itself appends the
    same tool call and result every step, so both counts repeat exactly; an agent making
    progress appends results of varying size. Needs no content. Misses loops whose output
    varies (hidden reasoning tokens, paraphrased thoughts) and pollers with growing output."""

    min_repeats: int = Field(default=6, ge=2)
    min_growth_tokens: int = Field(default=1, ge=1)


class StepCountRule(Rule):
    max_steps: int = Field(default=500, ge=1)


class SessionCostRule(Rule):
    max_usd: Decimal = Field(default=Decimal("25"), gt=0, decimal_places=6)


class DetectorRules(BaseModel):
    model_config = _STRICT
    repetition: RepetitionRule = RepetitionRule()
    token_velocity: TokenVelocityRule = TokenVelocityRule(severity=Severity.warning)
    context_growth: ContextGrowthRule = ContextGrowthRule(severity=Severity.warning)
    ping_pong: PingPongRule = PingPongRule()
    tool_failures: ToolFailuresRule = ToolFailuresRule()
    repeated_step: RepeatedStepRule = RepeatedStepRule(severity=Severity.warning)
    step_count: StepCountRule = StepCountRule(severity=Severity.warning)
    session_cost: SessionCostRule = SessionCostRule()


RULE_NAMES = tuple(DetectorRules.model_fields)


class Timing(BaseModel):
    """Time semantics of the detectors (see stream_jobs/loop_detection.py)."""

    model_config = _STRICT
    # Sequence rules (context growth, ping-pong) judge calls only once the watermark has
    # passed them: arrivals up to this much out of order are put back in order.
    out_of_order_ms: int = Field(default=2000, ge=0)
    # Evidence older than this when detected (a backlog forwarded late) is recorded with
    # severity info instead of paging: it is history, not an emergency.
    max_evidence_age_s: int = Field(default=600, ge=1)
    # An open incident resolves after the session has been quiet this long.
    resolve_after_quiet_s: int = Field(default=120, ge=1)
    # A session's state is dropped after this much silence (bounded state).
    session_ttl_s: int = Field(default=3600, ge=1)
    # Newest calls kept per session for the windowed rules (bounded state).
    max_calls_per_session: int = Field(default=256, ge=8, le=10_000)


class Match(BaseModel):
    model_config = _STRICT
    tenant: str
    service: str | None = None
    agent_name: str | None = None

    @model_validator(mode="after")
    def _agent_needs_service(self) -> Match:
        if self.agent_name and not self.service:
            raise ValueError("an override for agent_name also needs service")
        return self

    @property
    def specificity(self) -> int:
        return 1 + (self.service is not None) + (self.agent_name is not None)

    def covers(self, tenant: str, service: str | None, agent_name: str | None) -> bool:
        return (self.tenant == tenant and self.service in (None, service)
                and self.agent_name in (None, agent_name))


class Override(BaseModel):
    model_config = _STRICT
    match: Match
    rules: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _known_rules(self) -> Override:
        unknown = set(self.rules) - set(RULE_NAMES)
        if unknown:
            raise ValueError(f"unknown rule(s) {sorted(unknown)}; known: {list(RULE_NAMES)}")
        return self


class DetectorConfig(BaseModel):
    model_config = _STRICT
    timing: Timing = Timing()
    rules: DetectorRules = DetectorRules()
    overrides: tuple[Override, ...] = ()

    @model_validator(mode="after")
    def _overrides_merge(self) -> DetectorConfig:
        errors = []
        for i, o in enumerate(self.overrides):
            try:
                _merge(self.rules, [o])
            except ValidationError as exc:
                errors.append(f"overrides[{i}] ({o.match.tenant}/{o.match.service or '*'}): {exc}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    _resolved: dict = PrivateAttr(default_factory=dict)

    def rules_for(self, tenant: str, service: str | None, agent_name: str | None) -> DetectorRules:
        """The rules in force for one session (cached: called for every call)."""
        key = (tenant, service, agent_name)
        rules = self._resolved.get(key)
        if rules is None:
            matching = [o for o in self.overrides if o.match.covers(tenant, service, agent_name)]
            rules = _merge(self.rules, matching) if matching else self.rules
            if len(self._resolved) < 100_000:
                self._resolved[key] = rules
        return rules

    def jvm_json(self) -> str:
        """This config for the JVM detector (stream_jobs/jvm/.../loops/DetectorRules.java),
        which reads but does not validate: each override's fields are handed over as they
        came out of validation (a decimal as its string), so both sides see the same values."""
        doc = self.model_dump(mode="json")
        for o, dumped in zip(self.overrides, doc["overrides"]):
            merged = _merge(self.rules, [o]).model_dump(mode="json")
            dumped["rules"] = {rule: {f: merged[rule][f] for f in fields} for rule, fields in o.rules.items()}
        return json.dumps(doc)


def _merge(base: DetectorRules, overrides: list[Override]) -> DetectorRules:
    doc = base.model_dump()
    for o in sorted(overrides, key=lambda o: o.match.specificity):
        for rule, fields in o.rules.items():
            doc[rule] = {**doc[rule], **fields}
    return DetectorRules.model_validate(doc)


def load_detector_config(path: Path | str = DEFAULT_DETECTORS_FILE) -> DetectorConfig:
    with open(path) as f:
        return DetectorConfig.model_validate(yaml.safe_load(f) or {})
