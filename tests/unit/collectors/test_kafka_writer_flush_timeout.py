"""A flush that times out (broker away) must surface as WriteFailed, which the receivers turn
into 503 / UNAVAILABLE, not as an exception that drops the sender's connection (found by the
broker_restart fault drill, tokenpulse/drills.py)."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError

from tokenpulse.collectors.kafka_writer import SpanWriter, WriteFailed


class BrokerAwayProducer:
    def send(self, *args, **kwargs):
        return None  # never completes: flush() times out first

    def flush(self, timeout=None):
        raise KafkaTimeoutError("Timeout waiting for future")


def test_flush_timeout_is_a_write_failure():
    writer = SpanWriter.__new__(SpanWriter)  # no real producer: no broker needed
    writer._producer, writer._collector_id, writer._timeout_s = BrokerAwayProducer(), "test", 0.1
    with pytest.raises(WriteFailed, match="Timeout waiting for future"):
        writer.write([])
