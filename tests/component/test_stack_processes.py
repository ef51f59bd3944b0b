"""The local stack's process bookkeeping, with tiny real processes instead of the services:
a restarted service keeps its previous logs, readiness is what the new process announces,
and a pid file counts only while its own process runs."""

import sys
import time

import pytest

from tokenpulse.processes import owned_pid, spawn
from tokenpulse.settings import Settings
from tokenpulse.stack import Service, Stack, StackError


def _echo_service(word: str) -> Service:
    """Prints a word, then announces itself ready (processes.announce_ready) and sleeps."""
    script = (f"import time; print({word!r}, flush=True); from tokenpulse.processes import announce_ready; "
              "announce_ready(); time.sleep(60)")
    return Service(name="echo", ready_timeout_s=20, command=[sys.executable, "-c", script])


def test_restart_keeps_the_previous_logs_and_waits_on_the_new_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENPULSE_PATHS_STATE_DIR", str(tmp_path))
    stack = Stack(Settings())
    stack.paths.logs.mkdir(parents=True, exist_ok=True)
    stack.paths.pids.mkdir(parents=True, exist_ok=True)
    try:
        for run in range(5):
            stack.start(_echo_service(f"run-{run}"))
            stack.stop("echo")
        log = stack.log_path("echo")
        assert "run-4" in log.read_text()
        kept = [log.with_name(f"echo.log.{n}").read_text().strip() for n in (1, 2, 3)]
        assert kept == ["run-3", "run-2", "run-1"]
        assert not log.with_name("echo.log.4").exists()
    finally:
        stack.stop("echo")


def test_readiness_is_not_satisfied_by_the_previous_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENPULSE_PATHS_STATE_DIR", str(tmp_path))
    stack = Stack(Settings())
    stack.start(_echo_service("first"))
    first_pid = stack.pid("echo")
    ready_file = stack.paths.pids / "echo.ready"
    assert ready_file.read_text() == str(first_pid)
    stack.stop("echo")
    ready_file.write_text(str(first_pid))  # as if the earlier run had not cleaned up
    silent = Service(name="echo", ready_timeout_s=1.5, command=[sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StackError, match="echo not ready after 2 s; last lines of"):
            stack.start(silent)
    finally:
        stack.stop("echo")


def test_a_service_that_dies_while_starting_says_so_with_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENPULSE_PATHS_STATE_DIR", str(tmp_path))
    stack = Stack(Settings())
    dying = Service(name="dying", ready_timeout_s=20,
                    command=[sys.executable, "-c", "import sys; print('no config file', flush=True); sys.exit(3)"])
    with pytest.raises(StackError, match=r"(?s)dying exited with code 3 while waiting for dying.*no config file"):
        stack.start(dying)


def test_a_pid_file_counts_only_while_its_process_runs_and_is_ours(tmp_path):
    import subprocess
    import time

    pid_file = tmp_path / "x.pid"
    assert owned_pid(pid_file, b"sleep") is None  # no file
    proc = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)  # tokenpulse-marker"],
                            stdout=subprocess.PIPE)
    pid_file.write_text(str(proc.pid))
    try:
        proc.stdout.readline()  # exec'd: until then /proc shows the forking parent's command line
        assert owned_pid(pid_file, b"tokenpulse-marker") == proc.pid
        assert owned_pid(pid_file, b"kafka.Kafka") is None  # a recycled pid runs something else
    finally:
        proc.kill()
        time.sleep(0.2)
    assert owned_pid(pid_file, b"tokenpulse-marker") is None  # exited: a zombie of ours, now reaped
    pid_file.write_text("not a pid")
    assert owned_pid(pid_file, b"tokenpulse-marker") is None


def test_spawn_records_the_marker_that_owned_pid_checks(tmp_path):
    pid_file = tmp_path / "p.pid"
    proc = spawn([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)", "tokenpulse-probe"],
                 log_path=tmp_path / "p.log", pid_file=pid_file, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while "up" not in (tmp_path / "p.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # exec'd and running
        assert pid_file.read_text().splitlines() == [str(proc.pid), "tokenpulse-probe"]
        assert owned_pid(pid_file) == proc.pid
        pid_file.write_text(f"{proc.pid}\nkafka.Kafka\n")  # the pid now names another command
        assert owned_pid(pid_file) is None
    finally:
        proc.kill()
        proc.wait()
