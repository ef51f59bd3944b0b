"""Outcome events: what a session or task achieved, so spend can be judged by value.

An app records one `OutcomeEvent` when it knows the result of a unit of work (a ticket
closed, a task solved, a sale): success or failure, optionally a value with its unit
("USD", "tickets", "minutes_saved"). It names the work by the agent session
(`session_id`, as on the spans: gen_ai.conversation.id) or by the trace (`trace_id`), so
tokenpulse can join it to the spend of exactly those calls (sql/queries/cost_per_outcome.sql):
cost per successful outcome, value per dollar, by team, app and agent.

Identity is (tenant, outcome_id): the app picks `outcome_id` (e.g. its task id), so a retried
send replaces itself in ClickHouse (table `outcomes`, ReplacingMergeTree). Money and values
are exact decimals (at most 12 places); the tenant comes from the sender's API key.
Wire model of topic `tokenpulse.outcomes.raw.v1` (schemas/topics.py OUTCOMES), written by the
collector's POST /v1/outcomes (collectors/outcome_intake.py) or sdk.KafkaOutcomeRecorder and
loaded into `outcomes` by the loader.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .events import MAX_LABEL_CHARS, Label, OptionalLabel

OUTCOME_SCHEMA_VERSION = 1


class OutcomeStatus(str, Enum):
    success = "success"
    failure = "failure"


class OutcomeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = OUTCOME_SCHEMA_VERSION
    kind: Literal["outcome"] = "outcome"

    tenant: str = Label
    outcome_id: str = Field(pattern=r"^[A-Za-z0-9_:.\-]{1,128}$")
    service: str = Label  # the app (OTel service.name), as on its spans
    team: str = Label
    agent_name: str | None = OptionalLabel
    # The work this outcome is about: the session's calls, or one trace's calls.
    session_id: str | None = OptionalLabel
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    task: str = Field(default="", max_length=MAX_LABEL_CHARS)  # e.g. "ticket_resolution"

    status: OutcomeStatus
    value: Decimal | None = Field(default=None, max_digits=38, decimal_places=12)
    value_unit: str = Field(default="", max_length=32, pattern=r"^[A-Za-z0-9_./-]*$")

    occurred_ms: int = Field(ge=0)
    received_ms: int = Field(ge=0)

    @model_validator(mode="after")
    def _work_and_unit(self) -> OutcomeEvent:
        if self.session_id is None and self.trace_id is None:
            raise ValueError("an outcome names its work: session_id or trace_id")
        if self.value is not None and not self.value_unit:
            raise ValueError("a value needs its value_unit (e.g. USD, tickets)")
        if self.value is None and self.value_unit:
            raise ValueError("value_unit without a value")
        return self

    def kafka_key(self) -> bytes:
        return f"{self.tenant}|{self.outcome_id}".encode()


OUTCOME_COLUMNS = [
    "tenant", "outcome_id", "service", "team", "agent_name", "session_id", "trace_id", "task", "status", "value",
    "value_unit", "occurred_at", "received_at",
]


def outcome_row(event: OutcomeEvent) -> list:
    """The `outcomes` table row (columns OUTCOME_COLUMNS) for a validated event."""
    doc = event.model_dump(mode="python")
    doc["status"] = event.status.value
    doc["occurred_at"] = datetime.fromtimestamp(event.occurred_ms / 1000, tz=UTC)
    doc["received_at"] = datetime.fromtimestamp(event.received_ms / 1000, tz=UTC)
    return [doc[c] for c in OUTCOME_COLUMNS]
