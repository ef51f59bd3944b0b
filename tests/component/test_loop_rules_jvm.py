"""The JVM port of the loop rules (stream_jobs/jvm/.../loops) against the Python reference
(stream_jobs/loop_rules.py and loop_detection.py's LoopDetectorFunction): generated sessions
(repeats, alternations, rising contexts, reordered, duplicate and stale arrivals, random
thresholds and overrides) are replayed through both, event by event, and every answer must
be the same: which calls count, which are late, every finding with its summary text and
evidence, the judged horizon, every alert document opened or resolved (but its wall-clock
`emitted_ms`), and the agent baseline (to 1e-12: the two `log`s may differ in the last bit)."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pyflink
import pytest

from tokenpulse.jars import udf_jar
from tokenpulse.schemas.alerts import Alert, alert_id_for
from tokenpulse.schemas.detectors import DetectorConfig
from tokenpulse.settings import PathSettings
from tokenpulse.stream_jobs.loop_detection import LoopDetectorFunction
from tokenpulse.stream_jobs.loop_rules import (
    AgentBaseline,
    Call,
    SessionState,
    add_call,
    monotone_findings,
    sequence_findings,
    settle,
)

SESSIONS = 400  # generated sessions per run (one JVM for all of them)


@pytest.fixture(scope="module")
def jvm_replay():
    """Runs a list of event lines through LoopReplay and returns its answers."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("a JDK is needed (the stream jobs need one too): apt-get install openjdk-17-jdk")
    classpath = f"{Path(pyflink.__file__).parent / 'lib'}/*:{udf_jar(PathSettings())}"

    def replay(lines: list[dict]) -> list[dict]:
        out = subprocess.run([java, "-cp", classpath, "dev.tokenpulse.flink.loops.LoopReplay"],
                             input="".join(json.dumps(line) + "\n" for line in lines),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return [json.loads(line) for line in out.stdout.splitlines()]

    return replay


def random_config(rng: random.Random) -> DetectorConfig:
    """Small thresholds so every rule fires in short sessions, and an override for the agent."""
    doc = {
        "timing": {"out_of_order_ms": rng.choice([0, 500, 2000]), "max_calls_per_session": rng.choice([8, 16, 256]),
                   "max_evidence_age_s": rng.choice([1, 5, 600])},
        "rules": {
            "repetition": {"min_repeats": rng.randint(2, 5), "window_s": rng.choice([1, 5, 60])},
            "token_velocity": {"window_s": rng.choice([1, 10, 60]), "max_tokens": rng.randint(2_000, 40_000),
                               "baseline_factor": rng.choice(["1.5", "2", "10", "3.25"]),
                               "baseline_min_tokens": rng.randint(1, 5_000), "baseline_min_minutes": rng.randint(1, 3)},
            "context_growth": {"min_consecutive_steps": rng.randint(2, 6), "min_step_tokens": rng.choice([1, 50]),
                               "min_repeated_percent": rng.choice([0, 30, 50, 51, 100]),
                               "severity": rng.choice(["warning", "critical"]), "action": rng.choice(["notify", "stop"])},
            "ping_pong": {"min_cycles": rng.randint(2, 4)},
            "tool_failures": {"min_consecutive": rng.randint(2, 4)},
            "repeated_step": {"min_repeats": rng.randint(2, 5), "min_growth_tokens": rng.choice([1, 100])},
            "step_count": {"max_steps": rng.randint(3, 40), "severity": "warning"},
            "session_cost": {"max_usd": rng.choice(["0.01", "0.050000", "1"])},
        },
        "overrides": [
            {"match": {"tenant": "t", "service": "svc"}, "rules": {"repetition": {"min_repeats": rng.randint(2, 6)}}},
            {"match": {"tenant": "t", "service": "svc", "agent_name": "a"},
             "rules": {"session_cost": {"max_usd": rng.choice([0.02, 3, "0.5"])}, "ping_pong": {"enabled": rng.random() < 0.8}}},
            {"match": {"tenant": "other"}, "rules": {"step_count": {"max_steps": 1}}},
        ],
    }
    return DetectorConfig.model_validate(doc)


def random_session(rng: random.Random, n: int) -> list[dict]:
    """Calls with repeats, A/B alternations and rising inputs, failed tool calls, some out of order or
    resent, and settles."""
    events, t, inp = [], 1_700_000_000_000, rng.randint(100, 5_000)
    fingerprints = ["A", "B", "C", None, ""]
    sent = []
    stuck = False  # a stretch of the same step: constant input growth and output
    for i in range(n):
        t += rng.choice([0, 1, 50, 250, 1_000, 4_000, 70_000])
        stuck = stuck != (rng.random() < 0.15)
        if stuck:
            inp += rng.choice([120, 120, 120, 95])  # mostly the same growth
        else:
            inp = inp + rng.randint(1, 400) if rng.random() < 0.7 else rng.randint(100, 5_000)
        fp = fingerprints[i % 2] if rng.random() < 0.5 else rng.choice(fingerprints)
        span = f"{rng.randrange(16**4):04x}{i:012x}"
        tool = rng.choice(["search", "shell"]) if rng.random() < 0.3 else None  # an execute_tool span
        if tool:  # failed (the same way, mostly) or succeeded
            fp = rng.choice([f"tool:{tool}:TimeoutError"] * 4 + [f"tool:{tool}:error", None])
        call = {"op": "call", "tool": tool, "end_ms": t - rng.choice([0, 0, 0, 300, 3_000]), "span_id": span, "fingerprint": fp,
                "input_tokens": 0 if tool else inp, "tokens": 0 if tool else inp + (40 if stuck else rng.randint(0, 2_000)), "arrived_ms": t + rng.randint(0, 900),
                "cost_usd": "0" if tool else str(Decimal(rng.randint(0, 10**10)).scaleb(-12)),
                "baseline_tpm": rng.choice([None, rng.uniform(1, 5_000), 1000.0])}
        sent.append(call)
        events.append(call)
        if rng.random() < 0.1:  # a resent span: must change nothing
            events.append({**rng.choice(sent), "arrived_ms": t + 5})
        if rng.random() < 0.25:
            events.append({"op": "settle", "now_ms": t + rng.choice([0, 500, 2_000, 10_000])})
        if rng.random() < 0.05:
            events.append({"op": "resolve", "now_ms": t + rng.choice([0, 1_234, 120_000])})
    events.append({"op": "settle", "now_ms": t + 100_000})
    return events


IDENTITY = {"tenant": "t", "service": "svc", "team": "team-α", "agent_name": "a", "session_id": "sess-1"}


def python_replay(config: DetectorConfig, events: list[dict]) -> list[dict]:
    """The same answers from the reference implementation."""
    rules = config.rules_for("t", "svc", "a")
    detector = LoopDetectorFunction(config)  # its alert emission, without a Flink runtime
    state, baseline, out = SessionState(), AgentBaseline(), []
    for e in events:
        if e["op"] == "call":
            call = Call(end_ms=e["end_ms"], span_id=e["span_id"], fingerprint=e["fingerprint"],
                        input_tokens=e["input_tokens"], tokens=e["tokens"], arrived_ms=e["arrived_ms"],
                        tool=e.get("tool"))
            added = add_call(state, call, Decimal(e["cost_usd"]), config.timing.max_calls_per_session)
            found = [] if added is None else monotone_findings(state, added, rules, e["baseline_tpm"])
            out.append({"added": added is not None, "late": added is not None and added.late,
                        "findings": findings(found),
                        "alerts": alerts(detector._open(state, IDENTITY, found, rules, e["arrived_ms"]))})
        elif e["op"] == "settle":
            before = state.judged_until_ms
            settle(state, e["now_ms"], config.timing.out_of_order_ms)
            found = sequence_findings(state, rules, since_ms=before)
            out.append({"judged_until_ms": state.judged_until_ms, "findings": findings(found),
                        "alerts": alerts(detector._open(state, IDENTITY, found, rules, e["now_ms"]))})
        elif e["op"] == "resolve":
            out.append({"alerts": alerts(detector._resolve(state, IDENTITY, e["now_ms"]))})
        else:
            current = baseline.baseline(e["min_minutes"])
            baseline.add(e["end_ms"], e["session"], e["tokens"])
            out.append({"baseline": current})
    return out


def alerts(rows) -> list[dict]:
    return [json.loads(payload) for _key, payload in rows]


def without_wall_clock(answer: dict) -> dict:
    """Alert documents carry the wall clock of their emission: the one field that may differ."""
    if "alerts" not in answer:
        return answer
    return {**answer, "alerts": [{k: v for k, v in a.items() if k != "emitted_ms"} for a in answer["alerts"]]}


def difference(have, want, path: str = "") -> str:
    """Where two answers first differ (the JVM's value first), for a readable failure."""
    if isinstance(have, dict) and isinstance(want, dict) and have.keys() == want.keys():
        return next(difference(have[k], want[k], f"{path}.{k}") for k in have if have[k] != want[k])
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        return next(difference(h, w, f"{path}[{i}]") for i, (h, w) in enumerate(zip(have, want)) if h != w)
    return f"{path}: JVM {have!r} vs Python {want!r}"


def findings(found) -> list[dict]:
    # through JSON, as the JVM's answers come
    return json.loads(json.dumps([{"rule": f.rule, "summary": f.summary, "evidence": f.evidence,
                                   "event_ms": f.event_ms} for f in found]))


def session_line(config: DetectorConfig) -> dict:
    return {"op": "session", "config": json.loads(config.jvm_json()), **IDENTITY}


def test_generated_sessions_find_the_same_on_both_sides(jvm_replay):
    rng = random.Random(20261124)
    lines, expected, fired, emitted = [], [], set(), set()
    for _ in range(SESSIONS):
        config = random_config(rng)
        events = random_session(rng, rng.randint(5, 60))
        lines += [session_line(config), *events]
        expected += [{}, *python_replay(config, events)]
        fired |= {f["rule"] for answer in expected[-len(events):] for f in answer.get("findings", [])}
        emitted |= {(a["state"], a["severity"]) for answer in expected[-len(events):] for a in answer.get("alerts", [])}
    got = jvm_replay(lines)
    assert len(got) == len(expected)
    for i, (line, want, have) in enumerate(zip(lines, expected, got)):
        mine, reference = without_wall_clock(have), without_wall_clock(want)
        assert mine == reference, f"event {i}: {line}: {difference(mine, reference)}"
        for alert in have.get("alerts", []):  # and each is a valid alert the dispatcher accepts
            assert Alert.model_validate(alert).alert_id == alert_id_for(alert["dedupe_key"], alert["opened_ms"])
    # the generator must exercise every rule and alert state, or the comparison proves little
    assert fired == {"repetition", "token_velocity", "context_growth", "ping_pong", "tool_failures", "repeated_step",
                     "step_count", "session_cost"}
    assert {("open", "critical"), ("open", "warning"), ("open", "info"), ("resolved", "critical")} <= emitted


def test_agent_baseline_matches(jvm_replay):
    rng = random.Random(7)
    config = random_config(rng)
    events, t = [], 1_700_000_000_000
    for _ in range(3_000):
        t += rng.choice([0, 100, 2_000, 20_000, 61_000])
        events.append({"op": "baseline", "end_ms": t - rng.choice([0, 0, 90_000, 200_000]),
                       "session": f"s-{rng.randrange(rng.choice([3, 40, 9_000]))}", "tokens": rng.randint(0, 50_000),
                       "min_minutes": rng.randint(1, 4)})
    want = python_replay(config, events)
    got = jvm_replay([session_line(config), *events])[1:]
    assert sum(w["baseline"] is not None for w in want) > 1_000
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        if w["baseline"] is None:
            assert g["baseline"] is None, i
        else:
            assert math.isclose(g["baseline"], w["baseline"], rel_tol=1e-12), (i, w, g)


def test_config_overrides_resolve_like_python(jvm_replay):
    """The most specific override wins field by field: a 2-repeat rule for the agent's
    service fires on the second repeat in the JVM exactly as in Python."""
    config = DetectorConfig.model_validate({
        "rules": {"repetition": {"min_repeats": 6}},
        "overrides": [{"match": {"tenant": "t"}, "rules": {"repetition": {"min_repeats": 4, "window_s": 30}}},
                      {"match": {"tenant": "t", "service": "svc"}, "rules": {"repetition": {"min_repeats": 2}}}]})
    events = [{"op": "call", "end_ms": 1_000 * i, "span_id": f"{i:016x}", "fingerprint": "A", "input_tokens": 10,
               "tokens": 20, "arrived_ms": 1_000 * i, "cost_usd": "0", "baseline_tpm": None} for i in range(1, 4)]
    got = jvm_replay([session_line(config), *events])[1:]
    assert [without_wall_clock(a) for a in got] == [without_wall_clock(a) for a in python_replay(config, events)]
    assert [len(a["findings"]) for a in got] == [0, 1, 1]
    assert got[1]["findings"][0]["evidence"] == {"fingerprint": "A", "repeats": 2, "window_s": 30, "min_repeats": 2,
                                                 "first_end_ms": 1_000, "last_end_ms": 2_000}
