"""The local stack's process bookkeeping, with tiny real processes instead of the services:
a restarted service keeps its previous logs, and its readiness check only sees the new log."""

import sys

import pytest

from tokenpulse.settings import Settings
from tokenpulse.stack import Service, Stack, StackError, _log_contains


def _echo_service(stack: Stack, word: str) -> Service:
    log = stack.log_path("echo")
    return Service(name="echo", ready_timeout_s=20,
                   command=[sys.executable, "-c", f"import time; print({word!r}, flush=True); time.sleep(60)"],
                   ready=lambda: _log_contains(log, word))


def test_restart_keeps_the_previous_logs_and_waits_on_the_new_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENPULSE_PATHS_STATE_DIR", str(tmp_path))
    stack = Stack(Settings())
    stack.paths.logs.mkdir(parents=True, exist_ok=True)
    stack.paths.pids.mkdir(parents=True, exist_ok=True)
    try:
        for run in range(5):
            stack.start(_echo_service(stack, f"run-{run}"))
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
    stack.paths.logs.mkdir(parents=True, exist_ok=True)
    stack.paths.pids.mkdir(parents=True, exist_ok=True)
    stack.log_path("echo").write_text("ready\n")  # an earlier run's log
    silent = Service(name="echo", ready_timeout_s=1.5, ready=lambda: _log_contains(stack.log_path("echo"), "ready"),
                     command=[sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StackError, match="not ready"):
            stack.start(silent)
    finally:
        stack.stop("echo")


def test_a_pid_file_counts_only_while_its_process_runs_and_is_ours(tmp_path):
    import subprocess
    import time

    from tokenpulse.stack import owned_pid

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
