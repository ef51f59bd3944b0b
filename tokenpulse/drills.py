"""Fault drills: break one part of a running pipeline while a client sends spans, then prove
that nothing was lost or counted twice, to the micro-unit (in fact to 1e-12 USD).

    broker_restart      the Kafka broker stops (SIGTERM) and comes back while spans arrive
    flink_restore       the cost job's process is cancelled mid-stream and started again; it
                        resumes from its newest retained checkpoint (stream_jobs/cost_rollup.py)
    loader_down         the ClickHouse writer (loader) is down for --loader-down-s seconds
    collector_crash     the collector is SIGKILLed with export requests in flight; the client
                        resends every request that got no 200 (the OTLP contract)
    duplicate_delivery  every request is sent twice, and the same spans are written to Kafka a
                        third time directly, as an edge forwarder does after a lost ack

Each drill has its own service name, so its spans can be counted alone. The client
(`Workload`) counts exactly what it sent and what the collector acknowledged, and prices every
span itself with schemas/pricing.py (the reference pricer, not the Flink job's SQL). After the
fault the drill waits for the pipeline to catch up and reconciles: the client's span ids vs the
distinct rows in token_spans, the rows vs the 1-minute rollups in spend_1m, and both costs vs
the client's own total. Rollups can only be checked once their minute has closed, so that check
runs for every drill together at the end (one wait instead of one per drill).

The drills start their own stack (Kafka, loader, cost job, collector) in a temporary state
dir on their own ports (base 19400 by default, away from `tokenpulse up`'s), and stop it.

    tokenpulse drill                        all five, loader down 60 s
    tokenpulse drill --only loader_down --loader-down-s 10
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenpulse.core.backoff import Backoff
from tokenpulse.schemas.pricing import PriceTable, call_cost_usd, load_price_table

from .processes import stop_process_group
from .settings import Settings
from .sql_client import run_sql
from .stack import Service, Stack

log = logging.getLogger(__name__)

DRILLS = ["broker_restart", "flink_restore", "loader_down", "collector_crash", "duplicate_delivery"]
STACK_SERVICES = ["kafka", "loader", "flink-job", "collector"]
API_KEY = "demo-acme-key"  # tenant acme in schemas/tenants.demo.yaml
TENANT = "acme"
# (provider, model, input, cache read, output): cloud calls, so a call's cost does not depend
# on its duration; every model is in schemas/prices.yaml.
SHAPES = [
    ("openai", "gpt-4o", 1200, 400, 300),
    ("openai", "gpt-4o-mini", 5300, 0, 1100),
    ("anthropic", "claude-sonnet-4", 20000, 15000, 900),
    ("openai", "o4-mini", 3000, 0, 2500),
    ("anthropic", "claude-3-5-haiku", 4000, 1000, 700),
]


# --- the client: sends, counts, prices ------------------------------------------------------
@dataclass
class Request:
    body: bytes
    keys: list[tuple[str, str]]  # (trace_id, span_id) of its spans


class Workload:
    """OTLP/HTTP export requests of `batch` new spans every `period_s` from `senders` threads.

    A request is resent until the collector answers 200 (503 and connection errors are what
    an OTLP exporter retries), so every span sent is eventually acknowledged unless the
    collector stays away longer than `give_up_s`. Counts are of distinct spans."""

    def __init__(self, endpoint: str, service: str, prices: PriceTable, *, batch: int = 10,
                 period_s: float = 0.25, senders: int = 2, give_up_s: float = 300.0, seed: int | None = None) -> None:
        self.endpoint, self.service, self.prices = endpoint, service, prices
        self.batch, self.period_s, self.senders, self.give_up_s = batch, period_s, senders, give_up_s
        self.rng = random.Random(seed)
        self.cost: dict[tuple[str, str], Decimal] = {}  # every span sent -> its reference cost
        self.acked: dict[tuple[str, str], float] = {}  # span -> when its request got a 200
        self.requests: list[Request] = []
        self.attempts = 0
        self.resends = 0  # attempts after a failed one (refused, 5xx, connection lost)
        self.failures: dict[str, int] = {}  # why attempts failed
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._provider = TracerProvider(resource=Resource.create({"service.name": service, "tokenpulse.team": "drills"}))
        self._memory = InMemorySpanExporter()
        self._provider.add_span_processor(SimpleSpanProcessor(self._memory))
        self._tracer = self._provider.get_tracer("tokenpulse.drills")

    # building spans
    def make_request(self) -> Request:
        with self._lock:  # the in-memory exporter is shared: build one request at a time
            self._memory.clear()
            end_ns = time.time_ns()
            for i in range(self.batch):
                provider, model, inp, cached, out = SHAPES[self.rng.randrange(len(SHAPES))]
                span = self._tracer.start_span(f"chat {model}", start_time=end_ns - 800_000_000, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model, "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.cache_read.input_tokens": cached, "gen_ai.usage.output_tokens": out,
                    "gen_ai.conversation.id": f"{self.service}-{self.rng.randrange(50)}"})
                span.end(end_time=end_ns + i)
            spans = list(self._memory.get_finished_spans())
            keys = [(format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in spans]
            for s, key in zip(spans, keys):
                attrs = s.attributes
                price = self.prices.price_at(attrs["gen_ai.provider.name"], attrs["gen_ai.request.model"],
                                             s.end_time // 1_000_000, attrs["gen_ai.usage.input_tokens"])
                if price is None:
                    raise ValueError(f"{attrs['gen_ai.request.model']} is not in the price table")
                self.cost[key] = call_cost_usd(
                    price, input_tokens=attrs["gen_ai.usage.input_tokens"],
                    cached_input_tokens=attrs["gen_ai.usage.cache_read.input_tokens"],
                    cache_creation_input_tokens=0, output_tokens=attrs["gen_ai.usage.output_tokens"])
            request = Request(encode_spans(spans).SerializeToString(), keys)
            self.requests.append(request)
            return request

    # sending
    def post(self, request: Request) -> bool:
        """Send until acknowledged (or give_up_s passes); True when the collector said 200."""
        deadline = time.monotonic() + self.give_up_s
        backoff = Backoff(0.1, 2.0)
        first = True
        while True:
            with self._lock:
                self.attempts += 1
                self.resends += not first
            first = False
            try:
                req = urllib.request.Request(self.endpoint, data=request.body, headers={
                    "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {API_KEY}"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    if resp.status == 200:
                        now = time.time()
                        with self._lock:
                            for key in request.keys:
                                self.acked.setdefault(key, now)
                        return True
                    reason = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:  # the request itself is wrong: resending cannot help
                    self._note(reason)
                    self.errors.append(f"{reason}: {exc.read()[:200]!r}")
                    return False
            except OSError as exc:  # refused, reset, timed out: the collector is away
                reason = type(exc.reason if isinstance(exc, urllib.error.URLError) else exc).__name__
            self._note(reason)
            if time.monotonic() > deadline:
                self.errors.append(f"gave up on a request after {self.give_up_s:.0f} s ({reason})")
                return False
            time.sleep(backoff.next_delay())

    def _note(self, reason: str) -> None:
        with self._lock:
            self.failures[reason] = self.failures.get(reason, 0) + 1

    def _sender(self) -> None:
        try:
            while not self._stop.is_set():
                self.post(self.make_request())
                self._stop.wait(self.period_s)
        except Exception as exc:  # noqa: BLE001 - reported in the drill's result
            self.errors.append(f"sender failed: {exc!r}")

    def start(self) -> Workload:
        self._threads = [threading.Thread(target=self._sender, name=f"drill-sender-{i}", daemon=True)
                         for i in range(self.senders)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop making new requests; wait for the ones being (re)sent."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.give_up_s + 60)

    # counts
    @property
    def sent(self) -> int:
        return len(self.cost)

    def acked_after(self, t: float) -> tuple[str, str] | None:
        """A span whose request was acknowledged after wall time t, if any yet."""
        with self._lock:
            return next((k for k, at in self.acked.items() if at > t), None)

    def summary(self) -> str:
        fails = ", ".join(f"{k} x{v}" for k, v in sorted(self.failures.items())) or "none"
        return f"{len(self.requests)} requests, {self.attempts} attempts, {self.resends} resent; failed attempts: {fails}"


# --- reconciliation ---------------------------------------------------------------------------
@dataclass
class Reconciliation:
    sent: int
    acked: int
    raw_rows: int  # token_spans FINAL rows of the drill's service
    stored: int  # distinct (trace_id, span_id) among them
    lost: int  # acknowledged spans with no row
    unexpected: int  # rows the client never sent
    raw_duplicates: int  # rows beyond one per span
    rollup_calls: int | None = None  # sum(calls) in spend_1m FINAL
    raw_diff_usd: Decimal = Decimal(0)  # raw cost - reference cost of the stored spans
    rollup_diff_usd: Decimal | None = None  # rollup cost - reference cost

    @property
    def duplicates(self) -> int:
        over = max(0, (self.rollup_calls or 0) - self.stored)
        return self.raw_duplicates + over

    @property
    def rollup_lost(self) -> int:
        return max(0, self.stored - (self.rollup_calls or 0))

    @property
    def clean(self) -> bool:
        return (self.lost == 0 and self.unexpected == 0 and self.duplicates == 0 and self.raw_diff_usd == 0
                and self.rollup_calls == self.stored and self.rollup_diff_usd == 0 and self.acked == self.sent)


def stored_spans(settings: Settings, service: str) -> tuple[int, dict[tuple[str, str], int], Decimal]:
    """(rows, rows per span id, cost) of a service in token_spans FINAL."""
    rows = run_sql(settings, "SELECT trace_id, span_id, count(), sum(cost_usd) FROM token_spans FINAL "
                   "WHERE service = {s:String} GROUP BY trace_id, span_id", {"s": service}).rows
    per_span = {(r[0], r[1]): int(r[2]) for r in rows}
    return sum(per_span.values()), per_span, sum((Decimal(str(r[3])) for r in rows), Decimal(0))


def rollup_totals(settings: Settings, service: str) -> tuple[int, Decimal]:
    row = run_sql(settings, "SELECT sum(calls), sum(cost_usd) FROM spend_1m FINAL WHERE service = {s:String}",
                  {"s": service}).rows[0]
    return int(row[0] or 0), Decimal(str(row[1] or 0))


def reconcile_raw(settings: Settings, w: Workload, timeout_s: float) -> Reconciliation:
    """Wait until every acknowledged span is a row (or timeout), then compare."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows, per_span, cost = stored_spans(settings, w.service)
        if all(k in per_span for k in w.acked) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    expected = sum((w.cost[k] for k in per_span if k in w.cost), Decimal(0))
    return Reconciliation(
        sent=w.sent, acked=len(w.acked), raw_rows=rows, stored=len(per_span),
        lost=sum(1 for k in w.acked if k not in per_span), unexpected=sum(1 for k in per_span if k not in w.cost),
        raw_duplicates=rows - len(per_span), raw_diff_usd=cost - expected)


def reconcile_rollups(settings: Settings, w: Workload, r: Reconciliation, deadline: float) -> None:
    """Wait until the closed 1-minute windows account for every stored span, then compare."""
    while True:
        calls, cost = rollup_totals(settings, w.service)
        if calls >= r.stored or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    _, per_span, _ = stored_spans(settings, w.service)
    r.rollup_calls = calls
    r.rollup_diff_usd = cost - sum((w.cost[k] for k in per_span if k in w.cost), Decimal(0))


def wait_visible(settings: Settings, key: tuple[str, str], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run_sql(settings, "SELECT count() FROM token_spans WHERE trace_id = {t:String} AND span_id = {s:String}",
                   {"t": key[0], "s": key[1]}).rows[0][0]:
            return True
        time.sleep(0.5)
    return False


# --- the drills ----------------------------------------------------------------------------------
@dataclass
class DrillOptions:
    only: list[str] = field(default_factory=lambda: list(DRILLS))
    loader_down_s: float = 60.0
    broker_down_s: float = 10.0
    collector_down_s: float = 3.0
    before_s: float = 4.0  # steady traffic before the fault
    after_s: float = 4.0  # traffic after recovery
    batch: int = 10
    period_s: float = 0.25
    settle_timeout_s: float = 180.0


@dataclass
class DrillResult:
    name: str
    fault: str
    reconciliation: Reconciliation
    recover_s: float | None  # faulty part restarted -> a span sent after that is a row in ClickHouse
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reconciliation.clean and not any(n.startswith("FAIL") for n in self.notes)

    def as_dict(self) -> dict:
        r = self.reconciliation
        return {"drill": self.name, "fault": self.fault, "ok": self.ok, **{k: f"{v:f}" if isinstance(v, Decimal) else v
                                                                          for k, v in asdict(r).items()},
                "duplicates": r.duplicates, "recover_s": self.recover_s, "notes": self.notes}


class DrillRunner:
    def __init__(self, settings: Settings, options: DrillOptions, progress: Callable[[str], None] = print) -> None:
        self.settings, self.options, self.progress = settings, options, progress
        self.stack = Stack(settings)
        self.prices = load_price_table(settings.stream.prices_file, settings.stream.catalog_file)
        self.run_id = f"{int(time.time()) % 100000:05d}"
        c = settings.collector
        self.endpoint = f"http://{c.host}:{c.port}/v1/traces"

    def restart(self, name: str) -> float:
        """Start a stopped service again; returns the wall time it was started at."""
        at = time.time()
        self.stack.start(patient(self.stack.service(name)), lambda m: self.progress(f"  {m}"))
        return at

    def kill(self, name: str, sig: signal.Signals) -> None:
        pid = self.stack.pid(name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        self.stack._pid_path(name).unlink(missing_ok=True)
        stop_process_group(pid, name, sig)

    def workload(self, name: str, **overrides) -> Workload:
        o = self.options
        kw = {"batch": o.batch, "period_s": o.period_s, **overrides}
        return Workload(self.endpoint, f"drill-{name}-{self.run_id}", self.prices, **kw)

    def recovered(self, w: Workload, restarted_at: float) -> float | None:
        """Seconds from the restart until a span acknowledged after it is visible in ClickHouse."""
        deadline = time.monotonic() + self.options.settle_timeout_s
        while (key := w.acked_after(restarted_at)) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        if not wait_visible(self.settings, key, max(1.0, deadline - time.monotonic())):
            return None
        return time.time() - restarted_at

    # each drill returns (fault description, workload, recover_s, notes)
    def outage(self, drill: str, service: str, what: str, down_s: float) -> tuple[Workload, float | None]:
        """Traffic, then `service` stopped for `down_s` and started again, then traffic;
        returns the workload and how long after the restart a new span became a row."""
        o = self.options
        w = self.workload(drill).start()
        time.sleep(o.before_s)
        self.progress(f"  stopping {what} for {down_s:.0f} s")
        self.stack.stop(service)
        time.sleep(down_s)
        restarted = self.restart(service)
        recover = self.recovered(w, restarted)
        time.sleep(o.after_s)
        w.stop()
        return w, recover

    def broker_restart(self):
        down_s = self.options.broker_down_s
        w, recover = self.outage("broker_restart", "kafka", "the Kafka broker (SIGTERM)", down_s)
        return f"broker SIGTERM, down {down_s:.0f} s, restarted", w, recover, []

    def flink_restore(self):
        o = self.options
        w = self.workload("flink_restore").start()
        time.sleep(max(o.before_s, self.settings.stream.checkpoint_interval_ms / 1000 + 2))  # >= 1 checkpoint
        self.progress("  cancelling the cost job's process (SIGTERM to its process group)")
        self.stack.stop("flink-job")
        restarted = self.restart("flink-job")
        resumed = [line.split("resuming from checkpoint ", 1)[1] for line in
                   self.stack.log_path("flink-job").read_text(errors="replace").splitlines()
                   if "resuming from checkpoint " in line]
        notes = [f"resumed from {'/'.join(resumed[0].rstrip('/').split('/')[-2:])}" if resumed
                 else "FAIL: the job did not resume from a checkpoint"]
        recover = self.recovered(w, restarted)
        time.sleep(o.after_s)
        w.stop()
        return "cost job cancelled mid-stream, restarted from its checkpoint", w, recover, notes

    def loader_down(self):
        down_s = self.options.loader_down_s
        w, recover = self.outage("loader_down", "loader", "the loader (ClickHouse writer)", down_s)
        return f"loader down {down_s:.0f} s", w, recover, []

    def collector_crash(self):
        o = self.options
        # Bigger, more frequent requests from more senders, so some are in flight at the kill.
        w = self.workload("collector_crash", batch=o.batch * 5, period_s=0.02, senders=4).start()
        time.sleep(o.before_s)
        self.progress(f"  SIGKILL the collector with requests in flight; back after {o.collector_down_s:.0f} s")
        self.kill("collector", signal.SIGKILL)
        time.sleep(o.collector_down_s)
        restarted = self.restart("collector")
        recover = self.recovered(w, restarted)
        time.sleep(o.after_s)
        w.stop()
        notes = [f"{w.resends} requests resent by the client"] if w.resends else [
            "FAIL: no request was interrupted; the drill did not test in-flight spans"]
        return "collector SIGKILL with requests in flight, restarted", w, recover, notes

    def duplicate_delivery(self):
        o = self.options
        w = self.workload("duplicate_delivery").start()
        time.sleep(o.before_s + o.after_s)
        w.stop()
        self.progress(f"  re-sending all {len(w.requests)} requests through the collector, and their spans "
                      "straight to Kafka (edge forwarder resend)")
        for request in list(w.requests):
            if not w.post(request):
                break
        forwarded = self.forward_again(w)
        return "every request sent twice + spans re-forwarded to Kafka", w, None, [
            f"{len(w.requests)} requests x2, {forwarded} spans forwarded again"]

    def forward_again(self, w: Workload) -> int:
        """Write the workload's spans to the raw topic as an edge forwarder re-sends a batch
        whose ack it lost: same TokenSpan records, straight to Kafka."""
        from kafka import KafkaProducer

        from tokenpulse.core.genai_mapping import map_span
        from tokenpulse.core.otlp_decode import decode
        from tokenpulse.schemas import topics

        producer = KafkaProducer(**self.settings.kafka.client_options(), acks="all", enable_idempotence=True)
        n = 0
        try:
            for request in w.requests:
                for span in decode(request.body, "application/x-protobuf"):
                    ev = map_span(span, tenant=TENANT, received_ms=int(time.time() * 1000))
                    producer.send(topics.SPANS.name, key=ev.kafka_key(), value=ev.model_dump_json().encode())
                    n += 1
            producer.flush(timeout=60)
        finally:
            producer.close()
        return n

    # running them all
    def run(self) -> list[DrillResult]:
        results: list[tuple[str, str, Workload, Reconciliation, float | None, list[str]]] = []
        for name in self.options.only:
            self.progress(f"drill {name}:")
            t0 = time.monotonic()
            fault, w, recover, notes = getattr(self, name)()
            r = reconcile_raw(self.settings, w, self.options.settle_timeout_s)
            notes = [*notes, w.summary(), *w.errors]
            self.progress(f"  sent {r.sent}, acked {r.acked}, rows {r.raw_rows} ({r.stored} distinct), lost {r.lost}, "
                          f"raw cost diff {_usd(r.raw_diff_usd)}; {time.monotonic() - t0:.0f} s")
            results.append((name, fault, w, r, recover, notes))
        # The last drill's minute must close (+ watermark delay) before its rollups are complete.
        self.progress("waiting for the 1-minute windows to close, then reconciling rollups")
        deadline = time.monotonic() + 60 + self.options.settle_timeout_s
        for _name, _fault, w, r, _recover, _notes in results:
            reconcile_rollups(self.settings, w, r, deadline)
        return [DrillResult(name, fault, r, recover, notes) for name, fault, w, r, recover, notes in results]


# --- the drills' own stack ----------------------------------------------------------------------
READY_TIMEOUT_S = 600.0


def patient(service: Service) -> Service:
    """The service with a longer readiness timeout: on a loaded 2-core box the cost job has
    taken over 180 s (its default) to start; a drill should report that, not abort."""
    return replace(service, ready_timeout_s=max(service.ready_timeout_s, READY_TIMEOUT_S))


def drill_environment(state_dir: Path, port_base: int) -> dict[str, str]:
    """Settings of the drills' stack: its own state dir and ports (port_base + a fixed offset
    each), short watermark delay and checkpoint interval so the drills take minutes, not hours."""
    return {
        "TOKENPULSE_PATHS_STATE_DIR": str(state_dir),
        "TOKENPULSE_KAFKA_RUN_LOCAL_BROKER": "true",
        "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port_base + 92}",
        "TOKENPULSE_KAFKA_CONTROLLER_PORT": str(port_base + 93),
        "TOKENPULSE_KAFKA_REPLICATION_FACTOR": "1",
        "TOKENPULSE_KAFKA_MIN_INSYNC_REPLICAS": "1",
        "TOKENPULSE_COLLECTOR_PORT": str(port_base + 18),
        "TOKENPULSE_COLLECTOR_GRPC_ENABLED": "false",
        "TOKENPULSE_COLLECTOR_KAFKA_INPUTS": "[]",
        "TOKENPULSE_COLLECTOR_BREAKER_BOARD": "false",
        "TOKENPULSE_COLLECTOR_HEARTBEAT_INTERVAL_MS": "500",
        "TOKENPULSE_COLLECTOR_PRODUCE_TIMEOUT_S": "5",
        "TOKENPULSE_LOADER_QUERY_PORT": str(port_base + 24),
        "TOKENPULSE_LOADER_BATCH_MAX_MS": "300",
        "TOKENPULSE_STREAM_WATERMARK_DELAY_MS": "2000",
        "TOKENPULSE_STREAM_CHECKPOINT_INTERVAL_MS": "5000",
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for this process and the services it starts; restore them after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_drills(options: DrillOptions, *, port_base: int = 19400, state_dir: Path | None = None,
               keep_state: bool = False, progress: Callable[[str], None] = print) -> list[DrillResult]:
    """Start the drills' stack, run the chosen drills, stop the stack; returns the results."""
    own = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix="tokenpulse-drills-"))
    results: list[DrillResult] = []
    with environment(drill_environment(state, port_base)), stop_on_sigterm():
        settings = Settings()
        stack = Stack(settings)
        progress(f"starting the drills' stack in {state} (Kafka :{port_base + 92}, collector :{port_base + 18})")
        try:
            t0 = time.monotonic()
            for service in stack.selected(STACK_SERVICES):
                stack.start(patient(service), lambda m: progress(f"  {m}"))
            progress(f"stack up in {time.monotonic() - t0:.0f} s")
            results = DrillRunner(settings, options, progress).run()
            return results
        finally:
            stack.down(only=STACK_SERVICES)
            # A failed or interrupted run keeps its state: the services' logs say what went wrong.
            failed = not results or not all(r.ok for r in results)
            if own and not keep_state and not failed:
                import shutil
                shutil.rmtree(state, ignore_errors=True)
            elif own:
                progress(f"state (logs under {state / 'logs'}) kept in {state}")


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while the drills run, so a killed drill (a test timeout,
    Ctrl-C's cousin from a supervisor) still stops the stack it started instead of leaving
    a broker, a Flink job and a loader behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the table ------------------------------------------------------------------------------------
COLUMNS = ("drill", "spans sent", "acked", "raw rows", "duplicates", "lost", "rollup calls", "rollup diff USD",
           "raw diff USD", "recover s", "result")


def table(results: list[DrillResult]) -> str:
    rows = [COLUMNS]
    for d in results:
        r = d.reconciliation
        rows.append((d.name, str(r.sent), str(r.acked), str(r.raw_rows), str(r.duplicates), str(r.lost),
                     str(r.rollup_calls), _usd(r.rollup_diff_usd), _usd(r.raw_diff_usd),
                     "-" if d.recover_s is None else f"{d.recover_s:.1f}", "ok" if d.ok else "MISMATCH"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _usd(v: Decimal | None) -> str:
    return "n/a" if v is None else ("0" if v == 0 else f"{v:+.12f}")


def notes(results: list[DrillResult]) -> str:
    out = []
    for d in results:
        out.append(f"{d.name}: {d.fault}")
        out += [f"    {n}" for n in d.notes]
    return "\n".join(out)


def write_json(path: Path, results: list[DrillResult]) -> None:
    path.write_text(json.dumps([d.as_dict() for d in results], indent=2))
