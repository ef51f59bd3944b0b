"""`tokenpulse report`: the HTML report of spend."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..settings import Settings


def cmd_report(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy

    from ..report import Period, write_report
    from ..sql_client import QueryError

    def utc(t: datetime | None) -> datetime | None:  # ClickHouse returns naive UTC: compare like with like
        return t.astimezone(UTC).replace(tzinfo=None) if t is not None and t.tzinfo else t

    until = utc(args.until) or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    period = Period(utc(args.since) or until - timedelta(days=args.days), until)
    if period.end <= period.start:
        print("error: --until must be after --since", file=sys.stderr)
        return 2
    print(f"building the report for {period.start} .. {period.end} UTC ({args.tenant or 'all tenants'})", file=sys.stderr)
    try:
        out = write_report(settings, args.out, period, tenant=args.tenant or "", top_sessions=args.top)
    except (QueryError, StoreBusy) as exc:
        hint = "\n(no tokenpulse tables there: start the stack or run `tokenpulse migrate up`)" \
            if "UNKNOWN_TABLE" in str(exc) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    print(out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="write a self-contained HTML report with charts of spend",
                         description="Writes one HTML page (inline SVG charts, no scripts, opens offline) for a\n"
                                     "period: spend over time by team and model, unit price vs volume vs spend\n"
                                     "(the Jevons view), top runaway sessions, cloud vs edge cost per million\n"
                                     "tokens, budget burn and measured savings, each with its data table.\n"
                                     "Reads ClickHouse through the saved queries in sql/queries (through the\n"
                                     "loader while the stack runs). Times are UTC; docs/report.md explains the charts.",
                         epilog="examples:\n  tokenpulse report --out report.html                 the last 7 days\n"
                                "  tokenpulse report --days 1 --tenant acme --out acme.html\n"
                                "  tokenpulse report --since 2026-11-01 --until 2026-12-01 --out november.html",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--out", type=Path, default=Path("report.html"), help="where to write (default report.html)")
    rep.add_argument("--since", type=datetime.fromisoformat, help="UTC start, e.g. 2026-11-01 or 2026-11-01T08:00")
    rep.add_argument("--until", type=datetime.fromisoformat, help="UTC end, exclusive (default now)")
    rep.add_argument("--days", type=float, default=7.0, help="period length when --since is not given (default 7)")
    rep.add_argument("--tenant", help="only this tenant (default: all)")
    rep.add_argument("--top", type=int, default=10, help="sessions in the runaway chart (default 10)")
    rep.set_defaults(func=cmd_report)
