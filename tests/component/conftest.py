"""The component tier, between the hermetic unit tier and the stack of tests/integration:
tests that start real processes (a JVM, Chromium, a child Python, the stack's supervisor) or
compile code, and the long runs that are hermetic but take 10 s and more each (the collector's
fuzz run, the rollup property test, the generated pricing SQL against chDB, the detection
quality run). No Kafka/Flink/loader stack. `tests/run_tiers.sh` runs it after the unit tier."""

from testkit.report_fixtures import empty_store, report_query, report_store  # noqa: F401
from testkit.store import store  # noqa: F401
