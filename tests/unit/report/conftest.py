"""The report's chDB fixtures (testkit/report_fixtures.py)."""

from testkit.report_fixtures import empty_store, report_query, report_store  # noqa: F401
