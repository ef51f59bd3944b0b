"""Collector counters and their Prometheus text exposition (GET /metrics): the edge
collector's (EdgeCounters) and the main collector's (CollectorMetrics).

Counters live for the process (Prometheus handles the reset to 0 on restart); the
buffer gauges are read from the buffer itself, so they are right after a restart too.
Format: https://prometheus.io/docs/instrumenting/exposition_formats/ (text 0.0.4).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tokenpulse.core.kafka_writer import STUCK_AFTER_S

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
        lines += family(name, kind, help_text, [({}, value)])
    return "\n".join(lines) + "\n"


# --- the main collector ------------------------------------------------------------------

Sample = tuple[dict[str, str], float]


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family in text format: HELP, TYPE, then one line per labelled sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class IngestStatsLike(Protocol):
    records: int
    spans: int
    dead_letters: int
    ignored: int


class IngestLike(Protocol):
    stats: IngestStatsLike


TRANSPORTS = ("http", "grpc", "kafka")
OUTCOMES = ("accepted", "rejected", "ignored")


class CollectorMetrics:
    """The main collector's counters, shared by its HTTP and gRPC servers (many threads)
    and its Kafka inputs. Every update takes one lock, so a scrape never sees half of one.

    Spans count once their request is answered (written and acknowledged by Kafka); the
    Kafka inputs keep their own per-thread stats, read at scrape time (watch_ingests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: Counter[tuple[str, str]] = Counter()     # (transport, outcome)
        self._requests: Counter[tuple[str, str]] = Counter()  # (transport, status code)
        self._dead_letters: Counter[str] = Counter()
        self._write_failures: Counter[str] = Counter()
        self._busy: Counter[str] = Counter()
        self._tls_failures = 0
        self._ingests: Sequence[IngestLike] = ()

    def spans(self, transport: str, *, accepted: int, rejected: int, ignored: int) -> None:
        with self._lock:
            self._spans[transport, "accepted"] += accepted
            self._spans[transport, "rejected"] += rejected
            self._spans[transport, "ignored"] += ignored
            self._dead_letters[transport] += rejected  # each rejected span is one dead letter

    def request(self, transport: str, code: int | str) -> None:
        with self._lock:
            self._requests[transport, str(code)] += 1

    def write_failed(self, transport: str) -> None:
        with self._lock:
            self._write_failures[transport] += 1

    def refused_busy(self, transport: str) -> None:
        with self._lock:
            self._busy[transport] += 1

    def tls_handshake_failed(self) -> None:
        with self._lock:
            self._tls_failures += 1

    def watch_ingests(self, ingests: Sequence[IngestLike]) -> None:
        """Report these Kafka input threads' stats under transport="kafka"."""
        with self._lock:
            self._ingests = tuple(ingests)

    def render(self, *, in_flight: int, max_in_flight: int | None, board_version: int | None = None,
               open_sessions: int | None = None, producer_rebuilds: int | None = None) -> str:
        with self._lock:
            spans, requests = Counter(self._spans), Counter(self._requests)
            dead, failures, busy = Counter(self._dead_letters), Counter(self._write_failures), Counter(self._busy)
            tls_failures, ingests = self._tls_failures, self._ingests
        for ingest in ingests:  # one writer thread each; reading its ints is safe
            st = ingest.stats
            spans["kafka", "accepted"] += st.spans
            spans["kafka", "rejected"] += st.dead_letters  # an undecodable record counts as one
            spans["kafka", "ignored"] += st.ignored
            dead["kafka"] += st.dead_letters
        lines = family("tokenpulse_collector_spans_total", "counter",
                       "Spans received, by transport and outcome (accepted LLM spans, rejected to the "
                       "dead-letter topic, ignored non-LLM spans), counted once Kafka acknowledged them.",
                       [({"transport": t, "outcome": o}, spans[t, o]) for t in TRANSPORTS for o in OUTCOMES])
        lines += family("tokenpulse_collector_export_requests_total", "counter",
                        "Export requests answered, by transport and status (HTTP status code, or gRPC status name).",
                        [({"transport": t, "code": c}, n) for (t, c), n in sorted(requests.items())])
        lines += family("tokenpulse_collector_dead_letters_total", "counter",
                        "Dead letters written to the dead-letter topic, by transport.",
                        [({"transport": t}, dead[t]) for t in TRANSPORTS])
        lines += family("tokenpulse_collector_kafka_write_failures_total", "counter",
                        "Writes Kafka did not acknowledge in time (answered 503 / UNAVAILABLE, or re-read).",
                        [({"transport": t}, failures[t]) for t in TRANSPORTS])
        lines += family("tokenpulse_collector_busy_refusals_total", "counter",
                        "Export requests refused because max_inflight_requests were already in flight.",
                        [({"transport": t}, busy[t]) for t in ("http", "grpc")])
        lines += family("tokenpulse_collector_inflight_requests", "gauge",
                        "Export requests being decoded, mapped or written now (HTTP and gRPC).", [({}, in_flight)])
        if max_in_flight is not None:
            lines += family("tokenpulse_collector_max_inflight_requests", "gauge",
                            "The in-flight bound (max_inflight_requests).", [({}, max_in_flight)])
        lines += family("tokenpulse_collector_tls_handshake_failures_total", "counter",
                        "HTTP connections closed because the TLS handshake failed (e.g. plain HTTP).",
                        [({}, tls_failures)])
        if producer_rebuilds is not None:
            lines += family("tokenpulse_collector_kafka_producer_rebuilds_total", "counter",
                            "Kafka producers replaced because a broker was reachable but nothing was "
                            f"acknowledged for {STUCK_AFTER_S:.0f} s (a wedged librdkafka producer).", [({}, producer_rebuilds)])
        if board_version is not None:
            lines += family("tokenpulse_collector_breaker_board_version", "gauge",
                            "Version of the circuit breaker board (changes with every stop or resolve).",
                            [({}, board_version)])
        if open_sessions is not None:
            lines += family("tokenpulse_collector_breaker_open_sessions", "gauge",
                            "Agent sessions currently told to stop, all tenants.", [({}, open_sessions)])
        return "\n".join(lines) + "\n"
