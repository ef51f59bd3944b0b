"""`tokenpulse drill`: the fault drills."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import Settings

DRILLS = ["broker_restart", "flink_restore", "loader_down", "collector_crash", "duplicate_delivery"]  # tokenpulse.drills.DRILLS


def cmd_drill(settings: Settings, args) -> int:
    from ..drills import DrillOptions, notes, run_drills, table, write_json

    options = DrillOptions(only=args.only, loader_down_s=args.loader_down_s, broker_down_s=args.broker_down_s,
                           before_s=args.traffic_s, after_s=args.traffic_s)
    results = run_drills(options, port_base=args.port_base, keep_state=args.keep_state,
                         progress=lambda m: print(m, file=sys.stderr, flush=True))
    print("\n" + table(results) + "\n\n" + notes(results))
    if args.json:
        write_json(args.json, results)
    bad = [d.name for d in results if not d.ok]
    print(f"\n{len(results) - len(bad)} of {len(results)} drills clean" + (f"; MISMATCH in {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def register(sub: argparse._SubParsersAction) -> None:
    dr = sub.add_parser("drill", help="fault drills: break a part mid-stream, prove 0 lost / 0 counted twice",
                        description="Starts its own stack (temporary state dir, ports from --port-base, away from "
                                    "`tokenpulse up`), then per drill: a client sends spans, counting what it sent "
                                    "and what the collector acknowledged and pricing each itself; the fault is "
                                    "injected; the pipeline settles; raw rows (token_spans) and 1-minute rollups "
                                    "(spend_1m) are reconciled with the client's counts and cost, to 1e-12 USD. "
                                    "Prints a table; exits 1 on any mismatch. About 5 minutes for all five.",
                        epilog="drills:\n"
                               "  broker_restart      Kafka broker stopped (SIGTERM) and restarted\n"
                               "  flink_restore       cost job cancelled mid-stream, resumes from its checkpoint\n"
                               "  loader_down         ClickHouse writer down for --loader-down-s\n"
                               "  collector_crash     collector SIGKILLed with requests in flight; client resends\n"
                               "  duplicate_delivery  every request sent twice + spans re-forwarded to Kafka\n"
                               "columns: lost = acked spans with no row; duplicates = rows or rollup calls beyond\n"
                               "one per span; diff = stored cost - the client's own pricing; recover s = faulty\n"
                               "part restarted -> a span sent after that is a row in ClickHouse.\n"
                               "evidence: a failed or interrupted run keeps its state dir (it prints where); each\n"
                               "service's log of the run before a restart is <name>.log.1 beside <name>.log.\n"
                               "Ctrl-C or SIGTERM stops the drills' stack before exiting.\n"
                               "example: tokenpulse drill --only loader_down collector_crash --loader-down-s 10",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dr.add_argument("--only", nargs="+", choices=DRILLS, default=DRILLS, metavar="NAME",
                    help="run just these drills (default: all, in the order above)")
    dr.add_argument("--loader-down-s", type=float, default=60.0, help="loader outage in seconds (default 60)")
    dr.add_argument("--broker-down-s", type=float, default=10.0, help="broker outage in seconds (default 10)")
    dr.add_argument("--traffic-s", type=float, default=4.0, help="steady traffic before and after each fault (default 4)")
    dr.add_argument("--port-base", type=int, default=19400,
                    help="ports: Kafka base+92/+93, collector +18, loader query +24 (default 19400)")
    dr.add_argument("--keep-state", action="store_true",
                    help="keep the temporary state dir (logs, data) also after a clean run")
    dr.add_argument("--json", type=Path, help="also write the results as JSON here")
    dr.set_defaults(func=cmd_drill)
