"""What both stream jobs (cost_rollup.py, loop_detection.py) need around their SQL: the Kafka
tables' connector options, where to resume from, and how to submit and wait.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pyflink.table import StatementSet, TableEnvironment

from tokenpulse.processes import announce_ready
from tokenpulse.settings import Settings

log = logging.getLogger("tokenpulse.stream_jobs")


def kafka_options(settings: Settings, role: Literal["source", "sink"]) -> str:
    """The Kafka connector's WITH options shared by every table: connection and security, and
    the client batching of a source (consumer) or a sink (producer) table.

    The SQL connector jar relocates the Kafka client under `shaded`, so the JAAS login
    module must be named with that prefix. TLS files are PEM, which the Java client reads directly
    (no JKS conversion); its PEM keystore is one file holding the key and the certificate."""
    shaded = "org.apache.flink.kafka.shaded."
    k = settings.kafka
    opts = {"connector": "kafka", "properties.bootstrap.servers": k.bootstrap_servers,
            "properties.security.protocol": k.security_protocol}
    if k.sasl_mechanism:
        secret = k.sasl_password.get_secret_value() if k.sasl_password else ""
        module = ("scram.ScramLoginModule" if k.sasl_mechanism.upper().startswith("SCRAM-")
                  else "plain.PlainLoginModule")

        def jaas_quoted(value: str) -> str:  # JAAS values are double-quoted, backslash-escaped
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        opts["properties.sasl.mechanism"] = k.sasl_mechanism
        opts["properties.sasl.jaas.config"] = (
            f"{shaded}org.apache.kafka.common.security.{module} required "
            f"username={jaas_quoted(k.sasl_username or '')} password={jaas_quoted(secret)};"
        )
    if k.ssl_cafile is not None:
        opts["properties.ssl.truststore.type"] = "PEM"
        opts["properties.ssl.truststore.location"] = str(k.ssl_cafile)
    if k.ssl_certfile is not None:
        if k.ssl_keyfile is not None and k.ssl_keyfile != k.ssl_certfile:
            raise ValueError("the Flink jobs need the Kafka client key and certificate in one PEM file: "
                             "concatenate them and set TOKENPULSE_KAFKA_SSL_CERTFILE to it "
                             "(TOKENPULSE_KAFKA_SSL_KEYFILE unset or the same file)")
        opts["properties.ssl.keystore.type"] = "PEM"
        opts["properties.ssl.keystore.location"] = str(k.ssl_certfile)
        if k.ssl_password is not None:
            opts["properties.ssl.key.password"] = k.ssl_password.get_secret_value()

    if role == "source":
        opts["properties.fetch.min.bytes"] = str(k.stream_fetch_min_bytes)
        opts["properties.fetch.max.wait.ms"] = str(k.stream_fetch_max_wait_ms)
    else:
        opts["properties.batch.size"] = str(k.stream_producer_batch_bytes)
        opts["properties.compression.type"] = k.stream_compression

    def sql_quoted(value: str) -> str:  # a quote inside an SQL string literal is written twice
        return "'" + value.replace("'", "''") + "'"

    return ", ".join(f"{sql_quoted(key)} = {sql_quoted(value)}" for key, value in opts.items())


def latest_checkpoint(checkpoint_root: Path) -> Path | None:
    """Newest complete retained checkpoint (a chk-N folder holding _metadata), if any."""
    candidates = [m.parent for m in checkpoint_root.glob("*/chk-*/_metadata")]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def recovery_path(checkpoint_root: Path | None, resume: bool) -> str | None:
    """The state-recovery URI a job should start from (shared by both jobs), or None.
    No root: checkpoints belong to the cluster, which restores the job itself."""
    chk = latest_checkpoint(checkpoint_root) if resume and checkpoint_root is not None else None
    if chk is None:
        return None
    log.info("resuming from checkpoint %s", chk)
    return chk.resolve().as_uri()


def run_to_end(statements: StatementSet, job_name: str, t_env: TableEnvironment) -> None:
    """Submit; locally (attached) keep the process until the job ends. `flink run -d`
    submits detached: then return at once, or the CLI would never exit."""
    result = statements.execute()
    job = result.get_job_client()
    log.info("job %s (%s) running", job.get_job_id() if job else "?", job_name)
    announce_ready()
    if t_env.get_config().get("execution.attached", "true") == "true":
        result.wait()
