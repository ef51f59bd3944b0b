"""Map one decoded OTLP span to a TokenSpan (an LLM call), a ContextSpan (an agent or tool
span that gives LLM calls their context), a Rejection with a reason, or None.

None means "neither": ordinary spans (HTTP, database, ...) are ignored, not dead-lettered,
because apps send plenty of them.

How a span's attributes are read depends on who sent it: the sender conventions
(schemas/senders.yaml, matched by instrumentation scope) say which names carry each token
class and whether input tokens include the cache. Conversation and agent are usually not on
the LLM span at all but on its `invoke_agent` ancestor; the collector forwards such context
spans and the stream job hands their attribution down (stream_jobs/jvm/.../TraceAssembler.java).

The tenant is always the one the API key belongs to; any tenant-looking attribute in the
payload is ignored. Prompt and completion content is never copied into an event.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from tokenpulse.core.fingerprint import call_fingerprint
from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas import usage_attributes as ua
from tokenpulse.schemas.events import CallStatus, ContextSpan, DeadLetter, RuntimeKind, TokenSpan
from tokenpulse.schemas.senders import Conventions, SenderCatalog, load_senders

from .otlp_decode import STATUS_CODE_ERROR, OtlpSpan

EXCERPT_MAX_CHARS = 1500
EXCERPT_VALUE_MAX_CHARS = 80
OPERATIONS_WITHOUT_OUTPUT = frozenset({"embeddings", "embedding"})
MAX_UNIX_NANO = 2**63 - 1  # the latest span time kept: end_ms must fit a signed 64-bit column

# Older names still emitted in the wild (semconv < 1.37, OpenLLMetry) as fallbacks.
_PROVIDER_KEYS = (sc.PROVIDER_NAME, "gen_ai.system")
_OPERATION_KEYS = (sc.OPERATION_NAME, "llm.request.type")  # the second: OpenLLMetry before semconv names
_FINGERPRINT_OK = re.compile(r"[A-Za-z0-9_:.-]{1,128}")
_MODEL_MARKERS = (*_PROVIDER_KEYS, sc.REQUEST_MODEL, sc.RESPONSE_MODEL)
_USAGE_MARKERS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
                  "gen_ai.usage.completion_tokens")
# Spans that are not LLM calls but frame them (OTel GenAI agent spans).
CONTEXT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"})
# Operations that are one provider call each (semconv names, and OpenLLMetry's llm.request.type
# values): only these may be counted without usage. Any other span without usage (a framework's
# wrapper span naming a model, say) is rejected with a reason rather than counted as a call.
CALL_OPERATIONS = frozenset({"chat", "text_completion", "completion", "generate_content", "embeddings", "embedding",
                             "responses", "rerank"})
_CONTEXT_MARKERS = (sc.CONVERSATION_ID, sc.AGENT_ID, sc.AGENT_NAME)


@lru_cache(maxsize=1)
def default_senders() -> SenderCatalog:
    """The shipped schemas/senders.yaml, loaded once."""
    return load_senders()


@dataclass(frozen=True)
class MappingRules:
    """What decides how a tenant's spans map: the sender conventions (global) and the
    tenant's service -> team map (schemas/tenants.py)."""

    senders: SenderCatalog = field(default_factory=default_senders)
    service_teams: Mapping[str, str] = field(default_factory=dict)


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


def operation_of(span: OtlpSpan) -> str | None:
    return _label(_first(span.attributes, _OPERATION_KEYS))


def is_context_span(span: OtlpSpan) -> bool:
    if (operation_of(span) or "").lower() in CONTEXT_OPERATIONS:
        return True
    return not is_llm_span(span) and any(span.attributes.get(k) is not None for k in _CONTEXT_MARKERS)


def is_llm_span(span: OtlpSpan) -> bool:
    a = span.attributes
    if (operation_of(span) or "").lower() in CONTEXT_OPERATIONS:
        return False
    return any(k in a for k in _MODEL_MARKERS) or any(k in a for k in _USAGE_MARKERS)


def map_span(span: OtlpSpan, *, tenant: str, received_ms: int, rules: MappingRules | None = None,
             api_key_id: str | None = None) -> TokenSpan | ContextSpan | Rejection | None:
    """`api_key_id`: the non-secret id of the key that authenticated the sender (never the key)."""
    rules = rules or MappingRules()
    try:
        if is_llm_span(span):
            return _build(span, tenant, received_ms, rules, api_key_id)
        if is_context_span(span):
            return _build_context(span, tenant, received_ms, rules, api_key_id)
        if span.dropped_attributes and any(k.startswith("gen_ai.") for k in span.attributes):
            # GenAI attributes left, model and usage evicted: a call lost on the wire, not an
            # unrelated span; a dead letter with the reason, never silently ignored
            raise _Bad("a GenAI span without model or usage attributes" + _dropped_hint(span))
        return None
    except _Bad as exc:
        return Rejection(str(exc), span)
    except ValidationError as exc:
        return Rejection(_explain(exc), span)


def _check_times(span: OtlpSpan) -> None:
    # OTLP/JSON times are unbounded integers; past int64 nanoseconds (year 2262) end_ms would
    # overflow downstream BIGINT columns instead of being rejected here with a reason.
    for which, ns in (("start", span.start_ns), ("end", span.end_ns)):
        if ns > MAX_UNIX_NANO:
            raise _Bad(f"span {which} time {str(ns)[:40]} ns is past the int64 range (year 2262)")


def _team(span: OtlpSpan, service: str, rules: MappingRules) -> str:
    return (_label(span.attributes.get(sc.TEAM) or span.resource.get(sc.TEAM)) or rules.service_teams.get(service)
            or "unassigned")


def _service(span: OtlpSpan) -> str:
    return _label(span.resource.get(sc.SERVICE_NAME)) or "unknown_service"


def _dropped_hint(span: OtlpSpan) -> str:
    if not span.dropped_attributes:
        return ""
    return (f" (the sender dropped {span.dropped_attributes} attributes at its SDK's limit, oldest first; "
            f"raise OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT in the app, e.g. when prompts are captured as gen_ai.prompt.N.*)")


def _sender_label(conv: Conventions, span: OtlpSpan) -> str:
    version = span.scope_version.strip()[:40]
    return f"{conv.sender}@{version}" if version else conv.sender


def _conventions(span: OtlpSpan, rules: MappingRules, provider: str | None) -> Conventions:
    sdk_name = _label(span.resource.get("telemetry.sdk.name") or span.attributes.get("telemetry.sdk.name"))
    return rules.senders.conventions_for(span.scope_name, span.scope_version, provider, sdk_name)


def _build(span: OtlpSpan, tenant: str, received_ms: int, rules: MappingRules, api_key_id: str | None) -> TokenSpan:
    a, r = span.attributes, span.resource
    is_error = span.status_code == STATUS_CODE_ERROR or a.get(sc.ERROR_TYPE) is not None
    operation = (_label(_first(a, _OPERATION_KEYS)) or "chat").lower()

    provider = _provider(a)
    if not provider:
        raise _Bad(f"missing {sc.PROVIDER_NAME} (or legacy gen_ai.system): cannot tell who served the call"
                   + _dropped_hint(span))
    request_model = _label(a.get(sc.REQUEST_MODEL))
    response_model = _label(a.get(sc.RESPONSE_MODEL))
    model = response_model or request_model
    if not model:
        raise _Bad(f"missing {sc.REQUEST_MODEL} and {sc.RESPONSE_MODEL}: cannot price the call" + _dropped_hint(span))
    _check_times(span)
    conv = _conventions(span, rules, provider)
    usage = conv.usage
    has_input = _present(a, usage["input"])
    has_output = _present(a, usage["output"])
    input_tokens = _count(a, usage["input"])
    output_tokens = _count(a, usage["output"])
    cached = _count(a, usage["cache_read_input"])
    cache_creation = _count(a, usage["cache_creation_input"])
    reasoning = _count(a, usage["reasoning_output"])
    if not conv.input_includes_cache:
        input_tokens += cached + cache_creation
    if not conv.output_includes_reasoning:
        output_tokens += reasoning
    needs_output = operation not in OPERATIONS_WITHOUT_OUTPUT
    # A failed call may legitimately report no usage (rate limit, timeout): it cost nothing.
    # A successful one without usage (or with 0 in and 0 out, which no real call has) still
    # happened and was billed: it stays a call, flagged, instead of vanishing from spend.
    usage_missing = not is_error and (
        not has_input or (needs_output and not has_output) or (input_tokens == 0 and output_tokens == 0))
    if usage_missing and operation not in CALL_OPERATIONS:
        raise _Bad(f"missing token count {usage['input'][0]} on a span whose operation {operation!r} is not "
                   f"one provider call ({', '.join(sorted(CALL_OPERATIONS))})")
    # Audio tokens, images, audio seconds: tokenpulse attributes; audio tokens are subsets
    # of input / output tokens (TokenSpan rejects a span claiming more than the total).
    units = {fld: _count(a, (key,)) for key, fld in ua.USAGE_FIELDS.items()}

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
    service = _service(span)

    return TokenSpan(
        tenant=tenant,
        api_key_id=api_key_id,
        service=service,
        team=_team(span, service, rules),
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
        response_id=_label(a.get(sc.RESPONSE_ID)),
        sender=_sender_label(conv, span),
        usage_missing=usage_missing,
        service_tier=_service_tier(a),
    )


def _build_context(span: OtlpSpan, tenant: str, received_ms: int, rules: MappingRules,
                   api_key_id: str | None) -> ContextSpan:
    a = span.attributes
    _check_times(span)
    is_error = span.status_code == STATUS_CODE_ERROR or a.get(sc.ERROR_TYPE) is not None
    tool_name = _label(a.get(sc.TOOL_NAME))
    arguments = a.get(sc.TOOL_CALL_ARGUMENTS)
    service = _service(span)
    conv = _conventions(span, rules, _provider(a))
    return ContextSpan(
        tenant=tenant,
        api_key_id=api_key_id,
        service=service,
        team=_team(span, service, rules),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        operation=(operation_of(span) or "span").lower()[:64],
        agent_id=_label(a.get(sc.AGENT_ID)),
        agent_name=_label(a.get(sc.AGENT_NAME)),
        session_id=_label(a.get(sc.CONVERSATION_ID)),
        tool_name=tool_name,
        tool_call_id=_label(a.get(sc.TOOL_CALL_ID)),
        tool_type=_label(a.get(sc.TOOL_TYPE)),
        # Opt-in content (gen_ai.tool.call.arguments): fingerprinted, then dropped.
        call_fingerprint=(call_fingerprint(tool_name=tool_name, tool_arguments=arguments)
                          if arguments is not None else None),
        start_ms=span.start_ns // 1_000_000,
        end_ms=span.end_ns // 1_000_000,
        received_ms=received_ms,
        status=CallStatus.error if is_error else CallStatus.ok,
        error_type=_label(a.get(sc.ERROR_TYPE)),
        sender=_sender_label(conv, span),
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
        if content is None:
            content = indexed_messages(attrs, sc.INDEXED_PROMPT_PREFIX)
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


def indexed_messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """Messages flattened into indexed attributes (`gen_ai.prompt.0.role`, `gen_ai.prompt.0.content`,
    `gen_ai.prompt.1.tool_calls.0.name`, ...: OpenLLMetry before gen_ai.input.messages) as a list
    of {field: value} in index order; None when there are none."""
    by_index: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix):].partition(".")
        if index.isdigit() and rest:
            by_index.setdefault(int(index), {})[rest] = value
    return [by_index[i] for i in sorted(by_index)] if by_index else None


def _present(attrs: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return any(attrs.get(k) is not None for k in keys)


def _count(attrs: dict[str, Any], keys: tuple[str, ...]) -> int:
    v = _first(attrs, keys)
    if v is None:
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
    shown: dict[str, object] = {}
    for k, v in list(span.attributes.items())[:60]:
        if k in sc.CONTENT_ATTRIBUTES or k.startswith(sc.CONTENT_ATTRIBUTE_PREFIXES):
            shown[k] = "<content dropped>"
        elif isinstance(v, (int, float, bool)) or v is None:
            shown[k] = v
        else:
            text = str(v)
            shown[k] = text if len(text) <= EXCERPT_VALUE_MAX_CHARS else f"{text[:EXCERPT_VALUE_MAX_CHARS]}…({len(text)} chars)"
    return json.dumps({"name": span.name[:120], "attributes": shown}, default=str)[:EXCERPT_MAX_CHARS]
