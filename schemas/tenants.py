"""Tenants and their collector API keys, as validated data.

Keys are stored only as SHA-256 hex digests; the collector hashes the presented key and
looks the digest up, so the config file holds no secret. Generate a digest with
    tokenpulse key-hash <key>

Each span is stamped with a non-secret id of the key that sent it (`api_key_id`), so spend
and budgets can be split per key: the key's configured name (`key_names: {digest: name}`),
else `sha256:` and the digest's first 12 hex digits. Never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

DEMO_TENANTS_FILE = Path(__file__).with_name("tenants.demo.yaml")
KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # TokenSpan.api_key_id
_KEY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$"  # no ":" so a name never looks like a digest id
DIGEST_ID_CHARS = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    api_key_sha256: tuple[str, ...] = Field(min_length=1)
    # Optional readable names for keys (digest -> name, e.g. "ci-bot"), stamped on spans.
    key_names: dict[str, str] = Field(default_factory=dict)
    # Which team owns each app (OTel `service.name` -> team), for spans that carry no
    # tokenpulse.team attribute (stock instrumentations never do): otherwise "unassigned".
    service_teams: dict[str, str] = Field(default_factory=dict)
    # (Content capture is not offered: prompts and completions are never copied into events.)
    # Set on the copy tenant_for_key returns: which of the tenant's keys authenticated the request.
    _authenticated_key_id: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _hex_digests(self) -> Tenant:
        for d in self.api_key_sha256:
            if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
                raise ValueError(f"tenant {self.id}: {d[:12]}... is not a lowercase SHA-256 hex digest")
        for d, name in self.key_names.items():
            if d not in self.api_key_sha256:
                raise ValueError(f"tenant {self.id}: key_names lists {d[:12]}..., "
                                 "which is not one of its api_key_sha256")
            if not re.fullmatch(_KEY_NAME, name):
                raise ValueError(f"tenant {self.id}: key name {name!r} must match {_KEY_NAME}")
        if len(set(self.key_names.values())) != len(self.key_names):
            raise ValueError(f"tenant {self.id}: two keys share a name")
        for service, team in self.service_teams.items():
            if not (0 < len(service.strip()) <= 256 and 0 < len(team.strip()) <= 256) or team != team.strip():
                raise ValueError(f"tenant {self.id}: service_teams {service!r}: {team!r} needs a service name and "
                                 "a team label of 1-256 characters without surrounding spaces")
        return self

    def key_id(self, digest: str) -> str:
        """The non-secret id spans carry for the key with this digest."""
        return self.key_names.get(digest) or f"sha256:{digest[:DIGEST_ID_CHARS]}"

    @property
    def api_key_id(self) -> str | None:
        """The id of the key that authenticated this request (None if not from tenant_for_key)."""
        return self._authenticated_key_id


class TenantDirectory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: tuple[Tenant, ...]

    @model_validator(mode="after")
    def _unique(self) -> TenantDirectory:
        ids = [t.id for t in self.tenants]
        digests = [d for t in self.tenants for d in t.api_key_sha256]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate tenant ids")
        if len(set(digests)) != len(digests):
            raise ValueError("one API key is assigned to more than one tenant")
        return self

    def tenant_for_key(self, presented_key: str) -> Tenant | None:
        digest = hash_key(presented_key)
        for t in self.tenants:
            for d in t.api_key_sha256:
                if hmac.compare_digest(d, digest):
                    bound = t.model_copy()
                    bound._authenticated_key_id = t.key_id(d)
                    return bound
        return None


def load_tenants(path: Path | str) -> TenantDirectory:
    with open(path) as f:
        return TenantDirectory.model_validate(yaml.safe_load(f))
