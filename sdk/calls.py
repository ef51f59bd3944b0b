"""Record one LLM call as an OpenTelemetry GenAI span that tokenpulse prices.

    with record_llm_call(provider="openai", model="gpt-4o", session_id=sid, messages=msgs,
                         breaker=breaker) as call:
        resp = client.chat.completions.create(model="gpt-4o", messages=msgs)
        call.set_usage(input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens)

The span goes through the app's own OpenTelemetry setup (any exporter pointed at the
collector). It carries names and counts only: prompts and completions are never put on it;
the request's content is reduced to a fingerprint (core/fingerprint.py) for loop detection.
With a breaker, a stopped session raises SessionStopped before the span starts, so nothing
is spent. As a decorator the span wraps each call of the function, and the function reaches
the handle through `current_llm_call()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tokenpulse.core.fingerprint import call_fingerprint
from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas import usage_attributes as ua

from .breaker import CircuitBreaker

TRACER_NAME = "tokenpulse.sdk"

_current: ContextVar[LlmCall | None] = ContextVar("tokenpulse_llm_call", default=None)


class LlmCall:
    """Handle on the running call's span: report what the provider answered."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def set_usage(self, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0,
                  cache_creation_input_tokens: int = 0, reasoning_tokens: int = 0, input_audio_tokens: int = 0,
                  output_audio_tokens: int = 0, input_images: int = 0, output_images: int = 0,
                  input_audio_seconds: int = 0) -> None:
        """Token counts per OTel semconv: cache tokens are part of input_tokens, reasoning
        tokens part of output_tokens. Audio tokens are part of them too (input audio: the
        uncached part), priced at the model's audio rates; images and seconds of input audio
        are units priced per image / per second. Recorded as given (never raises in the app);
        the collector rejects inconsistent counts with a reason you can query."""
        attributes = {
            sc.INPUT_TOKENS: input_tokens,
            sc.OUTPUT_TOKENS: output_tokens,
            sc.CACHE_READ_INPUT_TOKENS: cached_input_tokens,
            sc.CACHE_CREATION_INPUT_TOKENS: cache_creation_input_tokens,
            sc.REASONING_OUTPUT_TOKENS: reasoning_tokens,
        }
        media = {ua.INPUT_AUDIO_TOKENS: input_audio_tokens, ua.OUTPUT_AUDIO_TOKENS: output_audio_tokens,
                 ua.INPUT_IMAGES: input_images, ua.OUTPUT_IMAGES: output_images,
                 ua.INPUT_AUDIO_SECONDS: input_audio_seconds}
        attributes.update({k: v for k, v in media.items() if v})  # text-only calls stay as before
        self.span.set_attributes(attributes)

    def set_response_model(self, model: str) -> None:
        self.span.set_attribute(sc.RESPONSE_MODEL, model)


def current_llm_call() -> LlmCall | None:
    """The innermost call being recorded in this context (for decorated functions)."""
    return _current.get()


@contextmanager
def record_llm_call(*, provider: str, model: str, operation: str = "chat", session_id: str | None = None,
                    agent_id: str | None = None, agent_name: str | None = None, tool_name: str | None = None,
                    team: str | None = None, runtime_kind: str | None = None, runtime_id: str | None = None,
                    fingerprint: str | None = None, messages: Any = None, prompt: str | None = None,
                    tool_arguments: Any = None, breaker: CircuitBreaker | None = None,
                    semantic_cache_hit: bool = False,
                    tracer_provider: trace.TracerProvider | None = None) -> Iterator[LlmCall]:
    """A CLIENT span named "<operation> <model>" around one LLM call (see the module docstring).

    messages / prompt / tool_arguments are used only to compute the fingerprint (unless one
    is passed) and are never recorded. semantic_cache_hit=True records an answer served from
    the app's own semantic cache: no provider call, so tokenpulse prices it at 0 and counts
    what it saved. Give `model` and `set_usage` the call it replaced (e.g. the usage stored
    with the cached answer): that is the counterfactual the savings report prices.
    An exception inside sets error.type and ERROR status, then propagates; its message is
    not recorded either (it may quote the prompt)."""
    if breaker is not None:
        breaker.check(session_id)  # before the span and the spend
    if fingerprint is None and (messages is not None or prompt is not None or tool_arguments is not None):
        fingerprint = call_fingerprint(model=model, messages=messages, prompt=prompt,
                                       tool_name=tool_name, tool_arguments=tool_arguments)
    attributes = {
        sc.PROVIDER_NAME: provider,
        sc.OPERATION_NAME: operation,
        sc.REQUEST_MODEL: model,
        sc.CONVERSATION_ID: session_id,
        sc.AGENT_ID: agent_id,
        sc.AGENT_NAME: agent_name,
        sc.TOOL_NAME: tool_name,
        sc.TEAM: team,
        sc.RUNTIME_KIND: runtime_kind,
        sc.RUNTIME_ID: runtime_id,
        sc.CALL_FINGERPRINT: fingerprint,
        ua.SEMANTIC_CACHE_HIT: True if semantic_cache_hit else None,
    }
    tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
    with tracer.start_as_current_span(f"{operation} {model}", kind=SpanKind.CLIENT,
                                      attributes={k: v for k, v in attributes.items() if v is not None},
                                      record_exception=False, set_status_on_exception=False) as span:
        call = LlmCall(span)
        token = _current.set(call)
        try:
            yield call
        except Exception as exc:
            span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            _current.reset(token)
