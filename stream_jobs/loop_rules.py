"""The runaway-loop rules as plain Python over one session's state (no Flink here).

stream_jobs/loop_detection.py keeps a `SessionState` per (tenant, session) in Flink keyed
state and calls these functions; tests call them directly.

Two families, because reordering affects them differently:

* Monotone rules (repetition, token velocity, step count, session cost) only ever become
  true when a call is added. Any set of calls that satisfies one is a subset of the real
  calls, so the real calls satisfy it too: they are judged on arrival, in event time,
  whatever the arrival order. A late or reordered call cannot make them fire falsely, and
  they fire within one call of the evidence being complete.
* Sequence rules (context growth, ping-pong, tool failures, repeated step) look at calls in
  event-time order, and a call
  that arrives late could break a run. They judge only *settled* calls: a call settles
  `out_of_order_ms` after it arrived; everything up to the newest settled call's end time is
  judged in event-time order. A call arriving after that point in the session was judged
  is "late": it still counts for the monotone rules, but never rewrites a judged sequence.

State is bounded: the newest `max_calls_per_session` calls (by event time) are kept.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from tokenpulse.schemas.detectors import DetectorRules


class Call(NamedTuple):
    """One call as the rules see it. A NamedTuple, not a dataclass: the whole session state
    is pickled into Flink state on every call, and tuples pickle several times faster."""

    end_ms: int
    span_id: str
    fingerprint: str | None
    input_tokens: int
    tokens: int  # input + output
    arrived_ms: int  # wall clock at the detector
    late: bool = False  # arrived after its place in the session was judged by sequence rules
    # Set for an execute_tool span, not an LLM call (issue #14): the tool's name. Its
    # fingerprint is then tool_failure_fingerprint(tool, error type) if the tool failed, None
    # if it succeeded: a loop signal that needs no prompt content. A tool call is never a
    # step, has no tokens, and only the tool_failures rule reads it.
    tool: str | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.end_ms, self.span_id)


@dataclass
class SessionState:
    calls: list[Call] = field(default_factory=list)  # sorted by (end_ms, span_id)
    steps: int = 0
    cost_usd: Decimal = Decimal(0)
    judged_until_ms: int = -1  # sequence rules have judged every call ending at or before this
    last_arrival_ms: int = 0
    open_rules: dict[str, tuple[str, int]] = field(default_factory=dict)  # rule -> (alert_id, opened_ms)
    timer_ms: int | None = None  # the detector's one pending timer (loop_detection.py)

    # Pickled into Flink state on every call: plain tuples pickle ~4x faster than NamedTuples
    # (measured: 22 vs 99 us for 40 calls), so the calls travel as tuples.
    def __getstate__(self) -> tuple:
        return ([tuple(c) for c in self.calls], self.steps, self.cost_usd, self.judged_until_ms,
                self.last_arrival_ms, self.open_rules, self.timer_ms)

    def __setstate__(self, state: tuple) -> None:
        (calls, self.steps, self.cost_usd, self.judged_until_ms, self.last_arrival_ms, self.open_rules,
         self.timer_ms) = state
        self.calls = [Call(*c) for c in calls]  # Call(*c): state written before `tool` existed


@dataclass(frozen=True)
class Finding:
    rule: str
    summary: str
    evidence: dict
    event_ms: int  # event time of the call that completed the evidence


def tool_failure_fingerprint(tool_name: str | None, error_type: str | None) -> str:
    """Same tool, same failure: the fingerprint of a failed tool call. Arguments are left out
    on purpose: they are opt-in content, and a retry loop often changes a counter in them.
    loop_detection.py builds the same string in SQL (TOOL_FAILURE_FINGERPRINT_SQL)."""
    return f"tool:{tool_name or '?'}:{error_type or 'error'}"


def add_call(state: SessionState, call: Call, cost_usd: Decimal, max_calls: int) -> Call | None:
    """Insert a call in event-time order and add its cost to the session's; None if this
    span was already seen (a replay), which then changes nothing."""
    if any(c.span_id == call.span_id for c in state.calls):
        return None
    if call.end_ms <= state.judged_until_ms:
        call = call._replace(late=True)
    bisect.insort(state.calls, call, key=lambda c: c.order)
    if len(state.calls) > max_calls:
        del state.calls[: len(state.calls) - max_calls]
    if call.tool is None:
        state.steps += 1
    state.cost_usd += cost_usd
    state.last_arrival_ms = max(state.last_arrival_ms, call.arrived_ms)
    return call


# --- monotone rules: judged when a call arrives -------------------------------------------
def monotone_findings(state: SessionState, call: Call, rules: DetectorRules,
                      baseline_tokens_per_min: float | None) -> list[Finding]:
    if call.tool is not None:
        return []  # no tokens, no step, no cost: nothing a monotone rule reads has changed
    found = []
    r = rules.repetition
    if r.enabled and call.fingerprint:
        times = [c.end_ms for c in state.calls if c.fingerprint == call.fingerprint and c.tool is None]
        count, start, end = _densest(times, call.end_ms, r.window_s * 1000)
        if count >= r.min_repeats:
            found.append(Finding("repetition",
                                 f"the same call (fingerprint {call.fingerprint}) was made {count} times "
                                 f"within {(end - start) / 1000:.1f} s (limit: {r.min_repeats - 1} in {r.window_s} s)",
                                 {"fingerprint": call.fingerprint, "repeats": count, "window_s": r.window_s,
                                  "min_repeats": r.min_repeats, "first_end_ms": start, "last_end_ms": end}, end))
    v = rules.token_velocity
    if v.enabled:
        tokens, start, end = _heaviest(state.calls, call.end_ms, v.window_s * 1000)
        per_min = tokens * 60 / v.window_s
        limit_hit = tokens > v.max_tokens
        baseline_hit = (baseline_tokens_per_min is not None and tokens >= v.baseline_min_tokens
                        and per_min > float(v.baseline_factor) * baseline_tokens_per_min)
        if limit_hit or baseline_hit:
            why = (f"above the limit of {v.max_tokens:,}" if limit_hit else
                   f"{per_min / baseline_tokens_per_min:.1f}x this agent's baseline of "
                   f"{baseline_tokens_per_min:,.0f} tokens/min")
            found.append(Finding("token_velocity",
                                 f"{tokens:,} tokens within {v.window_s} s ({per_min:,.0f}/min), {why}",
                                 {"tokens": tokens, "window_s": v.window_s, "tokens_per_min": round(per_min),
                                  "max_tokens": v.max_tokens, "baseline_tokens_per_min":
                                  None if baseline_tokens_per_min is None else round(baseline_tokens_per_min),
                                  "baseline_factor": str(v.baseline_factor),
                                  "first_end_ms": start, "last_end_ms": end}, end))
    s = rules.step_count
    if s.enabled and state.steps > s.max_steps:
        found.append(Finding("step_count", f"{state.steps} calls in this session (maximum {s.max_steps})",
                             {"steps": state.steps, "max_steps": s.max_steps}, call.end_ms))
    c = rules.session_cost
    if c.enabled and state.cost_usd > c.max_usd:
        found.append(Finding("session_cost", f"session cost ${state.cost_usd:.6f} is above the cap of ${c.max_usd}",
                             {"cost_usd": str(state.cost_usd), "max_usd": str(c.max_usd), "steps": state.steps},
                             call.end_ms))
    return found


def _densest(times: list[int], t: int, window_ms: int) -> tuple[int, int, int]:
    """Most events in a closed window of `window_ms` that contains time `t` (the new call),
    over sorted times: (count, first, last). Only windows with the new call can have changed."""
    best, lo = (0, 0, 0), 0
    for hi, end in enumerate(times):
        while end - times[lo] > window_ms:
            lo += 1
        if times[lo] <= t <= end and hi - lo + 1 > best[0]:
            best = (hi - lo + 1, times[lo], end)
    return best


def _heaviest(calls: list[Call], t: int, window_ms: int) -> tuple[int, int, int]:
    """Most tokens in a closed window of `window_ms` containing time `t`, over calls sorted
    by end: (tokens, first, last)."""
    best, lo, total = (0, 0, 0), 0, 0
    for c in calls:
        total += c.tokens
        while c.end_ms - calls[lo].end_ms > window_ms:
            total -= calls[lo].tokens
            lo += 1
        if calls[lo].end_ms <= t <= c.end_ms and total > best[0]:
            best = (total, calls[lo].end_ms, c.end_ms)
    return best


# --- sequence rules: judged on settled calls, in event-time order -------------------------
def settle(state: SessionState, now_ms: int, out_of_order_ms: int) -> int:
    """Advance the judged horizon to the newest call that arrived at least
    `out_of_order_ms` ago; returns the horizon (end_ms), unchanged if nothing settled."""
    settled = [c.end_ms for c in state.calls if c.arrived_ms + out_of_order_ms <= now_ms]
    if settled:
        state.judged_until_ms = max(state.judged_until_ms, max(settled))
    return state.judged_until_ms


def sequence_findings(state: SessionState, rules: DetectorRules, since_ms: int = -1) -> list[Finding]:
    """Runs that end after `since_ms` (the horizon before the latest `settle`): older runs
    were judged already, so a resolved incident is not re-opened on its old evidence."""
    settled = [c for c in state.calls if not c.late and c.end_ms <= state.judged_until_ms]
    seq = [c for c in settled if c.tool is None]  # LLM calls; tool calls only for tool_failures
    found = []
    g = rules.context_growth
    if g.enabled:
        steps, first, last, repeated = _longest_rise(seq, g.min_step_tokens, since_ms)
        # integer percent, compared without division: the JVM port must agree to the call
        if steps >= g.min_consecutive_steps and repeated * 100 >= g.min_repeated_percent * (steps + 1):
            found.append(Finding("context_growth",
                                 f"input tokens rose for {steps} consecutive calls, "
                                 f"from {first.input_tokens:,} to {last.input_tokens:,} "
                                 f"({last.input_tokens / max(first.input_tokens, 1):.1f}x), "
                                 f"{repeated} of {steps + 1} calls repeating an earlier turn",
                                 {"consecutive_steps": steps, "min_consecutive_steps": g.min_consecutive_steps,
                                  "repeated_calls": repeated, "min_repeated_percent": g.min_repeated_percent,
                                  "first_input_tokens": first.input_tokens, "last_input_tokens": last.input_tokens,
                                  "first_end_ms": first.end_ms, "last_end_ms": last.end_ms}, last.end_ms))
    p = rules.ping_pong
    if p.enabled:
        cycles, a, b, first, last = _longest_alternation([c for c in seq if c.fingerprint], since_ms)
        if cycles >= p.min_cycles:
            found.append(Finding("ping_pong",
                                 f"two calls alternated {cycles} times ({a} <-> {b})",
                                 {"cycles": cycles, "min_cycles": p.min_cycles, "fingerprint_a": a,
                                  "fingerprint_b": b, "first_end_ms": first, "last_end_ms": last}, last))
    r = rules.repeated_step
    if r.enabled:
        repeats, first, last, growth = _longest_repeated_step(seq, r.min_growth_tokens, since_ms)
        if repeats >= r.min_repeats:
            output = last.tokens - last.input_tokens
            found.append(Finding("repeated_step",
                                 f"the same step {repeats} times in a row: each call grew the input as the call "
                                 f"two before it did and produced as many output tokens (last: +{growth:,} in, "
                                 f"{output:,} out)",
                                 {"repeats": repeats, "min_repeats": r.min_repeats, "input_growth_tokens": growth,
                                  "output_tokens": output, "first_end_ms": first.end_ms, "last_end_ms": last.end_ms},
                                 last.end_ms))
    t = rules.tool_failures
    if t.enabled:
        count, tool, failure, first, last = _longest_failure_run([c for c in settled if c.tool is not None], since_ms)
        if count >= t.min_consecutive:
            found.append(Finding("tool_failures",
                                 f"tool {tool} failed {count} times in a row the same way ({failure}), "
                                 f"with no success in between",
                                 {"tool": tool, "failure": failure, "consecutive_failures": count,
                                  "min_consecutive": t.min_consecutive, "first_end_ms": first, "last_end_ms": last},
                                 last))
    return found


def _longest_rise(seq: list[Call], min_step: int, since_ms: int):
    """The longest run of rising input tokens ending after `since_ms`: (steps, first call,
    last call, calls in the run whose fingerprint appeared earlier in the same run)."""
    best = (0, None, None, 0)
    run_start = 0
    seen: set[str] = set()
    repeated = 0
    for i in range(len(seq)):
        if i > 0 and seq[i].input_tokens - seq[i - 1].input_tokens < min_step:
            run_start, seen, repeated = i, set(), 0
        fp = seq[i].fingerprint
        if fp:  # None or "": no fingerprint, never a repeat
            repeated += fp in seen
            seen.add(fp)
        if i - run_start > best[0] and seq[i].end_ms > since_ms:
            best = (i - run_start, seq[run_start], seq[i], repeated)
    return best


def _longest_alternation(seq: list[Call], since_ms: int):
    """Longest A,B,A,B,... run of two distinct fingerprints; one A,B pair is one cycle."""
    best = (0, None, None, 0, 0)
    run_start = 0
    for i in range(1, len(seq)):
        if seq[i].fingerprint == seq[i - 1].fingerprint:
            run_start = i
            continue
        if i - run_start >= 2 and seq[i].fingerprint != seq[i - 2].fingerprint:
            run_start = i - 1  # a third fingerprint: a new run starts at the previous call
        cycles = (i - run_start + 1) // 2
        if cycles > best[0] and seq[i].end_ms > since_ms:
            best = (cycles, seq[run_start].fingerprint, seq[run_start + 1].fingerprint,
                    seq[run_start].end_ms, seq[i].end_ms)
    return best


def _longest_repeated_step(seq: list[Call], min_growth: int, since_ms: int):
    """The longest run of calls whose step (input growth over the previous call, output
    tokens) equals the step two calls before, ending after `since_ms`: (repeats, first call
    of the evidence, last call, its input growth)."""
    best = (0, None, None, 0)
    run = 0
    for i in range(3, len(seq)):
        growth = seq[i].input_tokens - seq[i - 1].input_tokens
        same = (growth >= min_growth and growth == seq[i - 2].input_tokens - seq[i - 3].input_tokens
                and seq[i].tokens - seq[i].input_tokens == seq[i - 2].tokens - seq[i - 2].input_tokens)
        run = run + 1 if same else 0
        if run > best[0] and seq[i].end_ms > since_ms:
            best = (run, seq[i - run - 2], seq[i], growth)
    return best


def _longest_failure_run(tool_calls: list[Call], since_ms: int):
    """Per tool, the run of failures with the same fingerprint (tool and error type) since
    that tool last succeeded; the longest run ending after `since_ms`: (count, tool,
    fingerprint, first end_ms, last end_ms). Other tools' calls in between do not break a
    run (an agent alternating a failing tool with a working one is still stuck)."""
    best = (0, None, None, 0, 0)
    runs: dict[str, tuple[str, int, int]] = {}  # tool -> (fingerprint, count, first end_ms)
    for c in tool_calls:
        if not c.fingerprint:  # the tool succeeded: its failures so far were transient
            runs.pop(c.tool, None)
            continue
        fp, count, first = runs.get(c.tool, (None, 0, 0))
        fp, count, first = (fp, count + 1, first) if fp == c.fingerprint else (c.fingerprint, 1, c.end_ms)
        runs[c.tool] = (fp, count, first)
        if count > best[0] and c.end_ms > since_ms:
            best = (count, c.tool, fp, first, c.end_ms)
    return best


# --- the agent's own baseline (for token velocity) ---------------------------------------
_SESSION_BITS = 8192  # linear-counting bitmap: exact-enough distinct sessions per minute


def _session_bit(session: str) -> int:
    # SHA-256, not hash(): Python's string hash differs per process, and state moves between
    # them; not crc32 either: it is linear, and similar ids ("s-1", "s-2") collide in patterns.
    # SHA-256 (not blake2b) because the JVM port (AgentBaseline.java) has it built in.
    digest = hashlib.sha256(session.encode()).digest()
    return 1 << (int.from_bytes(digest[:8], "little") % _SESSION_BITS)


def _distinct_sessions(bitmap: int) -> float:
    zeros = _SESSION_BITS - bitmap.bit_count()
    return _SESSION_BITS * math.log(_SESSION_BITS / zeros) if zeros else float(_SESSION_BITS)


@dataclass
class AgentBaseline:
    """Exponentially weighted mean of tokens per active session-minute for one agent,
    over closed event-time minutes (the current and previous minute are still open, so a
    loop that starts now cannot raise its own baseline before it is judged). Sessions per
    minute are counted with an 8192-bit linear-counting bitmap (about 1 % standard error at
    a thousand sessions) instead of a set: this state is pickled on every call."""

    alpha: float = 0.2
    mean_tokens_per_min: float | None = None
    minutes_folded: int = 0
    open_minutes: dict[int, tuple[int, int]] = field(default_factory=dict)  # minute -> (tokens, session bitmap)
    last_seen_ms: int = 0  # wall clock of the agent's latest call (state expiry)

    def add(self, end_ms: int, session: str, tokens: int) -> None:
        minute = end_ms // 60_000
        if self.open_minutes and minute < min(self.open_minutes):
            return  # older than what is already folded: skip rather than rewrite history
        total, sessions = self.open_minutes.get(minute, (0, 0))
        self.open_minutes[minute] = (total + tokens, sessions | _session_bit(session))
        newest = max(self.open_minutes)
        for m in sorted(self.open_minutes):
            if m >= newest - 1:
                break
            total, sessions = self.open_minutes.pop(m)
            rate = total / _distinct_sessions(sessions)
            self.mean_tokens_per_min = rate if self.mean_tokens_per_min is None else (
                self.alpha * rate + (1 - self.alpha) * self.mean_tokens_per_min)
            self.minutes_folded += 1

    def baseline(self, min_minutes: int) -> float | None:
        return self.mean_tokens_per_min if self.minutes_folded >= min_minutes else None
