"""Records Kafka does not acknowledge in time (broker away) must surface as WriteFailed, which
the receivers turn into 503 / UNAVAILABLE, not as an exception that drops the sender's
connection (found by the broker_restart fault drill, tokenpulse/drills.py)."""

from __future__ import annotations

import socket
import time

import pytest

from tokenpulse.core.kafka_writer import SpanWriter, WriteFailed
from tokenpulse.schemas.events import DeadLetter
from tokenpulse.settings import KafkaSettings


def closed_port() -> int:
    with socket.socket() as s:  # bound and released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unacknowledged_records_are_a_write_failure_within_the_timeout():
    writer = SpanWriter(KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}"), collector_id="test", timeout_s=0.5)
    try:
        letter = DeadLetter(tenant="acme", stage="collector", reason="test", received_ms=0)
        t0 = time.monotonic()
        with pytest.raises(WriteFailed, match="did not acknowledge 1 of 1 records"):
            writer.write([], [letter])
        assert time.monotonic() - t0 < 5
        assert writer.write([]) == 0  # nothing to write: nothing to wait for
    finally:
        writer._closing.set()  # not close(): its flush would wait for the unreachable broker
