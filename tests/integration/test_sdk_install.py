"""The app side installs alone (issue #16): a fresh virtualenv with `pip install tokenpulse`
(no extras) records an LLM call with the SDK, and the shared core maps that span to the
event a collector would write, without Flink, chDB, ClickHouse's client or an HTTP server.

It installs a copy of the package's sources (pyproject.toml and the package folders, not
the checkout's caches) with pip's cache under .cache/pip; ~1 min the first time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib

import pytest

from tokenpulse.settings import REPO_ROOT

pytestmark = pytest.mark.integration
SERVER_ONLY = {"apache-flink", "chdb", "clickhouse-connect", "aiohttp", "kafka-python", "grpcio", "confluent-kafka"}

APP = r"""
import json, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenpulse.sdk import record_llm_call

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
messages = [{"role": "user", "content": "Where is my parcel?"}]
with record_llm_call(provider="openai", model="gpt-4o", session_id="sess-1", agent_name="triage",
                     messages=messages, tracer_provider=provider) as call:
    call.set_usage(input_tokens=1200, output_tokens=345, cached_input_tokens=200)

from tokenpulse.core.otlp_decode import decode
from tokenpulse.core.span_mapping import map_spans

body = encode_spans(exporter.get_finished_spans()).SerializeToString()
mapped = map_spans(decode(body, "application/x-protobuf"), tenant="acme", received_ms=1)
event = mapped.accepted[0]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"pyflink", "chdb", "clickhouse_connect", "aiohttp",
                                                                "kafka", "confluent_kafka", "grpc"}
                or m.startswith(("tokenpulse.collectors", "tokenpulse.stream_jobs", "tokenpulse.loader")))
from tokenpulse.settings import Settings

settings = Settings()
defaults = {"prices": settings.stream.prices_file, "catalog": settings.stream.catalog_file,
            "tenants": settings.collector.tenants_file, "detectors": settings.detector.detectors_file,
            "hooks": settings.alerts.hooks_file}
files = {name: [str(path), path.is_file()] for name, path in defaults.items()}
print(json.dumps({"event": json.loads(event.model_dump_json()), "dead": len(mapped.dead), "loaded": loaded,
                  "files": files, "state_dir": str(settings.paths.state_dir), "cache_dir": str(settings.paths.cache_dir)}))
"""


def package_sources(dest):
    """pyproject.toml, README.md and every package folder it declares, as a clean tree."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    folders = set(project["tool"]["setuptools"]["package-dir"].values())
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, dest / name)
    for folder in folders:
        shutil.copytree(REPO_ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_the_sdk_alone_records_a_call_without_the_server_stack(tmp_path):
    (tmp_path / "src").mkdir()
    src = package_sources(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "--cache-dir", str(REPO_ROOT / ".cache" / "pip"), str(src)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]

    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "tokenpulse" in installed
    assert not installed & SERVER_ONLY, f"the base install pulled server packages: {installed & SERVER_ONLY}"

    home = tmp_path / "home"
    run = subprocess.run([str(python), "-c", APP], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    event = out["event"]
    assert out["dead"] == 0 and out["loaded"] == []
    assert (event["provider"], event["request_model"], event["session_id"], event["agent_name"]) == \
        ("openai", "gpt-4o", "sess-1", "triage")
    assert (event["input_tokens"], event["output_tokens"], event["cached_input_tokens"]) == (1200, 345, 200)
    assert event["call_fingerprint"], "the SDK's content-free fingerprint travels on the span"

    # The default config files are the installed package's data, not paths into a checkout;
    # state and downloads go to the user's XDG directories, not into site-packages.
    site = venv / "lib"
    for name, (path, exists) in out["files"].items():
        assert exists and path.startswith(str(site)), f"default {name} file {path} is not the installed one"
    assert out["state_dir"] == str(home / ".local" / "state" / "tokenpulse")
    assert out["cache_dir"] == str(home / ".cache" / "tokenpulse")
