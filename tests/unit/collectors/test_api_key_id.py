"""Each span carries the non-secret id of the API key that sent it (issue #7, budgets per key):
the key's configured name, else "sha256:" + 12 hex digits of its digest; never the key."""

import pytest
from pydantic import ValidationError
from testkit.collector_fakes import MemoryWriter
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key

CI, LAPTOP = hash_key("k-acme-ci"), hash_key("k-acme-laptop")
TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[CI, LAPTOP], key_names={CI: "ci-bot"})])


def sent_with(span_factory, key: str):
    span_factory.span(attributes=LLM_ATTRS)
    w = MemoryWriter()
    reply = TraceReceiver(TENANTS, w, max_body_bytes=1 << 20).export(
        span_factory.protobuf(), content_type="application/x-protobuf", content_encoding="", api_key=key)
    assert reply.status == 200
    return w.spans


def test_named_key_stamps_its_name(span_factory):
    assert [(s.tenant, s.api_key_id) for s in sent_with(span_factory, "k-acme-ci")] == [("acme", "ci-bot")]


def test_unnamed_key_stamps_a_digest_prefix_never_the_key(span_factory):
    (span,) = sent_with(span_factory, "k-acme-laptop")
    assert span.api_key_id == "sha256:" + LAPTOP[:12]
    assert "k-acme-laptop" not in span.model_dump_json()


def test_the_directory_itself_is_not_bound_to_a_key():
    assert TENANTS.tenants[0].api_key_id is None
    assert TENANTS.tenant_for_key("k-acme-ci").api_key_id == "ci-bot"
    assert TENANTS.tenant_for_key("k-acme-laptop").api_key_id == "sha256:" + LAPTOP[:12]
    assert TENANTS.tenant_for_key("k-acme-ci").api_key_id == "ci-bot"  # each lookup its own copy


@pytest.mark.parametrize("names, message", [
    ({hash_key("other"): "x"}, "not one of its api_key_sha256"),
    ({CI: "has space"}, "must match"),
    ({CI: "sha256:abc"}, "must match"),  # names cannot pose as digest ids
    ({CI: "same", LAPTOP: "same"}, "share a name"),
])
def test_key_names_are_validated(names, message):
    with pytest.raises(ValidationError, match=message):
        Tenant(id="acme", api_key_sha256=[CI, LAPTOP], key_names=names)
