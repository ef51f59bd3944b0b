"""The demo workload: agents of two tenants making LLM calls, instrumented with the
OpenTelemetry SDK and exported over OTLP/HTTP to the collector.

Cloud calls go to OpenAI and Anthropic models; a plant-floor assistant runs a local model
on edge hardware. Sessions grow their context step by step, some calls hit the prompt
cache, reasoning models spend hidden reasoning tokens, one app calls a model the price
table does not know (unpriced, still counted) and one sender reports a negative token
count (dead-lettered with its reason). The demo also prices every call itself with the
reference pricer, so the pipeline's totals can be checked against an independent sum.

Then an app instrumented with a stock package, not tokenpulse's SDK: OpenLLMetry
(opentelemetry-instrumentation-openai / -anthropic) around the real `openai` and `anthropic`
clients, which call a local fake provider with known usage (tokenpulse/conformance/). Its
agents put conversation and agent on the invoke_agent parent only, the anthropic SDK adds a
second span per call, one stream carries no usage: the pipeline must still store each call
once, attributed, priced from the provider's usage.

Last, a runaway agent loops on the same question until the loop detector pages the demo's
webhook inbox and the circuit breaker stops it.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tokenpulse.schemas import semconv as sc
from tokenpulse.schemas.edge_profiles import EdgeProfiles, edge_call_cost_usd
from tokenpulse.schemas.pricing import PriceTable, call_cost_usd
from tokenpulse.sdk import CircuitBreaker, SessionStopped, record_llm_call

DEMO_KEYS = {"acme": "demo-acme-key", "globex": "demo-globex-key"}


@dataclass(frozen=True)
class App:
    tenant: str
    service: str
    team: str
    provider: str
    models: tuple[str, ...]
    agent: str
    runtime_kind: str = "cloud"
    runtime_id: str | None = None
    reasoning: bool = False


APPS = (
    App("acme", "support-bot", "support", "openai", ("gpt-4o-mini", "gpt-4o"), "triage-agent"),
    App("acme", "research-agent", "research", "anthropic", ("claude-sonnet-4", "claude-3-5-haiku"), "deep-researcher"),
    App("acme", "code-review", "platform", "openai", ("o4-mini",), "reviewer", reasoning=True),
    App("acme", "plant-floor-assistant", "operations", "ollama", ("llama3.1:8b",), "maintenance-helper",
        runtime_kind="edge", runtime_id="edge-plant-01"),
    App("globex", "sales-copilot", "sales", "anthropic", ("claude-3-5-haiku",), "lead-writer"),
    App("globex", "analytics-bot", "data", "openai", ("gpt-4o", "gpt-5-experimental"), "sql-agent"),
)


@dataclass
class Expected:
    """What the demo sent, priced independently of the pipeline."""

    calls: int = 0
    rejected: int = 0
    unpriced: int = 0
    cost_usd: Decimal = Decimal(0)
    by_tenant_calls: dict[str, int] = field(default_factory=dict)


def _provider_for(app: App, endpoint: str) -> TracerProvider:
    resource = Resource.create({sc.SERVICE_NAME: app.service, sc.TEAM: app.team,
                                **({sc.RUNTIME_ID: app.runtime_id} if app.runtime_id else {})})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {DEMO_KEYS[app.tenant]}"})
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200, max_export_batch_size=256))
    return provider


def run_workload(endpoint: str, prices: PriceTable, edge: EdgeProfiles, *, calls: int, seed: int = 7,
                 duration_s: float = 10.0, progress=None) -> Expected:
    """Send about `calls` LLM-call spans spread over `duration_s`; return the independent totals."""
    rng = random.Random(seed)
    providers = {app.service: _provider_for(app, endpoint) for app in APPS}
    tracers = {app.service: providers[app.service].get_tracer("tokenpulse.demo") for app in APPS}
    expected = Expected()
    pause = duration_s / max(calls, 1)
    sessions: dict[str, tuple[str, int]] = {}
    for i in range(calls):
        app = APPS[i % len(APPS)]
        session, step = sessions.get(app.service, (f"{app.service}-s{i}", 0))
        if step >= rng.randint(3, 12):
            session, step = f"{app.service}-s{i}", 0
        sessions[app.service] = (session, step + 1)
        model = rng.choice(app.models)
        input_tokens = 400 + 350 * step + rng.randint(0, 300)  # context grows along the session
        cached = input_tokens // 2 if step > 0 and rng.random() < 0.5 else 0
        output_tokens = rng.randint(50, 900)
        reasoning = rng.randint(0, output_tokens) if app.reasoning else 0
        negative = app.tenant == "globex" and i % 97 == 5  # a buggy sender
        attrs = {
            sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: app.provider, sc.REQUEST_MODEL: model,
            sc.RESPONSE_MODEL: model, sc.AGENT_NAME: app.agent, sc.AGENT_ID: f"{app.agent}-1",
            sc.CONVERSATION_ID: session, sc.RUNTIME_KIND: app.runtime_kind,
            sc.INPUT_TOKENS: -input_tokens if negative else input_tokens,
            sc.OUTPUT_TOKENS: output_tokens, sc.CACHE_READ_INPUT_TOKENS: cached,
            sc.REASONING_OUTPUT_TOKENS: reasoning,
        }
        end_ns = time.time_ns()
        start_ns = end_ns - rng.randint(200, 4000) * 1_000_000
        span = tracers[app.service].start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs,
                                               start_time=start_ns)
        span.end(end_time=end_ns)
        if negative:
            expected.rejected += 1
        else:
            expected.calls += 1
            expected.by_tenant_calls[app.tenant] = expected.by_tenant_calls.get(app.tenant, 0) + 1
            end_ms = end_ns // 1_000_000
            price = prices.price_at(app.provider, model, end_ms, input_tokens)
            profile = edge.profile_at(app.runtime_id, end_ms) if app.runtime_kind == "edge" else None
            cost = Decimal(0)
            if price is None:
                expected.unpriced += 1
            else:
                cost += call_cost_usd(price, input_tokens=input_tokens, cached_input_tokens=cached,
                                      cache_creation_input_tokens=0, output_tokens=output_tokens)
            if profile is not None:
                cost += edge_call_cost_usd(profile, busy_ms=end_ms - start_ns // 1_000_000)
            expected.cost_usd += cost
        if progress:
            progress(1)
        time.sleep(pause)
    for p in providers.values():
        p.force_flush()
        p.shutdown()
    return expected


# --- an app with stock instrumentation (OpenLLMetry) against a fake provider ----------------
STOCK_APP_SERVICE = "helpdesk-openllmetry"  # schemas/tenants.demo.yaml maps it to team support


@dataclass
class StockAppRun:
    run: object  # tokenpulse.conformance.runner.RunResult
    calls: int
    usage_missing: int


def run_stock_instrumented_app(collector: str, prices: PriceTable, expected: Expected, workdir, *,
                               sessions: int = 4) -> StockAppRun | None:
    """Run tokenpulse/conformance/sender_app.py with OpenLLMetry in this venv (the dev extra
    pins it), exporting to the collector; add the provider's truth to the expected totals:
    every call, priced from the usage the provider billed (a stream whose reply carried no
    usage counts as a call at 0, flagged usage_missing). None when OpenLLMetry is not installed."""
    import importlib.util
    import sys
    from pathlib import Path

    from tokenpulse.conformance import runner

    if not all(importlib.util.find_spec(m) for m in ("opentelemetry.instrumentation.openai",
                                                     "opentelemetry.instrumentation.anthropic", "openai", "anthropic")):
        return None
    setup = runner.Setup(name="demo-openllmetry", venv="(tokenpulse's own)", sender="openllmetry",
                         providers=["openai", "anthropic"])
    run = runner.run_setup(setup, Path(sys.executable), Path(workdir), collector=collector,
                           api_key=DEMO_KEYS["acme"], service=STOCK_APP_SERVICE, sessions=sessions, bsp_delay_ms=200)
    missing = 0
    for t in run.provider_truth:
        expected.calls += 1
        expected.by_tenant_calls["acme"] = expected.by_tenant_calls.get("acme", 0) + 1
        if t["streamed"] and not t["usage_in_stream"]:
            missing += 1  # the app never saw this call's usage: a flagged call at 0
            continue
        u, provider = t["usage"], "openai" if t["api"].startswith("openai") else "anthropic"
        price = prices.price_at(provider, t["model"], t["received_ms"], u["input_tokens"])
        if price is None:
            expected.unpriced += 1
        else:
            expected.cost_usd += call_cost_usd(price, input_tokens=u["input_tokens"],
                                               cached_input_tokens=u["cache_read_tokens"],
                                               cache_creation_input_tokens=u["cache_creation_tokens"],
                                               output_tokens=u["output_tokens"])
    return StockAppRun(run, len(run.provider_truth), missing)


# --- the runaway agent: a loop that gets paged and stopped ----------------------------------
class AlertInbox:
    """A stand-in for on-call's webhook endpoint (the demo hooks file points here): verifies
    each delivery's HMAC signature and keeps the alerts."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from tokenpulse.alerts.hooks import verify_signature

        self.alerts: list[tuple[float, dict, bool]] = []  # (received at, alert, signature ok)
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = verify_signature(secret, self.headers.get("X-Tokenpulse-Timestamp", ""), body,
                                          self.headers.get("X-Tokenpulse-Signature", ""))
                inbox.alerts.append((time.time(), json.loads(body), signed))
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RunawayResult:
    session: str
    calls: int
    stopped: SessionStopped | None
    offending_call_at: float  # when the last call that went through ended


def run_runaway_agent(collector: str, prices: PriceTable, expected: Expected, *, max_calls: int = 40,
                      pause_s: float = 0.3) -> RunawayResult:
    """An agent stuck re-asking the same question with a growing context, instrumented with
    tokenpulse's SDK and opted in to the circuit breaker: it runs until tokenpulse stops it."""
    app = App("acme", "support-bot", "support", "openai", ("gpt-4o-mini",), "triage-agent")
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: app.service, sc.TEAM: app.team}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{collector}/v1/traces", headers={"Authorization": f"Bearer {DEMO_KEYS[app.tenant]}"})))
    session = f"runaway-{int(time.time())}"
    breaker = CircuitBreaker(collector, api_key=DEMO_KEYS[app.tenant])
    breaker.wait_ready(10)
    result = RunawayResult(session, 0, None, 0.0)
    try:
        for step in range(max_calls):
            input_tokens, output_tokens = 2000 + 600 * step, 150
            try:
                with record_llm_call(provider=app.provider, model=app.models[0], session_id=session,
                                     agent_name=app.agent, breaker=breaker, tracer_provider=provider,
                                     messages=[{"role": "user", "content": "Is order 4711 shipped yet? Check again."}]) as call:
                    call.set_usage(input_tokens=input_tokens, output_tokens=output_tokens)
            except SessionStopped as exc:
                result.stopped = exc
                break
            result.calls += 1
            result.offending_call_at = time.time()
            price = prices.price_at(app.provider, app.models[0], int(time.time() * 1000), input_tokens)
            expected.calls += 1
            expected.by_tenant_calls[app.tenant] = expected.by_tenant_calls.get(app.tenant, 0) + 1
            if price is None:
                expected.unpriced += 1
            else:
                expected.cost_usd += call_cost_usd(price, input_tokens=input_tokens, cached_input_tokens=0,
                                                   cache_creation_input_tokens=0, output_tokens=output_tokens)
            time.sleep(pause_s)
    finally:
        breaker.close()
        provider.shutdown()
    return result
