"""Where a JVM stage spends its CPU: Java Flight Recorder on a running process, summarized.

    python bench/jfr_profile.py summarize recording.jfr [--top 25]

Used by `bench/stage_cpu.py --jfr` on the cost job (the PyFlink job's MiniCluster runs in a
Java child of the Python process). JFR ships with the JDK (`jcmd`, `jfr`), samples running
Java threads every 10 ms (CPU samples only, see SAMPLES_ONLY).

The summary has two views of the same samples:
* **self**: the method on top of the stack (where the CPU actually goes);
* **by part**: each sample charged once to the first frame, from the top, that belongs to a
  part we can act on (JSON, Kafka client, state, checkpointing, generated SQL code, ...);
  shared helpers (strings, decimals, row copies) count for the part that called them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

# Part of the job -> prefixes of the classes that do it, checked from the top of the stack.
# Order matters: the first part whose prefix matches a frame (walking down from the top) wins.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    # tokenpulse's own operators first: the trace-aware stage (issue #17) and the price lookup
    ("trace assembly (TraceAssembler PTF)", ("dev.tokenpulse.flink.trace", "org.apache.flink.table.runtime.operators.process")),
    ("price lookup (Java UDF)", ("dev.tokenpulse.flink.PriceLookup", "dev.tokenpulse.flink.PriceCatalog",
                                 "dev.tokenpulse.flink.CatalogModel")),
    ("JSON (de)serialization", ("org.apache.flink.formats.json", "org.apache.flink.shaded.jackson",
                                "com.fasterxml.jackson")),
    ("Kafka client (fetch, produce, CRC)", ("org.apache.flink.kafka.shaded.org.apache.kafka",
                                            "org.apache.kafka")),
    ("state (dedup, windows)", ("org.apache.flink.runtime.state", "org.apache.flink.contrib.streaming.state",
                                "org.rocksdb", "org.apache.flink.table.runtime.operators.deduplicate",
                                "org.apache.flink.table.runtime.operators.window")),
    ("generated SQL code (pricing CASE, projections)", ("StreamExecCalc", "org.codehaus.janino",
                                                        "org.apache.flink.table.runtime.generated")),
    ("row data / decimals", ("org.apache.flink.table.data", "java.math")),
    ("network between tasks", ("org.apache.flink.runtime.io.network",)),
    ("checkpointing", ("org.apache.flink.runtime.checkpoint", "org.apache.flink.streaming.runtime.tasks"
                       ".SubtaskCheckpointCoordinatorImpl")),
]


def jvm_pids(root: int) -> list[int]:
    """Java processes in the process tree under `root` (inclusive)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            exe = Path(f"/proc/{pid}/exe").resolve().name
        except OSError:
            exe = ""
        if exe == "java":
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


# Only CPU samples, every 10 ms: the JDK's "profile" settings also record allocations, locks
# and I/O, which cost the job measurably more CPU than the samples alone.
SAMPLES_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0" label="tokenpulse-cpu">
  <event name="jdk.ExecutionSample"><setting name="enabled">true</setting><setting name="period">10 ms</setting></event>
</configuration>
"""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per thread group of a live process, by thread name with digits
    and subtask indexes folded ("C2 CompilerThread0" -> "C2 CompilerThread#"). Unlike JFR's
    samples this also counts native work: the JIT compilers and the garbage collector."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        group = re.sub(r"\d+", "#", name)
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per thread group between two thread_cpu() readings, largest first (threads
    that ended in between are missed: JIT and GC threads live as long as the JVM)."""
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    return dict(sorted(((k, round(v, 2)) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1]))


def start(pid: int, name: str = "tokenpulse") -> None:
    settings = Path(tempfile.gettempdir()) / "tokenpulse-cpu.jfc"
    settings.write_text(SAMPLES_ONLY)
    subprocess.run(["jcmd", str(pid), "JFR.start", f"name={name}", f"settings={settings}"],
                   check=True, capture_output=True, text=True)


def stop(pid: int, path: Path, name: str = "tokenpulse") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["jcmd", str(pid), "JFR.stop", f"name={name}", f"filename={path}"],
                   check=True, capture_output=True, text=True)
    for _ in range(50):  # the file is written by the target JVM; wait for it
        if path.exists() and path.stat().st_size > 0:
            break
        time.sleep(0.1)
    return path


def _frames(recording: Path) -> list[list[str]]:
    """Each execution sample's stack, top frame first, as 'package.Class.method'."""
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "64", "--events", "jdk.ExecutionSample",
                          str(recording)], check=True, capture_output=True, text=True).stdout
    stacks = []
    for event in json.loads(out)["recording"]["events"]:
        frames = (event["values"].get("stackTrace") or {}).get("frames") or []
        # JFR names classes "org/apache/flink/..."; use the dotted names people search for
        stacks.append([f"{f['method']['type']['name'].replace('/', '.')}.{f['method']['name']}" for f in frames])
    return stacks


# Classes every part uses (strings, decimals, row copies): a sample on top of one of them is
# charged to the nearest caller that belongs to a specific part.
GENERIC = "row data / decimals"


def part_of(stack: list[str]) -> str:
    for frame in stack:
        for part, prefixes in PARTS:
            # generated classes have no package: "StreamExecCalc$12.processElement"
            if part != GENERIC and frame.startswith(prefixes):
                return part
    generic = dict(PARTS)[GENERIC]
    return GENERIC if any(f.startswith(generic) for f in stack) else "other"


# Inclusive views: samples with such a frame anywhere on the stack (the operator and all it
# calls: its state, JSON, decimals), what the operator costs as a whole.
INCLUSIVE = {"trace assembly (TraceAssembler PTF), inclusive": ("dev.tokenpulse.flink.trace.",),
             "price lookup (Java UDF), inclusive": ("dev.tokenpulse.flink.PriceLookup", "dev.tokenpulse.flink.CatalogModel"),
             # Deep copies of rows between chained operators (what pipeline.object-reuse removes)
             # and of strings/decimals handed to more than one output.
             "row, string and decimal copies, inclusive": (
                 "org.apache.flink.table.runtime.typeutils.RowDataSerializer.copy",
                 "org.apache.flink.table.runtime.typeutils.StringDataSerializer.copy",
                 "org.apache.flink.table.runtime.typeutils.DecimalDataSerializer.copy",
                 "org.apache.flink.table.data.DecimalData.copy")}


def summarize(recording: Path, top: int = 25) -> dict:
    stacks = [s for s in _frames(recording) if s]
    n = len(stacks) or 1
    self_time = Counter(s[0] for s in stacks)
    parts = Counter(part_of(s) for s in stacks)
    inclusive = {name: sum(1 for s in stacks if any(f.startswith(prefixes) for f in s)) / n
                 for name, prefixes in INCLUSIVE.items()}
    return {"samples": len(stacks),
            "by_part": {p: round(c / n, 4) for p, c in parts.most_common()},
            "inclusive": {k: round(v, 4) for k, v in inclusive.items()},
            "self_top": [(m, round(c / n, 4)) for m, c in self_time.most_common(top)]}


def format_summary(summary: dict) -> str:
    lines = [f"{summary['samples']:,} samples", "", "share  part"]
    lines += [f"{share:6.1%} {part}" for part, share in summary["by_part"].items()]
    lines += ["", "share  operator with everything it calls"]
    lines += [f"{share:6.1%} {name}" for name, share in summary.get("inclusive", {}).items()]
    lines += ["", "share  self (top of stack)"]
    lines += [f"{share:6.1%} {method}" for method, share in summary["self_top"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarize", help="print where a recording's samples are")
    s.add_argument("recording", type=Path)
    s.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    print(format_summary(summarize(args.recording, args.top)))


if __name__ == "__main__":
    main()
