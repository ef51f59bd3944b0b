"""A local standalone Flink session cluster, to run the stream jobs outside the MiniCluster.

    jobmanager       StandaloneSessionClusterEntrypoint (REST API + web UI on rest_port)
    taskmanager-N    TaskManagerRunner, `slots` task slots each (N = 1..taskmanagers)

Both come from the Flink distribution inside the PyFlink package (pyflink/bin, lib, opt), and
are started with its own scripts in the foreground (`jobmanager.sh start-foreground`,
`taskmanager.sh start-foreground`), each in its own process group, so one SIGTERM/SIGKILL
reaches the whole JVM. Everything lives under <state_dir>/flink-cluster/:

    conf/           config.yaml generated from infra/flink/config.yaml.template, log4j files
    lib/            the distribution's lib/ plus opt/flink-python (symlinks), for Python operators
    pids/           <process>.pid (ours) ; flink-pids/ (the Flink scripts' own bookkeeping)
    log/            <process>.log (stdout/stderr) and Flink's flink-*-<service>-*.log files
    checkpoints/    default checkpoint dir (the tokenpulse jobs set their own, see below)

Jobs are submitted with the Flink CLI (`bin/flink run -d -pym ...`), exactly as on any
cluster: the CLI starts the venv's Python to build the job graph and ships it to the
JobManager. The cost job is pure Flink SQL (runs in the JVM); the loop-detection job's
Python operators run in Python workers started by the TaskManagers with `python.executable`.

Note: the jobs keep choosing their checkpoint dir themselves (<state_dir>/flink/checkpoints/
state-v<N>), so a job submitted here resumes from the newest checkpoint the MiniCluster job
left there, and the other way round (same machine, same paths).

    python -m tokenpulse.flink_cluster up | status | submit cost_rollup | down
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from .jars import flink_connector_jar
from .processes import (
    NotReady,
    exited,
    first_of,
    owned_pid,
    port_open,
    signal_group,
    spawn,
    stop_process_group,
    wait_until,
)
from .settings import REPO_ROOT, FlinkClusterSettings, Settings

log = logging.getLogger(__name__)

TEMPLATE_DIR = REPO_ROOT / "infra" / "flink"
# Short names for the stream jobs; anything else is taken as a module or a stream_jobs/*.py path.
JOBS = {
    "cost_rollup": "tokenpulse.stream_jobs.cost_rollup",
    "loop_detection": "tokenpulse.stream_jobs.loop_detection",
}
# The CLI prints "Job has been submitted with JobID <id>"; the job programs log "job <id> running".
JOB_ID_RE = re.compile(r"(?:JobID|job) ([0-9a-f]{32})")
CLIENT_EXIT_GRACE_S = 5.0


class ClusterError(RuntimeError):
    pass


def flink_home() -> Path:
    """The Flink distribution shipped in the PyFlink package (bin/, conf/, lib/, opt/)."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def job_module(job: str) -> str:
    """'cost_rollup' | 'stream_jobs/cost_rollup.py' | 'tokenpulse.stream_jobs.cost_rollup' -> module."""
    if job in JOBS:
        return JOBS[job]
    if job.endswith(".py"):
        path = Path(job)
        if path.parent.name != "stream_jobs":
            raise ClusterError(f"{job}: only the modules under stream_jobs/ are known ({', '.join(JOBS)})")
        return f"tokenpulse.stream_jobs.{path.stem}"
    if re.fullmatch(r"[A-Za-z_][\w.]*", job):
        return job
    raise ClusterError(f"unknown job {job!r}: use one of {', '.join(JOBS)}, a stream_jobs/*.py path or a module")


class FlinkCluster:
    def __init__(self, settings: Settings, cluster: FlinkClusterSettings | None = None) -> None:
        self.settings = settings
        self.cluster = cluster or FlinkClusterSettings()
        self.home = flink_home()
        self.root = settings.paths.state_dir / "flink-cluster"
        self.conf_dir = self.root / "conf"
        self.log_dir = self.root / "log"
        self.pid_dir = self.root / "pids"
        self.lib_dir = self.root / "lib"
        self.last_submit_s: float | None = None  # `flink run` start -> job id printed
        self.last_running_s: float | None = None  # ... -> all tasks RUNNING, if seen while submitting

    # --- configuration ----------------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://{self.cluster.host}:{self.cluster.rest_port}"

    def write_config(self) -> Path:
        """Render conf/config.yaml from the template; copy the log4j files beside it."""
        c = self.cluster
        for d in (self.conf_dir, self.log_dir, self.pid_dir, self.root / "flink-pids", self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        shipped = yaml.safe_load((self.home / "conf" / "config.yaml").read_text()) or {}
        java_opts = shipped.get("env", {}).get("java", {}).get("opts", {}).get("all", "")
        text = string.Template((TEMPLATE_DIR / "config.yaml.template").read_text()).substitute(
            java_opts=java_opts, host=c.host, rpc_port=c.rpc_port, rest_port=c.rest_port, slots=c.slots,
            jobmanager_memory=c.jobmanager_memory, taskmanager_memory=c.taskmanager_memory,
            heartbeat_timeout_ms=c.heartbeat_timeout_ms, python=sys.executable, tmp_dir=self.root / "tmp",
            checkpoint_uri=(self.root / "checkpoints").resolve().as_uri(),
            savepoint_uri=(self.root / "savepoints").resolve().as_uri())
        (self.conf_dir / "config.yaml").write_text(text)
        for name in ("log4j-console.properties", "log4j-cli.properties"):
            shutil.copyfile(TEMPLATE_DIR / name, self.conf_dir / name)
        # The JobManager and TaskManagers need flink-python on their classpath for jobs with
        # Python operators (loop detection); PyFlink ships it in opt/, so lib/ here is the
        # shipped lib/ plus that jar (symlinks; FLINK_LIB_DIR points the scripts at it).
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        for jar in [*(self.home / "lib").glob("*.jar"), *(self.home / "opt").glob("flink-python-*.jar")]:
            link = self.lib_dir / jar.name
            if not link.exists():
                link.unlink(missing_ok=True)  # a dangling link from an older PyFlink
                link.symlink_to(jar)
        return self.conf_dir / "config.yaml"

    def flink_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, **(extra or {})}
        env.update(FLINK_CONF_DIR=str(self.conf_dir), FLINK_LIB_DIR=str(self.lib_dir),
                   FLINK_LOG_DIR=str(self.log_dir), FLINK_PID_DIR=str(self.root / "flink-pids"))
        return env

    # --- processes ----------------------------------------------------------------------------
    def process_names(self) -> list[str]:
        return ["jobmanager", *(f"taskmanager-{n}" for n in range(1, self.cluster.taskmanagers + 1))]

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        return owned_pid(self.pid_dir / f"{name}.pid")

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        # the marker: the start script's command line, and the JVM's it becomes, both name flink
        return spawn(command, log_path=self.log_path(name), pid_file=self.pid_dir / f"{name}.pid", cwd=self.root,
                     env=self.flink_env(), append_log=True, marker="flink")

    def _died(self, proc: subprocess.Popen, name: str):
        return exited(proc, name, lambda: f"see {self.log_dir}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        """Last lines of the process's stdout log and of Flink's own log for it."""
        service = "standalonesession" if name == "jobmanager" else "taskexecutor"
        out = []
        for path in [self.log_path(name), *sorted(self.log_dir.glob(f"flink-*-{service}-*.log"))]:
            try:
                out.append(f"== {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
            except FileNotFoundError:
                pass
        return "\n".join(out) or "(no log)"

    def start_jobmanager(self) -> float:
        if self.pid("jobmanager"):
            return 0.0
        c = self.cluster
        for port in (c.rest_port, c.rpc_port):
            if port_open(c.host, port):
                raise ClusterError(f"port {port} is in use by another process: stop it, or choose other ports "
                                   "(TOKENPULSE_FLINK_CLUSTER_REST_PORT / _RPC_PORT)")
        t0 = time.monotonic()
        proc = self._spawn("jobmanager", [str(self.home / "bin" / "jobmanager.sh"), "start-foreground"])
        wait_until(lambda: self._get_ok("/overview"), what="the JobManager's REST API", timeout_s=c.start_timeout_s,
                   give_up=self._died(proc, "jobmanager"), error=ClusterError)
        return time.monotonic() - t0

    def start_taskmanagers(self, numbers: list[int]) -> dict[str, float]:
        """Start TaskManagers side by side; returns seconds until each had registered."""
        t0 = time.monotonic()
        # A killed TaskManager stays listed until declared lost: wait for a new registration
        # (its RPC address changes), not just for the id. A TaskManager registers first and
        # reports its slots after, so it is ready once all its slots are registered too.
        before = {rid: address for rid, (address, _) in self.taskmanager_slots().items()}
        procs = {n: self._spawn(f"taskmanager-{n}", [str(self.home / "bin" / "taskmanager.sh"), "start-foreground",
                                                     "-D", f"taskmanager.resource-id={self.resource_id(n)}"])
                 for n in numbers if not self.pid(f"taskmanager-{n}")}
        took: dict[str, float] = {}

        def all_registered() -> bool:
            registered = self.taskmanager_slots()
            for n in procs:
                rid = self.resource_id(n)
                address, slots = registered.get(rid, (None, 0))
                if (f"taskmanager-{n}" not in took and address is not None and address != before.get(rid)
                        and slots >= self.cluster.slots):
                    took[f"taskmanager-{n}"] = time.monotonic() - t0
            return len(took) == len(procs)

        one_died = first_of(self._died(proc, f"taskmanager-{n}") for n, proc in procs.items())
        wait_until(all_registered, what="the TaskManagers to register", timeout_s=self.cluster.start_timeout_s,
                   give_up=one_died, error=ClusterError)
        return took

    def start_taskmanager(self, n: int) -> float:
        """(Re)start TaskManager n, e.g. after kill_taskmanager(n)."""
        return self.start_taskmanagers([n]).get(f"taskmanager-{n}", 0.0)

    def resource_id(self, n: int) -> str:
        return f"tokenpulse-tm-{n}"

    def up(self, progress: Callable[[str], None] = lambda _: None) -> dict[str, float]:
        """Start the JobManager, then the TaskManagers; returns seconds each took to be ready."""
        self.write_config()
        timings = {}
        try:
            progress(f"starting jobmanager (REST {self.rest_url})")
            timings["jobmanager"] = self.start_jobmanager()
            progress(f"jobmanager ready in {timings['jobmanager']:.1f} s; starting {self.cluster.taskmanagers} "
                     f"taskmanagers with {self.cluster.slots} slots each")
            timings.update(self.start_taskmanagers(list(range(1, self.cluster.taskmanagers + 1))))
            progress("taskmanagers registered: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()
                                                             if k.startswith("taskmanager")))
        except BaseException:
            self.down()
            raise
        return timings

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> bool:
        pid = self.pid(name)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        return pid is not None and stop_process_group(pid, name, sig)

    def kill_taskmanager(self, n: int) -> float:
        """SIGKILL TaskManager n (no shutdown hooks, as a crashed machine); returns the wall time."""
        name = f"taskmanager-{n}"
        pid = self.pid(name)
        if pid is None:
            raise ClusterError(f"{name} is not running")
        killed_at = time.time()
        self.stop(name, signal.SIGKILL)
        return killed_at

    def down(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """Stop TaskManagers first, then the JobManager (running jobs stop with them; their
        retained checkpoints stay)."""
        for name in reversed(self.process_names()):
            if self.stop(name):
                progress(f"stopped {name}")

    # --- REST API ---------------------------------------------------------------------------
    def rest(self, path: str, method: str = "GET", timeout_s: float = 5.0):
        req = urllib.request.Request(self.rest_url + path, method=method)
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def _get_ok(self, path: str) -> bool:
        try:
            self.rest(path, timeout_s=2)
            return True
        except (OSError, ValueError):
            return False

    def overview(self) -> dict:
        return self.rest("/overview")

    def registered_taskmanagers(self) -> list[str]:
        """Resource ids of the registered TaskManagers, in the REST API's order."""
        return list(self.taskmanager_slots())

    def taskmanager_slots(self) -> dict[str, tuple[str, int]]:
        """Registered TaskManagers: resource id -> (RPC address, slots registered so far)."""
        try:
            return {tm["id"]: (tm["path"], int(tm.get("slotsNumber", 0)))
                    for tm in self.rest("/taskmanagers")["taskmanagers"]}
        except (OSError, ValueError):
            return {}

    def jobs(self) -> list[dict]:
        """/jobs/overview: one dict per job (jid, name, state, start-time, duration, tasks)."""
        return self.rest("/jobs/overview")["jobs"]

    def job(self, job_id: str) -> dict:
        """/jobs/<id>: state, timestamps, vertices (with their read/write record counts)."""
        return self.rest(f"/jobs/{job_id}")

    def checkpoints(self, job_id: str) -> dict:
        return self.rest(f"/jobs/{job_id}/checkpoints")

    def job_metric(self, job_id: str, metric: str) -> float | None:
        rows = self.rest(f"/jobs/{job_id}/metrics?get={metric}")
        return float(rows[0]["value"]) if rows else None

    def taskmanagers_of(self, job_id: str) -> dict[str, list[str]]:
        """Which TaskManagers (resource ids) run which of the job's vertices right now."""
        out: dict[str, list[str]] = {}
        for v in self.job(job_id)["vertices"]:
            for tm in self.rest(f"/jobs/{job_id}/vertices/{v['id']}/taskmanagers")["taskmanagers"]:
                out.setdefault(tm["taskmanager-id"], []).append(v["name"])
        return out

    def all_tasks_running(self, job_id: str) -> bool:
        try:
            j = self.job(job_id)
        except (OSError, ValueError):
            return False
        return j["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in j["vertices"])

    def _job_ended(self, job_id: str, instead: str = "") -> Callable[[], str | None]:
        """A `give_up` for wait_until(): the job reached a terminal state."""
        def reason() -> str | None:
            state = self.job(job_id)["state"]
            if state in ("FAILED", "CANCELED", "FINISHED"):
                return f"job {job_id} is {state}{instead}; see {self.rest_url}/#/job/{job_id} and {self.log_dir}"
            return None
        return reason

    def wait_running(self, job_id: str, timeout_s: float = 180.0) -> float:
        """Wait until the job and every one of its tasks is RUNNING; returns seconds waited."""
        return wait_until(lambda: self.all_tasks_running(job_id), what=f"job {job_id} to run", timeout_s=timeout_s,
                          give_up=self._job_ended(job_id), error=ClusterError)

    def task_attempts(self, job_id: str) -> dict[tuple[str, int], tuple[int, str]]:
        """(vertex id, subtask) -> (attempt number, status) of every task of the job."""
        out = {}
        for v in self.job(job_id)["vertices"]:
            for t in self.rest(f"/jobs/{job_id}/vertices/{v['id']}")["subtasks"]:
                out[(v["id"], t["subtask"])] = (t["attempt"], t["status"])
        return out

    def wait_recovered(self, job_id: str, before: dict[tuple[str, int], tuple[int, str]],
                       timeout_s: float = 180.0) -> float:
        """After a failure: wait until every task runs again in a newer attempt than in `before`
        (task_attempts() taken before the failure); returns seconds waited."""
        def recovered() -> bool:
            try:
                now = self.task_attempts(job_id)
            except (OSError, ValueError, KeyError):
                return False
            return now.keys() == before.keys() and all(
                status == "RUNNING" and attempt > before[key][0] for key, (attempt, status) in now.items())

        return wait_until(recovered, what=f"job {job_id} to recover", timeout_s=timeout_s, interval_s=0.2,
                          give_up=self._job_ended(job_id, " instead of recovering"), error=ClusterError)

    def wait_checkpoint(self, job_id: str, timeout_s: float = 120.0) -> float:
        """Wait until the job completes one more checkpoint than it had; returns seconds waited."""
        before = self.checkpoints(job_id)["counts"]["completed"]
        return wait_until(lambda: self.checkpoints(job_id)["counts"]["completed"] > before,
                          what=f"a checkpoint of job {job_id}", timeout_s=timeout_s, error=ClusterError)

    def vertex_metric(self, job_id: str, prefix: str, metric: str) -> int:
        """A REST vertex metric (read-records, write-records, ...) summed over vertices named prefix*."""
        return sum(v["metrics"][metric] for v in self.job(job_id)["vertices"] if v["name"].startswith(prefix))

    def cancel(self, job_id: str, timeout_s: float = 60.0) -> None:
        self.rest(f"/jobs/{job_id}?mode=cancel", method="PATCH")
        wait_until(lambda: self.job(job_id)["state"] in ("CANCELED", "FAILED", "FINISHED"),
                   what=f"job {job_id} to be canceled", timeout_s=timeout_s, error=ClusterError)

    # --- submission ---------------------------------------------------------------------------
    def submit(self, job: str, extra_env: Mapping[str, str] | None = None, args: list[str] | None = None) -> str:
        """`flink run --detached` a stream job; returns its job id once the JobManager accepted it.

        The job reads its settings from the environment like everywhere else (extra_env on top
        of ours), e.g. TOKENPULSE_STREAM_CONSUMER_GROUP. The CLI's output goes to
        log/submit-<job>.log."""
        module = job_module(job)
        command = [str(self.home / "bin" / "flink"), "run", "--detached", "-pym", module,
                   "-pyclientexec", sys.executable, "-pyexec", sys.executable,
                   "-j", str(flink_connector_jar(self.settings.paths)), *(args or [])]
        log.info("submitting %s: %s", module, " ".join(command))
        out_path = self.log_path(f"submit-{module.rsplit('.', 1)[-1]}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(out_path, "w") as out:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            # the job's paths follow this cluster's settings even if they did not come from the environment
            paths = {"TOKENPULSE_PATHS_STATE_DIR": str(self.settings.paths.state_dir),
                     "TOKENPULSE_PATHS_CACHE_DIR": str(self.settings.paths.cache_dir)}
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.flink_env({**paths, **(extra_env or {})}), cwd=REPO_ROOT,
                                    start_new_session=True)
        t0 = time.monotonic()
        found: list[str] = []
        self.last_submit_s = self.last_running_s = None

        def submitted() -> bool:
            found.extend(JOB_ID_RE.findall(out_path.read_text(errors="replace"))[:1])
            return bool(found)

        def client_done() -> bool:
            if self.last_running_s is None and self.all_tasks_running(found[0]):
                self.last_running_s = time.monotonic() - t0
            return proc.poll() is not None

        try:
            wait_until(submitted, what="`flink run` to submit a job", timeout_s=self.cluster.submit_timeout_s,
                       give_up=exited(proc, "`flink run`", lambda: f"output in {out_path}:\n"
                                                                   f"{out_path.read_text(errors='replace')[-4000:]}"),
                       error=ClusterError)
            self.last_submit_s = time.monotonic() - t0
            # In detached mode the CLI returns once the job is submitted, unless the program
            # itself waits for its job to end (TableResult.wait()): then the client has done its
            # part and is stopped; the job belongs to the cluster and keeps running.
            try:
                wait_until(client_done, what="the `flink run` client to exit", timeout_s=CLIENT_EXIT_GRACE_S,
                           interval_s=0.2)
            except NotReady:
                log.info("the job program still waits for its job after submitting it; stopping the client")
        finally:
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    signal_group(proc.pid, signal.SIGKILL)
                    proc.wait()
        return found[0]

    def status(self) -> dict:
        out: dict = {"processes": {n: self.pid(n) for n in self.process_names()}, "rest": self.rest_url}
        try:
            out["overview"] = self.overview()
            out["jobs"] = self.jobs()
        except (OSError, ValueError):
            out["overview"] = None
        return out


# --- CLI --------------------------------------------------------------------------------------
EPILOG = """\
typical session (the rest of the stack, Kafka included, runs as usual: `tokenpulse up`):
  tokenpulse down --only flink-job                 stop the MiniCluster cost job (same consumer group)
  python -m tokenpulse.flink_cluster up            JobManager + 2 TaskManagers, web UI on :18081
  python -m tokenpulse.flink_cluster submit cost_rollup
  python -m tokenpulse.flink_cluster status        processes, slots and jobs (REST /jobs/overview)
  python -m tokenpulse.flink_cluster kill-taskmanager 1   SIGKILL one; the job restarts on the other's slots
  python -m tokenpulse.flink_cluster start-taskmanager 1  bring it back
  python -m tokenpulse.flink_cluster cancel <job id>
  python -m tokenpulse.flink_cluster down          stop the cluster (retained checkpoints stay)
  tokenpulse up --only flink-job                   back to the MiniCluster: resumes from the newest checkpoint

what `submit` runs (see it in <state_dir>/flink-cluster/log/submit-*.log):
  FLINK_CONF_DIR=<state_dir>/flink-cluster/conf pyflink/bin/flink run --detached \\
      -pym tokenpulse.stream_jobs.cost_rollup \\
      -pyclientexec .venv/bin/python -pyexec .venv/bin/python -j .cache/jars/flink/lib/flink-sql-connector-kafka-*.jar

settings: TOKENPULSE_FLINK_CLUSTER_REST_PORT (18081), _RPC_PORT (16123), _TASKMANAGERS (2), _SLOTS (2),
  _JOBMANAGER_MEMORY (1024m), _TASKMANAGER_MEMORY (1536m); the jobs' own settings (TOKENPULSE_KAFKA_*,
  TOKENPULSE_STREAM_*) are read from the environment of `submit`. Config template: infra/flink/.
"""


def main(argv: list[str] | None = None, prog: str = "python -m tokenpulse.flink_cluster") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the tokenpulse stream jobs on a local standalone Flink cluster (a JobManager and "
                    "TaskManagers as separate processes, from the Flink distribution inside PyFlink) instead of "
                    "the in-process MiniCluster.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="write the config and start the JobManager and TaskManagers")
    sub.add_parser("down", help="stop the TaskManagers and the JobManager")
    sub.add_parser("status", help="processes, slots and jobs")
    p = sub.add_parser("submit", help="submit a stream job with the Flink CLI (detached); prints its job id")
    p.add_argument("job", help=f"{' | '.join(JOBS)} | stream_jobs/<file>.py | a module")
    p.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job (e.g. --no-resume)")
    p = sub.add_parser("cancel", help="cancel a job (its retained checkpoints stay)")
    p.add_argument("job_id")
    p = sub.add_parser("kill-taskmanager", help="SIGKILL TaskManager N, to watch the job fail over")
    p.add_argument("n", type=int)
    p = sub.add_parser("start-taskmanager", help="(re)start TaskManager N, e.g. after kill-taskmanager")
    p.add_argument("n", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    cluster = FlinkCluster(Settings())
    try:
        if args.command == "up":
            timings = cluster.up(lambda m: print(m, flush=True))
            print(f"cluster up: web UI {cluster.rest_url}  ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})")
        elif args.command == "down":
            cluster.down(lambda m: print(m, flush=True))
        elif args.command == "status":
            print(json.dumps(cluster.status(), indent=2))
        elif args.command == "submit":
            t0 = time.monotonic()
            job_id = cluster.submit(args.job, args=args.job_args)
            cluster.wait_running(job_id)
            took = cluster.last_running_s or time.monotonic() - t0
            print(f"{job_id} running (all tasks up {took:.1f} s after `flink run` started); "
                  f"{cluster.rest_url}/#/job/{job_id}")
        elif args.command == "cancel":
            cluster.cancel(args.job_id)
            print(f"{args.job_id} canceled")
        elif args.command == "kill-taskmanager":
            cluster.kill_taskmanager(args.n)
            print(f"taskmanager-{args.n} killed")
        elif args.command == "start-taskmanager":
            cluster.write_config()
            print(f"taskmanager-{args.n} registered in {cluster.start_taskmanager(args.n):.1f} s")
    except (ClusterError, FileNotFoundError, urllib.error.URLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
