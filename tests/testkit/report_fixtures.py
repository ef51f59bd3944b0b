"""Fixtures of the report tests (unit and component tiers): chDB databases (in memory,
migrations applied), one seeded with report_data's workload, one empty. Imported by the tiers'
conftest.py files."""

from __future__ import annotations

import pytest

from testkit.report_data import new_store, seed
from tokenpulse.insights.runner import query_fn_for_client


@pytest.fixture(scope="session")
def report_store():
    """A migrated chDB database with the seeded data."""
    bootstrap, client, db = new_store("report")
    seed(client)
    yield client
    client.close()
    bootstrap.command(f"DROP DATABASE IF EXISTS {db}")
    bootstrap.close()


@pytest.fixture(scope="session")
def empty_store():
    """A migrated chDB database without rows: every chart must say there is no data."""
    bootstrap, client, db = new_store("report_empty")
    yield client
    client.close()
    bootstrap.command(f"DROP DATABASE IF EXISTS {db}")
    bootstrap.close()


@pytest.fixture(scope="session")
def report_query(report_store):
    return query_fn_for_client(report_store)
