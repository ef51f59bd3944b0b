"""`store`: a real ClickHouse engine (chDB, in memory) with every migration applied, one
database per test module so modules cannot see each other's rows. A fixture of the unit and
component tiers (imported by their conftest.py files)."""

from __future__ import annotations

import uuid

import clickhouse_connect
import pytest

from tokenpulse.loader.migrations import migrate_up


@pytest.fixture(scope="module")
def store(request):
    db = f"{request.module.__name__.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"
    bootstrap = clickhouse_connect.get_client(dsn="chdb://:memory:")  # keeps the in-memory engine alive
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client = clickhouse_connect.get_client(dsn="chdb://:memory:", database=db)
    migrate_up(client)
    yield client
    client.close()
    bootstrap.command(f"DROP DATABASE IF EXISTS {db}")
    bootstrap.close()
