"""Runaway loops on the real pipeline: SDK -> collector -> Kafka -> cost job -> loop
detection job -> alerts topic -> dispatcher -> local webhook / Slack / PagerDuty servers,
and back to the app through the collector's circuit breaker board."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid

import pytest
from helpers import HOOK_SECRET, wait_for
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tokenpulse.alerts.hooks import verify_signature
from tokenpulse.insights.runner import KafkaAlertPublisher
from tokenpulse.schemas.alerts import Alert, alert_id_for
from tokenpulse.sdk import CircuitBreaker, SessionStopped, call_fingerprint, record_llm_call
from tokenpulse.sql_client import run_sql
from tokenpulse.stack import Stack

pytestmark = pytest.mark.integration
KEY = "demo-acme-key"
WORDS = ("apple banana cherry delta echo forest garden harbor island jungle kettle lemon meadow "
         "nectar orbit pepper quartz river saddle timber umbrella velvet willow xenon yonder zephyr "
         "anchor bridge candle desert ember falcon glacier hollow ivory jasmine kernel lantern marble").split()


def collector_url(settings) -> str:
    return f"http://{settings.collector.host}:{settings.collector.port}"


def app_tracer_provider(settings, service: str) -> TracerProvider:
    """An app's own OTel setup: spans exported as they end, straight to the collector."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{collector_url(settings)}/v1/traces", headers={"Authorization": f"Bearer {KEY}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def about(session: str):
    return lambda r: session.encode() in r.body


def test_looping_agent_is_paged_stopped_and_resolved(stack_settings, hook_receivers):
    session = f"loop-{uuid.uuid4().hex[:8]}"
    provider = app_tracer_provider(stack_settings, "it-looper")
    breaker = CircuitBreaker(collector_url(stack_settings), api_key=KEY)
    assert breaker.wait_ready(15)
    stopped, calls_made = None, 0
    for step in range(80):
        try:
            with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=session, agent_name="looper",
                                 messages=[{"role": "user", "content": "Check the status of order 12345 again"}],
                                 breaker=breaker, tracer_provider=provider) as call:
                call.set_usage(input_tokens=1000 + 400 * step, output_tokens=60)  # and the context grows
            calls_made += 1
        except SessionStopped as exc:
            stopped = exc
            break
        time.sleep(0.25)
    assert stopped is not None, "the looping session was never stopped"
    assert stopped.session_id == session and stopped.rule in ("repetition", "context_growth")
    assert 5 <= calls_made < 40

    # Paged: the signed webhook and PagerDuty trigger, once per incident.
    opened = hook_receivers["webhook"].wait_for(lambda r: about(session)(r) and r.json()["state"] == "open")
    assert opened
    for r in opened:
        assert verify_signature(HOOK_SECRET, r.headers["X-Tokenpulse-Timestamp"], r.body, r.headers["X-Tokenpulse-Signature"])
        assert r.json()["evidence"] and r.json()["summary"]
    assert verify_signature(HOOK_SECRET, opened[0].headers["X-Tokenpulse-Timestamp"], opened[0].body + b" ",
                            opened[0].headers["X-Tokenpulse-Signature"]) is False
    triggers = hook_receivers["pagerduty"].wait_for(lambda r: about(session)(r) and r.json()["event_action"] == "trigger")
    assert {t.json()["dedup_key"] for t in triggers} == {f"acme/runaway_loop/repetition/{session}"}
    dedup_key = triggers[0].json()["dedup_key"]
    assert hook_receivers["slack"].wait_for(about(session))

    # The session goes quiet (it was stopped): the incident resolves, the page too, the breaker clears.
    resolves = hook_receivers["pagerduty"].wait_for(
        lambda r: r.json().get("dedup_key") == dedup_key and r.json()["event_action"] == "resolve", timeout_s=90)
    assert resolves
    deadline = time.monotonic() + 30
    while breaker.is_stopped(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not breaker.is_stopped(session)
    with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=session, breaker=breaker,
                         tracer_provider=provider) as call:
        call.set_usage(input_tokens=10, output_tokens=1)
    breaker.close()

    # No duplicate pages for one incident, and everything recorded in ClickHouse.
    time.sleep(2)
    assert len(hook_receivers["pagerduty"].matching(
        lambda r: r.json().get("dedup_key") == dedup_key and r.json()["event_action"] == "trigger")) == 1
    webhook_ids = [json.loads(r.body)["alert_id"] + json.loads(r.body)["state"] for r in hook_receivers["webhook"].matching(about(session))]
    assert len(webhook_ids) == len(set(webhook_ids))
    # The alerts table keeps each incident's newest state: resolved, with both times.
    rows = wait_for(stack_settings, """
        SELECT rule, state, severity, action, opened_at < resolved_at FROM alerts FINAL
        WHERE session_id = {s:String} AND rule = 'repetition'""",
        {"s": session}, lambda rows: rows and rows[0][1] == "resolved", timeout_s=60)
    assert [tuple(r) for r in rows] == [("repetition", "resolved", "critical", "stop", 1)]
    outcomes = wait_for(stack_settings, """
        SELECT hook, state, outcome FROM alert_dispatches FINAL
        WHERE dedupe_key = {k:String} ORDER BY hook, state""", {"k": dedup_key},
        lambda rows: len(rows) >= 6, timeout_s=60)
    from tokenpulse.sql_client import saved_query

    runaway = wait_for(stack_settings, saved_query("runaway_sessions"), {"hours": 1, "limit": 1000},
                       lambda rows: any(r[1] == session and r[7] >= calls_made for r in rows))
    row = next(r for r in runaway if r[1] == session)
    assert "repetition" in row[2] and row[4] == 1 and row[7] >= calls_made  # breaker tripped; every call counted
    assert [tuple(r) for r in outcomes] == [(h, s, "delivered") for h in ("it-pagerduty", "it-slack", "it-webhook") for s in ("open", "resolved")]


def test_busy_healthy_agent_is_not_alerted(stack_settings, hook_receivers):
    healthy = f"healthy-{uuid.uuid4().hex[:8]}"
    sentinel = f"sentinel-{uuid.uuid4().hex[:8]}"
    provider = app_tracer_provider(stack_settings, "it-busy")
    for i, word in enumerate(WORDS):  # many different calls, context that rises and falls
        with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=healthy, agent_name="busy",
                             prompt=f"Write a haiku about the {word}", tracer_provider=provider) as call:
            call.set_usage(input_tokens=800 + (i * 137) % 400, output_tokens=120)
    for _ in range(6):  # then a loop in another session: once it pages, the healthy calls were judged too
        with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=sentinel, agent_name="busy",
                             prompt="same thing again", tracer_provider=provider) as call:
            call.set_usage(input_tokens=100, output_tokens=10)
    assert hook_receivers["webhook"].wait_for(about(sentinel), timeout_s=60)
    time.sleep(3)
    assert hook_receivers["webhook"].matching(about(healthy)) == []
    assert run_sql(stack_settings, "SELECT count() FROM alerts WHERE session_id = {s:String}", {"s": healthy}).rows[0][0] == 0


def agent_run(provider: TracerProvider, tool_outcomes: list[str | None]) -> str:
    """One agent run as an agent framework traces it, content capture off: an invoke_agent
    root (conversation and agent only there), then per step a chat span (no messages) and an
    execute_tool span (error.type and status ERROR when the tool failed, None when it worked).
    Returns the trace id: without a conversation id on the calls, the detector's session."""
    tracer = provider.get_tracer("it.agent_framework")
    with tracer.start_as_current_span("invoke_agent fixer", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "fixer",
            "gen_ai.conversation.id": f"conv-{uuid.uuid4().hex[:8]}"}) as root:
        for step, error in enumerate(tool_outcomes):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 900 + 150 * step,
                    "gen_ai.usage.output_tokens": 40}):
                time.sleep(0.05)
            with tracer.start_as_current_span("execute_tool run_migration", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "run_migration"}) as tool:
                if error:
                    tool.set_attribute("error.type", error)
                    tool.set_status(Status(StatusCode.ERROR, f"{error} at attempt {step}"))
            time.sleep(0.2)
        return format(root.get_span_context().trace_id, "032x")


def test_a_tool_failing_the_same_way_pages_without_prompt_content(stack_settings, hook_receivers):
    provider = app_tracer_provider(stack_settings, "it-tools")
    # healthy first: the tool fails now and then, and works on the retry
    flaky = agent_run(provider, ["TimeoutError", None, None, "TimeoutError", None, "TimeoutError", None, None])
    stuck = agent_run(provider, [None, None] + ["PermissionError"] * 5)
    opened = hook_receivers["webhook"].wait_for(lambda r: about(stuck)(r) and r.json()["state"] == "open", timeout_s=60)
    assert opened, "the stuck tool loop was never paged"
    alert = opened[0].json()
    assert alert["rule"] == "tool_failures" and alert["evidence"]["tool"] == "run_migration"
    assert alert["evidence"]["consecutive_failures"] >= 4 and "PermissionError" in alert["evidence"]["failure"]
    time.sleep(3)  # the flaky run was judged before the stuck one (same job, earlier watermark)
    assert hook_receivers["webhook"].matching(about(flaky)) == []


def spans_at(session: str, plan: list[tuple[int, str, int]]) -> list:
    """Finished SDK spans for (end time ns, prompt, input tokens) triples, as a backlog would hold them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "it-edge-backlog"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("it")
    for end_ns, prompt, inp in plan:
        span = tracer.start_span("chat llama3.1:8b", start_time=end_ns - 500_000_000, attributes={
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": 20, "gen_ai.conversation.id": session,
            "gen_ai.agent.name": "backlog", "tokenpulse.call.fingerprint": call_fingerprint(prompt=prompt)})
        span.end(end_time=end_ns)
    return list(memory.get_finished_spans())


def export(settings, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{collector_url(settings)}/v1/traces", headers={"Authorization": f"Bearer {KEY}"})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def test_late_out_of_order_burst_does_not_page_but_a_reordered_live_loop_does(stack_settings, hook_receivers):
    run = uuid.uuid4().hex[:8]
    now_ns = time.time_ns()
    minute = 60 * 10**9
    rnd = random.Random(run)
    # A healthy session from 40..20 minutes ago, arriving all at once and shuffled: three
    # prompts in rotation (never 5 alike within 60 s, no A/B alternation), a saw-tooth context.
    healthy = f"late-healthy-{run}"
    plan = [(now_ns - 40 * minute + i * 40 * 10**9, ("plan", "search", "answer")[i % 3], 1000 + 100 * (i % 4))
            for i in range(30)]
    backlog = spans_at(healthy, plan)
    rnd.shuffle(backlog)
    # A real loop, but 50 minutes ago: recorded with severity info, paged to nobody.
    stale = f"late-loop-{run}"
    backlog += spans_at(stale, [(now_ns - 50 * minute + i * 5 * 10**9, "retry the same tool", 500) for i in range(6)])
    export(stack_settings, backlog)
    # A live loop whose spans arrive newest first, in two requests: still one true incident.
    live = f"reordered-loop-{run}"
    loop = spans_at(live, [(now_ns - (6 - i) * 10**9, "fetch page 1 again", 700) for i in range(6)])
    export(stack_settings, loop[3:][::-1])
    export(stack_settings, loop[:3][::-1])

    assert hook_receivers["webhook"].wait_for(lambda r: about(live)(r) and r.json()["state"] == "open", timeout_s=60)
    info = wait_for(stack_settings, "SELECT rule, severity, action FROM alerts FINAL WHERE session_id = {s:String}",
                    {"s": stale}, lambda rows: len(rows) > 0, timeout_s=60)
    assert [tuple(r) for r in info] == [("repetition", "info", "notify")]  # history: no page, no breaker
    time.sleep(2)
    for hook in ("webhook", "slack", "pagerduty"):
        assert hook_receivers[hook].matching(lambda r: about(healthy)(r) or about(stale)(r)) == []
    assert run_sql(stack_settings, "SELECT count() FROM alerts WHERE session_id = {s:String}", {"s": healthy}).rows[0][0] == 0


def test_detector_state_survives_a_restart(stack_settings, hook_receivers):
    """Three repeats, a checkpoint taken after them, the detector stopped and started again
    (restored from that checkpoint, so Kafka does not replay the three), two more repeats:
    the 5-repeat rule fires once, and its evidence counts the calls from before the restart."""
    stack = Stack(stack_settings)
    session = f"restart-{uuid.uuid4().hex[:8]}"
    provider = app_tracer_provider(stack_settings, "it-restarter")

    def repeat(n: int) -> None:
        for _ in range(n):
            with record_llm_call(provider="openai", model="gpt-4o-mini", session_id=session, agent_name="restarter",
                                 messages=[{"role": "user", "content": "Is the build green yet?"}],
                                 tracer_provider=provider) as call:
                call.set_usage(input_tokens=800, output_tokens=40)
            time.sleep(0.2)

    repeat(3)
    # The calls reach the detector within a second or two; a checkpoint finished after that holds them.
    after = time.time() + 3
    checkpoints = stack_settings.paths.state_dir / "flink" / "checkpoints"
    deadline = time.monotonic() + 60
    while not any(m.stat().st_mtime > after for m in checkpoints.glob("loop-detection-*/*/chk-*/_metadata")):
        assert time.monotonic() < deadline, "the detector took no checkpoint within 60 s"
        time.sleep(0.5)
    # Its Kafka offsets are committed just after; once they are, a job that came back without
    # its state would not see the three again (TOKENPULSE_DETECTOR_RESUME=false fails this test).
    time.sleep(3)
    assert stack.stop("loop-detector")
    stack.start(stack.service("loop-detector"))
    repeat(2)

    opened = hook_receivers["webhook"].wait_for(lambda r: about(session)(r) and r.json()["state"] == "open")
    assert [r.json()["rule"] for r in opened] == ["repetition"]
    assert opened[0].json()["evidence"]["repeats"] == 5
    time.sleep(2)  # and no second page for the same incident
    assert len(hook_receivers["webhook"].matching(lambda r: about(session)(r) and r.json()["state"] == "open")) == 1
    provider.shutdown()


def test_an_orphaned_incident_is_resolved_by_hand(stack_settings, hook_receivers):
    """An incident open on the alerts topic that no detector state knows about (what a
    --no-resume start or an engine switch leaves behind; here published directly): nobody
    resolves it. `tokenpulse resolve-alerts` does: the hooks get the resolve once, the
    breaker clears, `alerts` records it under the incident's own id."""
    session = f"orphan-{uuid.uuid4().hex[:8]}"
    key = f"acme/runaway_loop/repetition/{session}"
    opened_ms = int(time.time() * 1000) - 60_000
    orphan = Alert(alert_id=alert_id_for(key, opened_ms), dedupe_key=key, state="open", kind="runaway_loop",
                   rule="repetition", severity="critical", action="stop", tenant="acme", service="it-orphan",
                   agent_name="orphaner", session_id=session, summary="runaway loop? (before the detector lost its state)",
                   evidence={"repeats": 6}, opened_ms=opened_ms, emitted_ms=opened_ms)
    publish = KafkaAlertPublisher(stack_settings.kafka, client_id="it-orphan")
    publish([orphan])
    publish.close()
    breaker = CircuitBreaker(collector_url(stack_settings), api_key=KEY)
    assert breaker.wait_ready(15)
    opened = hook_receivers["webhook"].wait_for(lambda r: about(session)(r) and r.json()["state"] == "open")
    deadline = time.monotonic() + 30
    while not breaker.is_stopped(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert breaker.is_stopped(session)
    time.sleep(10)  # longer than resolve_after_quiet_s (8 s): a detector that knew it would have resolved it
    assert not hook_receivers["webhook"].matching(lambda r: about(session)(r) and r.json()["state"] == "resolved")

    out = subprocess.run([sys.executable, "-m", "tokenpulse.cli", "resolve-alerts", "--quiet-s", "5",
                          "--dedupe-key", key, "--reason", "integration test"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "published 1 resolved state(s)" in out.stdout, out.stdout

    resolved = hook_receivers["webhook"].wait_for(lambda r: about(session)(r) and r.json()["state"] == "resolved")
    assert [r.json()["alert_id"] for r in resolved] == [opened[0].json()["alert_id"]]
    assert resolved[0].json()["source"] == "tokenpulse resolve-alerts"
    assert hook_receivers["pagerduty"].wait_for(
        lambda r: r.json().get("dedup_key") == key and r.json()["event_action"] == "resolve")
    deadline = time.monotonic() + 30
    while breaker.is_stopped(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not breaker.is_stopped(session)
    breaker.close()
    rows = wait_for(stack_settings, "SELECT state, source FROM alerts FINAL WHERE dedupe_key = {k:String}", {"k": key},
                    lambda r: r and r[0][0] == "resolved", timeout_s=60)
    assert [tuple(r) for r in rows] == [("resolved", "tokenpulse resolve-alerts")]
