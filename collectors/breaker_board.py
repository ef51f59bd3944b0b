"""The circuit breaker board: which sessions each tenant must stop, kept current from Kafka.

The loop detector writes `Alert` states to the compacted alerts topic, keyed by dedupe_key;
the newest record per key is the incident's current state. The board holds, per tenant,
the incidents whose current state is "open with action stop for a session". Apps read it
through GET /v1/breakers (otlp_http.py) and stop calling the LLM for those sessions.

Contracts:
  * Every collector reads the whole topic from the beginning, without a consumer group, so
    each one rebuilds the full open set on start and any of them can answer any tenant.
  * Versions: every change bumps one board-wide counter; a tenant's version is the counter's
    value at that tenant's last change. So a tenant's version only moves when *its* stop set
    moves (another tenant's incident never wakes it or leaks through timing), and versions
    start from the wall clock in ms, so a restarted collector answers a client's stale
    version at once instead of long-polling against it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import NamedTuple, Protocol

from pydantic import ValidationError

from tokenpulse.schemas import topics
from tokenpulse.schemas.alerts import Alert, AlertAction, AlertState
from tokenpulse.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoppedSession:
    """One open stop incident for one session (the JSON shape GET /v1/breakers returns)."""

    session_id: str
    alert_id: str
    dedupe_key: str
    rule: str
    summary: str
    opened_ms: int
    severity: str

    @classmethod
    def from_alert(cls, alert: Alert) -> StoppedSession:
        assert alert.session_id is not None
        return cls(alert.session_id, alert.alert_id, alert.dedupe_key, alert.rule, alert.summary,
                   alert.opened_ms, alert.severity.value)

    def to_json(self) -> dict:
        return asdict(self)


def is_stop_order(alert: Alert) -> bool:
    """True when this alert state means "the session must stop calling now"."""
    return alert.state is AlertState.open and alert.action is AlertAction.stop and bool(alert.session_id)


class BreakerBoard:
    """Thread-safe map tenant -> dedupe_key -> StoppedSession, with long-poll support."""

    def __init__(self, *, start_version: int | None = None) -> None:
        self._by_tenant: dict[str, dict[str, StoppedSession]] = {}
        self._start_version = start_version if start_version is not None else time.time_ns() // 1_000_000
        self._version = self._start_version
        self._tenant_version: dict[str, int] = {}
        self._changed = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    @property
    def version(self) -> int:
        """The board-wide version (bumped by any tenant's change)."""
        with self._changed:
            return self._version

    def apply(self, alert: Alert) -> bool:
        """Make the board reflect this alert as its incident's newest state; True if it changed.

        An open stop alert with a session adds (or refreshes) the entry; any other state for
        the same dedupe_key (resolved, or no longer a stop) removes it."""
        with self._changed:
            changed = self._put(alert) if is_stop_order(alert) else self._drop(alert.tenant, alert.dedupe_key)
            if changed:
                self._bump({alert.tenant})
            return changed

    def forget(self, dedupe_key: str) -> bool:
        """A tombstone (null value) for this key: the incident is gone for every tenant."""
        with self._changed:
            touched = {t for t in self._by_tenant if self._drop(t, dedupe_key)}
            if touched:
                self._bump(touched)
            return bool(touched)

    def reset(self, alerts: Iterable[Alert]) -> bool:
        """Replace the whole board with these newest-per-key states (after a catch-up read)."""
        fresh: dict[str, dict[str, StoppedSession]] = {}
        for a in alerts:
            if is_stop_order(a):
                fresh.setdefault(a.tenant, {})[a.dedupe_key] = StoppedSession.from_alert(a)
        with self._changed:
            touched = {t for t in fresh.keys() | self._by_tenant.keys()
                       if fresh.get(t, {}) != self._by_tenant.get(t, {})}
            self._by_tenant = fresh
            if touched:
                self._bump(touched)
            return bool(touched)

    def snapshot(self, tenant: str) -> tuple[int, list[StoppedSession]]:
        """(tenant's version, one entry per stopped session of that tenant only).

        When several incidents stop one session, the earliest opened is shown; the session
        stays stopped until all of them are resolved."""
        with self._changed:
            version = self._tenant_version.get(tenant, self._start_version)
            entries = sorted(self._by_tenant.get(tenant, {}).values(), key=lambda s: (s.opened_ms, s.dedupe_key))
        first_per_session: dict[str, StoppedSession] = {}
        for s in entries:
            first_per_session.setdefault(s.session_id, s)
        return version, sorted(first_per_session.values(), key=lambda s: s.session_id)

    def tenant_version(self, tenant: str) -> int:
        with self._changed:
            return self._tenant_version.get(tenant, self._start_version)

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every change, on the changing thread with the board locked (so
        it must be quick: the HTTP server's schedules a wake-up on its event loop, where long
        polls wait without a thread each). Returns the function that unsubscribes it."""
        with self._changed:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._changed:
                self._listeners.remove(listener)
        return unsubscribe

    def wait_for_change(self, since_version: int, timeout_s: float, *, tenant: str | None = None) -> int:
        """Block until the version (the tenant's, if given) differs from since_version, or
        timeout_s passes; returns the version then. Returns at once if it already differs."""
        def current() -> int:
            return self._version if tenant is None else self._tenant_version.get(tenant, self._start_version)

        with self._changed:
            self._changed.wait_for(lambda: current() != since_version, timeout=max(0.0, timeout_s))
            return current()

    # --- internals: call with the condition held ---------------------------------------
    def _put(self, alert: Alert) -> bool:
        entry = StoppedSession.from_alert(alert)
        per_key = self._by_tenant.setdefault(alert.tenant, {})
        if per_key.get(alert.dedupe_key) == entry:
            return False
        per_key[alert.dedupe_key] = entry
        return True

    def _drop(self, tenant: str, dedupe_key: str) -> bool:
        per_key = self._by_tenant.get(tenant)
        if not per_key or per_key.pop(dedupe_key, None) is None:
            return False
        if not per_key:
            del self._by_tenant[tenant]
        return True

    def _bump(self, tenants: set[str]) -> None:
        self._version += 1
        for t in tenants:
            self._tenant_version[t] = self._version
        self._changed.notify_all()
        for listener in self._listeners:
            listener()


# --- feeding the board from Kafka ------------------------------------------------------

class AlertRecord(NamedTuple):
    """What the feed needs from one Kafka record."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone

    @classmethod
    def of(cls, alert: Alert, offset: int = 0, partition: int = 0) -> AlertRecord:
        return cls(partition, offset, alert.kafka_key(), alert.model_dump_json().encode())


class AlertConsumer(Protocol):
    """A reader positioned at the start of every partition of the alerts topic."""

    def poll(self, timeout_ms: int) -> list[AlertRecord]: ...

    def caught_up(self) -> bool:
        """True once everything that was in the topic when reading began has been polled."""
        ...

    def close(self) -> None: ...


class AlertsTopicMissing(RuntimeError):
    pass


class KafkaAlertConsumer:
    """AlertConsumer over kafka-python: no group, all partitions assigned, from the beginning."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(**kafka.client_options(), group_id=None, enable_auto_commit=False,
                                       auto_offset_reset="earliest", client_id=client_id)
        try:
            partitions = self._consumer.partitions_for_topic(topics.ALERTS.name)
            if not partitions:
                raise AlertsTopicMissing(f"topic {topics.ALERTS.name} has no partitions yet (not created?)")
            self._parts = [TopicPartition(topics.ALERTS.name, p) for p in sorted(partitions)]
            self._consumer.assign(self._parts)
            self._consumer.seek_to_beginning(*self._parts)
            self._ends: dict = self._consumer.end_offsets(self._parts)
        except BaseException:
            self._consumer.close()
            raise
        self._caught_up = False

    def poll(self, timeout_ms: int) -> list[AlertRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        return [AlertRecord(r.partition, r.offset, r.key, r.value) for recs in batches.values() for r in recs]

    def caught_up(self) -> bool:
        if not self._caught_up:
            positions = [self._consumer.position(tp, timeout_ms=1000) for tp in self._parts]
            self._caught_up = all(p is not None and p >= self._ends[tp] for tp, p in zip(self._parts, positions))
        return self._caught_up

    def close(self) -> None:
        self._consumer.close()


class BreakerFeed(threading.Thread):
    """Keeps a BreakerBoard current from the alerts topic until stop().

    First it reads the topic up to where it ended at start and loads the newest state per
    dedupe_key in one step (so an incident that was opened and later resolved never shows as
    open in between); then it applies each new record as it arrives. Records that do not
    parse are skipped and logged with their offset. If Kafka is unreachable it retries, and
    the board keeps what it had (a fresh read then replaces it)."""

    def __init__(self, board: BreakerBoard, consumer_factory: Callable[[], AlertConsumer], *,
                 poll_timeout_ms: int = 500, retry_s: float = 2.0) -> None:
        super().__init__(name="breaker-feed", daemon=True)
        self._board, self._factory = board, consumer_factory
        self._poll_timeout_ms, self._retry_s = poll_timeout_ms, retry_s
        self._stopping = threading.Event()
        self.ready = threading.Event()  # set after the first full catch-up
        self.skipped = 0

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                consumer = self._factory()
            except Exception as exc:  # broker down, topic not created yet: keep trying
                log.warning("breaker feed cannot read %s yet (%s); retrying in %.0fs",
                            topics.ALERTS.name, exc, self._retry_s)
                self._stopping.wait(self._retry_s)
                continue
            try:
                self._follow(consumer)
            except Exception:
                log.exception("breaker feed lost %s; re-reading it in %.0fs", topics.ALERTS.name, self._retry_s)
                self._stopping.wait(self._retry_s)
            finally:
                consumer.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def _follow(self, consumer: AlertConsumer) -> None:
        newest: dict[str, Alert | None] = {}  # during catch-up: dedupe_key -> newest state
        catching_up = True
        while not self._stopping.is_set():
            for record in consumer.poll(self._poll_timeout_ms):
                if record.value is None:
                    key = (record.key or b"").decode(errors="replace")
                    if catching_up:
                        newest[key] = None
                    else:
                        self._board.forget(key)
                    continue
                alert = self._parse(record)
                if alert is None:
                    continue
                if catching_up:
                    newest[alert.dedupe_key] = alert
                else:
                    self._board.apply(alert)
            if catching_up and consumer.caught_up():
                catching_up = False
                self._board.reset(a for a in newest.values() if a is not None)
                newest.clear()
                self.ready.set()
                log.info("breaker board loaded from %s (version %d)", topics.ALERTS.name, self._board.version)

    def _parse(self, record: AlertRecord) -> Alert | None:
        try:
            return Alert.model_validate_json(record.value)
        except ValidationError as exc:
            self.skipped += 1
            log.warning("breaker feed skips %s partition %d offset %d: not a valid Alert (%s)",
                        topics.ALERTS.name, record.partition, record.offset, exc.errors()[0]["msg"] if exc.errors() else exc)
            return None
