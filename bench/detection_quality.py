"""Benchmark: loop-detection quality on agents that resend their whole history (issue #14).

    python bench/detection_quality.py [--sessions 400] [--seed 7]

Generates labeled agent sessions, each call a real OpenTelemetry SDK span with the whole
message history, as the instrumentations write it with content capture on: the semconv
`gen_ai.input.messages` JSON (`parts`; openai-v2, current OpenLLMetry, the anthropic SDK)
or OpenLLMetry's older indexed `gen_ai.prompt.N.*`. The spans are encoded to OTLP/protobuf,
decoded and mapped by the collector's own code (so fingerprints are the collector's), then
judged session by session by the reference rule engine (stream_jobs/loop_rules.py; the JVM
engine is held equal to it by tests/unit/stream_jobs/test_loop_rules_jvm.py) with the shipped
rules (schemas/detectors.yaml). Also without content (the default of several
instrumentations): the same spans with the content attributes removed.

Labels: healthy = a tool-using agent that makes progress (20-90 steps, new tool calls and
results each step, occasional one- or two-time retries of a failed call) or a plain chat;
loop = after a healthy start, the same tool call and result again and again (with or without
a counter in the arguments/error), or two actions alternating. A session counts as flagged
when a loop rule (repetition, ping_pong, context_growth) fires; "stopped" when a fired rule's
action is `stop`.

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
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tokenpulse.collectors.genai_mapping import map_span  # noqa: E402
from tokenpulse.collectors.otlp_decode import decode  # noqa: E402
from tokenpulse.schemas.alerts import AlertAction  # noqa: E402
from tokenpulse.schemas.detectors import load_detector_config  # noqa: E402
from tokenpulse.schemas.events import TokenSpan  # noqa: E402
from tokenpulse.sdk import fingerprint as fingerprint_module  # noqa: E402
from tokenpulse.stream_jobs.loop_rules import Call, SessionState, add_call, monotone_findings, sequence_findings, settle  # noqa: E402

LOOP_RULES = ("repetition", "ping_pong", "context_growth")
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


def stuck_loop(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    tool, args = rng.choice(TOOLS), {"query": phrase(rng)}
    error = rng.choice(["error: permission denied", "no results", f"error: {phrase(rng, 4)}"])
    return prefix + [(tool, args, error)] * rng.randint(8, 30)


def counter_loop(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    tool, q = rng.choice(TOOLS), phrase(rng)
    return prefix + [(tool, {"query": q, "attempt": i}, f"error: timed out after {30 + i} s (request {rng.getrandbits(40):x})")
                     for i in range(rng.randint(8, 30))]


def ping_pong_loop(rng):
    prefix = healthy_agent(rng)[: rng.randint(3, 15)]
    a = (rng.choice(TOOLS), {"query": phrase(rng)}, "error: file is locked")
    b = (rng.choice(TOOLS), {"query": phrase(rng)}, "lock held by another job")
    return prefix + [a, b] * rng.randint(6, 15)


KINDS = {"healthy agent": (healthy_agent, False), "chat": (chat, False), "stuck loop": (stuck_loop, True),
         "counter loop": (counter_loop, True), "ping-pong loop": (ping_pong_loop, True)}
MIX = ["healthy agent"] * 5 + ["chat"] * 2 + ["stuck loop", "counter loop", "ping-pong loop"]


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
    history = [("user", phrase(rng, 10))] if not is_chat else []
    for tool, args, result in steps:
        if is_chat:
            history.append(("user", args["question"]))
        chars = sum(len(json.dumps(c)) for _, c in history)
        t += rng.randint(2, 10) * 10**9
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.conversation.id": f"s-{sid}", "gen_ai.agent.name": "ops-agent",
                 "gen_ai.usage.input_tokens": 300 + chars // 4, "gen_ai.usage.output_tokens": rng.randint(20, 90),
                 **shape(history)}
        span = tracer.start_span("chat gpt-4o", start_time=t - 10**9, attributes=attrs)
        span.end(end_time=t)
        history += [("answer", result)] if is_chat else [("call", (tool, args)), ("result", result)]
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    mapped = [map_span(s, tenant="acme", received_ms=0) for s in decode(body, "application/x-protobuf")]
    rejected = [m for m in mapped if not isinstance(m, TokenSpan)]
    assert not rejected, f"the collector rejected a generated call: {rejected[0]}"
    return mapped


# --- judging ----------------------------------------------------------------------------------
def judge(spans: list[TokenSpan], rules, strip_content: bool) -> dict[str, str]:
    """Rule -> action for every loop rule that fired on the session."""
    state, fired = SessionState(), {}
    for s in spans:
        call = add_call(state, Call(end_ms=s.end_ms, span_id=s.span_id, fingerprint=None if strip_content else s.call_fingerprint,
                                    input_tokens=s.input_tokens, tokens=s.input_tokens + s.output_tokens,
                                    arrived_ms=s.end_ms), Decimal(0), 256)
        for f in monotone_findings(state, call, rules, None):
            fired.setdefault(f.rule, getattr(rules, f.rule).action.value)
    settle(state, spans[-1].end_ms + 10**6, 0)
    for f in sequence_findings(state, rules):
        fired.setdefault(f.rule, getattr(rules, f.rule).action.value)
    return {r: a for r, a in fired.items() if r in LOOP_RULES}


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
    rules_before = rules_after.model_copy(update={"context_growth": growth_before})

    rng = random.Random(seed)
    labeled = []
    for sid in range(sessions):
        kind = rng.choice(MIX)
        labeled.append((sid, kind, KINDS[kind][0](rng), rng.choice([semconv_messages, indexed_messages])))

    results = {}
    for variant, rules in (("before", rules_before), ("after", rules_after)):
        outcomes = []
        with whole_history_fingerprints() if variant == "before" else _nothing():
            for sid, kind, steps, shape in tqdm(labeled, desc=f"{variant}: mapping + judging", unit="session", file=sys.stderr):
                spans = session_spans(random.Random(sid), sid, steps, shape)
                for content in (True, False):
                    outcomes.append((kind, content, judge(spans, rules, strip_content=not content)))
        for content in (True, False):
            rows = [(k, f) for k, c, f in outcomes if c == content]
            tp = sum(1 for k, f in rows if KINDS[k][1] and f)
            fp = sum(1 for k, f in rows if not KINDS[k][1] and f)
            loops = sum(1 for k, _ in rows if KINDS[k][1])
            stopped_healthy = sum(1 for k, f in rows if not KINDS[k][1] and "stop" in f.values())
            per_kind = {k: sum(1 for kk, f in rows if kk == k and f) for k in KINDS}
            results[f"{variant}, {'content' if content else 'no content'}"] = {
                "precision": round(tp / (tp + fp), 3) if tp + fp else None, "recall": round(tp / loops, 3) if loops else None,
                "flagged_healthy": fp, "stopped_healthy": stopped_healthy, "flagged_by_kind": per_kind,
                "sessions_by_kind": {k: sum(1 for kk, _ in rows if kk == k) for k in KINDS}}

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
    print(f"{'variant':<24}{'precision':>10}{'recall':>8}{'healthy flagged':>17}{'healthy stopped':>17}   flagged by kind")
    for name, r in results.items():
        p = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        print(f"{name:<24}{p:>10}{r['recall']:>8.3f}{r['flagged_healthy']:>17}{r['stopped_healthy']:>17}   "
              + ", ".join(f"{k} {r['flagged_by_kind'][k]}" for k in kinds))
    bench_results.append("detection_quality.jsonl", {"sessions": args.sessions, "seed": args.seed, "results": results})


@contextmanager
def _nothing():
    yield


if __name__ == "__main__":
    main()
