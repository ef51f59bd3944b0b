"""Tenants and their collector API keys, as validated data.

Keys are stored only as SHA-256 hex digests; the collector hashes the presented key and
looks the digest up, so the config file holds no secret. Generate a digest with
    tokenpulse key-hash <key>
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEMO_TENANTS_FILE = Path(__file__).with_name("tenants.demo.yaml")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    api_key_sha256: tuple[str, ...] = Field(min_length=1)
    # (Content capture is not offered: prompts and completions are never copied into events.)

    @model_validator(mode="after")
    def _hex_digests(self) -> "Tenant":
        for d in self.api_key_sha256:
            if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
                raise ValueError(f"tenant {self.id}: {d[:12]}... is not a lowercase SHA-256 hex digest")
        return self


class TenantDirectory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: tuple[Tenant, ...]

    @model_validator(mode="after")
    def _unique(self) -> "TenantDirectory":
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
                    return t
        return None


def load_tenants(path: Path | str) -> TenantDirectory:
    with open(path) as f:
        return TenantDirectory.model_validate(yaml.safe_load(f))
