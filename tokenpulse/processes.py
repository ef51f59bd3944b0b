"""Process supervision, once, for the local stack (stack.py), the Flink cluster
(flink_cluster.py) and the Kafka cluster (kafka_cluster.py):

    spawn()               start a command in its own session (so its whole group can be stopped),
                          stdout+stderr to a log file, its pid in a pid file
    owned_pid()           the pid in a pid file, if that process still runs and is ours
    wait_until()          poll a readiness check until it holds, a watched process dies, or time runs out
    stop_process_group()  SIGTERM (or any signal) a process group and wait; SIGKILL after a timeout
    port_open(), http_ok()  the readiness probes
    announce_ready()      called by a supervised service once it is ready: the supervisor reads
                          readiness from the file it named, not from log text

Standard library only: the services import announce_ready() from here.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
READY_FILE_ENV = "TOKENPULSE_READY_FILE"


class NotReady(RuntimeError):
    """wait_until() gave up: the check did not hold in time, or a watched process exited."""


# --- probes -----------------------------------------------------------------------------------
def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    with socket.socket() as s:
        s.settimeout(timeout_s)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status == 200
    except OSError:
        return False


# --- waiting ----------------------------------------------------------------------------------
def wait_until(check: Callable[[], bool], *, what: str, timeout_s: float, interval_s: float = 0.3,
               give_up: Callable[[], str | None] = lambda: None, error: type[Exception] = NotReady) -> float:
    """Poll `check` until it holds; returns the seconds waited. `give_up` names a reason to stop
    waiting at once (e.g. `exited(proc, name)`); the error says `what` was awaited and why not."""
    started = time.monotonic()
    deadline = started + timeout_s
    while not check():
        reason = give_up()
        if reason is not None:
            raise error(f"{reason} while waiting for {what}")
        if time.monotonic() > deadline:
            raise error(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)
    return time.monotonic() - started


def exited(proc: subprocess.Popen, name: str, details: Callable[[], str] = lambda: "") -> Callable[[], str | None]:
    """A `give_up` for wait_until(): the process has exited (with its code, and `details()`)."""
    def reason() -> str | None:
        if proc.poll() is None:
            return None
        more = details()
        return f"{name} exited with code {proc.returncode}" + (f"; {more}" if more else "")
    return reason


def first_of(give_ups: Iterable[Callable[[], str | None]]) -> Callable[[], str | None]:
    """A `give_up` for wait_until() from several: the first reason any of them has (e.g. one
    `exited(...)` per process started together)."""
    checks = list(give_ups)

    def reason() -> str | None:
        return next((why for check in checks if (why := check())), None)
    return reason


# --- processes --------------------------------------------------------------------------------
def spawn(command: list[str], *, log_path: Path, pid_file: Path, cwd: Path, env: Mapping[str, str] | None = None,
          append_log: bool = False, marker: str | None = None) -> subprocess.Popen:
    """Start `command` in a session of its own (stopping the group stops its children, a JVM
    under a shell script or PyFlink's included), no stdin, output into `log_path` (appended
    after a header line, or a fresh file). `pid_file` gets its pid and a marker its command
    line will hold (default: the last argument), which owned_pid() checks against pid reuse."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a" if append_log else "w") as logfile:
        if append_log:
            logfile.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n")
            logfile.flush()
        proc = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None, start_new_session=True, cwd=cwd)
    pid_file.write_text(f"{proc.pid}\n{marker if marker is not None else command[-1]}\n")
    return proc


def owned_pid(pid_file: Path, marker: bytes | None = None) -> int | None:
    """The pid recorded in `pid_file` if that process still runs and is ours: not a zombie we
    started and have not reaped yet, and not a recycled pid (its command line holds `marker`,
    by default the one spawn() wrote beside the pid)."""
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if marker is None and len(lines) > 1 and lines[1]:
        marker = lines[1].encode()
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return None
    except ChildProcessError:
        pass  # not our child: nothing to reap
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if marker is not None and marker not in cmdline:
            return None
    except FileNotFoundError:
        return None
    except OSError:
        pass  # no /proc: trust the pid file
    return pid


def signal_group(pid: int, sig: signal.Signals) -> bool:
    """Send `sig` to the process group led by `pid`; False if it is gone."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent reaps it


def _group_gone(pid: int) -> bool:
    _reap(pid)  # if we started it, it stays a zombie (and "alive") until reaped
    return not signal_group(pid, 0)


def stop_process_group(pid: int, name: str, sig: signal.Signals = signal.SIGTERM,
                       timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Signal the process group led by `pid` and wait until it is gone (SIGKILL after
    `timeout_s`). False if it was already gone."""
    if not signal_group(pid, sig):
        return False
    try:
        wait_until(lambda: _group_gone(pid), what=f"{name} to stop", timeout_s=timeout_s, interval_s=0.2)
    except NotReady:
        log.warning("%s did not stop within %.0f s; killing it", name, timeout_s)
        signal_group(pid, signal.SIGKILL)
    return True


# --- readiness, told by the service itself ------------------------------------------------------
def ready_file_names(path: Path, pid: int) -> bool:
    """The readiness check of a service started with READY_FILE_ENV=path: it has announced
    itself, as this very process (a file left by an earlier run names another pid)."""
    try:
        return path.read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


def announce_ready() -> None:
    """Tell the supervisor that started this process that it is ready: write this process's pid
    into the file READY_FILE_ENV names (atomically). Nothing to do when no supervisor asked."""
    target = os.environ.get(READY_FILE_ENV)
    if not target:
        return
    path = Path(target)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, path)
