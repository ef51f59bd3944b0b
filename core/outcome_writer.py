"""Outcome events (schemas/outcomes.py) -> Kafka `tokenpulse.outcomes.raw.v1`.

Shared by the collector's POST /v1/outcomes (collectors/outcome_intake.py) and the SDK's
KafkaOutcomeRecorder, so both validate, stamp and write an outcome the same way:

  * the tenant is the caller's (the API key's, or the recorder's configuration); a `tenant`
    in the payload is ignored, as for spans;
  * `received_ms` is stamped here, `occurred_ms` defaults to it;
  * a record that is not a valid OutcomeEvent becomes a dead letter with the reason.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from tokenpulse.schemas import topics
from tokenpulse.schemas.events import DeadLetter
from tokenpulse.schemas.outcomes import OutcomeEvent
from tokenpulse.settings import KafkaSettings

if TYPE_CHECKING:  # librdkafka is loaded only once an outcome arrives (see _get_writer)
    from .kafka_writer import SpanWriter

EXCERPT_CHARS = 1000  # of a rejected record, kept in its dead letter


class OutcomeSink(Protocol):
    """What the intake and the SDK's recorder need from OutcomeWriter (in-memory fakes in tests)."""

    def write(self, outcomes: list[OutcomeEvent], dead_letters: list[DeadLetter]) -> int: ...


class OutcomeWriter:
    """Writes outcomes (and their dead letters) to Kafka and waits for the acks.

    The raw spans' writer (core/kafka_writer.py: idempotent, acks=all, librdkafka) with its
    own client id, made on first use: a collector that never receives an outcome opens no
    second connection. Raises kafka_writer.WriteFailed when Kafka does not acknowledge."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str, timeout_s: float = 10.0) -> None:
        self._kafka, self._client_id, self._timeout_s = kafka, client_id, timeout_s
        self._writer: SpanWriter | None = None
        self._lock = threading.Lock()

    def _get_writer(self) -> SpanWriter:
        with self._lock:
            if self._writer is None:
                from .kafka_writer import SpanWriter  # librdkafka only once an outcome arrives

                self._writer = SpanWriter(self._kafka, collector_id=f"{self._client_id}-outcomes",
                                          timeout_s=self._timeout_s)
            return self._writer

    def write(self, outcomes: list[OutcomeEvent], dead_letters: list[DeadLetter]) -> int:
        records = [(topics.OUTCOMES.name, o.kafka_key(), o.model_dump_json().encode()) for o in outcomes]
        records += [(topics.DEAD_LETTERS.name, d.tenant.encode(), d.model_dump_json().encode()) for d in dead_letters]
        return self._get_writer().write_records(records)

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


@dataclass
class SortedOutcomes:
    accepted: list[OutcomeEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


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
        excerpt = json.dumps(rec, default=str)[:EXCERPT_CHARS]
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
