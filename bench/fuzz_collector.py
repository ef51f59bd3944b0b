"""Fuzz the running collector with hostile OTLP payloads over real HTTP and gRPC (issue #8).

    python bench/fuzz_collector.py [--payloads 10000] [--rounds 1] [--grpc-share 0.2] [--seed 8] [--senders 3]

Starts its own Kafka broker and collector (`Stack(...).up(only=["kafka", "collector"])`) with a
temporary state directory and its own ports (base ports + TOKENPULSE_IT_PORT_OFFSET, checked
free first), then:

  1. sends the payloads of tests/testkit/fuzz_payloads.py (truncated / bit-flipped / wrong-type
     protobuf, JSON with wrong types, huge and deeply nested values, invalid UTF-8, bad counts,
     ids and times, bad keys, gzip bombs, good and bad spans mixed; reproducible by --seed),
     over OTLP/HTTP and, for a share of the plain protobuf ones, OTLP/gRPC; a 503 is retried
     as an exporter would;
  2. checks every answer is one the payload allows (a refusal is a 4xx with a message);
  3. reads back the raw spans topic and the dead-letter topic and checks: every span the
     generator knows must be accepted is on the spans topic, every one it knows must be
     rejected is on the dead-letter topic with a reason, the dead letters equal the sum of the
     answers' partial_success counts, the accepted spans equal the collector's own count, and
     accepted + dead-lettered + ignored == spans sent in accepted requests;
  4. checks the collector process never died, and reports its RSS before, at peak and after
     (after each round with --rounds N: N x --payloads, seeds seed..seed+N-1, one collector,
     to tell a leak, which grows every round, from a heap that settles).

Prints a per-class table and the dead-letter reasons histogram, appends a JSON line to
bench/results/fuzz_collector.jsonl, and exits non-zero when a check fails. Everything it
started is stopped at the end (--keep-state keeps the state directory for the logs).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import grpc  # noqa: E402
from google.rpc import status_pb2  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse  # noqa: E402
from testkit.fuzz_payloads import JSON, PROTOBUF, TENANT_KEYS, Payload, official_span_count, payload_stream  # noqa: E402

from tokenpulse.core.otlp_decode import MalformedRequest, decode  # noqa: E402
from tokenpulse.schemas import topics  # noqa: E402
from tokenpulse.schemas.tenants import hash_key  # noqa: E402

BASE_PORTS = {"kafka": 39092, "controller": 39093, "http": 34318, "grpc": 34317}
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_TO_HTTP = {grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
                grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNAVAILABLE: 503}
RETRIES_ON_503 = 20
CLOSED = 0  # "status" of a request the collector cut off by closing the connection before answering


# --- the stack -------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stack_environment(state: Path, base_ports: dict[str, int] = BASE_PORTS) -> dict[str, str]:
    """Environment for a fuzz-only stack: temp state, offset ports, the fuzz tenants."""
    offset = int(os.environ.get("TOKENPULSE_IT_PORT_OFFSET", "0"))
    ports = {k: v + offset for k, v in base_ports.items()}
    busy = [f"{k}={p}" for k, p in ports.items() if not _port_free(p)]
    if busy:
        raise SystemExit(f"ports in use: {', '.join(busy)}; pick another TOKENPULSE_IT_PORT_OFFSET")
    tenants = state / "tenants.yaml"
    tenants.write_text("tenants:\n" + "".join(f"  - id: {t}\n    api_key_sha256: [{hash_key(k)}]\n"
                                              for t, k in TENANT_KEYS.items()))
    return {
        "TOKENPULSE_PATHS_STATE_DIR": str(state),
        "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['kafka']}",
        "TOKENPULSE_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "TOKENPULSE_COLLECTOR_PORT": str(ports["http"]),
        "TOKENPULSE_COLLECTOR_GRPC_PORT": str(ports["grpc"]),
        "TOKENPULSE_COLLECTOR_TENANTS_FILE": str(tenants),
        "TOKENPULSE_COLLECTOR_BREAKER_BOARD": "false",
    }


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Samples the collector's RSS every 0.2 s (its peak, even if the kernel's VmHWM is reset)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.2):
            try:
                self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            except FileNotFoundError:
                return

    def stop(self) -> None:
        self._stop_event.set()


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Sent:
    payload: Payload
    transport: str
    status: int  # HTTP status, or the gRPC status mapped to one (GRPC_TO_HTTP)
    message: str = ""
    rejected: int = 0  # partial_success.rejected_spans
    retries: int = 0


class HttpSender:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def send(self, p: Payload) -> Sent:
        sent = self._send_once(p)
        if sent.status == CLOSED and p.statuses != {413} and not (p.cls == "bad_tenant" and p.sub.startswith("huge")):
            sent = self._send_once(p)  # a kept-alive connection the server had closed: retry once, as urllib3 does
        return sent

    def _send_once(self, p: Payload) -> Sent:
        headers = {"Content-Type": p.content_type, "Content-Length": str(len(p.body))}
        if p.content_encoding:
            headers["Content-Encoding"] = p.content_encoding
        if p.api_key is not None:
            headers["Authorization"] = f"Bearer {p.api_key}"
        try:
            self.conn.request("POST", "/v1/traces", body=p.body, headers=headers)
            resp = self.conn.getresponse()
            body, status = resp.read(), resp.status
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as exc:
            # The collector refuses an over-limit body by its Content-Length and closes without
            # reading it; the client may see the reset before the 413.
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            return Sent(p, "http", CLOSED, f"connection closed: {exc}")
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return _parse_reply(p, "http", status, body)


def _parse_reply(p: Payload, transport: str, status: int, body: bytes) -> Sent:
    json_reply = p.content_type.lower().startswith(JSON)
    try:
        if status == 200:
            if json_reply:
                doc = json.loads(body) if body else {}
                return Sent(p, transport, status, rejected=int(doc.get("partialSuccess", {}).get("rejectedSpans", 0)))
            ps = ExportTraceServiceResponse.FromString(body).partial_success
            return Sent(p, transport, status, ps.error_message, ps.rejected_spans)
        if json_reply:
            return Sent(p, transport, status, json.loads(body).get("message", ""))
        return Sent(p, transport, status, status_pb2.Status.FromString(body).message)
    except Exception:  # noqa: BLE001 - a reply we cannot read is itself a finding
        return Sent(p, transport, status, f"unreadable reply body: {body[:200]!r}")


class GrpcSender:
    def __init__(self, target: str, max_bytes: int) -> None:
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 2 * max_bytes),
                                                              ("grpc.max_receive_message_length", max_bytes)])
        self.export = self.channel.unary_unary(EXPORT_METHOD)  # bytes in, bytes out

    def send(self, p: Payload) -> Sent:
        metadata = [("authorization", f"Bearer {p.api_key}")] if p.api_key else []
        try:
            body = self.export(p.body, metadata=metadata, timeout=60)
            ps = ExportTraceServiceResponse.FromString(body).partial_success
            return Sent(p, "grpc", 200, ps.error_message, ps.rejected_spans)
        except grpc.RpcError as err:
            return Sent(p, "grpc", GRPC_TO_HTTP.get(err.code(), -1), f"{err.code().name}: {err.details()}")


def grpc_suitable(p: Payload) -> bool:
    """gRPC carries protobuf only, and gzip is its own message compression, not a header."""
    key_ok = p.api_key is None or (p.api_key.isascii() and p.api_key.strip() == p.api_key and len(p.api_key) < 8000)
    return p.content_type == PROTOBUF and not p.content_encoding and key_ok and p.api_key != ""


def send_all(payloads: list[Payload], *, http_port: int, grpc_port: int, grpc_share: float, senders: int,
             seed: int, progress=print) -> list[Sent]:
    work: queue.Queue = queue.Queue()
    rng = random.Random(seed)
    for p in payloads:
        work.put((p, "grpc" if grpc_suitable(p) and rng.random() < grpc_share else "http"))
    results: list[Sent] = []
    lock = threading.Lock()
    total = len(payloads)

    def worker() -> None:
        h = HttpSender("127.0.0.1", http_port)
        g = GrpcSender(f"127.0.0.1:{grpc_port}", 8 << 20)
        while True:
            try:
                p, transport = work.get_nowait()
            except queue.Empty:
                return
            for attempt in range(RETRIES_ON_503 + 1):
                sent = (g if transport == "grpc" else h).send(p)
                if sent.status != 503:
                    break
                time.sleep(0.2 * (attempt + 1))  # an exporter backs off and retries
            sent.retries = attempt
            with lock:
                results.append(sent)
                if len(results) % 1000 == 0:
                    progress(f"sent {len(results):,}/{total:,}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --- reading Kafka back -----------------------------------------------------------------------


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="fuzz-offsets")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in c.end_offsets(parts).items()}
    finally:
        c.close()


def read_from(bootstrap: str, topic: str, start: dict[int, int]) -> list[dict]:
    """Every record of `topic` from the `start` offsets up to its current end, as JSON."""
    stop = end_offsets(bootstrap, topic)
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="fuzz-reader", enable_auto_commit=False,
                      max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    parts = [TopicPartition(topic, p) for p in stop]
    c.assign(parts)
    for tp in parts:
        c.seek(tp, start.get(tp.partition, 0))
    out: list[dict] = []
    deadline = time.monotonic() + 120
    try:
        while any(c.position(tp) < stop[tp.partition] for tp in parts) and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=1000).values():
                out += [json.loads(r.value) for r in records if r.offset < stop[r.partition]]
    finally:
        c.close()
    return out


# --- checking ---------------------------------------------------------------------------------


def spans_sent(s: Sent) -> int | None:
    """Spans in an accepted request: from the generator, else the official protobuf parser,
    else (junk JSON) the collector's own decoder (it may only find empty, non-LLM spans)."""
    if s.payload.spans is not None:
        return len(s.payload.spans)
    if s.payload.content_type == PROTOBUF:
        return official_span_count(s.payload.body)
    try:
        return len(decode(s.payload.body, s.payload.content_type))
    except MalformedRequest:
        return None


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    per_class: dict = field(default_factory=lambda: defaultdict(Counter))
    reasons: Counter = field(default_factory=Counter)
    totals: Counter = field(default_factory=Counter)

    def fail(self, msg: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(msg)
        self.totals["failures"] += 1


def check(results: list[Sent], raw: list[dict], dead: list[dict], health: dict, health_before: dict) -> Report:
    rep = Report()
    spans = [r for r in raw if r.get("kind") == "span"]
    accepted_ids = Counter(r["span_id"] for r in spans)
    dead_ids = Counter(d.get("span_id") for d in dead)
    for s in results:
        p, c = s.payload, rep.per_class[s.payload.cls]
        c["payloads"] += 1
        c[f"{s.transport}:{s.status}"] += 1
        allowed = set(p.statuses)
        if s.transport == "http" and p.statuses == {413}:
            allowed |= {CLOSED}  # refused by its Content-Length: the body is never read
        if s.transport == "http" and p.cls == "bad_tenant" and p.sub.startswith("huge"):
            allowed |= {400, 431, CLOSED}  # a 100 KB Authorization header: the parser refuses the header line
        if s.status not in allowed:
            rep.fail(f"{p.cls}/{p.sub} over {s.transport}: status {s.status} not in {sorted(p.statuses)}: {s.message[:200]}")
            continue
        if s.status != 200:
            if not s.message.strip():
                rep.fail(f"{p.cls}/{p.sub}: refusal {s.status} without a message")
            continue
        n = spans_sent(s)
        if n is None:
            rep.fail(f"{p.cls}/{p.sub}: 200 for a body no parser can read")
            continue
        c["spans_sent"] += n
        c["dead_lettered"] += s.rejected
        rep.totals["spans_sent"] += n
        rep.totals["rejected_in_replies"] += s.rejected
        for e in p.spans or ():
            if e.outcome == "accept" and e.span_id and not accepted_ids[e.span_id]:
                rep.fail(f"{p.cls}/{p.sub}: span {e.span_id} answered 200 but is not on the spans topic")
            if e.outcome == "reject" and e.span_id and not dead_ids[e.span_id]:
                rep.fail(f"{p.cls}/{p.sub}: span {e.span_id} should be dead-lettered but is not")
            c[f"expected_{e.outcome}"] += 1
    for d in dead:
        if not str(d.get("reason", "")).strip():
            rep.fail(f"dead letter without a reason: {d}")
        rep.reasons[_reason_kind(d.get("reason", ""))] += 1
    delta = {k: health[k] - health_before[k] for k in ("accepted", "rejected", "ignored")}
    rep.totals.update({"on_spans_topic": len(spans), "on_dead_letter_topic": len(dead),
                       **{f"collector_{k}": v for k, v in delta.items()}})
    if len(spans) != delta["accepted"]:
        rep.fail(f"spans topic holds {len(spans)} spans, the collector accepted {delta['accepted']}")
    if len(dead) != delta["rejected"] or len(dead) != rep.totals["rejected_in_replies"]:
        rep.fail(f"dead-letter topic holds {len(dead)}, collector counted {delta['rejected']}, "
                 f"replies reported {rep.totals['rejected_in_replies']}")
    if len(spans) + len(dead) + delta["ignored"] != rep.totals["spans_sent"]:
        rep.fail(f"accepted {len(spans)} + dead-lettered {len(dead)} + ignored {delta['ignored']} "
                 f"!= {rep.totals['spans_sent']} spans sent in accepted requests")
    return rep


def _reason_kind(reason: str) -> str:
    """A reason without its numbers and values, for the histogram."""
    head = re.sub(r"\d+", "N", reason.split(";")[0])
    for cut in (" (", ", got", " got ", "="):
        head = head.split(cut)[0]
    return head.strip()[:90]


def _health(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payloads", type=int, default=10_000, help="hostile payloads to send (default 10000)")
    ap.add_argument("--seed", type=int, default=8, help="generator seed: the same seed sends the same payloads")
    ap.add_argument("--rounds", type=int, default=1, help="send --payloads this many times (new seed each round)")
    ap.add_argument("--grpc-share", type=float, default=0.2, help="share of plain protobuf payloads sent over gRPC")
    ap.add_argument("--senders", type=int, default=3, help="concurrent sender threads")
    ap.add_argument("--keep-state", action="store_true", help="keep the temporary state directory (logs)")
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="tokenpulse-fuzz-"))
    os.environ.update(stack_environment(state))
    from tokenpulse.settings import Settings  # after the environment is set
    from tokenpulse.stack import Stack

    settings = Settings()
    stack = Stack(settings)
    log = lambda m: print(f"[fuzz] {m}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        stack.up(lambda m: log(f"stack: {m}"), only=["kafka", "collector"])
        pid = stack.pid("collector")
        bootstrap, cfg = settings.kafka.bootstrap_servers, settings.collector
        start = {t: end_offsets(bootstrap, t) for t in (topics.SPANS.name, topics.DEAD_LETTERS.name)}
        health_before = _health(cfg.port)
        rss_before = rss_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        results, seconds, rss_rounds = [], 0.0, []
        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds}: generating {args.payloads:,} payloads (seed {args.seed + r})")
            payloads = list(payload_stream(args.seed + r, args.payloads))
            t0 = time.monotonic()
            results += send_all(payloads, http_port=cfg.port, grpc_port=cfg.grpc_port, grpc_share=args.grpc_share,
                                senders=args.senders, seed=args.seed + r, progress=log)
            seconds += time.monotonic() - t0
            del payloads
            rss_rounds.append(rss_kib(pid) if stack.pid("collector") == pid else 0)
            log(f"round {r + 1}: collector RSS {rss_rounds[-1] / 1024:.0f} MiB")
        sampler.stop()
        alive = stack.pid("collector") == pid
        health = _health(cfg.port) if alive else health_before
        rss_after = rss_kib(pid) if alive else 0
        log("reading the spans and dead-letter topics back")
        raw = read_from(bootstrap, topics.SPANS.name, start[topics.SPANS.name])
        dead = read_from(bootstrap, topics.DEAD_LETTERS.name, start[topics.DEAD_LETTERS.name])
        rep = check(results, raw, dead, health, health_before)
        if not alive:
            rep.fail("the collector process died; its log:\n" + stack.tail("collector", 40))
        tracebacks = stack.log_path("collector").read_text(errors="replace").count("Traceback")
        if tracebacks:
            rep.fail(f"the collector logged {tracebacks} traceback(s); see {stack.log_path('collector')}")
    finally:
        stack.down(lambda m: log(f"stack: {m}"), only=["kafka", "collector"])
        if not args.keep_state:
            shutil.rmtree(state, ignore_errors=True)

    transports = Counter(s.transport for s in results)
    print(f"\n{len(results):,} payloads in {seconds:.1f} s ({transports['http']:,} HTTP, {transports['grpc']:,} gRPC), "
          f"retries after 503: {sum(s.retries for s in results)}")
    print("\n| class | payloads | answers (transport:status) | spans sent in accepted requests | dead-lettered |")
    print("| --- | ---: | --- | ---: | ---: |")
    for cls, c in sorted(rep.per_class.items()):
        answers = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if ":" in k)
        print(f"| {cls} | {c['payloads']:,} | {answers} | {c['spans_sent']:,} | {c['dead_lettered']:,} |")
    t = rep.totals
    print(f"\nspans sent in accepted requests {t['spans_sent']:,} = accepted {t['on_spans_topic']:,} (on the spans topic; "
          f"collector counted {t['collector_accepted']:,}) + dead-lettered {t['on_dead_letter_topic']:,} (on the "
          f"dead-letter topic; replies reported {t['rejected_in_replies']:,}) + ignored {t['collector_ignored']:,}")
    print("\ndead-letter reasons:")
    for reason, n in rep.reasons.most_common():
        print(f"  {n:>6,}  {reason}")
    print(f"\ncollector alive: {alive}; RSS before {rss_before / 1024:.0f} MiB, peak {sampler.peak_kib / 1024:.0f} MiB, "
          f"after {rss_after / 1024:.0f} MiB (after each round: {', '.join(f'{k / 1024:.0f}' for k in rss_rounds)} MiB)")
    result = {**bench_results.run_info(), **vars(args),
              "seconds": round(seconds, 1), "transports": dict(transports), "totals": dict(rep.totals),
              "per_class": {k: dict(v) for k, v in rep.per_class.items()}, "reasons": dict(rep.reasons),
              "rss_kib": {"before": rss_before, "peak": sampler.peak_kib, "after": rss_after, "rounds": rss_rounds},
              "collector_alive": alive, "failures": rep.failures}
    bench_results.append("fuzz_collector.jsonl", result)
    if rep.failures:
        print(f"\nFAILED: {rep.totals['failures']} check(s); first ones:", *rep.failures[:20], sep="\n  ")
        sys.exit(1)
    print("\nOK: every check passed")


if __name__ == "__main__":
    main()
