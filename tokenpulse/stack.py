"""Start, watch and stop the local stack as plain processes (no containers).

    kafka          Apache Kafka broker (KRaft, one node) from the Maven jars
    loader         Kafka -> ClickHouse (owns the embedded chDB store, serves `tokenpulse sql`)
    flink-job      the PyFlink cost-rollup job in a local MiniCluster
    loop-detector  the PyFlink runaway-loop detection job (its own MiniCluster)
    alerts         the alert dispatcher (alerts topic -> webhook / Slack / PagerDuty hooks)
    insights       scheduled ClickHouse evaluations: budgets and burn rate, growth (alerts -> Kafka)
    collector      the OTLP/HTTP receiver (and the circuit breaker board)

Each runs in its own process group with a pid file under <state_dir>/pids and a log under
<state_dir>/logs, so `tokenpulse down` stops the whole group (PyFlink's JVM included) and
leaves no orphans.
"""

from __future__ import annotations

import logging
import os
import string
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .jars import ensure_jars
from .kafka_admin import apply_topics, broker_ready
from .processes import (
    READY_FILE_ENV,
    NotReady,
    exited,
    http_ok,
    owned_pid,
    port_open,
    ready_file_names,
    spawn,
    stop_process_group,
    wait_until,
)
from .settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

# The demo hooks file signs webhooks with a public demo secret (like the demo API keys);
# set the variable yourself to override it, and use your own hooks file in production.
DEMO_ENV_DEFAULTS = {"TOKENPULSE_DEMO_HOOK_SECRET": "demo-hook-secret"}


def dispatcher_environ() -> dict[str, str]:
    return {**DEMO_ENV_DEFAULTS, **os.environ}


class StackError(RuntimeError):
    pass


@dataclass
class Service:
    """One supervised process. `ready` probes a port or a health endpoint; None means the
    service announces itself (processes.announce_ready(), into the file READY_FILE_ENV names)."""
    name: str
    command: list[str]
    ready_timeout_s: float
    ready: Callable[[], bool] | None = None
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None
    env: dict[str, str] | None = None


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = settings.paths
        for d in (self.paths.logs, self.paths.pids):
            d.mkdir(parents=True, exist_ok=True)

    # --- the services -------------------------------------------------------------------
    def service(self, name: str) -> Service:
        """One of `services()` by name (e.g. to start it again after a `stop`)."""
        return next(s for s in self.services() if s.name == name)

    def services(self) -> list[Service]:
        s, py = self.settings, sys.executable
        out: list[Service] = []
        if s.kafka.run_local_broker:
            host, port = self._kafka_host_port()
            out.append(Service("kafka", self._kafka_command(), 90,
                               ready=lambda: port_open(host, port) and broker_ready(s.kafka),
                               prepare=self._prepare_kafka, after_ready=lambda: apply_topics(s.kafka)))
        # The embedded store's loader answers queries: its health endpoint is the check.
        # Against a ClickHouse server it serves nothing and announces itself once consuming.
        loader_health = f"http://{s.loader.query_host}:{s.loader.query_port}/health"
        out.append(Service("loader", [py, "-m", "tokenpulse.loader"], 60,
                           ready=(lambda: http_ok(loader_health)) if s.clickhouse.is_embedded(self.paths) else None))
        # The MiniCluster's own JVM log (task failures, restarts) goes beside ours. The jobs
        # announce themselves once Flink has accepted them (job_runtime.run_to_end).
        flink_logs = self.paths.logs / "flink"
        out.append(Service("flink-job", [py, "-m", "tokenpulse.stream_jobs.cost_rollup"], 180,
                           prepare=lambda: flink_logs.mkdir(parents=True, exist_ok=True),
                           env={"FLINK_LOG_DIR": str(flink_logs)}))
        out.append(Service("loop-detector", [py, "-m", "tokenpulse.stream_jobs.loop_detection"], 180,
                           prepare=lambda: flink_logs.mkdir(parents=True, exist_ok=True),
                           env={"FLINK_LOG_DIR": str(flink_logs)}))
        out.append(Service("alerts", [py, "-m", "tokenpulse.alerts"], 60, env=dispatcher_environ()))
        out.append(Service("insights", [py, "-m", "tokenpulse.insights"], 60))
        out.append(Service("collector", [py, "-m", "tokenpulse.collectors"], 30,
                           ready=lambda: http_ok(f"http://{s.collector.host}:{s.collector.port}/health")))
        return out

    def _kafka_host_port(self) -> tuple[str, int]:
        return self.settings.kafka.bootstrap_addresses()[0]

    def _kafka_command(self) -> list[str]:
        k = self.settings.kafka
        return ["java", f"-Xmx{k.broker_heap}", f"-Xms{k.broker_heap}",
                f"-Dlog4j2.configurationFile={REPO_ROOT / 'infra' / 'kafka' / 'log4j2.yaml'}",
                "-cp", f"{self.paths.kafka_jars}/*", "kafka.Kafka", str(self._kafka_dir() / "server.properties")]

    def _kafka_dir(self) -> Path:
        return self.paths.state_dir / "kafka"

    def _prepare_kafka(self) -> None:
        ensure_jars(self.paths)
        host, port = self._kafka_host_port()
        if port_open(host, port):
            raise StackError(
                f"port {port} is already in use, but not by a tokenpulse broker. Stop that process, or use it: "
                "TOKENPULSE_KAFKA_RUN_LOCAL_BROKER=false TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS=host:port"
            )
        kdir = self._kafka_dir()
        data = kdir / "data"
        template = string.Template((REPO_ROOT / "infra" / "kafka" / "server.properties.template").read_text())
        kdir.mkdir(parents=True, exist_ok=True)
        (kdir / "server.properties").write_text(template.substitute(
            broker_port=port, controller_port=self.settings.kafka.controller_port, log_dirs=data))
        if not (data / "meta.properties").exists():
            cp = f"{self.paths.kafka_jars}/*"
            cluster_id = subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
                                        capture_output=True, text=True, check=True).stdout.strip()
            subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                            "-c", str(kdir / "server.properties")], capture_output=True, text=True, check=True)

    # --- process bookkeeping --------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.paths.logs / f"{name}.log"

    def _rotate_log(self, name: str, keep: int = 3) -> None:
        """Keep the logs of the last `keep` runs (<name>.log.1 is the previous one): a restarted
        service must not erase why it went down. Readiness checks read the fresh log only."""
        path = self.log_path(name)
        if not path.exists():
            return
        for n in range(keep, 1, -1):
            older = path.with_name(f"{path.name}.{n - 1}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{n}"))
        path.replace(path.with_name(f"{path.name}.1"))

    def _pid_path(self, name: str) -> Path:
        return self.paths.pids / f"{name}.pid"

    def _ready_path(self, name: str) -> Path:
        return self.paths.pids / f"{name}.ready"

    def pid(self, name: str) -> int | None:
        """The service's pid while it runs (a recycled pid does not count: processes.owned_pid)."""
        return owned_pid(self._pid_path(name))

    def start(self, service: Service, progress: Callable[[str], None] = lambda _: None) -> None:
        if self.pid(service.name):
            progress(f"{service.name} already running")
            return
        if service.prepare:
            progress(f"preparing {service.name}")
            service.prepare()
        self._rotate_log(service.name)
        ready_file = self._ready_path(service.name)
        ready_file.unlink(missing_ok=True)
        env = {**os.environ, **(service.env or {}), READY_FILE_ENV: str(ready_file)}
        log_path = self.log_path(service.name)
        proc = spawn(service.command, log_path=log_path, pid_file=self._pid_path(service.name), cwd=REPO_ROOT, env=env)
        progress(f"waiting for {service.name}")
        ready = service.ready or (lambda: ready_file_names(ready_file, proc.pid))
        try:
            wait_until(ready, what=service.name, timeout_s=service.ready_timeout_s,
                       give_up=exited(proc, service.name))
        except NotReady as e:
            raise StackError(f"{e}; last lines of {log_path}:\n{self.tail(service.name)}") from None
        if service.after_ready:
            service.after_ready()
        progress(f"{service.name} ready (pid {proc.pid})")

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, name: str) -> bool:
        pid = self.pid(name)
        self._pid_path(name).unlink(missing_ok=True)
        self._ready_path(name).unlink(missing_ok=True)
        return pid is not None and stop_process_group(pid, name)

    # --- whole-stack operations ------------------------------------------------------------
    def selected(self, only: list[str] | None) -> list[Service]:
        services = self.services()
        unknown = set(only or ()) - {s.name for s in services}
        if unknown:
            raise StackError(f"unknown service(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(s.name for s in services)}")
        return [s for s in services if not only or s.name in only]

    def up(self, progress: Callable[[str], None] = lambda _: None, only: list[str] | None = None) -> None:
        for service in self.selected(only):
            self.start(service, progress)

    def down(self, progress: Callable[[str], None] = lambda _: None, only: list[str] | None = None) -> None:
        for service in reversed(self.selected(only)):
            if self.stop(service.name):
                progress(f"stopped {service.name}")

    def status(self) -> dict[str, int | None]:
        return {s.name: self.pid(s.name) for s in self.services()}
