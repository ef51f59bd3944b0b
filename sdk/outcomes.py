"""Record what a session or task achieved, so tokenpulse can judge spend by value.

    from tokenpulse.sdk import record_outcome

    record_outcome("ticket-4711", "success", endpoint="http://127.0.0.1:4318", api_key="demo-acme-key",
                   service="support-bot", team="support", agent_name="triage", session_id=sid,
                   value="42.50", value_unit="USD")

The outcome goes to the collector (POST /v1/outcomes, the same API key as the app's spans;
the tenant comes from the key). tokenpulse joins it to the spend of the calls of that session
(or trace) in `sql/queries/cost_per_outcome.sql`: cost per successful outcome and value per
USD, by team, app and agent.

`outcome_id` is the app's own id for the unit of work: sending the same outcome again (a retry
after a timeout) replaces it, it is never counted twice. Values are exact decimals: pass a
Decimal, an int or a string, never a float.

The event is validated here before anything is sent (ValueError on a bad outcome); a collector
that cannot take it raises OutcomeNotRecorded, so the app decides whether to retry. Unlike
spans, which the OpenTelemetry SDK batches in the background, an outcome is one small
synchronous request: call it where the work finishes, not on a latency-critical path.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal

from pydantic import ValidationError

from tokenpulse.core.outcome_writer import OutcomeWriter, sort_outcomes
from tokenpulse.schemas.outcomes import OutcomeEvent
from tokenpulse.settings import KafkaSettings

OUTCOMES_PATH = "/v1/outcomes"
_LOCAL_TENANT = "sdk"  # placeholder for local validation; the collector stamps the key's tenant


class OutcomeNotRecorded(RuntimeError):
    """The collector did not take the outcome (unreachable, refused, Kafka down)."""


@dataclass(frozen=True)
class OutcomeReceipt:
    accepted: int
    rejected: int
    errors: list[str]


def build_outcome(outcome_id: str, status: str, *, service: str, team: str, session_id: str | None = None,
                  trace_id: str | None = None, agent_name: str | None = None, task: str = "",
                  value: Decimal | int | str | None = None, value_unit: str = "",
                  occurred_ms: int | None = None) -> dict:
    """The outcome as the JSON document the collector takes, validated (ValueError if not valid)."""
    if isinstance(value, float):
        raise TypeError("value must be a Decimal, int or string (exact), not a float")
    now_ms = int(time.time() * 1000)
    doc = {"outcome_id": outcome_id, "status": status, "service": service, "team": team,
           "agent_name": agent_name, "session_id": session_id, "trace_id": trace_id, "task": task,
           "value": None if value is None else str(value), "value_unit": value_unit,
           "occurred_ms": now_ms if occurred_ms is None else occurred_ms}
    try:
        OutcomeEvent.model_validate({**doc, "tenant": _LOCAL_TENANT, "received_ms": now_ms})
    except ValidationError as exc:
        raise ValueError(f"invalid outcome {outcome_id!r}: {exc}") from None
    return doc


def send_outcomes(docs: list[dict], *, endpoint: str, api_key: str, timeout_s: float = 5.0) -> OutcomeReceipt:
    """POST documents from build_outcome to the collector (at most 1000 per request)."""
    body = json.dumps({"outcomes": docs}).encode()
    req = urllib.request.Request(endpoint.rstrip("/") + OUTCOMES_PATH, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", errors="replace")
        raise OutcomeNotRecorded(f"collector answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OutcomeNotRecorded(f"collector at {endpoint} unreachable: {exc}") from None
    return OutcomeReceipt(accepted=answer["accepted"], rejected=answer["rejected"], errors=answer["errors"])


def record_outcome(outcome_id: str, status: str, *, endpoint: str, api_key: str, service: str, team: str,
                   session_id: str | None = None, trace_id: str | None = None, agent_name: str | None = None,
                   task: str = "", value: Decimal | int | str | None = None, value_unit: str = "",
                   occurred_ms: int | None = None, timeout_s: float = 5.0) -> OutcomeReceipt:
    """Record one outcome (success|failure) of the work named by session_id or trace_id.

    Returns once the collector has it in Kafka. Raises ValueError for an invalid outcome
    (before sending) and OutcomeNotRecorded when the collector does not take it."""
    doc = build_outcome(outcome_id, status, service=service, team=team, session_id=session_id, trace_id=trace_id,
                        agent_name=agent_name, task=task, value=value, value_unit=value_unit,
                        occurred_ms=occurred_ms)
    receipt = send_outcomes([doc], endpoint=endpoint, api_key=api_key, timeout_s=timeout_s)
    if receipt.rejected:
        raise OutcomeNotRecorded(f"collector rejected the outcome: {receipt.errors[0] if receipt.errors else '?'}")
    return receipt


class KafkaOutcomeRecorder:
    """record_outcome for apps inside the cluster: straight to `tokenpulse.outcomes.raw.v1`,
    validated and stamped exactly as the collector's POST /v1/outcomes does.

    There is no API key on this path, so the tenant is configuration, as for KafkaSpanExporter
    (Kafka ACLs are the boundary). `kafka` defaults to KafkaSettings() (TOKENPULSE_KAFKA_*);
    `writer` (anything with write(outcomes, dead_letters)) replaces the producer in tests."""

    def __init__(self, tenant: str, *, kafka=None, writer=None, client_id: str = "sdk-outcomes",
                 timeout_s: float = 10.0) -> None:
        self.tenant = tenant
        self._owns_writer = writer is None
        self._writer = writer if writer is not None else OutcomeWriter(kafka or KafkaSettings(), client_id=client_id,
                                                                       timeout_s=timeout_s)

    def record(self, outcome_id: str, status: str, *, service: str, team: str, **fields) -> None:
        """Same fields as record_outcome (without endpoint / api_key). Returns once Kafka has
        it; raises ValueError for an invalid outcome and core.kafka_writer.WriteFailed if Kafka did not ack."""
        doc = build_outcome(outcome_id, status, service=service, team=team, **fields)
        sorted_ = sort_outcomes([doc], tenant=self.tenant, received_ms=int(time.time() * 1000))
        if sorted_.dead:  # e.g. a tenant id that is not a valid label
            raise ValueError(sorted_.dead[0].reason)
        self._writer.write(sorted_.accepted, [])

    def close(self) -> None:
        if self._owns_writer:
            self._writer.close()
