"""A request's decoded spans -> events to write, dead letters, spans to ignore.

One function for every input (the collectors' OTLP/HTTP, gRPC and Kafka inputs, and the SDK's
Kafka exporter), so they all treat a span the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tokenpulse.schemas.events import ContextSpan, DeadLetter, TokenSpan
from tokenpulse.schemas.senders import SenderCatalog

from .genai_mapping import MappingRules, Rejection, map_span
from .otlp_decode import OtlpSpan

log = logging.getLogger(__name__)

INTERNAL_ERROR_REASON = "internal error while mapping the span"  # the fuzz tests expect none


@dataclass
class MappedSpans:
    accepted: list[TokenSpan | ContextSpan] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: int = 0


def map_spans(spans: list[OtlpSpan], *, tenant: str, received_ms: int, rules: MappingRules | None = None,
              api_key_id: str | None = None) -> MappedSpans:
    """Sort decoded spans into events to write, dead letters, and spans to ignore.
    Shared by every input (HTTP, gRPC, Kafka), so they all treat a span the same way.
    `api_key_id` (the authenticating key's non-secret id) is stamped on every event.

    Written order (the stream job sees one trace in this order, keyed by trace): context
    spans first, so calls of the same request meet their ancestors already known; then the
    LLM calls, richer sender first (see call_preference), so when two spans describe one
    provider call the stream's first-seen rule keeps the better one."""
    rules = rules or MappingRules()
    out = MappedSpans()
    contexts: list[ContextSpan] = []
    calls: list[TokenSpan] = []
    for span in spans:
        try:
            result = map_span(span, tenant=tenant, received_ms=received_ms, rules=rules, api_key_id=api_key_id)
        except Exception as exc:  # noqa: BLE001 - last resort, see below
            # A mapper bug must not drop the whole request (the sender would retry it forever)
            # nor lose the span silently: dead-letter it with the error, and log it loudly.
            log.exception("tenant=%s: mapping span %s/%s failed", tenant, span.trace_id[:32], span.span_id[:16])
            result = Rejection(f"{INTERNAL_ERROR_REASON}: {type(exc).__name__}: {str(exc)[:300]}", span)
        if result is None:
            out.ignored += 1
        elif isinstance(result, Rejection):
            out.dead.append(result.dead_letter(tenant, received_ms))
        elif isinstance(result, ContextSpan):
            contexts.append(result)
        else:
            calls.append(result)
    calls.sort(key=lambda c: call_preference(c, rules.senders))  # stable: others keep their order
    out.accepted = [*contexts, *calls]
    return out


def call_preference(call: TokenSpan, senders: SenderCatalog) -> tuple:
    """Sort key, best first: usage present, the sender's preference (schemas/senders.yaml), then
    the number of token classes reported."""
    name = (call.sender or "default").split("@", 1)[0]
    rank = next((s.preference for s in senders.senders if s.name == name and s.preference is not None),
                senders.defaults.preference)
    classes = sum(1 for n in (call.cached_input_tokens, call.cache_creation_input_tokens, call.reasoning_tokens) if n)
    return (call.usage_missing, -rank, -classes)
