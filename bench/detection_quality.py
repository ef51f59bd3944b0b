"""Benchmark: loop-detection quality on agents that resend their whole history (issue #14).

    python bench/detection_quality.py [--sessions 400] [--seed 7]

Generates labeled agent sessions, each call a real OpenTelemetry SDK span with the whole
message history, as the instrumentations write it with content capture on: the semconv
`gen_ai.input.messages` JSON (`parts`; openai-v2, current OpenLLMetry, the anthropic SDK)
or OpenLLMetry's older indexed `gen_ai.prompt.N.*`, and each tool run an `execute_tool` span
(tool name; status ERROR + error.type when it failed). The spans are encoded to OTLP/protobuf,
decoded and mapped by the collector's own code (so fingerprints are the collector's), then
judged session by session by the reference rule engine (stream_jobs/loop_rules.py; the JVM
engine is held equal to it by tests/component/test_loop_rules_jvm.py) with the shipped
rules (schemas/detectors.yaml). Also without content (the default of several
instrumentations): the same spans with the content attributes removed.

Labels: healthy = a tool-using agent that makes progress (20-90 steps, new tool calls and
results each step, occasional one- or two-time retries of a failed call) or a plain chat;
loop = after a healthy start, the same tool call and result again and again (a failing tool,
or a working one whose answer the agent rejects; with or without a counter in the
arguments/error), or two actions alternating. A session counts as flagged when a loop rule
(repetition, ping_pong, context_growth, tool_failures, repeated_step) fires; "stopped" when a fired rule's
action is `stop`. Time to page: from the first looping LLM call to the page's event time.

"before" = fingerprint version 1 (the whole message list) and context_growth on growth alone
with action stop (the rules before issue #14); "after" = the code and rules as shipped.
Prints a table and appends a JSON line to bench/results/detection_quality.jsonl.

This is generated traffic: it shows the rules separate the patterns described above, not
that real agents only loop in these ways (bench/README.md says what is left out).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tokenpulse.core import fingerprint as fingerprint_module  # noqa: E402
from tokenpulse.core.genai_mapping import map_span  # noqa: E402
from tokenpulse.core.otlp_decode import decode  # noqa: E402
from tokenpulse.schemas.alerts import AlertAction  # noqa: E402
from tokenpulse.schemas.detectors import load_detector_config  # noqa: E402
from tokenpulse.schemas.events import CallStatus, ContextSpan, TokenSpan  # noqa: E402
from tokenpulse.stream_jobs.loop_rules import (  # noqa: E402
    Call,
    SessionState,
    add_call,
    monotone_findings,
    sequence_findings,
    settle,
    tool_failure_fingerprint,
)

LOOP_RULES = ("repetition", "ping_pong", "context_growth", "tool_failures", "repeated_step")
CONTENT_PREFIXES = ("gen_ai.input.messages", "gen_ai.prompt.")
WORDS = ("invoice export proxy timeout schema billing region quota cache shard replica index tenant "
         "payload parser retry webhook cluster ledger refund currency vendor batch queue worker token "
         "limit policy audit report budget vector embedding prompt model latency trace sample dashboard "
         "alert incident runbook deploy rollback config secret backup restore snapshot migrate table").split()
TOOLS = ("search_docs", "read_file", "run_sql", "fetch_url", "list_tickets", "write_file")


def phrase(rng: random.Random, n: int = 3) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


# --- labeled sessions: a list of (tool, arguments, result) steps ---------------------------
def healthy_agent(rng):
    steps = []
    for _ in range(rng.randint(20, 90)):
        step = (rng.choice(TOOLS), {"query": phrase(rng)}, f"{rng.randint(1, 9)} results: {phrase(rng, 6)}")
        if rng.random() < 0.08:  # a transient failure, retried once or twice, then it works
            failed = (step[0], step[1], "error: upstream timeout")
            steps += [failed] * rng.randint(1, 2)
        steps.append(step)
    return steps


def chat(rng):
    return [(None, {"question": phrase(rng, 8)}, phrase(rng, 20)) for _ in range(rng.randint(5, 40))]


class Loop(list):
    """A loop session's steps; `start` is the index of the first looping step."""

    def __init__(self, prefix: list, loop: list):
        super().__init__(prefix + loop)
        self.start = len(prefix)


def stuck_on_error(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    tool, args = rng.choice(TOOLS), {"query": phrase(rng)}
    error = rng.choice(["error: permission denied", f"error: {phrase(rng, 4)}"])
    return Loop(prefix, [(tool, args, error)] * rng.randint(8, 30))


def stuck_on_result(rng):
    """The tool works, the agent does not like the answer and asks again: no failure anywhere."""
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    tool, args = rng.choice(TOOLS), {"query": phrase(rng)}
    return Loop(prefix, [(tool, args, "no results")] * rng.randint(8, 30))


def counter_loop(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    tool, q = rng.choice(TOOLS), phrase(rng)
    return Loop(prefix, [(tool, {"query": q, "attempt": i},
                          f"error: timed out after {30 + i} s (request {rng.getrandbits(40):x})")
                         for i in range(rng.randint(8, 30))])


def ping_pong_loop(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    a = (rng.choice(TOOLS), {"query": phrase(rng)}, "error: file is locked")
    b = (rng.choice(TOOLS), {"query": phrase(rng)}, "lock held by another job")
    return Loop(prefix, [a, b] * rng.randint(6, 15))


KINDS = {"healthy agent": (healthy_agent, False), "chat": (chat, False),
         "stuck on error": (stuck_on_error, True), "stuck on result": (stuck_on_result, True),
         "counter loop": (counter_loop, True), "ping-pong loop": (ping_pong_loop, True)}
MIX = ["healthy agent"] * 10 + ["chat"] * 4 + ["stuck on error", "stuck on result"] + ["counter loop", "ping-pong loop"] * 2


# --- the spans: every call sends the whole history, in one sender's shape -------------------
def semconv_messages(history):
    msgs = [{"role": "system", "parts": [{"type": "text", "content": "You are an operations agent."}]}]
    for i, (kind, content) in enumerate(history):
        if kind == "user":
            msgs.append({"role": "user", "parts": [{"type": "text", "content": content}]})
        elif kind == "call":
            tool, args = content
            msgs.append({"role": "assistant", "parts": [{"type": "tool_call", "id": f"call_{i:04d}{'Q' * (i % 7)}",
                                                         "name": tool, "arguments": args}]})
        elif kind == "result":
            msgs.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": f"call_{i - 1:04d}",
                                                    "response": content}]})
        else:
            msgs.append({"role": "assistant", "parts": [{"type": "text", "content": content}]})
    return {"gen_ai.input.messages": json.dumps(msgs)}


def indexed_messages(history):
    attrs = {"gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are an operations agent."}
    for n, (kind, content) in enumerate(history, start=1):
        p = f"gen_ai.prompt.{n}."
        if kind == "user":
            attrs |= {p + "role": "user", p + "content": content}
        elif kind == "call":
            attrs |= {p + "role": "assistant", p + "tool_calls.0.name": content[0], p + "tool_calls.0.id": f"call_{n}",
                      p + "tool_calls.0.arguments": json.dumps(content[1])}
        elif kind == "result":
            attrs |= {p + "role": "tool", p + "content": content, p + "tool_call_id": f"call_{n - 1}"}
        else:
            attrs |= {p + "role": "assistant", p + "content": content}
    return attrs


def session_spans(rng, sid: int, steps, shape) -> list[TokenSpan]:
    memory = InMemorySpanExporter()
    # The SDK's default limit is 128 attributes per span, evicting the *oldest* first: an
    # indexed history of 60+ messages would push out gen_ai.provider.name itself (seen here;
    # real apps on the indexed format hit the same). Raised, as such apps must.
    provider = TracerProvider(resource=Resource.create({"service.name": "ops-agent"}),
                              span_limits=SpanLimits(max_span_attributes=8192, max_attribute_length=None))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench.detection_quality")
    t = 1_800_000_000_000_000_000 + sid * 10**13
    is_chat = steps[0][0] is None
    # Output tokens are what the model wrote (the tool call, or the answer), plus, for a
    # reasoning model (half the sessions), hidden reasoning tokens that vary call by call.
    reasons = rng.random() < 0.5
    history = [("user", phrase(rng, 10))] if not is_chat else []
    for tool, args, result in steps:
        if is_chat:
            history.append(("user", args["question"]))
        # a tokenizer counts message by message (~4 characters a token, a few tokens of framing each)
        history_tokens = sum(len(json.dumps(c)) // 4 + 3 for _, c in history)
        t += rng.randint(2, 10) * 10**9
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.conversation.id": f"s-{sid}", "gen_ai.agent.name": "ops-agent",
                 "gen_ai.usage.input_tokens": 300 + history_tokens,
                 "gen_ai.usage.output_tokens": written_tokens(tool, args, result, is_chat)
                 + (rng.randint(50, 400) if reasons else 0),
                 **shape(history)}
        span = tracer.start_span("chat gpt-4o", start_time=t - 10**9, attributes=attrs)
        span.end(end_time=t)
        if not is_chat:  # the agent runs the tool the model asked for: an execute_tool span
            tool_span(tracer, sid, tool, args, result, start_ns=t + 10**8, end_ns=t + rng.randint(2, 15) * 10**8)
        history += [("answer", result)] if is_chat else [("call", (tool, args)), ("result", result)]
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    mapped = [map_span(s, tenant="acme", received_ms=0) for s in decode(body, "application/x-protobuf")]
    rejected = [m for m in mapped if not isinstance(m, (TokenSpan, ContextSpan))]
    assert not rejected, f"the collector rejected a generated span: {rejected[0]}"
    return mapped


def written_tokens(tool, args, result, is_chat: bool) -> int:
    """About 4 characters a token, as the input side counts them."""
    return 5 + (len(result) if is_chat else len(json.dumps([tool, args]))) // 4


# What the tool's failure looks like as error.type: an exception class name, as the
# instrumentations record it (a counter or request id in the message never reaches it).
ERROR_TYPES = {"error: upstream timeout": "TimeoutError", "error: permission denied": "PermissionError",
               "error: timed out": "TimeoutError", "error: file is locked": "FileLockedError"}


def tool_span(tracer, sid: int, tool, args, result: str, start_ns: int, end_ns: int) -> None:
    """An OTel GenAI `execute_tool` span, as agent frameworks emit it: the tool's name and the
    outcome (status ERROR + error.type on failure). The arguments are opt-in content."""
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.conversation.id": f"s-{sid}",
             "gen_ai.tool.call.arguments": json.dumps(args)}
    span = tracer.start_span(f"execute_tool {tool}", start_time=start_ns, attributes=attrs)
    if result.startswith("error:"):
        error_type = next((v for k, v in ERROR_TYPES.items() if result.startswith(k)), "ToolError")
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, result))
    span.end(end_time=end_ns)


# --- judging ----------------------------------------------------------------------------------
def as_call(s: TokenSpan | ContextSpan, strip_content: bool) -> Call | None:
    """What the detector job receives (stream_jobs/loop_detection.py): LLM calls, and tool
    calls whose fingerprint is their failure (tool and error type), None when they worked."""
    if isinstance(s, ContextSpan):
        if s.operation != "execute_tool":
            return None
        failure = tool_failure_fingerprint(s.tool_name, s.error_type) if s.status is CallStatus.error else None
        return Call(end_ms=s.end_ms, span_id=s.span_id, fingerprint=failure, input_tokens=0, tokens=0,
                    arrived_ms=s.end_ms, tool=s.tool_name or "?")
    return Call(end_ms=s.end_ms, span_id=s.span_id, fingerprint=None if strip_content else s.call_fingerprint,
                input_tokens=s.input_tokens, tokens=s.input_tokens + s.output_tokens, arrived_ms=s.end_ms)


def judge(spans: list[TokenSpan | ContextSpan], rules, strip_content: bool, tool_spans: bool = True,
          out_of_order_ms: int = 2000) -> tuple[dict[str, str], int | None]:
    """Rule -> action for every loop rule that fired on the session, and the event time of the
    first page (a sequence rule pages once the watermark passes: `out_of_order_ms` later)."""
    state, fired, paged = SessionState(), {}, []
    for s in spans:
        call = None if isinstance(s, ContextSpan) and not tool_spans else as_call(s, strip_content)
        if call is None:
            continue
        call = add_call(state, call, Decimal(0), 256)
        for f in monotone_findings(state, call, rules, None):
            fired.setdefault(f.rule, getattr(rules, f.rule).action.value)
            paged.append((f.rule, f.event_ms))
        # the job settles on a timer; here after every call, so a run pages when it gets long enough
        judged_before = state.judged_until_ms
        settle(state, call.end_ms, 0)
        for f in sequence_findings(state, rules, judged_before):
            fired.setdefault(f.rule, getattr(rules, f.rule).action.value)
            paged.append((f.rule, f.event_ms + out_of_order_ms))
    first = min((ms for rule, ms in paged if rule in LOOP_RULES), default=None)
    return {r: a for r, a in fired.items() if r in LOOP_RULES}, first


@contextmanager
def whole_history_fingerprints():
    """Fingerprint version 1: the whole message list (what the collector did before #14)."""
    original = fingerprint_module.newest_turn
    fingerprint_module.newest_turn = lambda messages: messages
    try:
        yield
    finally:
        fingerprint_module.newest_turn = original


def evaluate(sessions: int, seed: int) -> dict:
    """Precision, recall and healthy sessions flagged/stopped, per variant and content mode."""
    rules_after = load_detector_config().rules_for("acme", "ops-agent", "ops-agent")
    growth_before = rules_after.context_growth.model_copy(update={"min_repeated_percent": 0, "action": AlertAction.stop})
    off = {"enabled": False}  # rules that did not exist before #14
    rules_before = rules_after.model_copy(update={"context_growth": growth_before,
                                                  "tool_failures": rules_after.tool_failures.model_copy(update=off),
                                                  "repeated_step": rules_after.repeated_step.model_copy(update=off)})

    rng = random.Random(seed)
    labeled = []
    for sid in range(sessions):
        kind = rng.choice(MIX)
        labeled.append((sid, kind, KINDS[kind][0](rng), rng.choice([semconv_messages, indexed_messages])))

    results = {}
    for variant, rules in (("before", rules_before), ("after", rules_after)):
        outcomes = []  # (kind, content captured, rules fired, seconds from the first looping call to the page)
        with whole_history_fingerprints() if variant == "before" else _nothing():
            for sid, kind, steps, shape in tqdm(labeled, desc=f"{variant}: mapping + judging", unit="session", file=sys.stderr):
                spans = session_spans(random.Random(sid), sid, steps, shape)
                llm_calls = [s for s in spans if isinstance(s, TokenSpan)]  # one per step, in order
                loop_start_ms = llm_calls[steps.start].end_ms if isinstance(steps, Loop) else None
                for content in (True, False):
                    # before #14 the detector read LLM calls only; tool spans are the new signal
                    fired, paged_ms = judge(spans, rules, strip_content=not content, tool_spans=variant == "after")
                    to_page = (paged_ms - loop_start_ms) / 1000 if fired and loop_start_ms is not None else None
                    outcomes.append((kind, content, fired, to_page))
        for content in (True, False):
            rows = [(k, f, s) for k, c, f, s in outcomes if c == content]
            tp = sum(1 for k, f, _ in rows if KINDS[k][1] and f)
            fp = sum(1 for k, f, _ in rows if not KINDS[k][1] and f)
            loops = sum(1 for k, _, _ in rows if KINDS[k][1])
            stopped_healthy = sum(1 for k, f, _ in rows if not KINDS[k][1] and "stop" in f.values())
            per_kind = {k: sum(1 for kk, f, _ in rows if kk == k and f) for k in KINDS}
            sessions_by_kind = {k: sum(1 for kk, _, _ in rows if kk == k) for k in KINDS}
            waits = sorted(s for _, _, s in rows if s is not None)
            results[f"{variant}, {'content' if content else 'no content'}"] = {
                "precision": round(tp / (tp + fp), 3) if tp + fp else None, "recall": round(tp / loops, 3) if loops else None,
                "recall_by_kind": {k: round(per_kind[k] / sessions_by_kind[k], 3)
                                   for k in KINDS if KINDS[k][1] and sessions_by_kind[k]},
                "flagged_healthy": fp, "stopped_healthy": stopped_healthy, "flagged_by_kind": per_kind,
                "sessions_by_kind": sessions_by_kind,
                "time_to_page_s": {"p50": _quantile(waits, 0.5), "p99": _quantile(waits, 0.99)} if waits else None}

    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sessions", type=int, default=400, help="labeled sessions to generate (default 400)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    results = evaluate(args.sessions, args.seed)

    kinds = list(KINDS)
    print(f"\n{args.sessions} sessions: " + ", ".join(f"{k} {results['after, content']['sessions_by_kind'][k]}" for k in kinds))
    loop_kinds = [k for k in kinds if KINDS[k][1]]
    print(f"{'variant':<24}{'precision':>10}{'recall':>8}{'healthy flagged':>17}{'healthy stopped':>17}"
          + "".join(f"{k:>16}" for k in loop_kinds) + f"{'to page p50/p99 s':>20}")
    for name, r in results.items():
        p = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        t = r["time_to_page_s"]
        print(f"{name:<24}{p:>10}{r['recall']:>8.3f}{r['flagged_healthy']:>17}{r['stopped_healthy']:>17}"
              + "".join(f"{r['recall_by_kind'].get(k, 0):>16.3f}" for k in loop_kinds)
              + f"{(str(t['p50']) + ' / ' + str(t['p99'])) if t else '-':>20}")
    bench_results.append("detection_quality.jsonl", {"sessions": args.sessions, "seed": args.seed, "results": results})


def _quantile(sorted_values: list[float], q: float) -> float:
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))], 1)


@contextmanager
def _nothing():
    yield


if __name__ == "__main__":
    main()
