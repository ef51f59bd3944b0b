"""Usage of real OpenAI and Anthropic response objects -> span attributes -> the collector's
TokenSpan: each token class lands once (cache and reasoning counts as subsets, never added twice)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from anthropic.types import Message
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenpulse.core.genai_mapping import map_span
from tokenpulse.core.otlp_decode import OtlpSpan
from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas.events import TokenSpan
from tokenpulse.schemas.pricing import call_cost_usd, load_price_table
from tokenpulse.sdk import (
    anthropic_usage_attributes,
    openai_usage_attributes,
    record_llm_call,
    set_anthropic_usage,
    set_openai_usage,
)


@pytest.fixture
def recorded():
    """record(provider, model, response, setter, **kw) -> (span attributes, TokenSpan the collector makes of them)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def record(provider_name: str, model: str, response, setter, **kw) -> tuple[dict, TokenSpan]:
        exporter.clear()
        with record_llm_call(provider=provider_name, model=model, tracer_provider=provider, **kw) as call:
            setter(call, response)
        (span,) = exporter.get_finished_spans()
        attrs = dict(span.attributes)
        event = map_span(otlp(attrs), tenant="acme", received_ms=1)
        assert isinstance(event, TokenSpan), event
        return attrs, event

    return record


def otlp(attrs: dict) -> OtlpSpan:
    """As tests/unit/collectors/test_genai_mapping.py builds a decoded span."""
    return OtlpSpan(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, name="chat", start_ns=10**18,
                    end_ns=10**18 + 2 * 10**9, status_code=0, attributes=attrs, resource={"service.name": "app"})


def tokens(event: TokenSpan) -> tuple[int, int, int, int, int]:
    return (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens,
            event.output_tokens, event.reasoning_tokens)


# --- OpenAI --------------------------------------------------------------------------------

def chat_completion(**usage_overrides) -> ChatCompletion:
    usage = {"prompt_tokens": 1200, "completion_tokens": 500, "total_tokens": 1700,
             "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 0}, **usage_overrides}
    return ChatCompletion.model_validate({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1760000000, "model": "gpt-4o-2024-08-06",
        "service_tier": "flex",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": usage,
    })


def test_chat_completion_cached_and_reasoning_tokens_stay_subsets(recorded):
    attrs, event = recorded("openai", "gpt-4o", chat_completion(), set_openai_usage)
    assert attrs[sc.INPUT_TOKENS] == 1200 and attrs[sc.CACHE_READ_INPUT_TOKENS] == 1000
    assert attrs[sc.OUTPUT_TOKENS] == 500 and attrs[sc.REASONING_OUTPUT_TOKENS] == 300
    assert attrs[sc.RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs["openai.response.service_tier"] == "flex"
    assert tokens(event) == (1200, 1000, 0, 500, 300)  # not 2200 in, not 800 out
    assert (event.model, event.request_model, event.service_tier) == ("gpt-4o-2024-08-06", "gpt-4o", "flex")

    # Priced once: 200 uncached at the input price, 1000 at the cached price, 500 output.
    price = load_price_table().price_at("openai", event.model, 1760000000000)
    cost = call_cost_usd(price, input_tokens=event.input_tokens, cached_input_tokens=event.cached_input_tokens,
                         cache_creation_input_tokens=event.cache_creation_input_tokens, output_tokens=event.output_tokens)
    assert cost == Decimal("200") * Decimal("2.50") / 10**6 + Decimal("1000") * Decimal("1.25") / 10**6 \
        + Decimal("500") * Decimal("10.00") / 10**6


def test_chat_completion_without_details_or_tier_records_plain_counts(recorded):
    response = chat_completion(prompt_tokens_details=None, completion_tokens_details=None).model_copy(
        update={"service_tier": None})
    attrs, event = recorded("openai", "gpt-4o", response, set_openai_usage)
    assert sc.CACHE_READ_INPUT_TOKENS not in attrs and "openai.response.service_tier" not in attrs
    assert tokens(event) == (1200, 0, 0, 500, 0) and event.service_tier == "standard"


def test_default_tier_is_standard_and_cache_writes_are_a_subset_too(recorded):
    response = chat_completion(prompt_tokens_details={"cached_tokens": 600, "cache_write_tokens": 400})
    response = response.model_copy(update={"service_tier": "default"})
    attrs, event = recorded("openai", "gpt-4o", response, set_openai_usage)
    assert tokens(event) == (1200, 600, 400, 500, 300) and event.service_tier == "standard"


def test_responses_api_usage(recorded):
    response = Response.model_validate({
        "id": "resp_1", "object": "response", "created_at": 1760000000, "model": "o4-mini-2025-04-16",
        "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "service_tier": "priority",
        "usage": {"input_tokens": 5000, "output_tokens": 2000, "total_tokens": 7000,
                  "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 1500}},
    })
    attrs, event = recorded("openai", "o4-mini", response, set_openai_usage)
    assert tokens(event) == (5000, 4096, 0, 2000, 1500)
    assert (event.model, event.service_tier) == ("o4-mini-2025-04-16", "priority")


def test_legacy_completion_usage(recorded):
    response = Completion.model_validate({
        "id": "cmpl-1", "object": "text_completion", "created": 1760000000, "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "x", "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    })
    _, event = recorded("openai", "gpt-3.5-turbo-instruct", response, set_openai_usage, operation="text_completion")
    assert tokens(event) == (12, 0, 0, 4, 0)


def test_embeddings_record_zero_output_tokens(recorded):
    response = CreateEmbeddingResponse.model_validate({
        "object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    })
    attrs, event = recorded("openai", "text-embedding-3-small", response, set_openai_usage, operation="embeddings")
    assert attrs[sc.OUTPUT_TOKENS] == 0
    assert tokens(event) == (8, 0, 0, 0, 0)


def test_last_stream_chunk_carries_the_usage(recorded):
    chunk = ChatCompletionChunk.model_validate({
        "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1760000000, "model": "gpt-4o-mini",
        "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
    })
    _, event = recorded("openai", "gpt-4o-mini", chunk, set_openai_usage)
    assert tokens(event) == (30, 0, 0, 7, 0)


def test_dict_form_and_missing_usage():
    response = chat_completion()
    assert openai_usage_attributes(response.model_dump()) == openai_usage_attributes(response)
    no_usage = response.model_copy(update={"usage": None})
    assert openai_usage_attributes(no_usage) == {sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
                                                 "openai.response.service_tier": "flex"}
    assert openai_usage_attributes(None) == {} and openai_usage_attributes("not a response") == {}


# --- Anthropic --------------------------------------------------------------------------------

def anthropic_message(**usage_overrides) -> Message:
    usage = {"input_tokens": 3000, "cache_read_input_tokens": 8000, "cache_creation_input_tokens": 1000,
             "output_tokens": 900, "service_tier": "standard", **usage_overrides}
    return Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": usage,
    })


def test_anthropic_cache_counts_are_added_into_input_once(recorded):
    attrs, event = recorded("anthropic", "claude-sonnet-4", anthropic_message(), set_anthropic_usage)
    # Anthropic's input_tokens (3000) excludes the cache reads and writes reported beside it.
    assert attrs[sc.INPUT_TOKENS] == 12000
    assert (attrs[sc.CACHE_READ_INPUT_TOKENS], attrs[sc.CACHE_CREATION_INPUT_TOKENS]) == (8000, 1000)
    assert tokens(event) == (12000, 8000, 1000, 900, 0)
    assert (event.model, event.service_tier) == ("claude-sonnet-4-20250514", "standard")

    # Each class priced once (same numbers as the collector's separate-counts test).
    price = load_price_table().price_at("anthropic", event.model, 1760000000000)
    assert call_cost_usd(price, input_tokens=event.input_tokens, cached_input_tokens=event.cached_input_tokens,
                         cache_creation_input_tokens=event.cache_creation_input_tokens,
                         output_tokens=event.output_tokens) == Decimal("0.02865")


def test_anthropic_thinking_tokens_are_a_subset_of_output_and_batch_tier_is_kept(recorded):
    message = anthropic_message(output_tokens_details={"thinking_tokens": 700}, service_tier="batch")
    attrs, event = recorded("anthropic", "claude-sonnet-4", message, set_anthropic_usage)
    assert attrs[sc.REASONING_OUTPUT_TOKENS] == 700 and attrs[sc.RESPONSE_SERVICE_TIER] == "batch"
    assert tokens(event) == (12000, 8000, 1000, 900, 700)  # output stays 900
    assert event.service_tier == "batch"


def test_anthropic_without_cache_fields(recorded):
    message = anthropic_message(cache_read_input_tokens=None, cache_creation_input_tokens=None, service_tier=None)
    attrs, event = recorded("anthropic", "claude-sonnet-4", message, set_anthropic_usage)
    assert sc.RESPONSE_SERVICE_TIER not in attrs
    assert tokens(event) == (3000, 0, 0, 900, 0) and event.service_tier == "standard"


def test_anthropic_dict_form_and_missing_usage():
    message = anthropic_message()
    assert anthropic_usage_attributes(message.model_dump()) == anthropic_usage_attributes(message)
    assert anthropic_usage_attributes({"model": "claude-x"}) == {sc.RESPONSE_MODEL: "claude-x"}
    assert anthropic_usage_attributes(None) == {}


def test_openai_audio_tokens_are_priced_at_the_audio_rate_once(recorded):
    """gpt-4o-audio-preview: audio tokens are part of prompt/completion tokens; they move from
    the text rate to the audio rate (issue #5), they are not added on top."""
    usage = {"prompt_tokens": 1500, "completion_tokens": 900, "total_tokens": 2400,
             "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 1200},
             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 700}}
    response = ChatCompletion.model_validate({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1760000000, "model": "gpt-4o-audio-preview-2024-12-17",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": usage})
    attrs, event = recorded("openai", "gpt-4o-audio-preview", response, set_openai_usage)
    assert (attrs["tokenpulse.usage.input_audio_tokens"], attrs["tokenpulse.usage.output_audio_tokens"]) == (1200, 700)
    assert (event.input_tokens, event.input_audio_tokens, event.output_tokens, event.output_audio_tokens) == \
        (1500, 1200, 900, 700)
    price = load_price_table().price_at("openai", event.model, 1760000000000)
    cost = call_cost_usd(price, input_tokens=1500, cached_input_tokens=0, cache_creation_input_tokens=0,
                         output_tokens=900, input_audio_tokens=1200, output_audio_tokens=700)
    # 300 text in at $2.50, 1200 audio in at $40, 200 text out at $10, 700 audio out at $80 (per MTok)
    assert cost == Decimal("0.00075") + Decimal("0.048") + Decimal("0.002") + Decimal("0.056")


def test_realtime_cached_audio_stays_with_the_cache_reads():
    usage = {"input_tokens": 2000, "output_tokens": 400, "total_tokens": 2400,
             "input_token_details": {"cached_tokens": 1500, "text_tokens": 500, "audio_tokens": 1500,
                                     "cached_tokens_details": {"text_tokens": 500, "audio_tokens": 1000}},
             "output_token_details": {"text_tokens": 100, "audio_tokens": 300}}
    attrs = openai_usage_attributes({"model": "gpt-realtime", "usage": usage})
    assert attrs[sc.CACHE_READ_INPUT_TOKENS] == 1500
    assert attrs["tokenpulse.usage.input_audio_tokens"] == 500  # 1500 audio, 1000 of them cached
    assert attrs["tokenpulse.usage.output_audio_tokens"] == 300
    # without the cached split, audio beyond the uncached input must have come from the cache
    del usage["input_token_details"]["cached_tokens_details"]
    assert openai_usage_attributes({"usage": usage})["tokenpulse.usage.input_audio_tokens"] == 500


def test_set_usage_records_images_and_audio_seconds(recorded):
    def setter(call, _):
        call.set_usage(input_tokens=30, output_tokens=0, output_images=3)

    attrs, event = recorded("gcp.gemini", "imagen-4.0-generate-001", None, setter)
    assert attrs["tokenpulse.usage.output_images"] == 3 and "tokenpulse.usage.input_audio_seconds" not in attrs
    assert (event.output_images, event.input_images, event.input_audio_seconds) == (3, 0, 0)


def test_semantic_cache_hit_is_flagged_with_its_counterfactual_usage(recorded):
    def setter(call, _):  # the usage stored with the cached answer: what the call would have used
        call.set_usage(input_tokens=4000, output_tokens=500, cached_input_tokens=1000)

    attrs, event = recorded("openai", "gpt-4o", None, setter, semantic_cache_hit=True)
    assert attrs["tokenpulse.cache.semantic_hit"] is True
    assert event.semantic_cache_hit and (event.input_tokens, event.output_tokens) == (4000, 500)
    attrs, event = recorded("openai", "gpt-4o", None, setter)
    assert "tokenpulse.cache.semantic_hit" not in attrs and not event.semantic_cache_hit
