"""core/backoff.py: the one retry wait of the edge forwarder, the Kafka ingest, the loader, the
alert deliveries and the drills."""

import random

from tokenpulse.alerts.config import RetryPolicy
from tokenpulse.core.backoff import Backoff, doubling_delay_s


def test_delays_double_from_the_first_and_stop_at_the_cap():
    assert [doubling_delay_s(n, 0.5, 30) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    b = Backoff(0.5, 30)
    assert [b.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.next_delay() == 0.5


def test_jitter_stays_between_half_the_delay_and_the_delay_never_below_the_first():
    sixth_waits = []
    for seed in range(20):
        random.seed(seed)
        b = Backoff(0.2, 30, jitter=True)
        waits = [b.next_delay() for _ in range(11)]
        for n, wait in enumerate(waits, start=1):
            full = doubling_delay_s(n, 0.2, 30)
            assert max(0.2, full / 2) <= wait <= full
        sixth_waits.append(waits[5])
    assert len(set(sixth_waits)) > 10  # spread out: a fleet of senders does not retry in lockstep


def test_a_cap_below_the_first_wait_is_the_first_wait():
    assert Backoff(5, 1).next_delay() == 5


def test_the_alert_retry_policy_is_the_same_doubling():
    policy = RetryPolicy(initial_backoff_ms=200, max_backoff_ms=1000)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
