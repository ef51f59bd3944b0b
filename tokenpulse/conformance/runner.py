"""The conformance suite's runner: real senders -> fake provider -> tokenpulse, against known truth.

    python -m tokenpulse.conformance.runner venvs                  build (or reuse) every sender's venv
    python -m tokenpulse.conformance.runner record                 re-record tests/fixtures/senders/*.json
    python -m tokenpulse.conformance.runner run --collector URL --api-key KEY --sql-url ...

`record` runs each setup of setups.yaml against the fake provider with a recording OTLP
receiver in place of a collector, and writes what the sender put on the wire (the raw export
requests) with the provider's and the app's truth: the unit tests map those requests offline.
The pipeline run itself is tests/integration/test_conformance.py and `tokenpulse demo`'s
stock-instrumentation phase (the real collector, Kafka,
Flink job and ClickHouse), which uses run_setup() and compare() from here and writes
docs/conformance.md's table when TOKENPULSE_CONFORMANCE_DOC=1.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from tokenpulse.conformance.fake_provider import FakeProvider
from tokenpulse.settings import REPO_ROOT as REPO

HERE = Path(__file__).resolve().parent

SETUPS_FILE = HERE / "setups.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "senders"
DEFAULT_CACHE = REPO / ".cache"
RECORD_API_KEY = "conformance-recording-key"


@dataclass
class Setup:
    name: str
    venv: str
    sender: str
    providers: list[str]
    note: str = ""
    # What the sender writes wrong on the wire, seen against the fake provider: counted apart
    # from tokenpulse's errors (docs/conformance.md). {api, streamed, classes, why}
    known_defects: list[dict] = field(default_factory=list)

    def defect(self, truth: dict, cls: str) -> str | None:
        """Why this token class of this call is known to be wrong on the wire, or None."""
        for d in self.known_defects:
            if (d.get("api", truth["api"]) == truth["api"] and d.get("streamed", truth["streamed"]) == truth["streamed"]
                    and cls in d["classes"]):
                return d["why"]
        return None


def load() -> tuple[dict[str, dict], list[Setup]]:
    doc = yaml.safe_load(SETUPS_FILE.read_text())
    return doc["venvs"], [Setup(**s) for s in doc["setups"]]


# --- venvs ---------------------------------------------------------------------------------

def venv_python(name: str, pins: list[str], cache_dir: Path = DEFAULT_CACHE, log=print) -> Path:
    """The venv's python, built once per pin set (the folder name carries their hash); a build
    that did not finish (no `.complete` marker) is thrown away and done again."""
    digest = hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:10]
    root = cache_dir / "conformance" / f"{name}-{digest}"
    python = root / "bin" / "python"
    if (root / ".complete").exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    log(f"[conformance] building venv {root.name} ({len(pins)} pins)")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "--cache-dir", str(cache_dir / "pip"), *pins], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip could not build the {name} venv:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    (root / ".complete").write_text("\n".join(pins) + "\n")
    return python


# --- a recording OTLP receiver (optionally forwarding to a collector) ----------------------

@dataclass
class Captured:
    content_type: str
    body: bytes  # inflated


class RecordingReceiver:
    """Keeps every export request a sender makes; with `forward_to`, passes each on to that
    collector and answers with its reply, so the sender sees the real collector's answers."""

    def __init__(self, forward_to: str | None = None) -> None:
        self.requests: list[Captured] = []
        self.forward_to = forward_to.rstrip("/") if forward_to else None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                if self.path.startswith("/v1/traces"):
                    with receiver._lock:
                        receiver.requests.append(Captured(self.headers.get("Content-Type", ""), body))
                status, reply, ctype = 200, b"", "application/x-protobuf"
                if receiver.forward_to and self.path.startswith("/v1/traces"):
                    req = urllib.request.Request(receiver.forward_to + self.path, data=raw, method="POST",
                                                 headers={k: v for k, v in self.headers.items()
                                                          if k.lower() in ("content-type", "content-encoding",
                                                                           "authorization")})
                    try:
                        with urllib.request.urlopen(req, timeout=30) as resp:
                            status, reply, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", ctype)
                    except urllib.error.HTTPError as exc:
                        status, reply = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- one setup -----------------------------------------------------------------------------

@dataclass
class RunResult:
    setup: Setup
    service: str
    provider_truth: list[dict]
    app_truth: list[dict]
    requests: list[Captured] = field(default_factory=list)


def run_setup(setup: Setup, python: Path, workdir: Path, *, collector: str | None, api_key: str, service: str,
              sessions: int = 6, tool_steps: int = 2, capture_content: bool = False, timeout_s: float = 240,
              bsp_delay_ms: int = 5000) -> RunResult:
    """Drive the setup's app once: fake provider and recording receiver up, app run to its end."""
    workdir.mkdir(parents=True, exist_ok=True)
    truth_file, app_file = workdir / f"{setup.name}.provider.jsonl", workdir / f"{setup.name}.app.jsonl"
    for f in (truth_file, app_file):
        f.unlink(missing_ok=True)
    provider = FakeProvider(truth_file)
    receiver = RecordingReceiver(forward_to=collector)
    try:
        cmd = [str(python), str(HERE / "sender_app.py"), "--sender", setup.sender, "--providers", ",".join(setup.providers),
               "--provider-url", provider.anthropic_url, "--collector", receiver.url, "--api-key", api_key,
               "--service", service, "--app-truth", str(app_file), "--sessions", str(sessions),
               "--tool-steps", str(tool_steps)] + (["--capture-content"] if capture_content else [])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "ANTHROPIC_"))}
        # Export often, as a busy app's batch processor does: an agent's children then reach the
        # collector in earlier requests than its invoke_agent span (ends last), as in production.
        env["OTEL_BSP_SCHEDULE_DELAY"] = str(bsp_delay_ms)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{setup.name}: the app failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return RunResult(setup, service, provider.truth(),
                         [json.loads(line) for line in app_file.read_text().splitlines() if line],
                         list(receiver.requests))
    finally:
        receiver.close()
        provider.close()


# --- fixtures --------------------------------------------------------------------------------

def fixture_doc(run: RunResult, pins: list[str]) -> dict:
    return {"setup": run.setup.name, "sender": run.setup.sender, "providers": run.setup.providers, "pins": pins,
            "note": run.setup.note, "service": run.service,
            "requests": [{"content_type": r.content_type, "body_b64": base64.b64encode(r.body).decode()}
                         for r in run.requests],
            "provider_truth": run.provider_truth, "app_truth": run.app_truth}


def load_fixture(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc["requests"] = [Captured(r["content_type"], base64.b64decode(r["body_b64"])) for r in doc["requests"]]
    return doc


# --- comparison with the truth ---------------------------------------------------------------

# Every attribute name a sender may use per token class (tokenpulse's reading aside): what
# "the sender put it on the wire" means for the comparison.
WIRE_KEYS = {
    "input": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cache_read": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"),
    "cache_creation": ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                       "gen_ai.usage.cache_write.input_tokens"),
    "reasoning": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"),
}
CLASSES = tuple(WIRE_KEYS)


def wire_classes(requests: list[Captured]) -> dict[str, set[str]]:
    """response id -> token classes some span of that call carries (any sender's spelling)."""
    from tokenpulse.core.otlp_decode import decode

    out: dict[str, set[str]] = {}
    for r in requests:
        for span in decode(r.body, r.content_type):
            rid = span.attributes.get("gen_ai.response.id")
            if rid:
                present = out.setdefault(rid, set())
                present.update(c for c, keys in WIRE_KEYS.items() if any(span.attributes.get(k) is not None for k in keys))
    return out


@dataclass
class Comparison:
    setup: str
    calls_made: int
    calls_stored: int
    duplicates: int  # response ids stored more than once
    usage_missing: int  # stored calls flagged usage_missing
    matched: int  # stored calls joined to the provider's truth by response id
    class_ok: dict[str, int]
    class_wrong: dict[str, int]
    class_not_sent: dict[str, int]
    estimated: int  # calls whose provider reply had no usage, for which the sender wrote its own estimate
    sender_defects: dict[str, int]  # token classes the sender is known to write wrong (Setup.known_defects)
    attributable: int  # calls the app made inside an agent session
    attributed: int  # ... stored with that conversation and agent
    priced: int
    cost_stored: Decimal
    cost_truth: Decimal  # the provider's usage priced by the reference pricer
    wrong_examples: list[str]

    @property
    def attribution_share(self) -> float:
        return self.attributed / self.attributable if self.attributable else 1.0

    @property
    def priced_share(self) -> float:
        return self.priced / self.calls_stored if self.calls_stored else 1.0


def compare(run: RunResult, rows: list[dict], price_table) -> Comparison:
    """`rows`: token_spans rows (FINAL) of the run's service, as dicts."""
    truth = {t["response_id"]: t for t in run.provider_truth}
    wire = wire_classes(run.requests)
    by_rid: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("response_id"):
            by_rid.setdefault(row["response_id"], []).append(row)
    ok = {c: 0 for c in CLASSES}
    wrong = {c: 0 for c in CLASSES}
    not_sent = {c: 0 for c in CLASSES}
    defects = {c: 0 for c in CLASSES}
    examples: list[str] = []
    matched = estimated = 0
    for rid, stored in by_rid.items():
        t = truth.get(rid)
        if t is None:
            continue
        matched += 1
        row, u = stored[0], t["usage"]
        sent = wire.get(rid, set())
        if sent and t["streamed"] and not t["usage_in_stream"] and not row.get("usage_missing"):
            # the provider sent no usage (a stream without include_usage), yet the span has
            # counts: the sender's own estimate (OpenLIT tokenizes the text), stored as sent
            estimated += 1
            continue
        values = {"input": (row["input_tokens"], u["input_tokens"]), "output": (row["output_tokens"], u["output_tokens"]),
                  "cache_read": (row["cached_input_tokens"], u["cache_read_tokens"]),
                  "cache_creation": (row["cache_creation_input_tokens"], u["cache_creation_tokens"]),
                  "reasoning": (row["reasoning_tokens"], u["reasoning_tokens"])}
        for c, (got, want) in values.items():
            if c not in sent:
                not_sent[c] += 1
                continue
            uncached = u["input_tokens"] - u["cache_read_tokens"] - u["cache_creation_tokens"]
            good = got == want or (c == "input" and not ({"cache_read", "cache_creation"} & sent) and got == uncached)
            if good:
                ok[c] += 1
            elif run.setup.defect(t, c):
                defects[c] += 1
            else:
                wrong[c] += 1
                if len(examples) < 5:
                    examples.append(f"{rid} {c}: stored {got}, provider billed {want}")
    attributable = [a for a in run.app_truth if a.get("conversation_id")]
    attributed = 0
    unjoined: Counter = Counter()  # app calls whose stored row has no response id (the sender sent none)
    for a in attributable:
        stored = by_rid.get(a["response_id"] or "", [])
        if not stored:
            unjoined[(a["conversation_id"], a["agent_name"])] += 1
        elif stored[0].get("session_id") == a["conversation_id"] and stored[0].get("agent_name") == a["agent_name"]:
            attributed += 1
    # those are matched by what they say: the stored rows without a response id, as a multiset
    anonymous = Counter((r.get("session_id"), r.get("agent_name")) for r in rows if not r.get("response_id"))
    attributed += sum((unjoined & anonymous).values())
    cost_truth = Decimal(0)
    for t in run.provider_truth:
        u = t["usage"]
        price = price_table.price_at(_provider(t["api"]), t["model"], t["received_ms"])
        if price is not None:
            from tokenpulse.schemas.pricing import call_cost_usd

            cost_truth += call_cost_usd(price, input_tokens=u["input_tokens"], cached_input_tokens=u["cache_read_tokens"],
                                        cache_creation_input_tokens=u["cache_creation_tokens"],
                                        output_tokens=u["output_tokens"])
    return Comparison(
        setup=run.setup.name, calls_made=len(run.provider_truth), calls_stored=len(rows),
        duplicates=sum(len(v) - 1 for v in by_rid.values()), usage_missing=sum(1 for r in rows if r.get("usage_missing")),
        matched=matched, class_ok=ok, class_wrong=wrong, class_not_sent=not_sent, estimated=estimated,
        sender_defects=defects,
        attributable=len(attributable),
        attributed=attributed, priced=sum(1 for r in rows if r.get("priced")),
        cost_stored=sum((Decimal(str(r["cost_usd"])) for r in rows), Decimal(0)), cost_truth=cost_truth,
        wrong_examples=examples)


def _provider(api: str) -> str:
    return "openai" if api.startswith("openai") else "anthropic"


def render_table(results: list[Comparison]) -> str:
    lines = ["| setup | calls made | stored | dup | usage missing (flagged) | sender's estimate | input | output "
             "| cache read | cache write | reasoning | attributed | priced | cost stored / provider's usage priced |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: | --- |"]

    def cls(r: Comparison, c: str) -> str:
        n_ok, n_bad, n_none, n_defect = r.class_ok[c], r.class_wrong[c], r.class_not_sent[c], r.sender_defects[c]
        text = f"{n_ok} ok" + (f", **{n_bad} wrong**" if n_bad else "") + (f", {n_defect} sender-wrong" if n_defect else "")
        return text + (f", {n_none} not sent" if n_none else "")

    for r in results:
        lines.append(f"| {r.setup} | {r.calls_made} | {r.calls_stored} | {r.duplicates} | {r.usage_missing} | {r.estimated} | "
                     + " | ".join(cls(r, c) for c in CLASSES)
                     + f" | {r.attributed}/{r.attributable} | {r.priced}/{r.calls_stored} | "
                     f"${r.cost_stored:.6f} / ${r.cost_truth:.6f} |")
    return "\n".join(lines) + "\n"


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tokenpulse.conformance.runner",
        description="Run real instrumentation packages (each in its own venv) against a fake LLM provider with "
                    "known usage. The full pipeline comparison is tests/integration/test_conformance.py.",
        epilog="Examples:\n  python -m tokenpulse.conformance.runner venvs\n"
               "  python -m tokenpulse.conformance.runner record --only openlit\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("venvs", help="build or reuse every sender's venv (.cache/conformance)")
    rec = sub.add_parser("record", help="record each setup's OTLP requests and truth into tests/fixtures/senders/")
    rec.add_argument("--only", action="append", help="setup name (repeatable); default all")
    rec.add_argument("--sessions", type=int, default=4)
    args = parser.parse_args(argv)
    venvs, setups = load()
    if args.command == "venvs":
        for name, spec in venvs.items():
            print(name, venv_python(name, spec["pins"]))
        return 0
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for setup in setups:
        if args.only and setup.name not in args.only:
            continue
        pins = venvs[setup.venv]["pins"]
        python = venv_python(setup.venv, pins)
        started = time.monotonic()
        run = run_setup(setup, python, REPO / ".state" / "conformance", collector=None, api_key=RECORD_API_KEY,
                        service=f"conformance-{setup.name}", sessions=args.sessions, capture_content=True)
        out = FIXTURES / f"{setup.name}.json"
        out.write_text(json.dumps(fixture_doc(run, pins), indent=1) + "\n")
        print(f"{setup.name}: {len(run.provider_truth)} calls, {len(run.requests)} export requests -> {out} "
              f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
