"""Versioned event models carried on Kafka.

`TokenSpan` is one LLM call as tokenpulse sees it after the collector. Field names are
the JSON keys on the wire and the column names in Flink and ClickHouse, so a rename
here is a schema change: bump SCHEMA_VERSION and add a migration.

Token counts follow the OTel GenAI conventions: `cached_input_tokens` and
`cache_creation_input_tokens` are subsets of `input_tokens`; `reasoning_tokens` is a
subset of `output_tokens`. Audio tokens (tokenpulse attributes) are subsets as well:
`input_audio_tokens` of the input tokens *not* read from or written to the cache (cache
counts may include audio; those are billed at the cache rates), `output_audio_tokens` of
`output_tokens`. The model validator enforces that, so no token can be priced twice
downstream. Images and seconds of input audio are counted units of their own.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

# Bounds that keep one hostile attribute from bloating every downstream store.
MAX_LABEL_CHARS = 256
MAX_TOKENS_PER_CALL = 100_000_000  # far above any context window; guards against garbage


class RuntimeKind(str, Enum):
    cloud = "cloud"
    edge = "edge"


class CallStatus(str, Enum):
    ok = "ok"
    error = "error"


Label = Field(min_length=1, max_length=MAX_LABEL_CHARS)
OptionalLabel = Field(default=None, max_length=MAX_LABEL_CHARS)
TokenCount = Field(default=0, ge=0, le=MAX_TOKENS_PER_CALL)
UnitCount = Field(default=0, ge=0, le=MAX_TOKENS_PER_CALL)  # images, seconds of audio


class TokenSpan(BaseModel):
    """One LLM call (an OTel span with gen_ai.* attributes), validated and tenant-stamped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["span"] = "span"

    # Who: the tenant comes from the sender's API key, never from the payload.
    tenant: str = Label
    # Which of the tenant's keys sent it: a configured key name or "sha256:<digest prefix>",
    # never the key (schemas/tenants.py). None for inputs without keys (Kafka topics).
    # Added without a version bump: optional, so v1 readers and writers agree.
    api_key_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    service: str = Label  # OTel resource `service.name`: the app
    team: str = Label
    agent_id: str | None = OptionalLabel
    agent_name: str | None = OptionalLabel
    session_id: str | None = OptionalLabel  # gen_ai.conversation.id
    tool_name: str | None = OptionalLabel
    # Hash of the normalized request (tokenpulse.call.fingerprint) for loop detection.
    # Added without a version bump: optional, so v1 readers and writers agree.
    call_fingerprint: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_:.-]{1,128}$")

    # Which span: identity for deduplication is (tenant, trace_id, span_id).
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    span_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    parent_span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")

    # What: provider and model. `model` is the one priced: response model, else request model.
    operation: str = Label
    provider: str = Label
    request_model: str | None = OptionalLabel
    response_model: str | None = OptionalLabel
    model: str = Label
    runtime_kind: RuntimeKind
    runtime_id: str = Label

    # When: epoch milliseconds (UTC). end_ms is the event time used for windows.
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    received_ms: int = Field(ge=0)

    # How much.
    input_tokens: int = TokenCount
    output_tokens: int = TokenCount
    cached_input_tokens: int = TokenCount
    cache_creation_input_tokens: int = TokenCount
    reasoning_tokens: int = TokenCount
    # Audio and image usage (issue #5). Added without a version bump: optional with defaults,
    # so v1 readers and writers agree. Audio tokens are subsets (see the module docstring).
    input_audio_tokens: int = TokenCount
    output_audio_tokens: int = TokenCount
    input_images: int = UnitCount
    output_images: int = UnitCount
    input_audio_seconds: int = UnitCount
    # The app answered from its own semantic cache (issue #7): no provider call, so it costs 0;
    # the usage and model above are what the call *would* have used (the savings counterfactual).
    semantic_cache_hit: bool = False

    status: CallStatus = CallStatus.ok
    error_type: str | None = OptionalLabel
    # Real-world fidelity (issue #17). Added without a version bump: optional with defaults.
    # The provider's id for the response (gen_ai.response.id): two spans with the same id in one
    # trace describe one provider call (an instrumentation's span beside the provider SDK's own)
    # and the stream keeps one of them.
    response_id: str | None = OptionalLabel
    # Which sender conventions read the span (schemas/senders.yaml) and the scope version.
    sender: str | None = OptionalLabel
    # The call succeeded but its span carries no usage (e.g. a stream from an instrumentation that
    # does not read the final usage chunk): it is still a call, counted and flagged, with 0 tokens.
    usage_missing: bool = False
    # Provider service tier the call was billed under ("standard", "batch", "flex", ...).
    # Added without a version bump: optional with a default, so v1 readers and writers agree.
    service_tier: str = Field(default="standard", min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")

    @model_validator(mode="after")
    def _subsets_and_order(self) -> TokenSpan:
        if self.end_ms < self.start_ms:
            raise ValueError(f"span ends before it starts (start_ms={self.start_ms}, end_ms={self.end_ms})")
        if self.cached_input_tokens + self.cache_creation_input_tokens > self.input_tokens:
            raise ValueError(
                "cache read + cache creation tokens "
                f"({self.cached_input_tokens}+{self.cache_creation_input_tokens}) exceed input_tokens "
                f"({self.input_tokens}); per OTel GenAI conventions they are subsets of input tokens"
            )
        if self.cached_input_tokens + self.cache_creation_input_tokens + self.input_audio_tokens > self.input_tokens:
            raise ValueError(
                f"input audio tokens ({self.input_audio_tokens}) plus cache read + creation tokens "
                f"({self.cached_input_tokens}+{self.cache_creation_input_tokens}) exceed input_tokens "
                f"({self.input_tokens}); audio tokens are the uncached part of the input tokens"
            )
        if self.output_audio_tokens > self.output_tokens:
            raise ValueError(
                f"output audio tokens ({self.output_audio_tokens}) exceed output_tokens ({self.output_tokens}); "
                "audio tokens are a subset of output tokens"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning tokens ({self.reasoning_tokens}) exceed output_tokens ({self.output_tokens}); "
                "per OTel GenAI conventions reasoning tokens are a subset of output tokens"
            )
        return self

    def kafka_key(self) -> bytes:
        """One trace in one partition, in order: the stream assembles each trace (parents,
        siblings) in one place, and sees a request's spans in the order the collector wrote them.
        A root call with a response id is keyed by that id instead: an instrumentation's span and
        the provider SDK's own span of one call are then two roots of two traces
        (stream_jobs/cost_rollup.py ASSEMBLY_KEY)."""
        if self.parent_span_id is None and self.response_id is not None:
            return f"{self.tenant}|r:{self.response_id}".encode()
        return f"{self.tenant}|{self.trace_id}".encode()


class ContextSpan(BaseModel):
    """A span that is not an LLM call but gives LLM calls their context (issue #17): an
    `invoke_agent` span (conversation, agent), an `execute_tool` span (tool name, duration,
    status), or any span carrying gen_ai.conversation.id / gen_ai.agent.*. Real
    instrumentations put conversation and agent only on such ancestors, never on the LLM
    spans; the stream job hands them down to the calls of the same trace, and stores
    `execute_tool` spans as tool calls (a loop signal that needs no prompt content).
    Field names match TokenSpan's where they mean the same, so both share one topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["context"] = "context"
    tenant: str = Label
    api_key_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    service: str = Label
    team: str = Label
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    span_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    parent_span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    operation: str = Label  # invoke_agent, create_agent, execute_tool, invoke_workflow, ...
    agent_id: str | None = OptionalLabel
    agent_name: str | None = OptionalLabel
    session_id: str | None = OptionalLabel  # gen_ai.conversation.id
    tool_name: str | None = OptionalLabel
    tool_call_id: str | None = OptionalLabel
    tool_type: str | None = OptionalLabel
    # Hash of the normalized tool arguments when the sender captured them (opt-in content);
    # the arguments themselves are dropped here.
    call_fingerprint: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_:.-]{1,128}$")
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    received_ms: int = Field(ge=0)
    status: CallStatus = CallStatus.ok
    error_type: str | None = OptionalLabel
    sender: str | None = OptionalLabel

    @model_validator(mode="after")
    def _order(self) -> ContextSpan:
        if self.end_ms < self.start_ms:
            raise ValueError(f"span ends before it starts (start_ms={self.start_ms}, end_ms={self.end_ms})")
        return self

    def kafka_key(self) -> bytes:
        return f"{self.tenant}|{self.trace_id}".encode()


class Heartbeat(BaseModel):
    """A watermark heartbeat: lets event time advance on partitions with no traffic.

    Collectors write one to every partition of the spans topic each interval; the Flink
    job uses it only for its watermark and discards it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["heartbeat"] = "heartbeat"
    end_ms: int = Field(ge=0)
    collector_id: str = Label


class DeadLetter(BaseModel):
    """Something tokenpulse could not accept, and why. Written to the dead-letter topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    tenant: str
    stage: Literal["collector", "loader", "stream"]
    reason: str = Field(max_length=2000)
    received_ms: int
    trace_id: str | None = None
    span_id: str | None = None
    # A bounded, content-free excerpt of what was rejected (attribute keys and small values).
    excerpt: str = Field(default="", max_length=4000)
