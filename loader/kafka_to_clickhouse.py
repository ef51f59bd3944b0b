"""The loader loop: consume -> convert -> insert -> commit.

Flush order (per batch): insert every table's rows, then apply the batch's attribution
amendments (copies of stored rows with the conversation / agent learned later: the stream
writes a trace's records to one partition in order, so the row is stored before its
amendment is applied), then commit the Kafka offsets. A crash between them re-delivers the
batch; the tables' sort keys make the re-insert replace itself, and an amended copy outranks
a re-delivered original (its version is one millisecond later), so delivery is at-least-once
and storage is effectively-once.
A failed insert is retried with backoff and the batch is kept; nothing is committed until
it lands. A record that cannot be converted becomes a dead-letter row, never a stop.

The hot path (issue #15): an on-time priced span whose fields have the expected types (checked
on an orjson parse, rows.json_intake_ok) is not converted in Python: its bytes go to ClickHouse
as JSONEachRow (token_spans_json -> view -> token_spans, sql/migrations/0016), whose C++ parser
reads cost_usd's digits straight into Decimal. If that insert fails, the same records take the
Python path (rows.priced_span_row) and its retries, so the fast path never loses a record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson

from tokenpulse.core.backoff import Backoff
from tokenpulse.schemas import topics
from tokenpulse.schemas.outcomes import OUTCOME_COLUMNS, OutcomeEvent, outcome_row
from tokenpulse.settings import KafkaSettings, LoaderSettings

from . import rows
from .clickhouse import LockedClient
from .kafka_source import open_source

log = logging.getLogger(__name__)

SOURCE_TOPICS = (topics.PRICED_SPANS.name, topics.ROLLUPS_1M.name, topics.DEAD_LETTERS.name,
                 topics.ALERTS.name, topics.ALERT_DISPATCHES.name, topics.OUTCOMES.name)
MAX_BACKOFF_S = 30.0


@dataclass
class Batch:
    token_spans: list[list] = field(default_factory=list)
    spend_1m: list[list] = field(default_factory=list)
    dead_letters: list[list] = field(default_factory=list)
    alerts: list[list] = field(default_factory=list)
    alert_dispatches: list[list] = field(default_factory=list)
    outcomes: list[list] = field(default_factory=list)
    tool_calls: list[list] = field(default_factory=list)
    attributions: list[rows.Attribution] = field(default_factory=list)
    # priced spans stored as their own JSON (the fast path), with where they came from
    token_span_json: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    records: int = 0
    json_intake: bool = True

    def add(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self.records += 1
        if self.json_intake and topic == topics.PRICED_SPANS.name:
            try:
                fast = rows.json_intake_ok(orjson.loads(value))
            except (orjson.JSONDecodeError, AttributeError):  # not JSON / not an object: the Python path says why
                fast = False
            if fast:
                self.token_span_json.append((topic, partition, offset, value.replace(b"\n", b" ")))
                return
        self._add_converted(topic, partition, offset, value)

    def json_intake_failed(self) -> None:
        """The fast insert failed: convert those records in Python instead (kept, not lost)."""
        pending, self.token_span_json = self.token_span_json, []
        for topic, partition, offset, value in pending:
            self._add_converted(topic, partition, offset, value)

    def _add_converted(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        try:
            doc = rows.parse(value)
            if topic == topics.PRICED_SPANS.name:
                kind = rows.record_kind(doc)
                if kind == "attribution":
                    self.attributions.append(rows.attribution(doc))
                elif kind == "context":
                    self.tool_calls.append(rows.tool_call_row(doc))
                else:
                    self.token_spans.append(rows.priced_span_row(doc))
                    if doc.get("is_late"):
                        self.spend_1m.append(rows.late_span_rollup_row(doc))
            elif topic == topics.ROLLUPS_1M.name:
                self.spend_1m.append(rows.rollup_row(doc))
            elif topic == topics.ALERTS.name:
                self.alerts.append(rows.alert_row(doc))
            elif topic == topics.ALERT_DISPATCHES.name:
                self.alert_dispatches.append(rows.dispatch_row(doc))
            elif topic == topics.OUTCOMES.name:
                # Validated again: the topic is writable by more than the collector (a pydantic
                # ValidationError is a ValueError, so a bad record becomes a dead letter below).
                self.outcomes.append(outcome_row(OutcomeEvent.model_validate(doc)))
            else:
                self.dead_letters.append(rows.dead_letter_row(doc, topic, partition, offset))
        except (rows.BadRecord, KeyError, TypeError, ValueError) as exc:
            reason = f"loader could not use record from {topic}: {exc}"
            log.warning("%s (partition %d offset %d)", reason, partition, offset)
            self.dead_letters.append(
                rows.loader_dead_letter_row(reason, value, topic, partition, offset, int(time.time() * 1000))
            )


@dataclass
class LoaderStats:
    batches: int = 0
    records: int = 0
    token_spans: int = 0
    token_spans_json: int = 0  # of token_spans: stored by the fast path
    json_intake_fallbacks: int = 0
    spend_1m: int = 0
    dead_letters: int = 0


class KafkaToClickHouse:
    def __init__(self, kafka: KafkaSettings, cfg: LoaderSettings, store: LockedClient) -> None:
        self.cfg, self.store = cfg, store
        self.stats = LoaderStats()
        self._running = True
        self.consumer = open_source(kafka, cfg, SOURCE_TOPICS)

    def stop(self) -> None:
        self._running = False

    def run(self) -> None:
        while self._running:
            batch = self._collect()
            if batch.records:
                self._flush(batch)
        self.consumer.close()

    def _collect(self) -> Batch:
        batch = Batch(json_intake=self.cfg.json_intake)
        deadline = time.monotonic() + self.cfg.batch_max_ms / 1000
        while self._running and batch.records < self.cfg.batch_max_rows:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            try:
                polled = self.consumer.poll(self.cfg.batch_max_rows - batch.records, remaining_ms)
            except Exception as exc:  # noqa: BLE001 - broker away: keep what we have, try again
                log.warning("poll failed (%s); retrying", exc)
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                continue
            for topic, partition, offset, value in polled:
                batch.add(topic, partition, offset, value)
        return batch

    def _amend(self, attributions: list[rows.Attribution]) -> None:
        """Store the amended rows: one INSERT ... SELECT per table (an amendment whose row was
        never stored, e.g. a span dead-lettered by the loader, finds nothing and changes nothing)."""
        for table, columns in (("token_spans", rows.TOKEN_SPAN_COLUMNS), ("tool_calls", rows.TOOL_CALL_COLUMNS)):
            mine = [a for a in attributions if a.table == table]
            if mine:
                sql, params = rows.attribution_statement(table, columns, mine)
                self.store.command(sql, params)

    def _insert_json(self, batch: Batch) -> None:
        if not batch.token_span_json:
            return
        body = b"\n".join(value for _, _, _, value in batch.token_span_json)
        try:
            self.store.raw_insert(rows.JSON_INTAKE_TABLE, body, "JSONEachRow", rows.JSON_INTAKE_SETTINGS)
        except Exception as exc:  # noqa: BLE001 - store away or a record it refuses: the Python path decides
            log.warning("JSON insert of %d priced spans failed (%s); converting them in Python instead",
                        len(batch.token_span_json), str(exc)[:300])
            self.stats.json_intake_fallbacks += 1
            batch.json_intake_failed()

    def _flush(self, batch: Batch) -> None:
        self._insert_json(batch)
        backoff = Backoff(0.5, MAX_BACKOFF_S)
        while True:
            try:
                for table, data, columns in (
                    ("token_spans", batch.token_spans, rows.TOKEN_SPAN_COLUMNS),
                    ("spend_1m", batch.spend_1m, rows.SPEND_1M_COLUMNS),
                    ("dead_letters", batch.dead_letters, rows.DEAD_LETTER_COLUMNS),
                    ("alerts", batch.alerts, rows.ALERT_COLUMNS),
                    ("alert_dispatches", batch.alert_dispatches, rows.DISPATCH_COLUMNS),
                    ("outcomes", batch.outcomes, OUTCOME_COLUMNS),
                    ("tool_calls", batch.tool_calls, rows.TOOL_CALL_COLUMNS),
                ):
                    if data:
                        self.store.insert(table, data, columns)
                self._amend(batch.attributions)
                break
            except Exception as exc:  # noqa: BLE001 - the store may be down; keep the batch and retry
                delay = backoff.next_delay()
                log.warning("insert failed (%s); retrying in %.1f s, batch kept, offsets not committed", exc, delay)
                time.sleep(delay)
        try:
            self.consumer.commit()
        except Exception as exc:  # noqa: BLE001 - e.g. the broker is restarting
            # The rows are stored; uncommitted offsets only mean this batch is read again
            # later and replaces itself (idempotent tables). Dying here stopped all loading
            # until someone restarted the loader (found by the broker-restart fault drill).
            log.warning("offset commit failed (%s); the batch will be read again and replace itself", exc)
        s = self.stats
        s.batches += 1
        s.records += batch.records
        s.token_spans += len(batch.token_spans) + len(batch.token_span_json)
        s.token_spans_json += len(batch.token_span_json)
        s.spend_1m += len(batch.spend_1m)
        s.dead_letters += len(batch.dead_letters)
        log.info("batch %d: %d records -> token_spans %d (%d as JSON), spend_1m %d, dead_letters %d, alerts %d, "
                 "dispatches %d, outcomes %d, tool_calls %d, attributions %d", s.batches, batch.records,
                 len(batch.token_spans) + len(batch.token_span_json), len(batch.token_span_json),
                 len(batch.spend_1m), len(batch.dead_letters), len(batch.alerts), len(batch.alert_dispatches),
                 len(batch.outcomes), len(batch.tool_calls), len(batch.attributions))
