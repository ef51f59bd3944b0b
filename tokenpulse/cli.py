"""`tokenpulse`: run the local stack, the demo, and queries.

One parser; each command lives in a module of tokenpulse/commands/ that registers its own
subparser (`register(sub)`) and keeps its body thin: parse, call one module, print. Command
groups with parsers of their own (`tokenpulse flink|kafka|insights ...`) are handed their
arguments untouched.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .commands import alerts, config, demo, drill, prices, report, stack, store
from .commands.stack import SERVICES  # noqa: F401 - re-exported: the service names the stack uses
from .settings import Settings

EPILOG = """\
typical session:
  tokenpulse up                      start Kafka, the loader, the Flink job and the collector
  # point any OpenTelemetry SDK at http://127.0.0.1:4318 with
  #   OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer demo-acme-key"
  tokenpulse sql --saved spend_by_team_model --param hours=24
  tokenpulse down                    stop everything (data stays in .state/)

  tokenpulse demo                    all of the above with a demo workload, then a summary

configuration: environment variables TOKENPULSE_<SECTION>_<FIELD>, for example
  TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS=broker:9092 TOKENPULSE_KAFKA_RUN_LOCAL_BROKER=false
  TOKENPULSE_CLICKHOUSE_DSN=http://user:pass@clickhouse:8123
  TOKENPULSE_COLLECTOR_TENANTS_FILE=/etc/tokenpulse/tenants.yaml
see README.md for every setting.
"""

# The order of `tokenpulse --help`.
COMMAND_MODULES = (stack, demo, store, config, prices, report, drill, alerts)


# Command groups with their own parsers, each in its own module (`python -m <module>` works too):
# `tokenpulse flink up`, `tokenpulse kafka stop-broker 2`, `tokenpulse insights --once`.
COMMAND_GROUPS = {
    "flink": ("tokenpulse.flink_cluster",
              "a local standalone Flink cluster: up, submit the jobs, kill/start a TaskManager, down"),
    "kafka": ("tokenpulse.kafka_cluster",
              "a local three-node Kafka cluster: up, env, stop/start a broker, down"),
    "insights": ("tokenpulse.insights.__main__",
                 "the budget, burn-rate, growth and savings evaluators: --check, --once, or as a service"),
}


def run_group(name: str, argv: list[str]) -> int:
    module, _ = COMMAND_GROUPS[name]
    return importlib.import_module(module).main(argv, prog=f"tokenpulse {name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenpulse",
        description="Observability for LLM token spend: OpenTelemetry GenAI spans -> Kafka -> Flink -> ClickHouse.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    for name, (_, help_text) in COMMAND_GROUPS.items():
        group = sub.add_parser(name, help=f"{help_text} (tokenpulse {name} --help)", add_help=False)
        group.add_argument("args", nargs=argparse.REMAINDER)
        group.set_defaults(func=lambda _settings, args, name=name: run_group(name, args.args))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in COMMAND_GROUPS and set(argv[:first]) <= {"-v", "--verbose"}:
        return run_group(argv[first], argv[first + 1:])  # their own parser and logging set-up
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # readiness probes expect refusals
    return args.func(Settings(), args)


if __name__ == "__main__":
    sys.exit(main())
