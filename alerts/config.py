"""Alert hooks, declared as data: which endpoints hear about which alerts, and how to retry.

Flow: the hooks YAML is parsed into `HookSpec`s (the file's shape, validated field by
field), then each spec is resolved against an explicit `environ` mapping into a `Hook`
(the runtime shape: a concrete URL and the secrets it needs). Secrets never sit in the
file, only the names of the environment variables holding them. Resolution happens once,
at load time; the entry point passes os.environ, tests pass a dict.

Every problem in the file is reported at once, in one `HooksConfigError`, each line
naming the hook and the field or variable at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from tokenpulse.core.backoff import doubling_delay_s
from tokenpulse.schemas.alerts import SEVERITY_RANK, Alert, Severity

HookKind = Literal["webhook", "slack", "pagerduty"]
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class HooksConfigError(ValueError):
    """The hooks file is invalid; the message lists every problem found."""


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=6, ge=1, le=100)
    initial_backoff_ms: int = Field(default=200, ge=0)
    max_backoff_ms: int = Field(default=5000, ge=0)
    timeout_s: float = Field(default=5, gt=0, le=120)  # per HTTP attempt

    @model_validator(mode="after")
    def _backoff_bounds(self) -> RetryPolicy:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("max_backoff_ms must be >= initial_backoff_ms")
        return self

    def backoff_s(self, failed_attempts: int) -> float:
        """Wait after the n-th failed attempt: doubling from initial, capped at max.

        No jitter: each hook has exactly one sender, so there is no herd to spread out.
        """
        return doubling_delay_s(failed_attempts, self.initial_backoff_ms / 1000, self.max_backoff_ms / 1000)


class HookSpec(BaseModel):
    """One hook as written in the hooks file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: HookKind
    url: str | None = None
    url_env: str | None = None  # read the URL from this variable instead (Slack URLs are secrets)
    secret_env: str | None = None  # webhook: variable holding the HMAC signing secret
    routing_key_env: str | None = None  # pagerduty: variable holding the integration key
    min_severity: Severity = Severity.warning
    tenants: tuple[str, ...] = ()  # empty: every tenant
    kinds: tuple[str, ...] = ()  # empty: every alert kind
    retry: RetryPolicy = RetryPolicy()

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> HookSpec:
        problems = []
        if self.url and self.url_env:
            problems.append("set url or url_env, not both")
        if not (self.url or self.url_env) and self.kind != "pagerduty":
            problems.append(f"a {self.kind} hook needs url or url_env")
        if self.url and not _is_http_url(self.url):
            problems.append(f"url must be an http(s) URL, got {self.url!r}")
        if self.kind == "webhook" and not self.secret_env:
            problems.append("a webhook hook needs secret_env (receivers verify the HMAC signature)")
        if self.kind != "webhook" and self.secret_env:
            problems.append("secret_env is only used by webhook hooks")
        if self.kind == "pagerduty" and not self.routing_key_env:
            problems.append("a pagerduty hook needs routing_key_env")
        if self.kind != "pagerduty" and self.routing_key_env:
            problems.append("routing_key_env is only used by pagerduty hooks")
        if problems:
            raise ValueError("; ".join(problems))  # the error location names the hook
        return self


class HooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hooks: tuple[HookSpec, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> HooksFile:
        names = [h.name for h in self.hooks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate hook names: {', '.join(duplicates)}")
        return self


class Hook(BaseModel):
    """A hook ready to use: URL and secrets resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: HookKind
    url: str
    secret: SecretStr | None = None
    routing_key: SecretStr | None = None
    min_severity: Severity = Severity.warning
    tenants: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()

    def accepts(self, alert: Alert) -> bool:
        """Whether this hook wants to hear about the alert's incident at all."""
        return (SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]
                and (not self.tenants or alert.tenant in self.tenants)
                and (not self.kinds or alert.kind in self.kinds))


class HooksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hooks: tuple[Hook, ...] = ()

    def names(self) -> list[str]:
        return [h.name for h in self.hooks]


def resolve_hook(spec: HookSpec, environ: Mapping[str, str]) -> tuple[Hook | None, list[str]]:
    """Read the variables a spec names; returns the hook, or None and what is missing."""
    problems: list[str] = []

    def from_env(var: str | None, field: str) -> str | None:
        if var is None:
            return None
        value = environ.get(var, "")
        if not value:
            problems.append(f"hook {spec.name!r}: environment variable {var} ({field}) is not set or empty")
            return None
        return value

    url = from_env(spec.url_env, "url_env") if spec.url_env else (spec.url or PAGERDUTY_EVENTS_URL)
    if spec.url_env and url and not _is_http_url(url):
        problems.append(f"hook {spec.name!r}: {spec.url_env} (url_env) does not hold an http(s) URL")
    secret = from_env(spec.secret_env, "secret_env")
    routing_key = from_env(spec.routing_key_env, "routing_key_env")
    if problems:
        return None, problems
    hook = Hook(name=spec.name, kind=spec.kind, url=url,
                secret=SecretStr(secret) if secret else None,
                routing_key=SecretStr(routing_key) if routing_key else None,
                min_severity=spec.min_severity, tenants=spec.tenants, kinds=spec.kinds, retry=spec.retry)
    return hook, []


def hooks_from_data(data: Any, *, environ: Mapping[str, str], source: str = "hooks config") -> HooksConfig:
    """Validate parsed YAML and resolve every hook's variables, reporting all problems at once."""
    if not isinstance(data, dict):
        raise HooksConfigError(f"{source}: expected a mapping with a `hooks:` list")
    try:
        parsed = HooksFile.model_validate(data)
    except ValidationError as exc:
        raise HooksConfigError(f"{source} is invalid:\n" + _describe(exc, data)) from None
    hooks, problems = [], []
    for spec in parsed.hooks:
        hook, missing = resolve_hook(spec, environ)
        problems += missing
        if hook:
            hooks.append(hook)
    if problems:
        raise HooksConfigError(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return HooksConfig(hooks=tuple(hooks))


def load_hooks(path: Path | str, *, environ: Mapping[str, str]) -> HooksConfig:
    with open(path) as f:
        data = yaml.safe_load(f)
    return hooks_from_data(data, environ=environ, source=f"hooks file {path}")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _describe(exc: ValidationError, data: dict) -> str:
    """One line per pydantic error; 'hooks.1.min_severity' becomes 'hooks.1 (ops-pager).min_severity'."""
    entries = data.get("hooks") if isinstance(data.get("hooks"), list) else []
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) >= 2 and loc[0] == "hooks" and err["loc"][1] in range(len(entries)):
            name = entries[err["loc"][1]].get("name") if isinstance(entries[err["loc"][1]], dict) else None
            if name:
                loc[1] += f" ({name})"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"  - {'.'.join(loc)}: {message}" if loc else f"  - {message}")
    return "\n".join(lines)
