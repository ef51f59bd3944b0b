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
reasoning tokens. Nothing is added up, so nothing is priced twice. Audio tokens
(`prompt_tokens_details.audio_tokens`, `completion_tokens_details.audio_tokens`; the Realtime
API's `input_token_details` / `output_token_details`) are subsets as well and go to
tokenpulse's `tokenpulse.usage.input_audio_tokens` / `output_audio_tokens`, priced at the
model's audio rates instead of the text rates. Cached audio stays with the cache reads (billed
at the cache-read rate), so the input audio count is the uncached part.

The openai package is not imported: responses are read by field name, so the SDK adds no
dependency and keeps working when the client adds fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas import usage_attributes as ua

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
    if _field(usage, "input_tokens") is not None:  # Responses API: ResponseUsage; Realtime: its usage
        input_details = _field(usage, "input_tokens_details") or _field(usage, "input_token_details")
        output_details = _field(usage, "output_tokens_details") or _field(usage, "output_token_details")
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
        ua.INPUT_AUDIO_TOKENS: _uncached_audio(input_tokens, input_details),
        ua.OUTPUT_AUDIO_TOKENS: _field(output_details, "audio_tokens"),
    }
    return {k: v for k, v in counts.items() if _is_count(v)}


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _uncached_audio(input_tokens: Any, details: Any) -> int | None:
    """Audio input tokens not read from the cache (those are billed at the cache-read rate).

    The Realtime API splits its cached tokens (`cached_tokens_details.audio_tokens`); without a
    split, audio beyond the uncached input can only have come from the cache."""
    audio = _field(details, "audio_tokens")
    if not _is_count(audio) or audio == 0:
        return audio if _is_count(audio) else None
    cached_audio = _field(_field(details, "cached_tokens_details"), "audio_tokens")
    if _is_count(cached_audio):
        audio -= cached_audio
    cached = sum(v for v in (_field(details, "cached_tokens"), _field(details, "cache_write_tokens")) if _is_count(v))
    if _is_count(input_tokens):
        audio = min(audio, input_tokens - cached)
    return max(audio, 0)


def _field(obj: Any, name: str) -> Any:
    """A field of a pydantic response object or of its dict form; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
