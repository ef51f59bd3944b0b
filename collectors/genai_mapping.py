"""Map one decoded OTLP span to a TokenSpan, a Rejection with a reason, or None.

None means "not an LLM call" (no gen_ai.* provider/model/usage attribute): such spans are
ignored, not dead-lettered, because apps send plenty of ordinary spans.

The tenant is always the one the API key belongs to; any tenant-looking attribute in the
payload is ignored. Prompt and completion content is never copied into the event.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas import usage_attributes as ua
from tokenpulse.sdk.fingerprint import call_fingerprint
from tokenpulse.schemas.events import CallStatus, DeadLetter, RuntimeKind, TokenSpan

from .otlp_decode import STATUS_CODE_ERROR, OtlpSpan

EXCERPT_MAX_CHARS = 1500
EXCERPT_VALUE_MAX_CHARS = 80
OPERATIONS_WITHOUT_OUTPUT = frozenset({"embeddings", "embedding"})
MAX_UNIX_NANO = 2**63 - 1  # the latest span time kept: end_ms must fit a signed 64-bit column

# Older names still emitted in the wild (semconv < 1.37, OpenLLMetry) as fallbacks.
_PROVIDER_KEYS = (sc.PROVIDER_NAME, "gen_ai.system")
_INPUT_KEYS = (sc.INPUT_TOKENS, "gen_ai.usage.prompt_tokens")
_OUTPUT_KEYS = (sc.OUTPUT_TOKENS, "gen_ai.usage.completion_tokens")
# OpenLLMetry's underscore spellings (its semconv-ai package until it adopted the official
# names). It sends input tokens *including* the cache counts for OpenAI and Anthropic alike,
# so these are subsets like the official names.
_CACHE_READ_KEYS = (sc.CACHE_READ_INPUT_TOKENS, "gen_ai.usage.cache_read_input_tokens")
_CACHE_CREATION_KEYS = (sc.CACHE_CREATION_INPUT_TOKENS, "gen_ai.usage.cache_creation_input_tokens")
_FINGERPRINT_OK = re.compile(r"[A-Za-z0-9_:.-]{1,128}")
_LLM_MARKERS = (*_PROVIDER_KEYS, sc.REQUEST_MODEL, sc.RESPONSE_MODEL, *_INPUT_KEYS, *_OUTPUT_KEYS)


@dataclass(frozen=True)
class UsageConventions:
    """How senders count tokens. OTel GenAI semconv: cache tokens are a subset of input tokens
    and reasoning tokens a subset of output tokens. Some sources (Anthropic's API usage
    object, Gemini's thoughts count) report them *beside* input/output instead; for the
    providers listed here the collector adds them in, so every token is priced exactly once."""

    cache_separate: frozenset[str] = frozenset()
    reasoning_separate: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Providers are matched lower-cased (see _provider), so the configured names are too.
        object.__setattr__(self, "cache_separate", frozenset(p.lower() for p in self.cache_separate))
        object.__setattr__(self, "reasoning_separate", frozenset(p.lower() for p in self.reasoning_separate))


SEMCONV_SUBSETS = UsageConventions()


@dataclass(frozen=True)
class Rejection:
    reason: str
    span: OtlpSpan

    def dead_letter(self, tenant: str, received_ms: int) -> DeadLetter:
        return DeadLetter(
            tenant=tenant,
            stage="collector",
            reason=self.reason[:2000],
            received_ms=received_ms,
            trace_id=self.span.trace_id[:64] or None,
            span_id=self.span.span_id[:32] or None,
            excerpt=content_free_excerpt(self.span),
        )


class _Bad(ValueError):
    pass


def is_llm_span(span: OtlpSpan) -> bool:
    return any(k in span.attributes for k in _LLM_MARKERS)


def map_span(span: OtlpSpan, *, tenant: str, received_ms: int,
             conventions: UsageConventions = SEMCONV_SUBSETS,
             api_key_id: str | None = None) -> TokenSpan | Rejection | None:
    """`api_key_id`: the non-secret id of the key that authenticated the sender (never the key)."""
    if not is_llm_span(span):
        return None
    try:
        return _build(span, tenant, received_ms, conventions, api_key_id)
    except _Bad as exc:
        return Rejection(str(exc), span)
    except ValidationError as exc:
        return Rejection(_explain(exc), span)


def _build(span: OtlpSpan, tenant: str, received_ms: int, conventions: UsageConventions,
           api_key_id: str | None) -> TokenSpan:
    a, r = span.attributes, span.resource
    is_error = span.status_code == STATUS_CODE_ERROR or a.get(sc.ERROR_TYPE) is not None
    operation = _label(a.get(sc.OPERATION_NAME)) or "chat"

    provider = _provider(a)
    if not provider:
        raise _Bad(f"missing {sc.PROVIDER_NAME} (or legacy gen_ai.system): cannot tell who served the call")
    request_model = _label(a.get(sc.REQUEST_MODEL))
    response_model = _label(a.get(sc.RESPONSE_MODEL))
    model = response_model or request_model
    if not model:
        raise _Bad(f"missing {sc.REQUEST_MODEL} and {sc.RESPONSE_MODEL}: cannot price the call")

    # OTLP/JSON times are unbounded integers; past int64 nanoseconds (year 2262) end_ms would
    # overflow downstream BIGINT columns instead of being rejected here with a reason.
    for which, ns in (("start", span.start_ns), ("end", span.end_ns)):
        if ns > MAX_UNIX_NANO:
            raise _Bad(f"span {which} time {str(ns)[:40]} ns is past the int64 range (year 2262)")
    # A failed call may legitimately report no usage (rate limit, timeout): it cost nothing.
    input_tokens = _count(a, _INPUT_KEYS, required=not is_error)
    output_tokens = _count(a, _OUTPUT_KEYS, required=not is_error and operation not in OPERATIONS_WITHOUT_OUTPUT)
    cached = _count(a, _CACHE_READ_KEYS, required=False)
    cache_creation = _count(a, _CACHE_CREATION_KEYS, required=False)
    reasoning = _count(a, (sc.REASONING_OUTPUT_TOKENS,), required=False)
    if provider in conventions.cache_separate:
        input_tokens += cached + cache_creation
    if provider in conventions.reasoning_separate:
        output_tokens += reasoning
    # Audio tokens, images, audio seconds: tokenpulse attributes; audio tokens are subsets
    # of input / output tokens (TokenSpan rejects a span claiming more than the total).
    units = {field: _count(a, (key,), required=False) for key, field in ua.USAGE_FIELDS.items()}

    kind_raw = _label(a.get(sc.RUNTIME_KIND) or r.get(sc.RUNTIME_KIND))
    if kind_raw and kind_raw not in RuntimeKind.__members__:
        raise _Bad(f"{sc.RUNTIME_KIND}={kind_raw!r} is not one of cloud, edge")
    runtime_kind = RuntimeKind(kind_raw) if kind_raw else (
        RuntimeKind.edge if provider in sc.EDGE_PROVIDERS else RuntimeKind.cloud
    )
    runtime_id = _label(a.get(sc.RUNTIME_ID) or r.get(sc.RUNTIME_ID))
    if not runtime_id:
        runtime_id = _label(r.get(sc.HOST_NAME)) if runtime_kind is RuntimeKind.edge else provider
    runtime_id = runtime_id or "unknown"

    return TokenSpan(
        tenant=tenant,
        api_key_id=api_key_id,
        service=_label(r.get(sc.SERVICE_NAME)) or "unknown_service",
        team=_label(a.get(sc.TEAM) or r.get(sc.TEAM)) or "unassigned",
        agent_id=_label(a.get(sc.AGENT_ID)),
        agent_name=_label(a.get(sc.AGENT_NAME)),
        session_id=_label(a.get(sc.CONVERSATION_ID)),
        tool_name=_label(a.get(sc.TOOL_NAME)),
        call_fingerprint=_fingerprint(a, model),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        operation=operation,
        provider=provider,
        request_model=request_model,
        response_model=response_model,
        model=model,
        runtime_kind=runtime_kind,
        runtime_id=runtime_id,
        start_ms=span.start_ns // 1_000_000,
        end_ms=span.end_ns // 1_000_000,
        received_ms=received_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        cache_creation_input_tokens=cache_creation,
        reasoning_tokens=reasoning,
        **units,
        semantic_cache_hit=_flag(a, ua.SEMANTIC_CACHE_HIT),
        status=CallStatus.error if is_error else CallStatus.ok,
        error_type=_label(a.get(sc.ERROR_TYPE)),
        service_tier=_service_tier(a),
    )


def _provider(attrs: dict[str, Any]) -> str | None:
    """Lower-cased, with renamed legacy values mapped to today's names: senders spell
    providers "vLLM", "Ollama", "Anthropic" or "az.ai.openai", while the edge-provider list
    and the price table use semconv's lower-case gen_ai.provider.name values."""
    name = _label(_first(attrs, _PROVIDER_KEYS))
    if name is None:
        return None
    name = name.lower()
    return sc.PROVIDER_ALIASES.get(name, name)


def _fingerprint(attrs: dict[str, Any], model: str) -> str | None:
    """The sender's call fingerprint; an opaque value in another format is hashed into ours
    rather than rejected (it is a loop-detection hint, not billing data). Without one, a
    span that carries its prompt (content capture on in the app) is fingerprinted here,
    just before the content is dropped."""
    value = _label(attrs.get(sc.CALL_FINGERPRINT))
    if value is None:
        content = _first(attrs, sc.FINGERPRINT_CONTENT_KEYS)
        return None if content is None else call_fingerprint(model=model, messages=content, tool_name=_label(attrs.get(sc.TOOL_NAME)))
    if _FINGERPRINT_OK.fullmatch(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _service_tier(attrs: dict[str, Any]) -> str:
    if attrs.get(sc.BATCH) is True:
        return "batch"
    tier = (_label(_first(attrs, (*sc.SERVICE_TIER_KEYS, sc.RESPONSE_SERVICE_TIER))) or "standard").lower()
    return "standard" if tier in ("default", "auto") else tier


def _flag(attrs: dict[str, Any], key: str) -> bool:
    """A boolean attribute (OTel bool, or "true"/"false" from senders that only emit strings)."""
    v = attrs.get(key)
    if v is None or isinstance(v, bool):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise _Bad(f"{key} must be a boolean, got {v!r:.40}")


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if attrs.get(k) is not None:
            return attrs[k]
    return None


def _label(v: Any) -> str | None:
    """A string attribute, stripped; over-long values are left for the model to reject."""
    if v is None:
        return None
    if not isinstance(v, str):
        v = str(v)
    v = v.strip()
    return v or None


def _count(attrs: dict[str, Any], keys: tuple[str, ...], *, required: bool) -> int:
    v = _first(attrs, keys)
    if v is None:
        if required:
            raise _Bad(f"missing token count {keys[0]}")
        return 0
    # bool is an int subclass in Python; a boolean token count is a sender bug.
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _Bad(f"token count {keys[0]} must be a whole number, got {v!r:.40}")
    if v < 0:
        raise _Bad(f"token count {keys[0]} is negative ({int(v)})")
    return int(v)


def _explain(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e["loc"]) or "span"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def content_free_excerpt(span: OtlpSpan) -> str:
    """Attribute keys and short scalar values, never prompt/completion content."""
    shown = {}
    for k, v in list(span.attributes.items())[:60]:
        if k in sc.CONTENT_ATTRIBUTES or k.startswith(sc.CONTENT_ATTRIBUTE_PREFIXES):
            shown[k] = "<content dropped>"
        elif isinstance(v, (int, float, bool)) or v is None:
            shown[k] = v
        else:
            text = str(v)
            shown[k] = text if len(text) <= EXCERPT_VALUE_MAX_CHARS else f"{text[:EXCERPT_VALUE_MAX_CHARS]}…({len(text)} chars)"
    return json.dumps({"name": span.name[:120], "attributes": shown}, default=str)[:EXCERPT_MAX_CHARS]
