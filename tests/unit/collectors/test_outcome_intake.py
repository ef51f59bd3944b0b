"""POST /v1/outcomes and sdk.record_outcome against a real HTTP server with an in-memory sink
(no broker): tenant from the key, per-record dead letters, 400/401/415/503, exact values."""

from __future__ import annotations

import gzip
import json
import threading
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from testkit.collector_fakes import MemoryWriter

from tokenpulse.collectors.http_server import make_server
from tokenpulse.collectors.otlp_http import TraceReceiver
from tokenpulse.collectors.outcome_intake import MAX_OUTCOMES_PER_REQUEST, OutcomeIntake, parse_body
from tokenpulse.core.kafka_writer import WriteFailed
from tokenpulse.loader.kafka_to_clickhouse import Batch
from tokenpulse.schemas import topics
from tokenpulse.schemas.outcomes import OUTCOME_COLUMNS
from tokenpulse.schemas.tenants import Tenant, TenantDirectory, hash_key
from tokenpulse.sdk import OutcomeNotRecorded, record_outcome
from tokenpulse.settings import CollectorSettings

TENANTS = TenantDirectory(tenants=[Tenant(id="acme", api_key_sha256=[hash_key("k-acme")]),
                                   Tenant(id="globex", api_key_sha256=[hash_key("k-globex")])])
GOOD = {"outcome_id": "ticket-1", "status": "success", "service": "helpdesk", "team": "support",
        "agent_name": "closer", "session_id": "s-1", "value": "12.50", "value_unit": "USD"}


class MemorySink:
    def __init__(self, fail: bool = False) -> None:
        self.outcomes, self.dead, self.fail = [], [], fail

    def write(self, outcomes, dead_letters) -> int:
        if self.fail:
            raise WriteFailed("broker down")
        self.outcomes += outcomes
        self.dead += dead_letters
        return len(outcomes) + len(dead_letters)


@pytest.fixture()
def collector():
    """collector(sink) -> base URL of a running collector serving /v1/outcomes into `sink`."""
    servers = []

    def start(sink, *, outcomes_on=True):
        receiver = TraceReceiver(TENANTS, MemoryWriter(), max_body_bytes=1 << 20)
        server = make_server(receiver, CollectorSettings(host="127.0.0.1", port=0, max_body_bytes=1 << 20),
                             outcomes=OutcomeIntake(sink) if outcomes_on else None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def post(url, body: bytes, *, key="k-acme", content_type="application/json", encoding=None):
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if encoding:
        headers["Content-Encoding"] = encoding
    req = urllib.request.Request(url + "/v1/outcomes", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_outcome_is_written_with_the_keys_tenant_and_an_exact_value(collector):
    sink = MemorySink()
    url = collector(sink)
    status, doc = post(url, json.dumps({**GOOD, "tenant": "acme", "value": 12.5}).encode(), key="k-globex")
    assert (status, doc) == (200, {"accepted": 1, "rejected": 0, "errors": []})
    [o] = sink.outcomes
    assert o.tenant == "globex"  # the payload's tenant is ignored, as for spans
    assert o.value == Decimal("12.5") and isinstance(o.value, Decimal)
    assert o.occurred_ms == o.received_ms > 0


def test_bad_records_are_dead_lettered_with_a_reason_and_good_ones_kept(collector):
    sink = MemorySink()
    url = collector(sink)
    body = {"outcomes": [GOOD, {**GOOD, "outcome_id": "t-2", "session_id": None},
                         {**GOOD, "outcome_id": "t-3", "status": "maybe"}, "not an object"]}
    status, doc = post(url, json.dumps(body).encode())
    assert status == 200 and (doc["accepted"], doc["rejected"]) == (1, 3)
    assert "session_id or trace_id" in doc["errors"][0]
    assert "status" in doc["errors"][1] and "not a JSON object" in doc["errors"][2]
    assert [d.tenant for d in sink.dead] == ["acme"] * 3 and all(d.stage == "collector" for d in sink.dead)
    assert "t-3" in sink.dead[1].excerpt


@pytest.mark.parametrize("body, content_type, code, words", [
    (b"{oops", "application/json", 400, "not valid JSON"),
    (b'"just a string"', "application/json", 400, "outcome object"),
    (json.dumps([GOOD] * (MAX_OUTCOMES_PER_REQUEST + 1)).encode(), "application/json", 400, "at most"),
    (json.dumps(GOOD).encode(), "application/x-protobuf", 415, "application/json"),
])
def test_unusable_bodies_are_refused_and_nothing_is_written(collector, body, content_type, code, words):
    sink = MemorySink()
    status, doc = post(collector(sink), body, content_type=content_type)
    assert status == code and words in doc["message"]
    assert sink.outcomes == [] and sink.dead == []


def test_unknown_key_is_401_kafka_down_is_503_and_gzip_is_accepted(collector):
    assert post(collector(MemorySink()), json.dumps(GOOD).encode(), key="nope")[0] == 401
    assert post(collector(MemorySink()), json.dumps(GOOD).encode(), key=None)[0] == 401
    assert post(collector(MemorySink(fail=True)), json.dumps(GOOD).encode())[0] == 503
    sink = MemorySink()
    assert post(collector(sink), gzip.compress(json.dumps(GOOD).encode()), encoding="gzip")[0] == 200
    assert len(sink.outcomes) == 1


def test_route_is_404_when_the_intake_is_off(collector):
    status, doc = post(collector(MemorySink(), outcomes_on=False), json.dumps(GOOD).encode())
    assert status == 404 and "off" in doc["message"]


def test_sdk_record_outcome_round_trip_and_errors(collector):
    sink = MemorySink()
    url = collector(sink)
    receipt = record_outcome("task-9", "failure", endpoint=url, api_key="k-acme", service="etl", team="data",
                             trace_id="ab" * 16, task="nightly_load", occurred_ms=1_763_900_000_000)
    assert (receipt.accepted, receipt.rejected) == (1, 0)
    [o] = sink.outcomes
    assert (o.tenant, o.outcome_id, o.status.value, o.trace_id, o.occurred_ms) == (
        "acme", "task-9", "failure", "ab" * 16, 1_763_900_000_000)
    with pytest.raises(ValueError, match="session_id or trace_id"):  # validated before sending
        record_outcome("x", "success", endpoint=url, api_key="k-acme", service="a", team="t")
    with pytest.raises(TypeError, match="float"):
        record_outcome("x", "success", endpoint=url, api_key="k-acme", service="a", team="t", session_id="s",
                       value=1.5, value_unit="USD")
    with pytest.raises(OutcomeNotRecorded, match="401"):
        record_outcome("x", "success", endpoint=url, api_key="wrong", service="a", team="t", session_id="s")
    with pytest.raises(OutcomeNotRecorded, match="unreachable"):
        record_outcome("x", "success", endpoint="http://127.0.0.1:9", api_key="k", service="a", team="t",
                       session_id="s", timeout_s=1)
    assert len(sink.outcomes) == 1


def test_parse_body_keeps_decimals_exact():
    [rec] = parse_body(b'{"outcome_id": "a", "value": 0.1000000000001}')
    assert rec["value"] == Decimal("0.1000000000001")


def test_loader_routes_outcomes_to_their_table_and_bad_ones_to_dead_letters():
    sink = MemorySink()
    OutcomeIntake(sink).accept("acme", json.dumps(GOOD).encode(), content_type="application/json",
                               received_ms=1_763_900_000_000)
    batch = Batch()
    batch.add(topics.OUTCOMES.name, 0, 7, sink.outcomes[0].model_dump_json().encode())
    batch.add(topics.OUTCOMES.name, 0, 8, b'{"tenant": "acme", "outcome_id": "no-status"}')
    [row] = batch.outcomes
    row = dict(zip(OUTCOME_COLUMNS, row))
    assert (row["tenant"], row["outcome_id"], row["status"], row["value"]) == ("acme", "ticket-1", "success",
                                                                              Decimal("12.50"))
    [dead] = batch.dead_letters
    assert "OutcomeEvent" in dead[2] or "status" in dead[2]


def test_kafka_outcome_recorder_stamps_its_tenant_and_validates():
    from tokenpulse.sdk import KafkaOutcomeRecorder

    sink = MemorySink()
    rec = KafkaOutcomeRecorder("acme", writer=sink)
    rec.record("t-1", "success", service="etl", team="data", session_id="s-1", value=Decimal("3"), value_unit="tickets")
    [o] = sink.outcomes
    assert (o.tenant, o.outcome_id, o.value, o.value_unit) == ("acme", "t-1", Decimal(3), "tickets")
    with pytest.raises(ValueError, match="value_unit"):
        rec.record("t-2", "success", service="etl", team="data", session_id="s-1", value="3")
    assert len(sink.outcomes) == 1
