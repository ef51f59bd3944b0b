import json
from decimal import Decimal
from pathlib import Path

import pytest

from otlp_builders import LLM_ATTRS
from tokenpulse.collectors.genai_mapping import Rejection, map_span
from tokenpulse.collectors.otlp_decode import OtlpSpan, decode
from tokenpulse.schemas.events import TokenSpan

GOLDEN = Path(__file__).parents[2] / "fixtures" / "otlp_genai.json"


def otlp(attrs: dict, resource: dict | None = None, status_code: int = 0) -> OtlpSpan:
    return OtlpSpan(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, name="chat", start_ns=10**18,
                    end_ns=10**18 + 2 * 10**9, status_code=status_code, attributes=attrs,
                    resource=resource or {"service.name": "app"})


def test_golden_json_maps_to_a_token_span_under_the_keys_tenant():
    llm, plain = decode(GOLDEN.read_bytes(), "application/json")
    event = map_span(llm, tenant="acme", received_ms=1)
    assert isinstance(event, TokenSpan)
    assert event.tenant == "acme"  # the payload's "tenant" attribute is ignored
    assert (event.service, event.team, event.session_id, event.agent_name) == ("support-bot", "support", "conv-42", "triage")
    assert event.model == "claude-sonnet-4-20250514"  # the response model is the one priced
    assert (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == (12000, 8000, 1000)
    assert event.runtime_kind.value == "cloud"
    assert "secret prompt" not in event.model_dump_json()
    assert map_span(plain, tenant="acme", received_ms=1) is None  # not an LLM call: ignored


def test_edge_runtime_is_inferred_from_local_providers_and_host():
    event = map_span(otlp({**LLM_ATTRS, "gen_ai.provider.name": "ollama"}, {"service.name": "a", "host.name": "box-7"}),
                     tenant="t", received_ms=1)
    assert (event.runtime_kind.value, event.runtime_id) == ("edge", "box-7")


def test_legacy_attribute_names_still_map():
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3}
    event = map_span(otlp(attrs), tenant="t", received_ms=1)
    assert (event.provider, event.input_tokens, event.output_tokens) == ("openai", 7, 3)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"gen_ai.usage.input_tokens": -5}, "is negative"),
        ({"gen_ai.usage.input_tokens": None}, "missing token count gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.output_tokens": "many"}, "must be a whole number"),
        ({"gen_ai.usage.output_tokens": True}, "must be a whole number"),
        ({"gen_ai.usage.output_tokens": 2.5}, "must be a whole number"),
        ({"gen_ai.usage.cache_read.input_tokens": 5000}, "exceed input_tokens"),
        ({"gen_ai.provider.name": None}, "missing gen_ai.provider.name"),
        ({"gen_ai.request.model": None}, "cannot price the call"),
        ({"gen_ai.request.model": "m" * 10_000}, "at most 256 characters"),
        ({"tokenpulse.runtime.kind": "mainframe"}, "not one of cloud, edge"),
    ],
)
def test_bad_spans_are_rejected_with_a_reason(change, reason):
    attrs = {k: v for k, v in {**LLM_ATTRS, **change}.items() if v is not None}
    result = map_span(otlp(attrs), tenant="t", received_ms=1)
    assert isinstance(result, Rejection)
    assert reason in result.reason
    dead = result.dead_letter("t", 1)
    assert dead.reason == result.reason and dead.stage == "collector"


def test_failed_call_without_usage_is_kept_at_zero_tokens():
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "error.type": "rate_limited"}
    event = map_span(otlp(attrs, status_code=2), tenant="t", received_ms=1)
    assert isinstance(event, TokenSpan)
    assert (event.status.value, event.input_tokens, event.error_type) == ("error", 0, "rate_limited")


def test_dead_letter_excerpt_never_carries_content():
    attrs = {**LLM_ATTRS, "gen_ai.usage.input_tokens": -1, "gen_ai.input.messages": "my secret prompt",
             "big": "x" * 5000}
    excerpt = map_span(otlp(attrs), tenant="t", received_ms=1).dead_letter("t", 1).excerpt
    assert "my secret prompt" not in excerpt and "<content dropped>" in excerpt
    assert len(excerpt) <= 1500
    json.loads(excerpt)  # still readable


def test_separately_reported_cache_and_reasoning_counts_are_added_in_once():
    from tokenpulse.collectors.genai_mapping import UsageConventions
    from tokenpulse.schemas.pricing import call_cost_usd, load_price_table

    # Anthropic's usage object: input_tokens excludes the 8000 cache reads and 1000 cache writes.
    attrs = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4",
             "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.cache_read.input_tokens": 8000,
             "gen_ai.usage.cache_creation.input_tokens": 1000, "gen_ai.usage.output_tokens": 900}
    assert isinstance(map_span(otlp(attrs), tenant="t", received_ms=1), Rejection)  # semconv reading: impossible
    conv = UsageConventions(cache_separate=frozenset({"anthropic"}))
    event = map_span(otlp(attrs), tenant="t", received_ms=1, conventions=conv)
    assert (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == (12000, 8000, 1000)
    price = load_price_table().price_at("anthropic", "claude-sonnet-4", 1760000000000)
    # each class priced once: 3000 at 3.00 + 8000 at 0.30 + 1000 at 3.75 + 900 at 15.00 (per million)
    assert call_cost_usd(price, input_tokens=event.input_tokens, cached_input_tokens=8000,
                         cache_creation_input_tokens=1000, output_tokens=900) == Decimal("0.02865")

    gem = {"gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-pro",
           "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 50,
           "gen_ai.usage.reasoning.output_tokens": 400}
    event = map_span(otlp(gem), tenant="t", received_ms=1,
                     conventions=UsageConventions(reasoning_separate=frozenset({"gcp.gemini"})))
    assert (event.output_tokens, event.reasoning_tokens) == (450, 400)


@pytest.mark.parametrize("extra, tier", [
    ({}, "standard"), ({"tokenpulse.request.batch": True}, "batch"),
    ({"openai.response.service_tier": "flex"}, "flex"), ({"openai.request.service_tier": "auto"}, "standard"),
])
def test_service_tier_is_read_from_the_span(extra, tier):
    assert map_span(otlp({**LLM_ATTRS, **extra}), tenant="t", received_ms=1).service_tier == tier


def test_call_fingerprint_passed_through_hashed_or_derived_from_content_without_keeping_content():
    base = LLM_ATTRS
    ours = map_span(otlp({**base, "tokenpulse.call.fingerprint": "0123456789abcdef"}), tenant="acme", received_ms=1)
    assert ours.call_fingerprint == "0123456789abcdef"
    foreign = map_span(otlp({**base, "tokenpulse.call.fingerprint": "has spaces / and slashes"}), tenant="acme", received_ms=1)
    assert foreign.call_fingerprint and " " not in foreign.call_fingerprint
    msgs = '[{"role": "user", "content": "summarize ticket 1234"}]'
    derived = map_span(otlp({**base, "gen_ai.input.messages": msgs}), tenant="acme", received_ms=1)
    again = map_span(otlp({**base, "gen_ai.input.messages": msgs.replace("1234", "9876")}), tenant="acme", received_ms=1)
    other = map_span(otlp({**base, "gen_ai.input.messages": msgs.replace("summarize", "translate")}), tenant="acme", received_ms=1)
    assert derived.call_fingerprint == again.call_fingerprint != other.call_fingerprint
    assert "summarize" not in derived.model_dump_json()
    assert map_span(otlp(base), tenant="acme", received_ms=1).call_fingerprint is None
