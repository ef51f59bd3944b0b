"""Run the insights runner:  python -m tokenpulse.insights  [--check | --once] [--dry-run]

Every TOKENPULSE_INSIGHTS_INTERVAL_S (60 s) evaluates the registered evaluators (budgets:
schemas/budgets.yaml) against ClickHouse, publishes their alerts to tokenpulse.alerts.v1 and
writes their rows (budget_status). Queries and inserts go through tokenpulse.sql_client, so
with the embedded store they use the loader's query endpoint while the stack runs.

    --check     validate the budgets file and the evaluator list, print the budgets, exit
    --once      one evaluation cycle, print what it found, exit
    --dry-run   publish nothing to Kafka and write nothing: print the alerts instead
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from tokenpulse.processes import announce_ready
from tokenpulse.settings import Settings

from .runner import (
    ConfigWatch,
    InsightsRunner,
    InsightsSettings,
    KafkaAlertPublisher,
    build_evaluators,
    query_fn_for_settings,
    sql_insert,
)

log = logging.getLogger("tokenpulse.insights")


def _check(insights: InsightsSettings) -> int:
    evaluators = build_evaluators(insights)
    for ev in evaluators:
        print(f"evaluator {ev.name}: ok")
        config = getattr(ev, "config", None)
        for b in getattr(config, "resolved", lambda: ())():
            print(f"  {b.chain():<50} {b.scope.label():<40} {b.period:<8} ${b.amount_usd}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m tokenpulse.insights") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--once", action="store_true", help="run one evaluation cycle and exit")
    parser.add_argument("--dry-run", action="store_true", help="print alerts; no Kafka, no inserts")
    args = parser.parse_args(argv)
    insights = InsightsSettings()
    try:
        if args.check:
            return _check(insights)
        evaluators = build_evaluators(insights)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        log.error("%s", exc)
        return 2
    settings = Settings()
    query = query_fn_for_settings(settings)
    publisher = None
    if args.dry_run:
        def publish(alerts):
            for a in alerts:
                print(a.model_dump_json())

        def insert(table, rows, columns):
            print(f"({len(rows)} row(s) for {table} not written: --dry-run)")
    else:
        publisher = KafkaAlertPublisher(settings.kafka, client_id=insights.client_id,
                                        timeout_s=insights.publish_timeout_s)
        publish, insert = publisher, sql_insert(query, chunk_bytes=insights.insert_chunk_bytes)
    runner = InsightsRunner(evaluators, query=query, insert=insert, publish=publish,
                            max_pending_alerts=insights.max_pending_alerts)
    try:
        if args.once:
            runner.restore()
            report = runner.run_once(datetime.now(UTC))
            print(f"{report.duration_ms:.0f} ms, rows {report.rows}, alerts published {report.alerts_published}, "
                  f"pending {report.alerts_pending}" + (f", errors {report.errors}" if report.errors else ""))
            return 1 if report.errors else 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `tokenpulse down` sends SIGTERM
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("insights runner: %s every %d s", [e.name for e in evaluators], insights.interval_s)
        announce_ready()
        runner.run_forever(stop, insights.interval_s, ConfigWatch(insights) if insights.reload_config else None)
        return 0
    finally:
        if publisher is not None:
            publisher.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sys.exit(main())
