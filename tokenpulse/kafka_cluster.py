"""A local three-node Apache Kafka cluster (KRaft) on loopback ports, as a test profile.

    node-1 .. node-3   each one JVM running broker + controller (`kafka.Kafka`), the three
                       controllers form the KRaft metadata quorum (static voters)

Why three: with replication factor 3 and min.insync.replicas 2, an acks=all write (what the
collector sends) still succeeds with one broker down, and every acknowledged record is on at
least two brokers, so stopping any one node mid-stream loses nothing. The single-node broker
of `tokenpulse up` cannot show that.

The jars are the ones infra/maven/pom.xml already resolves for the single-node broker (Kafka
4.1.1). Everything lives under <state_dir>/kafka-cluster/:

    node-<N>/server.properties   rendered from infra/kafka/cluster-server.properties.template
    node-<N>/data/               the node's log dir (formatted once with one cluster id)
    logs/node-<N>.log            stdout/stderr of the JVM
    pids/node-<N>.pid            each JVM runs in its own process group

Point the stack at it (no local broker; topics created with RF 3 / min ISR 2):

    python -m tokenpulse.kafka_cluster up       # prints the environment to export
    export TOKENPULSE_KAFKA_RUN_LOCAL_BROKER=false TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19192,...
    export TOKENPULSE_KAFKA_REPLICATION_FACTOR=3 TOKENPULSE_KAFKA_MIN_INSYNC_REPLICAS=2
    tokenpulse up
    python -m tokenpulse.kafka_cluster stop-broker 2 [--kill]   # and start-broker 2
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .jars import ensure_jars
from .kafka_admin import apply_topics
from .processes import exited, first_of, owned_pid, port_open, signal_group, spawn, stop_process_group, wait_until
from .settings import KAFKA_CLUSTER_NODES, REPO_ROOT, KafkaClusterSettings, KafkaSettings, Settings

log = logging.getLogger(__name__)

TEMPLATE = REPO_ROOT / "infra" / "kafka" / "cluster-server.properties.template"
NODES = KAFKA_CLUSTER_NODES


class KafkaClusterError(RuntimeError):
    pass


class KafkaCluster:
    def __init__(self, settings: Settings, cluster: KafkaClusterSettings | None = None) -> None:
        self.settings = settings
        self.cluster = cluster or KafkaClusterSettings()
        self.root = settings.paths.state_dir / "kafka-cluster"
        self.log_dir = self.root / "logs"
        self.pid_dir = self.root / "pids"

    # --- how clients reach it -------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.cluster.broker_ports)

    def environment(self) -> dict[str, str]:
        """The TOKENPULSE_KAFKA_* variables that point the stack at this cluster."""
        return {"TOKENPULSE_KAFKA_RUN_LOCAL_BROKER": "false",
                "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "TOKENPULSE_KAFKA_REPLICATION_FACTOR": str(self.cluster.replication_factor),
                "TOKENPULSE_KAFKA_MIN_INSYNC_REPLICAS": str(self.cluster.min_insync_replicas)}

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers, run_local_broker=False,
                             replication_factor=self.cluster.replication_factor,
                             min_insync_replicas=self.cluster.min_insync_replicas)

    # --- configuration ----------------------------------------------------------------------
    def node_dir(self, n: int) -> Path:
        return self.root / f"node-{n}"

    def log_path(self, n: int) -> Path:
        return self.log_dir / f"node-{n}.log"

    def write_config(self) -> None:
        """Render each node's server.properties; format its log dir once, one cluster id for all."""
        ensure_jars(self.settings.paths)
        c = self.cluster
        for d in (self.log_dir, self.pid_dir):
            d.mkdir(parents=True, exist_ok=True)
        voters = ",".join(f"{n}@127.0.0.1:{c.controller_ports[n - 1]}" for n in range(1, NODES + 1))
        template = string.Template(TEMPLATE.read_text())
        id_file = self.root / "cluster.id"
        if not id_file.exists():
            id_file.write_text(self._storage_tool("random-uuid").strip())
        cluster_id = id_file.read_text().strip()
        for n in range(1, NODES + 1):
            ndir = self.node_dir(n)
            ndir.mkdir(parents=True, exist_ok=True)
            props = ndir / "server.properties"
            props.write_text(template.substitute(
                node_id=n, quorum_voters=voters, broker_port=c.broker_ports[n - 1],
                controller_port=c.controller_ports[n - 1], log_dirs=ndir / "data"))
            if not (ndir / "data" / "meta.properties").exists():
                self._storage_tool("format", "-t", cluster_id, "-c", str(props))

    def _storage_tool(self, *args: str) -> str:
        result = subprocess.run(["java", "-cp", f"{self.settings.paths.kafka_jars}/*", "kafka.tools.StorageTool", *args],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise KafkaClusterError(f"kafka StorageTool {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # --- processes ----------------------------------------------------------------------------
    def pid(self, n: int) -> int | None:
        return owned_pid(self.pid_dir / f"node-{n}.pid")

    def _spawn(self, n: int) -> subprocess.Popen:
        c = self.cluster
        for port in (c.broker_ports[n - 1], c.controller_ports[n - 1]):
            if port_open("127.0.0.1", port):
                raise KafkaClusterError(f"port {port} (node {n}) is in use by another process: stop it or choose "
                                        "other ports (TOKENPULSE_KAFKA_CLUSTER_BROKER_PORTS / _CONTROLLER_PORTS)")
        command = ["java", f"-Xmx{c.heap}", f"-Xms{c.heap}",
                   f"-Dlog4j2.configurationFile={REPO_ROOT / 'infra' / 'kafka' / 'log4j2.yaml'}",
                   "-cp", f"{self.settings.paths.kafka_jars}/*", "kafka.Kafka",
                   str(self.node_dir(n) / "server.properties")]
        # the marker: this node's own server.properties, the command's last argument
        return spawn(command, log_path=self.log_path(n), pid_file=self.pid_dir / f"node-{n}.pid", cwd=self.root,
                     append_log=True)

    def tail(self, n: int, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path(n).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def start_brokers(self, numbers: list[int]) -> float:
        """Start the given nodes side by side (a quorum needs 2 of 3 controllers to elect a
        leader, so starting one at a time would stall); wait until each serves as a broker
        and the cluster lists every running node. Returns the seconds taken."""
        procs = {n: self._spawn(n) for n in numbers if self.pid(n) is None}

        def serving() -> bool:
            running = [n for n in range(1, NODES + 1) if self.pid(n)]
            return set(self.registered_brokers()) >= set(running) and all(
                port_open("127.0.0.1", self.cluster.broker_ports[n - 1]) for n in procs)

        one_died = first_of(exited(proc, f"node {n}", lambda n=n: f"{self.log_path(n)}:\n{self.tail(n)}")
                            for n, proc in procs.items())
        return wait_until(serving, what=f"brokers {numbers} (see {self.log_dir})", timeout_s=self.cluster.start_timeout_s,
                          interval_s=0.5, give_up=one_died, error=KafkaClusterError)

    def registered_brokers(self) -> list[int]:
        """Node ids the cluster metadata lists as live, unfenced brokers (empty if none answers).
        Asks each node in turn: a client bootstrapped from all three may pick a dead one."""
        from kafka import KafkaAdminClient

        for port in self.cluster.broker_ports:
            if not port_open("127.0.0.1", port):
                continue
            try:
                admin = KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{port}"], client_id="tokenpulse-cluster-probe",
                                         request_timeout_ms=3000)
            except Exception:  # noqa: BLE001 - this node does not answer (yet)
                continue
            try:
                brokers = admin.describe_cluster()["brokers"]
                return sorted(b["broker_id"] for b in brokers if not b.get("is_fenced"))
            except Exception:  # noqa: BLE001
                continue
            finally:
                admin.close()
        return []

    def up(self, progress: Callable[[str], None] = lambda _: None) -> float:
        """Format (first time), start all nodes, create the topics with RF 3 / min ISR 2."""
        self.write_config()
        progress(f"starting {NODES} Kafka nodes (brokers {self.bootstrap_servers})")
        try:
            took = self.start_brokers(list(range(1, NODES + 1)))
            created = apply_topics(self.kafka_settings())
        except BaseException:
            self.down()
            raise
        progress(f"cluster ready in {took:.1f} s; created {len(created)} topics "
                 f"(replication factor {self.cluster.replication_factor}, "
                 f"min.insync.replicas {self.cluster.min_insync_replicas})")
        return took

    def stop_broker(self, n: int, sig: signal.Signals = signal.SIGTERM) -> bool:
        """SIGTERM (controlled shutdown: leadership moves first) or SIGKILL (a crash) node n."""
        pid = self.pid(n)
        (self.pid_dir / f"node-{n}.pid").unlink(missing_ok=True)
        return pid is not None and stop_process_group(pid, f"kafka node {n}", sig)

    def start_broker(self, n: int) -> float:
        self.write_config()
        return self.start_brokers([n])

    def down(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """SIGTERM every node at once, then wait for each: stopped one by one, the last node's
        controlled shutdown would wait for a quorum that is already gone."""
        pids = {n: self.pid(n) for n in range(1, NODES + 1)}
        for pid in pids.values():
            if pid is not None:
                signal_group(pid, signal.SIGTERM)
        for n, pid in pids.items():
            (self.pid_dir / f"node-{n}.pid").unlink(missing_ok=True)
            if pid is not None:
                stop_process_group(pid, f"kafka node {n}")
                progress(f"stopped node {n}")

    def status(self) -> dict:
        return {"bootstrap_servers": self.bootstrap_servers,
                "processes": {f"node-{n}": self.pid(n) for n in range(1, NODES + 1)},
                "registered_brokers": self.registered_brokers()}

    def under_replicated(self, topic: str) -> list[int]:
        """Partitions of `topic` whose in-sync replicas are fewer than their replicas."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(**self.kafka_settings().client_options(), client_id="tokenpulse-cluster-probe")
        try:
            (desc,) = admin.describe_topics([topic])  # metadata response: replica_nodes, isr_nodes
            return sorted(p["partition_index"] for p in desc["partitions"]
                          if len(p["isr_nodes"]) < len(p["replica_nodes"]))
        finally:
            admin.close()


# --- CLI --------------------------------------------------------------------------------------
EPILOG = """\
typical session:
  python -m tokenpulse.kafka_cluster up          format once, start 3 nodes, create topics (RF 3, min ISR 2)
  export $(python -m tokenpulse.kafka_cluster env)   point tokenpulse at it (no local broker)
  tokenpulse up                                  loader, Flink jobs, collector ... against the cluster
  python -m tokenpulse.kafka_cluster stop-broker 2 --kill   a crash; writes go on with 2 of 3 in sync
  python -m tokenpulse.kafka_cluster start-broker 2         it catches up and rejoins the ISR
  python -m tokenpulse.kafka_cluster status
  tokenpulse down ; python -m tokenpulse.kafka_cluster down

settings: TOKENPULSE_KAFKA_CLUSTER_BROKER_PORTS ([19192,19193,19194]), _CONTROLLER_PORTS
  ([19195,19196,19197]), _HEAP (384m per node). Data and logs: <state_dir>/kafka-cluster/.
"""


def main(argv: list[str] | None = None, prog: str = "python -m tokenpulse.kafka_cluster") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local three-node Kafka cluster (KRaft, each node broker + controller) on loopback ports: "
                    "replication factor 3, min.insync.replicas 2, so one broker can stop mid-stream and "
                    "acks=all writes keep succeeding with nothing lost.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="format (first time) and start the three nodes, create the topics")
    sub.add_parser("down", help="stop all nodes (data stays)")
    sub.add_parser("status", help="processes and the brokers the cluster lists")
    sub.add_parser("env", help="print the TOKENPULSE_KAFKA_* variables that point tokenpulse at the cluster")
    p = sub.add_parser("stop-broker", help="stop node N (SIGTERM: controlled shutdown; --kill: SIGKILL)")
    p.add_argument("n", type=int, choices=range(1, NODES + 1))
    p.add_argument("--kill", action="store_true", help="SIGKILL, as a crashed machine")
    p = sub.add_parser("start-broker", help="(re)start node N")
    p.add_argument("n", type=int, choices=range(1, NODES + 1))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # probes expect refusals while starting

    cluster = KafkaCluster(Settings())
    try:
        if args.command == "up":
            cluster.up(lambda m: print(m, flush=True))
            print("point tokenpulse at it:\n  export " + " ".join(f"{k}={v}" for k, v in cluster.environment().items()))
        elif args.command == "down":
            cluster.down(lambda m: print(m, flush=True))
        elif args.command == "status":
            print(json.dumps(cluster.status(), indent=2))
        elif args.command == "env":
            print(" ".join(f"{k}={v}" for k, v in cluster.environment().items()))
        elif args.command == "stop-broker":
            stopped = cluster.stop_broker(args.n, signal.SIGKILL if args.kill else signal.SIGTERM)
            print(f"node {args.n} {'stopped' if stopped else 'was not running'}")
        elif args.command == "start-broker":
            print(f"node {args.n} back in {cluster.start_broker(args.n):.1f} s")
    except KafkaClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
