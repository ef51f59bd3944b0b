"""The one registry of Kafka topics. Nothing else in the code spells a topic name.

Names follow `tokenpulse.<entity>.<stage>.v<N>`: dots and hyphens only, because Kafka
treats `.` and `_` as colliding in metric names.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    description: str
    retention_ms: int = 7 * 24 * 3600 * 1000
    cleanup_policy: str = "delete"


# Validated TokenSpan records (and watermark heartbeats) from the collectors.
# Keyed by tenant + session so one agent session's calls stay in order.
SPANS = Topic("tokenpulse.spans.raw.v1", 4, "TokenSpan events from collectors, plus heartbeats")
# Spans the Flink job has priced and deduplicated; the source of the raw ClickHouse table.
PRICED_SPANS = Topic("tokenpulse.spans.priced.v1", 4, "spans with cost, deduplicated, late flag")
# Closed 1-minute tumbling windows of spend.
ROLLUPS_1M = Topic("tokenpulse.spend.rollup-1m.v1", 4, "1-minute spend rollups from Flink")
# Anything that could not be accepted, with the reason. Never silently dropped.
DEAD_LETTERS = Topic("tokenpulse.spans.dead-letter.v1", 1, "rejected spans with reason", 30 * 24 * 3600 * 1000)

# Alert states (open / resolved), keyed by dedupe_key. Compacted as well as time-limited:
# the newest state per incident survives, so a reader from the start (the collector's
# circuit breaker board) rebuilds the set of open incidents.
ALERTS = Topic("tokenpulse.alerts.v1", 2, "alert open/resolved events keyed by dedupe key",
               cleanup_policy="compact,delete")
# One record per (alert state, hook) delivery attempt series: delivered or failed.
ALERT_DISPATCHES = Topic("tokenpulse.alerts.dispatches.v1", 1, "hook delivery outcomes")

# Outcome events (schemas/outcomes.py) from apps, keyed by tenant + outcome_id; the loader
# writes them to `outcomes`, where a re-sent outcome replaces itself.
OUTCOMES = Topic("tokenpulse.outcomes.raw.v1", 2, "OutcomeEvent records from apps (POST /v1/outcomes)")

ALL_TOPICS: tuple[Topic, ...] = (SPANS, PRICED_SPANS, ROLLUPS_1M, DEAD_LETTERS, ALERTS, ALERT_DISPATCHES, OUTCOMES)
