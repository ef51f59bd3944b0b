import json
from decimal import Decimal
from pathlib import Path

import pytest
from testkit.otlp_builders import LLM_ATTRS

from tokenpulse.core.genai_mapping import Rejection, map_span
from tokenpulse.core.otlp_decode import OtlpSpan, decode
from tokenpulse.schemas.events import TokenSpan

GOLDEN = Path(__file__).parents[2] / "fixtures" / "otlp_genai.json"


def otlp(attrs: dict, resource: dict | None = None, status_code: int = 0, scope: str = "",
         scope_version: str = "") -> OtlpSpan:
    return OtlpSpan(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, name="chat", start_ns=10**18,
                    end_ns=10**18 + 2 * 10**9, status_code=status_code, attributes=attrs,
                    resource=resource or {"service.name": "app"}, scope_name=scope, scope_version=scope_version)


def test_golden_json_maps_to_a_token_span_under_the_keys_tenant():
    llm, plain = decode(GOLDEN.read_bytes(), "application/json")
    event = map_span(llm, tenant="acme", received_ms=1)
    assert isinstance(event, TokenSpan)
    assert event.tenant == "acme"  # the payload's "tenant" attribute is ignored
    assert (event.service, event.team, event.session_id, event.agent_name) == ("support-bot", "support", "conv-42", "triage")
    assert event.model == "claude-sonnet-4-20250514"  # the response model is the one priced
    assert (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == (12000, 8000, 1000)
    assert event.runtime_kind.value == "cloud"
    assert "secret prompt" not in event.model_dump_json()
    assert map_span(plain, tenant="acme", received_ms=1) is None  # not an LLM call: ignored


def test_edge_runtime_is_inferred_from_local_providers_and_host():
    event = map_span(otlp({**LLM_ATTRS, "gen_ai.provider.name": "ollama"}, {"service.name": "a", "host.name": "box-7"}),
                     tenant="t", received_ms=1)
    assert (event.runtime_kind.value, event.runtime_id) == ("edge", "box-7")


def test_legacy_attribute_names_still_map():
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3}
    event = map_span(otlp(attrs), tenant="t", received_ms=1)
    assert (event.provider, event.input_tokens, event.output_tokens) == ("openai", 7, 3)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"gen_ai.usage.input_tokens": -5}, "is negative"),
        ({"gen_ai.usage.input_tokens": None, "gen_ai.operation.name": "workflow"},
         "missing token count gen_ai.usage.input_tokens on a span whose operation 'workflow'"),
        ({"gen_ai.usage.output_tokens": "many"}, "must be a whole number"),
        ({"gen_ai.usage.output_tokens": True}, "must be a whole number"),
        ({"gen_ai.usage.output_tokens": 2.5}, "must be a whole number"),
        ({"gen_ai.usage.cache_read.input_tokens": 5000}, "exceed input_tokens"),
        ({"gen_ai.provider.name": None}, "missing gen_ai.provider.name"),
        ({"gen_ai.request.model": None}, "cannot price the call"),
        ({"gen_ai.request.model": "m" * 10_000}, "at most 256 characters"),
        ({"tokenpulse.runtime.kind": "mainframe"}, "not one of cloud, edge"),
    ],
)
def test_bad_spans_are_rejected_with_a_reason(change, reason):
    attrs = {k: v for k, v in {**LLM_ATTRS, **change}.items() if v is not None}
    result = map_span(otlp(attrs), tenant="t", received_ms=1)
    assert isinstance(result, Rejection)
    assert reason in result.reason
    dead = result.dead_letter("t", 1)
    assert dead.reason == result.reason and dead.stage == "collector"


def test_failed_call_without_usage_is_kept_at_zero_tokens():
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "error.type": "rate_limited"}
    event = map_span(otlp(attrs, status_code=2), tenant="t", received_ms=1)
    assert isinstance(event, TokenSpan)
    assert (event.status.value, event.input_tokens, event.error_type) == ("error", 0, "rate_limited")


def test_dead_letter_excerpt_never_carries_content():
    attrs = {**LLM_ATTRS, "gen_ai.usage.input_tokens": -1, "gen_ai.input.messages": "my secret prompt",
             "big": "x" * 5000}
    excerpt = map_span(otlp(attrs), tenant="t", received_ms=1).dead_letter("t", 1).excerpt
    assert "my secret prompt" not in excerpt and "<content dropped>" in excerpt
    assert len(excerpt) <= 1500
    json.loads(excerpt)  # still readable


@pytest.mark.parametrize("change, missing", [
    ({"gen_ai.usage.input_tokens": None, "gen_ai.usage.output_tokens": None}, True),  # a stream without usage
    ({"gen_ai.usage.input_tokens": None}, True),
    ({"gen_ai.usage.output_tokens": None}, True),
    ({"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0}, True),  # zeros: no real call has 0 in
    ({"gen_ai.usage.output_tokens": 0}, False),
    ({}, False),
])
def test_a_successful_call_without_usage_stays_a_call_flagged_usage_missing(change, missing):
    attrs = {k: v for k, v in {**LLM_ATTRS, **change}.items() if v is not None}
    event = map_span(otlp(attrs), tenant="t", received_ms=1)
    assert isinstance(event, TokenSpan), event
    assert event.usage_missing is missing
    # a failed call without usage cost nothing: not flagged
    assert map_span(otlp(attrs, status_code=2), tenant="t", received_ms=1).usage_missing is False


def test_legacy_operation_name_and_indexed_prompts_of_older_openllmetry():
    attrs = {"gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o", "llm.request.type": "chat",
             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "summarize ticket 1234",
             "gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 2}
    first = map_span(otlp(attrs, scope="opentelemetry.instrumentation.openai.v1", scope_version="0.40.14"),
                     tenant="t", received_ms=1)
    again = map_span(otlp({**attrs, "gen_ai.prompt.0.content": "summarize ticket 9876"}), tenant="t", received_ms=1)
    other = map_span(otlp({**attrs, "gen_ai.prompt.0.content": "translate ticket 1234"}), tenant="t", received_ms=1)
    assert (first.operation, first.sender) == ("chat", "openllmetry@0.40.14")
    assert first.call_fingerprint == again.call_fingerprint != other.call_fingerprint
    assert "summarize" not in first.model_dump_json()


def test_agent_and_tool_spans_are_context_not_calls():
    from tokenpulse.schemas.events import ContextSpan

    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.agent.name": "triage", "gen_ai.agent.id": "a-1", "gen_ai.conversation.id": "conv-9"}
    event = map_span(otlp(agent), tenant="t", received_ms=1)
    assert isinstance(event, ContextSpan)
    assert (event.operation, event.agent_name, event.agent_id, event.session_id) == ("invoke_agent", "triage", "a-1", "conv-9")
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_docs", "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"query": "secret question 42"}', "error.type": "TimeoutError"}
    event = map_span(otlp(tool, status_code=2), tenant="t", received_ms=1)
    assert isinstance(event, ContextSpan)
    assert (event.tool_name, event.tool_call_id, event.status.value, event.error_type) == \
        ("search_docs", "call_1", "error", "TimeoutError")
    assert event.call_fingerprint and "secret" not in event.model_dump_json()
    # a framework span that only names the conversation is context too; an HTTP span is ignored
    assert isinstance(map_span(otlp({"gen_ai.conversation.id": "c"}), tenant="t", received_ms=1), ContextSpan)
    assert map_span(otlp({"http.request.method": "POST"}), tenant="t", received_ms=1) is None


def test_team_comes_from_the_span_the_resource_or_the_tenants_service_map():
    from tokenpulse.core.genai_mapping import MappingRules

    rules = MappingRules(service_teams={"app": "payments"})
    assert map_span(otlp(LLM_ATTRS), tenant="t", received_ms=1).team == "unassigned"
    assert map_span(otlp(LLM_ATTRS), tenant="t", received_ms=1, rules=rules).team == "payments"
    assert map_span(otlp({**LLM_ATTRS, "tokenpulse.team": "search"}), tenant="t", received_ms=1,
                    rules=rules).team == "search"


def test_sender_conventions_decide_what_input_tokens_mean():
    from tokenpulse.schemas.pricing import call_cost_usd, load_price_table

    # OpenLIT's Anthropic spans: input_tokens excludes the 8000 cache reads and 1000 cache writes.
    attrs = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4",
             "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.cache_read.input_tokens": 8000,
             "gen_ai.usage.cache_creation.input_tokens": 1000, "gen_ai.usage.output_tokens": 900}
    assert isinstance(map_span(otlp(attrs), tenant="t", received_ms=1), Rejection)  # semconv reading: impossible
    event = map_span(otlp(attrs, scope="openlit.instrumentation.anthropic"), tenant="t", received_ms=1)
    assert (event.input_tokens, event.cached_input_tokens, event.cache_creation_input_tokens) == (12000, 8000, 1000)
    assert event.sender == "openlit-anthropic"
    price = load_price_table().price_at("anthropic", "claude-sonnet-4", 1760000000000)
    # each class priced once: 3000 at 3.00 + 8000 at 0.30 + 1000 at 3.75 + 900 at 15.00 (per million)
    assert call_cost_usd(price, input_tokens=event.input_tokens, cached_input_tokens=8000,
                         cache_creation_input_tokens=1000, output_tokens=900) == Decimal("0.02865")

    # OpenLIT's Gemini spans: reasoning (thoughts) beside the output count.
    gem = {"gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-pro",
           "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 50, "gen_ai.usage.reasoning_tokens": 400}
    event = map_span(otlp(gem, scope="openlit.instrumentation.google_ai_studio"), tenant="t", received_ms=1)
    assert (event.output_tokens, event.reasoning_tokens) == (450, 400)
    # The anthropic SDK's own spans name cache writes cache_write.
    sdk = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
           "gen_ai.usage.input_tokens": 300, "gen_ai.usage.cache_write.input_tokens": 96,
           "gen_ai.usage.output_tokens": 9, "gen_ai.response.id": "msg_1"}
    event = map_span(otlp(sdk, scope="com.anthropic.sdk.python", scope_version="2.17.0"), tenant="t", received_ms=1)
    assert (event.cache_creation_input_tokens, event.response_id, event.sender) == (96, "msg_1", "anthropic-sdk@2.17.0")


@pytest.mark.parametrize("extra, tier", [
    ({}, "standard"), ({"tokenpulse.request.batch": True}, "batch"),
    ({"openai.response.service_tier": "flex"}, "flex"), ({"openai.request.service_tier": "auto"}, "standard"),
])
def test_service_tier_is_read_from_the_span(extra, tier):
    assert map_span(otlp({**LLM_ATTRS, **extra}), tenant="t", received_ms=1).service_tier == tier


def test_call_fingerprint_passed_through_hashed_or_derived_from_content_without_keeping_content():
    base = LLM_ATTRS
    ours = map_span(otlp({**base, "tokenpulse.call.fingerprint": "0123456789abcdef"}), tenant="acme", received_ms=1)
    assert ours.call_fingerprint == "0123456789abcdef"
    foreign = map_span(otlp({**base, "tokenpulse.call.fingerprint": "has spaces / and slashes"}), tenant="acme", received_ms=1)
    assert foreign.call_fingerprint and " " not in foreign.call_fingerprint
    msgs = '[{"role": "user", "content": "summarize ticket 1234"}]'
    derived = map_span(otlp({**base, "gen_ai.input.messages": msgs}), tenant="acme", received_ms=1)
    again = map_span(otlp({**base, "gen_ai.input.messages": msgs.replace("1234", "9876")}), tenant="acme", received_ms=1)
    other = map_span(otlp({**base, "gen_ai.input.messages": msgs.replace("summarize", "translate")}), tenant="acme", received_ms=1)
    assert derived.call_fingerprint == again.call_fingerprint != other.call_fingerprint
    assert "summarize" not in derived.model_dump_json()
    assert map_span(otlp(base), tenant="acme", received_ms=1).call_fingerprint is None


# --- the newest turn, in every message shape real senders put on the wire -----------------
def _history(shape: str, steps: list[tuple[str, str]]) -> dict:
    """A tool-using agent's request attributes after `steps` (tool query, tool result) pairs,
    with the whole history, as each sender writes it."""
    if shape == "semconv-parts":  # gen_ai.input.messages JSON (openai-v2, current OpenLLMetry, anthropic SDK)
        msgs = [{"role": "system", "parts": [{"type": "text", "content": "You are a support agent."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Ticket 4411: the export fails."}]}]
        for i, (query, result) in enumerate(steps):
            msgs.append({"role": "assistant", "parts": [{"type": "tool_call", "id": f"call_{i}{'Z' * i}", "name": "search",
                                                         "arguments": {"query": query}}]})
            msgs.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": f"call_{i}{'Z' * i}",
                                                    "response": result}]})
        return {"gen_ai.input.messages": json.dumps(msgs)}
    if shape == "legacy-indexed":  # OpenLLMetry before gen_ai.input.messages
        attrs = {"gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are a support agent.",
                 "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Ticket 4411: the export fails."}
        n = 2
        for i, (query, result) in enumerate(steps):
            attrs |= {f"gen_ai.prompt.{n}.role": "assistant", f"gen_ai.prompt.{n}.tool_calls.0.name": "search",
                      f"gen_ai.prompt.{n}.tool_calls.0.id": f"call_{i}{'Z' * i}",
                      f"gen_ai.prompt.{n}.tool_calls.0.arguments": json.dumps({"query": query}),
                      f"gen_ai.prompt.{n + 1}.role": "tool", f"gen_ai.prompt.{n + 1}.content": result,
                      f"gen_ai.prompt.{n + 1}.tool_call_id": f"call_{i}{'Z' * i}"}
            n += 2
        return attrs
    raise AssertionError(shape)


@pytest.mark.parametrize("shape", ["semconv-parts", "legacy-indexed"])
def test_a_stuck_agent_repeats_its_newest_turn_while_its_history_grows(shape):
    def fingerprint(steps):
        event = map_span(otlp({**LLM_ATTRS, **_history(shape, steps)}), tenant="t", received_ms=1)
        return event.call_fingerprint

    stuck = [("export error 502", "error: upstream timeout")] * 4
    # each call carries one more copy of the same failing step: the same newest turn
    stuck_prints = {fingerprint(stuck[:n]) for n in range(1, 5)}
    assert len(stuck_prints) == 1 and None not in stuck_prints
    # an agent that makes progress: every step asks and learns something new
    working = [("export error 502", "3 documents"), ("proxy timeout settings", "timeout is 30s"),
               ("raise proxy timeout", "done"), ("retry export", "export ok")]
    assert len({fingerprint(working[:n]) for n in range(1, 5)}) == 4
    # the first call (no assistant turn yet) is its user message, distinct from the turns after
    assert fingerprint([]) not in stuck_prints


def test_newest_turn_of_anthropic_blocks_and_of_a_plain_chat():
    from tokenpulse.core.fingerprint import newest_turn

    history = [{"role": "user", "content": "find the invoice"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "search", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "none"}]}]
    assert newest_turn(history) == history[1:]
    assert newest_turn(history[:1]) == history[:1]
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert newest_turn(chat) == chat[1:]
    assert newest_turn("plain prompt text") == "plain prompt text"
    assert newest_turn([1, 2]) == [1, 2]  # not messages: as given


def test_a_call_whose_provider_was_evicted_by_the_sdk_limit_says_so():
    """The OTel Python SDK keeps 128 attributes and evicts the oldest: with a long indexed
    history (older OpenLLMetry) gen_ai.provider.name goes first. The real SDK, real OTLP."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    # as instrumentations do: request attributes first, the prompts, then usage from the response
    span = tracer.start_span("chat", attributes={"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                                                 **_history("legacy-indexed", [("q", "r")] * 40)})
    span.set_attributes({"gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2})
    span.end()
    # everything GenAI but the prompts evicted: still a dead letter with the reason, not ignored
    lost = tracer.start_span("chat", attributes={"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10,
                                                 **_history("legacy-indexed", [("q", "r")] * 40)})
    lost.end()
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    for decoded, missing in zip(decode(body, "application/x-protobuf"), ("gen_ai.provider.name", "without model or usage")):
        assert decoded.dropped_attributes > 0
        rejected = map_span(decoded, tenant="t", received_ms=1)
        assert isinstance(rejected, Rejection), rejected
        assert missing in rejected.reason and "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT" in rejected.reason
    # the JSON encoding carries the count too; a bad count never fails the request
    def json_request(dropped):
        span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": "1",
                "endTimeUnixNano": "2", "droppedAttributesCount": dropped}
        return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()

    assert [decode(json_request(d), "application/json")[0].dropped_attributes for d in (7, "nope")] == [7, 0]
