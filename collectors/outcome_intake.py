"""POST /v1/outcomes: outcome events from apps -> Kafka `tokenpulse.outcomes.raw.v1`.

An app tells tokenpulse what a session or task achieved (schemas/outcomes.py), with the same
API key as its spans. The body is JSON: one outcome object, a list of them, or
{"outcomes": [...]}. Per record:

  * the tenant is the key's tenant; a `tenant` in the payload is ignored, as for spans;
  * `received_ms` is stamped here, `occurred_ms` defaults to it;
  * a record that is not a valid OutcomeEvent goes to the dead-letter topic with the reason,
    and the answer says which records were rejected and why (200, like OTLP's partial success).
    Validation and the Kafka writer are core/outcome_writer.py's, shared with the SDK.

A body that is not JSON, or not outcomes at all, is a 400 with the reason; nothing is
written. The answer is 200 only after Kafka acknowledged every record (acks=all,
idempotent producer); otherwise 503, and the sender retries: a retried outcome has the same
`outcome_id`, and the `outcomes` table keeps one row per (tenant, outcome_id).

This module is transport-free (status + JSON document); collectors/otlp_http.py serves it.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from http import HTTPStatus

from tokenpulse.core.kafka_writer import WriteFailed
from tokenpulse.core.outcome_writer import OutcomeSink, sort_outcomes

log = logging.getLogger(__name__)

OUTCOMES_PATH = "/v1/outcomes"
MAX_OUTCOMES_PER_REQUEST = 1000
MAX_REASONS_IN_ANSWER = 10

class BadOutcomeBody(ValueError):
    """The request as a whole is unusable (400); nothing from it is written."""


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
