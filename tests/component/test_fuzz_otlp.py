"""Issue #8 "bad input at volume": >= 10,000 hostile OTLP payloads through the receiver core.

Each payload (tests/testkit/fuzz_payloads.py: truncated/bit-flipped protobuf, other message types,
JSON with wrong types, huge and deeply nested values, invalid UTF-8, bad counts, ids and
times, bad keys, gzip bombs, good and bad spans mixed) goes through TraceReceiver.export,
the code the HTTP and gRPC handlers call, with the in-memory Kafka writer. For every payload:

  * no exception escapes, and the status is one the payload allows;
  * a refused request (4xx) writes nothing: no span, no dead letter;
  * an accepted request accounts for every span: accepted + dead-lettered + ignored == spans
    sent (counted by the generator, or by the official protobuf parser for damaged bodies),
    each span with a known fate gets it (by span id), partial_success reports the dead letters;
  * every dead letter has a reason (and none is the mapper's last-resort "internal error");
    every accepted span re-validates as a TokenSpan and both serialize as the Kafka writer does.

Memory: after a warm-up (the first WARMUP payloads: caches and the allocator's heap after
the first MB-sized bodies), RSS may grow by at most RSS_GROWTH_BOUND over the rest of the run,
and by at most RSS_TOTAL_BOUND in all (RSS also holds Hypothesis's own record of the run, which
grows with it). Python objects are checked exactly by test_no_python_objects_leak_per_request
(tracemalloc, without Hypothesis): a leak grows with every payload, a heap that settles does not.
Reproduce a failure: Hypothesis prints the (class, seed) pair; `build(cls, random.Random(seed))`.
Run a different sample: TOKENPULSE_FUZZ_SEED=<n> (default: derandomized, the same every run).
"""

from __future__ import annotations

import gc
import json
import os
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from testkit.collector_fakes import MemoryWriter
from testkit.fuzz_payloads import (
    CLASSES,
    JSON,
    KEY_A,
    MAX_BODY_BYTES,
    PROTOBUF,
    TENANT_KEYS,
    Payload,
    build,
    encode_json,
    encode_protobuf,
    good_span,
    hostile_payloads,
    official_span_count,
)

from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.core.span_mapping import INTERNAL_ERROR_REASON
from tokenpulse.schemas.events import DeadLetter, TokenSpan
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key

FUZZ_EXAMPLES = int(os.environ.get("TOKENPULSE_FUZZ_EXAMPLES", "10000"))
HUGE_EXAMPLES = 60  # MB-sized bodies: a separate, smaller run keeps the suite fast
WARMUP = 2_500
RSS_GROWTH_BOUND = 64 * 1024 * 1024  # after the warm-up (measured: ~27 MiB)
RSS_TOTAL_BOUND = 160 * 1024 * 1024  # over the whole run (measured: ~55 MiB)
TENANTS = TenantDirectory(tenants=[Tenant(id=t, api_key_sha256=[hash_key(k)]) for t, k in TENANT_KEYS.items()])


class SerializingWriter(MemoryWriter):
    """The in-memory writer, serializing each record exactly as SpanWriter does for Kafka, so
    a record Kafka could not take (e.g. a lone surrogate) fails here too."""

    def write(self, spans, dead_letters=()) -> int:
        spans, dead_letters = list(spans), list(dead_letters)
        for record in [*spans, *dead_letters]:
            record.model_dump_json().encode()
        return super().write(spans, dead_letters)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reply_message(p: Payload, body: bytes) -> str:
    if p.content_type.startswith(JSON) or p.content_type.lower().startswith("application/json"):
        return json.loads(body).get("message", "")
    from google.rpc import status_pb2
    return status_pb2.Status.FromString(body).message


def check_one(receiver: TraceReceiver, writer: MemoryWriter, p: Payload, stats: Counter) -> None:
    """Send one payload through the receiver core and check every invariant (module docstring)."""
    writer.spans.clear()
    writer.dead.clear()
    ignored_before = receiver.totals.ignored
    reply = receiver.export(p.body, content_type=p.content_type, content_encoding=p.content_encoding,
                            api_key=p.api_key)  # an escaping exception fails the test here
    where = f"class={p.cls} sub={p.sub} status={reply.status}"
    assert reply.status in p.statuses, f"{where}: expected one of {sorted(p.statuses)}; reply {reply.body[:300]!r}"
    stats[f"{p.cls}:{reply.status}"] += 1
    if reply.status != 200:
        assert writer.spans == [] and writer.dead == [], f"{where}: a refused request wrote records"
        assert _reply_message(p, reply.body).strip(), f"{where}: a refusal without a message"
        return

    accepted, dead = writer.spans, writer.dead
    ignored = receiver.totals.ignored - ignored_before
    if p.spans is not None:
        sent = len(p.spans)
    elif p.content_type == PROTOBUF:
        sent = official_span_count(p.body)
        assert sent is not None, f"{where}: the collector accepted a body the official parser refuses"
    else:  # junk JSON (the real spans were replaced): nothing in it may pass as an LLM span
        sent = len(accepted) + len(dead) + ignored
        assert not accepted and not dead, f"{where}: junk JSON produced LLM spans"
    assert len(accepted) + len(dead) + ignored == sent, (
        f"{where}: {len(accepted)} accepted + {len(dead)} dead-lettered + {ignored} ignored != {sent} sent")

    # Each span with a known fate got it.
    if p.spans is not None:
        accepted_ids = Counter(s.span_id for s in accepted)
        dead_ids = Counter(d.span_id for d in dead)
        for e in p.spans:
            if e.outcome == "accept" and e.span_id:
                assert accepted_ids[e.span_id], f"{where}: span {e.span_id} should be accepted; dead: {[d.reason for d in dead]}"
            elif e.outcome == "reject" and e.span_id:
                assert dead_ids[e.span_id], f"{where}: span {e.span_id} should be dead-lettered"
        want = Counter(e.outcome for e in p.spans)
        assert want["accept"] <= len(accepted) <= want["accept"] + want["any"], f"{where}: accepted {len(accepted)}, {want}"
        assert want["reject"] <= len(dead) <= want["reject"] + want["any"], f"{where}: dead {len(dead)}, {want}"
        assert want["ignore"] <= ignored <= want["ignore"] + want["any"], f"{where}: ignored {ignored}, {want}"

    for s in accepted:
        assert s.tenant == p.tenant, f"{where}: span booked to {s.tenant}, key belongs to {p.tenant}"
        TokenSpan.model_validate_json(s.model_dump_json())
    for d in dead:
        assert d.reason.strip(), f"{where}: dead letter without a reason"
        assert not d.reason.startswith(INTERNAL_ERROR_REASON), f"{where}: mapper crashed: {d.reason}"
        assert d.tenant == p.tenant and d.stage == "collector"
        DeadLetter.model_validate_json(d.model_dump_json())
        stats["reason:" + d.reason.split(":")[0][:60]] += 1

    # partial_success tells the sender how many spans were dead-lettered.
    if p.content_type == PROTOBUF or p.content_type.lower().startswith("application/x-protobuf"):
        rejected = ExportTraceServiceResponse.FromString(reply.body).partial_success.rejected_spans
    else:
        rejected = int(json.loads(reply.body).get("partialSuccess", {}).get("rejectedSpans", 0))
    assert rejected == len(dead), f"{where}: partial_success says {rejected}, dead letters {len(dead)}"
    stats["spans_sent"] += sent
    stats["spans_accepted"] += len(accepted)
    stats["spans_dead"] += len(dead)
    stats["spans_ignored"] += ignored


def _fuzz_settings(examples: int):
    fixed = os.environ.get("TOKENPULSE_FUZZ_SEED")
    common = dict(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=(Phase.explicit, Phase.generate, Phase.shrink))
    if fixed is None:
        return lambda f: settings(derandomize=True, **common)(f)
    return lambda f: seed(int(fixed))(settings(**common)(f))


def _run(classes, examples: int) -> tuple[Counter, int, int]:
    """(stats, RSS growth after the warm-up, RSS growth over the whole run)."""
    writer = SerializingWriter()
    receiver = TraceReceiver(TENANTS, writer, max_body_bytes=MAX_BODY_BYTES)
    stats: Counter = Counter()
    warm: list[int] = []

    @_fuzz_settings(examples)
    @given(p=hostile_payloads(classes))
    def run(p: Payload) -> None:
        stats["payloads"] += 1
        check_one(receiver, writer, p, stats)
        if stats["payloads"] == min(WARMUP, examples // 4):
            gc.collect()
            warm.append(_rss_bytes())

    gc.collect()
    before = _rss_bytes()
    run()
    writer.spans.clear()
    writer.dead.clear()
    gc.collect()
    after = _rss_bytes()
    return stats, after - (warm[0] if warm else before), after - before


def test_ten_thousand_hostile_payloads_no_crash_no_loss_bounded_memory():
    cheap = [c for c in CLASSES if c != "huge"]
    stats, growth, total = _run(cheap, FUZZ_EXAMPLES)
    print("\nfuzz outcome per class:status:", sorted((k, v) for k, v in stats.items() if not k.startswith("reason:")))
    print(f"RSS growth after the warm-up {growth / 2**20:.1f} MiB (bound {RSS_GROWTH_BOUND / 2**20:.0f}), "
          f"over the run {total / 2**20:.1f} MiB (bound {RSS_TOTAL_BOUND / 2**20:.0f})")
    assert stats["payloads"] >= FUZZ_EXAMPLES
    # Every class ran, and the run exercised all three fates of a span.
    assert {k.split(":")[0] for k in stats if ":" in k and not k.startswith("reason")} >= set(cheap)
    assert stats["spans_accepted"] and stats["spans_dead"] and stats["spans_ignored"]
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB after the warm-up"
    assert total < RSS_TOTAL_BOUND, f"RSS grew by {total / 2**20:.1f} MiB over the run"


def test_huge_values_and_keys_no_crash_bounded_memory():
    stats, growth, total = _run(["huge"], HUGE_EXAMPLES)
    assert stats["payloads"] >= HUGE_EXAMPLES
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB after the warm-up"
    assert total < RSS_TOTAL_BOUND, f"RSS grew by {total / 2**20:.1f} MiB over the run"


# --- regression tests for the crashes the fuzz run found (one per fix) --------------------


def _receiver():
    writer = SerializingWriter()
    return TraceReceiver(TENANTS, writer, max_body_bytes=MAX_BODY_BYTES), writer


def _json_request(spans) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.mark.parametrize("body", [
    b'{"resourceSpans": ["not an object"]}',  # was AttributeError: 'str' object has no attribute 'get'
    _json_request(["span as a string"]),      # was AttributeError
    _json_request([7]),                        # was TypeError: argument of type 'int' is not iterable
    _json_request([None]),                     # was TypeError
    _json_request([[1]]),                      # was AttributeError: 'list' object ...
    b'{"a": ' + b"1" * 5000 + b"}",            # was ValueError: Exceeds the limit (4300 digits)
    b"[" * 100_000 + b"]" * 100_000,           # was RecursionError
])
def test_structurally_broken_json_is_400_not_an_exception(body):
    receiver, writer = _receiver()
    reply = receiver.export(body, content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 400 and json.loads(reply.body)["message"]
    assert writer.spans == [] and writer.dead == []


def _llm_json_span(extra_attrs=(), **fields) -> dict:
    attrs = [{"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
             {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
             {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}, *extra_attrs]
    return {"traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": attrs, **fields}


@pytest.mark.parametrize("value", [{"arrayValue": [1]}, {"kvlistValue": "s"}, {"arrayValue": None}])
def test_array_or_kvlist_of_the_wrong_type_is_no_value(value):
    # was AttributeError: 'list' object has no attribute 'get'
    receiver, writer = _receiver()
    reply = receiver.export(_json_request([_llm_json_span([{"key": "custom", "value": value}])]),
                            content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 200 and len(writer.spans) == 1


def test_infinite_int_value_is_a_rejected_span():
    # was OverflowError: cannot convert float infinity to integer
    body = _json_request([{"traceId": "ab" * 16, "spanId": "cd" * 8, "attributes": [
        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": float("inf")}}]}])
    receiver, writer = _receiver()
    reply = receiver.export(body, content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 200 and len(writer.dead) == 1 and "whole number" in writer.dead[0].reason


@pytest.mark.parametrize("where", ["prompt", "fingerprint", "trace_id", "key"])
def test_lone_surrogate_in_json_is_400_not_a_failed_kafka_write(where):
    # was UnicodeEncodeError (fingerprint) / PydanticSerializationError (writing to Kafka)
    span = _llm_json_span()
    if where == "prompt":
        span["attributes"].append({"key": "gen_ai.prompt", "value": {"stringValue": "\ud800"}})
    elif where == "fingerprint":
        span["attributes"].append({"key": "tokenpulse.call.fingerprint", "value": {"stringValue": "a\udfffb"}})
    elif where == "trace_id":
        span["traceId"] = "\ud800" * 32
    else:
        span["attributes"].append({"key": "\udc80", "value": {"stringValue": "v"}})
    receiver, writer = _receiver()
    reply = receiver.export(_json_request([span]), content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 400 and "surrogate" in json.loads(reply.body)["message"]
    assert writer.spans == [] and writer.dead == []


def test_valid_surrogate_pairs_in_json_are_fine():
    span = _llm_json_span([{"key": "gen_ai.prompt", "value": {"stringValue": "\U0001f600"}}])
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude00" in body
    receiver, writer = _receiver()
    assert receiver.export(body, content_type=JSON, content_encoding="", api_key=KEY_A).status == 200
    assert len(writer.spans) == 1


def test_json_nesting_is_bounded_like_protobuf():
    value = {"stringValue": "leaf"}
    for _ in range(150):
        value = {"arrayValue": {"values": [value]}}
    receiver, writer = _receiver()
    reply = receiver.export(_json_request([_llm_json_span([{"key": "deep", "value": value}])]),
                            content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 400 and "nested deeper" in json.loads(reply.body)["message"]


@pytest.mark.parametrize("end", [str(2**63), str(10**30)])
def test_span_times_past_int64_are_dead_lettered(end):
    # was accepted: end_ms of 10^24 would overflow the Flink/ClickHouse BIGINT columns
    receiver, writer = _receiver()
    reply = receiver.export(_json_request([_llm_json_span(endTimeUnixNano=end)]), content_type=JSON,
                            content_encoding="", api_key=KEY_A)
    assert reply.status == 200 and writer.spans == []
    assert len(writer.dead) == 1 and "int64" in writer.dead[0].reason


def test_gzip_with_several_members_keeps_every_span():
    # was: only the first member was inflated; the spans in the others were dropped silently
    import gzip
    rng = random.Random(1)
    specs = [good_span(rng) for _ in range(3)]
    body = encode_protobuf([({"service.name": "a"}, specs)])
    receiver, writer = _receiver()
    reply = receiver.export(gzip.compress(body[:10]) + gzip.compress(body[10:]), content_type=PROTOBUF,
                            content_encoding="gzip", api_key=KEY_A)
    assert reply.status == 200 and len(writer.spans) == 3


def test_truncated_gzip_is_400_not_a_shorter_request():
    # was: a cut-off stream inflated to a prefix, which can parse as a request with fewer spans
    import gzip
    rng = random.Random(2)
    body = encode_json([({"service.name": "a"}, [good_span(rng) for _ in range(3)])])
    z = gzip.compress(body)
    receiver, writer = _receiver()
    reply = receiver.export(z[:-8], content_type=JSON, content_encoding="gzip", api_key=KEY_A)
    assert reply.status == 400 and "truncated gzip" in json.loads(reply.body)["message"]
    assert writer.spans == [] and writer.dead == []


def test_a_mapper_bug_dead_letters_the_span_instead_of_failing_the_request(monkeypatch):
    """The last-resort guard in map_spans: the span is dead-lettered with the error, the
    other spans of the request are still accepted."""
    import tokenpulse.core.span_mapping as mapping

    real = mapping.map_span

    def flaky(span, **kw):
        if span.attributes.get("gen_ai.request.model") == "boom":
            raise KeyError("simulated bug")
        return real(span, **kw)

    monkeypatch.setattr(mapping, "map_span", flaky)
    rng = random.Random(3)
    good, bad = good_span(rng), good_span(rng)
    bad.attributes["gen_ai.request.model"] = "boom"
    receiver, writer = _receiver()
    reply = receiver.export(encode_protobuf([({}, [good, bad])]), content_type=PROTOBUF, content_encoding="",
                            api_key=KEY_A)
    assert reply.status == 200 and len(writer.spans) == 1 and len(writer.dead) == 1
    assert writer.dead[0].reason.startswith(INTERNAL_ERROR_REASON) and "simulated bug" in writer.dead[0].reason


def test_generator_is_reproducible_by_seed():
    a = [build(c, random.Random(42)).body for c in CLASSES]
    b = [build(c, random.Random(42)).body for c in CLASSES]
    assert a == b


def test_utf8_encoded_surrogates_in_json_are_400():
    # was: json.loads(bytes) decodes with "surrogatepass", so b"\xed\xa0\x80" became a lone
    # surrogate that reached the mapper (and a dead letter Kafka's UTF-8 could not carry)
    body = _json_request([_llm_json_span([{"key": "k", "value": {"stringValue": "ZQZ"}}])]).replace(b"ZQZ", b"\xed\xa0\x80")
    receiver, writer = _receiver()
    reply = receiver.export(body, content_type=JSON, content_encoding="", api_key=KEY_A)
    assert reply.status == 400 and "not valid JSON" in json.loads(reply.body)["message"]
    assert writer.spans == [] and writer.dead == []


def test_a_sender_that_stalls_mid_body_does_not_hold_its_slot(monkeypatch):
    # was: rfile.read(Content-Length) waited forever; each stalled sender held a thread and an
    # in-flight slot, so max_inflight_requests of them shut the collector for everyone.
    import socket
    import threading
    import time

    import tokenpulse.collectors.http_server as http_server
    from tokenpulse.settings import CollectorSettings

    monkeypatch.setattr(http_server, "BODY_READ_TIMEOUT_S", 0.5)
    receiver, writer = _receiver()
    server = http_server.make_server(receiver, CollectorSettings(host="127.0.0.1", port=0, max_body_bytes=1 << 20))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sock = socket.create_connection(server.server_address, timeout=10)
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Authorization: Bearer " + KEY_A.encode() + b"\r\nContent-Length: 1000\r\n\r\n" + b"\n" * 10)
        deadline = time.monotonic() + 5
        while receiver.limit.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.limit.in_flight == 1  # the handler is waiting for the rest of the body
        while receiver.limit.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.limit.in_flight == 0, "the stalled sender still holds its slot"
        answer = b""
        while chunk := sock.recv(4096):  # read to the close
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer  # told why, and its connection was closed
        assert writer.spans == [] and writer.dead == []
    finally:
        server.shutdown()
        server.server_close()


def test_kafka_input_turns_every_hostile_record_into_spans_or_dead_letters():
    """The otelcol Kafka input decodes with the same code: a record that raised anything but
    MalformedRequest there stopped the reader, which re-read the same poison record forever.
    ~1,500 generated bodies, one record each: no exception, and an undecodable record is
    exactly one dead letter naming its offset."""
    from tokenpulse.collectors.kafka_otlp_ingest import InputRecord, translate
    from tokenpulse.settings import KafkaInput

    rng = random.Random(8)
    inputs = {PROTOBUF: KafkaInput(topic="in-pb", encoding="otlp_proto", tenant="fuzz-a"),
              JSON: KafkaInput(topic="in-json", encoding="otlp_json", tenant="fuzz-a")}
    checked = 0
    for i in range(2500):
        p = build(rng.choice([c for c in CLASSES if c != "huge"]), random.Random(rng.getrandbits(64)))
        if p.content_encoding or p.content_type not in inputs or p.statuses == {413}:
            continue
        out = translate([InputRecord(0, i, p.body)], inputs[p.content_type], received_ms=1)
        for d in out.dead:
            assert d.reason.strip() and not d.reason.startswith(INTERNAL_ERROR_REASON)
            d.model_dump_json().encode()
        for s in out.spans:
            s.model_dump_json().encode()
        if p.statuses == {400}:  # the HTTP receiver refuses it as a whole: here, one dead letter
            assert not out.spans and len(out.dead) == 1 and f"@{i}:" in out.dead[0].reason
        checked += 1
    assert checked >= 1200


def test_a_refusal_that_closes_the_connection_says_so():
    # was: 413 by Content-Length closed the socket without "Connection: close", so a
    # keep-alive client sent its next request into a closed connection
    import http.client
    import threading

    import tokenpulse.collectors.http_server as http_mod
    from tokenpulse.settings import CollectorSettings

    receiver, _ = _receiver()
    server = http_mod.make_server(receiver, CollectorSettings(host="127.0.0.1", port=0, max_body_bytes=1 << 10))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection(*server.server_address, timeout=10)
        conn.putrequest("POST", "/v1/traces")
        for k, v in {"Content-Type": PROTOBUF, "Content-Length": "4096", "Authorization": f"Bearer {KEY_A}"}.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413 and resp.getheader("Connection") == "close"
    finally:
        server.shutdown()
        server.server_close()


def test_no_python_objects_leak_per_request():
    """tracemalloc over the receiver core alone: two rounds of the same 800 payloads; what is
    still allocated after the second round may not exceed what was after the first by more
    than LEAK_BOUND (a request that leaked even one small body would add ~800 of them). Measured:
    0 bytes."""
    import tracemalloc

    from testkit.fuzz_payloads import payload_stream

    LEAK_BOUND = 512 * 1024
    payloads = [p for p in payload_stream(7, 1000) if p.cls != "huge"][:800]
    receiver, writer = _receiver()

    def one_round() -> int:
        for p in payloads:
            check_one(receiver, writer, p, Counter())  # a fresh Counter: the test's own state stays out
        writer.spans.clear()
        writer.dead.clear()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    one_round()  # warm-up outside tracing: imports, caches
    tracemalloc.start()
    try:
        first = one_round()
        second = one_round()
    finally:
        tracemalloc.stop()
    assert second - first < LEAK_BOUND, f"{(second - first) / 1024:.0f} KiB more after the second round"
