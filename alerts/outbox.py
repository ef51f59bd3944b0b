"""The durable outbox: one sqlite row per (hook, alert state) to deliver, and how it ended.

Flow: the dispatcher reads an alert from Kafka, `enqueue`s it here (one row per hook that
wants it), commits the sqlite transaction, and only then commits the Kafka offset. Each
hook's worker takes `pending(hook)` rows in enqueue order, delivers, and `mark`s them.

Why this file is the source of truth:

* UNIQUE(hook, alert_id, state) + INSERT OR IGNORE: Kafka redelivery, a replayed stream
  job or a restart can present the same alert state any number of times; each hook still
  gets it once. This is the "no duplicate pages for one incident" guarantee.
* A `resolved` row is only created for a hook that has an `open` row for the same alert
  (pending, delivered or failed): a hook that never heard of an incident is not told it
  ended. An `open` that finally failed still lets its resolve be attempted.
* Rows are delivered per hook in id (= enqueue) order, so a resolve never overtakes its open.
* Rows still pending when the process stops are delivered by the next process.
* `prune` forgets incidents whose resolve finished longer ago than the retention. Keep the
  retention above the alerts topic's retention (Kafka's default 7 days): until then Kafka
  may redeliver the incident, and only these rows stop it from paging twice.

WAL mode lets the workers read while the consumer writes; synchronous=FULL because an
outbox commit is what allows the Kafka offset commit, so it must survive a power cut.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tokenpulse.schemas.alerts import Alert, AlertState

from .config import Hook

Outcome = Literal["delivered", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- enqueue order; never reused, even after prune
    hook             TEXT    NOT NULL,
    alert_id         TEXT    NOT NULL,
    state            TEXT    NOT NULL,     -- open | resolved
    dedupe_key       TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    alert_json       TEXT    NOT NULL,     -- the alert as received, sent as-is later
    enqueued_ms      INTEGER NOT NULL,
    outcome          TEXT,                 -- NULL while pending, then delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    http_status      INTEGER,
    error            TEXT,
    first_attempt_ms INTEGER,
    finished_ms      INTEGER,
    UNIQUE (hook, alert_id, state)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (hook, id) WHERE outcome IS NULL;
"""

_INSERT_OPEN = """
INSERT OR IGNORE INTO deliveries (hook, alert_id, state, dedupe_key, tenant, alert_json, enqueued_ms)
VALUES (?, ?, 'open', ?, ?, ?, ?)
"""
# Only hooks that were given the incident's open hear that it ended.
_INSERT_RESOLVED = """
INSERT OR IGNORE INTO deliveries (hook, alert_id, state, dedupe_key, tenant, alert_json, enqueued_ms)
SELECT ?, ?, 'resolved', ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM deliveries WHERE hook = ? AND alert_id = ? AND state = 'open')
"""


@dataclass(frozen=True)
class Delivery:
    id: int
    hook: str
    alert: Alert
    enqueued_ms: int
    outcome: Outcome | None = None
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    first_attempt_ms: int | None = None
    finished_ms: int | None = None


class Outbox:
    """Thread-safe: one connection, one lock; every call is a short transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def enqueue(self, alert: Alert, hooks: Iterable[Hook], now_ms: int | None = None) -> int:
        """Add one row per hook that should get this alert state; returns the rows added."""
        enqueued_ms = _now_ms() if now_ms is None else now_ms
        row = (alert.alert_id, alert.dedupe_key, alert.tenant, alert.model_dump_json(), enqueued_ms)
        added = 0
        with self._lock, self._transaction():
            for hook in hooks:
                if alert.state is AlertState.open:
                    if hook.accepts(alert):
                        added += self._db.execute(_INSERT_OPEN, (hook.name, *row)).rowcount
                else:
                    added += self._db.execute(_INSERT_RESOLVED, (hook.name, *row, hook.name, alert.alert_id)).rowcount
        return added

    def pending(self, hook_name: str, limit: int = 100) -> list[Delivery]:
        """Undelivered rows of one hook, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE hook = ? AND outcome IS NULL ORDER BY id LIMIT ?",
                (hook_name, limit)).fetchall()
        return [_delivery(r) for r in rows]

    def mark(self, row_id: int, outcome: Outcome, attempts: int, http_status: int | None, error: str | None,
             first_attempt_ms: int, finished_ms: int) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "UPDATE deliveries SET outcome = ?, attempts = ?, http_status = ?, error = ?,"
                " first_attempt_ms = ?, finished_ms = ? WHERE id = ?",
                (outcome, attempts, http_status, error, first_attempt_ms, finished_ms, row_id))

    def deliveries(self, hook_name: str | None = None) -> list[Delivery]:
        """Every row (pending or finished), oldest first; for operators and tests."""
        where, args = ("WHERE hook = ?", (hook_name,)) if hook_name else ("", ())
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM deliveries {where} ORDER BY id", args).fetchall()
        return [_delivery(r) for r in rows]

    def pending_counts(self) -> dict[str, int]:
        """Pending rows per hook name, including hooks no longer in the config."""
        with self._lock:
            rows = self._db.execute(
                "SELECT hook, count(*) FROM deliveries WHERE outcome IS NULL GROUP BY hook").fetchall()
        return dict(rows)

    def prune(self, older_than_ms: int) -> int:
        """Delete finished incidents: every row of a (hook, alert) whose resolve finished
        before `older_than_ms`. Open incidents, pending rows and opens never resolved stay
        (a resolve may still come and needs its open). Returns the rows deleted."""
        with self._lock, self._transaction():
            return self._db.execute(
                "DELETE FROM deliveries WHERE (hook, alert_id) IN ("
                " SELECT hook, alert_id FROM deliveries WHERE state = 'resolved'"
                " AND outcome IS NOT NULL AND finished_ms < ?)"
                " AND outcome IS NOT NULL", (older_than_ms,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # Explicit BEGIN IMMEDIATE / COMMIT: the connection runs in autocommit mode so
        # sqlite3 never opens or holds a transaction behind our back.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


_COLUMNS = ("id, hook, alert_json, enqueued_ms, outcome, attempts, http_status, error,"
            " first_attempt_ms, finished_ms")


def _delivery(row: tuple) -> Delivery:
    (row_id, hook, alert_json, enqueued_ms, outcome, attempts, http_status, error, first_ms, finished_ms) = row
    return Delivery(id=row_id, hook=hook, alert=Alert.model_validate_json(alert_json), enqueued_ms=enqueued_ms,
                    outcome=outcome, attempts=attempts, http_status=http_status, error=error,
                    first_attempt_ms=first_ms, finished_ms=finished_ms)


def _now_ms() -> int:
    return int(time.time() * 1000)
