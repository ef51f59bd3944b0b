"""The edge collector's durable buffer: an ordered queue of Kafka records on local disk.

Flow:  append(records)  ->  (forwarder) peek(n) -> send to Kafka -> advance(acked seqs)

Guarantees:

* Durable on return. `append` commits one SQLite transaction (WAL, synchronous=FULL: the
  WAL is fsync'd before the commit returns), so once it returns the records survive a
  kill -9 of the process and a power cut. The HTTP receiver answers 200 only after that.
* All or nothing. One OTLP request is one transaction: a crash mid-append leaves none of
  its records, the sender got no 200, and it retries.
* Ordered. `seq` is an AUTOINCREMENT key and SQLite serialises writers, so seq order is
  commit order; `peek` returns the oldest records first.
* Removed only when acknowledged. `advance` deletes exactly the records the forwarder says
  Kafka acknowledged; anything else stays and is sent again. A crash between Kafka's ack
  and `advance` therefore re-sends that batch: at-least-once, duplicates bounded by one
  batch, removed downstream by the Flink job's (tenant, trace_id, span_id) dedup.
* Bounded. The payload bytes held (Kafka key + value) never exceed `max_bytes`: an append
  that would cross it raises BufferFull and stores nothing (the receiver answers 503 +
  Retry-After; OTLP exporters retry). Nothing already accepted is ever dropped. The file
  on disk is larger than the payload (SQLite pages, index and WAL: 1.28x measured;
  see docs/edge_collector.md) and keeps its high-water size: freed pages are reused.
* One owner. An exclusive flock on `<dir>/buffer.lock` keeps a second collector off the
  same buffer (two forwarders would send everything twice); the kernel drops the lock
  when the owner dies, even by kill -9.

Why SQLite rather than append-only segment files: the transaction, the crash recovery
(torn writes, a half-written batch), the ordered index and the delete-by-key that advance
needs are SQLite's tested code instead of a new file format with checksums, recovery scans
and segment compaction to write and prove here. The price is one fsync per append, which
is the durability we want anyway. Measure it with (100 records of ~700 B, a TokenSpan's
size, per append; the OTLP SDK exporters send up to 512 spans per request):

    .venv/bin/python - <<'EOF'
    import tempfile, time
    from pathlib import Path
    from tokenpulse.collectors.edge_buffer import EdgeBuffer, OutgoingRecord
    buf = EdgeBuffer.open(Path(tempfile.mkdtemp()), max_bytes=1 << 30)
    batch = [OutgoingRecord("t", b"k" * 40, b"v" * 660) for _ in range(100)]
    t = time.perf_counter()
    for _ in range(300):
        buf.append(batch)
    s = time.perf_counter() - t
    print(f"{300 / s:.0f} appends/s, {30000 / s:.0f} records/s")
    EOF

docs/edge_collector.md records the numbers (44,000-102,000 records/s on the dev VM).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DB_FILE = "buffer.sqlite3"
LOCK_FILE = "buffer.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- commit order; never reused
    topic       TEXT    NOT NULL,
    key         BLOB,
    value       BLOB    NOT NULL,
    size        INTEGER NOT NULL,                   -- len(key) + len(value): what max_bytes bounds
    appended_ms INTEGER NOT NULL
);
"""


class BufferFull(RuntimeError):
    """The append would take the buffer past max_bytes; nothing of it was stored."""


class BufferInUse(RuntimeError):
    """Another process holds the buffer directory."""


@dataclass(frozen=True)
class OutgoingRecord:
    """A Kafka record to buffer: topic, key, value exactly as the forwarder will send them."""

    topic: str
    key: bytes | None
    value: bytes

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value)


@dataclass(frozen=True)
class BufferedRecord:
    seq: int
    topic: str
    key: bytes | None
    value: bytes
    appended_ms: int


@dataclass(frozen=True)
class BufferStats:
    records: int
    bytes: int
    max_bytes: int
    oldest_appended_ms: int | None


class EdgeBuffer:
    """One connection behind one lock: SQLite admits one writer at a time anyway, and the
    readers (the forwarder's peek, /health) are short index lookups."""

    def __init__(self, conn: sqlite3.Connection, lock_fd: int, *, max_bytes: int) -> None:
        self._conn, self._lock_fd, self.max_bytes = conn, lock_fd, max_bytes
        self._lock = threading.Lock()
        self._appended = threading.Event()
        self._records, self._bytes = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records").fetchone()

    @classmethod
    def open(cls, directory: Path, *, max_bytes: int) -> EdgeBuffer:
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise BufferInUse(f"another edge collector is using the buffer in {directory}") from None
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        conn = sqlite3.connect(directory / DB_FILE, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        return cls(conn, lock_fd, max_bytes=max_bytes)

    def append(self, records: Sequence[OutgoingRecord]) -> None:
        """Store the records durably, all or none; raises BufferFull when they do not fit."""
        if not records:
            return
        size = sum(r.size for r in records)
        now_ms = int(time.time() * 1000)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                raise BufferFull(f"edge buffer full: {self._bytes} of {self.max_bytes} bytes used, "
                                 f"{len(records)} record(s) of {size} bytes refused until Kafka catches up")
            with self._transaction():
                self._conn.executemany(
                    "INSERT INTO records (topic, key, value, size, appended_ms) VALUES (?, ?, ?, ?, ?)",
                    [(r.topic, r.key, r.value, r.size, now_ms) for r in records])
            self._records += len(records)
            self._bytes += size
            self._appended.set()

    def peek(self, limit: int) -> list[BufferedRecord]:
        """The oldest `limit` records, oldest first; they stay until advance() removes them."""
        with self._lock:
            self._appended.clear()  # under the lock: an append after this read sets it again
            rows = self._conn.execute(
                "SELECT seq, topic, key, value, appended_ms FROM records ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [BufferedRecord(*row) for row in rows]

    def wait_for_append(self, timeout_s: float) -> bool:
        """Block until something was appended since the last peek (or the timeout)."""
        return self._appended.wait(timeout_s)

    def advance(self, seqs: Iterable[int]) -> int:
        """Remove these records (Kafka acknowledged them); returns how many were removed.
        Unknown or already removed seqs are ignored, so repeating an advance is harmless."""
        removed = freed = 0
        with self._lock:
            with self._transaction():
                for seq in seqs:
                    row = self._conn.execute("DELETE FROM records WHERE seq = ? RETURNING size", (seq,)).fetchone()
                    if row is not None:
                        removed, freed = removed + 1, freed + row[0]
            self._records -= removed
            self._bytes -= freed
        return removed

    def stats(self) -> BufferStats:
        with self._lock:
            oldest = self._conn.execute("SELECT appended_ms FROM records ORDER BY seq LIMIT 1").fetchone()
            return BufferStats(self._records, self._bytes, self.max_bytes, oldest[0] if oldest else None)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            os.close(self._lock_fd)  # releases the flock

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; on any error (a failed COMMIT too) roll back, so a
        failed append stores nothing and the connection is ready for the next one."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
