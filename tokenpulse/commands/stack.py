"""Start, stop and list the local stack's services: `tokenpulse up | down | status`."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..settings import Settings

SERVICES = ["kafka", "loader", "flink-job", "loop-detector", "alerts", "insights", "collector"]  # the names Stack.services() uses


def _stack_progress(bar: tqdm):
    def report(message: str) -> None:
        bar.set_description_str(message)
        if message.endswith(")") or message.endswith("already running") or message.startswith("stopped"):
            bar.update(1)
            tqdm.write(f"  {message}")
    return report


def cmd_up(settings: Settings, args) -> int:
    from ..stack import Stack, StackError

    stack = Stack(settings)
    only = getattr(args, "only", None)
    with tqdm(total=len(stack.selected(only)), desc="starting", unit="service", file=sys.stderr) as bar:
        try:
            stack.up(_stack_progress(bar), only=only)
        except StackError as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            print("stopping what was started (tokenpulse down)", file=sys.stderr)
            stack.down()
            return 1
    c = settings.collector
    print(f"\nOTLP/HTTP collector: http://{c.host}:{c.port}/v1/traces   Kafka: {settings.kafka.bootstrap_servers}")
    print(f"ClickHouse: {settings.clickhouse.resolved_dsn(settings.paths)}   logs: {settings.paths.logs}")
    return 0


def cmd_down(settings: Settings, args) -> int:
    from ..stack import Stack

    Stack(settings).down(lambda m: print(f"  {m}"), only=getattr(args, "only", None))
    print(f"stopped; data stays in {settings.paths.state_dir} (delete it to start from scratch)")
    return 0


def cmd_status(settings: Settings, args) -> int:
    from ..stack import Stack

    stack = Stack(settings)
    running = 0
    for name, pid in stack.status().items():
        print(f"  {name:<10} {'running, pid ' + str(pid) if pid else 'stopped'}   log: {stack.log_path(name)}")
        running += bool(pid)
    return 0 if running else 3


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start the local stack (Kafka, loader, Flink job, collector)",
                        description="Start every service in order and wait until each is healthy. Downloads the "
                                    "Kafka and Flink connector jars from Maven Central on first use.")
    up.add_argument("--only", nargs="+", choices=SERVICES, help="start just these services")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the local stack, keep its data")
    down.add_argument("--only", nargs="+", choices=SERVICES, help="stop just these services")
    down.set_defaults(func=cmd_down)

    sub.add_parser("status", help="show which services run (exit 3 when none)").set_defaults(func=cmd_status)
