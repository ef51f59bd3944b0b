"""The insights runner: scheduled ClickHouse evaluations -> result tables + alerts.

Every `interval_s` (default 60 s) the runner asks each registered *evaluator* to evaluate,
publishes the alerts they return to Kafka `tokenpulse.alerts.v1` (the same topic, hooks,
outbox and `alerts` table as the loop detector's alerts) and inserts the rows they return.

Evaluator interface (what a new evaluator implements; budgets.py is the reference):

    class MyEvaluator:
        name: str                                   # unique, used in logs and the registry
        def evaluate(self, query: QueryFn, now: datetime) -> tuple[list[TableRows], list[Alert]]
            # query(sql, parameters) -> tokenpulse.sql_client.QueryResult(columns, rows);
            #   bind values as {name:Type} parameters; to be portable across the loader's
            #   JSON endpoint and a direct client, select money as toString(...) and times
            #   as integers (the endpoint turns Decimal and DateTime into strings).
            # now: timezone-aware UTC wall clock of this cycle.
            # returns: rows to insert, as TableRows(table, columns, rows) (a plain 3-tuple works),
            #   and Alert states (schemas/alerts.py) to publish, in order; the evaluator keeps
            #   its own open incidents and returns each open / resolved state once.
        def restore(self, query: QueryFn) -> int     # optional: called once before the first
            # cycle to re-derive open incidents after a restart (e.g. from `alerts` FINAL);
            # returns how many it restored.

    Register it without editing this file: put "package.module:factory" in
    TOKENPULSE_INSIGHTS_EVALUATORS (JSON list), where factory(settings: InsightsSettings)
    returns the evaluator; short names in `REGISTRY` ("budgets") work too.

Delivery semantics. Alerts are published before rows are inserted, each alert acknowledged
by Kafka (acks=all, idempotent producer) before the next cycle. An alert that could not be
published stays queued in memory and goes out first in the next cycle, in order, with the
same alert_id (hooks deduplicate by alert_id), so an evaluator's view of what is open never
runs ahead of what hooks will eventually see. A restart loses that queue; restore() re-reads
what reached the `alerts` table. A failed insert is logged and not retried: every row is
recomputed in the next cycle. One evaluator failing does not stop the others.

Writing rows. The embedded chDB store belongs to the loader, so by default the runner
inserts through SQL on the same path as queries (`sql_insert`: INSERT ... SELECT FROM
format(JSONEachRow, ...) via tokenpulse.sql_client.run_sql, i.e. the loader's loopback query
endpoint while the stack runs, or a direct clickhouse-connect client for a server). Any
`insert(table, rows, columns)` callable can be injected instead (clickhouse-connect's
Client.insert for a server).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from tokenpulse.schemas.alerts import Alert
from tokenpulse.settings import InsightsSettings, KafkaSettings, Settings
from tokenpulse.sql_client import QueryResult

log = logging.getLogger("tokenpulse.insights")

QueryFn = Callable[[str, dict | None], QueryResult]
InsertFn = Callable[[str, list[list], list[str]], None]
PublishFn = Callable[[Sequence[Alert]], None]  # raises when Kafka did not acknowledge every alert


class TableRows(NamedTuple):
    table: str
    columns: list[str]
    rows: list[list]


@runtime_checkable
class Evaluator(Protocol):
    name: str

    def evaluate(self, query: QueryFn, now: datetime) -> tuple[list[TableRows], list[Alert]]: ...


# Short names for evaluators shipped with tokenpulse: name -> "module:factory".
REGISTRY: dict[str, str] = {
    "budgets": "tokenpulse.insights.budgets:make_evaluator",
    "growth": "tokenpulse.insights.growth:make_evaluator",
    "jevons": "tokenpulse.insights.jevons:make_evaluator",
    "savings": "tokenpulse.insights.jevons:make_savings_evaluator",
}


def register(name: str, target: str) -> None:
    """Add a short name, e.g. register("growth", "tokenpulse.insights.growth:make_evaluator")."""
    REGISTRY[name] = target


def build_evaluators(settings: InsightsSettings) -> list[Evaluator]:
    out: list[Evaluator] = []
    for entry in settings.evaluators:
        target = REGISTRY.get(entry, entry)
        module_name, sep, attr = target.partition(":")
        if not sep:
            raise ValueError(f"evaluator {entry!r}: not in {sorted(REGISTRY)} and not 'module:factory'")
        factory = getattr(importlib.import_module(module_name), attr)
        evaluator = factory(settings)
        if not isinstance(evaluator, Evaluator):
            raise TypeError(f"evaluator {entry!r}: {evaluator!r} has no name / evaluate(query, now)")
        out.append(evaluator)
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ValueError(f"two evaluators share a name: {names}")
    return out


class ConfigWatch:
    """Rebuilds the evaluators when a config file changes, so a new budget or rule takes effect
    at the next cycle without a restart. A file that no longer validates is logged and the
    running evaluators are kept: a typo must not stop budget alerts."""

    def __init__(self, settings: InsightsSettings) -> None:
        self.settings = settings
        self.paths = [Path(settings.budgets_file), Path(settings.growth_file)]
        self._seen = self._stamps()

    def _stamps(self) -> list[tuple[int, int] | None]:
        stamps: list[tuple[int, int] | None] = []
        for path in self.paths:
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return stamps

    def __call__(self) -> list[Evaluator] | None:
        """New evaluators if a file changed and validates; else None."""
        stamps = self._stamps()
        if stamps == self._seen:
            return None
        self._seen = stamps
        try:
            evaluators = build_evaluators(self.settings)
        except Exception as exc:  # noqa: BLE001 - validation, YAML or I/O: keep what runs
            log.error("config changed but does not load (%s); still running the previous config", exc)
            return None
        log.info("config changed (%s): evaluators rebuilt", ", ".join(str(p) for p in self.paths))
        return evaluators


# ---------------------------------------------------------------- query / insert / publish


def query_fn_for_client(client) -> QueryFn:
    """A clickhouse-connect client (or loader LockedClient) as a QueryFn."""

    def query(sql: str, parameters: dict | None = None) -> QueryResult:
        r = client.query(sql, parameters=parameters or None)
        return QueryResult(list(r.column_names), [list(x) for x in r.result_rows])

    return query


def query_fn_for_settings(settings: Settings) -> QueryFn:
    """Through tokenpulse.sql_client.run_sql: the loader's endpoint for the embedded store
    while the stack runs, else a direct client (opened per call: chDB must not stay open
    in this process or the loader could not start)."""
    from tokenpulse.sql_client import run_sql

    return lambda sql, parameters=None: run_sql(settings, sql, parameters)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def sql_insert(query: QueryFn, *, chunk_bytes: int = 512 * 1024) -> InsertFn:
    """Insert rows with SQL only: `INSERT INTO t (cols) SELECT cols FROM format(JSONEachRow,
    structure, data)`. Works wherever `query` works, including the loader's query endpoint.
    Decimals travel as strings, so money stays exact."""
    types: dict[str, dict[str, str]] = {}

    def column_types(table: str) -> dict[str, str]:
        if table not in types:
            r = query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                      "AND table = {t:String} ORDER BY position", {"t": table})
            if not r.rows:
                raise RuntimeError(f"table {table!r} does not exist (migrations applied?)")
            types[table] = {name: typ for name, typ in r.rows}
        return types[table]

    def insert(table: str, rows: list[list], columns: list[str]) -> None:
        if not rows:
            return
        known = column_types(table)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise RuntimeError(f"table {table!r} has no column(s) {unknown}")
        structure = ", ".join(f"`{c}` {known[c]}" for c in columns)
        names = ", ".join(f"`{c}`" for c in columns)
        sql = (f"INSERT INTO `{table}` ({names}) SELECT {names} "
               "FROM format(JSONEachRow, {structure:String}, {data:String})")
        chunk: list[str] = []
        size = 0
        for row in rows:
            line = json.dumps(dict(zip(columns, (_json_value(v) for v in row))), separators=(",", ":"))
            if chunk and size + len(line) > chunk_bytes:
                query(sql, {"structure": structure, "data": "\n".join(chunk)})
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        query(sql, {"structure": structure, "data": "\n".join(chunk)})

    return insert


class PublishFailed(RuntimeError):
    pass


class KafkaAlertPublisher:
    """Alert states -> topics.ALERTS, key = dedupe key, acks=all, idempotent; `__call__`
    returns only once Kafka acknowledged every alert (else PublishFailed)."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str = "tokenpulse-insights", timeout_s: float = 10.0):
        from kafka import KafkaProducer

        self._producer = KafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True,
                                       linger_ms=5, client_id=client_id)
        self._timeout_s = timeout_s

    def __call__(self, alerts: Sequence[Alert]) -> None:
        from kafka.errors import KafkaError

        from tokenpulse.schemas import topics

        futures = [self._producer.send(topics.ALERTS.name, key=a.kafka_key(), value=a.model_dump_json().encode())
                   for a in alerts]
        self._producer.flush(timeout=self._timeout_s)
        try:
            for f in futures:
                f.get(timeout=0)
        except KafkaError as exc:
            raise PublishFailed(f"Kafka did not acknowledge the alerts: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


# ---------------------------------------------------------------- the loop


@dataclass
class CycleReport:
    at: datetime
    duration_ms: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows inserted
    alerts_published: int = 0
    alerts_pending: int = 0  # queued for the next cycle (Kafka did not acknowledge)
    errors: list[str] = field(default_factory=list)


class InsightsRunner:
    def __init__(self, evaluators: Sequence[Evaluator], *, query: QueryFn, insert: InsertFn, publish: PublishFn,
                 max_pending_alerts: int = 10_000) -> None:
        self.evaluators = list(evaluators)
        self.query, self.insert, self.publish = query, insert, publish
        self._pending: deque[Alert] = deque()
        self._max_pending = max_pending_alerts

    def restore(self) -> dict[str, int]:
        """Re-derive each evaluator's open incidents (call once before the first cycle)."""
        restored = {}
        for ev in self.evaluators:
            restore = getattr(ev, "restore", None)
            if restore is None:
                continue
            try:
                restored[ev.name] = restore(self.query)
            except Exception:  # noqa: BLE001 - a missing table on a fresh store must not stop the runner
                log.exception("%s: could not restore open incidents; starting with none", ev.name)
        return restored

    def run_once(self, now: datetime | None = None) -> CycleReport:
        now = now or datetime.now(UTC)
        started = time.perf_counter()
        report = CycleReport(at=now)
        tables: list[TableRows] = []
        for ev in self.evaluators:
            try:
                ev_tables, alerts = ev.evaluate(self.query, now)
            except Exception as exc:  # noqa: BLE001 - one evaluator failing must not stop the others
                log.exception("%s: evaluation failed", ev.name)
                report.errors.append(f"{ev.name}: {exc}")
                continue
            tables.extend(TableRows(*t) for t in ev_tables)
            self._pending.extend(alerts)
        while len(self._pending) > self._max_pending:
            dropped = self._pending.popleft()
            log.error("alert queue full: dropped %s %s", dropped.dedupe_key, dropped.state.value)
        if self._pending:
            batch = list(self._pending)
            try:
                self.publish(batch)
                self._pending.clear()
                report.alerts_published = len(batch)
            except Exception as exc:  # noqa: BLE001 - keep them for the next cycle
                log.warning("publishing %d alert(s) failed (%s); retrying next cycle", len(batch), exc)
                report.errors.append(f"publish: {exc}")
        report.alerts_pending = len(self._pending)
        for t in tables:
            try:
                self.insert(t.table, t.rows, t.columns)
                report.rows[t.table] = report.rows.get(t.table, 0) + len(t.rows)
            except Exception as exc:  # noqa: BLE001 - recomputed next cycle
                log.warning("insert into %s failed (%s); recomputed next cycle", t.table, exc)
                report.errors.append(f"insert {t.table}: {exc}")
        report.duration_ms = (time.perf_counter() - started) * 1000
        return report

    def run_forever(self, stop: threading.Event, interval_s: int,
                    reload: Callable[[], list[Evaluator] | None] | None = None) -> None:
        """Evaluate at every multiple of interval_s (wall clock) until `stop` is set; before each
        cycle, `reload` may hand over new evaluators (they restore their open incidents)."""
        self.restore()
        while not stop.is_set():
            if reload is not None and (fresh := reload()) is not None:
                self.evaluators = fresh
                self.restore()
            report = self.run_once()
            log.info("cycle: %.0f ms, rows %s, alerts published %d, pending %d%s", report.duration_ms,
                     report.rows, report.alerts_published, report.alerts_pending,
                     f", errors: {report.errors}" if report.errors else "")
            stop.wait(interval_s - time.time() % interval_s)
