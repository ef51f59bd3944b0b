"""The unit tier is hermetic: no test here starts a process (a JVM, a browser, a child Python,
openssl); such tests belong in tests/component. Enforced below, per test phase.

`store`: a real ClickHouse engine (chDB, in memory) with every migration applied, one
database per test module so modules cannot see each other's rows."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

import clickhouse_connect
import pytest

from tokenpulse.loader.migrations import migrate_up


class ChildProcessInUnitTier(AssertionError):
    pass


@contextlib.contextmanager
def _no_child_processes(nodeid: str):
    def refuse(*args, **kwargs):
        raise ChildProcessInUnitTier(f"{nodeid} starts a process ({args[1] if len(args) > 1 else args}): the unit "
                                     "tier is hermetic, move the test to tests/component")

    saved = subprocess.Popen.__init__, os.fork, os.posix_spawn, os.posix_spawnp
    subprocess.Popen.__init__ = refuse
    os.fork = os.posix_spawn = os.posix_spawnp = refuse
    try:
        yield
    finally:
        subprocess.Popen.__init__, os.fork, os.posix_spawn, os.posix_spawnp = saved


# runtest hooks of a conftest apply to the tests under its folder only, so the component and
# integration tiers (run in the same session or not) are untouched.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _no_child_processes(item.nodeid):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _no_child_processes(item.nodeid):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    with _no_child_processes(item.nodeid):
        yield


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
