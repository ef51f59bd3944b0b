"""The layers' import rules (issue #16), read from the source, no imports executed.

    sdk/            app side: may use core/, schemas/, settings; never the servers' code
    core/, schemas/ shared by both sides: never the SDK, the servers, Flink or ClickHouse
    servers         (collectors/, stream_jobs/, loader/, alerts/, insights/): never the SDK

A base `pip install tokenpulse` (no extras) must be enough for sdk/ and core/ minus the
Kafka writers: tests/integration/test_sdk_install.py installs it and records a call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tokenpulse.settings import REPO_ROOT

SHARED = ("tokenpulse.core", "tokenpulse.schemas", "tokenpulse.settings")
RULES = {  # folder -> (tokenpulse modules it may import, third-party top-level names it may not)
    "sdk": (SHARED + ("tokenpulse.sdk",), {"pyflink", "chdb", "clickhouse_connect", "aiohttp", "kafka", "grpc"}),
    "core": (SHARED, {"pyflink", "chdb", "clickhouse_connect", "aiohttp", "kafka", "grpc"}),
    "schemas": (SHARED, {"pyflink", "chdb", "clickhouse_connect", "aiohttp", "kafka", "confluent_kafka", "grpc"}),
}
SERVERS = ["collectors", "stream_jobs", "loader", "alerts", "insights"]
# The only core modules that need an extra (confluent-kafka, `tokenpulse[kafka]`).
KAFKA_EXTRA = {"core/kafka_writer.py"}


def imports_of(path: Path) -> list[str]:
    """Absolute module names a file imports (relative ones resolved inside its package)."""
    package = "tokenpulse." + path.parent.name
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append(f"{package}.{node.module}" if node.module else package)
            elif node.module:
                names.append(node.module)
    return names


def files(folder: str) -> list[Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(RULES))
def test_shared_and_app_side_import_only_what_their_layer_allows(folder):
    allowed, banned = RULES[folder]
    wrong = []
    for path in files(folder):
        rel = path.relative_to(REPO_ROOT).as_posix()
        for name in imports_of(path):
            top = name.split(".")[0]
            if name.startswith("tokenpulse") and not name.startswith(allowed):
                wrong.append(f"{rel}: {name}")
            elif top in banned or (top == "confluent_kafka" and rel not in KAFKA_EXTRA):
                wrong.append(f"{rel}: {name} (not in the base install)")
    assert not wrong, "imports across layers:\n" + "\n".join(wrong)


def test_no_server_module_imports_the_sdk():
    wrong = [f"{p.relative_to(REPO_ROOT)}: {n}" for folder in SERVERS for p in files(folder)
             for n in imports_of(p) if n.startswith("tokenpulse.sdk")]
    assert not wrong, "server code importing the SDK:\n" + "\n".join(wrong)


def test_the_rules_see_imports(tmp_path):
    """The scanner itself: it must report a banned import, or the tests above prove nothing."""
    pkg = tmp_path / "sdk"
    pkg.mkdir()
    (pkg / "x.py").write_text("from tokenpulse.collectors.otlp_http import TraceReceiver\n"
                              "def f():\n    import pyflink\n    from .calls import y\n")
    assert imports_of(pkg / "x.py") == ["tokenpulse.collectors.otlp_http", "pyflink", "tokenpulse.sdk.calls"]


def test_shipped_files_are_found_beside_their_package_and_a_missing_package_is_named():
    from tokenpulse.settings import shipped

    assert (shipped("stream_jobs", "jvm") / "pom.xml").is_file()
    assert shipped("schemas", "prices.yaml").is_file()
    with pytest.raises(FileNotFoundError, match=r"tokenpulse\.no_such_layer is not installed.*its prices\.yaml"):
        shipped("no_such_layer", "prices.yaml")
