"""An app instrumented the way real apps are, run inside one sender's own virtualenv.

It imports nothing from tokenpulse: only the OpenTelemetry SDK, the real `openai` /
`anthropic` clients and the instrumentation package under test, set up as that package's
documentation says. It drives agent sessions against the fake provider (tokenpulse/conformance/
fake_provider.py) and exports its spans over OTLP/HTTP to a tokenpulse collector.

What it writes to --app-truth (JSON lines), one line per provider call, is what the app
itself knows about the call: the response id it received, the conversation and agent it
belongs to, whether it streamed. The provider's truth file has the usage. Together they
are the known truth the pipeline's rows are compared with.

Agent sessions follow the OTel GenAI conventions for agents: an `invoke_agent {name}`
span carries gen_ai.conversation.id and gen_ai.agent.*; LLM calls and `execute_tool
{name}` spans are its children; every call sends the whole message history.

    python sender_app.py --sender openllmetry --provider-url http://127.0.0.1:18900 \
        --collector http://127.0.0.1:4318 --api-key demo-acme-key --app-truth truth.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

from opentelemetry import trace

SENDERS = ("openllmetry", "openlit", "otel-openai-v2", "anthropic-sdk")
TOOLS_OPENAI = [{"type": "function", "function": {
    "name": "search_docs", "description": "Search the knowledge base",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]
TOOLS_ANTHROPIC = [{"name": "search_docs", "description": "Search the knowledge base",
                    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}},
                                     "required": ["query"]}}]


def setup_tracing(sender: str, collector: str, api_key: str, service: str, capture_content: bool):
    """The sender's own setup, as its README shows. Returns the provider to flush at the end."""
    endpoint = collector.rstrip("/") + "/v1/traces"
    headers = {"authorization": f"Bearer {api_key}"}
    if sender == "openlit":
        import openlit  # sets up its own global TracerProvider and OTLP exporter

        openlit.init(otlp_endpoint=collector.rstrip("/"), otlp_headers=headers, application_name=service,
                     service_name=service, environment="conformance", capture_message_content=capture_content,
                     disable_metrics=True, disable_events=True)
        return trace.get_tracer_provider()

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers)))
    trace.set_tracer_provider(provider)
    if sender == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "true" if capture_content else "false"
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()
        AnthropicInstrumentor().instrument()
    elif sender == "otel-openai-v2":
        if capture_content:  # content on spans needs the latest experimental GenAI conventions
            os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
            os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()
    elif sender == "anthropic-sdk":
        if capture_content:
            os.environ["ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"] = "content"
    return provider


class App:
    def __init__(self, args) -> None:
        self.args = args
        self.tracer = trace.get_tracer("conformance.agent_app")
        self.truth = Path(args.app_truth).open("a")
        self.rng = random.Random(args.seed)
        self.openai = self.anthropic = None
        if "openai" in args.providers:
            import openai

            self.openai = openai.OpenAI(base_url=args.provider_url.rstrip("/") + "/v1", api_key="sk-fake")
        if "anthropic" in args.providers:
            import anthropic

            self.anthropic = anthropic.Anthropic(base_url=args.provider_url.rstrip("/"), api_key="sk-ant-fake")

    def record(self, **fields) -> None:
        self.truth.write(json.dumps({"sender": self.args.sender, **fields}) + "\n")
        self.truth.flush()

    # --- one provider call each ----------------------------------------------------------
    def openai_call(self, model: str, messages: list, *, stream: bool, include_usage: bool = True,
                    tools: bool = False, session: dict | None = None):
        kwargs = {"model": model, "messages": messages, "extra_headers": {"x-fake-tool-steps": str(self.steps)}}
        if tools:
            kwargs["tools"] = TOOLS_OPENAI
        if not stream:
            resp = self.openai.chat.completions.create(**kwargs)
            rid, msg = resp.id, resp.choices[0].message
            tool_calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                          for c in (msg.tool_calls or [])]
            text = msg.content
        else:
            if include_usage:
                kwargs["stream_options"] = {"include_usage": True}
            rid, text, tool_calls = None, "", {}
            for chunk in self.openai.chat.completions.create(stream=True, **kwargs):
                rid = rid or chunk.id
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for tc in choice.delta.tool_calls or []:
                        slot = tool_calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                        slot["id"] = tc.id or slot["id"]
                        if tc.function:
                            slot["name"] = tc.function.name or slot["name"]
                            slot["arguments"] += tc.function.arguments or ""
            tool_calls = list(tool_calls.values())
        self.record(response_id=rid, provider="openai", request_model=model, streamed=stream, **(session or {}))
        return text, tool_calls

    def anthropic_call(self, model: str, messages: list, *, stream: bool, tools: bool = False,
                       thinking: bool = False, session: dict | None = None):
        kwargs = {"model": model, "max_tokens": 1024, "messages": messages, "system": "You are a support agent.",
                  "extra_headers": {"x-fake-tool-steps": str(self.steps)}}
        if tools:
            kwargs["tools"] = TOOLS_ANTHROPIC
        if thinking:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": 512}
        if not stream:
            resp = self.anthropic.messages.create(**kwargs)
            rid, blocks = resp.id, [b.model_dump() for b in resp.content]
        else:
            with self.anthropic.messages.stream(**kwargs) as s:
                for _ in s:
                    pass
                final = s.get_final_message()
            rid, blocks = final.id, [b.model_dump() for b in final.content]
        self.record(response_id=rid, provider="anthropic", request_model=model, streamed=stream, **(session or {}))
        return blocks

    # --- an agent session ----------------------------------------------------------------
    def agent_session(self, provider: str, model: str, agent: str, stream: bool) -> None:
        conversation = f"conv-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]}"
        agent_id = f"agent-{agent}"
        session = {"conversation_id": conversation, "agent_name": agent, "agent_id": agent_id}
        attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": provider,
                 "gen_ai.agent.name": agent, "gen_ai.agent.id": agent_id, "gen_ai.conversation.id": conversation,
                 "gen_ai.request.model": model}
        with self.tracer.start_as_current_span(f"invoke_agent {agent}", kind=trace.SpanKind.INTERNAL, attributes=attrs):
            if provider == "openai":
                messages = [{"role": "system", "content": "You are a support agent."},
                            {"role": "user", "content": f"Ticket {self.rng.randint(1000, 9999)}: the export fails."}]
                for _ in range(self.steps + 1):
                    text, calls = self.openai_call(model, messages, stream=stream, tools=True, session=session)
                    if not calls:
                        break
                    messages.append({"role": "assistant", "content": None, "tool_calls": [
                        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                        for c in calls]})
                    for c in calls:
                        result = self.tool(c["name"], c["id"], c["arguments"])
                        messages.append({"role": "tool", "tool_call_id": c["id"], "content": result})
            else:
                messages = [{"role": "user", "content": f"Ticket {self.rng.randint(1000, 9999)}: the export fails."}]
                for _ in range(self.steps + 1):
                    blocks = self.anthropic_call(model, messages, stream=stream, tools=True, session=session)
                    uses = [b for b in blocks if b.get("type") == "tool_use"]
                    if not uses:
                        break
                    messages.append({"role": "assistant", "content": blocks})
                    messages.append({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": u["id"],
                         "content": self.tool(u["name"], u["id"], json.dumps(u["input"]))} for u in uses]})

    def tool(self, name: str, call_id: str, arguments: str) -> str:
        """An execute_tool span per the GenAI conventions (the app's own code, as frameworks do)."""
        with self.tracer.start_as_current_span(f"execute_tool {name}", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": call_id}):
            time.sleep(0.002)
            return f"3 documents found for {arguments[:40]}"

    def run(self) -> None:
        self.steps = self.args.tool_steps
        a = self.args
        for i in range(a.sessions):
            stream = i % 2 == 1
            if self.openai is not None:
                self.agent_session("openai", ("gpt-4o", "gpt-4o-mini", "o3-mini")[i % 3], "triage", stream)
            if self.anthropic is not None:
                self.agent_session("anthropic", ("claude-sonnet-4-5", "claude-haiku-4-5")[i % 2], "researcher", stream)
        # Calls outside any agent: plain chat, a stream without usage, extended thinking.
        if self.openai is not None:
            self.openai_call("gpt-4o-mini", [{"role": "user", "content": "Summarize: tokens."}], stream=False)
            self.openai_call("gpt-4o", [{"role": "user", "content": "Stream without usage."}], stream=True,
                             include_usage=False)
        if self.anthropic is not None:
            self.anthropic_call("claude-sonnet-4-5", [{"role": "user", "content": "Think first."}], stream=False,
                                thinking=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sender", choices=SENDERS, required=True)
    parser.add_argument("--providers", default="openai,anthropic", help="comma-separated: openai, anthropic")
    parser.add_argument("--provider-url", required=True, help="the fake provider's base URL")
    parser.add_argument("--collector", required=True, help="OTLP/HTTP base URL of the tokenpulse collector")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--service", default="conformance-app")
    parser.add_argument("--app-truth", required=True, help="JSON-lines file of what the app knows per call")
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--tool-steps", type=int, default=2, help="tool calls per agent session")
    parser.add_argument("--capture-content", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.providers = [p for p in args.providers.split(",") if p]
    provider = setup_tracing(args.sender, args.collector, args.api_key, args.service, args.capture_content)
    App(args).run()
    provider.force_flush()
    provider.shutdown()
    print(f"{args.sender}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
