"""A fake LLM provider with known truth: OpenAI Chat Completions and Anthropic Messages.

Real clients (`openai`, `anthropic`) are pointed at it with `base_url`; the instrumentation
packages under test see ordinary responses, streamed or not. Every response's usage is
decided here and written to a JSON-lines truth file, in the OTel GenAI convention's terms
(cache and reasoning tokens are subsets of input / output tokens), so the conformance suite
can compare what the pipeline stored with what the provider billed.

Usage is a pure function of the call's sequence number and the request, so one seed gives
one truth. Cache reads, cache writes (Anthropic only) and reasoning tokens (reasoning models
only) appear on some calls, as they do in production.

Tool calling: when the request declares tools, the reply is a tool call until the request
holds `x-fake-tool-steps` tool results (a request header; default 2), then a final answer.
An app drives an agent loop against it as it would against the real API.

Run alone:  python -m tokenpulse.conformance.fake_provider --port 18900 --truth /tmp/truth.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True)
class Usage:
    """One call's billed usage, semconv style: cached/cache_creation within input, reasoning within output."""

    input_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class TruthRecord:
    response_id: str
    api: str  # "openai.chat" | "anthropic.messages"
    model: str
    streamed: bool
    usage_in_stream: bool  # False: a streamed OpenAI reply without usage (include_usage off)
    tool_call: bool
    received_ms: int
    usage: Usage


def usage_for(seq: int, api: str, model: str, request_chars: int) -> Usage:
    """Deterministic, varied usage: the input grows with the request like a real tokenizer would."""
    input_tokens = 40 + request_chars // 4 + seq % 17
    cache_read = (input_tokens // 2) if seq % 3 == 0 else 0
    cache_creation = min(96, input_tokens // 3) if api == "anthropic.messages" and seq % 3 == 1 else 0
    reasoning = (64 + 8 * (seq % 5)) if model.startswith(REASONING_MODEL_PREFIXES) or "thinking" in model else 0
    output = 12 + seq % 23 + reasoning
    return Usage(input_tokens, cache_read, cache_creation, output, reasoning)


class FakeProvider:
    """An HTTP server on loopback; `url` for OpenAI clients, `anthropic_url` for Anthropic ones."""

    def __init__(self, truth_file: Path, port: int = 0, latency_ms: int = 5) -> None:
        self.truth_file = Path(truth_file)
        self.latency_ms = latency_ms
        self._seq = 0
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                path = self.path.split("?")[0]
                steps = int(self.headers.get("x-fake-tool-steps", "2"))
                if path.endswith("/chat/completions"):
                    provider._openai_chat(self, body, steps)
                elif path.endswith("/messages"):
                    provider._anthropic_messages(self, body, steps)
                else:
                    self.send_error(404, f"fake provider: no route {path}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def truth(self) -> list[dict]:
        if not self.truth_file.exists():
            return []
        return [json.loads(line) for line in self.truth_file.read_text().splitlines() if line]

    # --- bookkeeping -------------------------------------------------------------------------
    def _next(self, api: str, body: dict) -> tuple[int, str]:
        with self._lock:
            self._seq += 1
            seq = self._seq
        digest = hashlib.sha256(f"{seq}:{api}:{time.time_ns()}".encode()).hexdigest()[:24]
        prefix = "chatcmpl-" if api == "openai.chat" else "msg_"
        return seq, prefix + digest

    def _record(self, record: TruthRecord) -> None:
        line = json.dumps(asdict(record)) + "\n"
        with self._lock, self.truth_file.open("a") as f:
            f.write(line)

    def _pause(self) -> None:
        time.sleep(self.latency_ms / 1000)

    # --- OpenAI Chat Completions -------------------------------------------------------------
    def _openai_chat(self, h: BaseHTTPRequestHandler, body: dict, steps: int) -> None:
        model = body.get("model", "gpt-4o")
        messages = body.get("messages", [])
        seq, rid = self._next("openai.chat", body)
        usage = usage_for(seq, "openai.chat", model, len(json.dumps(messages)))
        tool = bool(body.get("tools")) and sum(1 for m in messages if m.get("role") == "tool") < steps
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        served_model = _dated(model)
        self._pause()
        u = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
             "total_tokens": usage.input_tokens + usage.output_tokens,
             "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        tool_calls = [{"id": f"call_{rid[-12:]}", "type": "function",
                       "function": {"name": _tool_name(body), "arguments": json.dumps({"query": "status", "step": seq})}}]
        text = "Done: the answer is 42." if not tool else None
        created = int(time.time())
        if not stream:
            message = {"role": "assistant", "content": text, "refusal": None}
            if tool:
                message["tool_calls"] = tool_calls
            _send_json(h, {"id": rid, "object": "chat.completion", "created": created, "model": served_model,
                           "system_fingerprint": "fp_fake", "service_tier": "default",
                           "choices": [{"index": 0, "message": message, "logprobs": None,
                                        "finish_reason": "tool_calls" if tool else "stop"}],
                           "usage": u})
        else:
            base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": served_model,
                    "system_fingerprint": "fp_fake", "service_tier": "default"}
            events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]}]
            if tool:
                call = tool_calls[0]
                events.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "id": call["id"], "type": "function",
                     "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}]})
                events.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": call["function"]["arguments"]}}]}, "finish_reason": None}]})
            else:
                for word in text.split(" "):
                    events.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "},
                                                        "finish_reason": None}]})
            events.append({**base, "choices": [{"index": 0, "delta": {},
                                                "finish_reason": "tool_calls" if tool else "stop"}]})
            if include_usage:
                events.append({**base, "choices": [], "usage": u})
            _send_sse(h, [(None, e) for e in events] + [(None, "[DONE]")])
        self._record(TruthRecord(rid, "openai.chat", served_model, stream, include_usage or not stream, tool,
                                 int(time.time() * 1000), usage))

    # --- Anthropic Messages ------------------------------------------------------------------
    def _anthropic_messages(self, h: BaseHTTPRequestHandler, body: dict, steps: int) -> None:
        model = body.get("model", "claude-sonnet-4-5")
        messages = body.get("messages", [])
        seq, rid = self._next("anthropic.messages", body)
        usage = usage_for(seq, "anthropic.messages", model, len(json.dumps(messages)) + len(json.dumps(body.get("system", ""))))
        results = sum(1 for m in messages if isinstance(m.get("content"), list)
                      and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m["content"]))
        tool = bool(body.get("tools")) and results < steps
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        reasoning = usage.reasoning_tokens or (48 + seq % 9 if thinking else 0)
        usage = Usage(usage.input_tokens, usage.cache_read_tokens, usage.cache_creation_tokens,
                      usage.output_tokens - usage.reasoning_tokens + reasoning, reasoning)
        # Anthropic's own usage object: input_tokens is the uncached part only.
        uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_creation_tokens
        u = {"input_tokens": uncached, "cache_read_input_tokens": usage.cache_read_tokens,
             "cache_creation_input_tokens": usage.cache_creation_tokens, "output_tokens": usage.output_tokens,
             "service_tier": "standard"}
        if reasoning:  # the thinking share of output_tokens, which the SDK's own spans report
            u["output_tokens_details"] = {"thinking_tokens": reasoning}
        content = []
        if reasoning:
            content.append({"type": "thinking", "thinking": "Let me think.", "signature": "sig"})
        if tool:
            content.append({"type": "tool_use", "id": f"toolu_{rid[-12:]}", "name": _tool_name(body),
                            "input": {"query": "status", "step": seq}})
        else:
            content.append({"type": "text", "text": "Done: the answer is 42."})
        stop = "tool_use" if tool else "end_turn"
        served_model = _dated(model)
        self._pause()
        if not body.get("stream"):
            _send_json(h, {"id": rid, "type": "message", "role": "assistant", "model": served_model,
                           "content": content, "stop_reason": stop, "stop_sequence": None, "usage": u})
        else:
            start_usage = {**u, "output_tokens": 1}
            events = [("message_start", {"type": "message_start", "message": {
                "id": rid, "type": "message", "role": "assistant", "model": served_model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
            for i, block in enumerate(content):
                if block["type"] == "text":
                    events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                           "content_block": {"type": "text", "text": ""}}))
                    for word in block["text"].split(" "):
                        events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                               "delta": {"type": "text_delta", "text": word + " "}}))
                elif block["type"] == "thinking":
                    events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                           "content_block": {"type": "thinking", "thinking": "",
                                                                             "signature": ""}}))
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "thinking_delta",
                                                                     "thinking": block["thinking"]}}))
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "signature_delta", "signature": "sig"}}))
                else:
                    events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                           "content_block": {**block, "input": {}}}))
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": json.dumps(block["input"])}}))
                events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
            events.append(("message_delta", {"type": "message_delta",
                                             "delta": {"stop_reason": stop, "stop_sequence": None},
                                             "usage": {"output_tokens": usage.output_tokens}}))
            events.append(("message_stop", {"type": "message_stop"}))
            _send_sse(h, events)
        self._record(TruthRecord(rid, "anthropic.messages", served_model, bool(body.get("stream")), True, tool,
                                 int(time.time() * 1000), usage))


# Models the fake answers with a dated snapshot name, as the real APIs do.
_DATED = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18", "o3-mini": "o3-mini-2025-01-31",
          "claude-sonnet-4-5": "claude-sonnet-4-5-20250929", "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
          "claude-haiku-4-5": "claude-haiku-4-5-20251001"}


def _dated(model: str) -> str:
    return _DATED.get(model, model)


def _tool_name(body: dict) -> str:
    tool = (body.get("tools") or [{}])[0]
    return (tool.get("function") or {}).get("name") or tool.get("name") or "lookup"


def _send_json(h: BaseHTTPRequestHandler, doc: dict) -> None:
    data = json.dumps(doc).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.send_header("request-id", "req_" + hashlib.sha256(data).hexdigest()[:16])
    h.end_headers()
    h.wfile.write(data)


def _send_sse(h: BaseHTTPRequestHandler, events: list[tuple[str | None, object]]) -> None:
    chunks = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        chunks.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    data = "".join(chunks).encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--truth", type=Path, required=True, help="JSON-lines file the provider appends each call's usage to")
    args = parser.parse_args()
    provider = FakeProvider(args.truth, port=args.port)
    print(f"fake provider on {provider.url} (OpenAI) and {provider.anthropic_url} (Anthropic); truth -> {args.truth}",
          flush=True)
    try:
        provider.thread.join()
    except KeyboardInterrupt:
        provider.close()


if __name__ == "__main__":
    main()
