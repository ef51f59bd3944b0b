"""Resolve the JVM parts (Kafka broker, Flink Kafka connector) from Maven Central, once.

The pinned list is infra/maven/pom.xml; jars land in <cache_dir>/jars (git-ignored) and
are reused on later runs. Needs `mvn` and Java 17+ on PATH.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .settings import REPO_ROOT, PathSettings

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


# Beside the stream jobs' Python modules, in a checkout and in an installed package alike
# (package data), so a job can build its jar wherever it runs with a JDK at hand.
UDF_SOURCES = Path(importlib.util.find_spec("tokenpulse.stream_jobs").submodule_search_locations[0]) / "jvm" / "src"


def udf_jar(paths: PathSettings):
    """tokenpulse's own Flink functions (stream_jobs/jvm), compiled against the Flink that
    PyFlink ships, once per source version (the jar name carries a hash of the sources)."""
    import hashlib

    import pyflink

    sources = sorted(UDF_SOURCES.rglob("*.java"))
    if not sources:
        raise FileNotFoundError(f"no Java sources under {UDF_SOURCES}: is tokenpulse installed with its package data?")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    jar = paths.cache_dir / "jars" / "udf" / f"tokenpulse-flink-udfs-{digest}.jar"
    if jar.exists():
        return jar
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if javac is None or jar_tool is None:
        raise MissingTool("a JDK (`javac`, `jar`) is needed to build tokenpulse's Flink functions: apt-get install openjdk-17-jdk")
    flink_lib = Path(pyflink.__file__).parent / "lib"
    jar.parent.mkdir(parents=True, exist_ok=True)
    # Two jobs starting at once may both build it: each builds its own copy and renames it
    # into place (atomic), so neither ever reads a half-written jar.
    with tempfile.TemporaryDirectory(dir=jar.parent, prefix=f"build-{digest}-") as tmp:
        classes, built = Path(tmp) / "classes", Path(tmp) / jar.name
        # -parameters: process table functions name their state entries after eval()'s parameters.
        result = subprocess.run([javac, "--release", "17", "-parameters", "-d", str(classes), "-cp", f"{flink_lib}/*",
                                 *map(str, sources)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"javac failed on {UDF_SOURCES}:\n{result.stderr[-3000:]}")
        subprocess.run([jar_tool, "cf", str(built), "-C", str(classes), "."], check=True, capture_output=True, text=True)
        os.replace(built, jar)
    log.info("built %s", jar)
    return jar


def flink_connector_jar(paths: PathSettings):
    jars = sorted(paths.flink_jars.glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise FileNotFoundError(f"no flink-sql-connector-kafka jar under {paths.flink_jars}: run `tokenpulse up` once")
    return jars[-1]
