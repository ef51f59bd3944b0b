"""In-memory stand-ins for the collector's Kafka writer (tests without a broker)."""

from __future__ import annotations

from tokenpulse.core.kafka_writer import WriteFailed


class MemoryWriter:
    """Keeps what the receiver would send to Kafka; `fail` makes it act like a broker outage."""

    def __init__(self, fail: bool = False) -> None:
        self.spans, self.dead, self.fail = [], [], fail

    def write(self, spans, dead_letters=()) -> int:
        if self.fail:
            raise WriteFailed("broker down")
        self.spans += list(spans)
        self.dead += list(dead_letters)
        return 0
