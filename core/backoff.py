"""Waits between retries, one implementation for every component that retries: the edge
forwarder, the Kafka OTLP ingest, the loader, the alert hooks' deliveries and the drills' client.

Delays double from `first_s` up to `max_s`. With jitter (a fleet retrying against one recovered
service: edge boxes, collectors' senders) each delay is drawn from [d/2, d], never below
`first_s`, so they do not retry in lockstep; without (one sender per target) it is exact.
"""

from __future__ import annotations

import random


def doubling_delay_s(failed_attempts: int, first_s: float, max_s: float) -> float:
    """The wait after the n-th failed attempt (n >= 1), without jitter: first_s * 2^(n-1), capped."""
    return min(first_s * 2 ** (max(failed_attempts, 1) - 1), max_s)


class Backoff:
    """Stateful form for retry loops: next_delay() after each failure, reset() after a success."""

    def __init__(self, first_s: float, max_s: float, *, jitter: bool = False) -> None:
        self.first_s, self.max_s, self.jitter = first_s, max(first_s, max_s), jitter
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        delay = doubling_delay_s(self.failures, self.first_s, self.max_s)
        return max(self.first_s, random.uniform(delay / 2, delay)) if self.jitter else delay

    def reset(self) -> None:
        self.failures = 0
