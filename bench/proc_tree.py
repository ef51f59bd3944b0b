"""What a process tree uses, from /proc: CPU seconds and memory (PSS). Shared by the benchmarks
that measure services of a stack; importing it changes nothing (no settings, no environment)."""

from __future__ import annotations

import os
from pathlib import Path

from tokenpulse.stack import Stack

TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """utime + stime of `root` and every live descendant, in seconds."""
    children: dict[int, list[tuple[int, float]]] = {}
    own = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        if int(entry) == root:
            own = cpu
        children.setdefault(int(fields[1]), []).append((int(entry), cpu))
    total, todo = own, [root]
    while todo:
        for pid, cpu in children.get(todo.pop(), []):
            total += cpu
            todo.append(pid)
    return total


def tree_pss_mib(root: int) -> float:
    """Memory of `root` and its live descendants in MiB: the sum of their PSS (proportional set
    size, /proc/<pid>/smaps_rollup), so pages the processes share are counted once."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, todo = [root], [root]
    while todo:
        parent = todo.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        tree += kids
        todo += kids
    total_kib = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        except OSError:
            continue  # exited meanwhile
    return total_kib / 1024


def stage_memory(stack: Stack, names: list[str]) -> dict[str, float]:
    """PSS in MiB per running service (tree_pss_mib), for the results line."""
    return {name: round(tree_pss_mib(pid), 1) for name in names if (pid := stack.pid(name)) is not None}
