"""Record what an Anthropic message says it used, in the token classes tokenpulse prices.

    with record_llm_call(provider="anthropic", model="claude-sonnet-4", session_id=sid, messages=msgs) as call:
        msg = client.messages.create(model="claude-sonnet-4", max_tokens=1024, messages=msgs)
        set_anthropic_usage(call, msg)

Accepted: a `Message` (also the beta `BetaMessage`, a stream's `get_final_message()`, a
Message Batches result's message) or its `model_dump()` dict.

Anthropic counts differently from OTel GenAI semconv: `usage.input_tokens` *excludes*
`cache_read_input_tokens` and `cache_creation_input_tokens`, which are reported beside it.
The semconv input count is therefore input + cache reads + cache writes, with the two cache
counts recorded as subsets of it. `output_tokens` already includes the thinking tokens
(`output_tokens_details.thinking_tokens`), recorded as the reasoning subset. Each token is
priced once: uncached input at the input price, reads and writes at their cache prices.

The anthropic package is not imported: messages are read by field name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenpulse.schemas import semconv as sc

from .calls import LlmCall


def anthropic_usage_attributes(message: Any) -> dict[str, Any]:
    """Semconv span attributes for `message`'s usage, response model and service tier.

    Contract: input tokens = usage.input_tokens + cache reads + cache writes (absent cache
    counts are 0); the cache and thinking counts are recorded as subsets of input and output;
    the tier (standard, priority, batch) goes to `tokenpulse.response.service_tier`. Only what
    the message reports is returned (no `usage`, no token attributes). Never raises on a
    missing or unfamiliar field."""
    attrs: dict[str, Any] = {}
    model = _field(message, "model")
    if isinstance(model, str) and model:
        attrs[sc.RESPONSE_MODEL] = model
    usage = _field(message, "usage")
    if usage is None:
        return attrs
    tier = _field(usage, "service_tier")
    if isinstance(tier, str) and tier:
        attrs[sc.RESPONSE_SERVICE_TIER] = tier
    uncached, output = _count(usage, "input_tokens"), _count(usage, "output_tokens")
    cache_read, cache_write = _count(usage, "cache_read_input_tokens"), _count(usage, "cache_creation_input_tokens")
    if uncached is not None:
        attrs[sc.INPUT_TOKENS] = uncached + (cache_read or 0) + (cache_write or 0)
        attrs[sc.CACHE_READ_INPUT_TOKENS] = cache_read or 0
        attrs[sc.CACHE_CREATION_INPUT_TOKENS] = cache_write or 0
    if output is not None:
        attrs[sc.OUTPUT_TOKENS] = output
        thinking = _count(_field(usage, "output_tokens_details"), "thinking_tokens")
        if thinking is not None:
            attrs[sc.REASONING_OUTPUT_TOKENS] = thinking
    return attrs


def set_anthropic_usage(call: LlmCall, message: Any) -> None:
    """Put anthropic_usage_attributes(message) on the call's span (see that function)."""
    call.span.set_attributes(anthropic_usage_attributes(message))


def _count(obj: Any, name: str) -> int | None:
    value = _field(obj, name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(obj: Any, name: str) -> Any:
    """A field of a pydantic response object or of its dict form; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
