"""Resolve the JVM parts (Kafka broker, Flink Kafka connector) from Maven Central, once.

The pinned list is infra/maven/pom.xml; jars land in <cache_dir>/jars (git-ignored) and
are reused on later runs. Needs `mvn` and Java 17+ on PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .settings import REPO_ROOT, PathSettings, shipped

log = logging.getLogger(__name__)
POM = REPO_ROOT / "infra" / "maven" / "pom.xml"


class MissingTool(RuntimeError):
    pass


def jars_present(paths: PathSettings) -> bool:
    # kafka-tools (Kafka's perf tools) is the baseline of bench/e2e_throughput.py: a cache from
    # before it was pinned lacks it and is re-resolved.
    return (any(paths.kafka_jars.glob("kafka_2.13-*.jar")) and any(paths.kafka_jars.glob("kafka-tools-[0-9]*.jar"))
            and any(paths.flink_jars.glob("flink-sql-connector-kafka-*.jar")))


def ensure_jars(paths: PathSettings) -> None:
    if jars_present(paths):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingTool("Maven (`mvn`) is needed once to download the Kafka and Flink connector jars: apt-get install maven")
    log.info("downloading Kafka broker and Flink connector jars from Maven Central into %s", paths.cache_dir / "jars")
    cmd = [mvn, "-q", "-B", "-f", str(POM), "package", f"-Dtokenpulse.cache={paths.cache_dir / 'jars'}",
           f"-Dmaven.repo.local={paths.cache_dir / 'm2'}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not jars_present(paths):
        raise RuntimeError(f"Maven could not resolve the jars:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


# The Maven module of tokenpulse's own Flink functions (stream_jobs/jvm: pom.xml, src/main, src/test),
# beside the stream jobs' Python modules in a checkout and in an installed package alike (package
# data), so a job can build its jar wherever it runs with Maven and a JDK at hand.
JVM_MODULE = shipped("stream_jobs", "jvm")
UDF_SOURCES = JVM_MODULE / "src" / "main" / "java"


def udf_jar(paths: PathSettings) -> Path:
    """tokenpulse's own Flink functions, packaged by Maven (stream_jobs/jvm/pom.xml: Flink
    `provided` at the PyFlink release), once per version of the module (the jar's name carries
    a hash of the pom and the main sources). Its JUnit tests are `make test`'s, not a job's."""
    import hashlib

    sources = sorted(UDF_SOURCES.rglob("*.java"))
    if not sources:
        raise FileNotFoundError(f"no Java sources under {UDF_SOURCES}: is tokenpulse installed with its package data?")
    pom = JVM_MODULE / "pom.xml"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [pom, *sources])).hexdigest()[:12]
    jar = paths.cache_dir / "jars" / "udf" / f"tokenpulse-flink-udfs-{digest}.jar"
    if jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("javac") is None:
        raise MissingTool("Maven and a JDK (`mvn`, `javac`) are needed to build tokenpulse's Flink functions: "
                          "apt-get install maven openjdk-17-jdk")
    jar.parent.mkdir(parents=True, exist_ok=True)
    # Two jobs starting at once may both build it: each builds in its own directory and renames
    # the jar into place (atomic), so neither ever reads a half-written one.
    with tempfile.TemporaryDirectory(dir=jar.parent, prefix=f"build-{digest}-") as tmp:
        result = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "package", "-DskipTests",
                                 f"-Dtokenpulse.build.dir={tmp}", f"-Dmaven.repo.local={paths.cache_dir / 'm2'}"],
                                capture_output=True, text=True)
        built = Path(tmp) / "tokenpulse-flink-udfs.jar"
        if result.returncode != 0 or not built.exists():
            raise RuntimeError(f"Maven could not build {pom}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        os.replace(built, jar)
    log.info("built %s", jar)
    return jar


def flink_connector_jar(paths: PathSettings):
    jars = sorted(paths.flink_jars.glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise FileNotFoundError(f"no flink-sql-connector-kafka jar under {paths.flink_jars}: run `tokenpulse up` once")
    return jars[-1]
