"""Delivering outbox rows to hooks: one worker thread per hook, retries, outcomes.

Flow: `Deliveries.submit(alert)` writes the alert into the outbox (one row per hook that
wants it) and wakes the workers. Each `HookWorker` drains its own hook's pending rows in
enqueue order: attempt, back off (doubling, per the hook's retry policy), attempt again,
until delivered, refused (non-retryable answer) or out of attempts. The final outcome is
written to the outbox first, then handed to `publish` (a callable; the Kafka publisher in
production, a list in tests). The outbox is the record of truth; a lost publish loses a
report, never a delivery.

Why a thread per hook: a hook that is down, slow or rate limited only delays its own
queue; the others keep delivering. Within one hook, strict order is what guarantees a
resolve never overtakes its open.

Stopping in the middle of a backoff leaves the row pending, and the next process on the
same outbox file delivers it (its attempt count starts over).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tokenpulse.schemas.alerts import Alert, DispatchOutcome

from .config import Hook, HooksConfig
from .hooks import SendResult
from .hooks import send as http_send
from .outbox import Delivery, Outbox

log = logging.getLogger(__name__)

Publish = Callable[[DispatchOutcome], None]
Send = Callable[[Hook, Alert], SendResult]

PENDING_BATCH = 100
# New rows wake a worker at once; this only bounds how long a missed wake-up could hide rows.
IDLE_RECHECK_S = 5.0
ERROR_MAX_CHARS = 2000  # DispatchOutcome.error's limit


class HookWorker(threading.Thread):
    def __init__(self, hook: Hook, outbox: Outbox, publish: Publish, send: Send, stopping: threading.Event) -> None:
        super().__init__(name=f"hook-{hook.name}", daemon=True)
        self.hook = hook
        self._outbox, self._publish, self._send, self._stopping = outbox, publish, send, stopping
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._drain()
            except Exception:  # noqa: BLE001 - e.g. the outbox is unwritable: log, pause, try again
                log.exception("hook %s: delivery loop failed; retrying in 1 s", self.hook.name)
                self._stopping.wait(1.0)

    def _drain(self) -> None:
        # Clear before reading: a row enqueued after the read sets the event again, so the
        # wait below returns at once instead of missing it.
        self._wake.clear()
        batch = self._outbox.pending(self.hook.name, PENDING_BATCH)
        if not batch:
            self._wake.wait(IDLE_RECHECK_S)
            return
        for delivery in batch:
            if self._stopping.is_set() or not self._deliver(delivery):
                return

    def _deliver(self, delivery: Delivery) -> bool:
        """Attempt until a final outcome; False if stopped first (the row stays pending)."""
        retry = self.hook.retry
        first_attempt_ms, attempts = _now_ms(), 0
        while True:
            attempts += 1
            result = self._attempt(delivery.alert)
            if result.delivered or not result.retryable or attempts >= retry.max_attempts:
                break
            pause_s = retry.backoff_s(attempts)
            log.debug("hook %s: alert %s %s attempt %d failed (%s); retrying in %.3f s", self.hook.name,
                      delivery.alert.alert_id, delivery.alert.state.value, attempts, result.error, pause_s)
            if self._stopping.wait(pause_s):
                return False
        self._finish(delivery, result, attempts, first_attempt_ms)
        return True

    def _attempt(self, alert: Alert) -> SendResult:
        try:
            return self._send(self.hook, alert)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker; retried like a network error
            log.exception("hook %s: could not build or send alert %s", self.hook.name, alert.alert_id)
            return SendResult(None, f"internal error: {type(exc).__name__}: {exc}")

    def _finish(self, delivery: Delivery, result: SendResult, attempts: int, first_attempt_ms: int) -> None:
        outcome = "delivered" if result.delivered else "failed"
        http_status = result.http_status
        error = result.error[:ERROR_MAX_CHARS] if result.error else None
        finished_ms = _now_ms()
        self._outbox.mark(delivery.id, outcome, attempts, http_status, error, first_attempt_ms, finished_ms)
        alert = delivery.alert
        log.log(logging.INFO if result.delivered else logging.WARNING,
                "alert %s: hook=%s alert_id=%s state=%s attempts=%d status=%s%s", outcome, self.hook.name,
                alert.alert_id, alert.state.value, attempts, http_status, f" error={error!r}" if error else "")
        report = DispatchOutcome(alert_id=alert.alert_id, dedupe_key=alert.dedupe_key, tenant=alert.tenant,
                                 state=alert.state, hook=self.hook.name, hook_kind=self.hook.kind, outcome=outcome,
                                 attempts=attempts, http_status=http_status, error=error,
                                 first_attempt_ms=first_attempt_ms, finished_ms=finished_ms)
        try:
            self._publish(report)
        except Exception:  # noqa: BLE001 - the outbox already holds the outcome
            log.exception("hook %s: could not publish the dispatch outcome of alert %s", self.hook.name,
                          alert.alert_id)


class Deliveries:
    """The outbox plus one worker per hook: everything after Kafka, testable without it."""

    def __init__(self, hooks: HooksConfig, outbox: Outbox, publish: Publish, *, send: Send = http_send) -> None:
        self.hooks, self.outbox = hooks, outbox
        self._stopping = threading.Event()
        self._workers = [HookWorker(h, outbox, publish, send, self._stopping) for h in hooks.hooks]

    def start(self) -> None:
        orphaned = {name: n for name, n in self.outbox.pending_counts().items() if name not in self.hooks.names()}
        if orphaned:
            log.warning("outbox has pending deliveries for hooks no longer configured (left as they are): %s",
                        orphaned)
        for worker in self._workers:
            worker.start()

    def submit(self, alert: Alert) -> int:
        """Record the alert for every hook that wants it; returns the new outbox rows."""
        added = self.outbox.enqueue(alert, self.hooks.hooks)
        if added:
            for worker in self._workers:
                worker.wake()
        return added

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the workers; an HTTP attempt in flight finishes first (bounded by its timeout)."""
        self._stopping.set()
        for worker in self._workers:
            worker.wake()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout_s if timeout_s is not None else worker.hook.retry.timeout_s + 1)


def _now_ms() -> int:
    return int(time.time() * 1000)
