"""The loop rules on hand-made sessions, and the ordering guarantees as properties."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpulse.schemas.detectors import DetectorRules
from tokenpulse.stream_jobs.loop_rules import (
    AgentBaseline,
    Call,
    SessionState,
    add_call,
    monotone_findings,
    sequence_findings,
    settle,
    tool_failure_fingerprint,
)

RULES = DetectorRules.model_validate({
    "repetition": {"min_repeats": 4, "window_s": 60},
    "token_velocity": {"window_s": 60, "max_tokens": 100_000, "baseline_factor": 5,
                       "baseline_min_tokens": 10_000, "baseline_min_minutes": 3},
    "context_growth": {"min_consecutive_steps": 5},
    "ping_pong": {"min_cycles": 3},
    "step_count": {"max_steps": 50},
    "session_cost": {"max_usd": "1.00"},
})
L = 2000  # out_of_order_ms


COSTS: dict[str, Decimal] = {}  # span id -> cost, as the job passes it beside the call


def call(i, end_ms, fp=None, inp=100, out=10, cost="0.001", arrived=None):
    COSTS[f"{i:016x}"] = Decimal(cost)
    return Call(end_ms=end_ms, span_id=f"{i:016x}", fingerprint=fp, input_tokens=inp, tokens=inp + out,
                arrived_ms=end_ms if arrived is None else arrived)


def add(state, c, max_calls=256):
    return add_call(state, c, COSTS[c.span_id], max_calls)


def run(calls, *, now=None, baseline=None, max_calls=256, rules=RULES):
    """Feed calls in the given order; return every rule that fired (monotone on arrival,
    sequence rules after settling at `now`)."""
    state, fired = SessionState(), {}
    for c in calls:
        added = add(state, c, max_calls)
        if added is None:
            continue
        for f in monotone_findings(state, added, rules, baseline):
            fired.setdefault(f.rule, f)
    settle(state, now if now is not None else max(c.arrived_ms for c in calls) + L, L)
    for f in sequence_findings(state, rules):
        fired.setdefault(f.rule, f)
    return state, fired


def test_repetition_counts_same_fingerprint_within_window():
    _, fired = run([call(i, 1_000_000 + i * 10_000, fp="aaaa") for i in range(4)])
    f = fired["repetition"]
    assert f.evidence["repeats"] == 4 and f.event_ms == 1_030_000
    # spread out: never 4 within 60 s
    _, fired = run([call(i, 1_000_000 + i * 25_000, fp="aaaa") for i in range(6)])
    assert "repetition" not in fired


def test_busy_healthy_agent_with_distinct_calls_fires_nothing():
    calls = [call(i, 1_000_000 + i * 1000, fp=f"fp{i}", inp=500 + (i % 3) * 50) for i in range(40)]
    _, fired = run(calls)
    assert fired == {}


def test_context_growth_needs_consecutive_rises_with_repeated_turns():
    # the same newest turn again and again while the history grows: an agent feeding itself
    rising = [call(i, 1_000_000 + i * 1000, fp="stuck", inp=1000 * (i + 1)) for i in range(6)]
    _, fired = run(rising)
    assert fired["context_growth"].evidence["consecutive_steps"] == 5
    assert fired["context_growth"].evidence["last_input_tokens"] == 6000
    assert fired["context_growth"].evidence["repeated_calls"] == 5
    broken = rising[:3] + [call(9, 1_003_500, fp="x", inp=10)] + rising[3:]
    _, fired = run(broken)
    assert "context_growth" not in fired


def test_context_growth_of_an_agent_making_progress_is_not_a_loop():
    # every call a new turn: the history grows because the agent learns something each step
    working = [call(i, 1_000_000 + i * 1000, fp=f"f{i}", inp=1000 * (i + 1)) for i in range(30)]
    _, fired = run(working)
    assert "context_growth" not in fired
    # no content captured (no fingerprints): growth alone is never enough
    _, fired = run([c._replace(fingerprint=None) for c in working])
    assert "context_growth" not in fired
    # half the run repeating an earlier turn is enough (min_repeated_percent, default 50)
    half = [c._replace(fingerprint="again") if i >= 2 else c for i, c in enumerate(working[:6])]
    _, fired = run(half)
    assert fired["context_growth"].evidence["repeated_calls"] == 3  # 4 "again", the first is new: 3 of 6
    assert "context_growth" not in run(half, rules=RULES.model_copy(update={"context_growth": RULES.context_growth.model_copy(
        update={"min_repeated_percent": 60})}))[1]


def test_ping_pong_counts_cycles_of_two_fingerprints():
    seq = [call(i, 1_000_000 + i * 1000, fp="A" if i % 2 == 0 else "B") for i in range(6)]
    _, fired = run(seq)
    assert fired["ping_pong"].evidence["cycles"] == 3
    _, fired = run(seq[:5])  # A B A B A: two full cycles
    assert "ping_pong" not in fired
    # three fingerprints rotating is not ping-pong
    _, fired = run([call(i, 1_000_000 + i * 1000, fp="ABC"[i % 3]) for i in range(9)])
    assert "ping_pong" not in fired


def tool_call(i, end_ms, tool="search", error="TimeoutError"):
    """An execute_tool span as the detector job receives it: error=None when the tool worked."""
    COSTS[f"{i:016x}"] = Decimal(0)
    return Call(end_ms=end_ms, span_id=f"{i:016x}", fingerprint=tool_failure_fingerprint(tool, error) if error else None,
                input_tokens=0, tokens=0, arrived_ms=end_ms, tool=tool)


RULES_TOOLS = RULES.model_copy(update={"tool_failures": RULES.tool_failures.model_copy(update={"min_consecutive": 4})})


def test_the_same_tool_failing_the_same_way_in_a_row_is_a_loop_without_content():
    # no prompt content (LLM calls without fingerprints): only the tool spans tell
    llm = [call(i, 1_000_000 + i * 2000, inp=1000 * (i + 1)) for i in range(8)]
    failing = [tool_call(100 + i, 1_000_500 + i * 2000) for i in range(4)]
    state, fired = run(sorted(llm[:4] + failing, key=lambda c: c.end_ms), rules=RULES_TOOLS)
    f = fired["tool_failures"]
    assert f.evidence["consecutive_failures"] == 4 and f.evidence["tool"] == "search"
    assert f.evidence["failure"] == "tool:search:TimeoutError" and f.event_ms == 1_006_500
    assert state.steps == 4 and "repetition" not in fired  # a tool call is not a step nor an LLM call
    # other tools succeeding in between do not break the run (alternating with a working tool)
    other = [tool_call(200 + i, 1_000_700 + i * 2000, tool="read", error=None) for i in range(4)]
    assert "tool_failures" in run(sorted(llm[:4] + failing + other, key=lambda c: c.end_ms), rules=RULES_TOOLS)[1]
    # a success of the same tool ends the run: transient failures, each retried until it works
    flaky = failing[:2] + [tool_call(300, 1_002_900, error=None)] + [tool_call(301 + i, 1_004_500 + i * 2000) for i in range(3)]
    assert "tool_failures" not in run(llm + flaky, rules=RULES_TOOLS)[1]
    # a different error, or the same error of a different tool, starts a new run
    mixed = [tool_call(400 + i, 1_000_500 + i * 2000, error=f"E{i % 2}") for i in range(4)]
    mixed += [tool_call(410 + i, 1_000_600 + i * 2000, tool=f"t{i}") for i in range(4)]
    assert "tool_failures" not in run(llm + mixed, rules=RULES_TOOLS)[1]
    # tool calls are not part of the LLM-call sequence rules: one agent calling one failing
    # tool between LLM calls is not ping-pong between two actions
    alternating = [call(i, 1_000_000 + i * 2000, fp="A") for i in range(3)] + failing[:3]
    assert "ping_pong" not in run(alternating)[1]
    assert tool_failure_fingerprint(None, None) == "tool:?:error"


def test_the_same_step_again_is_seen_in_token_counts_alone():
    # no content: an agent appending the same tool call and result every step grows its
    # input by the same amount and produces the same output, call after call
    stuck = [call(i, 1_000_000 + i * 2000, inp=3000 + 180 * i, out=42) for i in range(9)]
    _, fired = run(stuck)
    f = fired["repeated_step"]
    assert f.evidence["repeats"] == 6 and f.evidence["input_growth_tokens"] == 180 and f.evidence["output_tokens"] == 42
    assert f.evidence["first_end_ms"] == 1_000_000 and f.event_ms == 1_016_000
    assert "repeated_step" not in run(stuck[:8])[1]  # 5 repeats
    # two steps alternating (period 2) is the same step again too
    inputs = [3000]
    for i in range(1, 9):
        inputs.append(inputs[-1] + (150 if i % 2 else 95))
    alternating = [call(i, 1_000_000 + i * 2000, inp=n, out=30 if i % 2 else 55) for i, n in enumerate(inputs)]
    assert run(alternating)[1]["repeated_step"].evidence["repeats"] == 6
    # progress: results of varying size, so the growth varies, even with a fixed output
    rnd = random.Random(5)
    inputs = [3000]
    for _ in range(40):
        inputs.append(inputs[-1] + rnd.randint(40, 400))
    working = [call(i, 1_000_000 + i * 2000, inp=n, out=42) for i, n in enumerate(inputs)]
    assert "repeated_step" not in run(working)[1]
    # a constant prompt (a batch classifier: no growth) is not a step taken again
    batch = [call(i, 1_000_000 + i * 2000, inp=800, out=1) for i in range(20)]
    assert "repeated_step" not in run(batch)[1]


def test_state_written_before_tool_calls_existed_still_restores():
    state = SessionState()
    state.__setstate__(([(1, "s1", "fp", 10, 20, 1, False)], 1, Decimal("0.1"), 0, 1, {}, None))
    assert state.calls[0].tool is None and state.calls[0].fingerprint == "fp"


def test_step_count_and_session_cost():
    calls = [call(i, 1_000_000 + i * 5000, fp=f"u{i}", cost="0.020") for i in range(51)]
    _, fired = run(calls)
    assert fired["step_count"].evidence["steps"] == 51
    assert fired["session_cost"].evidence["cost_usd"] == "1.020"  # exact Decimal, above $1.00 at call 51
    _, fired = run(calls[:50])
    assert "step_count" not in fired and "session_cost" not in fired  # exactly $1.00 is not above


def test_token_velocity_absolute_and_baseline():
    _, fired = run([call(i, 1_000_000 + i * 1000, fp=f"v{i}", inp=30_000, out=5000) for i in range(3)])
    assert fired["token_velocity"].evidence["tokens"] == 105_000
    calls = [call(i, 1_000_000 + i * 1000, fp=f"v{i}", inp=4000, out=1000) for i in range(4)]  # 20k / min
    _, fired = run(calls, baseline=3000.0)
    assert "token_velocity" in fired and fired["token_velocity"].evidence["baseline_tokens_per_min"] == 3000
    _, fired = run(calls, baseline=5000.0)  # 4x baseline: below the factor 5
    assert "token_velocity" not in fired


def test_replayed_span_is_not_counted_twice():
    c = call(1, 1_000_000, fp="r", cost="0.60")
    state, fired = run([c, c])
    assert state.steps == 1 and state.cost_usd == Decimal("0.60") and "session_cost" not in fired


def test_sequence_rules_wait_for_settling_then_mark_late_arrivals():
    state = SessionState()
    rising = [call(i, 1_000_000 + i * 1000, fp="stuck", inp=1000 * (i + 1), arrived=2_000_000) for i in range(6)]
    for c in rising:
        add(state, c)
    settle(state, 2_000_000 + L - 1, L)
    assert sequence_findings(state, RULES) == []  # nothing settled yet
    settle(state, 2_000_000 + L, L)
    assert [f.rule for f in sequence_findings(state, RULES)] == ["context_growth"]
    # a call arriving after its place was judged is late: kept for monotone rules only
    late = add(state, call(99, 1_002_500, fp="z", inp=1, arrived=2_010_000))
    assert late.late and state.steps == 7
    settle(state, 2_020_000, L)
    assert [f.rule for f in sequence_findings(state, RULES)] == ["context_growth"]


def test_state_is_bounded():
    state, _ = run([call(i, 1_000_000 + i, fp=f"b{i}") for i in range(300)], max_calls=64)
    assert len(state.calls) == 64 and state.steps == 300
    assert state.calls[0].end_ms == 1_000_000 + 300 - 64  # the newest are kept


def test_agent_baseline_folds_closed_minutes_only():
    b = AgentBaseline(alpha=0.5)
    for minute in range(4):
        for s in ("s1", "s2"):
            b.add(minute * 60_000 + 1000, s, 1000)  # 1000 tokens per session-minute
    assert b.minutes_folded == 2 and abs(b.mean_tokens_per_min - 1000.0) < 1
    assert b.baseline(3) is None and b.baseline(2) == b.mean_tokens_per_min
    b.add(3 * 60_000 + 2000, "loop", 10**6)  # the current minute does not move the baseline yet
    assert abs(b.mean_tokens_per_min - 1000.0) < 1


# --- properties: arrival order does not change what fires --------------------------------
call_lists = st.lists(
    st.tuples(st.integers(0, 300_000), st.sampled_from(["A", "B", "C", None]),
              st.integers(0, 40_000), st.integers(0, 3)),
    min_size=1, max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(call_lists, st.randoms(use_true_random=False))
def test_monotone_rules_fire_regardless_of_arrival_order(shapes, rnd):
    calls = [call(i, 1_000_000 + t, fp=fp, inp=inp, cost=f"0.0{c}") for i, (t, fp, inp, c) in enumerate(shapes)]
    in_order = sorted(calls, key=lambda c: c.order)
    shuffled = calls[:]
    rnd.shuffle(shuffled)
    monotone = {"repetition", "token_velocity", "step_count", "session_cost"}
    _, a = run(in_order, now=0)
    _, b = run(shuffled, now=0)
    assert {r for r in a if r in monotone} == {r for r in b if r in monotone}


@settings(max_examples=300, deadline=None)
@given(call_lists, st.randoms(use_true_random=False))
def test_sequence_rules_see_event_order_when_reordering_is_within_tolerance(shapes, rnd):
    """Calls arriving shuffled but within out_of_order_ms of each other are judged exactly as
    if they had arrived in event-time order."""
    calls = [call(i, 1_000_000 + t, fp=fp, inp=inp, arrived=5_000_000 + i * 10) for i, (t, fp, inp, _) in enumerate(shapes)]
    shuffled = calls[:]
    rnd.shuffle(shuffled)
    arrival = {c.span_id: 5_000_000 + k * 10 for k, c in enumerate(shuffled)}
    shuffled = [c._replace(arrived_ms=arrival[c.span_id]) for c in shuffled]
    in_order = sorted(calls, key=lambda c: c.order)
    last = 5_000_000 + 10 * len(calls)
    _, a = run(in_order, now=last + L)
    _, b = run(shuffled, now=last + L)
    seq = {"context_growth", "ping_pong"}
    assert {r for r in a if r in seq} == {r for r in b if r in seq}
    for rule in seq & set(a):
        assert a[rule].evidence == b[rule].evidence


def test_property_example_found_by_hand():
    # a run broken only by a late-arriving call: the settled order must include the breaker
    rnd = random.Random(7)
    calls = [call(i, 1_000_000 + i * 1000, fp=f"f{i}", inp=1000 * (i + 1) if i != 3 else 5, arrived=3_000_000 + i)
             for i in range(8)]
    rnd.shuffle(calls)
    _, fired = run(calls, now=3_000_000 + L + 10)
    assert "context_growth" not in fired


def test_old_evidence_does_not_reopen_after_it_was_judged():
    state = SessionState()
    rising = [call(i, 1_000_000 + i * 1000, fp="same", inp=1000 * (i + 1), arrived=2_000_000) for i in range(6)]
    for c in rising:
        add(state, c)
    before = state.judged_until_ms
    settle(state, 2_000_000 + L, L)
    assert [f.rule for f in sequence_findings(state, RULES, since_ms=before)] == ["context_growth"]
    # later: one unrelated call settles; the old run is not a new finding
    late_call = call(50, 1_100_000, fp="other", inp=10, arrived=2_100_000)
    add(state, late_call)
    before = state.judged_until_ms
    settle(state, 2_100_000 + L, L)
    assert sequence_findings(state, RULES, since_ms=before) == []
    # and a repeat far outside the window of the old repeats does not count them
    far = add(state, call(51, 1_500_000, fp="same", inp=10))
    assert "repetition" not in [f.rule for f in monotone_findings(state, far, RULES, None)]


def test_state_survives_pickling_and_baseline_counts_distinct_sessions():
    import pickle

    state, _ = run([call(i, 1_000_000 + i * 1000, fp=f"p{i}", cost="0.25") for i in range(5)])
    state.open_rules["repetition"] = ("abc", 1)
    again = pickle.loads(pickle.dumps(state))
    assert again == state and isinstance(again.calls[0], Call)
    b = AgentBaseline()
    for s in range(1000):
        b.add(1000, f"session-{s}", 100)
    b.add(3 * 60_000, "x", 1)  # closes minute 0
    assert abs(b.mean_tokens_per_min - 100.0) < 3.0  # 100k tokens over ~1000 sessions
