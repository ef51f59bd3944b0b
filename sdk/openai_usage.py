"""Record what an OpenAI response says it used, in the token classes tokenpulse prices.

    with record_llm_call(provider="openai", model="gpt-4o", session_id=sid, messages=msgs) as call:
        resp = client.chat.completions.create(model="gpt-4o", messages=msgs)
        set_openai_usage(call, resp)

Accepted responses (the openai package's objects, or their `model_dump()` dicts):
ChatCompletion, Completion, CreateEmbeddingResponse, the Responses API's `Response`, and the
last ChatCompletionChunk of a stream created with `stream_options={"include_usage": True}`.

OpenAI already counts the way OTel GenAI semconv does, so the numbers pass through:
`prompt_tokens` (Responses API: `input_tokens`) *includes* the cached and cache-written
tokens listed in its details, and `completion_tokens` (`output_tokens`) *includes* the
reasoning tokens. Nothing is added up, so nothing is priced twice.

The openai package is not imported: responses are read by field name, so the SDK adds no
dependency and keeps working when the client adds fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenpulse.schemas import semconv as sc

from .calls import LlmCall


def openai_usage_attributes(response: Any) -> dict[str, Any]:
    """Semconv span attributes for `response`'s usage, response model and service tier.

    Contract: only what the response reports is returned (a response without `usage` gives
    no token attributes); the cache and reasoning counts are subsets of the input and
    output counts; an embeddings response (no completion count) records 0 output tokens.
    Never raises on a missing or unfamiliar field."""
    attrs: dict[str, Any] = {}
    model = _field(response, "model")
    if isinstance(model, str) and model:
        attrs[sc.RESPONSE_MODEL] = model
    tier = _field(response, "service_tier")
    if isinstance(tier, str) and tier:
        attrs[sc.SERVICE_TIER_KEYS[0]] = tier  # "openai.response.service_tier": the tier that served it
    usage = _field(response, "usage")
    if usage is not None:
        attrs.update(_usage_attributes(usage))
    return attrs


def set_openai_usage(call: LlmCall, response: Any) -> None:
    """Put openai_usage_attributes(response) on the call's span (see that function)."""
    call.span.set_attributes(openai_usage_attributes(response))


def _usage_attributes(usage: Any) -> dict[str, Any]:
    if _field(usage, "input_tokens") is not None:  # Responses API: ResponseUsage
        input_details, output_details = _field(usage, "input_tokens_details"), _field(usage, "output_tokens_details")
        input_tokens, output_tokens = _field(usage, "input_tokens"), _field(usage, "output_tokens")
    else:  # chat / completions: CompletionUsage; embeddings: Usage without completion counts
        input_details, output_details = _field(usage, "prompt_tokens_details"), _field(usage, "completion_tokens_details")
        input_tokens, output_tokens = _field(usage, "prompt_tokens"), _field(usage, "completion_tokens")
        if input_tokens is not None and output_tokens is None and _field(usage, "total_tokens") == input_tokens:
            output_tokens = 0  # an embedding generates nothing: say so rather than leave it missing
    counts = {
        sc.INPUT_TOKENS: input_tokens,
        sc.OUTPUT_TOKENS: output_tokens,
        sc.CACHE_READ_INPUT_TOKENS: _field(input_details, "cached_tokens"),
        sc.CACHE_CREATION_INPUT_TOKENS: _field(input_details, "cache_write_tokens"),
        sc.REASONING_OUTPUT_TOKENS: _field(output_details, "reasoning_tokens"),
    }
    return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}


def _field(obj: Any, name: str) -> Any:
    """A field of a pydantic response object or of its dict form; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
