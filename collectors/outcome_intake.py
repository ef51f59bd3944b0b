"""POST /v1/outcomes: outcome events from apps -> Kafka `tokenpulse.outcomes.raw.v1`.

An app tells tokenpulse what a session or task achieved (schemas/outcomes.py), with the same
API key as its spans. The body is JSON: one outcome object, a list of them, or
{"outcomes": [...]}. Per record:

  * the tenant is the key's tenant; a `tenant` in the payload is ignored, as for spans;
  * `received_ms` is stamped here, `occurred_ms` defaults to it;
  * a record that is not a valid OutcomeEvent goes to the dead-letter topic with the reason,
    and the answer says which records were rejected and why (200, like OTLP's partial success).

A body that is not JSON, or not outcomes at all, is a 400 with the reason; nothing is
written. The answer is 200 only after Kafka acknowledged every record (acks=all,
idempotent producer); otherwise 503, and the sender retries: a retried outcome has the same
`outcome_id`, and the `outcomes` table keeps one row per (tenant, outcome_id).

This module is transport-free (status + JSON document); collectors/otlp_http.py serves it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Protocol

from pydantic import ValidationError

from tokenpulse.schemas import topics
from tokenpulse.schemas.events import DeadLetter
from tokenpulse.schemas.outcomes import OutcomeEvent
from tokenpulse.settings import KafkaSettings

from .kafka_writer import WriteFailed

log = logging.getLogger(__name__)

OUTCOMES_PATH = "/v1/outcomes"
MAX_OUTCOMES_PER_REQUEST = 1000
MAX_REASONS_IN_ANSWER = 10
_EXCERPT_CHARS = 1000


class OutcomeSink(Protocol):
    """What the intake needs from OutcomeWriter (an in-memory fake in unit tests)."""

    def write(self, outcomes: list[OutcomeEvent], dead_letters: list[DeadLetter]) -> int: ...


class OutcomeWriter:
    """Writes outcomes (and their dead letters) to Kafka and waits for the acks.

    Its own idempotent acks=all producer, made on first use: a collector that never receives
    an outcome opens no second connection."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str, timeout_s: float = 10.0) -> None:
        self._kafka, self._client_id, self._timeout_s = kafka, client_id, timeout_s
        self._producer = None
        self._lock = threading.Lock()

    def _get_producer(self):
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                self._producer = KafkaProducer(**self._kafka.client_options(), acks="all", enable_idempotence=True,
                                               linger_ms=5, client_id=f"tokenpulse-{self._client_id}-outcomes")
            return self._producer

    def write(self, outcomes: list[OutcomeEvent], dead_letters: list[DeadLetter]) -> int:
        from kafka.errors import KafkaError

        try:
            producer = self._get_producer()
            futures = [producer.send(topics.OUTCOMES.name, key=o.kafka_key(), value=o.model_dump_json().encode())
                       for o in outcomes]
            futures += [producer.send(topics.DEAD_LETTERS.name, key=d.tenant.encode(),
                                      value=d.model_dump_json().encode()) for d in dead_letters]
            producer.flush(timeout=self._timeout_s)
            for f in futures:
                f.get(timeout=0)
        except KafkaError as exc:
            raise WriteFailed(f"Kafka did not acknowledge the outcomes: {exc}") from exc
        return len(futures)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout_s)
                self._producer = None


class BadOutcomeBody(ValueError):
    """The request as a whole is unusable (400); nothing from it is written."""


@dataclass
class SortedOutcomes:
    accepted: list[OutcomeEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def parse_body(body: bytes) -> list:
    """The list of outcome records in a JSON body (exact decimals: floats parse as Decimal)."""
    try:
        doc = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadOutcomeBody(f"body is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and "outcomes" in doc:
        doc = doc["outcomes"]
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise BadOutcomeBody('send an outcome object, a list of them, or {"outcomes": [...]}')
    if len(doc) > MAX_OUTCOMES_PER_REQUEST:
        raise BadOutcomeBody(f"{len(doc)} outcomes in one request; at most {MAX_OUTCOMES_PER_REQUEST}")
    return doc


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def sort_outcomes(records: list, *, tenant: str, received_ms: int) -> SortedOutcomes:
    """Validate each record as an OutcomeEvent of `tenant`; the invalid ones become dead letters."""
    out = SortedOutcomes()
    for i, rec in enumerate(records):
        excerpt = json.dumps(rec, default=str)[:_EXCERPT_CHARS]
        if not isinstance(rec, dict):
            reason = f"outcome #{i} is not a JSON object"
        else:
            # The key decides the tenant; the collector decides when it received the outcome.
            doc = {**rec, "tenant": tenant, "received_ms": received_ms}
            doc.setdefault("occurred_ms", received_ms)
            try:
                out.accepted.append(OutcomeEvent.model_validate(doc))
                continue
            except ValidationError as exc:
                reason = f"outcome #{i} ({str(rec.get('outcome_id'))[:128]}) rejected: {_reason(exc)}"
        trace_id = rec.get("trace_id") if isinstance(rec, dict) and isinstance(rec.get("trace_id"), str) else None
        out.dead.append(DeadLetter(tenant=tenant, stage="collector", reason=reason[:2000], received_ms=received_ms,
                                   trace_id=trace_id[:64] if trace_id else None, excerpt=excerpt))
    return out


class OutcomeIntake:
    """Validates an authenticated tenant's outcomes and writes them; answers (status, JSON doc)."""

    def __init__(self, sink: OutcomeSink) -> None:
        self.sink = sink

    def accept(self, tenant: str, body: bytes, *, content_type: str, received_ms: int) -> tuple[int, dict]:
        if content_type.split(";")[0].strip().lower() != "application/json":
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"message": "outcomes are JSON: Content-Type: application/json"}
        try:
            records = parse_body(body)
        except BadOutcomeBody as exc:
            return HTTPStatus.BAD_REQUEST, {"message": str(exc)}
        sorted_ = sort_outcomes(records, tenant=tenant, received_ms=received_ms)
        try:
            if sorted_.accepted or sorted_.dead:
                self.sink.write(sorted_.accepted, sorted_.dead)
        except WriteFailed as exc:
            log.warning("tenant=%s: outcomes not written: %s", tenant, exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, {"message": "Kafka unavailable, retry later"}
        if sorted_.dead:
            log.info("tenant=%s rejected %d outcome(s); first reason: %s", tenant, len(sorted_.dead),
                     sorted_.dead[0].reason)
        return HTTPStatus.OK, {"accepted": len(sorted_.accepted), "rejected": len(sorted_.dead),
                               "errors": [d.reason for d in sorted_.dead[:MAX_REASONS_IN_ANSWER]]}
