"""The unit tier is hermetic: no test here starts a process (a JVM, a browser, a child Python,
openssl); such tests belong in tests/component. Enforced below, per test phase.

`store` (testkit/store.py): a real ClickHouse engine, chDB in memory, with every migration applied."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
from testkit.store import store  # noqa: F401


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
