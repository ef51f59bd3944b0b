"""How each sender writes an LLM call on the wire, as validated data (schemas/senders.yaml).

Instrumentation packages disagree on attribute names and on what a count means: OpenLIT's
Anthropic spans count input tokens without the cache reads and writes, OpenLLMetry names
reasoning tokens `gen_ai.usage.reasoning_tokens`, the anthropic SDK's own spans call cache
writes `gen_ai.usage.cache_write.input_tokens`. A sender is recognised by the span's
instrumentation scope (name, optional version range), optionally narrowed to one provider;
the first matching entry applies, and `defaults` (the OTel GenAI semantic conventions plus
the legacy names still in the wild) apply to everything else. Every entry says where its
facts come from (`evidence`), as the price catalog does.

What a sender's conventions decide, per span (core/genai_mapping.py):
  * which attribute names carry each token class (first present wins);
  * whether input tokens include the cache reads/writes (semconv) or exclude them, and
    whether output tokens include the reasoning tokens;
  * `preference`: when two spans describe one provider call (an instrumentation's span
    beside the provider SDK's own), the stream keeps the one from the preferred sender.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_SENDERS_FILE = Path(__file__).with_name("senders.yaml")
_STRICT = ConfigDict(extra="forbid", frozen=True)
USAGE_CLASSES = ("input", "output", "cache_read_input", "cache_creation_input", "reasoning_output")


class UsageKeys(BaseModel):
    """Attribute names per token class, in the order they are tried. A sender lists only the
    classes it spells differently; the rest come from `defaults`."""

    model_config = _STRICT
    input: tuple[str, ...] | None = None
    output: tuple[str, ...] | None = None
    cache_read_input: tuple[str, ...] | None = None
    cache_creation_input: tuple[str, ...] | None = None
    reasoning_output: tuple[str, ...] | None = None


class SenderMatch(BaseModel):
    """Which spans an entry applies to. Scope names are exact; prefixes match the start."""

    model_config = _STRICT
    scope: tuple[str, ...] = ()
    scope_prefix: tuple[str, ...] = ()
    # PEP 440 specifier on the scope version, e.g. "<0.44"; spans without a version never match one.
    version: str | None = None
    # Only spans of this provider (gen_ai.provider.name after alias mapping), e.g. "anthropic".
    provider: str | None = None
    # The resource (or span) attribute telemetry.sdk.name, e.g. "openlit".
    sdk_name: str | None = None

    @field_validator("version")
    @classmethod
    def _specifier(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                SpecifierSet(v)
            except InvalidSpecifier:
                raise ValueError(f"version {v!r} is not a PEP 440 specifier such as '<0.44' or '>=2,<3'") from None
        return v

    @model_validator(mode="after")
    def _something(self) -> SenderMatch:
        if not (self.scope or self.scope_prefix or self.provider or self.sdk_name):
            raise ValueError("match needs at least one of scope, scope_prefix, provider, sdk_name")
        return self


class Sender(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$")
    description: str = Field(min_length=1)
    evidence: str = Field(min_length=1, description="versions tried and how (docs/conformance.md)")
    match: SenderMatch
    usage: UsageKeys = UsageKeys()
    input_includes_cache: bool | None = None
    output_includes_reasoning: bool | None = None
    preference: int | None = Field(default=None, ge=0, le=100)


class Defaults(BaseModel):
    model_config = _STRICT
    usage: UsageKeys
    input_includes_cache: bool = True
    output_includes_reasoning: bool = True
    preference: int = Field(default=10, ge=0, le=100)

    @model_validator(mode="after")
    def _complete(self) -> Defaults:
        missing = [c for c in USAGE_CLASSES if not getattr(self.usage, c)]
        if missing:
            raise ValueError(f"defaults.usage must name attributes for every class; missing {missing}")
        return self


class Conventions(BaseModel):
    """The resolved conventions for one span: every field set."""

    model_config = _STRICT
    sender: str
    usage: dict[str, tuple[str, ...]]
    input_includes_cache: bool
    output_includes_reasoning: bool
    preference: int


class SenderCatalog(BaseModel):
    model_config = _STRICT
    defaults: Defaults
    senders: tuple[Sender, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> SenderCatalog:
        names = [s.name for s in self.senders]
        dup = {n for n in names if names.count(n) > 1}
        if dup or "default" in names:
            raise ValueError(f"sender names must be unique and not 'default': {sorted(dup) or ['default']}")
        return self

    def conventions_for(self, scope_name: str, scope_version: str, provider: str | None,
                        sdk_name: str | None) -> Conventions:
        """First matching sender's conventions over the defaults (memoized: few distinct keys)."""
        return _resolve(self, scope_name, scope_version, provider or "", sdk_name or "")

    def __hash__(self) -> int:  # frozen model: hash by identity is enough for the memo
        return id(self)


@lru_cache(maxsize=4096)
def _resolve(catalog: SenderCatalog, scope_name: str, scope_version: str, provider: str, sdk_name: str) -> Conventions:
    d = catalog.defaults
    for s in catalog.senders:
        if _matches(s.match, scope_name, scope_version, provider, sdk_name):
            usage = {c: getattr(s.usage, c) or getattr(d.usage, c) for c in USAGE_CLASSES}
            return Conventions(
                sender=s.name, usage=usage,
                input_includes_cache=d.input_includes_cache if s.input_includes_cache is None else s.input_includes_cache,
                output_includes_reasoning=(d.output_includes_reasoning if s.output_includes_reasoning is None
                                           else s.output_includes_reasoning),
                preference=d.preference if s.preference is None else s.preference)
    return Conventions(sender="default", usage={c: getattr(d.usage, c) for c in USAGE_CLASSES},
                       input_includes_cache=d.input_includes_cache,
                       output_includes_reasoning=d.output_includes_reasoning, preference=d.preference)


def _matches(m: SenderMatch, scope_name: str, scope_version: str, provider: str, sdk_name: str) -> bool:
    if (m.scope or m.scope_prefix) and not (scope_name in m.scope or scope_name.startswith(m.scope_prefix)):
        return False
    if m.provider is not None and provider != m.provider:
        return False
    if m.sdk_name is not None and sdk_name != m.sdk_name:
        return False
    if m.version is not None:
        try:
            return Version(scope_version) in SpecifierSet(m.version)
        except InvalidVersion:
            return False
    return True


def load_senders(path: Path | str = DEFAULT_SENDERS_FILE) -> SenderCatalog:
    with open(path) as f:
        return SenderCatalog.model_validate(yaml.safe_load(f))
