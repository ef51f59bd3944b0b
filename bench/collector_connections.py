"""Does the collector stay responsive while a fleet holds connections open? (issue #15)

    python bench/collector_connections.py [--idle 2000] [--polls 200] [--probes 300]

A fleet of apps keeps OTLP exporters' keep-alive connections open and, with circuit breakers on,
one long poll each on GET /v1/breakers. This starts Kafka and one collector of its own
(.state/bench-connections, ports 36192/36318), then:

  1. baseline: `--probes` new OTLP/HTTP export requests (a new connection each, 10 LLM spans
     as protobuf, acked by Kafka), one after another, latency of each (connect to reply);
  2. load: a separate process opens `--idle` keep-alive connections (one GET /health answered
     on each, then idle; reopened when the server closes one) and keeps `--polls` long polls
     waiting (re-issued when one answers);
  3. the same probes again while the load holds, the collector's RSS, threads and sockets (a
     connection the client counts as open may wait in the listen backlog, never accepted);
  4. 100 of the idle connections send a request each, one after another (an app exporting
     again on its keep-alive connection), timed.

The acceptance of #15: with 2,000 idle connections and 200 long polls, new OTLP requests are
answered within 100 ms at p99. Appends to bench/results/collector_connections.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORT = 36318
os.environ.update({
    "TOKENPULSE_PATHS_STATE_DIR": str(REPO / ".state" / "bench-connections"),
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:36192",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": "36193",
    "TOKENPULSE_COLLECTOR_PORT": str(PORT),
    "TOKENPULSE_COLLECTOR_GRPC_ENABLED": "false",
    "TOKENPULSE_COLLECTOR_BREAKER_MAX_WAIT_S": "20",
})
sys.path.insert(0, str(REPO / "bench"))

import bench_results  # noqa: E402
from e2e_throughput import make_batches  # noqa: E402
from percentiles import percentile  # noqa: E402

from tokenpulse.settings import Settings  # noqa: E402
from tokenpulse.stack import Stack  # noqa: E402

KEY = "demo-acme-key"  # schemas/tenants.demo.yaml
SLEEPERS = 100  # idle connections that send a request after the probes


def raise_fd_limit(needed: int) -> None:
    """Idle connections are file descriptors on both ends; the collector inherits this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"need {needed} open files, the hard limit is {hard}: raise it (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def probe(bodies: list[bytes], n: int, pause_s: float = 0.02) -> dict:
    """n export requests, each on a new connection; latency from connect to the full reply."""
    latencies, failures = [], {}
    for i in range(n):
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            conn.request("POST", "/v1/traces", body=bodies[i % len(bodies)],
                         headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY}"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            status = resp.status
        except OSError as exc:
            status = type(exc).__name__
        latencies.append(1000 * (time.perf_counter() - t0))
        if status != 200:
            failures[str(status)] = failures.get(str(status), 0) + 1
        time.sleep(pause_s)
    return {"requests": n, "failed": failures, "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies)}


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")))
    return head + await reader.readexactly(length)


async def keep_alive_connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection as an exporter leaves it: one request answered, then idle (keep-alive).
    A connection that never sent a byte proves nothing: with thousands opened at once, the
    kernel may complete the client's side of a handshake the server never accepts."""
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(read_reply(reader), 60)
    return reader, writer


async def hold(idle: int, polls: int, ready, use, stop, counts, used) -> None:
    """Keep `idle` connections open and `polls` long polls waiting until `stop` is set. When
    `use` is set, SLEEPERS of the idle connections send one request each, one after another
    (what an app's keep-alive connection does when it exports again), timed into `used`."""
    async def sleeper() -> None:
        while True:
            try:
                reader, writer = await keep_alive_connection()
                break
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                counts["connect_errors"] += 1
                await asyncio.sleep(0.5)
        counts["idle_open"] += 1
        await asyncio.get_running_loop().run_in_executor(None, use.wait)
        await turn.acquire()
        t0 = time.perf_counter()
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                await asyncio.wait_for(read_reply(reader), 30)
            except (OSError, asyncio.IncompleteReadError):  # closed by the server meanwhile: reconnect, as an exporter
                reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                await asyncio.wait_for(read_reply(reader), 30)
                counts["sleepers_reconnected"] += 1
            used.append(1000 * (time.perf_counter() - t0))
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            used.append(float("inf"))
        finally:
            turn.release()
            counts["idle_open"] -= 1
            writer.close()

    turn = asyncio.Semaphore(1)
    async def idle_connection() -> None:
        while not stop.is_set():
            try:
                reader, writer = await keep_alive_connection()
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                counts["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            counts["idle_open"] += 1
            await reader.read()  # b"" when the server closes it (its idle timeout)
            counts["idle_open"] -= 1
            counts["idle_closed_by_server"] += 1
            writer.close()

    async def long_poll(version: int) -> None:
        request = (f"GET /v1/breakers?since={version}&wait_s=60 HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {KEY}\r\n\r\n").encode()
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
                counts["polls_waiting"] += 1
                while not stop.is_set():
                    writer.write(request)
                    await read_reply(reader)
                    counts["polls_answered"] += 1
            except (OSError, asyncio.IncompleteReadError):
                counts["poll_errors"] += 1
                await asyncio.sleep(0.5)
            finally:
                counts["polls_waiting"] -= 1

    version = await current_version()
    tasks = [asyncio.create_task(sleeper()) for _ in range(SLEEPERS)]
    tasks += [asyncio.create_task(idle_connection()) for _ in range(idle - SLEEPERS)]
    tasks += [asyncio.create_task(long_poll(version)) for _ in range(polls)]
    t0 = time.monotonic()
    while counts["idle_open"] < idle or counts["polls_waiting"] < polls:
        if time.monotonic() - t0 > 150:
            break
        await asyncio.sleep(0.05)
    counts["open_s"] = time.monotonic() - t0
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()


async def current_version() -> int:
    """The tenant's board version, so the long polls wait (a `since` that is current)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.write(f"GET /v1/breakers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode())
    reply = await read_reply(reader)
    writer.close()
    return int(json.loads(reply.partition(b"\r\n\r\n")[2])["version"])


def load_process(idle: int, polls: int, ready, use, stop, counts, used) -> None:
    asyncio.run(hold(idle, polls, ready, use, stop, counts, used))


def proc_status(pid: int) -> dict:
    """RSS, threads, and the sockets the collector holds: a connection the client counts as open
    may still wait in the listen backlog, never accepted; only `sockets` says the server has it."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            sockets += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]), "sockets": sockets}


def wait_accepted(pid: int, wanted: int, timeout_s: float = 60) -> float | None:
    """Seconds until the collector holds `wanted` more sockets than at rest, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc_status(pid)["sockets"] >= wanted:
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle", type=int, default=2000, help="idle connections held open")
    ap.add_argument("--polls", type=int, default=200, help="long polls kept waiting on GET /v1/breakers")
    ap.add_argument("--probes", type=int, default=300, help="new-connection export requests measured per phase")
    args = ap.parse_args()
    raise_fd_limit(2 * (args.idle + args.polls) + 1024)
    bodies = make_batches(500, 10, "conn")
    stack = Stack(Settings())
    stack.up(lambda m: print(f"[stack] {m}", file=sys.stderr), only=["kafka", "collector"])
    try:
        pid = stack.pid("collector")
        probe(bodies, 50)  # warm: producer connections, first imports
        baseline = {**probe(bodies, args.probes), **proc_status(pid)}
        print(f"baseline: p50 {baseline['p50_ms']:.1f} ms  p99 {baseline['p99_ms']:.1f} ms  "
              f"RSS {baseline['rss_mib']:.0f} MiB  threads {baseline['threads']}  sockets {baseline['sockets']}", file=sys.stderr)
        with multiprocessing.Manager() as manager:
            counts = manager.dict(idle_open=0, idle_closed_by_server=0, connect_errors=0, polls_waiting=0,
                                  polls_answered=0, poll_errors=0, open_s=None, sleepers_reconnected=0)
            ready, use, stop, used = manager.Event(), manager.Event(), manager.Event(), manager.list()
            loader = multiprocessing.Process(target=load_process,
                                             args=(args.idle, args.polls, ready, use, stop, counts, used))
            loader.start()
            ready.wait(180)
            opened = dict(counts)
            accepted_s = wait_accepted(pid, baseline["sockets"] + args.idle + args.polls)
            opened["accepted_s"] = accepted_s
            opened.update(proc_status(pid))
            print(f"load: {opened['idle_open']} idle connections and {opened['polls_waiting']} long polls open "
                  f"(client side) after {opened['open_s']:.1f} s; the collector holds {opened['sockets']} sockets "
                  f"({f'all accepted after {accepted_s:.1f} s' if accepted_s is not None else 'NOT all accepted in 60 s'})",
                  file=sys.stderr)
            loaded = {**probe(bodies, args.probes), **proc_status(pid)}
            held = dict(counts)
            use.set()
            t0 = time.monotonic()
            while len(used) < SLEEPERS and time.monotonic() - t0 < SLEEPERS * 31:
                time.sleep(0.1)
            waits = list(used)
            done = [w for w in waits if w != float("inf")]
            sleepers = {"requests": SLEEPERS, "answered": len(done), "reconnected": counts["sleepers_reconnected"],
                        "p50_ms": percentile(done, 50) if done else None, "p99_ms": percentile(done, 99) if done else None,
                        "max_ms": max(done) if done else None}
            stop.set()
            loader.join(30)
        print(f"under load: p50 {loaded['p50_ms']:.1f} ms  p99 {loaded['p99_ms']:.1f} ms  max {loaded['max_ms']:.1f} ms  "
              f"failed {loaded['failed']}  RSS {loaded['rss_mib']:.0f} MiB  threads {loaded['threads']}  "
              f"sockets {loaded['sockets']}; "
              f"held at the end: {held['idle_open']} idle, {held['polls_waiting']} polls", file=sys.stderr)
        print(f"held connections used again ({SLEEPERS}, GET /health): {sleepers['answered']} answered, "
              f"p50 {sleepers['p50_ms']} ms, p99 {sleepers['p99_ms']} ms, max {sleepers['max_ms']} ms "
              f"({sleepers['reconnected']} had been closed by the server and reconnected)", file=sys.stderr)
        verdict = (loaded["p99_ms"] <= 100 and not loaded["failed"] and accepted_s is not None
                   and held["idle_open"] >= args.idle * 0.99
                   and sleepers["answered"] == SLEEPERS)
        print(f"{'PASS' if verdict else 'FAIL'}: new OTLP requests p99 {loaded['p99_ms']:.1f} ms (target <= 100 ms) "
              f"with {held['idle_open']} idle connections and {held['polls_waiting']} long polls", file=sys.stderr)
    finally:
        stack.down()
    bench_results.append("collector_connections.jsonl", {
        **bench_results.run_info(), **vars(args), "baseline": baseline, "under_load": loaded,
        "load_when_ready": opened, "load_at_end": held, "held_connections_used": sleepers, "pass": verdict})


if __name__ == "__main__":
    main()
