"""infra/production/ templates, validated as far as one machine allows (no Kubernetes, no
cluster here): every YAML / XML parses; the FlinkDeployments against the Flink Kubernetes
Operator's own CRD schema (strict: unknown fields refused); every TOKENPULSE_* variable is a
real setting and its value passes the setting's validation; the Kafka properties through
Kafka's own parser (KafkaConfig, the cached 4.1.1 jars); the ClickHouse XML loaded by a real
ClickHouse engine (chDB) as its configuration."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import string
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from tokenpulse.loader.migrations import split_statements
from tokenpulse.settings import REPO_ROOT, PathSettings, Settings
from tokenpulse.sql.cluster_ddl import CLUSTER_DIR

PROD = REPO_ROOT / "infra" / "production"
CRD = PROD / "flink" / "crd" / "flinkdeployments.flink.apache.org-v1.yml.gz"
FLINK_DEPLOYMENTS = sorted((PROD / "flink").glob("*.flinkdeployment.yaml"))
K8S = sorted((PROD / "kubernetes").glob("*.yaml"))
NODES = [(1, "kafka-0.kafka.tokenpulse.svc"), (2, "kafka-1.kafka.tokenpulse.svc"), (3, "kafka-2.kafka.tokenpulse.svc")]


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(path: Path, **values) -> str:
    return string.Template(path.read_text()).substitute(**values)


# ----------------------------------------------------------------- everything parses


def test_every_template_parses():
    yamls = sorted(PROD.rglob("*.yaml"))
    xmls = sorted(PROD.rglob("*.xml")) + sorted(PROD.rglob("*.xml.template"))
    assert len(yamls) >= 6 and len(xmls) >= 5
    for path in yamls:
        assert documents(path), path
    for path in xmls:
        text = path.read_text()
        if path.suffix == ".template":
            text = string.Template(text).substitute(shard=1, replica="ch-0-0", server_id=1)
        ET.fromstring(text)


# ----------------------------------------------------------------- Flink Kubernetes Operator


def strict(schema: dict) -> dict:
    """The CRD schema, refusing unknown fields where it lists the known ones (as
    `kubectl apply --validate=strict` does; without it the API server silently drops them)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def flink_deployment_schema():
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRD is 0.6 MB of YAML
    crd = yaml.load(gzip.decompress(CRD.read_bytes()), Loader=loader)
    assert crd["spec"]["names"]["kind"] == "FlinkDeployment"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    # Every Kubernetes object has these; the API server, not the CRD, checks them.
    schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", FLINK_DEPLOYMENTS, ids=lambda p: p.name)
def test_flink_deployment_matches_the_operator_crd(path, flink_deployment_schema):
    doc = documents(path)[0]
    assert (doc["apiVersion"], doc["kind"]) == ("flink.apache.org/v1beta1", "FlinkDeployment")
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in flink_deployment_schema.iter_errors(doc)]
    assert not errors, errors


def test_the_crd_check_refuses_a_misspelt_field(flink_deployment_schema):
    doc = documents(FLINK_DEPLOYMENTS[0])[0]
    doc["spec"]["job"]["paralelism"] = doc["spec"]["job"].pop("parallelism")
    doc["spec"]["flinkVersion"] = "v2_99"
    messages = " ".join(e.message for e in flink_deployment_schema.iter_errors(doc))
    assert "paralelism" in messages and "v2_99" in messages


@pytest.mark.parametrize("path", FLINK_DEPLOYMENTS, ids=lambda p: p.name)
def test_flink_deployment_runs_our_job_as_built_here(path):
    import importlib.util

    import pyflink.version

    spec = documents(path)[0]["spec"]
    job, conf = spec["job"], spec["flinkConfiguration"]
    module = job["args"][job["args"].index("-pym") + 1]
    assert importlib.util.find_spec(module) is not None, module
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    major, minor, _ = pyflink.version.__version__.split(".")
    assert spec["flinkVersion"] == f"v{major}_{minor}"
    assert job["jarURI"].endswith(f"flink-python-{pyflink.version.__version__}.jar")
    # Checkpoints and HA data on shared S3-compatible storage, one prefix per job.
    name = documents(path)[0]["metadata"]["name"].removeprefix("tokenpulse-")
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir", "high-availability.storageDir"):
        assert conf[key].startswith("s3://") and conf[key].endswith(f"/{name}"), key
    assert conf["high-availability.type"] == "kubernetes"
    # The job sets its own parallelism from its settings: it must equal the operator's.
    env = {e["name"]: e.get("value") for e in spec["podTemplate"]["spec"]["containers"][0]["env"]}
    section = "STREAM" if module.endswith("cost_rollup") else "DETECTOR"
    assert int(env[f"TOKENPULSE_{section}_PARALLELISM"]) == job["parallelism"]
    assert env[f"TOKENPULSE_{section}_CHECKPOINTS"] == "cluster"  # S3 + the operator restore state, not the job


# ----------------------------------------------------------------- settings


def settings_sections() -> dict[str, type]:
    return {cls.model_config["env_prefix"]: cls
            for cls in (f.annotation for f in Settings.model_fields.values())}


def containers() -> list[tuple[str, dict[str, str | None]]]:
    """(name, env) of every container in the templates: ConfigMap envFrom resolved; values
    from Secrets / the downward API are None (not known here)."""
    config_maps = {d["metadata"]["name"]: d.get("data") or {}
                   for p in K8S for d in documents(p) if d["kind"] == "ConfigMap"}
    out = []
    for path in K8S + FLINK_DEPLOYMENTS:
        for doc in documents(path):
            spec = doc.get("spec", {})
            pod = spec.get("template", spec.get("podTemplate"))
            for c in (pod or {}).get("spec", {}).get("containers", []):
                env = {}
                for ref in c.get("envFrom", []):
                    env.update(config_maps[ref["configMapRef"]["name"]])
                env.update({e["name"]: e.get("value") for e in c.get("env", [])})
                out.append((f"{path.name}:{c['name']}", env))
    return out


def test_every_tokenpulse_variable_is_a_setting_with_a_valid_value(monkeypatch):
    sections = settings_sections()
    seen = 0
    for where, env in containers():
        for name in env:
            if not name.startswith("TOKENPULSE_"):
                continue
            seen += 1
            prefix = next((p for p in sections if name.startswith(p)), None)
            assert prefix, f"{where}: {name} is no section of tokenpulse/settings.py"
            field = name[len(prefix):].lower()
            assert field in sections[prefix].model_fields, f"{where}: {name}: {sections[prefix].__name__} has no {field}"
        # The values pass the settings' own validation (types, ranges, cross-field rules).
        for key in [k for k in os.environ if k.startswith("TOKENPULSE_")]:
            monkeypatch.delenv(key)
        for name, value in env.items():
            if name.startswith("TOKENPULSE_"):
                monkeypatch.setenv(name, value if value is not None else "secret-from-kubernetes")
        for prefix, cls in sections.items():
            if any(n.startswith(prefix) for n in env):
                cls()
    assert seen > 40


def test_a_misnamed_variable_would_be_caught():
    sections = settings_sections()
    assert "TOKENPULSE_KAFKA_" in sections
    assert "bootstrap_server" not in sections["TOKENPULSE_KAFKA_"].model_fields


# ----------------------------------------------------------------- Kafka


def rendered_kafka_nodes(tmp_path: Path) -> list[Path]:
    voters = ",".join(f"{i}@{host}:9093" for i, host in NODES)
    files = []
    for node_id, host in NODES:
        f = tmp_path / f"node-{node_id}.properties"
        f.write_text(render(PROD / "kafka" / "server.properties.template", node_id=node_id, host=host, quorum_voters=voters))
        files.append(f)
    return files


def properties(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def kafka_verdicts(tmp_path_factory):
    """{file name: [[OK] | [ERROR, message] | [UNKNOWN, key], ...]} from Kafka's parser, for the
    three rendered nodes and two broken copies (one JVM: it starts slowly)."""
    jars = PathSettings().kafka_jars
    if shutil.which("javac") is None or not list(jars.glob("kafka_2.13-*.jar")):
        pytest.skip("needs javac and the Kafka jars (make jars)")
    tmp = tmp_path_factory.mktemp("kafka-check")
    subprocess.run(["javac", "-d", str(tmp), "-cp", f"{jars}/*", str(Path(__file__).with_name("CheckKafkaConfig.java"))],
                   check=True)
    files = rendered_kafka_nodes(tmp)
    good = files[0].read_text()
    (tmp / "bad.properties").write_text(good.replace("min.insync.replicas=2", "min.insync.replicas=two")
                                        .replace("num.io.threads", "num.io.thread"))
    (tmp / "quorum.properties").write_text(good.replace("node.id=1", "node.id=7"))  # not a voter
    files += [tmp / "bad.properties", tmp / "quorum.properties"]
    proc = subprocess.run(["java", "-cp", f"{tmp}:{jars}/*", "CheckKafkaConfig", *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    verdicts: dict[str, list[list[str]]] = {f.name: [] for f in files}
    for line in proc.stdout.splitlines():
        if "\t" in line:
            file, *verdict = line.split("\t")
            verdicts[Path(file).name].append(verdict)
    return verdicts, files[:3]


def test_kafka_nodes_are_accepted_by_kafkas_own_parser(kafka_verdicts):
    verdicts, files = kafka_verdicts
    assert [verdicts[f.name] for f in files] == [[["OK"]]] * 3
    for f in files:
        props = properties(f)
        assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3" and props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
    assert len({properties(f)["node.id"] for f in files}) == 3


def test_kafkas_parser_catches_bad_values_and_unknown_keys(kafka_verdicts):
    verdicts, _ = kafka_verdicts
    assert ["UNKNOWN", "num.io.thread"] in verdicts["bad.properties"]
    assert any(v[0] == "ERROR" and "min.insync.replicas" in v[1] for v in verdicts["bad.properties"])
    assert [v[0] for v in verdicts["quorum.properties"]] == ["ERROR"]


# ----------------------------------------------------------------- ClickHouse

CHDB_PROBE = """
import json, sys
import chdb
conn = chdb.connect(":memory:?config-file=" + sys.argv[1])
cur = conn.cursor()
def rows(sql):
    cur.execute(sql)
    return [list(r) for r in cur.fetchall()]
out = {"clusters": rows("SELECT cluster, shard_num, replica_num, host_name, port FROM system.clusters"),
       "macros": dict(rows("SELECT macro, substitution FROM system.macros"))}
for stmt in json.loads(sys.argv[2]):
    cur.execute(stmt)
out["distributed"] = rows("SELECT name, engine_full FROM system.tables WHERE engine = 'Distributed'")
print(json.dumps(out))
"""


def clickhouse_node_config(tmp_path: Path, shard: int, replica: str) -> Path:
    conf = tmp_path / "clickhouse"
    (conf / "config.d").mkdir(parents=True)
    for f in (PROD / "clickhouse" / "config.d").glob("*.xml"):
        shutil.copy(f, conf / "config.d" / f.name)
    (conf / "config.d" / "macros.xml").write_text(
        render(PROD / "clickhouse" / "config.d" / "macros.xml.template", shard=shard, replica=replica))
    (conf / "config.xml").write_text("<clickhouse/>")  # config.d/ is merged into it, as on a server
    return conf / "config.xml"


def test_clickhouse_loads_the_cluster_config_and_builds_the_distributed_tables(tmp_path):
    # The clustered token_spans: its local table without replication (no Keeper here), and the
    # Distributed table exactly as sql/cluster/ writes it, minus ON CLUSTER (needs Keeper too).
    create = [re.sub(r" ON CLUSTER '\{cluster\}'", "", s).replace(
                  "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ", "ReplacingMergeTree(")
              for s in split_statements((CLUSTER_DIR / "0001_create_token_spans.up.sql").read_text())]
    config = clickhouse_node_config(tmp_path, 2, "ch-1-0")
    env = dict(os.environ, CLICKHOUSE_INTERSERVER_SECRET="test-secret")
    proc = subprocess.run([sys.executable, "-c", CHDB_PROBE, str(config), json.dumps(create)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    cluster = [r for r in seen["clusters"] if r[0] == "tokenpulse"]
    assert sorted((r[1], r[2]) for r in cluster) == [(1, 1), (1, 2), (2, 1), (2, 2)]  # 2 shards x 2 replicas
    assert len({r[3] for r in cluster}) == 4
    assert seen["macros"] == {"cluster": "tokenpulse", "shard": "2", "replica": "ch-1-0"}
    # Every macro the generated DDL uses is defined (database / table are built in).
    used = set(re.findall(r"\{(\w+)\}", " ".join(p.read_text() for p in CLUSTER_DIR.glob("*.sql"))))
    assert used - {"database", "table"} <= set(seen["macros"])
    assert seen["distributed"] == [["token_spans", "Distributed('{cluster}', 'default', 'token_spans_local', cityHash64(tenant))"]]


def test_keeper_quorum_and_server_client_lists_agree():
    keeper = ET.fromstring(render(PROD / "clickhouse" / "keeper" / "keeper_config.xml.template", server_id=1))
    raft = [(int(s.findtext("id")), s.findtext("hostname")) for s in keeper.iter("server")]
    assert [i for i, _ in raft] == [1, 2, 3]
    client = ET.parse(PROD / "clickhouse" / "config.d" / "keeper_client.xml").getroot()
    nodes = [(n.findtext("host"), n.findtext("port")) for n in client.iter("node")]
    assert nodes == [(host, keeper.findtext("keeper_server/tcp_port")) for _, host in raft]


def test_profile_settings_are_accepted_by_clickhouse(tmp_path):
    import clickhouse_connect

    profile = ET.parse(PROD / "clickhouse" / "users.d" / "tokenpulse.xml").getroot().find("profiles/default")
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    try:
        for setting in profile:
            value = setting.text.strip()
            literal = value if re.fullmatch(r"-?\d+(\.\d+)?", value) else f"'{value}'"
            client.command(f"SET {setting.tag} = {literal}")  # an unknown name or a bad value fails
    finally:
        client.close()
    assert len(profile) >= 3
