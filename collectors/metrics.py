"""The edge collector's counters and their Prometheus text exposition (GET /metrics).

Counters live for the process (Prometheus handles the reset to 0 on restart); the
buffer gauges are read from the buffer itself, so they are right after a restart too.
Format: https://prometheus.io/docs/instrumenting/exposition_formats/ (text 0.0.4).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .edge_buffer import BufferStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class EdgeCounters:
    received: int = 0       # LLM spans accepted into the buffer
    dead_letters: int = 0   # rejected spans whose dead letters were accepted into the buffer
    refused: int = 0        # spans and dead letters refused with 503 (buffer full or unwritable)
    forwarded: int = 0      # records Kafka acknowledged (spans and dead letters)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, received: int = 0, dead_letters: int = 0, refused: int = 0, forwarded: int = 0) -> None:
        with self._lock:
            self.received += received
            self.dead_letters += dead_letters
            self.refused += refused
            self.forwarded += forwarded

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"received": self.received, "dead_letters": self.dead_letters,
                    "refused": self.refused, "forwarded": self.forwarded}


def render_prometheus(counters: EdgeCounters, buffer: BufferStats, *, now_ms: int,
                      kafka_reachable: bool | None) -> str:
    c = counters.snapshot()
    oldest_age_s = max(0, now_ms - buffer.oldest_appended_ms) / 1000 if buffer.oldest_appended_ms else 0.0
    metrics = [
        ("tokenpulse_edge_received_total", "counter", "LLM spans accepted into the edge buffer.", c["received"]),
        ("tokenpulse_edge_dead_letters_total", "counter",
         "Rejected spans whose dead letters were accepted into the edge buffer.", c["dead_letters"]),
        ("tokenpulse_edge_refused_total", "counter",
         "Spans and dead letters refused with 503 because the buffer was full or unwritable.", c["refused"]),
        ("tokenpulse_edge_forwarded_total", "counter", "Buffered records acknowledged by Kafka.", c["forwarded"]),
        ("tokenpulse_edge_buffered_spans", "gauge",
         "Records (spans and dead letters) in the buffer, not yet acknowledged by Kafka.", buffer.records),
        ("tokenpulse_edge_buffered_bytes", "gauge", "Payload bytes (key + value) in the buffer.", buffer.bytes),
        ("tokenpulse_edge_max_buffer_bytes", "gauge", "Payload bytes the buffer may hold.", buffer.max_bytes),
        ("tokenpulse_edge_oldest_buffered_age_seconds", "gauge",
         "Age of the oldest buffered record (0 when empty).", oldest_age_s),
        ("tokenpulse_edge_kafka_reachable", "gauge",
         "1 if the last forward attempt was acknowledged, 0 if it failed, -1 before the first.",
         -1 if kafka_reachable is None else int(kafka_reachable)),
    ]
    lines = []
    for name, kind, help_text, value in metrics:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(lines) + "\n"
