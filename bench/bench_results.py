"""What every benchmark records with its numbers, and where: one JSON line per run appended to
bench/results/<name>.jsonl, stamped with the time, the commit and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=REPO).stdout.strip()


def run_info() -> dict:
    """When, at which commit, on what, and with which detector engine (a stack's loop detector
    runs the JVM or the Python rules: TOKENPULSE_DETECTOR_ENGINE): the fields every results
    line starts with."""
    from tokenpulse.settings import DetectorJobSettings

    return {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": git_commit(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "detector_engine": DetectorJobSettings().engine}


def append(file_name: str, record: dict) -> Path:
    """Append `record` as one JSON line to bench/results/`file_name`; returns the file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / file_name
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    return path
