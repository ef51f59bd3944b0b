"""processes.py without starting anything: wait_until's three outcomes, the readiness file, and
owned_pid against this test process's own pid (the component tier starts real ones)."""

import os

import pytest

from tokenpulse.processes import (
    READY_FILE_ENV,
    NotReady,
    announce_ready,
    first_of,
    owned_pid,
    ready_file_names,
    wait_until,
)


def test_wait_until_returns_once_the_check_holds():
    calls = []
    waited = wait_until(lambda: calls.append(1) or len(calls) >= 3, what="three calls", timeout_s=5, interval_s=0.01)
    assert len(calls) == 3 and 0 <= waited < 5


def test_wait_until_gives_up_at_once_with_the_reason():
    with pytest.raises(NotReady, match="broker exited with code 1 while waiting for the broker"):
        wait_until(lambda: False, what="the broker", timeout_s=60, give_up=lambda: "broker exited with code 1")


def test_wait_until_times_out_with_the_callers_error():
    class ClusterError(RuntimeError):
        pass

    with pytest.raises(ClusterError, match="the REST API not ready after 0 s"):
        wait_until(lambda: False, what="the REST API", timeout_s=0.05, interval_s=0.01, error=ClusterError)


def test_first_of_gives_the_first_reason_any_check_has():
    states = {"node 1": None, "node 2": None, "node 3": None}
    one_died = first_of(lambda n=n: states[n] and f"{n} {states[n]}" for n in states)
    assert one_died() is None
    states["node 3"], states["node 2"] = "exited with code 137", "exited with code 1"
    assert one_died() == "node 2 exited with code 1"  # checked in the order given
    with pytest.raises(NotReady, match="node 2 exited with code 1 while waiting for the brokers"):
        wait_until(lambda: False, what="the brokers", timeout_s=60, give_up=one_died)


def test_a_service_announces_itself_with_its_own_pid(tmp_path, monkeypatch):
    ready = tmp_path / "svc.ready"
    announce_ready()  # started by no supervisor: nothing happens
    assert not ready.exists()
    monkeypatch.setenv(READY_FILE_ENV, str(ready))
    announce_ready()
    assert ready_file_names(ready, os.getpid())
    assert not ready_file_names(ready, os.getpid() + 1)  # a file left by another process does not count
    assert not ready_file_names(tmp_path / "missing.ready", os.getpid())


def test_owned_pid_checks_the_command_line(tmp_path):
    pid_file = tmp_path / "x.pid"
    assert owned_pid(pid_file) is None  # no file
    pid_file.write_text(f"{os.getpid()}\npytest\n")
    assert owned_pid(pid_file) == os.getpid()
    pid_file.write_text(f"{os.getpid()}\nkafka.Kafka\n")
    assert owned_pid(pid_file) is None  # a recycled pid: it runs something else
    assert owned_pid(pid_file, b"pytest") == os.getpid()  # an explicit marker wins over the file's
    pid_file.write_text("not a pid")
    assert owned_pid(pid_file) is None
