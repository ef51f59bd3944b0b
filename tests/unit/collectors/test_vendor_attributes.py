"""What instrumentation libraries send (OpenLLMetry, OpenLIT, older semconv) maps to the same
TokenSpan as the official names: underscore cache counts, provider spellings, legacy
gen_ai.system values; and what is deliberately not read."""

from __future__ import annotations

import json

import pytest
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.core.genai_mapping import Rejection, map_span
from tokenpulse.core.otlp_decode import OtlpSpan
from tokenpulse.schemas.events import TokenSpan
from tokenpulse.schemas.pricing import load_price_table


def otlp(attrs: dict, resource: dict | None = None, scope: str = "") -> OtlpSpan:
    return OtlpSpan(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, name="chat", start_ns=10**18,
                    end_ns=10**18 + 2 * 10**9, status_code=0, attributes=attrs,
                    resource=resource or {"service.name": "app"}, scope_name=scope)


def mapped(attrs: dict, **kw) -> TokenSpan:
    event = map_span(otlp(attrs), tenant="t", received_ms=1, **kw)
    assert isinstance(event, TokenSpan), event
    return event


# --- OpenLLMetry's underscore cache counts --------------------------------------------------

def test_openllmetry_anthropic_underscore_cache_counts_are_subsets_of_its_input_count():
    # OpenLLMetry's anthropic instrumentation sends input = input + cache reads + cache writes.
    attrs = {"gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-sonnet-4",
             "gen_ai.usage.prompt_tokens": 12000, "gen_ai.usage.completion_tokens": 900,
             "gen_ai.usage.cache_read_input_tokens": 8000, "gen_ai.usage.cache_creation_input_tokens": 1000}
    event = mapped(attrs)
    assert (event.provider, event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == \
        ("anthropic", 12000, 8000, 1000)


def test_openllmetry_openai_underscore_cache_read_is_a_subset():
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200,
             "gen_ai.usage.output_tokens": 50, "gen_ai.usage.cache_read_input_tokens": 1000}
    assert mapped(attrs).cached_input_tokens == 1000


def test_official_names_win_over_underscore_spellings():
    attrs = {**LLM_ATTRS, "gen_ai.usage.cache_read.input_tokens": 300, "gen_ai.usage.cache_read_input_tokens": 999,
             "gen_ai.usage.cache_creation.input_tokens": 0, "gen_ai.usage.cache_creation_input_tokens": 999}
    event = mapped(attrs)
    assert (event.cached_input_tokens, event.cache_creation_input_tokens) == (300, 0)


def test_underscore_counts_follow_the_senders_conventions_and_are_validated():
    attrs = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4",
             "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 900,
             "gen_ai.usage.cache_read_input_tokens": 8000}
    assert isinstance(map_span(otlp(attrs), tenant="t", received_ms=1), Rejection)  # 8000 cached of 3000
    event = map_span(otlp(attrs, scope="openlit.instrumentation.anthropic"), tenant="t", received_ms=1)
    assert (event.input_tokens, event.cached_input_tokens) == (11000, 8000)
    bad = map_span(otlp({**attrs, "gen_ai.usage.cache_read_input_tokens": -1}), tenant="t", received_ms=1)
    assert isinstance(bad, Rejection) and "negative" in bad.reason


# --- provider names -----------------------------------------------------------------------

@pytest.mark.parametrize("sent, provider, runtime", [
    ("vLLM", "vllm", "edge"),            # OpenLIT
    ("Ollama", "ollama", "edge"),        # OpenLLMetry
    ("OpenAI", "openai", "cloud"),       # OpenLLMetry (haystack), older releases
    ("Anthropic", "anthropic", "cloud"),
    ("az.ai.openai", "azure.ai.openai", "cloud"),   # semconv < 1.37 gen_ai.system values
    ("az.ai.inference", "azure.ai.inference", "cloud"),
    ("gemini", "gcp.gemini", "cloud"),
    ("vertex_ai", "gcp.vertex_ai", "cloud"),
    ("xai", "x_ai", "cloud"),
    ("MistralAI", "mistral_ai", "cloud"),           # OpenLLMetry
    (" openai ", "openai", "cloud"),
])
@pytest.mark.parametrize("key", ["gen_ai.provider.name", "gen_ai.system"])
def test_provider_names_are_lower_cased_and_renamed_values_mapped(key, sent, provider, runtime):
    attrs = {k: v for k, v in LLM_ATTRS.items() if k != "gen_ai.provider.name"}
    event = map_span(otlp({**attrs, key: sent}, {"service.name": "a", "host.name": "box-1"}), tenant="t", received_ms=1)
    assert (event.provider, event.runtime_kind.value) == (provider, runtime)


def test_lower_cased_providers_still_find_their_prices():
    table = load_price_table()
    assert all(p.provider == p.provider.lower() for p in table.prices)  # the catalog is lower-case
    event = mapped({**LLM_ATTRS, "gen_ai.provider.name": "vLLM", "gen_ai.request.model": "qwen2.5-7b-instruct"})
    assert table.price_at(event.provider, event.model, 1760000000000) is not None
    event = mapped({**LLM_ATTRS, "gen_ai.system": "Gemini", "gen_ai.provider.name": None,
                    "gen_ai.request.model": "gemini-2.5-pro"})
    assert table.price_at(event.provider, event.model, 1760000000000) is not None


# --- service tier, content, and what is not read ------------------------------------------

def test_a_reported_non_openai_service_tier_is_read():
    assert mapped({**LLM_ATTRS, "tokenpulse.response.service_tier": "batch"}).service_tier == "batch"
    # OpenAI's own attribute comes first.
    assert mapped({**LLM_ATTRS, "openai.response.service_tier": "flex",
                   "tokenpulse.response.service_tier": "batch"}).service_tier == "flex"


def test_openllmetry_indexed_content_never_reaches_a_dead_letter():
    attrs = {**LLM_ATTRS, "gen_ai.usage.input_tokens": -1, "gen_ai.prompt.0.content": "my secret prompt",
             "gen_ai.prompt.0.role": "user", "gen_ai.completion.0.content": "the secret answer",
             "llm.prompts.0.content": "old secret"}
    excerpt = map_span(otlp(attrs), tenant="t", received_ms=1).dead_letter("t", 1).excerpt
    assert "secret" not in excerpt
    assert json.loads(excerpt)["attributes"]["gen_ai.prompt.0.content"] == "<content dropped>"


def test_unread_vendor_attributes():
    # Pre-2024-04 OpenLLMetry (llm.vendor, llm.usage.*) is not an LLM span to tokenpulse: ignored.
    old = {"llm.vendor": "OpenAI", "llm.request.model": "gpt-4", "llm.usage.prompt_tokens": 10,
           "llm.usage.completion_tokens": 2, "llm.usage.total_tokens": 12}
    assert map_span(otlp(old), tenant="t", received_ms=1) is None
    # gen_ai.usage.reasoning_tokens is not read from unknown senders: OpenLIT sends Gemini's
    # thoughts beside the output count under that name, so reading it as the semconv subset
    # would reject those calls (senders.yaml reads it per sender, with its meaning).
    event = mapped({**LLM_ATTRS, "gen_ai.usage.output_tokens": 50, "gen_ai.usage.reasoning_tokens": 400,
                    "gen_ai.usage.total_tokens": 1450, "gen_ai.usage.cost": 0.1})
    assert (event.output_tokens, event.reasoning_tokens) == (50, 0)
