"""The unit tier's guard (tests/unit/conftest.py) refuses child processes."""

import os
import subprocess

import pytest


def test_starting_a_process_fails_a_unit_test():
    with pytest.raises(AssertionError, match="the unit tier is hermetic, move the test to tests/component"):
        subprocess.run(["true"], check=True)
    with pytest.raises(AssertionError, match="hermetic"):
        os.posix_spawn("/bin/true", ["true"], {})
