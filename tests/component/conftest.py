"""The component tier: tests that start real processes (a JVM, Chromium, a child Python, the
stack's supervisor) or compile code, but no Kafka/Flink/loader stack (that is tests/integration).
Each runs in seconds; `tests/run_tiers.sh` runs this tier after the hermetic unit tier."""

from testkit.report_fixtures import empty_store, report_query, report_store  # noqa: F401
